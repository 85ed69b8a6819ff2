// Original file: proto/tally.proto

import type { Fence as _tally_v1_Fence, Fence__Output as _tally_v1_Fence__Output } from '../../tally/v1/Fence.js';
import type { OpResult as _tally_v1_OpResult, OpResult__Output as _tally_v1_OpResult__Output } from '../../tally/v1/OpResult.js';
import type { WriteFailure as _tally_v1_WriteFailure, WriteFailure__Output as _tally_v1_WriteFailure__Output } from '../../tally/v1/WriteFailure.js';

/**
 * The leader's answer at fence (the term and index of the write's entry): applied, with one result
 * per op (`packed_results` when the request was packed), or refused by the shard (`failure`,
 * nothing applied). Any other error is the call's gRPC status with ErrorInfo, relayed as it is.
 */
export interface ForwardWriteResponse {
  'fence'?: (_tally_v1_Fence | null);
  'results'?: (_tally_v1_OpResult)[];
  'packedResults'?: (Buffer | Uint8Array | string);
  'failure'?: (_tally_v1_WriteFailure | null);
}

/**
 * The leader's answer at fence (the term and index of the write's entry): applied, with one result
 * per op (`packed_results` when the request was packed), or refused by the shard (`failure`,
 * nothing applied). Any other error is the call's gRPC status with ErrorInfo, relayed as it is.
 */
export interface ForwardWriteResponse__Output {
  'fence': (_tally_v1_Fence__Output | null);
  'results': (_tally_v1_OpResult__Output)[];
  'packedResults': (Buffer);
  'failure': (_tally_v1_WriteFailure__Output | null);
}
