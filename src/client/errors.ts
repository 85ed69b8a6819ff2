import { AmbiguousError, TallyError, UnavailableError, type ErrorCode } from "../util/errors.js";

/**
 * Client-side refinements of util/errors.ts. Each extends the class a caller already checks for
 * (`instanceof AmbiguousError`, `instanceof UnavailableError`), adding what the client knows.
 */

export type MutationKind = "add" | "set" | "reset" | "compareAndSet" | "windowAdd" | "tryAcquire" | "uniqueAdd";

/** What the client knows about a mutation whose outcome it could not learn. */
export interface AmbiguousOperation {
  kind: MutationKind;
  /** The key as the caller passed it. */
  key: string | Uint8Array;
  delta?: bigint;
  value?: bigint;
  expectedVersion?: bigint;
  shardId?: number;
  clientId?: bigint;
  seq?: bigint;
}

/**
 * The mutation may or may not have been applied, and will not be retried by the client any more.
 * It is applied at most once: the client used one (clientId, seq) for every attempt.
 */
export class AmbiguousOperationError extends AmbiguousError {
  override name = "AmbiguousOperationError";
  readonly operation: AmbiguousOperation;

  constructor(message: string, operation: AmbiguousOperation, options?: { cause?: unknown }) {
    super(message, options);
    this.operation = operation;
  }

  get key(): string | Uint8Array {
    return this.operation.key;
  }

  get delta(): bigint | undefined {
    return this.operation.delta;
  }
}

/** No endpoint answered: the cluster is down, or the addresses are wrong. */
export class ClusterUnreachableError extends UnavailableError {
  override name = "ClusterUnreachableError";
  readonly endpoints: readonly string[];

  constructor(endpoints: readonly string[], options?: { cause?: unknown }) {
    super(`cannot reach any of ${endpoints.join(",")}`, options);
    this.endpoints = endpoints;
  }
}

/** A read (or a mutation that was never sent) ran out of time without an answer. */
export class TimeoutError extends TallyError {
  override name = "TimeoutError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("TIMEOUT", message, options);
  }
}

export class ClientClosedError extends UnavailableError {
  override name = "ClientClosedError";
  constructor() {
    super("the client is closed");
  }
}

export type BatchOutcome<T> = { ok: true; result: T } | { ok: false; error: TallyError };

/**
 * addBatch failed for at least one shard. A batch is atomic per shard only: `outcomes` says, op by
 * op (in the caller's order), what happened. `code` is AMBIGUOUS when any part is ambiguous (the
 * caller must not assume those ops failed), otherwise the code of the first failed op.
 */
export class BatchError<T> extends TallyError {
  override name = "BatchError";
  readonly outcomes: readonly BatchOutcome<T>[];
  /** The caller's index of the op the server blamed, when it named one. */
  readonly opIndex: number | undefined;

  constructor(code: ErrorCode, message: string, outcomes: BatchOutcome<T>[], opIndex: number | undefined, cause: unknown) {
    super(code, message, { cause });
    this.outcomes = outcomes;
    this.opIndex = opIndex;
  }
}
