/**
 * A node's pending eventual deltas per key (buffer-state.ts), without a JS object, string or bigint
 * per key or per add: key bytes in one arena, the rest of a row in typed arrays, and an
 * open-addressing index of (row + 1, hash) pairs with linear probing (like src/shard/counter-table.ts
 * for the exact path). A packed request's adds are summed straight from its bytes (addPacked).
 *
 * A delta is a float64 while it stays a safe integer (|d| <= 2^53 - 1: exact), else a bigint in a
 * side map (sums of int64 deltas can leave any fixed width; such rows are rare).
 * Invariants: a live row has keyLength >= 1 and exactly one index entry, whose hash is its key's;
 * a free row has keyLength 0 and is on the free list; a row whose delta reaches 0 is removed.
 */
import { randomInt } from "node:crypto";
import { fmix32 } from "../../util/hash.js";

const INDEX_LOAD_MAX = 0.6;
const ROWS_INITIAL = 64;
const ARENA_INITIAL = 4096;
/** |high word| below this: the int64 is a safe integer as high * 2^32 + low. */
const SAFE_HIGH = 0x200000;
const TWO_32 = 4294967296;

/**
 * FNV-1a over bytes[start, start + length) from `seed`, then fmix32: spreads into the low bits the
 * index uses. The seed is random per table: keys come from clients, and a fixed hash would let
 * one send keys that all probe the same run of the index.
 */
