// Original file: proto/tally.proto

import type { Consistency as _tally_v1_Consistency, Consistency__Output as _tally_v1_Consistency__Output } from '../../tally/v1/Consistency.js';
import type { Long } from '@grpc/proto-loader';

export interface GetManyRequest {
  'keys'?: (Buffer | Uint8Array | string)[];
  'consistency'?: (_tally_v1_Consistency);
  'minIndex'?: (number | string | Long);
  'shardId'?: (number);
  'epoch'?: (number | string | Long);
  /**
   * none, or one per key (0 for keys that are not hot)
   */
  'hotSubCounters'?: (number)[];
}

export interface GetManyRequest__Output {
  'keys': (Buffer)[];
  'consistency': (_tally_v1_Consistency__Output);
  'minIndex': (string);
  'shardId': (number);
  'epoch': (string);
  /**
   * none, or one per key (0 for keys that are not hot)
   */
  'hotSubCounters': (number)[];
}
