// Original file: proto/tally.proto

import type { PartitionMap as _tally_v1_PartitionMap, PartitionMap__Output as _tally_v1_PartitionMap__Output } from '../../tally/v1/PartitionMap.js';

/**
 * The metadata leader's answer: its id and, when the sender's map is older, the whole map.
 */
export interface HeartbeatResponse {
  'metaLeader'?: (number);
  /**
   * unset: the sender's map is current
   */
  'map'?: (_tally_v1_PartitionMap | null);
}

/**
 * The metadata leader's answer: its id and, when the sender's map is older, the whole map.
 */
export interface HeartbeatResponse__Output {
  'metaLeader': (number);
  /**
   * unset: the sender's map is current
   */
  'map': (_tally_v1_PartitionMap__Output | null);
}
