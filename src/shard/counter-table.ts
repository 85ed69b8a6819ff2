/**
 * The counters of one shard: key bytes -> (value, version), built for a small per-counter
 * footprint, no per-op allocation, and few cache misses per lookup.
 *
 * Counters live in slots: one 24-byte row per slot in a single ArrayBuffer, read through typed
 * array views that overlay it:
 *
 *   bytes 0..7    value       BigInt64Array[slot*3]       exact int64 by construction
 *   bytes 8..15   version     Float64Array[slot*3+1]      log index, exact below 2^53; 0 = absent
 *   bytes 16..19  keyOffset   Uint32Array[slot*6+4]       into the key arena
 *   bytes 20..21  keyLength   Uint16Array[slot*12+10]     0 = free slot
 *   bytes 22..23  flags       Uint16Array[slot*12+11]     SLOT_TOUCHED (0 between mutates)
 *
 * A row rather than one array per field because lookups are random: a row is one cache line, or
 * two for a quarter of them (the columnar layout cost a miss per field, which dominated apply time
 * on a busy machine). Keys are stored back to back in an append-only byte arena. An
 * open-addressing index (linear probing, backward-shift deletion, no tombstones) holds
 * (slot + 1, hash) pairs, so a probe compares hashes without touching rows, and growing the index
 * re-places the pairs without hashing a key. The hash is not in the row: a removal, the only other
 * user, hashes the key again. No JS object, string or bigint is kept per counter.
 *
 * A slot whose version is 0 holds a key that does not exist as a counter: the state machine
 * creates such slots transiently while it evaluates a mutate (so a key keeps one slot for the
 * whole mutate) and removes them before the mutate returns.
 *
 * Persistence is by whole blocks: exportBlocks() copies the rows up to the high-water slot, the
 * arena's used bytes and the index (memcpy, no per-counter work), which is the counter part of a
 * shard image (shard-image.ts), and a loaded table (LoadingCounterTable, counter-table-load.ts)
 * takes those blocks back, validating each row, rebuilding the free-slot list and adopting the
 * index (or rebuilding it for another hash seed) in steps that a caller may spread over
 * event-loop turns. Nothing on the apply path tracks changes.
 *
 * Invariants: an occupied index entry points at a slot with keyLength >= 1 whose key hashes to
 * the entry's hash; a free slot has keyLength 0, value 0, version 0, no flags, and is on
 * freeSlots; size <= index capacity * MAX_LOAD. Arena bytes are written once and never changed in
 * place (compaction and growth copy to a new buffer), so a view of a key stays valid. Slot order
 * is never observable: snapshots sort keys.
 */
import { assert } from "../util/assert.js";
import { fmix32 } from "../util/hash.js";
import { INT64_MAX, INT64_MIN, NATIVE_LITTLE_ENDIAN } from "../util/int64.js";
import { sortKeysInArena } from "./key-sort.js";
import { copyInSlices, GROW_AHEAD, GROW_AHEAD_MIN_SLOTS, placeEntries, SLICE_BYTES, touchInSlices } from "./counter-table-slices.js";
import type { SlicePause } from "./counter-table-slices.js";

export const ROW_BYTES = 24;
export const INITIAL_SLOTS = 1024;
export const INITIAL_INDEX_ENTRIES = 2048;
export const INITIAL_ARENA_BYTES = 16 * 1024;
/** Index load factor bound; linear probing stays short below ~0.7 with a well-mixed hash. */
export const MAX_LOAD = 0.7;
/** Compact the arena when dead key bytes exceed half of it (and at least this much). */
const ARENA_GARBAGE_MIN_BYTES = 64 * 1024;
/** The arena addresses keys with a u32 offset. */
export const ARENA_BYTES_MAX = 0xffff_ffff;
/** Touched by the mutate being applied (its undo log holds the slot). */
export const SLOT_TOUCHED = 1;
/** Bytes per row: the unit of CounterBlocks.rows. */
export const COUNTER_ROW_BYTES = ROW_BYTES;
/** Rows are typed arrays in the platform's byte order (an image records it). */
export const ROWS_LITTLE_ENDIAN = NATIVE_LITTLE_ENDIAN;
/**
 * A hard ceiling on counters per shard; the placement controller is expected to split a shard
 * long before. The state machine enforces ShardOptions.maxCounters (<= this) deterministically.
 */
