// Original file: proto/tally.proto

import type { RequestHeader as _tally_v1_RequestHeader, RequestHeader__Output as _tally_v1_RequestHeader__Output } from '../../tally/v1/RequestHeader.js';
import type { Long } from '@grpc/proto-loader';

export interface CompareAndSetRequest {
  'header'?: (_tally_v1_RequestHeader | null);
  'key'?: (Buffer | Uint8Array | string);
  /**
   * 0 = the counter must not exist
   */
  'expectedVersion'?: (number | string | Long);
  'value'?: (number | string | Long);
}

export interface CompareAndSetRequest__Output {
  'header': (_tally_v1_RequestHeader__Output | null);
  'key': (Buffer);
  /**
   * 0 = the counter must not exist
   */
  'expectedVersion': (string);
  'value': (string);
}
