/**
 * The folded state of an eventual buffer (buffer-records.ts): per key the delta not yet cut into a
 * flush, the flushes sent and not yet answered, and the flusher's session per shard. Pure: the
 * same fold runs on replay and, record by record, as each group becomes durable.
 * Invariants: a key's delta pending + in flight = the sum of its durable adds not yet answered
 * applied; a session's lastSeq >= every seq of its flushes; flush ids are unique and increasing.
 */
import type { BufferRecord, FlushRecord } from "./buffer-records.js";
import { encodePackedAdds } from "../../util/packed-adds.js";
import { PendingTable } from "./pending-table.js";

/** How long a node remembers an EventualAdd's request id (a client retries within its deadline). */
export const REQUEST_ID_RETENTION_MS = 10 * 60_000;
/** Request ids remembered at most (the oldest are forgotten first). */
export const REQUEST_IDS_MAX = 1_000_000;

/** One key's pending delta, as a copy (PendingTable keeps no object per key). */
export interface PendingKey {
  key: Uint8Array;
  delta: bigint;
  /** Add operations summed in `delta` (a replayed compacted entry counts as one). */
  adds: number;
  /** Durable time of the oldest add in `delta`. */
  oldestMs: number;
}

export interface FlusherSession {
  clientId: number;
  lastSeq: number;
}

/** Keys up to this long are turned into strings without a Buffer view (every add looks its key up). */
const SHORT_KEY_BYTES = 128;

/** A binary key as a map key: one character per byte (latin1). */
export function keyString(key: Uint8Array): string {
  if (key.length <= SHORT_KEY_BYTES) return String.fromCharCode.apply(null, key as unknown as number[]);
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
}

export class BufferState {
  /** Per key, the delta not yet cut into a flush. */
  readonly pending = new PendingTable();
  readonly flushes = new Map<number, FlushRecord>();
  /** key -> the in-flight flush carrying it (one per key: one flush per shard at a time). */
  readonly inflightByKey = new Map<string, { flushId: number; delta: bigint }>();
  readonly sessions = new Map<number, FlusherSession>();
  nextFlushId = 1;
  /** Request ids of buffered EventualAdds (id -> durable time), oldest first, for retries' dedupe. */
  readonly requestIds = new Map<string, number>();

  apply(record: BufferRecord): void {
    switch (record.type) {
      case "adds":
        this.applyAdds(record.packed ?? encodePackedAdds(record.adds), record.atMs, record.requestId);
        return;
      case "flush":
        this.applyFlush(record.flush);
        return;
      case "done":
        this.applyDone(record.flushId, record.requeue);
        return;
      case "session":
        this.sessions.set(record.shardId, { clientId: record.clientId, lastSeq: record.lastSeq });
        return;
    }
  }

  /** Durable adds in packed form (validated), summed from their bytes; `requestId`: remembered for retries. */
  applyAdds(packed: Uint8Array, atMs: number, requestId: string | undefined): void {
    if (requestId !== undefined) this.rememberRequest(requestId, atMs);
    this.pending.addPacked(packed, atMs);
  }

  /** Keys with a pending delta, each as a copy. */
  *pendingKeys(): IterableIterator<PendingKey> {
    const { pending } = this;
    for (const row of pending.rows())
      yield { key: pending.key(row), delta: pending.delta(row), adds: pending.adds(row), oldestMs: pending.oldestMs(row) };
  }

  /** Keeps request ids for REQUEST_ID_RETENTION_MS of durable time, and at most REQUEST_IDS_MAX. */
  private rememberRequest(requestId: string, atMs: number): void {
    this.requestIds.delete(requestId);
    this.requestIds.set(requestId, atMs);
    for (const [id, seenMs] of this.requestIds) {
      if (this.requestIds.size <= REQUEST_IDS_MAX && seenMs >= atMs - REQUEST_ID_RETENTION_MS) break;
      this.requestIds.delete(id);
    }
  }

