// Original file: proto/tally.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ClusterMapRequest as _tally_v1_ClusterMapRequest, ClusterMapRequest__Output as _tally_v1_ClusterMapRequest__Output } from '../../tally/v1/ClusterMapRequest.js';
import type { ClusterMapResponse as _tally_v1_ClusterMapResponse, ClusterMapResponse__Output as _tally_v1_ClusterMapResponse__Output } from '../../tally/v1/ClusterMapResponse.js';
import type { DeclareHotRequest as _tally_v1_DeclareHotRequest, DeclareHotRequest__Output as _tally_v1_DeclareHotRequest__Output } from '../../tally/v1/DeclareHotRequest.js';
import type { FailoverRequest as _tally_v1_FailoverRequest, FailoverRequest__Output as _tally_v1_FailoverRequest__Output } from '../../tally/v1/FailoverRequest.js';
import type { ForwardWriteRequest as _tally_v1_ForwardWriteRequest, ForwardWriteRequest__Output as _tally_v1_ForwardWriteRequest__Output } from '../../tally/v1/ForwardWriteRequest.js';
import type { ForwardWriteResponse as _tally_v1_ForwardWriteResponse, ForwardWriteResponse__Output as _tally_v1_ForwardWriteResponse__Output } from '../../tally/v1/ForwardWriteResponse.js';
import type { HeartbeatRequest as _tally_v1_HeartbeatRequest, HeartbeatRequest__Output as _tally_v1_HeartbeatRequest__Output } from '../../tally/v1/HeartbeatRequest.js';
import type { HeartbeatResponse as _tally_v1_HeartbeatResponse, HeartbeatResponse__Output as _tally_v1_HeartbeatResponse__Output } from '../../tally/v1/HeartbeatResponse.js';
import type { MetaChangeResponse as _tally_v1_MetaChangeResponse, MetaChangeResponse__Output as _tally_v1_MetaChangeResponse__Output } from '../../tally/v1/MetaChangeResponse.js';
import type { NodeAddRequest as _tally_v1_NodeAddRequest, NodeAddRequest__Output as _tally_v1_NodeAddRequest__Output } from '../../tally/v1/NodeAddRequest.js';
import type { NodeStateRequest as _tally_v1_NodeStateRequest, NodeStateRequest__Output as _tally_v1_NodeStateRequest__Output } from '../../tally/v1/NodeStateRequest.js';
import type { RebalanceRequest as _tally_v1_RebalanceRequest, RebalanceRequest__Output as _tally_v1_RebalanceRequest__Output } from '../../tally/v1/RebalanceRequest.js';
import type { RebalanceResponse as _tally_v1_RebalanceResponse, RebalanceResponse__Output as _tally_v1_RebalanceResponse__Output } from '../../tally/v1/RebalanceResponse.js';
import type { RecoverUnsafeRequest as _tally_v1_RecoverUnsafeRequest, RecoverUnsafeRequest__Output as _tally_v1_RecoverUnsafeRequest__Output } from '../../tally/v1/RecoverUnsafeRequest.js';
import type { ShardBackupChunk as _tally_v1_ShardBackupChunk, ShardBackupChunk__Output as _tally_v1_ShardBackupChunk__Output } from '../../tally/v1/ShardBackupChunk.js';
import type { ShardBackupRequest as _tally_v1_ShardBackupRequest, ShardBackupRequest__Output as _tally_v1_ShardBackupRequest__Output } from '../../tally/v1/ShardBackupRequest.js';
import type { ShardChangeRequest as _tally_v1_ShardChangeRequest, ShardChangeRequest__Output as _tally_v1_ShardChangeRequest__Output } from '../../tally/v1/ShardChangeRequest.js';
import type { ShardChangeResponse as _tally_v1_ShardChangeResponse, ShardChangeResponse__Output as _tally_v1_ShardChangeResponse__Output } from '../../tally/v1/ShardChangeResponse.js';
import type { ShardMoveRequest as _tally_v1_ShardMoveRequest, ShardMoveRequest__Output as _tally_v1_ShardMoveRequest__Output } from '../../tally/v1/ShardMoveRequest.js';
import type { ShardSplitRequest as _tally_v1_ShardSplitRequest, ShardSplitRequest__Output as _tally_v1_ShardSplitRequest__Output } from '../../tally/v1/ShardSplitRequest.js';
import type { StatusRequest as _tally_v1_StatusRequest, StatusRequest__Output as _tally_v1_StatusRequest__Output } from '../../tally/v1/StatusRequest.js';
import type { StatusResponse as _tally_v1_StatusResponse, StatusResponse__Output as _tally_v1_StatusResponse__Output } from '../../tally/v1/StatusResponse.js';
import type { TransferLeaderRequest as _tally_v1_TransferLeaderRequest, TransferLeaderRequest__Output as _tally_v1_TransferLeaderRequest__Output } from '../../tally/v1/TransferLeaderRequest.js';
import type { TransferLeaderResponse as _tally_v1_TransferLeaderResponse, TransferLeaderResponse__Output as _tally_v1_TransferLeaderResponse__Output } from '../../tally/v1/TransferLeaderResponse.js';

