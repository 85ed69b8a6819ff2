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
import { Waiter, type MutationOp, type UnitEntry } from "./mutation-unit.js";
import type { MutationEngine } from "./mutations.js";
import type { ResolvedOptions } from "./options.js";
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
      const waiter = new Waiter(op, deadlineAtMs, options.signal, resolve, reject, () => this.life.inflightOps--);
      this.life.inflightOps++;
      const entry: UnitEntry = { op, waiter };
      const route = this.router.routeTable.isEmpty ? undefined : this.router.routeTable.lookup(op.slot);
      if (batchable && this.options.autoBatch && route !== undefined) {
        this.batcher.enqueueBatch(route.shardId, entry);
      } else {
        this.mutations.startUnit([entry], false);
      }
    });
  }

  /** Many mutations, results in the given order; see TallyClient.addBatch. */
  async addBatch(ops: BatchOp[], options: CallOptions = {}): Promise<MutationResult[]> {
    this.life.checkOpen();
    if (!Array.isArray(ops)) throw new InvalidArgumentError("ops must be an array");
    if (ops.length > BATCH_OPS_MAX) throw new InvalidArgumentError(`a batch holds at most ${BATCH_OPS_MAX} ops, got ${ops.length}`);
    if (ops.length === 0) return [];
    const parsed = ops.map((op, index) => parseBatchOp(op, index));
    const deadlineAtMs = this.life.deadlineFor(options);
    this.life.admit(parsed.length, options.signal);
    await this.router.ensureRoutes();
    if (this.router.routeTable.hot.size > 0) parsed.forEach((op, index) => (parsed[index] = this.spreadHot(op, false, index)));
    const outcomes: BatchOutcome<MutationResult>[] = new Array(parsed.length);
    // One counter and one promise for the whole batch, not one promise per op: at 10,000 ops a
    // request the per-op promises and timers were a visible share of the client's CPU.
    let unsettled = parsed.length;
    let resolveAll!: () => void;
    const allSettled = new Promise<void>((resolve) => (resolveAll = resolve));
    const onOutcome = () => {
      unsettled--;
      assert(unsettled >= 0, "a batch op settled twice");
      if (unsettled === 0) resolveAll();
    };
    const waiters: Waiter[] = parsed.map(
      (op, index) =>
        new Waiter(
          op,
          deadlineAtMs,
          options.signal,
          (result) => {
            outcomes[index] = { ok: true, result };
            onOutcome();
          },
          (error) => {
            outcomes[index] = {
              ok: false,
              error: error instanceof TallyError ? error : new TallyError("INTERNAL", messageOf(error), { cause: error }),
            };
            onOutcome();
          },
          () => this.life.inflightOps--,
          false,
        ),
    );
    this.life.inflightOps += parsed.length;
    // Every op of the batch shares one deadline, so one timer serves them all.
    const deadlineTimer = setTimeout(
      () => {
        for (const waiter of waiters) if (!waiter.settled) waiter.leave?.(waiter, "deadline");
      },
      Math.max(0, deadlineAtMs - monotonicMs()),
    );
    const groups = new Map<number, UnitEntry[]>();
    for (const waiter of waiters) {
      const shardId = this.router.routeTable.lookup(waiter.op.slot)?.shardId ?? -1;
      let group = groups.get(shardId);
      if (group === undefined) {
        group = [];
        groups.set(shardId, group);
      }
      group.push({ op: waiter.op, waiter });
    }
    for (const entries of groups.values()) this.mutations.startUnit(entries, true);
    try {
      await allSettled;
    } finally {
      clearTimeout(deadlineTimer);
    }
    if (outcomes.every((outcome) => outcome.ok)) return outcomes.map((outcome) => (outcome as { result: MutationResult }).result);
    const failures = outcomes.filter((outcome): outcome is { ok: false; error: TallyError } => !outcome.ok);
    const ambiguous = failures.find((outcome) => outcome.error.code === "AMBIGUOUS");
    const first = ambiguous ?? failures[0]!;
    const blamedIndex = waiters.findIndex((waiter) => waiter.blamed);
    throw new BatchError(
      first.error.code,
      `batch failed for ${failures.length} of ${outcomes.length} ops: ${first.error.message}`,
      outcomes,
      blamedIndex >= 0 ? blamedIndex : undefined,
      first.error,
    );
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
