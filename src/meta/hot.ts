/**
 * Hot counters: one logical counter spread over S sub-counters so that its adds go to several
 * shards (several Raft leaders) instead of one. Sub-counter 0 is the key itself, so a plain
 * counter declared hot keeps its value and an add from a client that has not yet learned the
 * declaration still counts. Sub-counter i > 0 is the key followed by a reserved suffix
 * `\0hot:<tag>`; the tags are chosen when S is raised, so that the sub-counters land on distinct
 * shards of the map as it is then (where the shard count allows), and never change afterwards.
 *
 * Pure and shared by meta (which picks the tags), server (which refuses a plain read of a hot key)
 * and client (which spreads adds and sums reads).
 */
import { slotOf } from "./slots.js";

/** At most this many sub-counters per hot key. */
export const HOT_SUB_COUNTERS_MAX = 64;
/** At most this many hot keys in the map (every node and client holds the list). */
export const HOT_KEYS_MAX = 1024;

/**
 * Why `tags` cannot be a hot counter's tag list, or undefined: 2..HOT_SUB_COUNTERS_MAX tags,
 * tags[0] = 0 (the key itself), all distinct non-negative integers. (Restore and backup files
 * bring tag lists from outside; chooseHotTags makes only valid ones.)
 */
export function hotTagsProblem(tags: unknown): string | undefined {
  if (!Array.isArray(tags) || tags.length < 2 || tags.length > HOT_SUB_COUNTERS_MAX || tags[0] !== 0)
    return `must be 2..${HOT_SUB_COUNTERS_MAX} tags starting with 0`;
  if (!tags.every((tag) => Number.isSafeInteger(tag) && tag >= 0) || new Set(tags).size !== tags.length)
    return "must be distinct non-negative integers";
  return undefined;
}
/** A hot key leaves room for the suffix within the 256-byte key limit. */
export const HOT_KEY_BYTES_MAX = 240;
/** How far the tag search looks for a suffix whose slot is on a less used shard. */
const TAG_SEARCH_MAX = 4096;

const SUFFIX = Buffer.from("\0hot:", "latin1");

/** In the FAILED_PRECONDITION message of a read refused for its sub-counter count: the client refreshes its routes on it. */
export const HOT_READ_REFUSED = "is a hot counter summed over";

export interface HotRecord {
  key: Uint8Array;
  /** tags[i] names sub-counter i; tags[0] = 0 is the key itself. S = tags.length. */
  tags: number[];
  /**
   * How many sub-counters writers use (a prefix of tags). Raised to tags.length only once every
   * live node has the map that declared them, so that a reader whose node still had the old S
   * cannot miss an add to a new sub-counter.
   */
  writable: number;
  /** The meta index that last raised S (activation waits for every node to have it). */
  declaredVersion: number;
  updatedMs: number;
}

/** The key of sub-counter `tag` (0 = the key itself). */
export function hotSubKey(key: Uint8Array, tag: number): Uint8Array {
  if (tag === 0) return key;
  const digits = Buffer.from(String(tag), "latin1");
  const out = new Uint8Array(key.length + SUFFIX.length + digits.length);
  out.set(key, 0);
  out.set(SUFFIX, key.length);
  out.set(digits, key.length + SUFFIX.length);
  return out;
}

/** True when the key is a sub-counter key (contains the reserved suffix); such keys cannot be declared hot. */
export function isHotSubKey(key: Uint8Array): boolean {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).includes(SUFFIX);
}

/**
 * Tags for sub-counters existing.length .. s-1. Each new sub-counter takes the smallest tag (above
 * every tag in use) whose slot lies on a shard holding the fewest sub-counters of this key so far,
 * looking at most TAG_SEARCH_MAX tags ahead; so with at least S shards every sub-counter is on a
 * different shard, with fewer they spread evenly. Deterministic: the meta state machine runs it.
 */
export function chooseHotTags(key: Uint8Array, existing: readonly number[], s: number, shardOfSlot: (slot: number) => number): number[] {
  const tags = existing.length === 0 ? [0] : [...existing];
  const used = new Map<number, number>();
  const shardIds = new Set<number>();
  for (let slot = 0; slot < 16384; slot += 1) shardIds.add(shardOfSlot(slot));
  for (const id of shardIds) used.set(id, 0);
  for (const tag of tags) {
    const shard = shardOfSlot(slotOf(hotSubKey(key, tag)));
    used.set(shard, (used.get(shard) ?? 0) + 1);
  }
  let next = Math.max(...tags) + 1;
  while (tags.length < s) {
    const least = Math.min(...used.values());
    let best: { tag: number; shard: number; count: number } | undefined;
    for (let tag = next; tag < next + TAG_SEARCH_MAX; tag++) {
      const shard = shardOfSlot(slotOf(hotSubKey(key, tag)));
      const count = used.get(shard) ?? 0;
      if (best === undefined || count < best.count) best = { tag, shard, count };
      if (count === least) break;
    }
    tags.push(best!.tag);
    used.set(best!.shard, best!.count + 1);
    next = best!.tag + 1;
  }
  return tags;
}

/** Key -> record lookup over a map's hot list, rebuilt only when the list changes. */
export class HotIndex {
  private readonly byKey = new Map<string, HotRecord>();
  private source: readonly HotRecord[] | undefined;
  private sourceVersion = -1;

  /** Rebuilds from `records` when they (or the map version naming them) changed. */
  refresh(records: readonly HotRecord[] | undefined, version: number): void {
    if (records === this.source && version === this.sourceVersion) return;
    this.source = records;
    this.sourceVersion = version;
    this.byKey.clear();
    for (const record of records ?? []) this.byKey.set(Buffer.from(record.key).toString("latin1"), record);
  }

  get size(): number {
    return this.byKey.size;
  }

  lookup(key: Uint8Array): HotRecord | undefined {
    if (this.byKey.size === 0) return undefined;
    return this.byKey.get(Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1"));
  }

  records(): HotRecord[] {
    return [...this.byKey.values()];
  }
}
