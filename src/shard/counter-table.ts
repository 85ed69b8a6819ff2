/**
 * The counters of one shard: key -> (value, version), built for a small per-counter footprint.
 *
 * A Map from the key's latin1 string to a slot number (a small integer, so no heap object), and
 * two parallel typed arrays indexed by slot: values as BigInt64Array (exact int64 by construction)
 * and versions as Float64Array (log indexes are safe integers, exact in a double). No per-counter
 * object, no per-counter bigint. Freed slots go on a free list and are reused.
 *
 * Invariant: for every slot s in `slots`, 1 <= versions[s] and s is not on the free list;
 * slots.size + freeSlots.length === highWaterSlot.
 */
import { assert } from "../util/assert.js";
import type { OpResult } from "./commands.js";

const INITIAL_CAPACITY = 1024;
/**
 * V8's Map holds at most 2^24 entries; the shard refuses to create counters past this bound
 * (the placement controller is expected to split the shard long before).
 */
export const COUNTERS_MAX = 16_000_000;

export class CounterTable {
  private readonly slots = new Map<string, number>();
  private values = new BigInt64Array(INITIAL_CAPACITY);
  private versions = new Float64Array(INITIAL_CAPACITY);
  private readonly freeSlots: number[] = [];
  private highWaterSlot = 0;

  get size(): number {
    return this.slots.size;
  }

  has(key: string): boolean {
    return this.slots.has(key);
  }

  get(key: string): OpResult | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    return { value: this.values[slot]!, version: this.versions[slot]! };
  }

  /** The version of the counter, 0 if it does not exist. */
  version(key: string): number {
    const slot = this.slots.get(key);
    return slot === undefined ? 0 : this.versions[slot]!;
  }

  set(key: string, value: bigint, version: number): void {
    assert(Number.isSafeInteger(version) && version >= 1, `counter version must be >= 1: ${version}`);
    let slot = this.slots.get(key);
    if (slot === undefined) {
      assert(this.slots.size < COUNTERS_MAX, "counter table full");
      slot = this.allocateSlot();
      this.slots.set(key, slot);
    }
    this.values[slot] = value;
    // BigInt64Array wraps silently; the read-back proves the value was in range.
    assert(this.values[slot] === value, `counter value outside int64: ${value}`);
    this.versions[slot] = version;
  }

  delete(key: string): boolean {
    const slot = this.slots.get(key);
    if (slot === undefined) return false;
    this.slots.delete(key);
    this.values[slot] = 0n;
    this.versions[slot] = 0;
    this.freeSlots.push(slot);
    return true;
  }

  /** Keys in insertion order (not sorted). */
  keys(): IterableIterator<string> {
    return this.slots.keys();
  }

  /** All counters sorted bytewise by key: the canonical order for snapshots. */
  sortedKeys(): string[] {
    const keys = Array.from(this.slots.keys());
    // Default sort compares UTF-16 code units; every char here is < 256, so this is byte order.
    keys.sort();
    return keys;
  }

  private allocateSlot(): number {
    const reused = this.freeSlots.pop();
    if (reused !== undefined) return reused;
    if (this.highWaterSlot === this.values.length) this.grow();
    const slot = this.highWaterSlot;
    this.highWaterSlot++;
    return slot;
  }

  private grow(): void {
    // 1.5x rather than 2x keeps the slack (and so bytes per counter) lower at large sizes.
    const capacity = Math.ceil(this.values.length * 1.5);
    const values = new BigInt64Array(capacity);
    values.set(this.values);
    const versions = new Float64Array(capacity);
    versions.set(this.versions);
    this.values = values;
    this.versions = versions;
  }
}
