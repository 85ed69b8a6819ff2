// Original file: proto/tally.proto

import type { PartitionMapNode as _tally_v1_PartitionMapNode, PartitionMapNode__Output as _tally_v1_PartitionMapNode__Output } from '../../tally/v1/PartitionMapNode.js';
import type { PartitionMapShard as _tally_v1_PartitionMapShard, PartitionMapShard__Output as _tally_v1_PartitionMapShard__Output } from '../../tally/v1/PartitionMapShard.js';
import type { MetaMembership as _tally_v1_MetaMembership, MetaMembership__Output as _tally_v1_MetaMembership__Output } from '../../tally/v1/MetaMembership.js';
import type { PartitionMapOperation as _tally_v1_PartitionMapOperation, PartitionMapOperation__Output as _tally_v1_PartitionMapOperation__Output } from '../../tally/v1/PartitionMapOperation.js';
import type { PartitionMapHot as _tally_v1_PartitionMapHot, PartitionMapHot__Output as _tally_v1_PartitionMapHot__Output } from '../../tally/v1/PartitionMapHot.js';
import type { Long } from '@grpc/proto-loader';

/**
 * The partition map (src/meta/cluster-map.ts ClusterMap), field for field: the node that adopts it
 * has the metadata leader's map exactly. Fields a map may lack have explicit presence.
 */
export interface PartitionMap {
  'initialized'?: (boolean);
  'clusterName'?: (string);
  'replicationFactor'?: (number);
  /**
   * the metadata group's applied index
   */
  'version'?: (number | string | Long);
  /**
   * the leader-stamped time of the last applied entry
   */
  'clockMs'?: (number | string | Long);
  'nodes'?: (_tally_v1_PartitionMapNode)[];
  'shards'?: (_tally_v1_PartitionMapShard)[];
  /**
   * unset in maps written before it existed
   */
  'meta'?: (_tally_v1_MetaMembership | null);
  'operations'?: (_tally_v1_PartitionMapOperation)[];
  'nextOperationId'?: (number | string | Long);
  /**
   * false: a map written before hot counters existed (no list at all)
   */
  'hasHot'?: (boolean);
  /**
   * sorted by key
   */
  'hot'?: (_tally_v1_PartitionMapHot)[];
}

/**
 * The partition map (src/meta/cluster-map.ts ClusterMap), field for field: the node that adopts it
 * has the metadata leader's map exactly. Fields a map may lack have explicit presence.
 */
export interface PartitionMap__Output {
  'initialized': (boolean);
  'clusterName': (string);
  'replicationFactor': (number);
  /**
   * the metadata group's applied index
   */
  'version': (string);
  /**
   * the leader-stamped time of the last applied entry
   */
  'clockMs': (string);
  'nodes': (_tally_v1_PartitionMapNode__Output)[];
  'shards': (_tally_v1_PartitionMapShard__Output)[];
  /**
   * unset in maps written before it existed
   */
  'meta': (_tally_v1_MetaMembership__Output | null);
  'operations': (_tally_v1_PartitionMapOperation__Output)[];
  'nextOperationId': (string);
  /**
   * false: a map written before hot counters existed (no list at all)
   */
  'hasHot': (boolean);
  /**
   * sorted by key
   */
  'hot': (_tally_v1_PartitionMapHot__Output)[];
}
