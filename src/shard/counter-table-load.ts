/**
 * A counter table being loaded from a shard image's blocks (shard-image.ts readImage): forBlocks
 * sizes it, then loadArenaBytes (all of the arena), adoptIndex (a saved index) or sizeIndex and touchIndex (a new
 * one), loadRows (every row, in order), checkIndexEntries (an adopted index, every entry) and
 * finishLoad. The steps are separate so a caller can yield between them. Once loaded it is an
 * ordinary CounterTable.
 */
import {
  ARENA_BYTES_MAX,
  COUNTERS_MAX,
  CounterTable,
  INITIAL_ARENA_BYTES,
  INITIAL_INDEX_ENTRIES,
  INITIAL_SLOTS,
  MAX_LOAD,
  ROW_BYTES,
  type RowLimits,
} from "./counter-table.js";
import { assert } from "../util/assert.js";

export class LoadingCounterTable extends CounterTable {
  /** During a load (forBlocks .. finishLoad): the declared count, and the key bytes of the rows loaded. */
  protected loadingCount = 0;
  protected loadedKeyBytes = 0;
  /**
   * During a load whose index came with the blocks (adoptIndex): per row, 1 once loaded occupied,
   * 2 once an index entry named it (checkIndexEntries); rows are not hashed. And the entries named.
   */
  protected adoptedRows: Uint8Array | undefined;
  protected indexNamed = 0;

  /**
   * An empty table sized for blocks of `rowBytes` rows and `arenaBytes` arena bytes holding `count`
   * counters, to be filled by loadArenaBytes (all of it), then loadRows (every row, in order), then
   * finishLoad. The steps are separate so a caller can yield between them; the buffers are
   * allocated here but only touched by the steps.
   */
  static forBlocks(
    hashSeed: number,
    count: number,
    rowBytes: number,
    arenaBytes: number,
    corrupt: (problem: string) => never,
  ): LoadingCounterTable {
    const slots = rowBytes / ROW_BYTES;
    if (!Number.isInteger(slots)) corrupt(`counter rows of ${rowBytes} bytes, not a multiple of ${ROW_BYTES}`);
    if (slots > COUNTERS_MAX + 100_000) corrupt(`${slots} counter rows, beyond the table's ceiling`);
    if (!Number.isInteger(count) || count < 0 || count > slots) corrupt(`${count} counters in ${slots} rows`);
    if (arenaBytes > ARENA_BYTES_MAX) corrupt(`key arena of ${arenaBytes} bytes`);
    const table = new LoadingCounterTable(hashSeed);
    // 1/8 of room to grow (untouched memory costs nothing), so the first new keys after a load do
    // not copy the whole rows, arena or index to grow them.
    table.slotCapacity = Math.max(INITIAL_SLOTS, slots + (slots >>> 3));
    table.setRows(new ArrayBuffer(table.slotCapacity * ROW_BYTES));
    table.highWaterSlot = slots;
    table.arena = new Uint8Array(Math.min(ARENA_BYTES_MAX, Math.max(INITIAL_ARENA_BYTES, arenaBytes + (arenaBytes >>> 3))));
    table.arenaUsedBytes = arenaBytes;
    table.loadingCount = count;
    return table;
  }

  /**
   * An empty index sized for the counters being loaded (when none is adopted): a step of its own,
   * as allocating tens of MB costs milliseconds. Call after forBlocks, before touchIndex.
   */
  sizeIndex(): void {
    const count = this.loadingCount;
    let entries = INITIAL_INDEX_ENTRIES;
    while (count + (count >>> 3) > entries * MAX_LOAD) entries *= 2;
    this.index = new Int32Array(entries * 2);
    this.indexMask = entries - 1;
  }

  /**
   * Takes a saved index (exportBlocks' `index`, written for this table's hash seed) instead of
   * building one: loadRows then checks the rows without hashing a key, and finishLoad checks that
   * the index names every occupied row exactly once. Call after forBlocks, before loadRows.
   */
  adoptIndex(index: Int32Array<ArrayBuffer>, corrupt: (problem: string) => never): void {
    const entries = index.length / 2;
    if (!Number.isInteger(entries) || entries < INITIAL_INDEX_ENTRIES || (entries & (entries - 1)) !== 0)
      corrupt(`an index of ${index.length} words, not a power of two of pairs`);
    if (this.loadingCount > entries * MAX_LOAD) corrupt(`${this.loadingCount} counters in an index of ${entries} entries`);
    this.index = index;
    this.indexMask = entries - 1;
    this.adoptedRows = new Uint8Array(this.highWaterSlot);
  }