export const COUNTERS_MAX = 16_000_000;

/** Copies of a table's blocks (exportBlocks): the counter part of a shard image. */
export interface CounterBlocks {
  /** Occupied slots (counters). */
  readonly count: number;
  /** Rows 0 to the high-water slot, COUNTER_ROW_BYTES each, platform byte order; free rows have keyLength 0. */
  readonly rows: Uint8Array;
  /** The arena's used bytes, dead keys included (offsets in the rows point into it). */
  readonly arena: Uint8Array;
  /**
   * The open-addressing index: (slot + 1, hash) pairs, a power of two of them, for the table's
   * hash seed. A load with the same seed adopts it instead of hashing every key again.
   */
  readonly index: Int32Array;
}

/** Buffers a capture copies the counter blocks into (exportBlocks' spare); the arena is never copied. */
export interface BlockBuffers {
  rows: ArrayBuffer;
  index: ArrayBuffer;
}

/** What a loaded row may hold (loadRows); anything else is damage. */
export interface RowLimits {
  readonly keyBytesMax: number;
  /** Versions must be in [1, versionMax] (the applied index). */
  readonly versionMax: number;
}

export class CounterTable {
  protected slotCapacity = INITIAL_SLOTS;
  protected values!: BigInt64Array;
  protected versions!: Float64Array;
  protected words!: Uint32Array;
  protected halfWords!: Uint16Array;
  protected rowBytes!: Uint8Array;
  protected readonly freeSlots: number[] = [];
  protected highWaterSlot = 0;

  protected arena = new Uint8Array(INITIAL_ARENA_BYTES);
  protected arenaUsedBytes = 0;
  protected arenaGarbageBytes = 0;

  /** Pairs (slot + 1, hash); slot + 1 = 0 is empty. Entry count is a power of two. */
  protected index = new Int32Array(INITIAL_INDEX_ENTRIES * 2);
  protected indexMask = INITIAL_INDEX_ENTRIES - 1;
  protected count = 0;
  protected warmSink = 0;
  constructor(protected readonly hashSeed = 0x9e3779b9) {
    this.setRows(new ArrayBuffer(INITIAL_SLOTS * ROW_BYTES));
  }

  /** Keys in the table, including transient (version 0) ones during a mutate. */
  get size(): number {
    return this.count;
  }

  /** The slot holding `key`, or -1. */
  find(key: Uint8Array): number {
    const hash = this.hash(key);
    const index = this.index;
    let position = hash & this.indexMask;
    for (;;) {
      const entry = index[position * 2]!;
      if (entry === 0) return -1;
      if (index[position * 2 + 1] === (hash | 0) && this.keyEqualsRange(entry - 1, key, 0, key.length)) return entry - 1;
      position = (position + 1) & this.indexMask;
    }
  }

  /**
   * Reads, a pass each, the index entries, rows and key bytes of the keys whose hashes (hashBytes)
   * are hashes[from, to): a pass's loads are independent, so their cache misses overlap (a lookup's
   * own loads wait on each other) and the findOrInsert(key, hash) that follow soon after hit the
   * cache. Changes nothing.
   */
  warm(hashes: Int32Array, from: number, to: number): void {
    const { index, indexMask: mask, words, arena } = this;
    let sink = 0;
    for (let i = from; i < to; i++) sink ^= index[(hashes[i]! & mask) * 2]!;
    for (let pass = 0; pass < 2; pass++) {
      for (let i = from; i < to; i++) {
        const slot = index[(hashes[i]! & mask) * 2]! - 1; // a row's two ends: a quarter of rows straddle two lines
        if (slot >= 0) sink ^= pass === 0 ? words[slot * 6]! ^ words[slot * 6 + 4]! : arena[words[slot * 6 + 4]!]!;
      }
    }
    this.warmSink = sink; // so that the loads are not optimized away
  }

