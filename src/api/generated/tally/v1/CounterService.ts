// Original file: proto/tally.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AddRequest as _tally_v1_AddRequest, AddRequest__Output as _tally_v1_AddRequest__Output } from '../../tally/v1/AddRequest.js';
import type { AggregateRequest as _tally_v1_AggregateRequest, AggregateRequest__Output as _tally_v1_AggregateRequest__Output } from '../../tally/v1/AggregateRequest.js';
import type { AggregateResponse as _tally_v1_AggregateResponse, AggregateResponse__Output as _tally_v1_AggregateResponse__Output } from '../../tally/v1/AggregateResponse.js';
import type { BatchRequest as _tally_v1_BatchRequest, BatchRequest__Output as _tally_v1_BatchRequest__Output } from '../../tally/v1/BatchRequest.js';
import type { BatchResponse as _tally_v1_BatchResponse, BatchResponse__Output as _tally_v1_BatchResponse__Output } from '../../tally/v1/BatchResponse.js';
import type { CompareAndSetRequest as _tally_v1_CompareAndSetRequest, CompareAndSetRequest__Output as _tally_v1_CompareAndSetRequest__Output } from '../../tally/v1/CompareAndSetRequest.js';
import type { EventualAddRequest as _tally_v1_EventualAddRequest, EventualAddRequest__Output as _tally_v1_EventualAddRequest__Output } from '../../tally/v1/EventualAddRequest.js';
import type { EventualAddResponse as _tally_v1_EventualAddResponse, EventualAddResponse__Output as _tally_v1_EventualAddResponse__Output } from '../../tally/v1/EventualAddResponse.js';
import type { EventualGetRequest as _tally_v1_EventualGetRequest, EventualGetRequest__Output as _tally_v1_EventualGetRequest__Output } from '../../tally/v1/EventualGetRequest.js';
import type { EventualGetResponse as _tally_v1_EventualGetResponse, EventualGetResponse__Output as _tally_v1_EventualGetResponse__Output } from '../../tally/v1/EventualGetResponse.js';
import type { GetManyRequest as _tally_v1_GetManyRequest, GetManyRequest__Output as _tally_v1_GetManyRequest__Output } from '../../tally/v1/GetManyRequest.js';
import type { GetManyResponse as _tally_v1_GetManyResponse, GetManyResponse__Output as _tally_v1_GetManyResponse__Output } from '../../tally/v1/GetManyResponse.js';
import type { GetRequest as _tally_v1_GetRequest, GetRequest__Output as _tally_v1_GetRequest__Output } from '../../tally/v1/GetRequest.js';
import type { GetResponse as _tally_v1_GetResponse, GetResponse__Output as _tally_v1_GetResponse__Output } from '../../tally/v1/GetResponse.js';
import type { KeepAliveRequest as _tally_v1_KeepAliveRequest, KeepAliveRequest__Output as _tally_v1_KeepAliveRequest__Output } from '../../tally/v1/KeepAliveRequest.js';
import type { KeepAliveResponse as _tally_v1_KeepAliveResponse, KeepAliveResponse__Output as _tally_v1_KeepAliveResponse__Output } from '../../tally/v1/KeepAliveResponse.js';
import type { MutationResponse as _tally_v1_MutationResponse, MutationResponse__Output as _tally_v1_MutationResponse__Output } from '../../tally/v1/MutationResponse.js';
import type { PipelineRequest as _tally_v1_PipelineRequest, PipelineRequest__Output as _tally_v1_PipelineRequest__Output } from '../../tally/v1/PipelineRequest.js';
import type { PipelineRequestBatch as _tally_v1_PipelineRequestBatch, PipelineRequestBatch__Output as _tally_v1_PipelineRequestBatch__Output } from '../../tally/v1/PipelineRequestBatch.js';
import type { PipelineResponse as _tally_v1_PipelineResponse, PipelineResponse__Output as _tally_v1_PipelineResponse__Output } from '../../tally/v1/PipelineResponse.js';
import type { PipelineResponseBatch as _tally_v1_PipelineResponseBatch, PipelineResponseBatch__Output as _tally_v1_PipelineResponseBatch__Output } from '../../tally/v1/PipelineResponseBatch.js';
import type { RegisterSessionRequest as _tally_v1_RegisterSessionRequest, RegisterSessionRequest__Output as _tally_v1_RegisterSessionRequest__Output } from '../../tally/v1/RegisterSessionRequest.js';
import type { RegisterSessionResponse as _tally_v1_RegisterSessionResponse, RegisterSessionResponse__Output as _tally_v1_RegisterSessionResponse__Output } from '../../tally/v1/RegisterSessionResponse.js';
import type { ResetRequest as _tally_v1_ResetRequest, ResetRequest__Output as _tally_v1_ResetRequest__Output } from '../../tally/v1/ResetRequest.js';
import type { RoutesRequest as _tally_v1_RoutesRequest, RoutesRequest__Output as _tally_v1_RoutesRequest__Output } from '../../tally/v1/RoutesRequest.js';
import type { RoutesResponse as _tally_v1_RoutesResponse, RoutesResponse__Output as _tally_v1_RoutesResponse__Output } from '../../tally/v1/RoutesResponse.js';
import type { SetRequest as _tally_v1_SetRequest, SetRequest__Output as _tally_v1_SetRequest__Output } from '../../tally/v1/SetRequest.js';
import type { TopKRequest as _tally_v1_TopKRequest, TopKRequest__Output as _tally_v1_TopKRequest__Output } from '../../tally/v1/TopKRequest.js';
import type { TopKResponse as _tally_v1_TopKResponse, TopKResponse__Output as _tally_v1_TopKResponse__Output } from '../../tally/v1/TopKResponse.js';
import type { UniqueCountRequest as _tally_v1_UniqueCountRequest, UniqueCountRequest__Output as _tally_v1_UniqueCountRequest__Output } from '../../tally/v1/UniqueCountRequest.js';
import type { UniqueCountResponse as _tally_v1_UniqueCountResponse, UniqueCountResponse__Output as _tally_v1_UniqueCountResponse__Output } from '../../tally/v1/UniqueCountResponse.js';
import type { WatchBatch as _tally_v1_WatchBatch, WatchBatch__Output as _tally_v1_WatchBatch__Output } from '../../tally/v1/WatchBatch.js';
import type { WatchRequest as _tally_v1_WatchRequest, WatchRequest__Output as _tally_v1_WatchRequest__Output } from '../../tally/v1/WatchRequest.js';
import type { WindowAtRequest as _tally_v1_WindowAtRequest, WindowAtRequest__Output as _tally_v1_WindowAtRequest__Output } from '../../tally/v1/WindowAtRequest.js';
import type { WindowAtResponse as _tally_v1_WindowAtResponse, WindowAtResponse__Output as _tally_v1_WindowAtResponse__Output } from '../../tally/v1/WindowAtResponse.js';
import type { WindowRangeRequest as _tally_v1_WindowRangeRequest, WindowRangeRequest__Output as _tally_v1_WindowRangeRequest__Output } from '../../tally/v1/WindowRangeRequest.js';
import type { WindowRangeResponse as _tally_v1_WindowRangeResponse, WindowRangeResponse__Output as _tally_v1_WindowRangeResponse__Output } from '../../tally/v1/WindowRangeResponse.js';

