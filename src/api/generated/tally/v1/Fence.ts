// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface Fence {
  'term'?: (number | string | Long);
  'index'?: (number | string | Long);
}

export interface Fence__Output {
  'term': (string);
  'index': (string);
}
