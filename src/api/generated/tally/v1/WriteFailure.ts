// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

/**
 * A write the shard's state machine refused: nothing of it was applied.
 */
export interface WriteFailure {
  /**
   * an ErrorCode (src/util/errors.ts)
   */
  'code'?: (string);
  'message'?: (string);
  /**
   * the op that failed the write
   */
  'hasOpIndex'?: (boolean);
  'opIndex'?: (number);
  /**
   * VERSION_MISMATCH (0 = the counter did not exist)
   */
  'currentVersion'?: (number | string | Long);
  /**
   * WRONG_SHARD
   */
  'currentEpoch'?: (number | string | Long);
  /**
   * OVERLOADED
   */
  'hasRetryAfterMs'?: (boolean);
  'retryAfterMs'?: (number | string | Long);
  /**
   * the retained failure of an earlier attempt with this request_id
   */
  'duplicate'?: (boolean);
}

/**
 * A write the shard's state machine refused: nothing of it was applied.
 */
export interface WriteFailure__Output {
  /**
   * an ErrorCode (src/util/errors.ts)
   */
  'code': (string);
  'message': (string);
  /**
   * the op that failed the write
   */
  'hasOpIndex': (boolean);
  'opIndex': (number);
  /**
   * VERSION_MISMATCH (0 = the counter did not exist)
   */
  'currentVersion': (string);
  /**
   * WRONG_SHARD
   */
  'currentEpoch': (string);
  /**
   * OVERLOADED
   */
  'hasRetryAfterMs': (boolean);
  'retryAfterMs': (string);
  /**
   * the retained failure of an earlier attempt with this request_id
   */
  'duplicate': (boolean);
}
