/**
 * The shard's recent changes, for watch streams (issue 8): every change of a key (counter write,
 * kind write, deletion by reset or expiry) with the log index that made it, in apply order.
 *
 * Not replicated state: each replica records what it applies, so any replica can serve a watch,
 * and a watcher that reconnects elsewhere resumes from the last index it saw. Bounded: a ring of
 * at most `capacity` changes; `retainedAfter` is the index after which the ring is complete (it
 * starts at the index the machine was built at, and rises as old changes are dropped). A resume
 * from below it is compacted: the watcher must re-read and watch from now (etcd's compacted
 * revision).
 */
import { assert } from "../util/assert.js";
import { INT64_MAX, INT64_MIN } from "../util/int64.js";

export type ChangeKind = "counter" | "window" | "limit" | "unique" | "deleted";

export interface KeyChange {
  readonly index: number;
  readonly key: Uint8Array;
  /** counter: its value; window: the bucket sum; limit: remaining; unique: 1 if changed; deleted: 0. */
  readonly value: bigint;
  /** The key's version after the change (0 when deleted). */
  readonly version: number;
  readonly kind: ChangeKind;
}

export const CHANGE_LOG_CAPACITY = 65_536;
/** Key bytes kept per retained change on average before the oldest changes give way to new keys. */
const KEY_BYTES_PER_CHANGE = 32;

const KINDS: readonly ChangeKind[] = ["counter", "window", "limit", "unique", "deleted"];
const KIND_CODE = new Map<ChangeKind, number>(KINDS.map((kind, code) => [kind, code]));

/**
 * Columns in typed arrays and key bytes in a circular arena, not one object per change: every
 * applied op records a change on every replica, and a ring of objects (each with its key copy)
 * lives just long enough to be promoted out of the young generation, which made the collector a
 * fifth of a replica's CPU under batched writes. KeyChange objects are built only when read.
 */
export class ChangeLog {
  private readonly indexes: Float64Array;
  private readonly versions: Float64Array;
  private readonly values: BigInt64Array;
  /** Values outside int64 (a window sum can be), by ring position. */
  private readonly wideValues = new Map<number, bigint>();
  private readonly kinds: Uint8Array;
  private readonly keyOffsets: Uint32Array;
  private readonly keyLengths: Uint32Array;
  private readonly arena: Uint8Array;
  /** Where the next key's bytes go. */
  private arenaTail = 0;
  private head = 0;
  private size = 0;
  private retainedAfterIndex: number;

  constructor(
    fromIndex: number,
    readonly capacity = CHANGE_LOG_CAPACITY,
  ) {
    assert(Number.isSafeInteger(fromIndex) && fromIndex >= 0, "change log starts at a valid index");
    assert(Number.isInteger(capacity) && capacity >= 1, "change log capacity >= 1");
    this.indexes = new Float64Array(capacity);
    this.versions = new Float64Array(capacity);
    this.values = new BigInt64Array(capacity);
    this.kinds = new Uint8Array(capacity);
    this.keyOffsets = new Uint32Array(capacity);
    this.keyLengths = new Uint32Array(capacity);
    // Room for any one key (<= 65,535 bytes) twice over, whatever the capacity.
    this.arena = new Uint8Array(Math.max(capacity * KEY_BYTES_PER_CHANGE, 2 * 65_536));
    this.retainedAfterIndex = fromIndex;
  }

  /** Every change with index > retainedAfter is in the log. */
  get retainedAfter(): number {
    return this.retainedAfterIndex;
  }

  /** Records a change; the key's bytes are copied (the caller may reuse its buffer). */
  record(change: KeyChange): void {
    this.append(change.index, change.key, change.value, change.version, change.kind);
  }

  append(index: number, key: Uint8Array, value: bigint, version: number, kind: ChangeKind): void {
    this.appendRange(index, key, 0, key.length, value, version, kind);
  }

  /** append() of the key bytes[start, start + length), without a view of it. */
  appendRange(index: number, bytes: Uint8Array, start: number, length: number, value: bigint, version: number, kind: ChangeKind): void {
    assert(this.size === 0 || this.indexes[(this.head + this.size - 1) % this.capacity]! <= index, "changes are recorded in index order");
    assert(length <= this.arena.length / 2, "change log key longer than its arena allows");
    if (this.size === this.capacity) this.dropOldest();
    // Keys are laid down in ring order, so the live bytes run from the oldest change's key to the
    // tail, wrapping once: a key that does not fit before the end starts again at 0, and the
    // oldest changes whose bytes it would overwrite are dropped first.
    let at = this.arenaTail;
    if (at + length > this.arena.length) at = 0;
    while (this.size > 0) {
      const oldest = this.keyOffsets[this.head]!;
      if (oldest < at || oldest >= at + length) break;
      this.dropOldest();
    }
    const arena = this.arena;
    for (let i = 0; i < length; i++) arena[at + i] = bytes[start + i]!;
    this.arenaTail = at + length;
    const position = (this.head + this.size) % this.capacity;
    this.indexes[position] = index;
    this.versions[position] = version;
    if (value >= INT64_MIN && value <= INT64_MAX) {
      this.values[position] = value;
      this.wideValues.delete(position);
    } else {
      this.wideValues.set(position, value);
    }
    this.kinds[position] = KIND_CODE.get(kind)!;
    this.keyOffsets[position] = at;
    this.keyLengths[position] = length;
    this.size++;
  }

  private dropOldest(): void {
    // Changes at the dropped index may remain, but that index is no longer complete.
    this.retainedAfterIndex = Math.max(this.retainedAfterIndex, this.indexes[this.head]!);
    this.wideValues.delete(this.head);
    this.head = (this.head + 1) % this.capacity;
    this.size--;
  }

  /**
   * Changes with afterIndex < index, matching, at most `limit` (whole indexes only: a batch never
   * ends in the middle of one entry's changes unless one entry alone exceeds the limit).
   * undefined when afterIndex is below retainedAfter (compacted). `matches` sees a view of the
   * key; a returned change holds its own copy.
   */
  since(afterIndex: number, matches: (key: Uint8Array) => boolean, limit: number): KeyChange[] | undefined {
    if (afterIndex < this.retainedAfterIndex) return undefined;
    const out: KeyChange[] = [];
    // Binary search for the first change above afterIndex.
    let low = 0;
    let high = this.size;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.indexes[(this.head + middle) % this.capacity]! <= afterIndex) low = middle + 1;
      else high = middle;
    }
    for (let i = low; i < this.size; i++) {
      const position = (this.head + i) % this.capacity;
      const index = this.indexes[position]!;
      if (out.length >= limit && index !== out[out.length - 1]!.index) break;
      const offset = this.keyOffsets[position]!;
      const key = this.arena.subarray(offset, offset + this.keyLengths[position]!);
      if (!matches(key)) continue;
      out.push({
        index,
        key: key.slice(),
        value: this.wideValues.get(position) ?? this.values[position]!,
        version: this.versions[position]!,
        kind: KINDS[this.kinds[position]!]!,
      });
    }
    return out;
  }
}
