/**
 * A node's eventual buffer: the durable log (buffer-log.ts) and its folded state (buffer-state.ts),
 * with the operations the service and the flusher need. Every change goes through the log first
 * and is applied to the state when its group is durable, so memory never shows what a restart
 * would not replay.
 *
 * Exactly once: beginFlush writes the flush (its session, seq and adds) and waits for the sync
 * before the flusher may send it; finishFlush records the answer. A restart folds the log and
 * finds the unanswered flushes, which the flusher re-sends with the same session and seq.
 */
import { join } from "node:path";
import { INT64_MAX, INT64_MIN } from "../../util/int64.js";
import { encodePackedAdds, type PackedAdd } from "../../util/packed-adds.js";
import type { EventualTrace } from "../core/stage-trace.js";
import { BufferLog } from "./buffer-log.js";
import { addsRecordHeader, encodeRecord, replayRecord, type BufferRecord, type FlushMarker, type FlushRecord } from "./buffer-records.js";
import { BufferState, keyString, type PendingKey } from "./buffer-state.js";

export interface EventualBufferOptions {
  /** The node's data directory; the buffer lives in <dataDir>/eventual/. */
  dataDir: string;
  fsync: boolean;
  /** Rewrite the file once it is this large (and holds something to drop). */
  compactBytes: number;
  /** Wall-clock milliseconds (staleness is reported in wall time). */
  nowMs: () => number;
}

export class EventualBuffer {
  readonly state = new BufferState();
  /** Bytes cut off the file's end at open (a torn tail). */
  tornBytes = 0;
  private compacting = false;
  /** Request ids whose adds are being written (a concurrent retry waits for the first). */
  private readonly requestsWriting = new Map<string, Promise<void>>();

  private constructor(
    private readonly log: BufferLog,
    private readonly options: EventualBufferOptions,
  ) {}

  static async open(options: EventualBufferOptions): Promise<EventualBuffer> {
    const { log, replay } = await BufferLog.open(join(options.dataDir, "eventual"), options.fsync);
    const buffer = new EventualBuffer(log, options);
    for (const payload of replay.records) replayRecord(buffer.state, payload);
    buffer.tornBytes = replay.tornBytes;
    return buffer;
  }

  get sizeBytes(): number {
    return this.log.sizeBytes;
  }

  /** Called after each group is durable: its write + sync time (s) and its records. */
  set onGroup(hook: ((seconds: number, records: number) => void) | undefined) {
    this.log.onGroup = hook;
  }

  get groupsWritten(): number {
    return this.log.groupsWritten;
  }

  /**
   * Buffers validated adds; resolves once they are durable (and counted in pending). With a
   * `requestId` already buffered (or being buffered), nothing is added again: false.
   */
  add(adds: PackedAdd[], requestId?: string): Promise<boolean> {
    return this.addPacked(encodePackedAdds(adds), requestId);
  }

  /** Whether an EventualAdd with this request id is buffered here, or being written (a retry is answered, not buffered again). */
  knowsRequest(requestId: string): boolean {
    return this.requestsWriting.has(requestId) || this.state.requestIds.has(requestId);
  }

  /**
   * Buffers adds in packed form (src/util/packed-adds.ts, already validated), written to the file
   * as they are and summed from their bytes: no object per add. As add() otherwise.
   */
  async addPacked(packed: Uint8Array, requestId?: string, trace?: EventualTrace): Promise<boolean> {
    const atMs = this.options.nowMs();
    if (requestId === undefined) {
      await this.writeAdds(atMs, packed, undefined, trace);
      return true;
    }
    const writing = this.requestsWriting.get(requestId);
    if (writing !== undefined) {
      await writing;
      return false;
    }
    if (this.state.requestIds.has(requestId)) return false;
    const write = this.writeAdds(atMs, packed, requestId, trace);
    this.requestsWriting.set(requestId, write);
    try {
      await write;
    } finally {
      this.requestsWriting.delete(requestId);
    }
    return true;
  }

  /** Keys with a pending delta (copies), oldest first is not guaranteed. */
  pendingKeys(): IterableIterator<PendingKey> {
    return this.state.pendingKeys();
  }

  /** Records a new flusher session for `shardId` (replacing the previous one, whose flushes are all answered). */
  setSession(shardId: number, clientId: number): Promise<void> {
    return this.write({ type: "session", shardId, clientId, lastSeq: 0 });
  }

  /**
   * Cuts a flush of `adds` (deltas taken from pending, clamped to int64) for `shardId` under its
   * session's next seq, and makes it durable. The caller sends it only after this resolves.
   * `marker`: the shard's marker counter and its value now (buffer-records.ts).
   */
  async beginFlush(shardId: number, adds: PackedAdd[], marker?: FlushMarker): Promise<FlushRecord> {
    const session = this.state.sessions.get(shardId);
    if (session === undefined) throw new Error(`no flusher session for shard ${shardId}`);
    const nowMs = this.options.nowMs();
    let oldestMs = nowMs;
    const ids = adds.map((add) => keyString(add.key));
    for (const add of adds) {
      const row = this.state.pending.find(add.key);
      if (row >= 0) oldestMs = Math.min(oldestMs, this.state.pending.oldestMs(row));
    }
    const flush: FlushRecord = {
      flushId: this.state.nextFlushId,
      shardId,
      clientId: session.clientId,
      seq: session.lastSeq + 1,
      oldestMs,
      cutMs: nowMs,
      adds,
    };
    if (marker !== undefined) flush.marker = marker;
    flush.ids = ids;
    // Reserved now: no second flush can take the same id or seq while this one is being written.
    this.state.nextFlushId++;
    session.lastSeq = flush.seq;
    await this.write({ type: "flush", flush });
    return flush;
  }

  /** The shard answered `flush`: applied (requeue false), or refused with nothing applied (requeue true). */
  async finishFlush(flushId: number, requeue: boolean): Promise<void> {
    await this.write({ type: "done", flushId, requeue });
    this.maybeCompact();
  }

  close(): Promise<void> {
    return this.log.close();
  }

  private write(record: BufferRecord): Promise<void> {
    return this.log.append(encodeRecord(record), () => this.state.apply(record));
  }

  /** An adds record: its header, then the packed bytes as they are (one record, no copy of them). */
  private writeAdds(atMs: number, packed: Uint8Array, requestId: string | undefined, trace?: EventualTrace): Promise<void> {
    return this.log.appendParts(addsRecordHeader(atMs, requestId), packed, () => this.state.applyAdds(packed, atMs, requestId), trace);
  }

  /** Drops answered flushes from the file once it is large; runs between groups, off the add path. */
  private maybeCompact(): void {
    if (this.compacting || this.log.sizeBytes < this.options.compactBytes) return;
    this.compacting = true;
    this.log
      .rewrite(() => this.state.snapshot().map(encodeRecord))
      .catch(() => undefined)
      .finally(() => (this.compacting = false));
  }
}

/** A pending delta as the largest part one add may carry (the rest stays pending for the next flush). */
export function clampToInt64(delta: bigint): bigint {
  return delta > INT64_MAX ? INT64_MAX : delta < INT64_MIN ? INT64_MIN : delta;
}
