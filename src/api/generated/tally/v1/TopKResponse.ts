// Original file: proto/tally.proto

import type { KeyValue as _tally_v1_KeyValue, KeyValue__Output as _tally_v1_KeyValue__Output } from '../../tally/v1/KeyValue.js';
import type { ShardAnswer as _tally_v1_ShardAnswer, ShardAnswer__Output as _tally_v1_ShardAnswer__Output } from '../../tally/v1/ShardAnswer.js';

export interface TopKResponse {
  'entries'?: (_tally_v1_KeyValue)[];
  'shard'?: (_tally_v1_ShardAnswer | null);
}

export interface TopKResponse__Output {
  'entries': (_tally_v1_KeyValue__Output)[];
  'shard': (_tally_v1_ShardAnswer__Output | null);
}
