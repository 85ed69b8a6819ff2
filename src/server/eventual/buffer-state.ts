/**
 * The folded state of an eventual buffer (buffer-records.ts): per key the delta not yet cut into a
 * flush, the flushes sent and not yet answered, and the flusher's session per shard. Pure: the
 * same fold runs on replay and, record by record, as each group becomes durable.
 * Invariants: a key's delta pending + in flight = the sum of its durable adds not yet answered
 * applied; a session's lastSeq >= every seq of its flushes; flush ids are unique and increasing.
 */
import type { BufferRecord, FlushRecord } from "./buffer-records.js";
import type { PackedAdd } from "../../util/packed-adds.js";

/** How long a node remembers an EventualAdd's request id (a client retries within its deadline). */
export const REQUEST_ID_RETENTION_MS = 10 * 60_000;
/** Request ids remembered at most (the oldest are forgotten first). */
export const REQUEST_IDS_MAX = 1_000_000;

export interface PendingKey {
  key: Uint8Array;
  delta: bigint;
  /** Add operations summed in `delta` (a replayed compacted entry counts as one). */
  adds: number;
  /** Durable time of the oldest add in `delta`. */
  oldestMs: number;
  /** The key's hash slot, computed once by the flusher (src/meta/slots.ts). */
  slot?: number;
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
  readonly pending = new Map<string, PendingKey>();
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
        if (record.requestId !== undefined) this.rememberRequest(record.requestId, record.atMs);
        for (const add of record.adds) this.addPending(add, record.atMs);
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

  /** Keeps request ids for REQUEST_ID_RETENTION_MS of durable time, and at most REQUEST_IDS_MAX. */
  private rememberRequest(requestId: string, atMs: number): void {
    this.requestIds.delete(requestId);
    this.requestIds.set(requestId, atMs);
    for (const [id, seenMs] of this.requestIds) {
      if (this.requestIds.size <= REQUEST_IDS_MAX && seenMs >= atMs - REQUEST_ID_RETENTION_MS) break;
      this.requestIds.delete(id);
    }
  }

  private addPending(add: PackedAdd, atMs: number): void {
    if (add.delta === 0n) return;
    const id = keyString(add.key);
    const entry = this.pending.get(id);
    if (entry === undefined) {
      this.pending.set(id, { key: add.key, delta: add.delta, adds: 1, oldestMs: atMs });
      return;
    }
    entry.delta += add.delta;
    entry.adds++;
    entry.oldestMs = Math.min(entry.oldestMs, atMs);
    if (entry.delta === 0n) this.pending.delete(id);
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
      const entry = this.pending.get(id);
      const left = (entry?.delta ?? 0n) - add.delta;
      if (left === 0n) this.pending.delete(id);
      else if (entry !== undefined) {
        entry.adds = 1;
        entry.delta = left;
        // What stayed behind arrived after the cut (or is the part of a huge sum above int64).
        entry.oldestMs = Math.max(entry.oldestMs, flush.cutMs);
      } else this.pending.set(id, { key: add.key, delta: left, adds: 1, oldestMs: flush.cutMs });
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
      if (requeue) this.addPending(add, flush.oldestMs);
    }
  }

  /** Unflushed add operations: summed into pending deltas, plus one per key of each flush in flight. */
  unflushedAdds(): number {
    let count = 0;
    for (const entry of this.pending.values()) count += entry.adds;
    for (const flush of this.flushes.values()) count += flush.adds.length;
    return count;
  }

  /** The oldest durable time of an unflushed add on this node (undefined: none). */
  oldestMs(): number | undefined {
    let oldest: number | undefined;
    for (const entry of this.pending.values()) oldest = Math.min(oldest ?? entry.oldestMs, entry.oldestMs);
    for (const flush of this.flushes.values()) oldest = Math.min(oldest ?? flush.oldestMs, flush.oldestMs);
    return oldest;
  }

  /** Adds pending and in flight for `key`, and the age origin of the oldest (undefined: none). */
  unflushed(key: Uint8Array): { pending: bigint; inflight: bigint; oldestMs: number | undefined } {
    const id = keyString(key);
    const entry = this.pending.get(id);
    const inflight = this.inflightByKey.get(id);
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
    for (const entry of this.pending.values())
      records.push({ type: "adds", atMs: entry.oldestMs, adds: [{ key: entry.key, delta: entry.delta }] });
    return records;
  }
}
