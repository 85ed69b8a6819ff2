/**
 * The state of mutations in flight: a Waiter per caller (settles exactly once, leaves early on
 * its deadline or abort) and a MutationUnit per request (one seq, its ops and callers, and
 * whether its outcome is unknown). mutations.ts drives them; this file holds their invariants.
 */
import { assert } from "../util/assert.js";
import { monotonicMs } from "../util/clock.js";
import { Cancellation } from "./cancellation.js";
import type { MutationKind } from "./errors.js";
import type { ShardSession } from "./session.js";
import type { MutationResult } from "./types.js";
import { BATCH_OPS_MAX, type Key } from "./values.js";

/** One mutation as the client holds it: the key encoded, its slot, every field checked. */
export interface MutationOp {
  kind: MutationKind;
  keyInput: Key;
  key: Buffer;
  slot: number;
  delta: bigint;
  floor: bigint | undefined;
  value: bigint;
  expectedVersion: bigint;
  /** The kinds' fields (0n / empty = unset). */
  ttlMs: bigint;
  eventTimeMs: bigint;
  n: bigint;
  limit: bigint;
  windowMs: bigint;
  items: Buffer[];
}

export type LeaveReason = "deadline" | "abort";

/** One caller waiting for one mutation. Settles exactly once. */
export class Waiter {
  settled = false;
  /** The current owner's handler for an early exit (deadline or abort). */
  leave: ((waiter: Waiter, reason: LeaveReason) => void) | undefined;
  /** The server named this op as the cause of its batch's failure. */
  blamed = false;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly onAbort: (() => void) | undefined;

  constructor(
    readonly op: MutationOp,
    readonly deadlineAtMs: number,
    readonly signal: AbortSignal | undefined,
    private readonly resolveFn: (result: MutationResult) => void,
    private readonly rejectFn: (error: unknown) => void,
    private readonly onSettled: () => void,
    /** False when the owner runs one shared deadline timer for many waiters (addBatch). */
    ownTimer = true,
  ) {
    this.timer = ownTimer ? setTimeout(() => this.leave?.(this, "deadline"), Math.max(0, deadlineAtMs - monotonicMs())) : undefined;
    if (signal !== undefined) {
      this.onAbort = () => this.leave?.(this, "abort");
      signal.addEventListener("abort", this.onAbort, { once: true });
    }
  }

  resolve(result: MutationResult): void {
    if (this.finish()) this.resolveFn(result);
  }

  reject(error: unknown): void {
    if (this.finish()) this.rejectFn(error);
  }

  private finish(): boolean {
    if (this.settled) return false;
    this.settled = true;
    clearTimeout(this.timer);
    if (this.onAbort !== undefined) this.signal?.removeEventListener("abort", this.onAbort);
    this.onSettled();
    return true;
  }
}

export interface UnitEntry {
  op: MutationOp;
  waiter: Waiter;
}

/**
 * One mutation request: one or more ops sent under one (clientId, seq), retried with that same
 * seq until a definite answer. `atomic` units are a caller's addBatch group (they fail together);
 * the others are auto-batches, whose callers are independent.
 *
 * Invariant: the entries (the request's content) change only while the outcome is known not to be
 * applied (`!outcomeUnknown`), and then the seq is released and a new one taken, so one seq always
 * names one request.
 */
export class MutationUnit {
  shardId: number | undefined;
  session: ShardSession | undefined;
  seq: bigint | undefined;
  /** An attempt is on the wire. */
  inFlight = false;
  /** Some attempt ended without a definite answer: it may have been applied. */
  unresolved = false;
  lastError: unknown;
  /** Attempts that timed out so far: each next attempt waits twice as long (see attemptTimeout). */
  timeouts = 0;
  /** Cancelled when every caller has left or the client closes. */
  readonly cancellation = new Cancellation();

  constructor(
    public entries: UnitEntry[],
    readonly atomic: boolean,
  ) {
    assert(entries.length >= 1 && entries.length <= BATCH_OPS_MAX, `unit size out of range: ${entries.length}`);
    assert(
      entries.every((entry) => !entry.waiter.settled),
      "a unit starts with live callers only",
    );
    this.liveCount = entries.length;
  }

  get outcomeUnknown(): boolean {
    return this.inFlight || this.unresolved;
  }

  /**
   * Callers still waiting. Invariant: equals the number of unsettled waiters while the unit runs;
   * only onWaiterLeave settles a waiter before the unit finishes, and it decrements this.
   */
  liveCount: number;

  get deadlineAtMs(): number {
    let deadline = Number.NEGATIVE_INFINITY;
    for (const entry of this.entries) if (!entry.waiter.settled) deadline = Math.max(deadline, entry.waiter.deadlineAtMs);
    return deadline;
  }
}