export function hashKeyBytes(bytes: Uint8Array, start: number, length: number, seed: number): number {
  let hash = seed;
  for (let i = start; i < start + length; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  return fmix32(hash ^ length) | 0;
}

export class PendingTable {
  constructor(private readonly seed = randomInt(0x7fffffff) ^ 0x811c9dc5) {}

  private arena = new Uint8Array(ARENA_INITIAL);
  private arenaUsed = 0;
  private liveKeyBytes = 0;
  private keyStart = new Int32Array(ROWS_INITIAL);
  /** 0: a free row. */
  private keyLength = new Int32Array(ROWS_INITIAL);
  /** The key's hash slot (src/meta/slots.ts), -1 until the flusher computes it. */
  private slots = new Int32Array(ROWS_INITIAL);
  private addCounts = new Float64Array(ROWS_INITIAL);
  private oldest = new Float64Array(ROWS_INITIAL);
  /** NaN: the delta is in bigDeltas. */
  private deltas = new Float64Array(ROWS_INITIAL);
  private readonly bigDeltas = new Map<number, bigint>();
  /** Rows ever used (iteration bound); free ones below it are on `free`. */
  private highWater = 0;
  private free: number[] = [];
  private index = new Int32Array(2 * 128);
  private indexMask = 127;
  size = 0;

  /** The row holding `key`, or -1. */
  find(key: Uint8Array): number {
    return this.findRange(key, 0, key.length, hashKeyBytes(key, 0, key.length, this.seed));
  }

  /**
   * Sums the adds of packed bytes (src/util/packed-adds.ts, already validated) into their rows:
   * one pass over the bytes, no object per add. A zero delta changes nothing.
   */
  addPacked(packed: Uint8Array, atMs: number): void {
    const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
    let at = 0;
    while (at + 2 <= packed.length) {
      const length = (packed[at]! << 8) | packed[at + 1]!;
      const keyAt = at + 2;
      const deltaAt = keyAt + length;
      at = deltaAt + 8;
      const low = view.getUint32(deltaAt, true);
      const high = view.getInt32(deltaAt + 4, true);
      if (high === 0 && low === 0) continue;
      const row = this.findOrInsert(packed, keyAt, length, atMs);
      if (high > -SAFE_HIGH && high < SAFE_HIGH) this.addNumber(row, high * TWO_32 + low);
      else this.addBig(row, view.getBigInt64(deltaAt, true));
      this.addCounts[row] = this.addCounts[row]! + 1;
      if (atMs < this.oldest[row]!) this.oldest[row] = atMs;
      this.dropIfZero(row);
    }
  }

  /** Adds `delta` to `key`'s row (inserting it with `atMs`), counting `adds` add operations. */
  add(key: Uint8Array, delta: bigint, atMs: number, adds = 1): void {
    if (delta === 0n) return;
    const row = this.findOrInsert(key, 0, key.length, atMs);
    this.addBig(row, delta);
    this.addCounts[row] = this.addCounts[row]! + adds;
    if (atMs < this.oldest[row]!) this.oldest[row] = atMs;
    this.dropIfZero(row);
  }

  /** Sets a live row's delta (0 removes it), add count and oldest time. */
  set(row: number, delta: bigint, adds: number, oldestMs: number): void {
    this.storeDelta(row, delta);
    this.addCounts[row] = adds;
    this.oldest[row] = oldestMs;
    this.dropIfZero(row);
  }

  /** Inserts `key` (absent) with these values; a zero delta inserts nothing. */
  insert(key: Uint8Array, delta: bigint, adds: number, oldestMs: number): void {
    if (delta === 0n) return;
    const row = this.findOrInsert(key, 0, key.length, oldestMs);
    this.set(row, delta, adds, oldestMs);
  }

  delta(row: number): bigint {
    const value = this.deltas[row]!;
    return Number.isNaN(value) ? this.bigDeltas.get(row)! : BigInt(value);
  }

  adds(row: number): number {
    return this.addCounts[row]!;
  }

  oldestMs(row: number): number {
    return this.oldest[row]!;
  }

  /** The row's key, copied (it outlives the row). */
  key(row: number): Uint8Array {
    return this.arena.slice(this.keyStart[row]!, this.keyStart[row]! + this.keyLength[row]!);
  }

  /** The row's hash slot, computed by `compute` (from a view of the key) the first time. */
  slot(row: number, compute: (key: Uint8Array) => number): number {
    let slot = this.slots[row]!;
    if (slot < 0) slot = this.slots[row] = compute(this.arena.subarray(this.keyStart[row]!, this.keyStart[row]! + this.keyLength[row]!));
    return slot;
  }

  /** Live rows, in row order (a row removed meanwhile is skipped; one inserted may be missed). */
  *rows(): IterableIterator<number> {
    for (let row = 0; row < this.highWater; row++) if (this.keyLength[row]! > 0) yield row;
  }

  private findRange(bytes: Uint8Array, start: number, length: number, hash: number): number {
    const index = this.index;
    let position = hash & this.indexMask;
    for (;;) {
      const entry = index[position * 2]!;
      if (entry === 0) return -1;
      if (index[position * 2 + 1] === hash && this.keyEquals(entry - 1, bytes, start, length)) return entry - 1;
      position = (position + 1) & this.indexMask;
    }
  }

  private keyEquals(row: number, bytes: Uint8Array, start: number, length: number): boolean {
    if (this.keyLength[row] !== length) return false;
    const arena = this.arena;
    const at = this.keyStart[row]!;
    for (let i = 0; i < length; i++) if (arena[at + i] !== bytes[start + i]) return false;
    return true;
  }

  private findOrInsert(bytes: Uint8Array, start: number, length: number, atMs: number): number {
    const hash = hashKeyBytes(bytes, start, length, this.seed);
    const found = this.findRange(bytes, start, length, hash);
    if (found >= 0) return found;
    if ((this.size + 1) / (this.indexMask + 1) > INDEX_LOAD_MAX) this.growIndex();
    const row = this.newRow();
    this.keyStart[row] = this.storeKey(bytes, start, length);
    this.keyLength[row] = length;
    this.slots[row] = -1;
    this.addCounts[row] = 0;
    this.oldest[row] = atMs;
    this.deltas[row] = 0;
    this.place(row, hash);
    this.size++;
    this.liveKeyBytes += length;
    return row;
  }

  private place(row: number, hash: number): void {
    let position = hash & this.indexMask;
    while (this.index[position * 2] !== 0) position = (position + 1) & this.indexMask;
    this.index[position * 2] = row + 1;
    this.index[position * 2 + 1] = hash;
  }

  private newRow(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    if (this.highWater === this.keyLength.length) this.growRows();
    return this.highWater++;
  }

  private addNumber(row: number, delta: number): void {
    const sum = this.deltas[row]! + delta;
    if (Number.isSafeInteger(sum)) this.deltas[row] = sum;
    else this.addBig(row, BigInt(delta));
  }

  private addBig(row: number, delta: bigint): void {
    this.storeDelta(row, this.delta(row) + delta);
  }

  private storeDelta(row: number, delta: bigint): void {
    const value = Number(delta);
    if (Number.isSafeInteger(value)) {
      this.deltas[row] = value;
      this.bigDeltas.delete(row);
    } else {
      this.deltas[row] = Number.NaN;
      this.bigDeltas.set(row, delta);
    }
  }

  private dropIfZero(row: number): void {
    if (this.deltas[row] === 0) this.remove(row);
  }

  /** Removes a live row: backward-shift deletion keeps every probe chain unbroken. */
  private remove(row: number): void {
    const length = this.keyLength[row]!;
    const hash = hashKeyBytes(this.arena, this.keyStart[row]!, length, this.seed);
    const index = this.index;
    const mask = this.indexMask;
    let hole = hash & mask;
    while (index[hole * 2] !== row + 1) hole = (hole + 1) & mask;
    for (let next = (hole + 1) & mask; index[next * 2] !== 0; next = (next + 1) & mask) {
      const home = index[next * 2 + 1]! & mask;
      // The entry at `next` may move into the hole unless its home lies cyclically in (hole, next].
      if (hole <= next ? home > hole && home <= next : home > hole || home <= next) continue;
      index[hole * 2] = index[next * 2]!;
      index[hole * 2 + 1] = index[next * 2 + 1]!;
      hole = next;
    }
    index[hole * 2] = 0;
    index[hole * 2 + 1] = 0;
    this.keyLength[row] = 0;
    this.bigDeltas.delete(row);
    this.deltas[row] = 0;
    this.free.push(row);
    this.size--;
    this.liveKeyBytes -= length;
  }

  private storeKey(bytes: Uint8Array, start: number, length: number): number {
    if (this.arenaUsed + length > this.arena.length) this.makeArenaRoom(length);
    const at = this.arenaUsed;
    this.arena.set(bytes.subarray(start, start + length), at);
    this.arenaUsed += length;
    return at;
  }

  /** Room for `length` more bytes: drops removed keys' bytes when they are most of the arena, else doubles it. */
  private makeArenaRoom(length: number): void {
    const needed = this.liveKeyBytes + length;
    const size = Math.max(ARENA_INITIAL, needed * 2 <= this.arena.length ? this.arena.length : 2 ** Math.ceil(Math.log2(needed * 2)));
    const next = new Uint8Array(size);
    let at = 0;
    for (let row = 0; row < this.highWater; row++) {
      const keyLength = this.keyLength[row]!;
      if (keyLength === 0) continue;
      next.set(this.arena.subarray(this.keyStart[row]!, this.keyStart[row]! + keyLength), at);
      this.keyStart[row] = at;
      at += keyLength;
    }
    this.arena = next;
    this.arenaUsed = at;
  }

  private growRows(): void {
    const rows = this.keyLength.length * 2;
    const grow = <T extends Int32Array | Float64Array>(old: T, make: (n: number) => T): T => {
      const next = make(rows);
      next.set(old);
      return next;
    };
    this.keyStart = grow(this.keyStart, (n) => new Int32Array(n));
    this.keyLength = grow(this.keyLength, (n) => new Int32Array(n));
    this.slots = grow(this.slots, (n) => new Int32Array(n));
    this.addCounts = grow(this.addCounts, (n) => new Float64Array(n));
    this.oldest = grow(this.oldest, (n) => new Float64Array(n));
    this.deltas = grow(this.deltas, (n) => new Float64Array(n));
  }

  private growIndex(): void {
    const entries = (this.indexMask + 1) * 2;
    const old = this.index;
    this.index = new Int32Array(entries * 2);
    this.indexMask = entries - 1;
    for (let position = 0; position < old.length / 2; position++) {
      const entry = old[position * 2]!;
      if (entry !== 0) this.place(entry - 1, old[position * 2 + 1]!);
    }
  }
}
