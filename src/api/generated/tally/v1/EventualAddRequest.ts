// Original file: proto/tally.proto

import type { AddOp as _tally_v1_AddOp, AddOp__Output as _tally_v1_AddOp__Output } from '../../tally/v1/AddOp.js';

/**
 * Eventual adds: plain adds (no floor, no ttl) as ops or packed_adds (BatchRequest's packed form),
 * up to limits.maxBatchOps, to any keys. Bad input refuses the whole request and buffers nothing.
 * request_id (optional, 1-64 printable ASCII characters, unique per call): a retry with the same id
 * to the same node within 10 minutes is answered without buffering the adds again.
 */
export interface EventualAddRequest {
  'ops'?: (_tally_v1_AddOp)[];
  'packedAdds'?: (Buffer | Uint8Array | string);
  'requestId'?: (string);
}

/**
 * Eventual adds: plain adds (no floor, no ttl) as ops or packed_adds (BatchRequest's packed form),
 * up to limits.maxBatchOps, to any keys. Bad input refuses the whole request and buffers nothing.
 * request_id (optional, 1-64 printable ASCII characters, unique per call): a retry with the same id
 * to the same node within 10 minutes is answered without buffering the adds again.
 */
export interface EventualAddRequest__Output {
  'ops': (_tally_v1_AddOp__Output)[];
  'packedAdds': (Buffer);
  'requestId': (string);
}
