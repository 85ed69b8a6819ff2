// Original file: proto/tally.proto

import type { Fence as _tally_v1_Fence, Fence__Output as _tally_v1_Fence__Output } from '../../tally/v1/Fence.js';

export interface KeepAliveResponse {
  'fence'?: (_tally_v1_Fence | null);
}

export interface KeepAliveResponse__Output {
  'fence': (_tally_v1_Fence__Output | null);
}
