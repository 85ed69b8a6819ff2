// Original file: proto/tally.proto

import type { WatchEvent as _tally_v1_WatchEvent, WatchEvent__Output as _tally_v1_WatchEvent__Output } from '../../tally/v1/WatchEvent.js';
import type { Long } from '@grpc/proto-loader';

/**
 * Every change up to index (of the watched keys) has been sent; resume from index.
 */
export interface WatchBatch {
  'events'?: (_tally_v1_WatchEvent)[];
  'index'?: (number | string | Long);
  'shardId'?: (number);
}

/**
 * Every change up to index (of the watched keys) has been sent; resume from index.
 */
export interface WatchBatch__Output {
  'events': (_tally_v1_WatchEvent__Output)[];
  'index': (string);
  'shardId': (number);
}
