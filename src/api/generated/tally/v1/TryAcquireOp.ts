// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Exact sliding-window rate limit: grants in (now - window_ms, now] never exceed limit. Result:
 * has_acquire, allowed, value = remaining, retry_after_ms. A denial is a result, not an error.
 */
export interface TryAcquireOp {
  'key'?: (Buffer | Uint8Array | string);
  'n'?: (number | string | Long);
  'limit'?: (number | string | Long);
  'windowMs'?: (number | string | Long);
}

/**
 * Exact sliding-window rate limit: grants in (now - window_ms, now] never exceed limit. Result:
 * has_acquire, allowed, value = remaining, retry_after_ms. A denial is a result, not an error.
 */
export interface TryAcquireOp__Output {
  'key': (Buffer);
  'n': (string);
  'limit': (string);
  'windowMs': (string);
}
