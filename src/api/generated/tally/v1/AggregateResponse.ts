// Original file: proto/tally.proto

import type { ShardAnswer as _tally_v1_ShardAnswer, ShardAnswer__Output as _tally_v1_ShardAnswer__Output } from '../../tally/v1/ShardAnswer.js';
import type { Long } from '@grpc/proto-loader';

export interface AggregateResponse {
  'count'?: (number | string | Long);
  /**
   * decimal: a sum of int64 counters may exceed int64
   */
  'sum'?: (string);
  /**
   * min and max only when count > 0
   */
  'min'?: (number | string | Long);
  'max'?: (number | string | Long);
  'shard'?: (_tally_v1_ShardAnswer | null);
}

export interface AggregateResponse__Output {
  'count': (string);
  /**
   * decimal: a sum of int64 counters may exceed int64
   */
  'sum': (string);
  /**
   * min and max only when count > 0
   */
  'min': (string);
  'max': (string);
  'shard': (_tally_v1_ShardAnswer__Output | null);
}
