/**
 * Moves a node's buffered eventual deltas into their shards, exactly once.
 *
 * Each shard with pending keys and no flush in flight gets one flush per eventual.flushIntervalMs
 * (checked every quarter of it; at once for a shard a linearizable eventual read waits on): the
 * pending deltas of its keys (up to limits.maxBatchOps keys), cut under the flusher's session on
 * that shard and the next seq, made durable (buffer.beginFlush), then sent as one packed AddBatch
 * to the shard's leader (shard-writer.ts), with +1 on the shard's marker counter in the same
 * atomic batch (buffer-records.ts). The answer decides:
 *   applied, or SEQ_ACKNOWLEDGED (applied, result since dropped)  -> done, the buffer trims it;
 *   NOT_LEADER, UNAVAILABLE, TIMEOUT, AMBIGUOUS, OVERLOADED, ...    -> the same (client id, seq,
 *       adds) again after a backoff: the shard's session dedupes it, so it counts once;
 *   WRONG_SHARD (a split moved keys; nothing applied)              -> requeued, cut again by shard;
 *   a refusal of the state machine (nothing applied: a key of another kind, an overflow)
 *       -> requeued, and its keys go alone next time; a key refused alone is dropped and counted;
 *   SESSION_EXPIRED on the first answer to a flush cut in this process -> requeued under a new
 *       session (nothing applied); after an unanswered attempt, or for a flush replayed from disk
 *       (the node was down longer than cluster.sessionTimeoutMs), a linearizable read of the
 *       marker decides: above the value recorded before the flush -> applied; equal -> requeued
 *       (an expired session never comes back, so the old attempt can no longer apply). Only a
 *       flush without a marker (written by an older version) is still dropped and counted.
 * Invariant: at most one flush per shard in flight, and a shard's marker is written only by its
 * flush in flight; a flush is sent only after it is durable. The next flush of a shard may be cut
 * once the shard applied the previous one (its done record is still being written): a restart
 * then finds both, re-sends them in order, and the shard's session dedupes the first.
 * A restart first re-sends every replayed flush with its own session and seq, shard by shard in order.
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
import { SLOT_COUNT, slotOf } from "../../meta/slots.js";
import type { PackedAdd } from "../../util/packed-adds.js";
import type { TallyNode } from "../node.js";
import type { FlushMarker, FlushRecord } from "./buffer-records.js";
import { clampToInt64, type EventualBuffer } from "./buffer.js";
import { keyString } from "./buffer-state.js";
import { stageTrace } from "../core/stage-trace.js";
import type { EventualMetrics } from "./metrics.js";
import type { ShardWriter } from "./shard-writer.js";

const BACKOFF_MS_MIN = 20;
const BACKOFF_MS_MAX = 1_000;
/** Keys of one flush at most (also bounded by limits.maxBatchOps and the entry size). */
const FLUSH_KEYS_MAX = 10_000;
/** After a failed session registration (no leader yet), the shard waits this long. */
const SESSION_RETRY_MS = 200;
/** Hash tags tried for a shard's marker key (a one-slot range needs ~16,384 on average). */
const MARKER_SEARCH_MAX = 1_000_000;
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
  bytes: Uint8Array;
  minFlushId: number;
  resolve: () => void;
}

/** The marker counter of a shard (buffer-records.ts): its key and, once read or written, its value. */
interface ShardMarker {
  key: Uint8Array;
  value: bigint | undefined;
}

export class Flusher {
  /** Shards with a flush being cut or sent, each with the token of that flush (release checks it). */
  private readonly busy = new Map<number, object>();
  /** When each shard's last flush was cut (monotonic ms). */
  private readonly lastCutMs = new Map<number, number>();
  /** Shards a linearizable eventual read waits on: cut at the next tick whatever the interval. */
  private readonly urgent = new Set<number>();
  private readonly markers = new Map<number, ShardMarker>();
  private slotShards: Int32Array | undefined;
  /** When tick last looked at every pending key, and the shards it skipped (busy, paused or not due). */
  private lastPassMs = -Infinity;
  private deferred = new Set<number>();
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

