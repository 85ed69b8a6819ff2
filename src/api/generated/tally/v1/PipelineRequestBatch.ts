// Original file: proto/tally.proto

import type { PipelineRequest as _tally_v1_PipelineRequest, PipelineRequest__Output as _tally_v1_PipelineRequest__Output } from '../../tally/v1/PipelineRequest.js';

export interface PipelineRequestBatch {
  'requests'?: (_tally_v1_PipelineRequest)[];
}

export interface PipelineRequestBatch__Output {
  'requests': (_tally_v1_PipelineRequest__Output)[];
}
