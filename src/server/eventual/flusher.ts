/**
 * Moves a node's buffered eventual deltas into their shards, exactly once.
 *
 * Every tick (a quarter of eventual.flushIntervalMs), each shard with pending keys and no flush in
 * flight gets one flush: the pending deltas of its keys (up to limits.maxBatchOps keys), cut under
 * the flusher's session on that shard and the next seq, made durable (buffer.beginFlush), then
 * sent as one packed AddBatch to the shard's leader (shard-writer.ts). The answer decides:
 *   applied, or SEQ_ACKNOWLEDGED (applied, result since dropped)  -> done, the buffer trims it;
 *   NOT_LEADER, UNAVAILABLE, TIMEOUT, AMBIGUOUS, OVERLOADED, ...    -> the same (client id, seq,
 *       adds) again after a backoff: the shard's session dedupes it, so it counts once;
 *   WRONG_SHARD (a split moved keys; nothing applied)              -> requeued, cut again by shard;
 *   a refusal of the state machine (nothing applied: a key of another kind, an overflow)
 *       -> requeued, and its keys go alone next time; a key refused alone is dropped and counted;
 *   SESSION_EXPIRED on the first answer to a flush cut in this process -> requeued under a new
 *       session (nothing applied); after an unanswered attempt, or for a flush replayed from disk
 *       (the node was down longer than cluster.sessionTimeoutMs), whether it applied is unknown:
 *       it is dropped and counted (never sent again under another session: no double count).
 * Invariant: at most one flush per shard in flight; a flush is sent only after it is durable.
 * A restart first re-sends every replayed flush with its own session and seq.
 */
import {
  FailedPreconditionError,
  InvalidArgumentError,
  OutOfRangeError,
  SeqAcknowledgedError,
  SessionExpiredError,
  TallyError,
  WrongShardError,
} from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { shardOfSlotIn } from "../../meta/cluster-map.js";
import { slotOf } from "../../meta/slots.js";
import type { PackedAdd } from "../../util/packed-adds.js";
import type { TallyNode } from "../node.js";
import type { FlushRecord } from "./buffer-records.js";
import { clampToInt64, type EventualBuffer } from "./buffer.js";
import { keyString } from "./buffer-state.js";
import type { EventualMetrics } from "./metrics.js";
import type { ShardWriter } from "./shard-writer.js";

const BACKOFF_MS_MIN = 20;
const BACKOFF_MS_MAX = 1_000;
/** Keys of one flush at most (also bounded by limits.maxBatchOps and the entry size). */
const FLUSH_KEYS_MAX = 10_000;
/** After a failed session registration (no leader yet), the shard waits this long. */
const SESSION_RETRY_MS = 200;
/** How long close() lets flushes in flight finish. */
const CLOSE_WAIT_MS = 1_000;

export interface FlusherOptions {
  flushIntervalMs: number;
  requestTimeoutMs: number;
  maxBatchOps: number;
  maxEntryBytes: number;
  sessionTimeoutMs: number;
}

type Outcome = "applied" | "requeue" | "requeue-alone" | "drop-refused" | "drop-unknown" | "retry";

interface Waiter {
  key: string;
  minFlushId: number;
  resolve: () => void;
}

