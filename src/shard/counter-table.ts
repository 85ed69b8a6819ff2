/**
 * The counters of one shard: key bytes -> (value, version), built for a small per-counter
 * footprint and no per-op allocation.
 *
 * Counters live in "slots": parallel typed-array columns (value as BigInt64Array, which is exact
 * int64 by construction; version as Float64Array, exact for log indexes < 2^53; key offset/length
 * into a byte arena; cached hash). An open-addressing index (linear probing, backward-shift
 * deletion, no tombstones) maps key bytes to slots. No JS object, string or bigint is kept per
 * counter, so the GC never sees them and a counter costs ~40 bytes plus its key bytes.
 *
 * A slot whose version is 0 holds a key that does not exist as a counter: the state machine
 * creates such slots transiently while it evaluates a mutate (so a key keeps one slot for the
 * whole mutate) and removes them before the mutate returns.
 *
 * Invariants: an occupied index entry points at a slot with keyLength >= 1; a free slot has
 * keyLength 0 and is on freeSlots; size = occupied index entries <= indexMask * MAX_LOAD.
 * Iteration order of slots is an implementation detail and never observable: snapshots sort keys.
 */
import { assert } from "../util/assert.js";

const INITIAL_SLOTS = 1024;
const INITIAL_ARENA_BYTES = 16 * 1024;
/** Index load factor bound; linear probing stays short below ~0.7 with a well-mixed hash. */
const MAX_LOAD = 0.7;
/** Compact the arena when dead key bytes exceed half of it (and at least this much). */
const ARENA_GARBAGE_MIN_BYTES = 64 * 1024;
/** The arena addresses keys with a u32 offset. */
const ARENA_BYTES_MAX = 0xffff_ffff;
/**
 * A hard ceiling on counters per shard; the placement controller is expected to split a shard
 * long before. The state machine enforces ShardOptions.maxCounters (<= this) deterministically.
 */
export const COUNTERS_MAX = 64_000_000;

export class CounterTable {
  private values = new BigInt64Array(INITIAL_SLOTS);
  private versions = new Float64Array(INITIAL_SLOTS);
  private keyOffsets = new Uint32Array(INITIAL_SLOTS);
  private keyLengths = new Uint16Array(INITIAL_SLOTS);
  private hashes = new Uint32Array(INITIAL_SLOTS);
  private readonly freeSlots: number[] = [];
  private highWaterSlot = 0;

  private arena = new Uint8Array(INITIAL_ARENA_BYTES);
  private arenaUsedBytes = 0;
  private arenaGarbageBytes = 0;

  /** slot + 1 per entry; 0 = empty. Capacity is a power of two. */
  private index = new Int32Array(2048);
  private indexMask = 2047;
  private count = 0;

  constructor(private readonly hashSeed = 0x9e3779b9) {}

  /** Keys in the table, including transient (version 0) ones during a mutate. */
  get size(): number {
    return this.count;
  }

  /** The slot holding `key`, or -1. */
  find(key: Uint8Array): number {
    const hash = this.hash(key);
    let position = hash & this.indexMask;
    for (;;) {
      const entry = this.index[position]!;
      if (entry === 0) return -1;
      const slot = entry - 1;
      if (this.hashes[slot] === hash && this.keyEquals(slot, key)) return slot;
      position = (position + 1) & this.indexMask;
    }
  }

  /** The slot holding `key`, inserting it with value 0 and version 0 (not existing) if absent. */
  findOrInsert(key: Uint8Array): number {
    assert(key.length >= 1 && key.length <= 0xffff, "key length outside [1, 65535]");
    const hash = this.hash(key);
    let position = hash & this.indexMask;
    for (;;) {
      const entry = this.index[position]!;
      if (entry === 0) break;
      const slot = entry - 1;
      if (this.hashes[slot] === hash && this.keyEquals(slot, key)) return slot;
      position = (position + 1) & this.indexMask;
    }
    assert(this.count < COUNTERS_MAX + 100_000, "counter table beyond its hard ceiling");
    const slot = this.allocateSlot();
    this.hashes[slot] = hash;
    this.values[slot] = 0n;
    this.versions[slot] = 0;
    this.storeKey(slot, key);
    this.count++;
    if (this.count > (this.indexMask + 1) * MAX_LOAD) {
      this.growIndex(); // re-places every slot, including this one
    } else {
      this.index[position] = slot + 1;
    }
    return slot;
  }