  /** Re-sends the flushes the buffer replayed (per shard in cut order), then flushes on the tick. */
  start(): void {
    const now = Date.now();
    for (const shardId of this.buffer.state.sessions.keys()) this.sessionUsedMs.set(shardId, now);
    const replayed = new Map<number, FlushRecord[]>();
    for (const flush of [...this.buffer.state.flushes.values()].sort((a, b) => a.flushId - b.flushId)) {
      const list = replayed.get(flush.shardId) ?? [];
      replayed.set(flush.shardId, list);
      list.push(flush);
    }
    for (const [shardId, flushes] of replayed) {
      const token = this.claim(shardId);
      this.track(
        (async () => {
          for (const flush of flushes) await this.deliver(flush, true, token);
        })().finally(() => this.release(shardId, token)),
      );
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
    const done = new Promise<void>((resolve) => this.waiters.push({ key: id, bytes: key, minFlushId, resolve }));
    this.urgent.add(this.shardOfSlot(slotOf(key)));
    this.tick();
    return done;
  }

  /** Cuts and sends a flush for every idle shard with pending keys. */
  tick(): void {
    if (this.closed) return;
    const now = Date.now();
    const nowMono = performance.now();
    if (!this.anyDue(now, nowMono)) return;
    this.pass(now, nowMono);
    if (stageTrace.enabled) stageTrace.record("flushTick", performance.now() - nowMono);
  }

  /** One pass over the pending keys: a flush for each due shard. */
  private pass(now: number, nowMono: number): void {
    const byShard = new Map<number, PackedAdd[]>();
    /** Shards looked at this tick and not due: skipped without another lookup. */
    const skip = new Set<number>();
    const full = new Set<number>();
    this.lastPassMs = nowMono;
    this.deferred = skip;
    const shards = this.shardTable();
    const anyAlone = this.alone.size > 0;
    const { pending } = this.buffer.state;
    const keysMax = this.keysMax();
    for (const row of pending.rows()) {
      const shardId = shards[pending.slot(row, slotOf)]!;
      if (shardId === 0 || skip.has(shardId) || full.has(shardId)) continue;
      let adds = byShard.get(shardId);
      if (adds === undefined) {
        if (!this.due(shardId, now, nowMono)) {
          skip.add(shardId);
          continue;
        }
        byShard.set(shardId, (adds = []));
      }
      if (adds.length >= keysMax) {
        full.add(shardId);
        continue;
      }
      const key = pending.key(row);
      if (anyAlone && this.alone.has(keyString(key))) {
        // This shard's flush is this one key.
        if (adds.length === 0) adds.push({ key, delta: clampToInt64(pending.delta(row)) });
        full.add(shardId);
        continue;
      }
      adds.push({ key, delta: clampToInt64(pending.delta(row)) });
    }
    for (const [shardId, adds] of byShard) {
      if (adds.length === 0) continue;
      this.urgent.delete(shardId);
      this.lastCutMs.set(shardId, nowMono);
      const token = this.claim(shardId);
      this.track(this.flushShard(shardId, adds, token).finally(() => this.release(shardId, token)));
    }
  }

  /**
   * Whether a pass over the pending keys may cut something: a read waits, an interval passed since
   * the last pass (keys of shards it did not see), or a shard skipped by the last pass (busy or not
   * due) is due now. Most ticks answer no without looking at a key.
   */
  private anyDue(now: number, nowMono: number): boolean {
    if (this.urgent.size > 0 || nowMono - this.lastPassMs >= this.options.flushIntervalMs) return true;
    // A pass looks at every pending key: shards that come due one by one share one pass at most
    // every half interval.
    if (nowMono - this.lastPassMs < this.options.flushIntervalMs / 2) return false;
    for (const shardId of this.deferred) if (this.due(shardId, now, nowMono)) return true;
    return false;
  }

  /** Whether `shardId` gets a flush now: idle, not paused, and its interval is over (or a read waits). */
  private due(shardId: number, now: number, nowMono: number): boolean {
    if (this.busy.has(shardId) || (this.pausedUntilMs.get(shardId) ?? 0) > now) return false;
    if (this.urgent.has(shardId)) return true;
    return nowMono - (this.lastCutMs.get(shardId) ?? -Infinity) >= this.options.flushIntervalMs;
  }

  private claim(shardId: number): object {
    const token = {};
    this.busy.set(shardId, token);
    return token;
  }

  /** Frees the shard for its next flush, unless that flush was already cut (the token differs). */
  private release(shardId: number, token: object): void {
    if (this.busy.get(shardId) === token) this.busy.delete(shardId);
  }

  /** Like node.shardIdForKey, from a slot: a local replica's own range first, else the map's. */
  private shardOfSlot(slot: number): number {
    for (const replica of this.node.replicas.values())
      if (slot >= replica.descriptor.slotStart && slot < replica.descriptor.slotEnd) return replica.shardId;
    return shardOfSlotIn(this.node.map, slot);
  }

  /**
   * shardOfSlot for every slot at once (filled once per tick: a tick looks up every pending key,
   * and a lookup per key would scan the replicas each time).
   */
  private shardTable(): Int32Array {
    const table = (this.slotShards ??= new Int32Array(SLOT_COUNT));
    table.fill(0);
    for (const shard of this.node.map.shards) table.fill(shard.id, shard.slotStart, shard.slotEnd);
    for (const replica of this.node.replicas.values())
      table.fill(replica.shardId, replica.descriptor.slotStart, replica.descriptor.slotEnd);
    return table;
  }

  private keysMax(): number {
    return Math.min(FLUSH_KEYS_MAX, this.options.maxBatchOps);
  }

  private track(work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => this.log.error({ err: error }, "eventual flush failed"));
    this.running.add(tracked);
    void tracked.finally(() => this.running.delete(tracked));
  }

