// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface ShardChangeResponse {
  /**
   * the shard's epoch when the change was proposed
   */
  'epoch'?: (number | string | Long);
}

export interface ShardChangeResponse__Output {
  /**
   * the shard's epoch when the change was proposed
   */
  'epoch': (string);
}
