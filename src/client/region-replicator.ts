/**
 * The replicator of one origin region into the local cluster (docs/regions.md, ADR 0011): for each
 * shard of the origin, a watch of every key from the shard's change log, from the resume cursor
 * kept in the local cluster; each batch's counter changes become remote components through the
 * idempotent apply (region-apply.ts), then the cursor advances to the batch's index. A cursor the
 * origin no longer retains (OUT_OF_RANGE), or no cursor at all, means a full read of the shard
 * (top-K of every counter, at one applied index) applied at that index, then a watch from it.
 *
 * Only plain counters replicate: windowed counters, rate limits and unique counts are skipped, and
 * so are the origin's own reserved keys (its copies of third regions' components), so a region only
 * ever ships its own components. The exception, with `region` set: the origin's escrow transfer
 * totals towards this region (src/client/escrow.ts), applied by their own max-merge guard. The origin's shard set is checked every `routeCheckMs`; a split or
 * a new shard restarts every follower from the stored cursors.
 */
import { OutOfRangeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { slotOf } from "../meta/slots.js";
import type { TallyClient } from "./client.js";
import { applyTransfers, isTransferTo, type TransferUpdate } from "./escrow.js";
import { transferOutPrefix } from "./escrow-keys.js";
import { applyComponents, type ComponentUpdate } from "./region-apply.js";
import {
  checkRegion,
  componentPrefix,
  componentUserKey,
  cursorKey,
  isReserved,
  maxReplicatedKeyBytes,
  registryKey,
  seenKey,
} from "./region-keys.js";
import { followAbort } from "./cancellation.js";
import type { ShardRoute } from "./routing.js";
import type { WatchBatch } from "./types.js";

/** A full read lists at most this many counters per origin (the top-K bound). */
export const FULL_READ_MAX = 10_000;
const BACKOFF_MS = 200;
const BACKOFF_MAX_MS = 2_000;
const SEEN_WRITE_EVERY_MS = 250;

export interface RegionReplicatorOptions {
  origin: string;
  /** The local cluster (components are written here). */
  local: TallyClient;
  /** The origin region's cluster. */
  remote: TallyClient;
  logger?: Logger;
  /** Watch coalescing at the origin, ms (10..10,000; default 20). */
  coalesceMs?: number;
  /** How often the origin's shard set is checked, ms (default 2,000). */
  routeCheckMs?: number;
  /**
   * This (the local) region's name: when given, the origin's escrow transfers towards it
   * (`\0tally:escrow:o:<region>:`, src/client/escrow.ts) are applied here too.
   */
  region?: string;
  /** Called after every applied batch (metrics). */
  onBatch?: (event: ReplicatorBatchEvent) => void;
}

export interface ReplicatorBatchEvent {
  origin: string;
  shardId: number;
  index: bigint;
  applied: number;
  stale: number;
  skipped: number;
}

export interface OriginShardStatus {
  shardId: number;
  /** The origin index everything up to which is applied here. */
  cursor: bigint;
  /** Wall-clock ms of the last batch applied (0: none yet). */
  lastBatchMs: number;
}

export interface ReplicatorStatus {
  origin: string;
  shards: OriginShardStatus[];
  /** ms since every origin shard was last complete here; undefined before the first round. */
  lagMs: number | undefined;
  applied: number;
  skipped: number;
  errors: number;
  lastError: string | undefined;
  /** Full reads of an origin shard (first start, or a cursor the origin no longer retains). */
  fullReads: number;
}

/** A watch batch's plain-counter changes of the origin's own keys, as component updates (a deletion is 0). */
function updatesOf(batch: WatchBatch): ComponentUpdate[] {
  const updates: ComponentUpdate[] = [];
  for (const event of batch.events) {
    if (event.kind !== "counter" && event.kind !== "deleted") continue;
    if (isReserved(event.key)) continue;
    updates.push({ key: event.key, value: event.kind === "deleted" ? 0n : event.value, index: event.index });
  }
  return updates;
}

/** A watch batch's escrow transfer counters towards `here` (none without `here`). */
function transfersOf(batch: WatchBatch, here: string | undefined): TransferUpdate[] {
  if (here === undefined) return [];
  const updates: TransferUpdate[] = [];
  for (const event of batch.events)
    if (event.kind === "counter" && isTransferTo(here, event.key)) updates.push({ outKey: Buffer.from(event.key), value: event.value });
  return updates;
}

function sameShards(a: readonly ShardRoute[], b: readonly ShardRoute[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((route, i) => route.shardId === b[i]!.shardId && route.slotStart === b[i]!.slotStart && route.slotEnd === b[i]!.slotEnd);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

export class RegionReplicator {
  readonly origin: string;
  private readonly stopping = new AbortController();
  private readonly shards = new Map<number, OriginShardStatus>();
  private running: Promise<void> | undefined;
  private applied = 0;
  private skipped = 0;
  private errors = 0;
  private fullReads = 0;
  private lastError: string | undefined;
  private seenWrittenMs = 0;
  private readonly maxKeyBytes: number;

  constructor(private readonly options: RegionReplicatorOptions) {
    this.origin = checkRegion(options.origin);
    if (options.region !== undefined) checkRegion(options.region);
    this.maxKeyBytes = maxReplicatedKeyBytes(this.origin);
  }

  /** Starts replicating (idempotent); runs until stop(). */
  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running;
  }

  status(nowMs = Date.now()): ReplicatorStatus {
    const shards = [...this.shards.values()].map((shard) => ({ ...shard }));
    const oldest = shards.length === 0 ? 0 : Math.min(...shards.map((shard) => shard.lastBatchMs));
    return {
      origin: this.origin,
      shards,
      lagMs: oldest === 0 ? undefined : Math.max(0, nowMs - oldest),
      applied: this.applied,
      skipped: this.skipped,
      errors: this.errors,
      lastError: this.lastError,
      fullReads: this.fullReads,
    };
  }

  private fail(error: unknown, what: string): void {
    this.errors++;
    this.lastError = `${what}: ${(error as Error)?.message ?? String(error)}`;
    this.options.logger?.warn({ origin: this.origin, err: this.lastError }, "region replicator");
  }

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.options.local.set(registryKey(this.origin), 1n);
        await this.round(signal);
        failures = 0;
      } catch (error) {
        if (signal.aborted) break;
        this.fail(error, "round");
        await sleep(Math.min(BACKOFF_MAX_MS, BACKOFF_MS * 2 ** failures++), signal);
      }
    }
  }

  /** One generation of followers over one origin shard set; returns when the set changes. */
  private async round(stop: AbortSignal): Promise<void> {
    const routes = (await this.options.remote.routes()).shards;
    const generation = new AbortController();
    // A stop() during the routes call above counts too: the followers would never end.
    const unfollow = followAbort(stop, () => generation.abort());
    for (const id of [...this.shards.keys()]) if (!routes.some((route) => route.shardId === id)) this.shards.delete(id);
    const followers = routes.map((route) => this.follow(route, generation.signal));
    try {
      while (!generation.signal.aborted) {
        await sleep(this.options.routeCheckMs ?? 2_000, generation.signal);
        if (generation.signal.aborted) break;
        const now = await this.options.remote.routes().catch(() => undefined);
        if (now !== undefined && !sameShards(routes, now.shards)) break;
      }
    } finally {
      generation.abort();
      unfollow();
      await Promise.allSettled(followers);
    }
  }

  /** Follows one origin shard until `signal` aborts; errors back off and resume from the cursor. */
  private async follow(route: ShardRoute, signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        const stored = (await this.options.local.get(cursorKey(this.origin, route.shardId))).value;
        const state = this.shards.get(route.shardId) ?? { shardId: route.shardId, cursor: stored, lastBatchMs: 0 };
        state.cursor = stored > state.cursor ? stored : state.cursor;
        this.shards.set(route.shardId, state);
        if (state.cursor === 0n) await this.fullRead(route, state);
        await this.watchFrom(route, state, signal);
        failures = 0;
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof OutOfRangeError) {
          this.options.logger?.info(
            { origin: this.origin, shard: route.shardId },
            "region replicator: cursor compacted at the origin, full read",
          );
          const state = this.shards.get(route.shardId);
          if (state !== undefined) state.cursor = 0n;
          await this.options.local.set(cursorKey(this.origin, route.shardId), 0n).catch(() => undefined);
          continue;
        }
        this.fail(error, `shard ${route.shardId}`);
        await sleep(Math.min(BACKOFF_MAX_MS, BACKOFF_MS * 2 ** failures++), signal);
      }
    }
  }

  private inShard(route: ShardRoute, key: Uint8Array): boolean {
    const slot = slotOf(key);
    return slot >= route.slotStart && slot < route.slotEnd;
  }

  /** Every counter of the origin shard at one applied index, applied at that index; the cursor moves there. */
  private async fullRead(route: ShardRoute, state: OriginShardStatus): Promise<void> {
    this.fullReads++;
    const result = await this.options.remote.topK("", FULL_READ_MAX);
    const answer = result.shards.find((shard) => shard.shardId === route.shardId);
    if (answer === undefined) throw new Error(`origin shard ${route.shardId} did not answer the full read`);
    if (result.entries.length >= FULL_READ_MAX)
      this.options.logger?.error({ origin: this.origin }, `region replicator: full read truncated at ${FULL_READ_MAX} counters`);
    const updates: ComponentUpdate[] = result.entries
      .filter((entry) => this.inShard(route, entry.key))
      .map((entry) => ({ key: entry.key, value: entry.value, index: answer.appliedIndex }));
    if (result.entries.length < FULL_READ_MAX) updates.push(...(await this.deletedSince(route, updates, answer.appliedIndex)));
    const transfers: TransferUpdate[] = [];
    if (this.options.region !== undefined) {
      // Read after the index above: values only grow, so a later read loses nothing the watch skips.
      const listed = await this.options.remote.topK(transferOutPrefix(this.options.region), FULL_READ_MAX);
      for (const entry of listed.entries)
        if (this.inShard(route, entry.key)) transfers.push({ outKey: Buffer.from(entry.key), value: entry.value });
    }
    await this.applyBatch(route, state, answer.appliedIndex, updates, transfers);
  }

  /**
   * Watches the origin shard from the cursor. A reader takes the stream's batches as they come and
   * merges them (the newest update per key, the highest index); the applier takes everything merged
   * so far in one go. Applying one batch at a time could not keep up with a stream that sends a
   * batch every coalesceMs while each apply costs local commits: the backlog, and the lag, grew.
   */
  /**
   * The components held here for keys of the origin shard that a complete full read at `index` did
   * not list: deleted at the origin (reset, expiry) while the cursor was out of its change log. They
   * become 0 as of `index` (the guard keeps any that is newer).
   */
  private async deletedSince(route: ShardRoute, listed: readonly ComponentUpdate[], index: bigint): Promise<ComponentUpdate[]> {
    const held = await this.options.local.topK(componentPrefix(this.origin), FULL_READ_MAX);
    const present = new Set(listed.map((update) => update.key.toString("latin1")));
    const gone: ComponentUpdate[] = [];
    for (const entry of held.entries) {
      const key = componentUserKey(this.origin, entry.key);
      if (key === undefined || entry.value === 0n || !this.inShard(route, key) || present.has(key.toString("latin1"))) continue;
      gone.push({ key, value: 0n, index });
    }
    return gone;
  }

  private async watchFrom(route: ShardRoute, state: OriginShardStatus, signal: AbortSignal): Promise<void> {
    const reading = new AbortController();
    const unfollow = followAbort(signal, () => reading.abort());
    const merged = new Map<string, ComponentUpdate>();
    const transfers = new Map<string, TransferUpdate>();
    let mergedIndex = 0n;
    let wake: (() => void) | undefined;
    let ended = false;
    let failure: unknown;
    const reader = (async () => {
      try {
        const batches = this.options.remote.watch("", {
          prefix: true,
          slot: route.slotStart,
          fromIndex: state.cursor,
          coalesceMs: this.options.coalesceMs ?? 20,
          signal: reading.signal,
        });
        for await (const batch of batches) {
          if (batch.shardId !== route.shardId) throw new Error(`origin slot ${route.slotStart} moved to shard ${batch.shardId}`);
          for (const update of updatesOf(batch)) {
            const name = update.key.toString("latin1");
            const held = merged.get(name);
            if (held === undefined || update.index > held.index) merged.set(name, update);
          }
          for (const transfer of transfersOf(batch, this.options.region)) {
            const name = transfer.outKey.toString("latin1");
            if ((transfers.get(name)?.value ?? -1n) < transfer.value) transfers.set(name, transfer);
          }
          if (batch.index > mergedIndex) mergedIndex = batch.index;
          wake?.();
        }
      } catch (error) {
        failure = error;
      } finally {
        ended = true;
        wake?.();
      }
    })();
    try {
      for (;;) {
        if (mergedIndex === 0n) {
          if (ended) break;
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        const updates = [...merged.values()];
        const moved = [...transfers.values()];
        const index = mergedIndex;
        merged.clear();
        transfers.clear();
        mergedIndex = 0n;
        await this.applyBatch(route, state, index, updates, moved);
      }
    } finally {
      reading.abort();
      unfollow();
      await reader;
    }
    if (failure !== undefined && !signal.aborted) throw failure;
  }

  private async applyBatch(
    route: ShardRoute,
    state: OriginShardStatus,
    index: bigint,
    updates: ComponentUpdate[],
    transfers: TransferUpdate[],
  ): Promise<void> {
    const fitting = updates.filter((update) => update.key.length <= this.maxKeyBytes);
    const skipped = updates.length - fitting.length;
    if (skipped > 0) {
      this.skipped += skipped;
      this.options.logger?.warn(
        { origin: this.origin, skipped },
        `region replicator: keys longer than ${this.maxKeyBytes} bytes are not replicated`,
      );
    }
    const outcome = await applyComponents(this.options.local, this.origin, fitting);
    this.applied += outcome.applied;
    const here = this.options.region;
    if (here !== undefined && transfers.length > 0) await applyTransfers(this.options.local, this.origin, here, transfers);
    if (index > state.cursor) {
      await this.options.local.set(cursorKey(this.origin, route.shardId), index);
      state.cursor = index;
    }
    state.lastBatchMs = Date.now();
    await this.writeSeen();
    this.options.onBatch?.({ origin: this.origin, shardId: route.shardId, index, ...outcome, skipped });
  }

  /** Records (throttled) when every origin shard was last complete here: the lag readers see. */
  private async writeSeen(): Promise<void> {
    const now = Date.now();
    if (now - this.seenWrittenMs < SEEN_WRITE_EVERY_MS) return;
    const shards = [...this.shards.values()];
    if (shards.some((shard) => shard.lastBatchMs === 0)) return;
    this.seenWrittenMs = now;
    await this.options.local.set(seenKey(this.origin), BigInt(Math.min(...shards.map((shard) => shard.lastBatchMs))));
  }
}
