// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface OpResult {
  'value'?: (number | string | Long);
  'version'?: (number | string | Long);
  /**
   * window_add
   */
  'eventTimeMs'?: (number | string | Long);
  /**
   * try_acquire: allowed and retry_after_ms are set
   */
  'hasAcquire'?: (boolean);
  'allowed'?: (boolean);
  'retryAfterMs'?: (number | string | Long);
}

export interface OpResult__Output {
  'value': (string);
  'version': (string);
  /**
   * window_add
   */
  'eventTimeMs': (string);
  /**
   * try_acquire: allowed and retry_after_ms are set
   */
  'hasAcquire': (boolean);
  'allowed': (boolean);
  'retryAfterMs': (string);
}
