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

export class ChangeLog {
  private readonly ring: Array<KeyChange | undefined>;
  private head = 0;
  private size = 0;
  private retainedAfterIndex: number;

  constructor(fromIndex: number, readonly capacity = CHANGE_LOG_CAPACITY) {
    assert(Number.isSafeInteger(fromIndex) && fromIndex >= 0, "change log starts at a valid index");
    assert(Number.isInteger(capacity) && capacity >= 1, "change log capacity >= 1");
    this.ring = new Array(capacity);
    this.retainedAfterIndex = fromIndex;
  }

  /** Every change with index > retainedAfter is in the log. */
  get retainedAfter(): number {
    return this.retainedAfterIndex;
  }

  record(change: KeyChange): void {
    const newest = this.size === 0 ? undefined : this.ring[(this.head + this.size - 1) % this.capacity];
    assert(newest === undefined || newest.index <= change.index, "changes are recorded in index order");
    if (this.size === this.capacity) {
      const dropped = this.ring[this.head]!;
      // Changes at the dropped index may remain, but that index is no longer complete.
      this.retainedAfterIndex = Math.max(this.retainedAfterIndex, dropped.index);
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.size--;
    }
    this.ring[(this.head + this.size) % this.capacity] = change;
    this.size++;
  }

  /**
   * Changes with afterIndex < index, matching, at most `limit` (whole indexes only: a batch never
   * ends in the middle of one entry's changes unless one entry alone exceeds the limit).
   * undefined when afterIndex is below retainedAfter (compacted).
   */
  since(afterIndex: number, matches: (key: Uint8Array) => boolean, limit: number): KeyChange[] | undefined {
    if (afterIndex < this.retainedAfterIndex) return undefined;
    const out: KeyChange[] = [];
    // Binary search for the first change above afterIndex.
    let low = 0;
    let high = this.size;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.ring[(this.head + middle) % this.capacity]!.index <= afterIndex) low = middle + 1;
      else high = middle;
    }
    for (let i = low; i < this.size; i++) {
      const change = this.ring[(this.head + i) % this.capacity]!;
      if (out.length >= limit && change.index !== out[out.length - 1]!.index) break;
      if (matches(change.key)) out.push(change);
    }
    return out;
  }
}
