// Original file: proto/tally.proto

import type { RequestHeader as _tally_v1_RequestHeader, RequestHeader__Output as _tally_v1_RequestHeader__Output } from '../../tally/v1/RequestHeader.js';

export interface KeepAliveRequest {
  'header'?: (_tally_v1_RequestHeader | null);
}

export interface KeepAliveRequest__Output {
  'header': (_tally_v1_RequestHeader__Output | null);
}
