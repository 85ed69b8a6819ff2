// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface SetOp {
  'key'?: (Buffer | Uint8Array | string);
  'value'?: (number | string | Long);
  'ttlMs'?: (number | string | Long);
}

export interface SetOp__Output {
  'key': (Buffer);
  'value': (string);
  'ttlMs': (string);
}
