// Original file: proto/tally.proto

import type { ShardRoute as _tally_v1_ShardRoute, ShardRoute__Output as _tally_v1_ShardRoute__Output } from '../../tally/v1/ShardRoute.js';
import type { HotRoute as _tally_v1_HotRoute, HotRoute__Output as _tally_v1_HotRoute__Output } from '../../tally/v1/HotRoute.js';
import type { Long } from '@grpc/proto-loader';

export interface RoutesResponse {
  'shards'?: (_tally_v1_ShardRoute)[];
  'slotCount'?: (number);
  /**
   * With access control on, only the hot counters whose key the caller holds a role on (read or
   * write on a prefix of it, or admin): other callers' keys are not shown (docs/limits.md).
   */
  'hot'?: (_tally_v1_HotRoute)[];
  /**
   * the partition map version the hot list comes from
   */
  'mapVersion'?: (number | string | Long);
  /**
   * cluster.yaml eventual.prefixes: keys whose plain adds the client sends as eventual adds.
   */
  'eventualPrefixes'?: (string)[];
}

export interface RoutesResponse__Output {
  'shards': (_tally_v1_ShardRoute__Output)[];
  'slotCount': (number);
  /**
   * With access control on, only the hot counters whose key the caller holds a role on (read or
   * write on a prefix of it, or admin): other callers' keys are not shown (docs/limits.md).
   */
  'hot': (_tally_v1_HotRoute__Output)[];
  /**
   * the partition map version the hot list comes from
   */
  'mapVersion': (string);
  /**
   * cluster.yaml eventual.prefixes: keys whose plain adds the client sends as eventual adds.
   */
  'eventualPrefixes': (string)[];
}
