// Original file: proto/tally.proto

import type { Consistency as _tally_v1_Consistency, Consistency__Output as _tally_v1_Consistency__Output } from '../../tally/v1/Consistency.js';
import type { Long } from '@grpc/proto-loader';

export interface AggregateRequest {
  'prefix'?: (Buffer | Uint8Array | string);
  'consistency'?: (_tally_v1_Consistency);
  'minIndex'?: (number | string | Long);
  'shardId'?: (number);
  'epoch'?: (number | string | Long);
  /**
   * as in TopKRequest: windowed counters' sums over the range
   */
  'windowFromMs'?: (number | string | Long);
  'windowToMs'?: (number | string | Long);
}

export interface AggregateRequest__Output {
  'prefix': (Buffer);
  'consistency': (_tally_v1_Consistency__Output);
  'minIndex': (string);
  'shardId': (number);
  'epoch': (string);
  /**
   * as in TopKRequest: windowed counters' sums over the range
   */
  'windowFromMs': (string);
  'windowToMs': (string);
}
