// Original file: proto/tally.proto

import type { PipelineResponse as _tally_v1_PipelineResponse, PipelineResponse__Output as _tally_v1_PipelineResponse__Output } from '../../tally/v1/PipelineResponse.js';

export interface PipelineResponseBatch {
  'responses'?: (_tally_v1_PipelineResponse)[];
}

export interface PipelineResponseBatch__Output {
  'responses': (_tally_v1_PipelineResponse__Output)[];
}
