// Original file: proto/tally.proto

import type { Fence as _tally_v1_Fence, Fence__Output as _tally_v1_Fence__Output } from '../../tally/v1/Fence.js';
import type { Long } from '@grpc/proto-loader';

export interface UniqueCountResponse {
  'count'?: (number | string | Long);
  'sketch'?: (Buffer | Uint8Array | string);
  'fence'?: (_tally_v1_Fence | null);
  'appliedIndex'?: (number | string | Long);
}

export interface UniqueCountResponse__Output {
  'count': (string);
  'sketch': (Buffer);
  'fence': (_tally_v1_Fence__Output | null);
  'appliedIndex': (string);
}