  value(slot: number): bigint {
    return this.values[slot]!;
  }

  version(slot: number): number {
    return this.versions[slot]!;
  }

  write(slot: number, value: bigint, version: number): void {
    assert(this.keyLengths[slot]! > 0, "write to a free slot");
    assert(Number.isSafeInteger(version) && version >= 0, "counter version must be a safe integer >= 0");
    this.values[slot] = value;
    // BigInt64Array wraps silently; the read-back proves the value was in int64.
    assert(this.values[slot] === value, "counter value outside int64");
    this.versions[slot] = version;
  }

  /** Removes the key held by `slot` and frees the slot. */
  remove(slot: number): void {
    const length = this.keyLengths[slot]!;
    assert(length > 0, "remove of a free slot");
    let position = this.hashes[slot]! & this.indexMask;
    while (this.index[position] !== slot + 1) {
      assert(this.index[position] !== 0, "slot missing from the index");
      position = (position + 1) & this.indexMask;
    }
    // Backward-shift deletion: pull later members of the probe run into the hole so that lookups
    // never need tombstones.
    let hole = position;
    let next = (hole + 1) & this.indexMask;
    for (;;) {
      const entry = this.index[next]!;
      if (entry === 0) break;
      const home = this.hashes[entry - 1]! & this.indexMask;
      // Move the entry if its home is not cyclically within (hole, next].
      const distanceToNext = (next - home) & this.indexMask;
      const distanceToHole = (next - hole) & this.indexMask;
      if (distanceToNext >= distanceToHole) {
        this.index[hole] = entry;
        hole = next;
      }
      next = (next + 1) & this.indexMask;
    }
    this.index[hole] = 0;
    this.keyLengths[slot] = 0;
    this.values[slot] = 0n;
    this.versions[slot] = 0;
    this.arenaGarbageBytes += length;
    this.freeSlots.push(slot);
    this.count--;
    if (this.arenaGarbageBytes > ARENA_GARBAGE_MIN_BYTES && this.arenaGarbageBytes * 2 > this.arenaUsedBytes) {
      this.compactArena();
    }
  }

  /** A copy of the key held by `slot`. */
  keyBytes(slot: number): Uint8Array {
    const offset = this.keyOffsets[slot]!;
    return this.arena.slice(offset, offset + this.keyLengths[slot]!);
  }

  /** A view of the key held by `slot`; valid only until the next insert or remove. */
  keyView(slot: number): Uint8Array {
    const offset = this.keyOffsets[slot]!;
    return this.arena.subarray(offset, offset + this.keyLengths[slot]!);
  }

  /** Every occupied slot, in slot order (not key order). */
  occupiedSlots(): number[] {
    const slots: number[] = [];
    for (let slot = 0; slot < this.highWaterSlot; slot++) if (this.keyLengths[slot]! > 0) slots.push(slot);
    assert(slots.length === this.count, "occupied slots disagree with the count");
    return slots;
  }

  /** Occupied slots sorted bytewise by key: the canonical order for snapshots. */
  sortedSlots(): number[] {
    const slots = this.occupiedSlots();
    slots.sort((a, b) => this.compareKeys(a, b));
    return slots;
  }

  /** Bytewise comparison of the keys held by two slots (shorter prefix first). */
  compareKeys(a: number, b: number): number {
    const arena = this.arena;
    const offsetA = this.keyOffsets[a]!;
    const offsetB = this.keyOffsets[b]!;
    const lengthA = this.keyLengths[a]!;
    const lengthB = this.keyLengths[b]!;
    const shared = Math.min(lengthA, lengthB);
    for (let i = 0; i < shared; i++) {
      const difference = arena[offsetA + i]! - arena[offsetB + i]!;
      if (difference !== 0) return difference;
    }
    return lengthA - lengthB;
  }

