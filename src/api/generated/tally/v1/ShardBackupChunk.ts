// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Every chunk repeats the header fields (they describe the whole snapshot); `data` is the next
 * `data.length` bytes from `offset`. The last chunk has `last` set and the SHA-256 of all the bytes.
 */
export interface ShardBackupChunk {
  'shardId'?: (number);
  'epoch'?: (number | string | Long);
  /**
   * inclusive
   */
  'slotStart'?: (number);
  /**
   * exclusive
   */
  'slotEnd'?: (number);
  /**
   * the snapshot is the shard's state at exactly this index
   */
  'appliedIndex'?: (number | string | Long);
  /**
   * the leader's term when it was taken
   */
  'term'?: (number | string | Long);
  /**
   * the shard's leader-stamped clock at that index
   */
  'clockMs'?: (number | string | Long);
  /**
   * plain counters in the snapshot
   */
  'counters'?: (number | string | Long);
  'totalBytes'?: (number | string | Long);
  'offset'?: (number | string | Long);
  'data'?: (Buffer | Uint8Array | string);
  'last'?: (boolean);
  /**
   * hex, on the last chunk
   */
  'sha256'?: (string);
  /**
   * the node that took it
   */
  'leaderId'?: (string);
  'clusterName'?: (string);
}

/**
 * Every chunk repeats the header fields (they describe the whole snapshot); `data` is the next
 * `data.length` bytes from `offset`. The last chunk has `last` set and the SHA-256 of all the bytes.
 */
export interface ShardBackupChunk__Output {
  'shardId': (number);
  'epoch': (string);
  /**
   * inclusive
   */
  'slotStart': (number);
  /**
   * exclusive
   */
  'slotEnd': (number);
  /**
   * the snapshot is the shard's state at exactly this index
   */
  'appliedIndex': (string);
  /**
   * the leader's term when it was taken
   */
  'term': (string);
  /**
   * the shard's leader-stamped clock at that index
   */
  'clockMs': (string);
  /**
   * plain counters in the snapshot
   */
  'counters': (string);
  'totalBytes': (string);
  'offset': (string);
  'data': (Buffer);
  'last': (boolean);
  /**
   * hex, on the last chunk
   */
  'sha256': (string);
  /**
   * the node that took it
   */
  'leaderId': (string);
  'clusterName': (string);
}
