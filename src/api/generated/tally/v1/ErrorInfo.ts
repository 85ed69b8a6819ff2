// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Error details: also sent as trailing metadata "tally-error-bin" on unary calls, and in the
 * standard "grpc-status-details-bin" (google.rpc.Status with google.rpc.ErrorInfo, reason = code).
 * 
 * The error contract for mutations (docs/errors.md). Read `code`, not the gRPC status:
 * applied:      OK. A retry of the same seq returns the saved result.
 * not applied:  NOT_LEADER, WRONG_SHARD, SESSION_EXPIRED, SEQ_ACKNOWLEDGED, INVALID_ARGUMENT, OUT_OF_RANGE,
 * FAILED_PRECONDITION, VERSION_MISMATCH, OVERLOADED, PERMISSION_DENIED,
 * UNAUTHENTICATED, NOT_FOUND. This request changed nothing; sending it again,
 * even under a new seq, cannot double count it. NOT_LEADER is answered only for a
 * write that never entered the log (one proposed before leadership moved is AMBIGUOUS).
 * unknown:      AMBIGUOUS, TIMEOUT, UNAVAILABLE, INTERNAL, CORRUPTION, or no answer at all. The
 * write may apply now or later: retry with the SAME (client_id, seq) or request_id,
 * never a new one.
 */
export interface ErrorInfo {
  /**
   * one of util/errors.ts ErrorCode
   */
  'code'?: (string);
  'message'?: (string);
  /**
   * NOT_LEADER: the leader this replica believes in, if any
   */
  'leaderId'?: (string);
  /**
   * NOT_LEADER: its client address
   */
  'leaderAddress'?: (string);
  'shardId'?: (number);
  /**
   * WRONG_SHARD
   */
  'currentEpoch'?: (number | string | Long);
  /**
   * VERSION_MISMATCH
   */
  'currentVersion'?: (number | string | Long);
  /**
   * OVERLOADED
   */
  'retryAfterMs'?: (number);
  /**
   * a batch failed because of this op (nothing of the batch was applied)
   */
  'hasOpIndex'?: (boolean);
  'opIndex'?: (number);
}

/**
 * Error details: also sent as trailing metadata "tally-error-bin" on unary calls, and in the
 * standard "grpc-status-details-bin" (google.rpc.Status with google.rpc.ErrorInfo, reason = code).
 * 
 * The error contract for mutations (docs/errors.md). Read `code`, not the gRPC status:
 * applied:      OK. A retry of the same seq returns the saved result.
 * not applied:  NOT_LEADER, WRONG_SHARD, SESSION_EXPIRED, SEQ_ACKNOWLEDGED, INVALID_ARGUMENT, OUT_OF_RANGE,
 * FAILED_PRECONDITION, VERSION_MISMATCH, OVERLOADED, PERMISSION_DENIED,
 * UNAUTHENTICATED, NOT_FOUND. This request changed nothing; sending it again,
 * even under a new seq, cannot double count it. NOT_LEADER is answered only for a
 * write that never entered the log (one proposed before leadership moved is AMBIGUOUS).
 * unknown:      AMBIGUOUS, TIMEOUT, UNAVAILABLE, INTERNAL, CORRUPTION, or no answer at all. The
 * write may apply now or later: retry with the SAME (client_id, seq) or request_id,
 * never a new one.
 */
export interface ErrorInfo__Output {
  /**
   * one of util/errors.ts ErrorCode
   */
  'code': (string);
  'message': (string);
  /**
   * NOT_LEADER: the leader this replica believes in, if any
   */
  'leaderId': (string);
  /**
   * NOT_LEADER: its client address
   */
  'leaderAddress': (string);
  'shardId': (number);
  /**
   * WRONG_SHARD
   */
  'currentEpoch': (string);
  /**
   * VERSION_MISMATCH
   */
  'currentVersion': (string);
  /**
   * OVERLOADED
   */
  'retryAfterMs': (number);
  /**
   * a batch failed because of this op (nothing of the batch was applied)
   */
  'hasOpIndex': (boolean);
  'opIndex': (number);
}
