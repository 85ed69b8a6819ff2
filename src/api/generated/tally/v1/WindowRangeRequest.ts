// Original file: proto/tally.proto

import type { Consistency as _tally_v1_Consistency, Consistency__Output as _tally_v1_Consistency__Output } from '../../tally/v1/Consistency.js';
import type { Long } from '@grpc/proto-loader';

export interface WindowRangeRequest {
  'key'?: (Buffer | Uint8Array | string);
  /**
   * [from_ms, to_ms), one point per step_ms
   */
  'fromMs'?: (number | string | Long);
  'toMs'?: (number | string | Long);
  'stepMs'?: (number | string | Long);
  /**
   * sum (default), count, min, max, avg
   */
  'agg'?: (string);
  'consistency'?: (_tally_v1_Consistency);
  'minIndex'?: (number | string | Long);
  'shardId'?: (number);
  'epoch'?: (number | string | Long);
}

export interface WindowRangeRequest__Output {
  'key': (Buffer);
  /**
   * [from_ms, to_ms), one point per step_ms
   */
  'fromMs': (string);
  'toMs': (string);
  'stepMs': (string);
  /**
   * sum (default), count, min, max, avg
   */
  'agg': (string);
  'consistency': (_tally_v1_Consistency__Output);
  'minIndex': (string);
  'shardId': (number);
  'epoch': (string);
}
