// Original file: proto/tally.proto

import type { BatchOp as _tally_v1_BatchOp, BatchOp__Output as _tally_v1_BatchOp__Output } from '../../tally/v1/BatchOp.js';
import type { Long } from '@grpc/proto-loader';

/**
 * ForwardWrite (node to node only): a one-call write (RequestHeader.request_id) that the entry node
 * authenticated, authorized and validated, sent to the shard's leader, which validates it again and
 * submits it (never forwards it further). The ops as the client sent them: `ops`, or `packed_adds`
 * (the packed form of BatchRequest), never both. Field 1 is reserved in both messages: it held the
 * msgpack body of older nodes (InternalRequest/InternalResponse), so a forward between nodes of the
 * two versions is refused (INVALID_ARGUMENT, nothing applied), never misread.
 */
export interface ForwardWriteRequest {
  'shardId'?: (number);
  /**
   * the shard epoch the client routed by (0 = not checked)
   */
  'epoch'?: (number | string | Long);
  /**
   * the entry node's request timeout: the leader's proposal deadline
   */
  'timeoutMs'?: (number);
  'requestId'?: (string);
  /**
   * The caller's verified name ("" = anonymous). The leader keeps it only when the cluster
   * authenticates its nodes (auth on); otherwise it drops it.
   */
  'owner'?: (string);
  'ops'?: (_tally_v1_BatchOp)[];
  'packedAdds'?: (Buffer | Uint8Array | string);
}

/**
 * ForwardWrite (node to node only): a one-call write (RequestHeader.request_id) that the entry node
 * authenticated, authorized and validated, sent to the shard's leader, which validates it again and
 * submits it (never forwards it further). The ops as the client sent them: `ops`, or `packed_adds`
 * (the packed form of BatchRequest), never both. Field 1 is reserved in both messages: it held the
 * msgpack body of older nodes (InternalRequest/InternalResponse), so a forward between nodes of the
 * two versions is refused (INVALID_ARGUMENT, nothing applied), never misread.
 */
export interface ForwardWriteRequest__Output {
  'shardId': (number);
  /**
   * the shard epoch the client routed by (0 = not checked)
   */
  'epoch': (string);
  /**
   * the entry node's request timeout: the leader's proposal deadline
   */
  'timeoutMs': (number);
  'requestId': (string);
  /**
   * The caller's verified name ("" = anonymous). The leader keeps it only when the cluster
   * authenticates its nodes (auth on); otherwise it drops it.
   */
  'owner': (string);
  'ops': (_tally_v1_BatchOp__Output)[];
  'packedAdds': (Buffer);
}
