// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

/**
 * HyperLogLog adds. Result: value 1 if the sketch changed, else 0.
 */
export interface UniqueAddOp {
  'key'?: (Buffer | Uint8Array | string);
  'items'?: (Buffer | Uint8Array | string)[];
  'ttlMs'?: (number | string | Long);
}

/**
 * HyperLogLog adds. Result: value 1 if the sketch changed, else 0.
 */
export interface UniqueAddOp__Output {
  'key': (Buffer);
  'items': (Buffer)[];
  'ttlMs': (string);
}
