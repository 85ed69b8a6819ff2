import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { AddOp as _tally_v1_AddOp, AddOp__Output as _tally_v1_AddOp__Output } from './tally/v1/AddOp.js';
import type { AddRequest as _tally_v1_AddRequest, AddRequest__Output as _tally_v1_AddRequest__Output } from './tally/v1/AddRequest.js';
import type { AdminServiceClient as _tally_v1_AdminServiceClient, AdminServiceDefinition as _tally_v1_AdminServiceDefinition } from './tally/v1/AdminService.js';
import type { AggregateRequest as _tally_v1_AggregateRequest, AggregateRequest__Output as _tally_v1_AggregateRequest__Output } from './tally/v1/AggregateRequest.js';
import type { AggregateResponse as _tally_v1_AggregateResponse, AggregateResponse__Output as _tally_v1_AggregateResponse__Output } from './tally/v1/AggregateResponse.js';
import type { BatchOp as _tally_v1_BatchOp, BatchOp__Output as _tally_v1_BatchOp__Output } from './tally/v1/BatchOp.js';
import type { BatchRequest as _tally_v1_BatchRequest, BatchRequest__Output as _tally_v1_BatchRequest__Output } from './tally/v1/BatchRequest.js';
import type { BatchResponse as _tally_v1_BatchResponse, BatchResponse__Output as _tally_v1_BatchResponse__Output } from './tally/v1/BatchResponse.js';
import type { ClusterMapRequest as _tally_v1_ClusterMapRequest, ClusterMapRequest__Output as _tally_v1_ClusterMapRequest__Output } from './tally/v1/ClusterMapRequest.js';
import type { ClusterMapResponse as _tally_v1_ClusterMapResponse, ClusterMapResponse__Output as _tally_v1_ClusterMapResponse__Output } from './tally/v1/ClusterMapResponse.js';
import type { CompareAndSetOp as _tally_v1_CompareAndSetOp, CompareAndSetOp__Output as _tally_v1_CompareAndSetOp__Output } from './tally/v1/CompareAndSetOp.js';
import type { CompareAndSetRequest as _tally_v1_CompareAndSetRequest, CompareAndSetRequest__Output as _tally_v1_CompareAndSetRequest__Output } from './tally/v1/CompareAndSetRequest.js';
import type { CounterServiceClient as _tally_v1_CounterServiceClient, CounterServiceDefinition as _tally_v1_CounterServiceDefinition } from './tally/v1/CounterService.js';
import type { DeclareHotRequest as _tally_v1_DeclareHotRequest, DeclareHotRequest__Output as _tally_v1_DeclareHotRequest__Output } from './tally/v1/DeclareHotRequest.js';
import type { ErrorInfo as _tally_v1_ErrorInfo, ErrorInfo__Output as _tally_v1_ErrorInfo__Output } from './tally/v1/ErrorInfo.js';
import type { EventualAddRequest as _tally_v1_EventualAddRequest, EventualAddRequest__Output as _tally_v1_EventualAddRequest__Output } from './tally/v1/EventualAddRequest.js';
import type { EventualAddResponse as _tally_v1_EventualAddResponse, EventualAddResponse__Output as _tally_v1_EventualAddResponse__Output } from './tally/v1/EventualAddResponse.js';
import type { EventualGetRequest as _tally_v1_EventualGetRequest, EventualGetRequest__Output as _tally_v1_EventualGetRequest__Output } from './tally/v1/EventualGetRequest.js';
import type { EventualGetResponse as _tally_v1_EventualGetResponse, EventualGetResponse__Output as _tally_v1_EventualGetResponse__Output } from './tally/v1/EventualGetResponse.js';
import type { FailoverRequest as _tally_v1_FailoverRequest, FailoverRequest__Output as _tally_v1_FailoverRequest__Output } from './tally/v1/FailoverRequest.js';
import type { Fence as _tally_v1_Fence, Fence__Output as _tally_v1_Fence__Output } from './tally/v1/Fence.js';
import type { ForwardWriteRequest as _tally_v1_ForwardWriteRequest, ForwardWriteRequest__Output as _tally_v1_ForwardWriteRequest__Output } from './tally/v1/ForwardWriteRequest.js';
import type { ForwardWriteResponse as _tally_v1_ForwardWriteResponse, ForwardWriteResponse__Output as _tally_v1_ForwardWriteResponse__Output } from './tally/v1/ForwardWriteResponse.js';
import type { GetManyRequest as _tally_v1_GetManyRequest, GetManyRequest__Output as _tally_v1_GetManyRequest__Output } from './tally/v1/GetManyRequest.js';
import type { GetManyResponse as _tally_v1_GetManyResponse, GetManyResponse__Output as _tally_v1_GetManyResponse__Output } from './tally/v1/GetManyResponse.js';
import type { GetRequest as _tally_v1_GetRequest, GetRequest__Output as _tally_v1_GetRequest__Output } from './tally/v1/GetRequest.js';
import type { GetResponse as _tally_v1_GetResponse, GetResponse__Output as _tally_v1_GetResponse__Output } from './tally/v1/GetResponse.js';
import type { GroupStatus as _tally_v1_GroupStatus, GroupStatus__Output as _tally_v1_GroupStatus__Output } from './tally/v1/GroupStatus.js';
import type { HeartbeatNode as _tally_v1_HeartbeatNode, HeartbeatNode__Output as _tally_v1_HeartbeatNode__Output } from './tally/v1/HeartbeatNode.js';
import type { HeartbeatRequest as _tally_v1_HeartbeatRequest, HeartbeatRequest__Output as _tally_v1_HeartbeatRequest__Output } from './tally/v1/HeartbeatRequest.js';
import type { HeartbeatResponse as _tally_v1_HeartbeatResponse, HeartbeatResponse__Output as _tally_v1_HeartbeatResponse__Output } from './tally/v1/HeartbeatResponse.js';
import type { HotRoute as _tally_v1_HotRoute, HotRoute__Output as _tally_v1_HotRoute__Output } from './tally/v1/HotRoute.js';
import type { InternalRequest as _tally_v1_InternalRequest, InternalRequest__Output as _tally_v1_InternalRequest__Output } from './tally/v1/InternalRequest.js';
import type { InternalResponse as _tally_v1_InternalResponse, InternalResponse__Output as _tally_v1_InternalResponse__Output } from './tally/v1/InternalResponse.js';
import type { KeepAliveRequest as _tally_v1_KeepAliveRequest, KeepAliveRequest__Output as _tally_v1_KeepAliveRequest__Output } from './tally/v1/KeepAliveRequest.js';
import type { KeepAliveResponse as _tally_v1_KeepAliveResponse, KeepAliveResponse__Output as _tally_v1_KeepAliveResponse__Output } from './tally/v1/KeepAliveResponse.js';
import type { KeyValue as _tally_v1_KeyValue, KeyValue__Output as _tally_v1_KeyValue__Output } from './tally/v1/KeyValue.js';
import type { MapNode as _tally_v1_MapNode, MapNode__Output as _tally_v1_MapNode__Output } from './tally/v1/MapNode.js';
import type { MapOperation as _tally_v1_MapOperation, MapOperation__Output as _tally_v1_MapOperation__Output } from './tally/v1/MapOperation.js';
import type { MapShard as _tally_v1_MapShard, MapShard__Output as _tally_v1_MapShard__Output } from './tally/v1/MapShard.js';
import type { MetaChangeResponse as _tally_v1_MetaChangeResponse, MetaChangeResponse__Output as _tally_v1_MetaChangeResponse__Output } from './tally/v1/MetaChangeResponse.js';
import type { MetaMembership as _tally_v1_MetaMembership, MetaMembership__Output as _tally_v1_MetaMembership__Output } from './tally/v1/MetaMembership.js';
import type { MutationResponse as _tally_v1_MutationResponse, MutationResponse__Output as _tally_v1_MutationResponse__Output } from './tally/v1/MutationResponse.js';
import type { NodeAddRequest as _tally_v1_NodeAddRequest, NodeAddRequest__Output as _tally_v1_NodeAddRequest__Output } from './tally/v1/NodeAddRequest.js';
import type { NodeStateRequest as _tally_v1_NodeStateRequest, NodeStateRequest__Output as _tally_v1_NodeStateRequest__Output } from './tally/v1/NodeStateRequest.js';
import type { NodeStats as _tally_v1_NodeStats, NodeStats__Output as _tally_v1_NodeStats__Output } from './tally/v1/NodeStats.js';
import type { NodeStatus as _tally_v1_NodeStatus, NodeStatus__Output as _tally_v1_NodeStatus__Output } from './tally/v1/NodeStatus.js';
import type { OpResult as _tally_v1_OpResult, OpResult__Output as _tally_v1_OpResult__Output } from './tally/v1/OpResult.js';
import type { PartitionMap as _tally_v1_PartitionMap, PartitionMap__Output as _tally_v1_PartitionMap__Output } from './tally/v1/PartitionMap.js';
import type { PartitionMapHot as _tally_v1_PartitionMapHot, PartitionMapHot__Output as _tally_v1_PartitionMapHot__Output } from './tally/v1/PartitionMapHot.js';
import type { PartitionMapNode as _tally_v1_PartitionMapNode, PartitionMapNode__Output as _tally_v1_PartitionMapNode__Output } from './tally/v1/PartitionMapNode.js';
import type { PartitionMapOperation as _tally_v1_PartitionMapOperation, PartitionMapOperation__Output as _tally_v1_PartitionMapOperation__Output } from './tally/v1/PartitionMapOperation.js';
import type { PartitionMapShard as _tally_v1_PartitionMapShard, PartitionMapShard__Output as _tally_v1_PartitionMapShard__Output } from './tally/v1/PartitionMapShard.js';
import type { PeerLag as _tally_v1_PeerLag, PeerLag__Output as _tally_v1_PeerLag__Output } from './tally/v1/PeerLag.js';
import type { PeerMatch as _tally_v1_PeerMatch, PeerMatch__Output as _tally_v1_PeerMatch__Output } from './tally/v1/PeerMatch.js';
import type { PipelineRequest as _tally_v1_PipelineRequest, PipelineRequest__Output as _tally_v1_PipelineRequest__Output } from './tally/v1/PipelineRequest.js';
import type { PipelineRequestBatch as _tally_v1_PipelineRequestBatch, PipelineRequestBatch__Output as _tally_v1_PipelineRequestBatch__Output } from './tally/v1/PipelineRequestBatch.js';
import type { PipelineResponse as _tally_v1_PipelineResponse, PipelineResponse__Output as _tally_v1_PipelineResponse__Output } from './tally/v1/PipelineResponse.js';
import type { PipelineResponseBatch as _tally_v1_PipelineResponseBatch, PipelineResponseBatch__Output as _tally_v1_PipelineResponseBatch__Output } from './tally/v1/PipelineResponseBatch.js';
import type { PlannedChange as _tally_v1_PlannedChange, PlannedChange__Output as _tally_v1_PlannedChange__Output } from './tally/v1/PlannedChange.js';
import type { RebalanceRequest as _tally_v1_RebalanceRequest, RebalanceRequest__Output as _tally_v1_RebalanceRequest__Output } from './tally/v1/RebalanceRequest.js';
import type { RebalanceResponse as _tally_v1_RebalanceResponse, RebalanceResponse__Output as _tally_v1_RebalanceResponse__Output } from './tally/v1/RebalanceResponse.js';
import type { RecoverUnsafeRequest as _tally_v1_RecoverUnsafeRequest, RecoverUnsafeRequest__Output as _tally_v1_RecoverUnsafeRequest__Output } from './tally/v1/RecoverUnsafeRequest.js';
import type { RegisterSessionRequest as _tally_v1_RegisterSessionRequest, RegisterSessionRequest__Output as _tally_v1_RegisterSessionRequest__Output } from './tally/v1/RegisterSessionRequest.js';
import type { RegisterSessionResponse as _tally_v1_RegisterSessionResponse, RegisterSessionResponse__Output as _tally_v1_RegisterSessionResponse__Output } from './tally/v1/RegisterSessionResponse.js';
import type { ReplicaInfo as _tally_v1_ReplicaInfo, ReplicaInfo__Output as _tally_v1_ReplicaInfo__Output } from './tally/v1/ReplicaInfo.js';
import type { RequestHeader as _tally_v1_RequestHeader, RequestHeader__Output as _tally_v1_RequestHeader__Output } from './tally/v1/RequestHeader.js';
import type { ResetOp as _tally_v1_ResetOp, ResetOp__Output as _tally_v1_ResetOp__Output } from './tally/v1/ResetOp.js';
import type { ResetRequest as _tally_v1_ResetRequest, ResetRequest__Output as _tally_v1_ResetRequest__Output } from './tally/v1/ResetRequest.js';
import type { RoutesRequest as _tally_v1_RoutesRequest, RoutesRequest__Output as _tally_v1_RoutesRequest__Output } from './tally/v1/RoutesRequest.js';
import type { RoutesResponse as _tally_v1_RoutesResponse, RoutesResponse__Output as _tally_v1_RoutesResponse__Output } from './tally/v1/RoutesResponse.js';
import type { SetOp as _tally_v1_SetOp, SetOp__Output as _tally_v1_SetOp__Output } from './tally/v1/SetOp.js';
import type { SetRequest as _tally_v1_SetRequest, SetRequest__Output as _tally_v1_SetRequest__Output } from './tally/v1/SetRequest.js';
import type { ShardAnswer as _tally_v1_ShardAnswer, ShardAnswer__Output as _tally_v1_ShardAnswer__Output } from './tally/v1/ShardAnswer.js';
import type { ShardBackupChunk as _tally_v1_ShardBackupChunk, ShardBackupChunk__Output as _tally_v1_ShardBackupChunk__Output } from './tally/v1/ShardBackupChunk.js';
import type { ShardBackupRequest as _tally_v1_ShardBackupRequest, ShardBackupRequest__Output as _tally_v1_ShardBackupRequest__Output } from './tally/v1/ShardBackupRequest.js';
import type { ShardChangeNode as _tally_v1_ShardChangeNode, ShardChangeNode__Output as _tally_v1_ShardChangeNode__Output } from './tally/v1/ShardChangeNode.js';
import type { ShardChangePromoteAndRemove as _tally_v1_ShardChangePromoteAndRemove, ShardChangePromoteAndRemove__Output as _tally_v1_ShardChangePromoteAndRemove__Output } from './tally/v1/ShardChangePromoteAndRemove.js';
import type { ShardChangeRequest as _tally_v1_ShardChangeRequest, ShardChangeRequest__Output as _tally_v1_ShardChangeRequest__Output } from './tally/v1/ShardChangeRequest.js';
import type { ShardChangeResponse as _tally_v1_ShardChangeResponse, ShardChangeResponse__Output as _tally_v1_ShardChangeResponse__Output } from './tally/v1/ShardChangeResponse.js';
import type { ShardChangeSplit as _tally_v1_ShardChangeSplit, ShardChangeSplit__Output as _tally_v1_ShardChangeSplit__Output } from './tally/v1/ShardChangeSplit.js';
import type { ShardMoveRequest as _tally_v1_ShardMoveRequest, ShardMoveRequest__Output as _tally_v1_ShardMoveRequest__Output } from './tally/v1/ShardMoveRequest.js';
import type { ShardReport as _tally_v1_ShardReport, ShardReport__Output as _tally_v1_ShardReport__Output } from './tally/v1/ShardReport.js';
import type { ShardRoute as _tally_v1_ShardRoute, ShardRoute__Output as _tally_v1_ShardRoute__Output } from './tally/v1/ShardRoute.js';
import type { ShardSplitRequest as _tally_v1_ShardSplitRequest, ShardSplitRequest__Output as _tally_v1_ShardSplitRequest__Output } from './tally/v1/ShardSplitRequest.js';
import type { StatusRequest as _tally_v1_StatusRequest, StatusRequest__Output as _tally_v1_StatusRequest__Output } from './tally/v1/StatusRequest.js';
import type { StatusResponse as _tally_v1_StatusResponse, StatusResponse__Output as _tally_v1_StatusResponse__Output } from './tally/v1/StatusResponse.js';
import type { TopKRequest as _tally_v1_TopKRequest, TopKRequest__Output as _tally_v1_TopKRequest__Output } from './tally/v1/TopKRequest.js';
import type { TopKResponse as _tally_v1_TopKResponse, TopKResponse__Output as _tally_v1_TopKResponse__Output } from './tally/v1/TopKResponse.js';
import type { TransferLeaderRequest as _tally_v1_TransferLeaderRequest, TransferLeaderRequest__Output as _tally_v1_TransferLeaderRequest__Output } from './tally/v1/TransferLeaderRequest.js';
import type { TransferLeaderResponse as _tally_v1_TransferLeaderResponse, TransferLeaderResponse__Output as _tally_v1_TransferLeaderResponse__Output } from './tally/v1/TransferLeaderResponse.js';
import type { TryAcquireOp as _tally_v1_TryAcquireOp, TryAcquireOp__Output as _tally_v1_TryAcquireOp__Output } from './tally/v1/TryAcquireOp.js';
import type { UniqueAddOp as _tally_v1_UniqueAddOp, UniqueAddOp__Output as _tally_v1_UniqueAddOp__Output } from './tally/v1/UniqueAddOp.js';
import type { UniqueCountRequest as _tally_v1_UniqueCountRequest, UniqueCountRequest__Output as _tally_v1_UniqueCountRequest__Output } from './tally/v1/UniqueCountRequest.js';
import type { UniqueCountResponse as _tally_v1_UniqueCountResponse, UniqueCountResponse__Output as _tally_v1_UniqueCountResponse__Output } from './tally/v1/UniqueCountResponse.js';
import type { WatchBatch as _tally_v1_WatchBatch, WatchBatch__Output as _tally_v1_WatchBatch__Output } from './tally/v1/WatchBatch.js';
import type { WatchEvent as _tally_v1_WatchEvent, WatchEvent__Output as _tally_v1_WatchEvent__Output } from './tally/v1/WatchEvent.js';
import type { WatchRequest as _tally_v1_WatchRequest, WatchRequest__Output as _tally_v1_WatchRequest__Output } from './tally/v1/WatchRequest.js';
import type { WindowAddOp as _tally_v1_WindowAddOp, WindowAddOp__Output as _tally_v1_WindowAddOp__Output } from './tally/v1/WindowAddOp.js';
import type { WindowAtRequest as _tally_v1_WindowAtRequest, WindowAtRequest__Output as _tally_v1_WindowAtRequest__Output } from './tally/v1/WindowAtRequest.js';
import type { WindowAtResponse as _tally_v1_WindowAtResponse, WindowAtResponse__Output as _tally_v1_WindowAtResponse__Output } from './tally/v1/WindowAtResponse.js';
import type { WindowPoint as _tally_v1_WindowPoint, WindowPoint__Output as _tally_v1_WindowPoint__Output } from './tally/v1/WindowPoint.js';
import type { WindowRangeRequest as _tally_v1_WindowRangeRequest, WindowRangeRequest__Output as _tally_v1_WindowRangeRequest__Output } from './tally/v1/WindowRangeRequest.js';
import type { WindowRangeResponse as _tally_v1_WindowRangeResponse, WindowRangeResponse__Output as _tally_v1_WindowRangeResponse__Output } from './tally/v1/WindowRangeResponse.js';
import type { WriteFailure as _tally_v1_WriteFailure, WriteFailure__Output as _tally_v1_WriteFailure__Output } from './tally/v1/WriteFailure.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  tally: {
    v1: {
      AddOp: MessageTypeDefinition<_tally_v1_AddOp, _tally_v1_AddOp__Output>
      AddRequest: MessageTypeDefinition<_tally_v1_AddRequest, _tally_v1_AddRequest__Output>
      AdminService: SubtypeConstructor<typeof grpc.Client, _tally_v1_AdminServiceClient> & { service: _tally_v1_AdminServiceDefinition }
      AggregateRequest: MessageTypeDefinition<_tally_v1_AggregateRequest, _tally_v1_AggregateRequest__Output>
      AggregateResponse: MessageTypeDefinition<_tally_v1_AggregateResponse, _tally_v1_AggregateResponse__Output>
      BatchOp: MessageTypeDefinition<_tally_v1_BatchOp, _tally_v1_BatchOp__Output>
      BatchRequest: MessageTypeDefinition<_tally_v1_BatchRequest, _tally_v1_BatchRequest__Output>
      BatchResponse: MessageTypeDefinition<_tally_v1_BatchResponse, _tally_v1_BatchResponse__Output>
      ClusterMapRequest: MessageTypeDefinition<_tally_v1_ClusterMapRequest, _tally_v1_ClusterMapRequest__Output>
      ClusterMapResponse: MessageTypeDefinition<_tally_v1_ClusterMapResponse, _tally_v1_ClusterMapResponse__Output>
      CompareAndSetOp: MessageTypeDefinition<_tally_v1_CompareAndSetOp, _tally_v1_CompareAndSetOp__Output>
      CompareAndSetRequest: MessageTypeDefinition<_tally_v1_CompareAndSetRequest, _tally_v1_CompareAndSetRequest__Output>
      Consistency: EnumTypeDefinition
      CounterService: SubtypeConstructor<typeof grpc.Client, _tally_v1_CounterServiceClient> & { service: _tally_v1_CounterServiceDefinition }
      DeclareHotRequest: MessageTypeDefinition<_tally_v1_DeclareHotRequest, _tally_v1_DeclareHotRequest__Output>
      ErrorInfo: MessageTypeDefinition<_tally_v1_ErrorInfo, _tally_v1_ErrorInfo__Output>
      EventualAddRequest: MessageTypeDefinition<_tally_v1_EventualAddRequest, _tally_v1_EventualAddRequest__Output>
      EventualAddResponse: MessageTypeDefinition<_tally_v1_EventualAddResponse, _tally_v1_EventualAddResponse__Output>
      EventualGetRequest: MessageTypeDefinition<_tally_v1_EventualGetRequest, _tally_v1_EventualGetRequest__Output>
      EventualGetResponse: MessageTypeDefinition<_tally_v1_EventualGetResponse, _tally_v1_EventualGetResponse__Output>
      FailoverRequest: MessageTypeDefinition<_tally_v1_FailoverRequest, _tally_v1_FailoverRequest__Output>
      Fence: MessageTypeDefinition<_tally_v1_Fence, _tally_v1_Fence__Output>
      ForwardWriteRequest: MessageTypeDefinition<_tally_v1_ForwardWriteRequest, _tally_v1_ForwardWriteRequest__Output>
      ForwardWriteResponse: MessageTypeDefinition<_tally_v1_ForwardWriteResponse, _tally_v1_ForwardWriteResponse__Output>
      GetManyRequest: MessageTypeDefinition<_tally_v1_GetManyRequest, _tally_v1_GetManyRequest__Output>
      GetManyResponse: MessageTypeDefinition<_tally_v1_GetManyResponse, _tally_v1_GetManyResponse__Output>
      GetRequest: MessageTypeDefinition<_tally_v1_GetRequest, _tally_v1_GetRequest__Output>
      GetResponse: MessageTypeDefinition<_tally_v1_GetResponse, _tally_v1_GetResponse__Output>
      GroupStatus: MessageTypeDefinition<_tally_v1_GroupStatus, _tally_v1_GroupStatus__Output>
      HeartbeatNode: MessageTypeDefinition<_tally_v1_HeartbeatNode, _tally_v1_HeartbeatNode__Output>
      HeartbeatRequest: MessageTypeDefinition<_tally_v1_HeartbeatRequest, _tally_v1_HeartbeatRequest__Output>
      HeartbeatResponse: MessageTypeDefinition<_tally_v1_HeartbeatResponse, _tally_v1_HeartbeatResponse__Output>
      HotRoute: MessageTypeDefinition<_tally_v1_HotRoute, _tally_v1_HotRoute__Output>
      InternalRequest: MessageTypeDefinition<_tally_v1_InternalRequest, _tally_v1_InternalRequest__Output>
      InternalResponse: MessageTypeDefinition<_tally_v1_InternalResponse, _tally_v1_InternalResponse__Output>
      KeepAliveRequest: MessageTypeDefinition<_tally_v1_KeepAliveRequest, _tally_v1_KeepAliveRequest__Output>
      KeepAliveResponse: MessageTypeDefinition<_tally_v1_KeepAliveResponse, _tally_v1_KeepAliveResponse__Output>
      KeyValue: MessageTypeDefinition<_tally_v1_KeyValue, _tally_v1_KeyValue__Output>
      MapNode: MessageTypeDefinition<_tally_v1_MapNode, _tally_v1_MapNode__Output>
      MapOperation: MessageTypeDefinition<_tally_v1_MapOperation, _tally_v1_MapOperation__Output>
      MapShard: MessageTypeDefinition<_tally_v1_MapShard, _tally_v1_MapShard__Output>
      MetaChangeResponse: MessageTypeDefinition<_tally_v1_MetaChangeResponse, _tally_v1_MetaChangeResponse__Output>
      MetaMembership: MessageTypeDefinition<_tally_v1_MetaMembership, _tally_v1_MetaMembership__Output>
      MutationResponse: MessageTypeDefinition<_tally_v1_MutationResponse, _tally_v1_MutationResponse__Output>
      NodeAddRequest: MessageTypeDefinition<_tally_v1_NodeAddRequest, _tally_v1_NodeAddRequest__Output>
      NodeStateRequest: MessageTypeDefinition<_tally_v1_NodeStateRequest, _tally_v1_NodeStateRequest__Output>
      NodeStats: MessageTypeDefinition<_tally_v1_NodeStats, _tally_v1_NodeStats__Output>
      NodeStatus: MessageTypeDefinition<_tally_v1_NodeStatus, _tally_v1_NodeStatus__Output>
      OpResult: MessageTypeDefinition<_tally_v1_OpResult, _tally_v1_OpResult__Output>
      PartitionMap: MessageTypeDefinition<_tally_v1_PartitionMap, _tally_v1_PartitionMap__Output>
      PartitionMapHot: MessageTypeDefinition<_tally_v1_PartitionMapHot, _tally_v1_PartitionMapHot__Output>
      PartitionMapNode: MessageTypeDefinition<_tally_v1_PartitionMapNode, _tally_v1_PartitionMapNode__Output>
      PartitionMapOperation: MessageTypeDefinition<_tally_v1_PartitionMapOperation, _tally_v1_PartitionMapOperation__Output>
      PartitionMapShard: MessageTypeDefinition<_tally_v1_PartitionMapShard, _tally_v1_PartitionMapShard__Output>
      PeerLag: MessageTypeDefinition<_tally_v1_PeerLag, _tally_v1_PeerLag__Output>
      PeerMatch: MessageTypeDefinition<_tally_v1_PeerMatch, _tally_v1_PeerMatch__Output>
      PipelineRequest: MessageTypeDefinition<_tally_v1_PipelineRequest, _tally_v1_PipelineRequest__Output>
      PipelineRequestBatch: MessageTypeDefinition<_tally_v1_PipelineRequestBatch, _tally_v1_PipelineRequestBatch__Output>
      PipelineResponse: MessageTypeDefinition<_tally_v1_PipelineResponse, _tally_v1_PipelineResponse__Output>
      PipelineResponseBatch: MessageTypeDefinition<_tally_v1_PipelineResponseBatch, _tally_v1_PipelineResponseBatch__Output>
      PlannedChange: MessageTypeDefinition<_tally_v1_PlannedChange, _tally_v1_PlannedChange__Output>
      RebalanceRequest: MessageTypeDefinition<_tally_v1_RebalanceRequest, _tally_v1_RebalanceRequest__Output>
      RebalanceResponse: MessageTypeDefinition<_tally_v1_RebalanceResponse, _tally_v1_RebalanceResponse__Output>
      RecoverUnsafeRequest: MessageTypeDefinition<_tally_v1_RecoverUnsafeRequest, _tally_v1_RecoverUnsafeRequest__Output>
      RegisterSessionRequest: MessageTypeDefinition<_tally_v1_RegisterSessionRequest, _tally_v1_RegisterSessionRequest__Output>
      RegisterSessionResponse: MessageTypeDefinition<_tally_v1_RegisterSessionResponse, _tally_v1_RegisterSessionResponse__Output>
      ReplicaInfo: MessageTypeDefinition<_tally_v1_ReplicaInfo, _tally_v1_ReplicaInfo__Output>
      RequestHeader: MessageTypeDefinition<_tally_v1_RequestHeader, _tally_v1_RequestHeader__Output>
      ResetOp: MessageTypeDefinition<_tally_v1_ResetOp, _tally_v1_ResetOp__Output>
      ResetRequest: MessageTypeDefinition<_tally_v1_ResetRequest, _tally_v1_ResetRequest__Output>
      RoutesRequest: MessageTypeDefinition<_tally_v1_RoutesRequest, _tally_v1_RoutesRequest__Output>
      RoutesResponse: MessageTypeDefinition<_tally_v1_RoutesResponse, _tally_v1_RoutesResponse__Output>
      SetOp: MessageTypeDefinition<_tally_v1_SetOp, _tally_v1_SetOp__Output>
      SetRequest: MessageTypeDefinition<_tally_v1_SetRequest, _tally_v1_SetRequest__Output>
      ShardAnswer: MessageTypeDefinition<_tally_v1_ShardAnswer, _tally_v1_ShardAnswer__Output>
      ShardBackupChunk: MessageTypeDefinition<_tally_v1_ShardBackupChunk, _tally_v1_ShardBackupChunk__Output>
      ShardBackupRequest: MessageTypeDefinition<_tally_v1_ShardBackupRequest, _tally_v1_ShardBackupRequest__Output>
      ShardChangeNode: MessageTypeDefinition<_tally_v1_ShardChangeNode, _tally_v1_ShardChangeNode__Output>
      ShardChangePromoteAndRemove: MessageTypeDefinition<_tally_v1_ShardChangePromoteAndRemove, _tally_v1_ShardChangePromoteAndRemove__Output>
      ShardChangeRequest: MessageTypeDefinition<_tally_v1_ShardChangeRequest, _tally_v1_ShardChangeRequest__Output>
      ShardChangeResponse: MessageTypeDefinition<_tally_v1_ShardChangeResponse, _tally_v1_ShardChangeResponse__Output>
      ShardChangeSplit: MessageTypeDefinition<_tally_v1_ShardChangeSplit, _tally_v1_ShardChangeSplit__Output>
      ShardMoveRequest: MessageTypeDefinition<_tally_v1_ShardMoveRequest, _tally_v1_ShardMoveRequest__Output>
      ShardReport: MessageTypeDefinition<_tally_v1_ShardReport, _tally_v1_ShardReport__Output>
      ShardRoute: MessageTypeDefinition<_tally_v1_ShardRoute, _tally_v1_ShardRoute__Output>
      ShardSplitRequest: MessageTypeDefinition<_tally_v1_ShardSplitRequest, _tally_v1_ShardSplitRequest__Output>
      StatusRequest: MessageTypeDefinition<_tally_v1_StatusRequest, _tally_v1_StatusRequest__Output>
      StatusResponse: MessageTypeDefinition<_tally_v1_StatusResponse, _tally_v1_StatusResponse__Output>
      TopKRequest: MessageTypeDefinition<_tally_v1_TopKRequest, _tally_v1_TopKRequest__Output>
      TopKResponse: MessageTypeDefinition<_tally_v1_TopKResponse, _tally_v1_TopKResponse__Output>
      TransferLeaderRequest: MessageTypeDefinition<_tally_v1_TransferLeaderRequest, _tally_v1_TransferLeaderRequest__Output>
      TransferLeaderResponse: MessageTypeDefinition<_tally_v1_TransferLeaderResponse, _tally_v1_TransferLeaderResponse__Output>
      TryAcquireOp: MessageTypeDefinition<_tally_v1_TryAcquireOp, _tally_v1_TryAcquireOp__Output>
      UniqueAddOp: MessageTypeDefinition<_tally_v1_UniqueAddOp, _tally_v1_UniqueAddOp__Output>
      UniqueCountRequest: MessageTypeDefinition<_tally_v1_UniqueCountRequest, _tally_v1_UniqueCountRequest__Output>
      UniqueCountResponse: MessageTypeDefinition<_tally_v1_UniqueCountResponse, _tally_v1_UniqueCountResponse__Output>
      WatchBatch: MessageTypeDefinition<_tally_v1_WatchBatch, _tally_v1_WatchBatch__Output>
      WatchEvent: MessageTypeDefinition<_tally_v1_WatchEvent, _tally_v1_WatchEvent__Output>
      WatchRequest: MessageTypeDefinition<_tally_v1_WatchRequest, _tally_v1_WatchRequest__Output>
      WindowAddOp: MessageTypeDefinition<_tally_v1_WindowAddOp, _tally_v1_WindowAddOp__Output>
      WindowAtRequest: MessageTypeDefinition<_tally_v1_WindowAtRequest, _tally_v1_WindowAtRequest__Output>
      WindowAtResponse: MessageTypeDefinition<_tally_v1_WindowAtResponse, _tally_v1_WindowAtResponse__Output>
      WindowPoint: MessageTypeDefinition<_tally_v1_WindowPoint, _tally_v1_WindowPoint__Output>
      WindowRangeRequest: MessageTypeDefinition<_tally_v1_WindowRangeRequest, _tally_v1_WindowRangeRequest__Output>
      WindowRangeResponse: MessageTypeDefinition<_tally_v1_WindowRangeResponse, _tally_v1_WindowRangeResponse__Output>
      WriteFailure: MessageTypeDefinition<_tally_v1_WriteFailure, _tally_v1_WriteFailure__Output>
    }
  }
}

