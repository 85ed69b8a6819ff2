// Original file: proto/tally.proto

import type { MutationResponse as _tally_v1_MutationResponse, MutationResponse__Output as _tally_v1_MutationResponse__Output } from '../../tally/v1/MutationResponse.js';
import type { BatchResponse as _tally_v1_BatchResponse, BatchResponse__Output as _tally_v1_BatchResponse__Output } from '../../tally/v1/BatchResponse.js';
import type { GetResponse as _tally_v1_GetResponse, GetResponse__Output as _tally_v1_GetResponse__Output } from '../../tally/v1/GetResponse.js';
import type { GetManyResponse as _tally_v1_GetManyResponse, GetManyResponse__Output as _tally_v1_GetManyResponse__Output } from '../../tally/v1/GetManyResponse.js';
import type { ErrorInfo as _tally_v1_ErrorInfo, ErrorInfo__Output as _tally_v1_ErrorInfo__Output } from '../../tally/v1/ErrorInfo.js';
import type { WindowRangeResponse as _tally_v1_WindowRangeResponse, WindowRangeResponse__Output as _tally_v1_WindowRangeResponse__Output } from '../../tally/v1/WindowRangeResponse.js';
import type { WindowAtResponse as _tally_v1_WindowAtResponse, WindowAtResponse__Output as _tally_v1_WindowAtResponse__Output } from '../../tally/v1/WindowAtResponse.js';
import type { UniqueCountResponse as _tally_v1_UniqueCountResponse, UniqueCountResponse__Output as _tally_v1_UniqueCountResponse__Output } from '../../tally/v1/UniqueCountResponse.js';
import type { TopKResponse as _tally_v1_TopKResponse, TopKResponse__Output as _tally_v1_TopKResponse__Output } from '../../tally/v1/TopKResponse.js';
import type { AggregateResponse as _tally_v1_AggregateResponse, AggregateResponse__Output as _tally_v1_AggregateResponse__Output } from '../../tally/v1/AggregateResponse.js';
import type { Long } from '@grpc/proto-loader';

export interface PipelineResponse {
  'id'?: (number | string | Long);
  'mutation'?: (_tally_v1_MutationResponse | null);
  'batch'?: (_tally_v1_BatchResponse | null);
  'get'?: (_tally_v1_GetResponse | null);
  'getMany'?: (_tally_v1_GetManyResponse | null);
  'error'?: (_tally_v1_ErrorInfo | null);
  'windowRange'?: (_tally_v1_WindowRangeResponse | null);
  'windowAt'?: (_tally_v1_WindowAtResponse | null);
  'uniqueCount'?: (_tally_v1_UniqueCountResponse | null);
  'topK'?: (_tally_v1_TopKResponse | null);
  'aggregate'?: (_tally_v1_AggregateResponse | null);
  'result'?: "mutation"|"batch"|"get"|"getMany"|"error"|"windowRange"|"windowAt"|"uniqueCount"|"topK"|"aggregate";
}

export interface PipelineResponse__Output {
  'id': (string);
  'mutation'?: (_tally_v1_MutationResponse__Output | null);
  'batch'?: (_tally_v1_BatchResponse__Output | null);
  'get'?: (_tally_v1_GetResponse__Output | null);
  'getMany'?: (_tally_v1_GetManyResponse__Output | null);
  'error'?: (_tally_v1_ErrorInfo__Output | null);
  'windowRange'?: (_tally_v1_WindowRangeResponse__Output | null);
  'windowAt'?: (_tally_v1_WindowAtResponse__Output | null);
  'uniqueCount'?: (_tally_v1_UniqueCountResponse__Output | null);
  'topK'?: (_tally_v1_TopKResponse__Output | null);
  'aggregate'?: (_tally_v1_AggregateResponse__Output | null);
  'result'?: "mutation"|"batch"|"get"|"getMany"|"error"|"windowRange"|"windowAt"|"uniqueCount"|"topK"|"aggregate";
}