  /** The slot holding `key`, inserting it with value 0 and version 0 (not existing) if absent. `hash`: from warm(). */
  findOrInsert(key: Uint8Array, hash = this.hash(key)): number {
    return this.findOrInsertRange(key, 0, key.length, hash);
  }

  /** findOrInsert of the key bytes[start, start + length), without a view of it. */
  findOrInsertRange(bytes: Uint8Array, start: number, length: number, hash = this.hashBytes(bytes, start, length)): number {
    assert(length >= 1 && length <= 0xffff, "key length outside [1, 65535]");
    const index = this.index;
    let position = hash & this.indexMask;
    for (;;) {
      const entry = index[position * 2]!;
      if (entry === 0) break;
      if (index[position * 2 + 1] === (hash | 0) && this.keyEqualsRange(entry - 1, bytes, start, length)) return entry - 1;
      position = (position + 1) & this.indexMask;
    }
    assert(this.count < COUNTERS_MAX + 100_000, "counter table beyond its hard ceiling");
    const slot = this.allocateSlot();
    this.values[slot * 3] = 0n;
    this.versions[slot * 3 + 1] = 0;
    this.halfWords[slot * 12 + 11] = 0;
    this.storeKey(slot, bytes, start, length);
    this.count++;
    index[position * 2] = slot + 1;
    index[position * 2 + 1] = hash;
    if (this.count > (this.indexMask + 1) * MAX_LOAD) this.growIndex();
    return slot;
  }

  value(slot: number): bigint {
    return this.values[slot * 3]!;
  }

  version(slot: number): number {
    return this.versions[slot * 3 + 1]!;
  }

  write(slot: number, value: bigint, version: number): void {
    assert(this.halfWords[slot * 12 + 10]! > 0, "write to a free slot");
    assert(Number.isSafeInteger(version) && version >= 0, "counter version must be a safe integer >= 0");
    // BigInt64Array wraps silently, so the range is asserted before the store.
    assert(value >= INT64_MIN && value <= INT64_MAX, "counter value outside int64");
    this.values[slot * 3] = value;
    this.versions[slot * 3 + 1] = version;
  }

  /**
   * Sets a flag on the slot; true if it was clear. Flags live in the row the caller just touched,
   * which makes them cheaper than a Set of slots. A removed slot loses its flags.
   */
  setFlag(slot: number, flag: number): boolean {
    const flags = this.halfWords[slot * 12 + 11]!;
    if ((flags & flag) !== 0) return false;
    this.halfWords[slot * 12 + 11] = flags | flag;
    return true;
  }

  /** Clears a flag; true if it was set. */
  clearFlag(slot: number, flag: number): boolean {
    const flags = this.halfWords[slot * 12 + 11]!;
    this.halfWords[slot * 12 + 11] = flags & ~flag;
    return (flags & flag) !== 0;
  }

  isOccupied(slot: number): boolean {
    return slot < this.highWaterSlot && this.halfWords[slot * 12 + 10]! > 0;
  }

