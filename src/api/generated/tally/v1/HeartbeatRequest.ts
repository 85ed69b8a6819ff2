// Original file: proto/tally.proto

import type { HeartbeatNode as _tally_v1_HeartbeatNode, HeartbeatNode__Output as _tally_v1_HeartbeatNode__Output } from '../../tally/v1/HeartbeatNode.js';
import type { ShardReport as _tally_v1_ShardReport, ShardReport__Output as _tally_v1_ShardReport__Output } from '../../tally/v1/ShardReport.js';
import type { Long } from '@grpc/proto-loader';

/**
 * Heartbeat (node to node only): every placement.heartbeat_ms each node reports itself and the
 * shards it hosts to the metadata leader. Field 1 is reserved in both messages: it held the msgpack
 * body of older nodes (InternalRequest/InternalResponse), so a heartbeat between nodes of the two
 * versions is refused (INVALID_ARGUMENT: a request without `node`), never misread.
 */
export interface HeartbeatRequest {
  /**
   * the sender (required)
   */
  'node'?: (_tally_v1_HeartbeatNode | null);
  /**
   * the version of the sender's partition map (0 = none yet)
   */
  'mapVersion'?: (number | string | Long);
  /**
   * one per shard replica the sender hosts
   */
  'shards'?: (_tally_v1_ShardReport)[];
}

/**
 * Heartbeat (node to node only): every placement.heartbeat_ms each node reports itself and the
 * shards it hosts to the metadata leader. Field 1 is reserved in both messages: it held the msgpack
 * body of older nodes (InternalRequest/InternalResponse), so a heartbeat between nodes of the two
 * versions is refused (INVALID_ARGUMENT: a request without `node`), never misread.
 */
export interface HeartbeatRequest__Output {
  /**
   * the sender (required)
   */
  'node': (_tally_v1_HeartbeatNode__Output | null);
  /**
   * the version of the sender's partition map (0 = none yet)
   */
  'mapVersion': (string);
  /**
   * one per shard replica the sender hosts
   */
  'shards': (_tally_v1_ShardReport__Output)[];
}
