// Original file: proto/tally.proto

import type { Fence as _tally_v1_Fence, Fence__Output as _tally_v1_Fence__Output } from '../../tally/v1/Fence.js';
import type { Long } from '@grpc/proto-loader';

export interface RegisterSessionResponse {
  'clientId'?: (number | string | Long);
  'fence'?: (_tally_v1_Fence | null);
}

export interface RegisterSessionResponse__Output {
  'clientId': (string);
  'fence': (_tally_v1_Fence__Output | null);
}
