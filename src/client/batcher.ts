/**
 * Auto-batching (autoBatch, the default): add()s to one shard that wait together become one
 * request (one seq, packed adds), sent at the end of the event-loop turn, after batchWindowMs, or
 * as soon as maxBatchOps are queued. Each caller still gets its own result. A queued add that
 * leaves (deadline, abort) was never sent, so leaving is a plain failure.
 *
 * Group commit: while REQUESTS_PER_SHARD_MAX of a shard's auto-batches await their first answer,
 * that shard's next batch keeps gathering adds and leaves at the end of the turn in which one
 * answers or in which it reaches GROUP_COMMIT_OPS. Idle, an add still leaves at the end of its
 * turn; under load the adds of many turns share one request, and a request (gRPC call, Raft
 * entry, fsync, reply) costs the cluster far more than an add in it.
 */
import { ClientClosedError, TimeoutError } from "./errors.js";
import type { UnitEntry } from "./mutation-unit.js";
import type { ResolvedOptions } from "./options.js";

/**
 * A shard's auto-batches on their way at once. Two, so one slow answer does not hold every add
 * and a batch can gather while another is being committed (as eventual.ts's requests).
 */
export const REQUESTS_PER_SHARD_MAX = 2;
/**
 * A due batch this big leaves even while REQUESTS_PER_SHARD_MAX are on their way: the request's
 * own cost is already shared by enough adds, and holding it would only add a wait for an answer
 * (one hot key at 256 in flight, whose adds all go to one shard, lost ~15% of its adds/s to that
 * wait without this bound; at 64 it still did).
 */
export const GROUP_COMMIT_OPS = 32;

interface PendingBatch {
  entries: UnitEntry[];
  /** Cancels the scheduled flush (the end of the turn, or the window's timer); undefined: none. */
  cancelFlush: (() => void) | undefined;
  /** Its turn or window is over: it leaves as soon as the shard has a request slot free. */
  due: boolean;
}

export class AutoBatcher {
  private readonly batches = new Map<number, PendingBatch>();
  /** Auto-batches per shard that have not had their first answer yet. */
  private readonly sending = new Map<number, number>();

  constructor(
    private readonly options: ResolvedOptions,
    /**
     * Sends the flushed entries as one unit (MutationEngine.startUnit); calls `answered` once,
     * when its first attempt ends, or sooner if it first waits to retry or ends.
     */
    private readonly startUnit: (entries: UnitEntry[], atomic: boolean, answered: () => void) => void,
  ) {}

  /** close(): nothing queued was sent, so every queued caller fails with ClientClosedError. */
  rejectAll(): void {
    for (const [shardId, batch] of this.batches) {
      batch.cancelFlush?.();
      this.batches.delete(shardId);
      for (const entry of batch.entries) entry.waiter.reject(new ClientClosedError());
    }
  }

  enqueueBatch(shardId: number, entry: UnitEntry): void {
    let batch = this.batches.get(shardId);
    if (batch === undefined) {
      batch = { entries: [], cancelFlush: undefined, due: false };
      batch.cancelFlush = this.scheduleFlush(shardId, batch, this.options.batchWindowMs);
      this.batches.set(shardId, batch);
    }
    const pending = batch;
    pending.entries.push(entry);
    entry.waiter.leave = (waiter, reason) => {
      // Still queued: nothing was sent, so leaving is a plain failure.
      const index = pending.entries.indexOf(entry);
      if (index >= 0) pending.entries.splice(index, 1);
      waiter.reject(reason === "abort" ? waiter.signal?.reason : new TimeoutError("deadline passed before the request was sent"));
    };
    // A full batch leaves at once, slot or not: it is as full as a request gets.
    if (pending.entries.length >= this.options.maxBatchOps) this.send(shardId, pending);
    // A waiting batch that grew to GROUP_COMMIT_OPS leaves at the end of this turn, with all of the
    // turn's adds (sent at once, it would split them over two requests).
    else if (pending.due && pending.cancelFlush === undefined && pending.entries.length >= GROUP_COMMIT_OPS)
      pending.cancelFlush = this.scheduleFlush(shardId, pending, 0);
  }

  /** Marks the batch due after `windowMs` (0: the end of this turn) and sends it if it may leave. */
  private scheduleFlush(shardId: number, batch: PendingBatch, windowMs: number): () => void {
    const fire = (): void => {
      batch.cancelFlush = undefined;
      batch.due = true;
      if ((this.sending.get(shardId) ?? 0) < REQUESTS_PER_SHARD_MAX || batch.entries.length >= GROUP_COMMIT_OPS) this.send(shardId, batch);
    };
    if (windowMs === 0) {
      const immediate = setImmediate(fire);
      return () => clearImmediate(immediate);
    }
    const timer = setTimeout(fire, windowMs);
    return () => clearTimeout(timer);
  }

  private send(shardId: number, batch: PendingBatch): void {
    if (this.batches.get(shardId) !== batch) return;
    this.batches.delete(shardId);
    batch.cancelFlush?.();
    const live = batch.entries.filter((entry) => !entry.waiter.settled);
    if (live.length === 0) return;
    this.sending.set(shardId, (this.sending.get(shardId) ?? 0) + 1);
    this.startUnit(live, false, () => this.answered(shardId));
  }

  /**
   * One of the shard's batches had its answer: a due batch leaves at the end of this turn, so the
   * adds its callers make in reply to their results (a closed loop) join it.
   */
  private answered(shardId: number): void {
    const count = (this.sending.get(shardId) ?? 1) - 1;
    if (count > 0) this.sending.set(shardId, count);
    else this.sending.delete(shardId);
    const batch = this.batches.get(shardId);
    if (batch !== undefined && batch.due && batch.cancelFlush === undefined) batch.cancelFlush = this.scheduleFlush(shardId, batch, 0);
  }
}
