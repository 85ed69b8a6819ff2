// Original file: proto/tally.proto

import type { Consistency as _tally_v1_Consistency, Consistency__Output as _tally_v1_Consistency__Output } from '../../tally/v1/Consistency.js';
import type { Long } from '@grpc/proto-loader';

export interface WindowAtRequest {
  'key'?: (Buffer | Uint8Array | string);
  'timeMs'?: (number | string | Long);
  'consistency'?: (_tally_v1_Consistency);
  'minIndex'?: (number | string | Long);
  'shardId'?: (number);
  'epoch'?: (number | string | Long);
}

export interface WindowAtRequest__Output {
  'key': (Buffer);
  'timeMs': (string);
  'consistency': (_tally_v1_Consistency__Output);
  'minIndex': (string);
  'shardId': (number);
  'epoch': (string);
}
