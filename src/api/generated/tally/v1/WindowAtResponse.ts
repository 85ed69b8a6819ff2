// Original file: proto/tally.proto

import type { Fence as _tally_v1_Fence, Fence__Output as _tally_v1_Fence__Output } from '../../tally/v1/Fence.js';
import type { Long } from '@grpc/proto-loader';

export interface WindowAtResponse {
  'startMs'?: (number | string | Long);
  'resolutionMs'?: (number | string | Long);
  'sum'?: (number | string | Long);
  'count'?: (number | string | Long);
  'version'?: (number | string | Long);
  'fence'?: (_tally_v1_Fence | null);
  'appliedIndex'?: (number | string | Long);
}

export interface WindowAtResponse__Output {
  'startMs': (string);
  'resolutionMs': (string);
  'sum': (string);
  'count': (string);
  'version': (string);
  'fence': (_tally_v1_Fence__Output | null);
  'appliedIndex': (string);
}
