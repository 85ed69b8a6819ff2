// Original file: proto/tally.proto

import type { RequestHeader as _tally_v1_RequestHeader, RequestHeader__Output as _tally_v1_RequestHeader__Output } from '../../tally/v1/RequestHeader.js';
import type { BatchOp as _tally_v1_BatchOp, BatchOp__Output as _tally_v1_BatchOp__Output } from '../../tally/v1/BatchOp.js';

/**
 * packed_adds: an add-only batch (no floor, no TTL) in one field instead of `ops` (give one of the
 * two): per op, key length (u16 big-endian), key, delta (int64 little-endian). Its reply carries
 * packed_results instead of results: per op, value (int64 LE) and version (uint64 LE).
 * src/api/packed-batch.ts is the codec; the packed form saves a message object per op.
 */
export interface BatchRequest {
  'header'?: (_tally_v1_RequestHeader | null);
  'ops'?: (_tally_v1_BatchOp)[];
  'packedAdds'?: (Buffer | Uint8Array | string);
}

/**
 * packed_adds: an add-only batch (no floor, no TTL) in one field instead of `ops` (give one of the
 * two): per op, key length (u16 big-endian), key, delta (int64 little-endian). Its reply carries
 * packed_results instead of results: per op, value (int64 LE) and version (uint64 LE).
 * src/api/packed-batch.ts is the codec; the packed form saves a message object per op.
 */
export interface BatchRequest__Output {
  'header': (_tally_v1_RequestHeader__Output | null);
  'ops': (_tally_v1_BatchOp__Output)[];
  'packedAdds': (Buffer);
}