export interface AdminServiceClient extends grpc.Client {
  /**
   * The partition map as the metadata group holds it, with the metadata leader's view of liveness
   * and leadership. Any node answers from its copy; the metadata leader's is the freshest.
   */
  ClusterMap(argument: _tally_v1_ClusterMapRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterMapResponse__Output>): grpc.ClientUnaryCall;
  ClusterMap(argument: _tally_v1_ClusterMapRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_ClusterMapResponse__Output>): grpc.ClientUnaryCall;
  ClusterMap(argument: _tally_v1_ClusterMapRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterMapResponse__Output>): grpc.ClientUnaryCall;
  ClusterMap(argument: _tally_v1_ClusterMapRequest, callback: grpc.requestCallback<_tally_v1_ClusterMapResponse__Output>): grpc.ClientUnaryCall;
  /**
   * The partition map as the metadata group holds it, with the metadata leader's view of liveness
   * and leadership. Any node answers from its copy; the metadata leader's is the freshest.
   */
  clusterMap(argument: _tally_v1_ClusterMapRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterMapResponse__Output>): grpc.ClientUnaryCall;
  clusterMap(argument: _tally_v1_ClusterMapRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_ClusterMapResponse__Output>): grpc.ClientUnaryCall;
  clusterMap(argument: _tally_v1_ClusterMapRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterMapResponse__Output>): grpc.ClientUnaryCall;
  clusterMap(argument: _tally_v1_ClusterMapRequest, callback: grpc.requestCallback<_tally_v1_ClusterMapResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Declares a hot counter over sub_counters sub-counters, or raises the count (never lowers it).
   */
  DeclareHot(argument: _tally_v1_DeclareHotRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  DeclareHot(argument: _tally_v1_DeclareHotRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  DeclareHot(argument: _tally_v1_DeclareHotRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  DeclareHot(argument: _tally_v1_DeclareHotRequest, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Declares a hot counter over sub_counters sub-counters, or raises the count (never lowers it).
   */
  declareHot(argument: _tally_v1_DeclareHotRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  declareHot(argument: _tally_v1_DeclareHotRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  declareHot(argument: _tally_v1_DeclareHotRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  declareHot(argument: _tally_v1_DeclareHotRequest, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  
  Failover(argument: _tally_v1_FailoverRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_RebalanceResponse__Output>): grpc.ClientUnaryCall;
  Failover(argument: _tally_v1_FailoverRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_RebalanceResponse__Output>): grpc.ClientUnaryCall;
  Failover(argument: _tally_v1_FailoverRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_RebalanceResponse__Output>): grpc.ClientUnaryCall;
  Failover(argument: _tally_v1_FailoverRequest, callback: grpc.requestCallback<_tally_v1_RebalanceResponse__Output>): grpc.ClientUnaryCall;
  failover(argument: _tally_v1_FailoverRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_RebalanceResponse__Output>): grpc.ClientUnaryCall;
  failover(argument: _tally_v1_FailoverRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_RebalanceResponse__Output>): grpc.ClientUnaryCall;
  failover(argument: _tally_v1_FailoverRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_RebalanceResponse__Output>): grpc.ClientUnaryCall;
  failover(argument: _tally_v1_FailoverRequest, callback: grpc.requestCallback<_tally_v1_RebalanceResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Node to node (not for clients): a request_id write that reached a node not leading its shard,
   * forwarded once to the leader with the caller's verified name (src/server/rpc/forwarding.ts).
   */
  ForwardWrite(argument: _tally_v1_ForwardWriteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ForwardWriteResponse__Output>): grpc.ClientUnaryCall;
  ForwardWrite(argument: _tally_v1_ForwardWriteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_ForwardWriteResponse__Output>): grpc.ClientUnaryCall;
  ForwardWrite(argument: _tally_v1_ForwardWriteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ForwardWriteResponse__Output>): grpc.ClientUnaryCall;
  ForwardWrite(argument: _tally_v1_ForwardWriteRequest, callback: grpc.requestCallback<_tally_v1_ForwardWriteResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Node to node (not for clients): a request_id write that reached a node not leading its shard,
   * forwarded once to the leader with the caller's verified name (src/server/rpc/forwarding.ts).
   */
  forwardWrite(argument: _tally_v1_ForwardWriteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ForwardWriteResponse__Output>): grpc.ClientUnaryCall;
  forwardWrite(argument: _tally_v1_ForwardWriteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_ForwardWriteResponse__Output>): grpc.ClientUnaryCall;
  forwardWrite(argument: _tally_v1_ForwardWriteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ForwardWriteResponse__Output>): grpc.ClientUnaryCall;
  forwardWrite(argument: _tally_v1_ForwardWriteRequest, callback: grpc.requestCallback<_tally_v1_ForwardWriteResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Node to node (not for clients): a node's load report to the metadata leader, answered with the
   * partition map when the sender's copy is older; and a membership change (or leadership transfer,
   * or split) the metadata leader asks of a shard's leader (src/server/meta-wire.ts).
   */
  Heartbeat(argument: _tally_v1_HeartbeatRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _tally_v1_HeartbeatRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _tally_v1_HeartbeatRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _tally_v1_HeartbeatRequest, callback: grpc.requestCallback<_tally_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Node to node (not for clients): a node's load report to the metadata leader, answered with the
   * partition map when the sender's copy is older; and a membership change (or leadership transfer,
   * or split) the metadata leader asks of a shard's leader (src/server/meta-wire.ts).
   */
  heartbeat(argument: _tally_v1_HeartbeatRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _tally_v1_HeartbeatRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _tally_v1_HeartbeatRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _tally_v1_HeartbeatRequest, callback: grpc.requestCallback<_tally_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Membership and placement: answered by the metadata leader (others reply NOT_LEADER with its
   * address). Each names what it changed.
   */
  NodeAdd(argument: _tally_v1_NodeAddRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  NodeAdd(argument: _tally_v1_NodeAddRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  NodeAdd(argument: _tally_v1_NodeAddRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  NodeAdd(argument: _tally_v1_NodeAddRequest, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Membership and placement: answered by the metadata leader (others reply NOT_LEADER with its
   * address). Each names what it changed.
   */
  nodeAdd(argument: _tally_v1_NodeAddRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  nodeAdd(argument: _tally_v1_NodeAddRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  nodeAdd(argument: _tally_v1_NodeAddRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  nodeAdd(argument: _tally_v1_NodeAddRequest, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  
  NodeState(argument: _tally_v1_NodeStateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  NodeState(argument: _tally_v1_NodeStateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  NodeState(argument: _tally_v1_NodeStateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  NodeState(argument: _tally_v1_NodeStateRequest, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  nodeState(argument: _tally_v1_NodeStateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  nodeState(argument: _tally_v1_NodeStateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  nodeState(argument: _tally_v1_NodeStateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  nodeState(argument: _tally_v1_NodeStateRequest, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  
  Rebalance(argument: _tally_v1_RebalanceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_RebalanceResponse__Output>): grpc.ClientUnaryCall;
  Rebalance(argument: _tally_v1_RebalanceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_RebalanceResponse__Output>): grpc.ClientUnaryCall;
  Rebalance(argument: _tally_v1_RebalanceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_RebalanceResponse__Output>): grpc.ClientUnaryCall;
  Rebalance(argument: _tally_v1_RebalanceRequest, callback: grpc.requestCallback<_tally_v1_RebalanceResponse__Output>): grpc.ClientUnaryCall;
  rebalance(argument: _tally_v1_RebalanceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_RebalanceResponse__Output>): grpc.ClientUnaryCall;
  rebalance(argument: _tally_v1_RebalanceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_RebalanceResponse__Output>): grpc.ClientUnaryCall;
  rebalance(argument: _tally_v1_RebalanceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_RebalanceResponse__Output>): grpc.ClientUnaryCall;
  rebalance(argument: _tally_v1_RebalanceRequest, callback: grpc.requestCallback<_tally_v1_RebalanceResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Last resort for a shard whose quorum is lost forever: makes this node's replica the only voter.
   */
  RecoverUnsafe(argument: _tally_v1_RecoverUnsafeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  RecoverUnsafe(argument: _tally_v1_RecoverUnsafeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  RecoverUnsafe(argument: _tally_v1_RecoverUnsafeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  RecoverUnsafe(argument: _tally_v1_RecoverUnsafeRequest, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Last resort for a shard whose quorum is lost forever: makes this node's replica the only voter.
   */
  recoverUnsafe(argument: _tally_v1_RecoverUnsafeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  recoverUnsafe(argument: _tally_v1_RecoverUnsafeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  recoverUnsafe(argument: _tally_v1_RecoverUnsafeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  recoverUnsafe(argument: _tally_v1_RecoverUnsafeRequest, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Backup (tallyctl backup): the shard's leader takes a snapshot of the shard at an applied index
   * at or above a ReadIndex (linearizable) and streams it in chunks of at most 1 MiB. Other
   * replicas answer NOT_LEADER with the leader's address.
   */
  ShardBackup(argument: _tally_v1_ShardBackupRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_tally_v1_ShardBackupChunk__Output>;
  ShardBackup(argument: _tally_v1_ShardBackupRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_tally_v1_ShardBackupChunk__Output>;
  /**
   * Backup (tallyctl backup): the shard's leader takes a snapshot of the shard at an applied index
   * at or above a ReadIndex (linearizable) and streams it in chunks of at most 1 MiB. Other
   * replicas answer NOT_LEADER with the leader's address.
   */
  shardBackup(argument: _tally_v1_ShardBackupRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_tally_v1_ShardBackupChunk__Output>;
  shardBackup(argument: _tally_v1_ShardBackupRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_tally_v1_ShardBackupChunk__Output>;
  
  ShardChange(argument: _tally_v1_ShardChangeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ShardChangeResponse__Output>): grpc.ClientUnaryCall;
  ShardChange(argument: _tally_v1_ShardChangeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_ShardChangeResponse__Output>): grpc.ClientUnaryCall;
  ShardChange(argument: _tally_v1_ShardChangeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ShardChangeResponse__Output>): grpc.ClientUnaryCall;
  ShardChange(argument: _tally_v1_ShardChangeRequest, callback: grpc.requestCallback<_tally_v1_ShardChangeResponse__Output>): grpc.ClientUnaryCall;
  shardChange(argument: _tally_v1_ShardChangeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ShardChangeResponse__Output>): grpc.ClientUnaryCall;
  shardChange(argument: _tally_v1_ShardChangeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_ShardChangeResponse__Output>): grpc.ClientUnaryCall;
  shardChange(argument: _tally_v1_ShardChangeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ShardChangeResponse__Output>): grpc.ClientUnaryCall;
  shardChange(argument: _tally_v1_ShardChangeRequest, callback: grpc.requestCallback<_tally_v1_ShardChangeResponse__Output>): grpc.ClientUnaryCall;
  
  ShardMove(argument: _tally_v1_ShardMoveRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  ShardMove(argument: _tally_v1_ShardMoveRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  ShardMove(argument: _tally_v1_ShardMoveRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  ShardMove(argument: _tally_v1_ShardMoveRequest, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  shardMove(argument: _tally_v1_ShardMoveRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  shardMove(argument: _tally_v1_ShardMoveRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  shardMove(argument: _tally_v1_ShardMoveRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  shardMove(argument: _tally_v1_ShardMoveRequest, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Splits a shard's slot range in two at a slot boundary (default: where its recent load halves).
   */
  ShardSplit(argument: _tally_v1_ShardSplitRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  ShardSplit(argument: _tally_v1_ShardSplitRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  ShardSplit(argument: _tally_v1_ShardSplitRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  ShardSplit(argument: _tally_v1_ShardSplitRequest, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Splits a shard's slot range in two at a slot boundary (default: where its recent load halves).
   */
  shardSplit(argument: _tally_v1_ShardSplitRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  shardSplit(argument: _tally_v1_ShardSplitRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  shardSplit(argument: _tally_v1_ShardSplitRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  shardSplit(argument: _tally_v1_ShardSplitRequest, callback: grpc.requestCallback<_tally_v1_MetaChangeResponse__Output>): grpc.ClientUnaryCall;
  
  Status(argument: _tally_v1_StatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  Status(argument: _tally_v1_StatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  Status(argument: _tally_v1_StatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  Status(argument: _tally_v1_StatusRequest, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _tally_v1_StatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _tally_v1_StatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _tally_v1_StatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _tally_v1_StatusRequest, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Asks the shard's leader (call it on the leader's node) to hand leadership to another voter,
   * and answers once that voter leads (as etcd's MoveLeader). UNAVAILABLE when it did not within
   * about four election timeouts (the target is behind or unreachable; nothing changed, retry);
   * NOT_LEADER when called on another node.
   */
  TransferLeader(argument: _tally_v1_TransferLeaderRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_TransferLeaderResponse__Output>): grpc.ClientUnaryCall;
  TransferLeader(argument: _tally_v1_TransferLeaderRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_TransferLeaderResponse__Output>): grpc.ClientUnaryCall;
  TransferLeader(argument: _tally_v1_TransferLeaderRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_TransferLeaderResponse__Output>): grpc.ClientUnaryCall;
  TransferLeader(argument: _tally_v1_TransferLeaderRequest, callback: grpc.requestCallback<_tally_v1_TransferLeaderResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Asks the shard's leader (call it on the leader's node) to hand leadership to another voter,
   * and answers once that voter leads (as etcd's MoveLeader). UNAVAILABLE when it did not within
   * about four election timeouts (the target is behind or unreachable; nothing changed, retry);
   * NOT_LEADER when called on another node.
   */
  transferLeader(argument: _tally_v1_TransferLeaderRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_TransferLeaderResponse__Output>): grpc.ClientUnaryCall;
  transferLeader(argument: _tally_v1_TransferLeaderRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_TransferLeaderResponse__Output>): grpc.ClientUnaryCall;
  transferLeader(argument: _tally_v1_TransferLeaderRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_TransferLeaderResponse__Output>): grpc.ClientUnaryCall;
  transferLeader(argument: _tally_v1_TransferLeaderRequest, callback: grpc.requestCallback<_tally_v1_TransferLeaderResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface AdminServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * The partition map as the metadata group holds it, with the metadata leader's view of liveness
   * and leadership. Any node answers from its copy; the metadata leader's is the freshest.
   */
  ClusterMap: grpc.handleUnaryCall<_tally_v1_ClusterMapRequest__Output, _tally_v1_ClusterMapResponse>;
  
  /**
   * Declares a hot counter over sub_counters sub-counters, or raises the count (never lowers it).
   */
  DeclareHot: grpc.handleUnaryCall<_tally_v1_DeclareHotRequest__Output, _tally_v1_MetaChangeResponse>;
  
  Failover: grpc.handleUnaryCall<_tally_v1_FailoverRequest__Output, _tally_v1_RebalanceResponse>;
  
  /**
   * Node to node (not for clients): a request_id write that reached a node not leading its shard,
   * forwarded once to the leader with the caller's verified name (src/server/rpc/forwarding.ts).
   */
  ForwardWrite: grpc.handleUnaryCall<_tally_v1_ForwardWriteRequest__Output, _tally_v1_ForwardWriteResponse>;
  
  /**
   * Node to node (not for clients): a node's load report to the metadata leader, answered with the
   * partition map when the sender's copy is older; and a membership change (or leadership transfer,
   * or split) the metadata leader asks of a shard's leader (src/server/meta-wire.ts).
   */
  Heartbeat: grpc.handleUnaryCall<_tally_v1_HeartbeatRequest__Output, _tally_v1_HeartbeatResponse>;
  
  /**
   * Membership and placement: answered by the metadata leader (others reply NOT_LEADER with its
   * address). Each names what it changed.
   */
  NodeAdd: grpc.handleUnaryCall<_tally_v1_NodeAddRequest__Output, _tally_v1_MetaChangeResponse>;
  
  NodeState: grpc.handleUnaryCall<_tally_v1_NodeStateRequest__Output, _tally_v1_MetaChangeResponse>;
  
  Rebalance: grpc.handleUnaryCall<_tally_v1_RebalanceRequest__Output, _tally_v1_RebalanceResponse>;
  
  /**
   * Last resort for a shard whose quorum is lost forever: makes this node's replica the only voter.
   */
  RecoverUnsafe: grpc.handleUnaryCall<_tally_v1_RecoverUnsafeRequest__Output, _tally_v1_MetaChangeResponse>;
  
  /**
   * Backup (tallyctl backup): the shard's leader takes a snapshot of the shard at an applied index
   * at or above a ReadIndex (linearizable) and streams it in chunks of at most 1 MiB. Other
   * replicas answer NOT_LEADER with the leader's address.
   */
  ShardBackup: grpc.handleServerStreamingCall<_tally_v1_ShardBackupRequest__Output, _tally_v1_ShardBackupChunk>;
  
  ShardChange: grpc.handleUnaryCall<_tally_v1_ShardChangeRequest__Output, _tally_v1_ShardChangeResponse>;
  
  ShardMove: grpc.handleUnaryCall<_tally_v1_ShardMoveRequest__Output, _tally_v1_MetaChangeResponse>;
  
  /**
   * Splits a shard's slot range in two at a slot boundary (default: where its recent load halves).
   */
  ShardSplit: grpc.handleUnaryCall<_tally_v1_ShardSplitRequest__Output, _tally_v1_MetaChangeResponse>;
  
  Status: grpc.handleUnaryCall<_tally_v1_StatusRequest__Output, _tally_v1_StatusResponse>;
  
  /**
   * Asks the shard's leader (call it on the leader's node) to hand leadership to another voter,
   * and answers once that voter leads (as etcd's MoveLeader). UNAVAILABLE when it did not within
   * about four election timeouts (the target is behind or unreachable; nothing changed, retry);
   * NOT_LEADER when called on another node.
   */
  TransferLeader: grpc.handleUnaryCall<_tally_v1_TransferLeaderRequest__Output, _tally_v1_TransferLeaderResponse>;
  
}

export interface AdminServiceDefinition extends grpc.ServiceDefinition {
  ClusterMap: MethodDefinition<_tally_v1_ClusterMapRequest, _tally_v1_ClusterMapResponse, _tally_v1_ClusterMapRequest__Output, _tally_v1_ClusterMapResponse__Output>
  DeclareHot: MethodDefinition<_tally_v1_DeclareHotRequest, _tally_v1_MetaChangeResponse, _tally_v1_DeclareHotRequest__Output, _tally_v1_MetaChangeResponse__Output>
  Failover: MethodDefinition<_tally_v1_FailoverRequest, _tally_v1_RebalanceResponse, _tally_v1_FailoverRequest__Output, _tally_v1_RebalanceResponse__Output>
  ForwardWrite: MethodDefinition<_tally_v1_ForwardWriteRequest, _tally_v1_ForwardWriteResponse, _tally_v1_ForwardWriteRequest__Output, _tally_v1_ForwardWriteResponse__Output>
  Heartbeat: MethodDefinition<_tally_v1_HeartbeatRequest, _tally_v1_HeartbeatResponse, _tally_v1_HeartbeatRequest__Output, _tally_v1_HeartbeatResponse__Output>
  NodeAdd: MethodDefinition<_tally_v1_NodeAddRequest, _tally_v1_MetaChangeResponse, _tally_v1_NodeAddRequest__Output, _tally_v1_MetaChangeResponse__Output>
  NodeState: MethodDefinition<_tally_v1_NodeStateRequest, _tally_v1_MetaChangeResponse, _tally_v1_NodeStateRequest__Output, _tally_v1_MetaChangeResponse__Output>
  Rebalance: MethodDefinition<_tally_v1_RebalanceRequest, _tally_v1_RebalanceResponse, _tally_v1_RebalanceRequest__Output, _tally_v1_RebalanceResponse__Output>
  RecoverUnsafe: MethodDefinition<_tally_v1_RecoverUnsafeRequest, _tally_v1_MetaChangeResponse, _tally_v1_RecoverUnsafeRequest__Output, _tally_v1_MetaChangeResponse__Output>
  ShardBackup: MethodDefinition<_tally_v1_ShardBackupRequest, _tally_v1_ShardBackupChunk, _tally_v1_ShardBackupRequest__Output, _tally_v1_ShardBackupChunk__Output>
  ShardChange: MethodDefinition<_tally_v1_ShardChangeRequest, _tally_v1_ShardChangeResponse, _tally_v1_ShardChangeRequest__Output, _tally_v1_ShardChangeResponse__Output>
  ShardMove: MethodDefinition<_tally_v1_ShardMoveRequest, _tally_v1_MetaChangeResponse, _tally_v1_ShardMoveRequest__Output, _tally_v1_MetaChangeResponse__Output>
  ShardSplit: MethodDefinition<_tally_v1_ShardSplitRequest, _tally_v1_MetaChangeResponse, _tally_v1_ShardSplitRequest__Output, _tally_v1_MetaChangeResponse__Output>
  Status: MethodDefinition<_tally_v1_StatusRequest, _tally_v1_StatusResponse, _tally_v1_StatusRequest__Output, _tally_v1_StatusResponse__Output>
  TransferLeader: MethodDefinition<_tally_v1_TransferLeaderRequest, _tally_v1_TransferLeaderResponse, _tally_v1_TransferLeaderRequest__Output, _tally_v1_TransferLeaderResponse__Output>
}
