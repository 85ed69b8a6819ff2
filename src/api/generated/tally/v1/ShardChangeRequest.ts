// Original file: proto/tally.proto

import type { ShardChangeNode as _tally_v1_ShardChangeNode, ShardChangeNode__Output as _tally_v1_ShardChangeNode__Output } from '../../tally/v1/ShardChangeNode.js';
import type { ShardChangePromoteAndRemove as _tally_v1_ShardChangePromoteAndRemove, ShardChangePromoteAndRemove__Output as _tally_v1_ShardChangePromoteAndRemove__Output } from '../../tally/v1/ShardChangePromoteAndRemove.js';
import type { ShardChangeSplit as _tally_v1_ShardChangeSplit, ShardChangeSplit__Output as _tally_v1_ShardChangeSplit__Output } from '../../tally/v1/ShardChangeSplit.js';
import type { Long } from '@grpc/proto-loader';

/**
 * ShardChange (node to node only): a change the metadata leader asks of a shard's leader, applied
 * only if the shard is still at expected_epoch (a retried or stale request changes nothing). Field 1
 * is reserved in both messages, as in HeartbeatRequest: an older node's request has no action and is
 * refused (INVALID_ARGUMENT, nothing changed).
 */
export interface ShardChangeRequest {
  'shardId'?: (number);
  'expectedEpoch'?: (number | string | Long);
  /**
   * add node_id as a learner
   */
  'addLearner'?: (_tally_v1_ShardChangeNode | null);
  /**
   * one joint change: promote node_id, remove remove_id
   */
  'promoteAndRemove'?: (_tally_v1_ShardChangePromoteAndRemove | null);
  /**
   * make learner node_id a voter
   */
  'promote'?: (_tally_v1_ShardChangeNode | null);
  'remove'?: (_tally_v1_ShardChangeNode | null);
  'transferLeader'?: (_tally_v1_ShardChangeNode | null);
  'split'?: (_tally_v1_ShardChangeSplit | null);
  'action'?: "addLearner"|"promoteAndRemove"|"promote"|"remove"|"transferLeader"|"split";
}

/**
 * ShardChange (node to node only): a change the metadata leader asks of a shard's leader, applied
 * only if the shard is still at expected_epoch (a retried or stale request changes nothing). Field 1
 * is reserved in both messages, as in HeartbeatRequest: an older node's request has no action and is
 * refused (INVALID_ARGUMENT, nothing changed).
 */
export interface ShardChangeRequest__Output {
  'shardId': (number);
  'expectedEpoch': (string);
  /**
   * add node_id as a learner
   */
  'addLearner'?: (_tally_v1_ShardChangeNode__Output | null);
  /**
   * one joint change: promote node_id, remove remove_id
   */
  'promoteAndRemove'?: (_tally_v1_ShardChangePromoteAndRemove__Output | null);
  /**
   * make learner node_id a voter
   */
  'promote'?: (_tally_v1_ShardChangeNode__Output | null);
  'remove'?: (_tally_v1_ShardChangeNode__Output | null);
  'transferLeader'?: (_tally_v1_ShardChangeNode__Output | null);
  'split'?: (_tally_v1_ShardChangeSplit__Output | null);
  'action'?: "addLearner"|"promoteAndRemove"|"promote"|"remove"|"transferLeader"|"split";
}
