// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface MapOperation {
  'id'?: (number | string | Long);
  /**
   * move, split
   */
  'kind'?: (string);
  'shardId'?: (number);
  'fromNode'?: (string);
  'toNode'?: (string);
  'state'?: (string);
  'step'?: (string);
  'reason'?: (string);
  'ageMs'?: (number | string | Long);
  'splitSlot'?: (number);
  'newShardId'?: (number);
}

export interface MapOperation__Output {
  'id': (string);
  /**
   * move, split
   */
  'kind': (string);
  'shardId': (number);
  'fromNode': (string);
  'toNode': (string);
  'state': (string);
  'step': (string);
  'reason': (string);
  'ageMs': (string);
  'splitSlot': (number);
  'newShardId': (number);
}
