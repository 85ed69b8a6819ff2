// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface WatchEvent {
  'key'?: (Buffer | Uint8Array | string);
  /**
   * counter: value; window: bucket sum; limit: remaining; unique: 1; deleted: 0
   */
  'value'?: (number | string | Long);
  'version'?: (number | string | Long);
  /**
   * counter, window, limit, unique, deleted
   */
  'kind'?: (string);
  /**
   * the log index of the change
   */
  'index'?: (number | string | Long);
}

export interface WatchEvent__Output {
  'key': (Buffer);
  /**
   * counter: value; window: bucket sum; limit: remaining; unique: 1; deleted: 0
   */
  'value': (string);
  'version': (string);
  /**
   * counter, window, limit, unique, deleted
   */
  'kind': (string);
  /**
   * the log index of the change
   */
  'index': (string);
}