  /**
   * Checks index entries [from, to) of an adopted index against the rows loaded (call after every
   * loadRows, before finishLoad): each names an occupied row, and no row twice. Touches only a
   * byte per row, never the rows themselves.
   */
  checkIndexEntries(from: number, to: number, corrupt: (problem: string) => never): void {
    const seen = this.adoptedRows!;
    const index = this.index;
    const rows = this.highWaterSlot;
    for (let position = from; position < to; position++) {
      const entry = index[position * 2]!;
      if (entry === 0) continue;
      const slot = entry - 1;
      if (slot < 0 || slot >= rows || seen[slot] === 0) corrupt(`index entry ${position} names no counter row`);
      if (seen[slot] === 2) corrupt(`index names counter row ${slot} twice`);
      seen[slot] = 2;
      this.indexNamed++;
    }
  }

  /**
   * Index entries [from, to) written (zero) once, so that loadRows' random inserts do not meet
   * fresh memory: first touches of a large fresh buffer (page faults) would otherwise all land in
   * the first slices of rows. `indexEntries` is the number of entries to go over.
   */
  get indexEntries(): number {
    return this.indexMask + 1;
  }

  touchIndex(from: number, to: number): void {
    this.index.fill(0, from * 2, to * 2);
  }

  /** Copies source (the whole arena block) bytes [from, to) into the arena. */
  loadArenaBytes(source: Uint8Array, from: number, to: number): void {
    assert(source.length === this.arenaUsedBytes, "arena block length changed");
    this.arena.set(source.subarray(from, to), from);
  }

  /**
   * Copies rows [from, to) of source (the whole rows block) in and checks each: a free row (key
   * length 0) is all zero but its key offset; an occupied one has a key of 1..keyBytesMax bytes
   * inside the arena, no flags, a version in [1, versionMax], and a key no other row holds. Indexes
   * the occupied rows and lists the free ones. Damage is `corrupt` (CorruptionError).
   */
  loadRows(source: Uint8Array, from: number, to: number, limits: RowLimits, corrupt: (problem: string) => never): void {
    assert(source.length === this.highWaterSlot * ROW_BYTES && from >= 0 && to <= this.highWaterSlot, "rows outside the block");
    this.rowBytes.set(source.subarray(from * ROW_BYTES, to * ROW_BYTES), from * ROW_BYTES);
    const { words, halfWords, versions, arena, index } = this;
    const mask = this.indexMask;
    const { keyBytesMax, versionMax } = limits;
    for (let slot = from; slot < to; slot++) {
      const length = halfWords[slot * 12 + 10]!;
      if (halfWords[slot * 12 + 11] !== 0) corrupt(`counter row ${slot} has flags ${halfWords[slot * 12 + 11]}`);
      if (length === 0) {
        if ((words[slot * 6]! | words[slot * 6 + 1]! | words[slot * 6 + 2]! | words[slot * 6 + 3]!) !== 0) {
          corrupt(`free counter row ${slot} holds a value or version`);
        }
        this.freeSlots.push(slot);
        continue;
      }
      const offset = words[slot * 6 + 4]!;
      if (length > keyBytesMax) corrupt(`counter row ${slot} key of ${length} bytes`);
      if (offset + length > this.arenaUsedBytes) corrupt(`counter row ${slot} key outside the arena`);
      const version = versions[slot * 3 + 1]!;
      if (!(version >= 1 && version <= versionMax && Math.floor(version) === version)) {
        corrupt(`counter row ${slot} version ${version} outside [1, applied ${versionMax}]`);
      }
      if (this.count >= this.loadingCount) corrupt(`more than the ${this.loadingCount} counters the image declares`);
      this.count++;
      this.loadedKeyBytes += length;
      if (this.adoptedRows !== undefined) {
        this.adoptedRows[slot] = 1; // checkIndexEntries matches the index against these
        continue;
      }
      const hash = this.hashBytes(arena, offset, length);
      let position = hash & mask;
      for (;;) {
        const entry = index[position * 2]!;
        if (entry === 0) break;
        if (index[position * 2 + 1] === (hash | 0) && this.compareKeys(entry - 1, slot) === 0)
          corrupt(`counter rows ${entry - 1} and ${slot} hold the same key`);
        position = (position + 1) & mask;
      }
      index[position * 2] = slot + 1;
      index[position * 2 + 1] = hash;
    }
  }

  /** Ends a load: every row is in; the counts must agree. Arena bytes of dead keys are kept (as garbage). */
  finishLoad(corrupt: (problem: string) => never): void {
    if (this.count !== this.loadingCount) corrupt(`${this.count} counters in the rows; the image declares ${this.loadingCount}`);
    if (this.adoptedRows !== undefined) {
      if (this.indexNamed !== this.count) corrupt(`the index names ${this.indexNamed} counter rows; the rows hold ${this.count}`);
      this.adoptedRows = undefined;
      this.indexNamed = 0;
    }
    if (this.loadedKeyBytes > this.arenaUsedBytes) corrupt(`keys of ${this.loadedKeyBytes} bytes in an arena of ${this.arenaUsedBytes}`);
    this.arenaGarbageBytes = this.arenaUsedBytes - this.loadedKeyBytes;
    this.loadedKeyBytes = 0;
    // Slots are taken from the end of freeSlots: the lowest free slot first, as in a fresh table.
    this.freeSlots.reverse();
  }
}
