// Original file: proto/tally.proto

import type { ReplicaInfo as _tally_v1_ReplicaInfo, ReplicaInfo__Output as _tally_v1_ReplicaInfo__Output } from '../../tally/v1/ReplicaInfo.js';
import type { Long } from '@grpc/proto-loader';

export interface ShardRoute {
  'shardId'?: (number);
  /**
   * inclusive
   */
  'slotStart'?: (number);
  /**
   * exclusive
   */
  'slotEnd'?: (number);
  'epoch'?: (number | string | Long);
  'replicas'?: (_tally_v1_ReplicaInfo)[];
  /**
   * as this node believes; may be empty
   */
  'leaderId'?: (string);
  'term'?: (number | string | Long);
}

export interface ShardRoute__Output {
  'shardId': (number);
  /**
   * inclusive
   */
  'slotStart': (number);
  /**
   * exclusive
   */
  'slotEnd': (number);
  'epoch': (string);
  'replicas': (_tally_v1_ReplicaInfo__Output)[];
  /**
   * as this node believes; may be empty
   */
  'leaderId': (string);
  'term': (string);
}