  /** Removes the key held by `slot` and frees the slot (its flags go with it). */
  remove(slot: number): void {
    const length = this.halfWords[slot * 12 + 10]!;
    assert(length > 0, "remove of a free slot");
    const index = this.index;
    const mask = this.indexMask;
    let position = this.hashBytes(this.arena, this.words[slot * 6 + 4]!, length) & mask;
    while (index[position * 2] !== slot + 1) {
      assert(index[position * 2] !== 0, "slot missing from the index");
      position = (position + 1) & mask;
    }
    // Backward-shift deletion: pull later members of the probe run into the hole so that lookups
    // never need tombstones.
    let hole = position;
    let next = (hole + 1) & mask;
    for (;;) {
      const entry = index[next * 2]!;
      if (entry === 0) break;
      const home = index[next * 2 + 1]! & mask;
      // Move the entry unless its home lies cyclically within (hole, next].
      if (((next - home) & mask) >= ((next - hole) & mask)) {
        index[hole * 2] = entry;
        index[hole * 2 + 1] = index[next * 2 + 1]!;
        hole = next;
      }
      next = (next + 1) & mask;
    }
    index[hole * 2] = 0;
    index[hole * 2 + 1] = 0;
    this.halfWords[slot * 12 + 10] = 0;
    this.halfWords[slot * 12 + 11] = 0;
    this.values[slot * 3] = 0n;
    this.versions[slot * 3 + 1] = 0;
    this.arenaGarbageBytes += length;
    this.freeSlots.push(slot);
    this.count--;
    if (this.arenaGarbageBytes > ARENA_GARBAGE_MIN_BYTES && this.arenaGarbageBytes * 2 > this.arenaUsedBytes) {
      this.compactArena();
    }
  }

  /** A copy of the key held by `slot`. */
  keyBytes(slot: number): Uint8Array {
    const offset = this.words[slot * 6 + 4]!;
    return this.arena.slice(offset, offset + this.halfWords[slot * 12 + 10]!);
  }

  /** A view of the key held by `slot` (arena bytes never change in place, so it stays valid). */
  keyView(slot: number): Uint8Array {
    const offset = this.words[slot * 6 + 4]!;
    return this.arena.subarray(offset, offset + this.halfWords[slot * 12 + 10]!);
  }

  /** Every occupied slot, in slot order (not key order). */
  occupiedSlots(): number[] {
    const slots: number[] = [];
    for (let slot = 0; slot < this.highWaterSlot; slot++) if (this.halfWords[slot * 12 + 10]! > 0) slots.push(slot);
    assert(slots.length === this.count, "occupied slots disagree with the count");
    return slots;
  }

  /** Occupied slots sorted bytewise by key: the canonical order for snapshots. */
  sortedSlots(): Int32Array {
    const slots = new Int32Array(this.count);
    const offsets = new Uint32Array(this.count);
    const lengths = new Uint16Array(this.count);
    let n = 0;
    for (let slot = 0; slot < this.highWaterSlot; slot++) {
      const length = this.halfWords[slot * 12 + 10]!;
      if (length === 0) continue;
      slots[n] = slot;
      offsets[n] = this.words[slot * 6 + 4]!;
      lengths[n] = length;
      n++;
    }
    assert(n === this.count, "occupied slots disagree with the count");
    sortKeysInArena(this.arena, slots, offsets, lengths);
    return slots;
  }

  /**
   * Room for every counter's snapshot row (u16 key length + key + i64 value + u64 version); exact
   * when no mutate is in progress.
   */
  snapshotRowsBytes(): number {
    return this.count * 18 + (this.arenaUsedBytes - this.arenaGarbageBytes);
  }

