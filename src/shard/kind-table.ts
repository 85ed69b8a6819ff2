/**
 * The keys of a shard that are not plain counters, or plain counters with an expiry: each key's
 * kind (windowed counter, rate limiter, HyperLogLog, or "TTL only" for a plain counter whose value
 * lives in the CounterTable), its structure, version and expiry (issue 8; structures in kinds/).
 *
 * A key holds one kind: the state machine refuses an op of another kind on it
 * (FAILED_PRECONDITION), so a key is either in the CounterTable, or here with a structure, never
 * both (a plain counter with a TTL is in the CounterTable and here as a TTL-only entry).
 *
 * Persistence: the table is part of the shard's state, carried by checkpoints (shard images) and
 * snapshots as one record per key (encodeKindRecord); the expiry index is derived from the
 * records, never stored on its own. Applying changes memory only: nothing tracks what changed.
 *
 * Atomic mutates: before the first change of a key within a multi-op mutate, the state machine
 * calls saveUndo(), which keeps the key's encoded record, a copy for a unique count (or its
 * absence); rollback() restores them newest first. A single-op mutate needs no undo: every structure checks before it writes.
 *
 * Bounds: the state machine keeps counters + structured kinds <= maxCounters <= COUNTERS_MAX, so
 * the expiry index (one entry per key with a TTL) never fills.
 */
import { assert } from "../util/assert.js";
import { CorruptionError } from "../util/errors.js";
import { ByteReader, ByteWriter } from "./binary.js";
import { COUNTERS_MAX } from "./counter-table.js";
import { binaryString } from "../kinds/codec.js";
import { HyperLogLog } from "../kinds/hll.js";
import { SlidingWindowLimiter } from "./kinds/ratelimit.js";
import { ExpiryIndex, type ExpiringKey } from "./kinds/ttl.js";
import { WindowedCounter } from "./kinds/windows.js";

export const enum KindTag {
  /** A plain counter's expiry; its value is in the CounterTable. */
  Ttl = 0,
  Window = 1,
  Limit = 2,
  Unique = 3,
}

export const KIND_NAMES: Readonly<Record<KindTag, string>> = {
  [KindTag.Ttl]: "counter",
  [KindTag.Window]: "windowed counter",
  [KindTag.Limit]: "rate limit",
  [KindTag.Unique]: "unique count",
};

export type KindStructure = WindowedCounter | SlidingWindowLimiter | HyperLogLog;

export interface KindEntry {
  /** An owned copy. */
  readonly key: Uint8Array;
  readonly tag: KindTag;
  /** Undefined exactly for KindTag.Ttl. */
  readonly structure: KindStructure | undefined;
  /** Log index of the last change of the structure (0 for TTL-only entries). */
  version: number;
  /** 0 = never expires. */
  expiresAtMs: number;
}

const RECORD_FORMAT = 1;

/**
 * A kind record: u8 format | u8 tag | u64 version | u64 expiresAtMs | structure bytes (the rest;
 * empty for TTL-only). The structures' encodings carry their own CRC; the store adds another.
 */
export function encodeKindRecord(entry: KindEntry): Uint8Array {
  const structure = entry.structure?.encode();
  const writer = new ByteWriter(18 + (structure?.length ?? 0));
  writer.u8(RECORD_FORMAT);
  writer.u8(entry.tag);
  writer.u64(entry.version);
  writer.u64(entry.expiresAtMs);
  if (structure !== undefined) writer.raw(structure);
  return writer.finish();
}

/** Throws CorruptionError on any damage (the structures' decoders verify their bytes). */
export function decodeKindRecord(key: Uint8Array, bytes: Uint8Array): KindEntry {
  const reader = new ByteReader(bytes, "kind record");
  const format = reader.u8();
  if (format !== RECORD_FORMAT) reader.fail(`unknown kind record format ${format}`);
  const tag = reader.u8() as KindTag;
  const version = reader.u64();
  const expiresAtMs = reader.u64();
  const rest = reader.raw(reader.remaining);
  let structure: KindStructure | undefined;
  switch (tag) {
    case KindTag.Ttl:
      if (rest.length !== 0) reader.fail("a TTL-only record carries a structure");
      if (expiresAtMs === 0) reader.fail("a TTL-only record without an expiry");
      if (version !== 0) reader.fail("a TTL-only record with a version");
      break;
    case KindTag.Window:
      structure = WindowedCounter.decode(rest);
      break;
    case KindTag.Limit:
      structure = SlidingWindowLimiter.decode(rest);
      break;
    case KindTag.Unique:
      structure = HyperLogLog.decode(rest);
      break;
    default:
      return reader.fail(`unknown kind tag ${String(tag)}`);
  }
  if (tag !== KindTag.Ttl && version < 1) reader.fail("a kind record with version 0");
  return { key: key.slice(), tag, structure, version, expiresAtMs };
}

