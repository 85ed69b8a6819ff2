/**
 * From a caller's mutation to a running unit: the deadline, admission (maxInflightOps), the
 * routes, a hot key's spread over its sub-counters, the caller's Waiter, and then the auto-batch
 * or a unit of its own. addBatch groups a caller's ops by shard, one atomic unit per shard.
 */
import { monotonicMs } from "../util/clock.js";
import { assert } from "../util/assert.js";
import { slotOf } from "../meta/slots.js";
import { FailedPreconditionError, InvalidArgumentError, TallyError } from "../util/errors.js";
import type { AutoBatcher } from "./batcher.js";
import { BatchError, type BatchOutcome } from "./errors.js";
import type { Lifecycle } from "./lifecycle.js";
import { describeKey, parseBatchOp } from "./mutation-ops.js";
import { Waiter, type MutationOp, type PackedGroup, type WaiterSink } from "./mutation-unit.js";
import type { MutationEngine } from "./mutations.js";
import type { ResolvedOptions } from "./options.js";
import { allPlainAdds, groupWaiter, PackedBatch } from "./packed-group.js";
import { messageOf } from "./retry.js";
import type { Router } from "./router.js";
import type { BatchOp, CallOptions, MutationResult } from "./types.js";
import { BATCH_OPS_MAX } from "./values.js";

/** Routes older than this are refreshed (in the background) when a hot key is written. */
const HOT_ROUTES_MAX_AGE_MS = 2_000;

export class Submitter {
  constructor(
    private readonly options: ResolvedOptions,
    private readonly life: Lifecycle,
    private readonly router: Router,
    private readonly batcher: AutoBatcher,
    private readonly mutations: MutationEngine,
  ) {}

  /** One mutation; `batchable` ones may join an auto-batch. `hotReset`: a reset of a hot key's sub-counter. */
  async submit(op: MutationOp, options: CallOptions, batchable: boolean, hotReset = false): Promise<MutationResult> {
    const deadlineAtMs = this.life.deadlineFor(options);
    this.life.admit(1, options.signal);
    await this.router.ensureRoutes();
    this.life.admit(1, options.signal);
    if (this.router.routeTable.hot.size > 0) op = this.spreadHot(op, hotReset);
    return new Promise<MutationResult>((resolve, reject) => {
      const waiter = new Waiter(op, deadlineAtMs, options.signal, new PromiseSink(this.life, resolve, reject));
      this.life.inflightOps++;
      const route = this.router.routeTable.isEmpty ? undefined : this.router.routeTable.lookup(op.slot);
      if (batchable && this.options.autoBatch && route !== undefined) {
        this.batcher.enqueueBatch(route.shardId, waiter);
      } else {
        this.mutations.startUnit([waiter], false);
      }
    });
  }

  /** Many mutations, results in the given order; see TallyClient.addBatch. */
  async addBatch(ops: BatchOp[], options: CallOptions = {}): Promise<MutationResult[]> {
    this.life.checkOpen();
    if (!Array.isArray(ops)) throw new InvalidArgumentError("ops must be an array");
    if (ops.length > BATCH_OPS_MAX) throw new InvalidArgumentError(`a batch holds at most ${BATCH_OPS_MAX} ops, got ${ops.length}`);
    if (ops.length === 0) return [];
    // Plain adds travel packed, with no object per op (packed-group.ts); hot keys take the general path.
    const packed = allPlainAdds(ops) ? new PackedBatch(ops) : undefined;
    let parsed = packed === undefined ? ops.map((op, index) => parseBatchOp(op, index)) : undefined;
    const deadlineAtMs = this.life.deadlineFor(options);
    this.life.admit(ops.length, options.signal);
    await this.router.ensureRoutes();
    if (packed !== undefined && this.router.routeTable.hot.size === 0) return this.runPackedBatch(packed, deadlineAtMs, options.signal);
    parsed ??= ops.map((op, index) => parseBatchOp(op, index));
    if (this.router.routeTable.hot.size > 0) parsed.forEach((op, index) => (parsed[index] = this.spreadHot(op, false, index)));
    // One sink, one promise and one deadline timer for the whole batch, and nothing per op but its
    // Waiter (which is also its UnitEntry): a batch's ops live as long as its request, so whatever
    // is allocated per op is copied and promoted by the collector.
    const sink = new BatchSink(this.life, parsed.length);
    const waiters: Waiter[] = new Array(parsed.length);
    for (let index = 0; index < parsed.length; index++)
      waiters[index] = new Waiter(parsed[index]!, deadlineAtMs, options.signal, sink, index, false);
    this.life.inflightOps += parsed.length;
    const deadlineTimer = setTimeout(
      () => {
        for (const waiter of waiters) if (!waiter.settled) waiter.leave?.(waiter, "deadline");
      },
      Math.max(0, deadlineAtMs - monotonicMs()),
    );
    const groups = new Map<number, Waiter[]>();
    const routes = this.router.routeTable;
    for (const waiter of waiters) {
      const shardId = routes.lookup(waiter.op.slot)?.shardId ?? -1;
      let group = groups.get(shardId);
      if (group === undefined) {
        group = [];
        groups.set(shardId, group);
      }
      group.push(waiter);
    }
    for (const entries of groups.values()) this.mutations.startUnit(entries, true);
    try {
      await sink.allSettled;
    } finally {
      clearTimeout(deadlineTimer);
    }
    const blamedIndex = waiters.findIndex((waiter) => waiter.blamed);
    return batchOutcome(sink, blamedIndex >= 0 ? blamedIndex : undefined);
  }

