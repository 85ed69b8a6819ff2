// Original file: proto/tally.proto

import type { AddRequest as _tally_v1_AddRequest, AddRequest__Output as _tally_v1_AddRequest__Output } from '../../tally/v1/AddRequest.js';
import type { SetRequest as _tally_v1_SetRequest, SetRequest__Output as _tally_v1_SetRequest__Output } from '../../tally/v1/SetRequest.js';
import type { ResetRequest as _tally_v1_ResetRequest, ResetRequest__Output as _tally_v1_ResetRequest__Output } from '../../tally/v1/ResetRequest.js';
import type { CompareAndSetRequest as _tally_v1_CompareAndSetRequest, CompareAndSetRequest__Output as _tally_v1_CompareAndSetRequest__Output } from '../../tally/v1/CompareAndSetRequest.js';
import type { BatchRequest as _tally_v1_BatchRequest, BatchRequest__Output as _tally_v1_BatchRequest__Output } from '../../tally/v1/BatchRequest.js';
import type { GetRequest as _tally_v1_GetRequest, GetRequest__Output as _tally_v1_GetRequest__Output } from '../../tally/v1/GetRequest.js';
import type { GetManyRequest as _tally_v1_GetManyRequest, GetManyRequest__Output as _tally_v1_GetManyRequest__Output } from '../../tally/v1/GetManyRequest.js';
import type { WindowRangeRequest as _tally_v1_WindowRangeRequest, WindowRangeRequest__Output as _tally_v1_WindowRangeRequest__Output } from '../../tally/v1/WindowRangeRequest.js';
import type { WindowAtRequest as _tally_v1_WindowAtRequest, WindowAtRequest__Output as _tally_v1_WindowAtRequest__Output } from '../../tally/v1/WindowAtRequest.js';
import type { UniqueCountRequest as _tally_v1_UniqueCountRequest, UniqueCountRequest__Output as _tally_v1_UniqueCountRequest__Output } from '../../tally/v1/UniqueCountRequest.js';
import type { TopKRequest as _tally_v1_TopKRequest, TopKRequest__Output as _tally_v1_TopKRequest__Output } from '../../tally/v1/TopKRequest.js';
import type { AggregateRequest as _tally_v1_AggregateRequest, AggregateRequest__Output as _tally_v1_AggregateRequest__Output } from '../../tally/v1/AggregateRequest.js';
import type { Long } from '@grpc/proto-loader';

export interface PipelineRequest {
  'id'?: (number | string | Long);
  'add'?: (_tally_v1_AddRequest | null);
  'set'?: (_tally_v1_SetRequest | null);
  'reset'?: (_tally_v1_ResetRequest | null);
  'compareAndSet'?: (_tally_v1_CompareAndSetRequest | null);
  'batch'?: (_tally_v1_BatchRequest | null);
  'get'?: (_tally_v1_GetRequest | null);
  'getMany'?: (_tally_v1_GetManyRequest | null);
  'windowRange'?: (_tally_v1_WindowRangeRequest | null);
  'windowAt'?: (_tally_v1_WindowAtRequest | null);
  'uniqueCount'?: (_tally_v1_UniqueCountRequest | null);
  'topK'?: (_tally_v1_TopKRequest | null);
  'aggregate'?: (_tally_v1_AggregateRequest | null);
  'op'?: "add"|"set"|"reset"|"compareAndSet"|"batch"|"get"|"getMany"|"windowRange"|"windowAt"|"uniqueCount"|"topK"|"aggregate";
}

export interface PipelineRequest__Output {
  'id': (string);
  'add'?: (_tally_v1_AddRequest__Output | null);
  'set'?: (_tally_v1_SetRequest__Output | null);
  'reset'?: (_tally_v1_ResetRequest__Output | null);
  'compareAndSet'?: (_tally_v1_CompareAndSetRequest__Output | null);
  'batch'?: (_tally_v1_BatchRequest__Output | null);
  'get'?: (_tally_v1_GetRequest__Output | null);
  'getMany'?: (_tally_v1_GetManyRequest__Output | null);
  'windowRange'?: (_tally_v1_WindowRangeRequest__Output | null);
  'windowAt'?: (_tally_v1_WindowAtRequest__Output | null);
  'uniqueCount'?: (_tally_v1_UniqueCountRequest__Output | null);
  'topK'?: (_tally_v1_TopKRequest__Output | null);
  'aggregate'?: (_tally_v1_AggregateRequest__Output | null);
  'op'?: "add"|"set"|"reset"|"compareAndSet"|"batch"|"get"|"getMany"|"windowRange"|"windowAt"|"uniqueCount"|"topK"|"aggregate";
}
