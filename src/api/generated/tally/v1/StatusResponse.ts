// Original file: proto/tally.proto

import type { NodeStatus as _tally_v1_NodeStatus, NodeStatus__Output as _tally_v1_NodeStatus__Output } from '../../tally/v1/NodeStatus.js';

export interface StatusResponse {
  'nodes'?: (_tally_v1_NodeStatus)[];
}

export interface StatusResponse__Output {
  'nodes': (_tally_v1_NodeStatus__Output)[];
}
