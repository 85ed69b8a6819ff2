// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface KeyValue {
  'key'?: (Buffer | Uint8Array | string);
  'value'?: (number | string | Long);
}

export interface KeyValue__Output {
  'key': (Buffer);
  'value': (string);
}