  /** A batch of plain adds: one unit per shard, each carrying its ops as one PackedAddGroup. */
  private async runPackedBatch(packed: PackedBatch, deadlineAtMs: number, signal: AbortSignal | undefined): Promise<MutationResult[]> {
    const count = packed.slots.length;
    const sink = new BatchSink(this.life, count);
    const groups = packed.groupByShard(this.router.routeTable, sink.results);
    this.life.inflightOps += count;
    // One waiter per group, with its own deadline timer (a group split later makes new waiters).
    for (const group of groups) this.mutations.startUnit([groupWaiter(group, deadlineAtMs, signal, sink)], true);
    await sink.allSettled;
    return batchOutcome(sink, sink.blamedPosition);
  }

  /**
   * An op on a hot key: an add goes to one sub-counter (a new op, so its retries keep that key);
   * ops that cannot apply to a sum are refused here, before anything is sent.
   */
  private spreadHot(op: MutationOp, hotReset: boolean, batchIndex?: number): MutationOp {
    const hot = this.router.routeTable.hot.lookup(op.key);
    if (hot === undefined || (op.kind === "reset" && hotReset)) return op;
    const where = batchIndex === undefined ? "" : `ops[${batchIndex}]: `;
    if (op.kind !== "add" || op.floor !== undefined || op.ttlMs !== 0n) {
      const what =
        op.kind !== "add" ? (op.kind === "reset" ? "a reset inside a batch (use reset())" : `a ${op.kind}`) : "an add with a floor or TTL";
      throw new FailedPreconditionError(
        `${where}key ${describeKey(op.keyInput)} is a hot counter over ${hot.tags.length} sub-counters: ${what} cannot apply to a sum (only add, get and reset)`,
      );
    }
    // A raised count reaches a client that only writes through a periodic look at the routes.
    if (monotonicMs() - this.router.lastRefreshedAtMs > HOT_ROUTES_MAX_AGE_MS) this.router.refreshRoutesSoon();
    const key = this.router.routeTable.hot.nextSubKey(hot);
    return { ...op, key, slot: slotOf(key) };
  }
}

/** The results of a settled batch, or its BatchError. */
function batchOutcome(sink: BatchSink, blamedIndex: number | undefined): MutationResult[] {
  if (sink.errors === undefined) return sink.results;
  const outcomes = sink.outcomes();
  const failures = outcomes.filter((outcome): outcome is { ok: false; error: TallyError } => !outcome.ok);
  const ambiguous = failures.find((outcome) => outcome.error.code === "AMBIGUOUS");
  const first = ambiguous ?? failures[0]!;
  throw new BatchError(
    first.error.code,
    `batch failed for ${failures.length} of ${outcomes.length} ops: ${first.error.message}`,
    outcomes,
    blamedIndex,
    first.error,
  );
}

/** A single mutation's caller: its promise. */
class PromiseSink implements WaiterSink {
  constructor(
    private readonly life: Lifecycle,
    private readonly resolve: (result: MutationResult) => void,
    private readonly reject: (error: unknown) => void,
  ) {}

  resolved(_waiter: Waiter, result: MutationResult | undefined): void {
    assert(result !== undefined, "a single mutation resolves with its result");
    this.life.inflightOps--;
    this.resolve(result);
  }

  rejected(_waiter: Waiter, error: unknown): void {
    this.life.inflightOps--;
    this.reject(error);
  }
}

/** An addBatch's callers: each op's result or error in its place, and one promise for them all. */
class BatchSink implements WaiterSink {
  readonly results: MutationResult[];
  /** Errors by op index; undefined while every settled op succeeded. */
  errors: (TallyError | undefined)[] | undefined;
  readonly allSettled: Promise<void>;
  private resolveAll!: () => void;
  private unsettled: number;

  constructor(
    private readonly life: Lifecycle,
    count: number,
  ) {
    this.results = new Array(count);
    this.unsettled = count;
    this.allSettled = new Promise<void>((resolve) => (this.resolveAll = resolve));
  }

  /** The caller's index of the op the server named, in a group of packed adds. */
  get blamedPosition(): number | undefined {
    return this.blamedGroup?.blamedPosition;
  }
  private blamedGroup: PackedGroup | undefined;

  resolved(waiter: Waiter, result: MutationResult | undefined): void {
    // A group wrote its ops' results itself (PackedAddGroup.resolve).
    if (result !== undefined) this.results[waiter.position] = result;
    this.settled(waiter.count);
  }

  rejected(waiter: Waiter, error: unknown): void {
    this.rejectedEach(waiter, () => error);
  }

  rejectedEach(waiter: Waiter, errorFor: (opIndex: number) => unknown): void {
    const errors = (this.errors ??= new Array(this.results.length));
    const group = waiter.group;
    if (group?.blamedPosition !== undefined) this.blamedGroup = group;
    for (let i = 0; i < waiter.count; i++) {
      const error = errorFor(i);
      errors[group === undefined ? waiter.position : group.positions[i]!] =
        error instanceof TallyError ? error : new TallyError("INTERNAL", messageOf(error), { cause: error });
    }
    this.settled(waiter.count);
  }

  /** Every op's outcome, in order (once all have settled). */
  outcomes(): BatchOutcome<MutationResult>[] {
    const outcomes: BatchOutcome<MutationResult>[] = new Array(this.results.length);
    for (let i = 0; i < outcomes.length; i++) {
      const error = this.errors?.[i];
      outcomes[i] = error === undefined ? { ok: true, result: this.results[i]! } : { ok: false, error };
    }
    return outcomes;
  }

  private settled(count: number): void {
    this.life.inflightOps -= count;
    this.unsettled -= count;
    assert(this.unsettled >= 0, "a batch op settled twice");
    if (this.unsettled === 0) this.resolveAll();
  }
}