  /**
   * Writes the snapshot row of each of `slots`, in order, into `out` from `position`: u16 key
   * length, the key, the value as i64 and the version as u64, all big-endian (what ByteWriter
   * writes, and what CounterStateMachine.restore reads). Straight from the rows and the arena,
   * with no bigint, view or call per counter. Returns the position after the last row.
   */
  writeSnapshotRows(slots: Int32Array, out: Uint8Array, position: number): number {
    const arena = this.arena;
    const rowBytes = this.rowBytes;
    const versions = this.versions;
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    let at = position;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      const length = this.halfWords[slot * 12 + 10]!;
      const offset = this.words[slot * 6 + 4]!;
      out[at] = length >>> 8;
      out[at + 1] = length & 0xff;
      at += 2;
      if (length <= 32) {
        for (let k = 0; k < length; k++) out[at + k] = arena[offset + k]!;
      } else {
        out.set(arena.subarray(offset, offset + length), at);
      }
      at += length;
      const base = slot * ROW_BYTES;
      if (NATIVE_LITTLE_ENDIAN) {
        for (let k = 0; k < 8; k++) out[at + k] = rowBytes[base + 7 - k]!;
      } else {
        for (let k = 0; k < 8; k++) out[at + k] = rowBytes[base + k]!;
      }
      at += 8;
      const version = versions[slot * 3 + 1]!;
      view.setUint32(at, Math.floor(version / 0x1_0000_0000));
      view.setUint32(at + 4, version >>> 0);
      at += 8;
    }
    return at;
  }

  /**
   * Copies of the rows up to the high-water slot and of the arena's used bytes: two memcpys, no
   * per-counter work. Call between mutates (no transient slot or flag is then in the rows).
   *
   * spare: buffers of an earlier export that nothing uses any more, reused when large enough. A
   * copy into fresh memory costs its page faults (first touch), several times the memcpy itself
   * at hundreds of MB; new buffers get 1/8 of slack so that a spare still fits after some growth.
   */
  exportBlocks(spare?: BlockBuffers): CounterBlocks {
    const rowBytes = this.highWaterSlot * ROW_BYTES;
    const rows = blockFor(spare?.rows, rowBytes);
    rows.set(this.rowBytes.subarray(0, rowBytes));
    // Not a copy: arena bytes are written once and never changed in place (new keys go past the
    // used bytes; growth and compaction copy to a new buffer), so a view of its used bytes stays
    // what it is now, whatever the table does next.
    const arena = this.arena.subarray(0, this.arenaUsedBytes);
    const indexBytes = blockFor(spare?.index, this.index.byteLength);
    const index = new Int32Array(indexBytes.buffer, 0, this.index.length);
    index.set(this.index);
    return { count: this.count, rows, arena, index };
  }

  /** The sizes exportBlocks() would copy now. */
  blockBytes(): { rows: number; index: number } {
    return { rows: this.highWaterSlot * ROW_BYTES, index: this.index.byteLength };
  }

  /**
   * exportBlocks() in slices of at most `sliceBytes` copied, with `await pause()` between them, so
   * that no event-loop turn copies a whole shard. The caller keeps the table unchanged until it
   * resolves (the driver loop holds the shard's apply: RawNode.holdApply); reads may go on.
   */
  async exportBlocksInSlices(pause: SlicePause, sliceBytes = SLICE_BYTES): Promise<CounterBlocks> {
    const { count, highWaterSlot, arenaUsedBytes } = this;
    const sourceRows = this.rowBytes;
    const sourceIndex = this.index;
    // Exactly sized: fresh memory whose page faults are paid slice by slice (no spare to fit later).
    const rows = new Uint8Array(highWaterSlot * ROW_BYTES);
    await copyInSlices(sourceRows.subarray(0, rows.length), rows, pause, sliceBytes);
    const indexBytes = new Uint8Array(sourceIndex.byteLength);
    await copyInSlices(new Uint8Array(sourceIndex.buffer, sourceIndex.byteOffset, sourceIndex.byteLength), indexBytes, pause, sliceBytes);
    assert(
      this.count === count && this.highWaterSlot === highWaterSlot && this.rowBytes === sourceRows && this.index === sourceIndex,
      "the counter table changed during a sliced export",
    );
    const index = new Int32Array(indexBytes.buffer, 0, sourceIndex.length);
    return { count, rows, arena: this.arena.subarray(0, arenaUsedBytes), index };
  }

  /**
   * True when the next inserts will soon grow the rows, the index or the arena (within
   * 1 - GROW_AHEAD of a limit): growAhead() then does that growth in slices, before an insert would
   * have to do it at once (a copy of tens of MB, or a rehash of millions of entries, in one turn).
   */
  growthDue(): boolean {
    return (
      (this.rowsNearFull() && this.slotCapacity >= GROW_AHEAD_MIN_SLOTS) ||
      (this.indexNearFull() && this.indexMask + 1 >= GROW_AHEAD_MIN_SLOTS) ||
      (this.arenaNearFull() && this.arena.length >= GROW_AHEAD_MIN_SLOTS * 8)
    );
  }

  private rowsNearFull(): boolean {
    return this.slotCapacity - this.highWaterSlot + this.freeSlots.length < this.slotCapacity * (1 - GROW_AHEAD);
  }

  private indexNearFull(): boolean {
    return this.count > (this.indexMask + 1) * MAX_LOAD * GROW_AHEAD;
  }

  /** Near full and growable (a compaction would free more than growth adds once half is garbage). */
  private arenaNearFull(): boolean {
    return (
      this.arenaUsedBytes > this.arena.length * GROW_AHEAD &&
      this.arena.length < ARENA_BYTES_MAX &&
      this.arenaGarbageBytes * 2 <= this.arenaUsedBytes
    );
  }

  /**
   * The growth growthDue() saw coming, in slices of at most `sliceBytes` with `await pause()`
   * between them: new buffers filled from the old ones, swapped in at the end. The caller keeps
   * the table unchanged until it resolves (as for exportBlocksInSlices); reads use the old buffers
   * until the swap.
   */
  async growAhead(pause: SlicePause, sliceBytes = SLICE_BYTES): Promise<void> {
    const { count, highWaterSlot } = this;
    const unchanged = () => assert(this.count === count && this.highWaterSlot === highWaterSlot, "the counter table changed during growth");
    if (this.rowsNearFull()) {
      const capacity = Math.ceil(this.slotCapacity * 1.5);
      const rows = new ArrayBuffer(capacity * ROW_BYTES);
      await copyInSlices(this.rowBytes.subarray(0, this.slotCapacity * ROW_BYTES), new Uint8Array(rows), pause, sliceBytes);
      unchanged();
      this.setRows(rows);
      this.slotCapacity = capacity;
    }
    if (this.arenaNearFull()) {
      const grown = new Uint8Array(Math.min(ARENA_BYTES_MAX, Math.ceil(this.arena.length * 1.5)));
      await copyInSlices(this.arena.subarray(0, this.arenaUsedBytes), grown, pause, sliceBytes);
      unchanged();
      this.arena = grown;
    }
    if (this.indexNearFull()) {
      const old = this.index;
      const index = new Int32Array(old.length * 2);
      const mask = old.length - 1; // entries = pairs: old.length / 2 * 2
      await touchInSlices(index, pause, sliceBytes);
      let placed = 0;
      const step = Math.max(1024, sliceBytes >>> 8) * 2; // 16 Ki pairs per turn: random writes cost more than a copy
      for (let from = 0; from < old.length; from += step) {
        await pause();
        placed += placeEntries(old, from, Math.min(old.length, from + step), index, mask);
      }
      unchanged();
      assert(placed === this.count, "index entries disagree with the count");
      this.index = index;
      this.indexMask = mask;
    }
  }

  /** Grows the rows and the index for `count` counters at once (a restore knows how many). */
  reserve(count: number): void {
    if (count > this.slotCapacity) this.resizeRows(count);
    while (count > (this.indexMask + 1) * MAX_LOAD) this.growIndex();
  }

  /** Bytewise comparison of the keys held by two slots (a prefix sorts first). */
  compareKeys(a: number, b: number): number {
    const arena = this.arena;
    const offsetA = this.words[a * 6 + 4]!;
    const offsetB = this.words[b * 6 + 4]!;
    const lengthA = this.halfWords[a * 12 + 10]!;
    const lengthB = this.halfWords[b * 12 + 10]!;
    const shared = Math.min(lengthA, lengthB);
    for (let i = 0; i < shared; i++) {
      const difference = arena[offsetA + i]! - arena[offsetB + i]!;
      if (difference !== 0) return difference;
    }
    return lengthA - lengthB;
  }

  private hash(key: Uint8Array): number {
    return this.hashBytes(key, 0, key.length);
  }

  /** The table's hash of a key: FNV-1a over the bytes, seeded, then the murmur3 finalizer so the low bits (the index) mix. */
  hashBytes(bytes: Uint8Array, start: number, length: number): number {
    let h = this.hashSeed ^ length;
    for (let i = start; i < start + length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
    return fmix32(h);
  }

  private keyEqualsRange(slot: number, bytes: Uint8Array, start: number, length: number): boolean {
    if (this.halfWords[slot * 12 + 10]! !== length) return false;
    const arena = this.arena;
    const offset = this.words[slot * 6 + 4]! - start;
    for (let i = start; i < start + length; i++) if (arena[offset + i] !== bytes[i]) return false;
    return true;
  }

  private storeKey(slot: number, bytes: Uint8Array, start: number, length: number): void {
    if (this.arenaUsedBytes + length > this.arena.length) this.growArena(length);
    const arena = this.arena;
    const to = this.arenaUsedBytes - start;
    for (let i = start; i < start + length; i++) arena[to + i] = bytes[i]!; // keys are short: no view to copy through
    this.words[slot * 6 + 4] = this.arenaUsedBytes;
    this.halfWords[slot * 12 + 10] = length;
    this.arenaUsedBytes += length;
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

  /** Rewrites the arena with only live keys, into a new buffer (views of old keys stay valid). */
  private compactArena(): void {
    const live = this.arenaUsedBytes - this.arenaGarbageBytes;
    const compacted = new Uint8Array(Math.max(INITIAL_ARENA_BYTES, Math.ceil(live * 1.25)));
    let used = 0;
    for (let slot = 0; slot < this.highWaterSlot; slot++) {
      const length = this.halfWords[slot * 12 + 10]!;
      if (length === 0) continue;
      const offset = this.words[slot * 6 + 4]!;
      compacted.set(this.arena.subarray(offset, offset + length), used);
      this.words[slot * 6 + 4] = used;
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
    if (this.highWaterSlot === this.slotCapacity) this.growSlots();
    return this.highWaterSlot++;
  }

  protected setRows(rows: ArrayBuffer): void {
    this.values = new BigInt64Array(rows);
    this.versions = new Float64Array(rows);
    this.words = new Uint32Array(rows);
    this.halfWords = new Uint16Array(rows);
    this.rowBytes = new Uint8Array(rows);
  }

  private growSlots(): void {
    // 1.5x rather than 2x keeps the slack (and so bytes per counter) lower at large sizes.
    this.resizeRows(Math.ceil(this.slotCapacity * 1.5));
  }

  /** Moves the rows to a buffer of `capacity` slots (>= the current one). */
  private resizeRows(capacity: number): void {
    const rows = new ArrayBuffer(capacity * ROW_BYTES);
    new Uint8Array(rows).set(new Uint8Array(this.values.buffer, 0, this.slotCapacity * ROW_BYTES));
    this.setRows(rows);
    this.slotCapacity = capacity;
  }

  private growIndex(): void {
    // Re-placed from the old index's (slot + 1, hash) pairs: no key is hashed again.
    const old = this.index;
    const entries = (this.indexMask + 1) * 2;
    const index = new Int32Array(entries * 2);
    const mask = entries - 1;
    const placed = placeEntries(old, 0, old.length, index, mask);
    assert(placed === this.count, "index entries disagree with the count");
    this.index = index;
    this.indexMask = mask;
  }
}

/** A view of `length` bytes over `spare` when it is large enough, else over a new buffer with slack. */
function blockFor(spare: ArrayBuffer | undefined, length: number): Uint8Array {
  if (spare !== undefined && spare.byteLength >= length) return new Uint8Array(spare, 0, length);
  return new Uint8Array(new ArrayBuffer(length + (length >>> 3)), 0, length);
}
