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
import { BATCH_OPS_MAX, type Fence, type Key } from "./values.js";

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

/**
 * Plain adds of one addBatch bound for one shard, without an object per op (PackedAddGroup,
 * packed-group.ts): they travel as one request's packed_adds and succeed or fail together.
 */
export interface PackedGroup {
  readonly count: number;
  /** The request's packed_adds. */
  readonly bytes: Uint8Array;
  readonly slots: Uint16Array;
  /** The caller's index of each op. */
  readonly positions: Int32Array;
  /** The caller's index of the op the server named as the batch's failure. */
  blamedPosition: number | undefined;
  /** Op i as a MutationOp, for messages (failures only). */
  opAt(i: number): MutationOp;
  /** The ops at `indexes` as a group of their own (a unit split across shards). */
  subset(indexes: readonly number[]): PackedGroup;
  /** Writes the packed results into the caller's results; throws (writing nothing) if malformed. */
  resolve(packed: Uint8Array, fence: Fence): void;
}

/**
 * Where a Waiter's outcome goes, called once per waiter when it settles: a caller's own promise
 * (submit) or its place in a batch (addBatch). An object rather than closures per waiter: a
 * 10,000-op batch keeps its waiters for the whole request, and closures per op were a large part
 * of what the collector had to copy and promote.
 */
export interface WaiterSink {
  /** `result` is undefined for a group's waiter: the group wrote its ops' results (PackedAddGroup.resolve). */
  resolved(waiter: Waiter, result: MutationResult | undefined): void;
  /** A group's waiter fails every op with the same error. */
  rejected(waiter: Waiter, error: unknown): void;
  /** A group's waiter fails each op with its own error (the sinks of addBatch, which makes groups). */
  rejectedEach?(waiter: Waiter, errorFor: (opIndex: number) => unknown): void;
}

/** One op of a unit and its caller (a Waiter is one: `waiter` is itself). */
export interface UnitEntry {
  readonly op: MutationOp;
  readonly waiter: Waiter;
}

/**
 * One caller waiting for one mutation, or for a group of plain adds (addBatch: `group`, the ops of
 * one shard, which succeed or fail together). Settles exactly once.
 */
export class Waiter implements UnitEntry {
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
    readonly sink: WaiterSink,
    /** The op's index in its caller's batch (0 for a single mutation). */
    readonly position = 0,
    /** False when the owner runs one shared deadline timer for many waiters (addBatch). */
    ownTimer = true,
    /** The packed adds this waiter stands for (its `op` is then the first of them). */
    readonly group?: PackedGroup,
  ) {
    this.timer = ownTimer ? setTimeout(() => this.leave?.(this, "deadline"), Math.max(0, deadlineAtMs - monotonicMs())) : undefined;
    if (signal !== undefined) {
      this.onAbort = () => this.leave?.(this, "abort");
      signal.addEventListener("abort", this.onAbort, { once: true });
    }
  }

  get waiter(): Waiter {
    return this;
  }

  /** Ops this waiter stands for. */
  get count(): number {
    return this.group === undefined ? 1 : this.group.count;
  }

  resolve(result: MutationResult): void {
    if (this.finish()) this.sink.resolved(this, result);
  }

  /** A group's results are in place (PackedAddGroup.resolve). */
  resolveGroup(): void {
    assert(this.group !== undefined, "only a group resolves without a result");
    if (this.finish()) this.sink.resolved(this, undefined);
  }

  reject(error: unknown): void {
    if (this.finish()) this.sink.rejected(this, error);
  }

  /** Each op its own error: `errorFor(i)` for op i of the group (0 for a single op). */
  rejectEach(errorFor: (opIndex: number) => unknown): void {
    if (this.group === undefined || this.sink.rejectedEach === undefined) return this.reject(errorFor(0));
    if (this.finish()) this.sink.rejectedEach(this, errorFor);
  }

  /**
   * Hands the group's ops over to the groups a unit split it into: settles this waiter without
   * telling the sink (the new waiters settle those ops).
   */
  retire(): void {
    assert(this.group !== undefined, "only a group's waiter is split");
    this.finish();
  }

  private finish(): boolean {
    if (this.settled) return false;
    this.settled = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.onAbort !== undefined) this.signal?.removeEventListener("abort", this.onAbort);
    return true;
  }
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
    /** Called once, by noteAnswered (the auto-batcher's request slot, batcher.ts). */
    private answered?: () => void,
  ) {
    assert(entries.length >= 1 && entries.length <= BATCH_OPS_MAX, `unit size out of range: ${entries.length}`);
    assert(
      entries.every((entry) => !entry.waiter.settled),
      "a unit starts with live callers only",
    );
    this.liveCount = entries.length;
  }

  /** The first attempt ended, or the unit waits to retry or ended: frees its auto-batch request slot (once). */
  noteAnswered(): void {
    const answered = this.answered;
    this.answered = undefined;
    answered?.();
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
