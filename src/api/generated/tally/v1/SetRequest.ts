// Original file: proto/tally.proto

import type { RequestHeader as _tally_v1_RequestHeader, RequestHeader__Output as _tally_v1_RequestHeader__Output } from '../../tally/v1/RequestHeader.js';
import type { Long } from '@grpc/proto-loader';

export interface SetRequest {
  'header'?: (_tally_v1_RequestHeader | null);
  'key'?: (Buffer | Uint8Array | string);
  'value'?: (number | string | Long);
  'ttlMs'?: (number | string | Long);
}

export interface SetRequest__Output {
  'header': (_tally_v1_RequestHeader__Output | null);
  'key': (Buffer);
  'value': (string);
  'ttlMs': (string);
}
