// Original file: proto/tally.proto

import type { Fence as _tally_v1_Fence, Fence__Output as _tally_v1_Fence__Output } from '../../tally/v1/Fence.js';
import type { Long } from '@grpc/proto-loader';

/**
 * Which shard answered, over which slots, at which applied index.
 */
export interface ShardAnswer {
  'shardId'?: (number);
  'slotStart'?: (number);
  'slotEnd'?: (number);
  'epoch'?: (number | string | Long);
  'appliedIndex'?: (number | string | Long);
  'fence'?: (_tally_v1_Fence | null);
}

/**
 * Which shard answered, over which slots, at which applied index.
 */
export interface ShardAnswer__Output {
  'shardId': (number);
  'slotStart': (number);
  'slotEnd': (number);
  'epoch': (string);
  'appliedIndex': (string);
  'fence': (_tally_v1_Fence__Output | null);
}
