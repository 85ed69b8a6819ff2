// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface WatchRequest {
  /**
   * the key, or the prefix when prefix is set (may be empty: every key)
   */
  'key'?: (Buffer | Uint8Array | string);
  'prefix'?: (boolean);
  /**
   * changes at indexes above this; 0 = from now
   */
  'fromIndex'?: (number | string | Long);
  /**
   * required for a prefix (one stream per shard)
   */
  'shardId'?: (number);
  'epoch'?: (number | string | Long);
  /**
   * 10..10,000; default 50
   */
  'coalesceMs'?: (number);
}

export interface WatchRequest__Output {
  /**
   * the key, or the prefix when prefix is set (may be empty: every key)
   */
  'key': (Buffer);
  'prefix': (boolean);
  /**
   * changes at indexes above this; 0 = from now
   */
  'fromIndex': (string);
  /**
   * required for a prefix (one stream per shard)
   */
  'shardId': (number);
  'epoch': (string);
  /**
   * 10..10,000; default 50
   */
  'coalesceMs': (number);
}
