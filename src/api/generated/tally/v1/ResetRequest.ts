// Original file: proto/tally.proto

import type { RequestHeader as _tally_v1_RequestHeader, RequestHeader__Output as _tally_v1_RequestHeader__Output } from '../../tally/v1/RequestHeader.js';

export interface ResetRequest {
  'header'?: (_tally_v1_RequestHeader | null);
  'key'?: (Buffer | Uint8Array | string);
}

export interface ResetRequest__Output {
  'header': (_tally_v1_RequestHeader__Output | null);
  'key': (Buffer);
}