export interface CounterServiceClient extends grpc.Client {
  Add(argument: _tally_v1_AddRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  Add(argument: _tally_v1_AddRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  Add(argument: _tally_v1_AddRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  Add(argument: _tally_v1_AddRequest, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  add(argument: _tally_v1_AddRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  add(argument: _tally_v1_AddRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  add(argument: _tally_v1_AddRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  add(argument: _tally_v1_AddRequest, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Up to 10,000 operations on one shard, applied atomically: all or none.
   */
  AddBatch(argument: _tally_v1_BatchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_BatchResponse__Output>): grpc.ClientUnaryCall;
  AddBatch(argument: _tally_v1_BatchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_BatchResponse__Output>): grpc.ClientUnaryCall;
  AddBatch(argument: _tally_v1_BatchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_BatchResponse__Output>): grpc.ClientUnaryCall;
  AddBatch(argument: _tally_v1_BatchRequest, callback: grpc.requestCallback<_tally_v1_BatchResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Up to 10,000 operations on one shard, applied atomically: all or none.
   */
  addBatch(argument: _tally_v1_BatchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_BatchResponse__Output>): grpc.ClientUnaryCall;
  addBatch(argument: _tally_v1_BatchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_BatchResponse__Output>): grpc.ClientUnaryCall;
  addBatch(argument: _tally_v1_BatchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_BatchResponse__Output>): grpc.ClientUnaryCall;
  addBatch(argument: _tally_v1_BatchRequest, callback: grpc.requestCallback<_tally_v1_BatchResponse__Output>): grpc.ClientUnaryCall;
  
  Aggregate(argument: _tally_v1_AggregateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_AggregateResponse__Output>): grpc.ClientUnaryCall;
  Aggregate(argument: _tally_v1_AggregateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_AggregateResponse__Output>): grpc.ClientUnaryCall;
  Aggregate(argument: _tally_v1_AggregateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_AggregateResponse__Output>): grpc.ClientUnaryCall;
  Aggregate(argument: _tally_v1_AggregateRequest, callback: grpc.requestCallback<_tally_v1_AggregateResponse__Output>): grpc.ClientUnaryCall;
  aggregate(argument: _tally_v1_AggregateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_AggregateResponse__Output>): grpc.ClientUnaryCall;
  aggregate(argument: _tally_v1_AggregateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_AggregateResponse__Output>): grpc.ClientUnaryCall;
  aggregate(argument: _tally_v1_AggregateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_AggregateResponse__Output>): grpc.ClientUnaryCall;
  aggregate(argument: _tally_v1_AggregateRequest, callback: grpc.requestCallback<_tally_v1_AggregateResponse__Output>): grpc.ClientUnaryCall;
  
  CompareAndSet(argument: _tally_v1_CompareAndSetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  CompareAndSet(argument: _tally_v1_CompareAndSetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  CompareAndSet(argument: _tally_v1_CompareAndSetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  CompareAndSet(argument: _tally_v1_CompareAndSetRequest, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  compareAndSet(argument: _tally_v1_CompareAndSetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  compareAndSet(argument: _tally_v1_CompareAndSetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  compareAndSet(argument: _tally_v1_CompareAndSetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  compareAndSet(argument: _tally_v1_CompareAndSetRequest, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Eventual counters (docs/eventual.md): any node accepts the adds into its durable local buffer
   * (fsynced, group-committed) and answers then; it flushes each key's summed delta into the
   * owning shard within cluster.eventual.flushIntervalMs, exactly once (its own session per shard).
   */
  EventualAdd(argument: _tally_v1_EventualAddRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_EventualAddResponse__Output>): grpc.ClientUnaryCall;
  EventualAdd(argument: _tally_v1_EventualAddRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_EventualAddResponse__Output>): grpc.ClientUnaryCall;
  EventualAdd(argument: _tally_v1_EventualAddRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_EventualAddResponse__Output>): grpc.ClientUnaryCall;
  EventualAdd(argument: _tally_v1_EventualAddRequest, callback: grpc.requestCallback<_tally_v1_EventualAddResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Eventual counters (docs/eventual.md): any node accepts the adds into its durable local buffer
   * (fsynced, group-committed) and answers then; it flushes each key's summed delta into the
   * owning shard within cluster.eventual.flushIntervalMs, exactly once (its own session per shard).
   */
  eventualAdd(argument: _tally_v1_EventualAddRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_EventualAddResponse__Output>): grpc.ClientUnaryCall;
  eventualAdd(argument: _tally_v1_EventualAddRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_EventualAddResponse__Output>): grpc.ClientUnaryCall;
  eventualAdd(argument: _tally_v1_EventualAddRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_EventualAddResponse__Output>): grpc.ClientUnaryCall;
  eventualAdd(argument: _tally_v1_EventualAddRequest, callback: grpc.requestCallback<_tally_v1_EventualAddResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * The committed value of a key plus, if asked, this node's unflushed delta, with its staleness;
   * LINEARIZABLE first waits for this node's pending flush of the key (bounded by the deadline).
   */
  EventualGet(argument: _tally_v1_EventualGetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_EventualGetResponse__Output>): grpc.ClientUnaryCall;
  EventualGet(argument: _tally_v1_EventualGetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_EventualGetResponse__Output>): grpc.ClientUnaryCall;
  EventualGet(argument: _tally_v1_EventualGetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_EventualGetResponse__Output>): grpc.ClientUnaryCall;
  EventualGet(argument: _tally_v1_EventualGetRequest, callback: grpc.requestCallback<_tally_v1_EventualGetResponse__Output>): grpc.ClientUnaryCall;
  /**
   * The committed value of a key plus, if asked, this node's unflushed delta, with its staleness;
   * LINEARIZABLE first waits for this node's pending flush of the key (bounded by the deadline).
   */
  eventualGet(argument: _tally_v1_EventualGetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_EventualGetResponse__Output>): grpc.ClientUnaryCall;
  eventualGet(argument: _tally_v1_EventualGetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_EventualGetResponse__Output>): grpc.ClientUnaryCall;
  eventualGet(argument: _tally_v1_EventualGetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_EventualGetResponse__Output>): grpc.ClientUnaryCall;
  eventualGet(argument: _tally_v1_EventualGetRequest, callback: grpc.requestCallback<_tally_v1_EventualGetResponse__Output>): grpc.ClientUnaryCall;
  
  Get(argument: _tally_v1_GetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  Get(argument: _tally_v1_GetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  Get(argument: _tally_v1_GetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  Get(argument: _tally_v1_GetRequest, callback: grpc.requestCallback<_tally_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  get(argument: _tally_v1_GetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  get(argument: _tally_v1_GetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  get(argument: _tally_v1_GetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  get(argument: _tally_v1_GetRequest, callback: grpc.requestCallback<_tally_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  
  GetMany(argument: _tally_v1_GetManyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_GetManyResponse__Output>): grpc.ClientUnaryCall;
  GetMany(argument: _tally_v1_GetManyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_GetManyResponse__Output>): grpc.ClientUnaryCall;
  GetMany(argument: _tally_v1_GetManyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_GetManyResponse__Output>): grpc.ClientUnaryCall;
  GetMany(argument: _tally_v1_GetManyRequest, callback: grpc.requestCallback<_tally_v1_GetManyResponse__Output>): grpc.ClientUnaryCall;
  getMany(argument: _tally_v1_GetManyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_GetManyResponse__Output>): grpc.ClientUnaryCall;
  getMany(argument: _tally_v1_GetManyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_GetManyResponse__Output>): grpc.ClientUnaryCall;
  getMany(argument: _tally_v1_GetManyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_GetManyResponse__Output>): grpc.ClientUnaryCall;
  getMany(argument: _tally_v1_GetManyRequest, callback: grpc.requestCallback<_tally_v1_GetManyResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Keeps a session alive while a client is idle; sessions expire by leader-stamped time.
   */
  KeepAlive(argument: _tally_v1_KeepAliveRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_KeepAliveResponse__Output>): grpc.ClientUnaryCall;
  KeepAlive(argument: _tally_v1_KeepAliveRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_KeepAliveResponse__Output>): grpc.ClientUnaryCall;
  KeepAlive(argument: _tally_v1_KeepAliveRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_KeepAliveResponse__Output>): grpc.ClientUnaryCall;
  KeepAlive(argument: _tally_v1_KeepAliveRequest, callback: grpc.requestCallback<_tally_v1_KeepAliveResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Keeps a session alive while a client is idle; sessions expire by leader-stamped time.
   */
  keepAlive(argument: _tally_v1_KeepAliveRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_KeepAliveResponse__Output>): grpc.ClientUnaryCall;
  keepAlive(argument: _tally_v1_KeepAliveRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_KeepAliveResponse__Output>): grpc.ClientUnaryCall;
  keepAlive(argument: _tally_v1_KeepAliveRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_KeepAliveResponse__Output>): grpc.ClientUnaryCall;
  keepAlive(argument: _tally_v1_KeepAliveRequest, callback: grpc.requestCallback<_tally_v1_KeepAliveResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Many independent operations over one stream, matched by id; replies may come out of order.
   */
  Pipeline(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_tally_v1_PipelineRequest, _tally_v1_PipelineResponse__Output>;
  Pipeline(options?: grpc.CallOptions): grpc.ClientDuplexStream<_tally_v1_PipelineRequest, _tally_v1_PipelineResponse__Output>;
  /**
   * Many independent operations over one stream, matched by id; replies may come out of order.
   */
  pipeline(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_tally_v1_PipelineRequest, _tally_v1_PipelineResponse__Output>;
  pipeline(options?: grpc.CallOptions): grpc.ClientDuplexStream<_tally_v1_PipelineRequest, _tally_v1_PipelineResponse__Output>;
  
  /**
   * Pipeline with many operations per stream message in both directions: each request runs as if
   * it came alone on a Pipeline stream (its own id, checks, in-flight slot and reply), and the
   * replies ready in the same event-loop turn travel together. A message over a request bound
   * (limits.maxBatchOps requests, REQUEST_FIELDS_MAX fields: docs/limits.md) ends the stream with
   * INVALID_ARGUMENT. The client library uses it; Pipeline stays for one op per message.
   */
  PipelineBatch(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_tally_v1_PipelineRequestBatch, _tally_v1_PipelineResponseBatch__Output>;
  PipelineBatch(options?: grpc.CallOptions): grpc.ClientDuplexStream<_tally_v1_PipelineRequestBatch, _tally_v1_PipelineResponseBatch__Output>;
  /**
   * Pipeline with many operations per stream message in both directions: each request runs as if
   * it came alone on a Pipeline stream (its own id, checks, in-flight slot and reply), and the
   * replies ready in the same event-loop turn travel together. A message over a request bound
   * (limits.maxBatchOps requests, REQUEST_FIELDS_MAX fields: docs/limits.md) ends the stream with
   * INVALID_ARGUMENT. The client library uses it; Pipeline stays for one op per message.
   */
  pipelineBatch(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_tally_v1_PipelineRequestBatch, _tally_v1_PipelineResponseBatch__Output>;
  pipelineBatch(options?: grpc.CallOptions): grpc.ClientDuplexStream<_tally_v1_PipelineRequestBatch, _tally_v1_PipelineResponseBatch__Output>;
  
  /**
   * Registers an exactly-once session on one shard (Raft thesis 6.3). The client id is 53 random
   * bits, cluster-unique, bound to the caller (its token or certificate name) and to the shard:
   * another caller's use is PERMISSION_DENIED, another shard's SESSION_EXPIRED. At most
   * cluster.sessionsPerCallerMax per caller and shard (beyond: OVERLOADED / RESOURCE_EXHAUSTED).
   * Every mutation then carries (client_id, seq, first_unacked_seq); a seq names one request (a
   * retry with other operations is INVALID_ARGUMENT). See the error contract at ErrorInfo.
   * A caller that keeps no session uses RequestHeader.request_id instead (one call per write).
   */
  RegisterSession(argument: _tally_v1_RegisterSessionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_RegisterSessionResponse__Output>): grpc.ClientUnaryCall;
  RegisterSession(argument: _tally_v1_RegisterSessionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_RegisterSessionResponse__Output>): grpc.ClientUnaryCall;
  RegisterSession(argument: _tally_v1_RegisterSessionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_RegisterSessionResponse__Output>): grpc.ClientUnaryCall;
  RegisterSession(argument: _tally_v1_RegisterSessionRequest, callback: grpc.requestCallback<_tally_v1_RegisterSessionResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Registers an exactly-once session on one shard (Raft thesis 6.3). The client id is 53 random
   * bits, cluster-unique, bound to the caller (its token or certificate name) and to the shard:
   * another caller's use is PERMISSION_DENIED, another shard's SESSION_EXPIRED. At most
   * cluster.sessionsPerCallerMax per caller and shard (beyond: OVERLOADED / RESOURCE_EXHAUSTED).
   * Every mutation then carries (client_id, seq, first_unacked_seq); a seq names one request (a
   * retry with other operations is INVALID_ARGUMENT). See the error contract at ErrorInfo.
   * A caller that keeps no session uses RequestHeader.request_id instead (one call per write).
   */
  registerSession(argument: _tally_v1_RegisterSessionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_RegisterSessionResponse__Output>): grpc.ClientUnaryCall;
  registerSession(argument: _tally_v1_RegisterSessionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_RegisterSessionResponse__Output>): grpc.ClientUnaryCall;
  registerSession(argument: _tally_v1_RegisterSessionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_RegisterSessionResponse__Output>): grpc.ClientUnaryCall;
  registerSession(argument: _tally_v1_RegisterSessionRequest, callback: grpc.requestCallback<_tally_v1_RegisterSessionResponse__Output>): grpc.ClientUnaryCall;
  
  Reset(argument: _tally_v1_ResetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  Reset(argument: _tally_v1_ResetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  Reset(argument: _tally_v1_ResetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  Reset(argument: _tally_v1_ResetRequest, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  reset(argument: _tally_v1_ResetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  reset(argument: _tally_v1_ResetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  reset(argument: _tally_v1_ResetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  reset(argument: _tally_v1_ResetRequest, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * The routing map: shards, slot ranges, epochs, replicas and their leaders.
   */
  Routes(argument: _tally_v1_RoutesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_RoutesResponse__Output>): grpc.ClientUnaryCall;
  Routes(argument: _tally_v1_RoutesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_RoutesResponse__Output>): grpc.ClientUnaryCall;
  Routes(argument: _tally_v1_RoutesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_RoutesResponse__Output>): grpc.ClientUnaryCall;
  Routes(argument: _tally_v1_RoutesRequest, callback: grpc.requestCallback<_tally_v1_RoutesResponse__Output>): grpc.ClientUnaryCall;
  /**
   * The routing map: shards, slot ranges, epochs, replicas and their leaders.
   */
  routes(argument: _tally_v1_RoutesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_RoutesResponse__Output>): grpc.ClientUnaryCall;
  routes(argument: _tally_v1_RoutesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_RoutesResponse__Output>): grpc.ClientUnaryCall;
  routes(argument: _tally_v1_RoutesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_RoutesResponse__Output>): grpc.ClientUnaryCall;
  routes(argument: _tally_v1_RoutesRequest, callback: grpc.requestCallback<_tally_v1_RoutesResponse__Output>): grpc.ClientUnaryCall;
  
  Set(argument: _tally_v1_SetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  Set(argument: _tally_v1_SetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  Set(argument: _tally_v1_SetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  Set(argument: _tally_v1_SetRequest, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  set(argument: _tally_v1_SetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  set(argument: _tally_v1_SetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  set(argument: _tally_v1_SetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  set(argument: _tally_v1_SetRequest, callback: grpc.requestCallback<_tally_v1_MutationResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * One shard's exact top k / aggregate over its plain counters with a key prefix, at one applied
   * index; the client merges every shard's answer (mergeTopK / mergeAggregates).
   */
  TopK(argument: _tally_v1_TopKRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_TopKResponse__Output>): grpc.ClientUnaryCall;
  TopK(argument: _tally_v1_TopKRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_TopKResponse__Output>): grpc.ClientUnaryCall;
  TopK(argument: _tally_v1_TopKRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_TopKResponse__Output>): grpc.ClientUnaryCall;
  TopK(argument: _tally_v1_TopKRequest, callback: grpc.requestCallback<_tally_v1_TopKResponse__Output>): grpc.ClientUnaryCall;
  /**
   * One shard's exact top k / aggregate over its plain counters with a key prefix, at one applied
   * index; the client merges every shard's answer (mergeTopK / mergeAggregates).
   */
  topK(argument: _tally_v1_TopKRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_TopKResponse__Output>): grpc.ClientUnaryCall;
  topK(argument: _tally_v1_TopKRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_TopKResponse__Output>): grpc.ClientUnaryCall;
  topK(argument: _tally_v1_TopKRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_TopKResponse__Output>): grpc.ClientUnaryCall;
  topK(argument: _tally_v1_TopKRequest, callback: grpc.requestCallback<_tally_v1_TopKResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * The union count of several unique-count keys of one shard, and optionally the merged sketch
   * (HyperLogLog encoding, src/shard/kinds/hll.ts) so a client can merge across shards.
   */
  UniqueCount(argument: _tally_v1_UniqueCountRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_UniqueCountResponse__Output>): grpc.ClientUnaryCall;
  UniqueCount(argument: _tally_v1_UniqueCountRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_UniqueCountResponse__Output>): grpc.ClientUnaryCall;
  UniqueCount(argument: _tally_v1_UniqueCountRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_UniqueCountResponse__Output>): grpc.ClientUnaryCall;
  UniqueCount(argument: _tally_v1_UniqueCountRequest, callback: grpc.requestCallback<_tally_v1_UniqueCountResponse__Output>): grpc.ClientUnaryCall;
  /**
   * The union count of several unique-count keys of one shard, and optionally the merged sketch
   * (HyperLogLog encoding, src/shard/kinds/hll.ts) so a client can merge across shards.
   */
  uniqueCount(argument: _tally_v1_UniqueCountRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_UniqueCountResponse__Output>): grpc.ClientUnaryCall;
  uniqueCount(argument: _tally_v1_UniqueCountRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_UniqueCountResponse__Output>): grpc.ClientUnaryCall;
  uniqueCount(argument: _tally_v1_UniqueCountRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_UniqueCountResponse__Output>): grpc.ClientUnaryCall;
  uniqueCount(argument: _tally_v1_UniqueCountRequest, callback: grpc.requestCallback<_tally_v1_UniqueCountResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Changes of one key, or of every key with a prefix on one shard, from after from_index, in
   * batches coalesced over coalesce_ms (the latest change per key). Any replica serves it; a
   * client that reconnects resumes from the last batch's index. OUT_OF_RANGE when changes after
   * from_index are no longer retained (re-read, then watch from now).
   */
  Watch(argument: _tally_v1_WatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_tally_v1_WatchBatch__Output>;
  Watch(argument: _tally_v1_WatchRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_tally_v1_WatchBatch__Output>;
  /**
   * Changes of one key, or of every key with a prefix on one shard, from after from_index, in
   * batches coalesced over coalesce_ms (the latest change per key). Any replica serves it; a
   * client that reconnects resumes from the last batch's index. OUT_OF_RANGE when changes after
   * from_index are no longer retained (re-read, then watch from now).
   */
  watch(argument: _tally_v1_WatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_tally_v1_WatchBatch__Output>;
  watch(argument: _tally_v1_WatchRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_tally_v1_WatchBatch__Output>;
  
  WindowAt(argument: _tally_v1_WindowAtRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_WindowAtResponse__Output>): grpc.ClientUnaryCall;
  WindowAt(argument: _tally_v1_WindowAtRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_WindowAtResponse__Output>): grpc.ClientUnaryCall;
  WindowAt(argument: _tally_v1_WindowAtRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_WindowAtResponse__Output>): grpc.ClientUnaryCall;
  WindowAt(argument: _tally_v1_WindowAtRequest, callback: grpc.requestCallback<_tally_v1_WindowAtResponse__Output>): grpc.ClientUnaryCall;
  windowAt(argument: _tally_v1_WindowAtRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_WindowAtResponse__Output>): grpc.ClientUnaryCall;
  windowAt(argument: _tally_v1_WindowAtRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_WindowAtResponse__Output>): grpc.ClientUnaryCall;
  windowAt(argument: _tally_v1_WindowAtRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_WindowAtResponse__Output>): grpc.ClientUnaryCall;
  windowAt(argument: _tally_v1_WindowAtRequest, callback: grpc.requestCallback<_tally_v1_WindowAtResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Counter kinds (issue 8). Their mutations (windowed add, tryAcquire, unique add) are BatchOps:
   * they take the same session path as add, so they are exactly once and atomic with other ops.
   * These reads answer like Get (linearizable at the leader, or STALE with min_index).
   */
  WindowRange(argument: _tally_v1_WindowRangeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_WindowRangeResponse__Output>): grpc.ClientUnaryCall;
  WindowRange(argument: _tally_v1_WindowRangeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_WindowRangeResponse__Output>): grpc.ClientUnaryCall;
  WindowRange(argument: _tally_v1_WindowRangeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_WindowRangeResponse__Output>): grpc.ClientUnaryCall;
  WindowRange(argument: _tally_v1_WindowRangeRequest, callback: grpc.requestCallback<_tally_v1_WindowRangeResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Counter kinds (issue 8). Their mutations (windowed add, tryAcquire, unique add) are BatchOps:
   * they take the same session path as add, so they are exactly once and atomic with other ops.
   * These reads answer like Get (linearizable at the leader, or STALE with min_index).
   */
  windowRange(argument: _tally_v1_WindowRangeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_WindowRangeResponse__Output>): grpc.ClientUnaryCall;
  windowRange(argument: _tally_v1_WindowRangeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_WindowRangeResponse__Output>): grpc.ClientUnaryCall;
  windowRange(argument: _tally_v1_WindowRangeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_WindowRangeResponse__Output>): grpc.ClientUnaryCall;
  windowRange(argument: _tally_v1_WindowRangeRequest, callback: grpc.requestCallback<_tally_v1_WindowRangeResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface CounterServiceHandlers extends grpc.UntypedServiceImplementation {
  Add: grpc.handleUnaryCall<_tally_v1_AddRequest__Output, _tally_v1_MutationResponse>;
  
  /**
   * Up to 10,000 operations on one shard, applied atomically: all or none.
   */
  AddBatch: grpc.handleUnaryCall<_tally_v1_BatchRequest__Output, _tally_v1_BatchResponse>;
  
  Aggregate: grpc.handleUnaryCall<_tally_v1_AggregateRequest__Output, _tally_v1_AggregateResponse>;
  
  CompareAndSet: grpc.handleUnaryCall<_tally_v1_CompareAndSetRequest__Output, _tally_v1_MutationResponse>;
  
  /**
   * Eventual counters (docs/eventual.md): any node accepts the adds into its durable local buffer
   * (fsynced, group-committed) and answers then; it flushes each key's summed delta into the
   * owning shard within cluster.eventual.flushIntervalMs, exactly once (its own session per shard).
   */
  EventualAdd: grpc.handleUnaryCall<_tally_v1_EventualAddRequest__Output, _tally_v1_EventualAddResponse>;
  
  /**
   * The committed value of a key plus, if asked, this node's unflushed delta, with its staleness;
   * LINEARIZABLE first waits for this node's pending flush of the key (bounded by the deadline).
   */
  EventualGet: grpc.handleUnaryCall<_tally_v1_EventualGetRequest__Output, _tally_v1_EventualGetResponse>;
  
  Get: grpc.handleUnaryCall<_tally_v1_GetRequest__Output, _tally_v1_GetResponse>;
  
  GetMany: grpc.handleUnaryCall<_tally_v1_GetManyRequest__Output, _tally_v1_GetManyResponse>;
  
  /**
   * Keeps a session alive while a client is idle; sessions expire by leader-stamped time.
   */
  KeepAlive: grpc.handleUnaryCall<_tally_v1_KeepAliveRequest__Output, _tally_v1_KeepAliveResponse>;
  
  /**
   * Many independent operations over one stream, matched by id; replies may come out of order.
   */
  Pipeline: grpc.handleBidiStreamingCall<_tally_v1_PipelineRequest__Output, _tally_v1_PipelineResponse>;
  
  /**
   * Pipeline with many operations per stream message in both directions: each request runs as if
   * it came alone on a Pipeline stream (its own id, checks, in-flight slot and reply), and the
   * replies ready in the same event-loop turn travel together. A message over a request bound
   * (limits.maxBatchOps requests, REQUEST_FIELDS_MAX fields: docs/limits.md) ends the stream with
   * INVALID_ARGUMENT. The client library uses it; Pipeline stays for one op per message.
   */
  PipelineBatch: grpc.handleBidiStreamingCall<_tally_v1_PipelineRequestBatch__Output, _tally_v1_PipelineResponseBatch>;
  
  /**
   * Registers an exactly-once session on one shard (Raft thesis 6.3). The client id is 53 random
   * bits, cluster-unique, bound to the caller (its token or certificate name) and to the shard:
   * another caller's use is PERMISSION_DENIED, another shard's SESSION_EXPIRED. At most
   * cluster.sessionsPerCallerMax per caller and shard (beyond: OVERLOADED / RESOURCE_EXHAUSTED).
   * Every mutation then carries (client_id, seq, first_unacked_seq); a seq names one request (a
   * retry with other operations is INVALID_ARGUMENT). See the error contract at ErrorInfo.
   * A caller that keeps no session uses RequestHeader.request_id instead (one call per write).
   */
  RegisterSession: grpc.handleUnaryCall<_tally_v1_RegisterSessionRequest__Output, _tally_v1_RegisterSessionResponse>;
  
  Reset: grpc.handleUnaryCall<_tally_v1_ResetRequest__Output, _tally_v1_MutationResponse>;
  
  /**
   * The routing map: shards, slot ranges, epochs, replicas and their leaders.
   */
  Routes: grpc.handleUnaryCall<_tally_v1_RoutesRequest__Output, _tally_v1_RoutesResponse>;
  
  Set: grpc.handleUnaryCall<_tally_v1_SetRequest__Output, _tally_v1_MutationResponse>;
  
  /**
   * One shard's exact top k / aggregate over its plain counters with a key prefix, at one applied
   * index; the client merges every shard's answer (mergeTopK / mergeAggregates).
   */
  TopK: grpc.handleUnaryCall<_tally_v1_TopKRequest__Output, _tally_v1_TopKResponse>;
  
  /**
   * The union count of several unique-count keys of one shard, and optionally the merged sketch
   * (HyperLogLog encoding, src/shard/kinds/hll.ts) so a client can merge across shards.
   */
  UniqueCount: grpc.handleUnaryCall<_tally_v1_UniqueCountRequest__Output, _tally_v1_UniqueCountResponse>;
  
  /**
   * Changes of one key, or of every key with a prefix on one shard, from after from_index, in
   * batches coalesced over coalesce_ms (the latest change per key). Any replica serves it; a
   * client that reconnects resumes from the last batch's index. OUT_OF_RANGE when changes after
   * from_index are no longer retained (re-read, then watch from now).
   */
  Watch: grpc.handleServerStreamingCall<_tally_v1_WatchRequest__Output, _tally_v1_WatchBatch>;
  
  WindowAt: grpc.handleUnaryCall<_tally_v1_WindowAtRequest__Output, _tally_v1_WindowAtResponse>;
  
  /**
   * Counter kinds (issue 8). Their mutations (windowed add, tryAcquire, unique add) are BatchOps:
   * they take the same session path as add, so they are exactly once and atomic with other ops.
   * These reads answer like Get (linearizable at the leader, or STALE with min_index).
   */
  WindowRange: grpc.handleUnaryCall<_tally_v1_WindowRangeRequest__Output, _tally_v1_WindowRangeResponse>;
  
}

export interface CounterServiceDefinition extends grpc.ServiceDefinition {
  Add: MethodDefinition<_tally_v1_AddRequest, _tally_v1_MutationResponse, _tally_v1_AddRequest__Output, _tally_v1_MutationResponse__Output>
  AddBatch: MethodDefinition<_tally_v1_BatchRequest, _tally_v1_BatchResponse, _tally_v1_BatchRequest__Output, _tally_v1_BatchResponse__Output>
  Aggregate: MethodDefinition<_tally_v1_AggregateRequest, _tally_v1_AggregateResponse, _tally_v1_AggregateRequest__Output, _tally_v1_AggregateResponse__Output>
  CompareAndSet: MethodDefinition<_tally_v1_CompareAndSetRequest, _tally_v1_MutationResponse, _tally_v1_CompareAndSetRequest__Output, _tally_v1_MutationResponse__Output>
  EventualAdd: MethodDefinition<_tally_v1_EventualAddRequest, _tally_v1_EventualAddResponse, _tally_v1_EventualAddRequest__Output, _tally_v1_EventualAddResponse__Output>
  EventualGet: MethodDefinition<_tally_v1_EventualGetRequest, _tally_v1_EventualGetResponse, _tally_v1_EventualGetRequest__Output, _tally_v1_EventualGetResponse__Output>
  Get: MethodDefinition<_tally_v1_GetRequest, _tally_v1_GetResponse, _tally_v1_GetRequest__Output, _tally_v1_GetResponse__Output>
  GetMany: MethodDefinition<_tally_v1_GetManyRequest, _tally_v1_GetManyResponse, _tally_v1_GetManyRequest__Output, _tally_v1_GetManyResponse__Output>
  KeepAlive: MethodDefinition<_tally_v1_KeepAliveRequest, _tally_v1_KeepAliveResponse, _tally_v1_KeepAliveRequest__Output, _tally_v1_KeepAliveResponse__Output>
  Pipeline: MethodDefinition<_tally_v1_PipelineRequest, _tally_v1_PipelineResponse, _tally_v1_PipelineRequest__Output, _tally_v1_PipelineResponse__Output>
  PipelineBatch: MethodDefinition<_tally_v1_PipelineRequestBatch, _tally_v1_PipelineResponseBatch, _tally_v1_PipelineRequestBatch__Output, _tally_v1_PipelineResponseBatch__Output>
  RegisterSession: MethodDefinition<_tally_v1_RegisterSessionRequest, _tally_v1_RegisterSessionResponse, _tally_v1_RegisterSessionRequest__Output, _tally_v1_RegisterSessionResponse__Output>
  Reset: MethodDefinition<_tally_v1_ResetRequest, _tally_v1_MutationResponse, _tally_v1_ResetRequest__Output, _tally_v1_MutationResponse__Output>
  Routes: MethodDefinition<_tally_v1_RoutesRequest, _tally_v1_RoutesResponse, _tally_v1_RoutesRequest__Output, _tally_v1_RoutesResponse__Output>
  Set: MethodDefinition<_tally_v1_SetRequest, _tally_v1_MutationResponse, _tally_v1_SetRequest__Output, _tally_v1_MutationResponse__Output>
  TopK: MethodDefinition<_tally_v1_TopKRequest, _tally_v1_TopKResponse, _tally_v1_TopKRequest__Output, _tally_v1_TopKResponse__Output>
  UniqueCount: MethodDefinition<_tally_v1_UniqueCountRequest, _tally_v1_UniqueCountResponse, _tally_v1_UniqueCountRequest__Output, _tally_v1_UniqueCountResponse__Output>
  Watch: MethodDefinition<_tally_v1_WatchRequest, _tally_v1_WatchBatch, _tally_v1_WatchRequest__Output, _tally_v1_WatchBatch__Output>
  WindowAt: MethodDefinition<_tally_v1_WindowAtRequest, _tally_v1_WindowAtResponse, _tally_v1_WindowAtRequest__Output, _tally_v1_WindowAtResponse__Output>
  WindowRange: MethodDefinition<_tally_v1_WindowRangeRequest, _tally_v1_WindowRangeResponse, _tally_v1_WindowRangeRequest__Output, _tally_v1_WindowRangeResponse__Output>
}