  /** Approximate bytes held by the table's buffers (for memory reports). */
  bufferBytes(): number {
    return (
      this.values.byteLength +
      this.versions.byteLength +
      this.keyOffsets.byteLength +
      this.keyLengths.byteLength +
      this.hashes.byteLength +
      this.arena.byteLength +
      this.index.byteLength +
      this.freeSlots.length * 8
    );
  }

  /** FNV-1a over the bytes, seeded, then the murmur3 finalizer so the low bits (the index) mix. */
  private hash(key: Uint8Array): number {
    let h = this.hashSeed ^ key.length;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i]!, 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0;
  }

  private keyEquals(slot: number, key: Uint8Array): boolean {
    const length = this.keyLengths[slot]!;
    if (length !== key.length) return false;
    const arena = this.arena;
    const offset = this.keyOffsets[slot]!;
    for (let i = 0; i < length; i++) if (arena[offset + i] !== key[i]) return false;
    return true;
  }

  private storeKey(slot: number, key: Uint8Array): void {
    if (this.arenaUsedBytes + key.length > this.arena.length) this.growArena(key.length);
    this.arena.set(key, this.arenaUsedBytes);
    this.keyOffsets[slot] = this.arenaUsedBytes;
    this.keyLengths[slot] = key.length;
    this.arenaUsedBytes += key.length;
  }

  private growArena(extraBytes: number): void {
    const needed = this.arenaUsedBytes + extraBytes;
    let capacity = Math.ceil(this.arena.length * 1.5);
    while (capacity < needed) capacity = Math.ceil(capacity * 1.5);
    capacity = Math.min(capacity, ARENA_BYTES_MAX);
    assert(capacity >= needed, "key arena beyond 4 GiB");
    const grown = new Uint8Array(capacity);
    grown.set(this.arena.subarray(0, this.arenaUsedBytes));
    this.arena = grown;
  }

  /** Rewrites the arena with only live keys. Slots and the index are unchanged. */
  private compactArena(): void {
    const live = this.arenaUsedBytes - this.arenaGarbageBytes;
    const compacted = new Uint8Array(Math.max(INITIAL_ARENA_BYTES, Math.ceil(live * 1.25)));
    let used = 0;
    for (let slot = 0; slot < this.highWaterSlot; slot++) {
      const length = this.keyLengths[slot]!;
      if (length === 0) continue;
      const offset = this.keyOffsets[slot]!;
      compacted.set(this.arena.subarray(offset, offset + length), used);
      this.keyOffsets[slot] = used;
      used += length;
    }
    assert(used === live, "arena compaction lost bytes");
    this.arena = compacted;
    this.arenaUsedBytes = used;
    this.arenaGarbageBytes = 0;
  }

  private allocateSlot(): number {
    const reused = this.freeSlots.pop();
    if (reused !== undefined) return reused;
    if (this.highWaterSlot === this.values.length) this.growSlots();
    return this.highWaterSlot++;
  }

  private growSlots(): void {
    // 1.5x rather than 2x keeps the slack (and so bytes per counter) lower at large sizes.
    const capacity = Math.ceil(this.values.length * 1.5);
    const values = new BigInt64Array(capacity);
    values.set(this.values);
    this.values = values;
    const versions = new Float64Array(capacity);
    versions.set(this.versions);
    this.versions = versions;
    const keyOffsets = new Uint32Array(capacity);
    keyOffsets.set(this.keyOffsets);
    this.keyOffsets = keyOffsets;
    const keyLengths = new Uint16Array(capacity);
    keyLengths.set(this.keyLengths);
    this.keyLengths = keyLengths;
    const hashes = new Uint32Array(capacity);
    hashes.set(this.hashes);
    this.hashes = hashes;
  }

  private growIndex(): void {
    const capacity = (this.indexMask + 1) * 2;
    const index = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let slot = 0; slot < this.highWaterSlot; slot++) {
      if (this.keyLengths[slot] === 0) continue;
      let position = this.hashes[slot]! & mask;
      while (index[position] !== 0) position = (position + 1) & mask;
      index[position] = slot + 1;
    }
    this.index = index;
    this.indexMask = mask;
  }
}
