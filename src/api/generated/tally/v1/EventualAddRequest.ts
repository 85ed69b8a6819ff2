// Original file: proto/tally.proto

import type { AddOp as _tally_v1_AddOp, AddOp__Output as _tally_v1_AddOp__Output } from '../../tally/v1/AddOp.js';

/**
 * Eventual adds: plain adds (no floor, no ttl) as ops or packed_adds (BatchRequest's packed form),
 * up to limits.maxBatchOps, to any keys. Bad input refuses the whole request and buffers nothing.
 * request_id (optional, 1-64 printable ASCII characters, unique per call): a retry with the same id
 * to the same node within 10 minutes is answered without buffering the adds again.
 * A node that has not heard from the leader of one of the adds' shards for
 * eventual.refuseAfterLeaderSilenceMs refuses the request with UNAVAILABLE before buffering
 * anything (its adds would wait there until it can flush): send it to another node. With
 * accept_unflushable it buffers them anyway (the client sets it once every node refused).
 */
export interface EventualAddRequest {
  'ops'?: (_tally_v1_AddOp)[];
  'packedAdds'?: (Buffer | Uint8Array | string);
  'requestId'?: (string);
  'acceptUnflushable'?: (boolean);
}

/**
 * Eventual adds: plain adds (no floor, no ttl) as ops or packed_adds (BatchRequest's packed form),
 * up to limits.maxBatchOps, to any keys. Bad input refuses the whole request and buffers nothing.
 * request_id (optional, 1-64 printable ASCII characters, unique per call): a retry with the same id
 * to the same node within 10 minutes is answered without buffering the adds again.
 * A node that has not heard from the leader of one of the adds' shards for
 * eventual.refuseAfterLeaderSilenceMs refuses the request with UNAVAILABLE before buffering
 * anything (its adds would wait there until it can flush): send it to another node. With
 * accept_unflushable it buffers them anyway (the client sets it once every node refused).
 */
export interface EventualAddRequest__Output {
  'ops': (_tally_v1_AddOp__Output)[];
  'packedAdds': (Buffer);
  'requestId': (string);
  'acceptUnflushable': (boolean);
}
