// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Names the routing decision and the exactly-once identity of a mutation: a session
 * (client_id, seq, first_unacked_seq), or a request_id. Every mutation needs one of the two.
 * 
 * The one-call write: header { request_id: "<unique string>" } and nothing else. Send it to ANY
 * node: a node that does not lead the key's shard forwards it once to the leader (with your
 * identity) and relays the answer. Sent again with the same request_id (a retry after a timeout or
 * any "unknown" answer), it is applied at most once: a retry gets the first attempt's result. The
 * server remembers a request_id, per caller (the token or certificate name) and shard, for at
 * least 2 minutes after it applied (leader-stamped time). The count bounds (50,000 ids per caller
 * and 100,000 per shard) never shorten that: a new id beyond them is OVERLOADED with
 * retry_after_ms, and nothing is applied. Reusing a remembered request_id for different operations
 * is INVALID_ARGUMENT ("was used for a different request") and changes nothing. A request_id is
 * 1..64 printable ASCII characters (a UUID is a good choice). Retrying after the retention has
 * passed may apply twice: retry promptly, or use a session. docs/protocol.md has the details.
 */
export interface RequestHeader {
  /**
   * the shard the client routed to (0 = the server finds it from the keys)
   */
  'shardId'?: (number);
  /**
   * the shard epoch the client routed by (0 = not checked)
   */
  'epoch'?: (number | string | Long);
  /**
   * session id from RegisterSession (0 with request_id)
   */
  'clientId'?: (number | string | Long);
  /**
   * this request's sequence number in the session (>= 1)
   */
  'seq'?: (number | string | Long);
  /**
   * the server may forget results of every seq below this
   */
  'firstUnackedSeq'?: (number | string | Long);
  /**
   * instead of a session: this write's id, chosen by the client
   */
  'requestId'?: (string);
}

/**
 * Names the routing decision and the exactly-once identity of a mutation: a session
 * (client_id, seq, first_unacked_seq), or a request_id. Every mutation needs one of the two.
 * 
 * The one-call write: header { request_id: "<unique string>" } and nothing else. Send it to ANY
 * node: a node that does not lead the key's shard forwards it once to the leader (with your
 * identity) and relays the answer. Sent again with the same request_id (a retry after a timeout or
 * any "unknown" answer), it is applied at most once: a retry gets the first attempt's result. The
 * server remembers a request_id, per caller (the token or certificate name) and shard, for at
 * least 2 minutes after it applied (leader-stamped time). The count bounds (50,000 ids per caller
 * and 100,000 per shard) never shorten that: a new id beyond them is OVERLOADED with
 * retry_after_ms, and nothing is applied. Reusing a remembered request_id for different operations
 * is INVALID_ARGUMENT ("was used for a different request") and changes nothing. A request_id is
 * 1..64 printable ASCII characters (a UUID is a good choice). Retrying after the retention has
 * passed may apply twice: retry promptly, or use a session. docs/protocol.md has the details.
 */
export interface RequestHeader__Output {
  /**
   * the shard the client routed to (0 = the server finds it from the keys)
   */
  'shardId': (number);
  /**
   * the shard epoch the client routed by (0 = not checked)
   */
  'epoch': (string);
  /**
   * session id from RegisterSession (0 with request_id)
   */
  'clientId': (string);
  /**
   * this request's sequence number in the session (>= 1)
   */
  'seq': (string);
  /**
   * the server may forget results of every seq below this
   */
  'firstUnackedSeq': (string);
  /**
   * instead of a session: this write's id, chosen by the client
   */
  'requestId': (string);
}