export class Flusher {
  /** Shards with a flush being cut or sent. */
  private readonly busy = new Set<number>();
  /** Keys refused by the shard as part of a batch: flushed one per flush until one succeeds. */
  private readonly alone = new Set<string>();
  /** When each shard's session last carried a flush (wall ms): an idle one is replaced before it expires. */
  private readonly sessionUsedMs = new Map<number, number>();
  /** Shards whose session registration failed: not flushed again before this time. */
  private readonly pausedUntilMs = new Map<number, number>();
  private waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly node: TallyNode,
    private readonly buffer: EventualBuffer,
    private readonly writer: ShardWriter,
    private readonly options: FlusherOptions,
    private readonly metrics: EventualMetrics,
    private readonly log: Logger,
  ) {}

  /** Re-sends the flushes the buffer replayed, then flushes on the tick. */
  start(): void {
    const now = Date.now();
    for (const shardId of this.buffer.state.sessions.keys()) this.sessionUsedMs.set(shardId, now);
    for (const flush of [...this.buffer.state.flushes.values()]) {
      this.busy.add(flush.shardId);
      this.track(this.deliver(flush, true).finally(() => this.busy.delete(flush.shardId)));
    }
    const tickMs = Math.max(5, Math.floor(this.options.flushIntervalMs / 4));
    this.timer = setInterval(() => this.tick(), tickMs);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    for (const waiter of this.waiters) waiter.resolve();
    this.waiters = [];
    // A send in flight may take up to the request timeout; what it leaves unanswered stays in the
    // buffer and is re-sent with the same seq by the next start.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.running]), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /**
   * Resolves once every add of `key` durable on this node now has been applied by its shard (or
   * dropped and counted): a flush cut after this call that carries the key has been answered.
   */
  awaitFlushed(key: Uint8Array): Promise<void> {
    const id = keyString(key);
    const unflushed = this.buffer.state.unflushed(key);
    if (unflushed.pending === 0n && unflushed.inflight === 0n) return Promise.resolve();
    const inflight = this.buffer.state.inflightByKey.get(id);
    const minFlushId = unflushed.pending !== 0n ? this.buffer.state.nextFlushId : inflight!.flushId;
    const done = new Promise<void>((resolve) => this.waiters.push({ key: id, minFlushId, resolve }));
    this.tick();
    return done;
  }

  /** Cuts and sends a flush for every idle shard with pending keys. */
  tick(): void {
    if (this.closed) return;
    const now = Date.now();
    const byShard = new Map<number, PackedAdd[]>();
    for (const entry of this.buffer.pendingKeys()) {
      entry.slot ??= slotOf(entry.key);
      const shardId = this.shardOfSlot(entry.slot);
      if (shardId === 0 || this.busy.has(shardId) || (this.pausedUntilMs.get(shardId) ?? 0) > now) continue;
      let adds = byShard.get(shardId);
      if (adds === undefined) byShard.set(shardId, (adds = []));
      const id = keyString(entry.key);
      if (this.alone.has(id)) {
        if (adds.length === 0) adds.push({ key: entry.key, delta: clampToInt64(entry.delta) });
        this.busy.add(shardId); // this shard's flush is this one key
        continue;
      }
      if (adds.length < this.keysMax()) adds.push({ key: entry.key, delta: clampToInt64(entry.delta) });
    }
    for (const [shardId, adds] of byShard) {
      if (adds.length === 0) continue;
      this.busy.add(shardId);
      this.track(this.flushShard(shardId, adds).finally(() => this.busy.delete(shardId)));
    }
  }

  /** Like node.shardIdForKey, from a slot: a local replica's own range first, else the map's. */
  private shardOfSlot(slot: number): number {
    for (const replica of this.node.replicas.values())
      if (slot >= replica.descriptor.slotStart && slot < replica.descriptor.slotEnd) return replica.shardId;
    return shardOfSlotIn(this.node.map, slot);
  }

  private keysMax(): number {
    return Math.min(FLUSH_KEYS_MAX, this.options.maxBatchOps);
  }

  private track(work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => this.log.error({ err: error }, "eventual flush failed"));
    this.running.add(tracked);
    void tracked.finally(() => this.running.delete(tracked));
  }

  private async flushShard(shardId: number, adds: PackedAdd[]): Promise<void> {
    try {
      await this.ensureSession(shardId);
    } catch (error) {
      // No leader yet (an election, a restart): the adds stay pending; try again after a pause.
      this.log.debug({ shard: shardId, err: (error as Error).message }, "eventual flush: no session yet");
      this.pausedUntilMs.set(shardId, Date.now() + SESSION_RETRY_MS);
      return;
    }
    const flush = await this.buffer.beginFlush(shardId, this.fitEntry(adds));
    await this.deliver(flush, false);
  }

  /** Keeps the flush's Raft entry under limits.maxEntryBytes (the rest waits for the next flush). */
  private fitEntry(adds: PackedAdd[]): PackedAdd[] {
    let bytes = 64;
    for (let i = 0; i < adds.length; i++) {
      bytes += adds[i]!.key.length + 40;
      if (bytes > this.options.maxEntryBytes / 2) return adds.slice(0, Math.max(1, i));
    }
    return adds;
  }

  /** A session for the shard's next flush: the recorded one, unless idle long enough to have expired. */
  private async ensureSession(shardId: number): Promise<void> {
    const usedMs = this.sessionUsedMs.get(shardId) ?? 0;
    const fresh = Date.now() - usedMs < this.options.sessionTimeoutMs / 2;
    if (this.buffer.state.sessions.has(shardId) && fresh) return;
    const clientId = await this.writer.registerSession(shardId, this.options.requestTimeoutMs);
    await this.buffer.setSession(shardId, clientId);
    this.sessionUsedMs.set(shardId, Date.now());
  }

  /** Sends `flush` until the shard answers it, then records the answer in the buffer. */
  private async deliver(flush: FlushRecord, replayed: boolean): Promise<void> {
    let attempts = 0;
    let backoffMs = BACKOFF_MS_MIN;
    for (;;) {
      if (this.closed) return; // the buffer keeps it: the next start re-sends the same seq
      const outcome = await this.attempt(flush, replayed || attempts > 0);
      attempts++;
      if (outcome !== "retry") {
        await this.finish(flush, outcome);
        return;
      }
      this.metrics.flushFailures.inc({ outcome: "retried" });
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
      backoffMs = Math.min(BACKOFF_MS_MAX, backoffMs * 2);
    }
  }

  private async attempt(flush: FlushRecord, mayHaveApplied: boolean): Promise<Outcome> {
    try {
      await this.writer.addBatch(flush.shardId, flush.clientId, flush.seq, flush.adds, this.options.requestTimeoutMs);
      this.sessionUsedMs.set(flush.shardId, Date.now());
      return "applied";
    } catch (error) {
      return this.classify(error, flush, mayHaveApplied);
    }
  }

  private classify(error: unknown, flush: FlushRecord, mayHaveApplied: boolean): Outcome {
    if (error instanceof SeqAcknowledgedError) return "applied";
    if (error instanceof WrongShardError) return "requeue";
    if (error instanceof SessionExpiredError) {
      if (!mayHaveApplied) return "requeue";
      this.log.error(
        { shard: flush.shardId, seq: flush.seq, keys: flush.adds.length },
        "eventual flush: its session expired before an answer arrived; whether it applied is unknown, it is dropped (never sent twice)",
      );
      return "drop-unknown";
    }
    if (error instanceof FailedPreconditionError || error instanceof OutOfRangeError || error instanceof InvalidArgumentError) {
      if (flush.adds.length > 1) return "requeue-alone";
      this.log.error(
        { shard: flush.shardId, err: (error as TallyError).message },
        "eventual flush: the shard refused a key's delta; it is dropped",
      );
      return "drop-refused";
    }
    if (!(error instanceof TallyError)) this.log.warn({ err: error }, "eventual flush: unexpected error, retrying");
    return "retry";
  }

  private async finish(flush: FlushRecord, outcome: Exclude<Outcome, "retry">): Promise<void> {
    const requeue = outcome === "requeue" || outcome === "requeue-alone";
    if (outcome === "requeue-alone") for (const add of flush.adds) this.alone.add(keyString(add.key));
    if (outcome === "applied" || outcome === "drop-refused") for (const add of flush.adds) this.alone.delete(keyString(add.key));
    if (outcome === "requeue" && this.buffer.state.sessions.get(flush.shardId)?.clientId === flush.clientId)
      this.sessionUsedMs.delete(flush.shardId);
    await this.buffer.finishFlush(flush.flushId, requeue);
    if (outcome === "applied") this.metrics.flushes.inc();
    else if (!requeue) this.metrics.flushFailures.inc({ outcome: outcome === "drop-unknown" ? "dropped_unknown" : "dropped_refused" });
    else this.metrics.flushFailures.inc({ outcome: "requeued" });
    if (!requeue) this.wake(flush);
  }

  private wake(flush: FlushRecord): void {
    const keys = new Set(flush.adds.map((add) => keyString(add.key)));
    const { pending, inflightByKey } = this.buffer.state;
    this.waiters = this.waiters.filter((waiter) => {
      const carried = flush.flushId >= waiter.minFlushId && keys.has(waiter.key);
      // Nothing of the key left anywhere: also the case when a flush cut just before the wait
      // began (its id below minFlushId) carried the key's last adds.
      const drained = !pending.has(waiter.key) && !inflightByKey.has(waiter.key);
      if (!carried && !drained) return true;
      waiter.resolve();
      return false;
    });
  }
}
