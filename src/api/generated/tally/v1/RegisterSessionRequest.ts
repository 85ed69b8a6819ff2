// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface RegisterSessionRequest {
  'shardId'?: (number);
  'epoch'?: (number | string | Long);
}

export interface RegisterSessionRequest__Output {
  'shardId': (number);
  'epoch': (string);
}