  private async flushShard(shardId: number, adds: PackedAdd[], token: object): Promise<void> {
    let marker: FlushMarker;
    try {
      await this.ensureSession(shardId);
      marker = await this.ensureMarker(shardId);
    } catch (error) {
      // No leader yet (an election, a restart): the adds stay pending; try again after a pause.
      this.log.debug({ shard: shardId, err: (error as Error).message }, "eventual flush: no session yet");
      this.pausedUntilMs.set(shardId, Date.now() + SESSION_RETRY_MS);
      return;
    }
    const cutMs = performance.now();
    const flush = await this.buffer.beginFlush(shardId, this.fitEntry(adds), marker);
    const sentMs = performance.now();
    this.metrics.flushSeconds.observe({ phase: "cut" }, (sentMs - cutMs) / 1000);
    await this.deliver(flush, false, token);
    this.metrics.flushSeconds.observe({ phase: "send" }, (performance.now() - sentMs) / 1000);
    this.metrics.flushSeconds.observe({ phase: "lag" }, Math.max(0, Date.now() - flush.oldestMs) / 1000);
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

  /**
   * The shard's marker: a key of this node whose slot is in the shard's range (a hash tag picks
   * it), and its value, read once (linearizable) and then kept by this flusher, its only writer.
   */
  private async ensureMarker(shardId: number): Promise<FlushMarker> {
    let marker = this.markers.get(shardId);
    const range = this.slotRange(shardId);
    if (marker === undefined || (range !== undefined && !inRange(slotOf(marker.key), range))) {
      if (range === undefined) throw new Error(`shard ${shardId} has no known slot range`);
      marker = { key: markerKey(this.node.nodeId, range), value: undefined };
      this.markers.set(shardId, marker);
    }
    if (marker.value === undefined) marker.value = await this.readMarker(shardId, marker.key);
    return { key: marker.key, before: marker.value };
  }

  private async readMarker(shardId: number, key: Uint8Array): Promise<bigint> {
    const reply = await this.writer.get(shardId, key, this.options.requestTimeoutMs);
    return BigInt(reply.value);
  }

  private slotRange(shardId: number): { start: number; end: number } | undefined {
    const replica = this.node.replicas.get(shardId);
    if (replica !== undefined) return { start: replica.descriptor.slotStart, end: replica.descriptor.slotEnd };
    const shard = this.node.map.shards.find((record) => record.id === shardId);
    return shard === undefined ? undefined : { start: shard.slotStart, end: shard.slotEnd };
  }

  /** The shard answered `flush` with `outcome`: what its marker holds now (undefined: unknown). */
  private noteMarker(flush: FlushRecord, outcome: Exclude<Outcome, "retry">): void {
    const marker = this.markers.get(flush.shardId);
    if (flush.marker === undefined || marker === undefined || Buffer.compare(marker.key, flush.marker.key) !== 0) return;
    if (outcome === "drop-unknown") marker.value = undefined;
    else marker.value = outcome === "applied" ? flush.marker.before + 1n : flush.marker.before;
  }

  /** Sends `flush` until the shard answers it, then records the answer in the buffer. */
  private async deliver(flush: FlushRecord, replayed: boolean, token: object): Promise<void> {
    let attempts = 0;
    let backoffMs = BACKOFF_MS_MIN;
    for (;;) {
      if (this.closed) return; // the buffer keeps it: the next start re-sends the same seq
      const outcome = await this.attempt(flush, replayed || attempts > 0);
      attempts++;
      if (outcome !== "retry") {
        // A replayed flush may have a successor of the same shard to re-send: no early release.
        await this.finish(flush, outcome, replayed ? undefined : token);
        return;
      }
      this.metrics.flushFailures.inc({ outcome: "retried" });
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
      backoffMs = Math.min(BACKOFF_MS_MAX, backoffMs * 2);
    }
  }

  private async attempt(flush: FlushRecord, mayHaveApplied: boolean): Promise<Outcome> {
    const adds = flush.marker === undefined ? flush.adds : [...flush.adds, { key: flush.marker.key, delta: 1n }];
    try {
      await this.writer.addBatch(flush.shardId, flush.clientId, flush.seq, adds, this.options.requestTimeoutMs);
      this.sessionUsedMs.set(flush.shardId, Date.now());
      return "applied";
    } catch (error) {
      if (error instanceof SessionExpiredError && mayHaveApplied) return this.afterExpiry(flush);
      return this.classify(error, flush);
    }
  }

  /**
   * The flush's session expired after an attempt that may have applied (or before a replayed flush
   * was answered). An expired session never comes back, so no attempt of it can apply any more:
   * the marker, read now, says whether one did.
   */
  private async afterExpiry(flush: FlushRecord): Promise<Outcome> {
    const where = { shard: flush.shardId, seq: flush.seq, keys: flush.adds.length };
    if (flush.marker === undefined) {
      this.log.error(where, "eventual flush (no marker: an older version's) outlived its session; whether it applied is unknown, dropped");
      return "drop-unknown";
    }
    let value: bigint;
    try {
      value = await this.readMarker(flush.shardId, flush.marker.key);
    } catch (error) {
      this.log.debug({ ...where, err: (error as Error).message }, "eventual flush: marker read failed, retrying");
      return "retry";
    }
    this.metrics.flushFailures.inc({ outcome: "expired_checked" });
    if (value > flush.marker.before) {
      this.log.info(where, "eventual flush outlived its session: its marker shows it applied");
      return "applied";
    }
    if (value === flush.marker.before) {
      this.log.info(where, "eventual flush outlived its session: its marker shows it did not apply; sent again under a new session");
      return "requeue";
    }
    this.log.error(
      { ...where, marker: String(value), before: String(flush.marker.before) },
      "eventual flush: its marker went back (was the key reset?); whether the flush applied is unknown, dropped (never sent twice)",
    );
    return "drop-unknown";
  }

  private classify(error: unknown, flush: FlushRecord): Outcome {
    if (error instanceof SeqAcknowledgedError) return "applied";
    if (error instanceof WrongShardError) return "requeue";
    if (error instanceof SessionExpiredError) return "requeue";
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

  /** Records the answer; `token`: the shard's claim, released as soon as the shard applied the flush. */
  private async finish(flush: FlushRecord, outcome: Exclude<Outcome, "retry">, token: object | undefined): Promise<void> {
    const requeue = outcome === "requeue" || outcome === "requeue-alone";
    if (outcome === "requeue-alone") for (const add of flush.adds) this.alone.add(keyString(add.key));
    if ((outcome === "applied" || outcome === "drop-refused") && this.alone.size > 0)
      for (const add of flush.adds) this.alone.delete(keyString(add.key));
    if (outcome === "requeue" && this.buffer.state.sessions.get(flush.shardId)?.clientId === flush.clientId)
      this.sessionUsedMs.delete(flush.shardId);
    this.noteMarker(flush, outcome);
    const written = this.buffer.finishFlush(flush.flushId, requeue);
    // Applied: the shard's next flush may be cut while this done record is written (a restart
    // re-sends this one first, and the shard dedupes it). Not applied: only after it, so that
    // the requeued adds are back in pending and a restart never takes the refusal for applied.
    if (outcome === "applied" && token !== undefined) this.release(flush.shardId, token);
    await written;
    if (outcome === "applied") this.metrics.flushes.inc();
    else if (!requeue) this.metrics.flushFailures.inc({ outcome: outcome === "drop-unknown" ? "dropped_unknown" : "dropped_refused" });
    else this.metrics.flushFailures.inc({ outcome: "requeued" });
    if (!requeue) this.wake(flush);
  }

  private wake(flush: FlushRecord): void {
    if (this.waiters.length === 0) return;
    const keys = new Set(flush.adds.map((add) => keyString(add.key)));
    const { pending, inflightByKey } = this.buffer.state;
    this.waiters = this.waiters.filter((waiter) => {
      const carried = flush.flushId >= waiter.minFlushId && keys.has(waiter.key);
      // Nothing of the key left anywhere: also the case when a flush cut just before the wait
      // began (its id below minFlushId) carried the key's last adds.
      const drained = pending.find(waiter.bytes) < 0 && !inflightByKey.has(waiter.key);
      if (!carried && !drained) return true;
      waiter.resolve();
      return false;
    });
  }
}

function inRange(slot: number, range: { start: number; end: number }): boolean {
  return slot >= range.start && slot < range.end;
}

/**
 * The marker key of `nodeId` for a shard owning `range`: \0tally:eventual:node-<id>:{<n>}, the
 * smallest n whose hash tag lands in the range (the \0 prefix keeps it out of printable key spaces).
 */
export function markerKey(nodeId: number, range: { start: number; end: number }): Uint8Array {
  for (let n = 0; n < MARKER_SEARCH_MAX; n++) {
    const key = Buffer.from(`\0tally:eventual:node-${nodeId}:{${n}}`, "latin1");
    if (inRange(slotOf(key), range)) return new Uint8Array(key);
  }
  throw new Error(`no marker key found for slots [${range.start}, ${range.end})`);
}
