// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface MetaChangeResponse {
  'summary'?: (string);
  'operationId'?: (number | string | Long);
  'version'?: (number | string | Long);
}

export interface MetaChangeResponse__Output {
  'summary': (string);
  'operationId': (string);
  'version': (string);
}
