/**
 * Exact top-K and aggregations over counters: pure functions, no sketch.
 *
 * Order ("rank"): value descending, then key bytes ascending (unsigned, memcmp), so every list of
 * distinct keys has exactly one ranking and every replica and shard agrees on it.
 *
 * - `topK(entries, k)`: one shard's exact top k, with a bounded heap of k entries (the worst at the
 *   root): O(n log k) time, O(k) memory. Keys are copied into the result (an iterator may reuse
 *   its key buffer).
 * - `mergeTopK(lists, k)`: the global top k from every shard's own top k (each ranked, as topK
 *   returns them). Exact by construction because counters are partitioned: a key that is in the
 *   global top k is in the top k of the one shard that holds it. A key found in two lists means
 *   the partitions overlap (a routing bug or a stale shard map): InvalidArgumentError rather than
 *   a silently double-listed key. O(k log shards).
 * - `aggregate(entries, prefix)`: count, sum, min, max and the exact average of the values whose
 *   key starts with `prefix`; `mergeAggregates(parts)` combines per-shard results into the same
 *   thing a single pass over all entries gives. Sums are exact bigints and may exceed int64 (n
 *   counters of int64 need 63 + log2(n) bits): nothing is rounded or clamped.
 * - The average is floor division: avg = quotient + remainder / count with 0 <= remainder < count,
 *   so quotient * count + remainder = sum exactly; undefined when count is 0.
 *
 * Bounds: k <= TOP_K_MAX; at most SHARDS_MAX lists per merge. Arguments are validated (keys are
 * Uint8Array, values int64 bigint): bad input throws InvalidArgumentError / OutOfRangeError.
 */
import { InvalidArgumentError } from "../util/errors.js";
import { assert } from "../util/assert.js";
import { INT64_MAX, INT64_MIN } from "../util/int64.js";
import { describeKey, listedUnder } from "../shard/keys.js";
import { binaryString, compareBytes, requireBytes, requireInt64, requireInteger } from "./codec.js";

export const TOP_K_MAX = 10_000;
export const SHARDS_MAX = 16_384;

export interface KeyValue {
  readonly key: Uint8Array;
  readonly value: bigint;
}

export interface Average {
  readonly quotient: bigint;
  readonly remainder: bigint;
  readonly divisor: bigint;
}

export interface Aggregate {
  readonly count: number;
  readonly sum: bigint;
  /** Undefined when count is 0 (as are max and avg). */
  readonly min: bigint | undefined;
  readonly max: bigint | undefined;
  readonly avg: Average | undefined;
}

/** Negative when a ranks before b: larger value first, then smaller key. */
export function compareRank(a: KeyValue, b: KeyValue): number {
  if (a.value !== b.value) return a.value > b.value ? -1 : 1;
  return compareBytes(a.key, b.key);
}

function isEntry(entry: KeyValue): boolean {
  return (
    typeof entry === "object" &&
    entry !== null &&
    entry.key instanceof Uint8Array &&
    typeof entry.value === "bigint" &&
    entry.value >= INT64_MIN &&
    entry.value <= INT64_MAX
  );
}

/** Throws the precise error for an entry that failed isEntry (the label is built only then). */
function rejectEntry(entry: KeyValue, label: string): never {
  if (typeof entry !== "object" || entry === null) throw new InvalidArgumentError(`${label} must be a {key, value}`);
  requireBytes(entry.key, `${label}.key`);
  requireInt64(entry.value, `${label}.value`);
  throw new InvalidArgumentError(`${label} is not a valid entry`);
}

/** A binary heap ordered so that the root ranks LAST (the one to evict). */
class WorstFirstHeap<T> {
  readonly items: T[] = [];

  constructor(private readonly rank: (a: T, b: T) => number) {}

  /** True when a should sit above b: a ranks after b. */
  private above(a: T, b: T): boolean {
    return this.rank(a, b) > 0;
  }

