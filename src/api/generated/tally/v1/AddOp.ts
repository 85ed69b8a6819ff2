// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface AddOp {
  'key'?: (Buffer | Uint8Array | string);
  'delta'?: (number | string | Long);
  'hasFloor'?: (boolean);
  'floor'?: (number | string | Long);
  'ttlMs'?: (number | string | Long);
}

export interface AddOp__Output {
  'key': (Buffer);
  'delta': (string);
  'hasFloor': (boolean);
  'floor': (string);
  'ttlMs': (string);
}
