/**
 * Auto-batching (autoBatch, the default): add()s to one shard that wait together become one
 * request (one seq, packed adds), sent at the end of the event-loop turn, after batchWindowMs, or
 * as soon as maxBatchOps are queued. Each caller still gets its own result. A queued add that
 * leaves (deadline, abort) was never sent, so leaving is a plain failure.
 */
import { ClientClosedError, TimeoutError } from "./errors.js";
import type { UnitEntry } from "./mutation-unit.js";
import type { ResolvedOptions } from "./options.js";

interface PendingBatch {
  entries: UnitEntry[];
  /** Ends the wait (the end of the event-loop turn, or the window's timer). */
  cancelFlush(): void;
}

export class AutoBatcher {
  private readonly batches = new Map<number, PendingBatch>();

  constructor(
    private readonly options: ResolvedOptions,
    /** Sends the flushed entries as one unit (MutationEngine.startUnit). */
    private readonly startUnit: (entries: UnitEntry[], atomic: boolean) => void,
  ) {}

  /** close(): nothing queued was sent, so every queued caller fails with ClientClosedError. */
  rejectAll(): void {
    for (const [shardId, batch] of this.batches) {
      batch.cancelFlush();
      this.batches.delete(shardId);
      for (const entry of batch.entries) entry.waiter.reject(new ClientClosedError());
    }
  }

  enqueueBatch(shardId: number, entry: UnitEntry): void {
    let batch = this.batches.get(shardId);
    if (batch === undefined) {
      batch = { entries: [], cancelFlush: this.scheduleFlush(shardId) };
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
    if (pending.entries.length >= this.options.maxBatchOps) this.flushBatch(shardId);
  }

  /** Schedules an auto-batch's send; returns how to cancel it. */
  private scheduleFlush(shardId: number): () => void {
    if (this.options.batchWindowMs === 0) {
      const immediate = setImmediate(() => this.flushBatch(shardId));
      return () => clearImmediate(immediate);
    }
    const timer = setTimeout(() => this.flushBatch(shardId), this.options.batchWindowMs);
    return () => clearTimeout(timer);
  }

  private flushBatch(shardId: number): void {
    const batch = this.batches.get(shardId);
    if (batch === undefined) return;
    this.batches.delete(shardId);
    batch.cancelFlush();
    const live = batch.entries.filter((entry) => !entry.waiter.settled);
    if (live.length > 0) this.startUnit(live, false);
  }
}