  private applyFlush(flush: FlushRecord): void {
    this.flushes.set(flush.flushId, flush);
    this.nextFlushId = Math.max(this.nextFlushId, flush.flushId + 1);
    const session = this.sessions.get(flush.shardId);
    if (session !== undefined && session.clientId === flush.clientId) session.lastSeq = Math.max(session.lastSeq, flush.seq);
    flush.ids ??= flush.adds.map((add) => keyString(add.key));
    for (let i = 0; i < flush.adds.length; i++) {
      const add = flush.adds[i]!;
      const id = flush.ids[i]!;
      const row = this.pending.find(add.key);
      if (row < 0) this.pending.insert(add.key, -add.delta, 1, flush.cutMs);
      // What stays behind arrived after the cut (or is the part of a huge sum above int64).
      else this.pending.set(row, this.pending.delta(row) - add.delta, 1, Math.max(this.pending.oldestMs(row), flush.cutMs));
      this.inflightByKey.set(id, { flushId: flush.flushId, delta: add.delta });
    }
  }

  private applyDone(flushId: number, requeue: boolean): void {
    const flush = this.flushes.get(flushId);
    if (flush === undefined) return;
    this.flushes.delete(flushId);
    const ids = flush.ids ?? flush.adds.map((add) => keyString(add.key));
    for (let i = 0; i < flush.adds.length; i++) {
      const add = flush.adds[i]!;
      const id = ids[i]!;
      if (this.inflightByKey.get(id)?.flushId === flushId) this.inflightByKey.delete(id);
      if (requeue) this.pending.add(add.key, add.delta, flush.oldestMs);
    }
  }

  /** Unflushed add operations: summed into pending deltas, plus one per key of each flush in flight. */
  unflushedAdds(): number {
    let count = 0;
    for (const row of this.pending.rows()) count += this.pending.adds(row);
    for (const flush of this.flushes.values()) count += flush.adds.length;
    return count;
  }

  /** The oldest durable time of an unflushed add on this node (undefined: none). */
  oldestMs(): number | undefined {
    let oldest: number | undefined;
    for (const row of this.pending.rows()) oldest = Math.min(oldest ?? this.pending.oldestMs(row), this.pending.oldestMs(row));
    for (const flush of this.flushes.values()) oldest = Math.min(oldest ?? flush.oldestMs, flush.oldestMs);
    return oldest;
  }

  /** Adds pending and in flight for `key`, and the age origin of the oldest (undefined: none). */
  unflushed(key: Uint8Array): { pending: bigint; inflight: bigint; oldestMs: number | undefined } {
    const row = this.pending.find(key);
    const entry = row < 0 ? undefined : { delta: this.pending.delta(row), oldestMs: this.pending.oldestMs(row) };
    const inflight = this.inflightByKey.get(keyString(key));
    const flush = inflight === undefined ? undefined : this.flushes.get(inflight.flushId);
    const times = [entry?.oldestMs, flush?.oldestMs].filter((time): time is number => time !== undefined);
    return {
      pending: entry?.delta ?? 0n,
      inflight: inflight?.delta ?? 0n,
      oldestMs: times.length === 0 ? undefined : Math.min(...times),
    };
  }

  /**
   * The state as records that fold back to it (compaction): sessions; per in-flight flush, adds of
   * its deltas then the flush itself (which subtracts them again); then what is pending.
   */
  snapshot(): BufferRecord[] {
    const records: BufferRecord[] = [];
    for (const [requestId, atMs] of this.requestIds) records.push({ type: "adds", atMs, adds: [], requestId });
    for (const [shardId, session] of this.sessions) records.push({ type: "session", shardId, ...session });
    for (const flush of this.flushes.values()) {
      records.push({ type: "adds", atMs: flush.oldestMs, adds: flush.adds });
      records.push({ type: "flush", flush });
    }
    for (const entry of this.pendingKeys())
      records.push({ type: "adds", atMs: entry.oldestMs, adds: [{ key: entry.key, delta: entry.delta }] });
    return records;
  }
}
