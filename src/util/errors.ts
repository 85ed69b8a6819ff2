/**
 * Expected failures, as named classes with a `cause` (nats.js style). server/status.ts maps each
 * to one gRPC status code; the client library maps them back. A timed-out mutation is Ambiguous,
 * never "failed": it may or may not have been applied, and retrying it with the same session
 * sequence number is the only safe move.
 */
export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_LEADER"
  | "WRONG_SHARD"
  | "AMBIGUOUS"
  | "OVERLOADED"
  | "OUT_OF_RANGE"
  | "FAILED_PRECONDITION"
  | "VERSION_MISMATCH"
  | "SESSION_EXPIRED"
  | "SEQ_ACKNOWLEDGED"
  | "UNAVAILABLE"
  | "TIMEOUT"
  | "NOT_FOUND"
  | "INTERNAL"
  | "CORRUPTION"
  | "PERMISSION_DENIED"
  | "UNAUTHENTICATED";

export class TallyError extends Error {
  override name = "TallyError";
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export class InvalidArgumentError extends TallyError {
  override name = "InvalidArgumentError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("INVALID_ARGUMENT", message, options);
  }
}

/** This replica is not the leader of the group; `leaderId`/`leaderAddress` say who may be. */
export class NotLeaderError extends TallyError {
  override name = "NotLeaderError";
  constructor(
    message: string,
    readonly leaderId: string | undefined,
    readonly leaderAddress: string | undefined,
    readonly shardId: number,
  ) {
    super("NOT_LEADER", message);
  }
}

/** The request was routed by a stale shard epoch or to a replica that does not own the key. */
export class WrongShardError extends TallyError {
  override name = "WrongShardError";
  constructor(
    message: string,
    readonly shardId: number,
    readonly currentEpoch: number,
  ) {
    super("WRONG_SHARD", message);
  }
}

/** The outcome is unknown: the mutation may or may not have been applied. Retry with the same seq. */
export class AmbiguousError extends TallyError {
  override name = "AmbiguousError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("AMBIGUOUS", message, options);
  }
}

export class OverloadedError extends TallyError {
  override name = "OverloadedError";
  constructor(
    message: string,
    readonly retryAfterMs = 10,
  ) {
    super("OVERLOADED", message);
  }
}

export class OutOfRangeError extends TallyError {
  override name = "OutOfRangeError";
  constructor(message: string) {
    super("OUT_OF_RANGE", message);
  }
}

export class FailedPreconditionError extends TallyError {
  override name = "FailedPreconditionError";
  constructor(message: string) {
    super("FAILED_PRECONDITION", message);
  }
}

export class VersionMismatchError extends TallyError {
  override name = "VersionMismatchError";
  constructor(
    message: string,
    readonly currentVersion: number,
  ) {
    super("VERSION_MISMATCH", message);
  }
}

export class SessionExpiredError extends TallyError {
  override name = "SessionExpiredError";
  constructor(message: string) {
    super("SESSION_EXPIRED", message);
  }
}

/**
 * The seq is below the session's acknowledged mark (a first_unacked_seq the client sent earlier):
 * its result is forgotten and it is never applied again. This request changed nothing; whether an
 * earlier attempt of the seq applied is unknown to the server (the client said it had the answer).
 */
export class SeqAcknowledgedError extends TallyError {
  override name = "SeqAcknowledgedError";
  constructor(message: string) {
    super("SEQ_ACKNOWLEDGED", message);
  }
}

export class UnavailableError extends TallyError {
  override name = "UnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("UNAVAILABLE", message, options);
  }
}

export class CorruptionError extends TallyError {
  override name = "CorruptionError";
  constructor(message: string) {
    super("CORRUPTION", message);
  }
}

/** The request carried no credentials, or credentials this cluster does not know. Nothing was applied. */
export class UnauthenticatedError extends TallyError {
  override name = "UnauthenticatedError";
  constructor(message: string) {
    super("UNAUTHENTICATED", message);
  }
}

/** The caller is known but holds no role that allows this request. Nothing was applied. */
export class PermissionDeniedError extends TallyError {
  override name = "PermissionDeniedError";
  constructor(message: string) {
    super("PERMISSION_DENIED", message);
  }
}
