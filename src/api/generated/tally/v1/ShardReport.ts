// Original file: proto/tally.proto

import type { PeerMatch as _tally_v1_PeerMatch, PeerMatch__Output as _tally_v1_PeerMatch__Output } from '../../tally/v1/PeerMatch.js';
import type { Long } from '@grpc/proto-loader';

/**
 * One hosted replica: the shard's descriptor and configuration as the replica has them, its Raft
 * progress, and (leaders only) load and where a split would go.
 */
export interface ShardReport {
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
  'voters'?: (number)[];
  'learners'?: (number)[];
  /**
   * the outgoing half of a joint configuration
   */
  'votersOutgoing'?: (number)[];
  /**
   * as this replica believes (0 = unknown)
   */
  'leader'?: (number);
  'term'?: (number | string | Long);
  'commit'?: (number | string | Long);
  'applied'?: (number | string | Long);
  'isLeader'?: (boolean);
  /**
   * leaders only: the match index of every peer
   */
  'progress'?: (_tally_v1_PeerMatch)[];
  /**
   * leaders only: mutations applied per second since the last report
   */
  'opsPerSecond'?: (number | string);
  'counters'?: (number | string | Long);
  /**
   * leaders only: the slot that halves recent load (0 = none)
   */
  'splitSlot'?: (number);
}

/**
 * One hosted replica: the shard's descriptor and configuration as the replica has them, its Raft
 * progress, and (leaders only) load and where a split would go.
 */
export interface ShardReport__Output {
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
  'voters': (number)[];
  'learners': (number)[];
  /**
   * the outgoing half of a joint configuration
   */
  'votersOutgoing': (number)[];
  /**
   * as this replica believes (0 = unknown)
   */
  'leader': (number);
  'term': (string);
  'commit': (string);
  'applied': (string);
  'isLeader': (boolean);
  /**
   * leaders only: the match index of every peer
   */
  'progress': (_tally_v1_PeerMatch__Output)[];
  /**
   * leaders only: mutations applied per second since the last report
   */
  'opsPerSecond': (number);
  'counters': (string);
  /**
   * leaders only: the slot that halves recent load (0 = none)
   */
  'splitSlot': (number);
}
