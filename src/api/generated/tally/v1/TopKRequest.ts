// Original file: proto/tally.proto

import type { Consistency as _tally_v1_Consistency, Consistency__Output as _tally_v1_Consistency__Output } from '../../tally/v1/Consistency.js';
import type { Long } from '@grpc/proto-loader';

export interface TopKRequest {
  /**
   * may be empty: every counter
   */
  'prefix'?: (Buffer | Uint8Array | string);
  /**
   * 1..10,000
   */
  'k'?: (number);
  'consistency'?: (_tally_v1_Consistency);
  'minIndex'?: (number | string | Long);
  /**
   * required: the shard asked
   */
  'shardId'?: (number);
  'epoch'?: (number | string | Long);
  /**
   * window_to_ms > 0: rank windowed counters by their sum over [window_from_ms, window_to_ms)
   * instead of plain counters (one step of WindowRange: the bounds must align with a tier).
   */
  'windowFromMs'?: (number | string | Long);
  'windowToMs'?: (number | string | Long);
}

export interface TopKRequest__Output {
  /**
   * may be empty: every counter
   */
  'prefix': (Buffer);
  /**
   * 1..10,000
   */
  'k': (number);
  'consistency': (_tally_v1_Consistency__Output);
  'minIndex': (string);
  /**
   * required: the shard asked
   */
  'shardId': (number);
  'epoch': (string);
  /**
   * window_to_ms > 0: rank windowed counters by their sum over [window_from_ms, window_to_ms)
   * instead of plain counters (one step of WindowRange: the bounds must align with a tier).
   */
  'windowFromMs': (string);
  'windowToMs': (string);
}
