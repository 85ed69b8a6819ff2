// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface WindowPoint {
  'startMs'?: (number | string | Long);
  'value'?: (number | string | Long);
  'divisor'?: (number | string | Long);
}

export interface WindowPoint__Output {
  'startMs': (string);
  'value': (string);
  'divisor': (string);
}
