// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface CompareAndSetOp {
  'key'?: (Buffer | Uint8Array | string);
  'expectedVersion'?: (number | string | Long);
  'value'?: (number | string | Long);
}

export interface CompareAndSetOp__Output {
  'key': (Buffer);
  'expectedVersion': (string);
  'value': (string);
}
