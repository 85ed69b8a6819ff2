// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface PartitionMapOperation {
  'id'?: (number | string | Long);
  /**
   * move, split
   */
  'kind'?: (string);
  'shardId'?: (number);
  /**
   * 0 = none (an added replica, a split)
   */
  'from'?: (number);
  'to'?: (number);
  /**
   * running, done, aborted
   */
  'state'?: (string);
  /**
   * what it is doing or why it ended
   */
  'step'?: (string);
  /**
   * who asked: "operator" or the controller rule
   */
  'reason'?: (string);
  /**
   * splits: the first slot of the new shard (when has_split_slot)
   */
  'splitSlot'?: (number);
  /**
   * splits: the new shard's id (when has_new_shard_id)
   */
  'newShardId'?: (number);
  'createdMs'?: (number | string | Long);
  'updatedMs'?: (number | string | Long);
  /**
   * Presence as flags, not proto3 `optional`: older protoc (Debian's grpc-tools, the Python
   * example's) refuses `optional` in proto3.
   */
  'hasSplitSlot'?: (boolean);
  'hasNewShardId'?: (boolean);
}

export interface PartitionMapOperation__Output {
  'id': (string);
  /**
   * move, split
   */
  'kind': (string);
  'shardId': (number);
  /**
   * 0 = none (an added replica, a split)
   */
  'from': (number);
  'to': (number);
  /**
   * running, done, aborted
   */
  'state': (string);
  /**
   * what it is doing or why it ended
   */
  'step': (string);
  /**
   * who asked: "operator" or the controller rule
   */
  'reason': (string);
  /**
   * splits: the first slot of the new shard (when has_split_slot)
   */
  'splitSlot': (number);
  /**
   * splits: the new shard's id (when has_new_shard_id)
   */
  'newShardId': (number);
  'createdMs': (string);
  'updatedMs': (string);
  /**
   * Presence as flags, not proto3 `optional`: older protoc (Debian's grpc-tools, the Python
   * example's) refuses `optional` in proto3.
   */
  'hasSplitSlot': (boolean);
  'hasNewShardId': (boolean);
}
