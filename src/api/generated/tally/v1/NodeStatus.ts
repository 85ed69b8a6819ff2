// Original file: proto/tally.proto

import type { GroupStatus as _tally_v1_GroupStatus, GroupStatus__Output as _tally_v1_GroupStatus__Output } from '../../tally/v1/GroupStatus.js';
import type { NodeStats as _tally_v1_NodeStats, NodeStats__Output as _tally_v1_NodeStats__Output } from '../../tally/v1/NodeStats.js';

export interface NodeStatus {
  'nodeId'?: (string);
  'clientAddress'?: (string);
  'zone'?: (string);
  'reachable'?: (boolean);
  'groups'?: (_tally_v1_GroupStatus)[];
  'error'?: (string);
  'stats'?: (_tally_v1_NodeStats | null);
  /**
   * the machine it runs on ("" from older nodes: its id)
   */
  'host'?: (string);
}

export interface NodeStatus__Output {
  'nodeId': (string);
  'clientAddress': (string);
  'zone': (string);
  'reachable': (boolean);
  'groups': (_tally_v1_GroupStatus__Output)[];
  'error': (string);
  'stats': (_tally_v1_NodeStats__Output | null);
  /**
   * the machine it runs on ("" from older nodes: its id)
   */
  'host': (string);
}
