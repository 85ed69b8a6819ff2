/**
 * The idempotent apply of remote components (docs/regions.md, ADR 0011): "component of `key` from
 * `origin` = value as of origin index i" changes the local cluster only when i is above the index
 * it already holds for (origin, key). Values are absolute, so a duplicate, a replay after a
 * restart or an older update arriving late changes nothing, and the newest always wins.
 *
 * The value and its index are two reserved counters on one shard (region-keys.ts: one hash tag),
 * written by one atomic batch: compare-and-set of the index key at the version just read, and a set
 * of the value. A concurrent writer (a second replicator) makes the compare-and-set fail, and the
 * update is decided again from a fresh read. The state lives in the shards' Raft logs, replicated
 * and durable like any counter; no state machine change is needed.
 */
import { TallyError } from "../util/errors.js";
import type { TallyClient } from "./client.js";
import type { BatchOp } from "./types.js";
import { componentIndexKey, componentKey } from "./region-keys.js";

export interface ComponentUpdate {
  key: Buffer;
  /** The origin's absolute value of the key (0 for a deleted key). */
  value: bigint;
  /** The origin log index the value reflects. */
  index: bigint;
}

export interface ApplyOutcome {
  /** Updates written. */
  applied: number;
  /** Updates not newer than what was held (duplicates, replays, late arrivals). */
  stale: number;
}

/** Reads of many keys in one go; writes of an atomic batch (the slice of TallyClient used). */
export type ComponentStore = Pick<TallyClient, "getMany" | "addBatch">;

const READ_CHUNK = 500;
const CAS_ATTEMPTS_MAX = 8;

/** The newest update per key (highest index), in first-seen order: what a batch reduces to. */
export function newestPerKey(updates: readonly ComponentUpdate[]): ComponentUpdate[] {
  const newest = new Map<string, ComponentUpdate>();
  for (const update of updates) {
    const name = update.key.toString("latin1");
    const held = newest.get(name);
    if (held === undefined || update.index > held.index) newest.set(name, update);
  }
  return [...newest.values()];
}

/** The guard: an update applies only above the held index (0 when none is held). */
export function isNewer(heldIndex: bigint, update: ComponentUpdate): boolean {
  return update.index > heldIndex;
}

/** Applies `updates` from `origin` to the local cluster, each at most once and never backwards. */
export async function applyComponents(store: ComponentStore, origin: string, updates: readonly ComponentUpdate[]): Promise<ApplyOutcome> {
  const outcome: ApplyOutcome = { applied: 0, stale: 0 };
  const newest = newestPerKey(updates);
  outcome.stale += updates.length - newest.length;
  for (let start = 0; start < newest.length; start += READ_CHUNK) {
    const chunk = newest.slice(start, start + READ_CHUNK);
    const held = await store.getMany(chunk.map((update) => componentIndexKey(origin, update.key)));
    const ops: BatchOp[] = [];
    const newer: ComponentUpdate[] = [];
    chunk.forEach((update, i) => {
      if (!isNewer(held[i]!.value, update)) return;
      newer.push(update);
      ops.push(...pairOps(origin, update, held[i]!.version));
    });
    outcome.stale += chunk.length - newer.length;
    if (newer.length === 0) continue;
    // The whole chunk at once (one atomic unit per local shard); if any compare-and-set lost a
    // race, every update of the chunk is decided again alone (those that applied are then stale).
    try {
      await store.addBatch(ops);
      outcome.applied += newer.length;
      continue;
    } catch (error) {
      if (!isVersionMismatch(error)) throw error;
    }
    const again = await store.getMany(newer.map((update) => componentIndexKey(origin, update.key)));
    const results = await Promise.all(newer.map((update, i) => applyOne(store, origin, update, again[i]!.value, again[i]!.version)));
    for (const applied of results) {
      if (applied) outcome.applied++;
      else outcome.stale++;
    }
  }
  return outcome;
}

/** An atomic batch reports its failed op as a BatchError carrying that op's code. */
function isVersionMismatch(error: unknown): boolean {
  return error instanceof TallyError && error.code === "VERSION_MISMATCH";
}

/** The two ops of one update: the index moves from the version read, the value is set with it. */
function pairOps(origin: string, update: ComponentUpdate, heldVersion: bigint): BatchOp[] {
  return [
    { op: "compareAndSet", key: componentIndexKey(origin, update.key), expectedVersion: heldVersion, value: update.index },
    { op: "set", key: componentKey(origin, update.key), value: update.value },
  ];
}

/** One update: compare-and-set loop on the index key; true when it wrote. */
async function applyOne(
  store: ComponentStore,
  origin: string,
  update: ComponentUpdate,
  heldIndex: bigint,
  heldVersion: bigint,
): Promise<boolean> {
  const indexKey = componentIndexKey(origin, update.key);
  let index = heldIndex;
  let version = heldVersion;
  for (let attempt = 1; ; attempt++) {
    if (!isNewer(index, update)) return false;
    try {
      await store.addBatch(pairOps(origin, update, version));
      return true;
    } catch (error) {
      if (!isVersionMismatch(error) || attempt >= CAS_ATTEMPTS_MAX) throw error;
      const [fresh] = await store.getMany([indexKey]);
      index = fresh!.value;
      version = fresh!.version;
    }
  }
}