/**
 * What saveUndo keeps of an entry: a HyperLogLog is cloned (two typed-array copies: cheaper than
 * encoding 3 bytes per register with a CRC and decoding it back, and uniqueAdds batched into one
 * mutate save one per key); the other structures keep their encoded record.
 */
function undoCopy(entry: KindEntry): Uint8Array | KindEntry {
  if (entry.structure !== undefined && !(entry.structure instanceof HyperLogLog)) return encodeKindRecord(entry);
  return { key: entry.key, tag: entry.tag, structure: entry.structure?.clone(), version: entry.version, expiresAtMs: entry.expiresAtMs };
}

export class KindTable {
  private readonly entries = new Map<string, KindEntry>();
  private readonly expiry = new ExpiryIndex(COUNTERS_MAX);
  /** Keys with a structure (not TTL-only): they count against maxCounters. */
  private structuredCount = 0;
  /** Per key saved: its encoded record, or for a unique count (or TTL-only entry) a copy of the entry, or undefined (absent). */
  private undo: Array<[string, Uint8Array, Uint8Array | KindEntry | undefined]> = [];
  private readonly undoNames = new Set<string>();

  get size(): number {
    return this.entries.size;
  }

  /** Keys holding a structure (windowed, limit, unique). */
  get structured(): number {
    return this.structuredCount;
  }

  get(key: Uint8Array): KindEntry | undefined {
    return this.entries.size === 0 ? undefined : this.entries.get(binaryString(key));
  }

  /** True when the key has an expiry at or before nowMs (due, even if not deleted yet). */
  isDue(key: Uint8Array, nowMs: number): boolean {
    if (this.entries.size === 0) return false;
    const entry = this.entries.get(binaryString(key));
    return entry !== undefined && entry.expiresAtMs !== 0 && entry.expiresAtMs <= nowMs;
  }

  /** Adds or replaces the key's entry (the caller saved undo first). */
  put(entry: KindEntry): void {
    const name = binaryString(entry.key);
    const previous = this.entries.get(name);
    if (previous?.structure !== undefined) this.structuredCount--;
    if (entry.structure !== undefined) this.structuredCount++;
    this.entries.set(name, entry);
    this.syncExpiry(entry);
  }

  /** The entry's fields changed in place (version, expiry, structure): re-index its expiry. */
  touched(entry: KindEntry): void {
    assert(this.entries.get(binaryString(entry.key)) === entry, "touched an entry that is not in the table");
    this.syncExpiry(entry);
  }

  remove(key: Uint8Array): boolean {
    const name = binaryString(key);
    const entry = this.entries.get(name);
    if (entry === undefined) return false;
    this.entries.delete(name);
    if (entry.structure !== undefined) this.structuredCount--;
    this.expiry.clear(entry.key);
    return true;
  }

  /** At most `limit` keys due at nowMs, in (expiresAt, key) order; changes nothing. */
  due(nowMs: number, limit: number): ExpiringKey[] {
    return this.expiry.size === 0 ? [] : this.expiry.expired(nowMs, limit);
  }

  // ---- undo within one mutate ----

  /** Keeps the key's state as of the start of the mutate (first call per key only). */
  saveUndo(key: Uint8Array): void {
    const name = binaryString(key);
    if (this.undoNames.has(name)) return;
    this.undoNames.add(name);
    const entry = this.entries.get(name);
    this.undo.push([name, key.slice(), entry === undefined ? undefined : undoCopy(entry)]);
  }

  rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) {
      const [, key, record] = this.undo[i]!;
      if (record === undefined) this.remove(key);
      else this.put(record instanceof Uint8Array ? decodeKindRecord(key, record) : record);
    }
    this.endMutate();
  }

  endMutate(): void {
    this.undo = [];
    this.undoNames.clear();
  }

  // ---- export and load ----

  /** Every entry, in no particular order. */
  values(): IterableIterator<KindEntry> {
    return this.entries.values();
  }

  /** Every entry in key order (snapshots, splits). */
  sorted(): KindEntry[] {
    return [...this.entries.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, entry]) => entry);
  }

  /** Adds a loaded record (load, restore, shard image). */
  load(entry: KindEntry, appliedIndex: number): void {
    const name = binaryString(entry.key);
    if (this.entries.has(name)) throw new CorruptionError(`kind record for key ${name.length} bytes appears twice`);
    if (entry.version > appliedIndex) throw new CorruptionError(`kind record version ${entry.version} above applied index ${appliedIndex}`);
    this.put(entry);
  }

  private syncExpiry(entry: KindEntry): void {
    if (entry.expiresAtMs === 0) this.expiry.clear(entry.key);
    else this.expiry.set(entry.key, entry.expiresAtMs);
  }
}
