// Original file: proto/tally.proto

import type { OpResult as _tally_v1_OpResult, OpResult__Output as _tally_v1_OpResult__Output } from '../../tally/v1/OpResult.js';
import type { Fence as _tally_v1_Fence, Fence__Output as _tally_v1_Fence__Output } from '../../tally/v1/Fence.js';

export interface BatchResponse {
  'results'?: (_tally_v1_OpResult)[];
  'fence'?: (_tally_v1_Fence | null);
  'packedResults'?: (Buffer | Uint8Array | string);
}

export interface BatchResponse__Output {
  'results': (_tally_v1_OpResult__Output)[];
  'fence': (_tally_v1_Fence__Output | null);
  'packedResults': (Buffer);
}
