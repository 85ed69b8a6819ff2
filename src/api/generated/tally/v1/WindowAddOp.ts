// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

/**
 * A windowed counter add; event_time_ms 0 = the leader's entry timestamp. Result: value = the sum
 * of the finest bucket holding the event, event_time_ms = the time used.
 */
export interface WindowAddOp {
  'key'?: (Buffer | Uint8Array | string);
  'delta'?: (number | string | Long);
  'eventTimeMs'?: (number | string | Long);
  'ttlMs'?: (number | string | Long);
}

/**
 * A windowed counter add; event_time_ms 0 = the leader's entry timestamp. Result: value = the sum
 * of the finest bucket holding the event, event_time_ms = the time used.
 */
export interface WindowAddOp__Output {
  'key': (Buffer);
  'delta': (string);
  'eventTimeMs': (string);
  'ttlMs': (string);
}