  push(item: T): void {
    const items = this.items;
    let i = items.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.above(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  replaceRoot(item: T): void {
    const items = this.items;
    items[0] = item;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let top = i;
      if (left < items.length && this.above(items[left]!, items[top]!)) top = left;
      if (right < items.length && this.above(items[right]!, items[top]!)) top = right;
      if (top === i) return;
      [items[i], items[top]] = [items[top]!, items[i]!];
      i = top;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    const root = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) this.replaceRoot(last);
    return root;
  }
}

export function topK(entries: Iterable<KeyValue>, k: number): KeyValue[] {
  requireInteger(k, "k", 1, TOP_K_MAX);
  const heap = new WorstFirstHeap<KeyValue>(compareRank);
  let position = 0;
  for (const entry of entries) {
    if (!isEntry(entry)) rejectEntry(entry, `entries[${position}]`);
    position++;
    if (heap.items.length < k) heap.push({ key: entry.key.slice(), value: entry.value });
    else if (compareRank(entry, heap.items[0]!) < 0) heap.replaceRoot({ key: entry.key.slice(), value: entry.value });
  }
  return heap.items.sort(compareRank);
}

export function mergeTopK(lists: ReadonlyArray<readonly KeyValue[]>, k: number): KeyValue[] {
  requireInteger(k, "k", 1, TOP_K_MAX);
  if (!Array.isArray(lists) || lists.length > SHARDS_MAX)
    throw new InvalidArgumentError(`lists must be an array of at most ${SHARDS_MAX} lists`);
  for (const [s, list] of lists.entries()) {
    if (!Array.isArray(list)) throw new InvalidArgumentError(`lists[${s}] must be an array`);
    if (list.length > TOP_K_MAX) throw new InvalidArgumentError(`lists[${s}] has ${list.length} entries, above ${TOP_K_MAX}`);
    for (let i = 0; i < list.length; i++) {
      if (!isEntry(list[i]!)) rejectEntry(list[i]!, `lists[${s}][${i}]`);
      if (i > 0 && compareRank(list[i - 1]!, list[i]!) >= 0) {
        throw new InvalidArgumentError(`lists[${s}] is not ranked (value desc, key asc, keys distinct) at ${i}`);
      }
    }
  }
  // A heap of cursors, ranked by each list's head (the best is the one that ranks FIRST, so the
  // worst-first heap gets the inverted order).
  const heads = new WorstFirstHeap<{ list: number; at: number }>((a, b) => -compareRank(lists[a.list]![a.at]!, lists[b.list]![b.at]!));
  for (const [s, list] of lists.entries()) if (list.length > 0) heads.push({ list: s, at: 0 });
  const out: KeyValue[] = [];
  const seen = new Map<string, number>();
  while (out.length < k) {
    const cursor = heads.items[0];
    if (cursor === undefined) break;
    const entry = lists[cursor.list]![cursor.at]!;
    const name = binaryString(entry.key);
    const other = seen.get(name);
    if (other !== undefined) {
      throw new InvalidArgumentError(`key ${describeKey(entry.key)} is in lists ${other} and ${cursor.list}: shard partitions overlap`);
    }
    seen.set(name, cursor.list);
    out.push({ key: entry.key.slice(), value: entry.value });
    if (cursor.at + 1 < lists[cursor.list]!.length) heads.replaceRoot({ list: cursor.list, at: cursor.at + 1 });
    else heads.pop();
  }
  return out;
}

export { keyHasPrefix } from "../shard/keys.js";

export function averageOf(sum: bigint, count: number): Average | undefined {
  if (count === 0) return undefined;
  assert(Number.isSafeInteger(count) && count > 0, "count is a positive integer");
  const divisor = BigInt(count);
  let quotient = sum / divisor;
  let remainder = sum % divisor;
  // BigInt division truncates toward zero; floor it.
  if (remainder < 0n) {
    quotient -= 1n;
    remainder += divisor;
  }
  return { quotient, remainder, divisor };
}

function finish(count: number, sum: bigint, min: bigint | undefined, max: bigint | undefined): Aggregate {
  return { count, sum, min, max, avg: averageOf(sum, count) };
}

export function aggregate(entries: Iterable<KeyValue>, prefix: Uint8Array = new Uint8Array(0)): Aggregate {
  requireBytes(prefix, "prefix");
  let count = 0;
  let sum = 0n;
  let min: bigint | undefined;
  let max: bigint | undefined;
  let position = 0;
  for (const entry of entries) {
    if (!isEntry(entry)) rejectEntry(entry, `entries[${position}]`);
    position++;
    if (!listedUnder(entry.key, prefix)) continue;
    count++;
    sum += entry.value;
    if (min === undefined || entry.value < min) min = entry.value;
    if (max === undefined || entry.value > max) max = entry.value;
  }
  return finish(count, sum, min, max);
}

export function mergeAggregates(parts: Iterable<Aggregate>): Aggregate {
  let count = 0;
  let sum = 0n;
  let min: bigint | undefined;
  let max: bigint | undefined;
  for (const part of parts) {
    requireInteger(part.count, "part.count", 0, Number.MAX_SAFE_INTEGER);
    if (typeof part.sum !== "bigint") throw new InvalidArgumentError("part.sum must be a bigint");
    if (part.count === 0) {
      if (part.sum !== 0n || part.min !== undefined || part.max !== undefined)
        throw new InvalidArgumentError("an empty part must have sum 0 and no min/max");
      continue;
    }
    if (typeof part.min !== "bigint" || typeof part.max !== "bigint" || part.min > part.max) {
      throw new InvalidArgumentError("a non-empty part needs bigint min <= max");
    }
    if (count + part.count > Number.MAX_SAFE_INTEGER) throw new InvalidArgumentError("merged count above 2^53");
    count += part.count;
    sum += part.sum;
    if (min === undefined || part.min < min) min = part.min;
    if (max === undefined || part.max > max) max = part.max;
  }
  return finish(count, sum, min, max);
}
