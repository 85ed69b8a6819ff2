// Original file: proto/tally.proto

import type { RequestHeader as _tally_v1_RequestHeader, RequestHeader__Output as _tally_v1_RequestHeader__Output } from '../../tally/v1/RequestHeader.js';
import type { Long } from '@grpc/proto-loader';

export interface AddRequest {
  'header'?: (_tally_v1_RequestHeader | null);
  'key'?: (Buffer | Uint8Array | string);
  'delta'?: (number | string | Long);
  /**
   * when set, the add fails (FAILED_PRECONDITION) if the result < floor
   */
  'hasFloor'?: (boolean);
  'floor'?: (number | string | Long);
  /**
   * > 0: the counter expires at leader time + ttl_ms (0 = keep its expiry)
   */
  'ttlMs'?: (number | string | Long);
}

export interface AddRequest__Output {
  'header': (_tally_v1_RequestHeader__Output | null);
  'key': (Buffer);
  'delta': (string);
  /**
   * when set, the add fails (FAILED_PRECONDITION) if the result < floor
   */
  'hasFloor': (boolean);
  'floor': (string);
  /**
   * > 0: the counter expires at leader time + ttl_ms (0 = keep its expiry)
   */
  'ttlMs': (string);
}
