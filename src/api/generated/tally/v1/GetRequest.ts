// Original file: proto/tally.proto

import type { Consistency as _tally_v1_Consistency, Consistency__Output as _tally_v1_Consistency__Output } from '../../tally/v1/Consistency.js';
import type { Long } from '@grpc/proto-loader';

export interface GetRequest {
  'key'?: (Buffer | Uint8Array | string);
  'consistency'?: (_tally_v1_Consistency);
  /**
   * STALE: wait (bounded) until the replica applied at least this
   */
  'minIndex'?: (number | string | Long);
  'shardId'?: (number);
  'epoch'?: (number | string | Long);
  /**
   * A hot key (RoutesResponse.hot): the sub-counter count the client sums. Required for a hot
   * key's own key (sub-counter 0), refused when it is not the count the serving node knows.
   */
  'hotSubCounters'?: (number);
}

export interface GetRequest__Output {
  'key': (Buffer);
  'consistency': (_tally_v1_Consistency__Output);
  /**
   * STALE: wait (bounded) until the replica applied at least this
   */
  'minIndex': (string);
  'shardId': (number);
  'epoch': (string);
  /**
   * A hot key (RoutesResponse.hot): the sub-counter count the client sums. Required for a hot
   * key's own key (sub-counter 0), refused when it is not the count the serving node knows.
   */
  'hotSubCounters': (number);
}
