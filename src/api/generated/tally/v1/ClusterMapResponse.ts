// Original file: proto/tally.proto

import type { MapNode as _tally_v1_MapNode, MapNode__Output as _tally_v1_MapNode__Output } from '../../tally/v1/MapNode.js';
import type { MapShard as _tally_v1_MapShard, MapShard__Output as _tally_v1_MapShard__Output } from '../../tally/v1/MapShard.js';
import type { MapOperation as _tally_v1_MapOperation, MapOperation__Output as _tally_v1_MapOperation__Output } from '../../tally/v1/MapOperation.js';
import type { Long } from '@grpc/proto-loader';

export interface ClusterMapResponse {
  /**
   * the metadata group's applied index
   */
  'version'?: (number | string | Long);
  'metaLeaderId'?: (string);
  'nodes'?: (_tally_v1_MapNode)[];
  'shards'?: (_tally_v1_MapShard)[];
  'operations'?: (_tally_v1_MapOperation)[];
  /**
   * false: a follower's or a node's cached copy
   */
  'fromMetaLeader'?: (boolean);
  /**
   * the metadata group's own replicas
   */
  'metaVoters'?: (string)[];
  'metaLearners'?: (string)[];
}

export interface ClusterMapResponse__Output {
  /**
   * the metadata group's applied index
   */
  'version': (string);
  'metaLeaderId': (string);
  'nodes': (_tally_v1_MapNode__Output)[];
  'shards': (_tally_v1_MapShard__Output)[];
  'operations': (_tally_v1_MapOperation__Output)[];
  /**
   * false: a follower's or a node's cached copy
   */
  'fromMetaLeader': (boolean);
  /**
   * the metadata group's own replicas
   */
  'metaVoters': (string)[];
  'metaLearners': (string)[];
}
