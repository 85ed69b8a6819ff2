/**
 * The unstable part of the log (etcd's unstable): entries and at most one snapshot that the node
 * knows about but the caller has not yet persisted. Entries live in one array read from `start`, so
 * dropping the persisted prefix never copies; the array is reset when it drains (the common case)
 * and compacted only when the dead prefix dominates.
 *
 * Invariant: entries[start + k].index === offset + k for every live k.
 * Invariant: if snapshot is set, offset === snapshot.metadata.index + 1 or later entries follow it.
 */
import { assert } from "../util/assert.js";
import type { Entry, LogIndex, Snapshot, Term } from "./types.js";

/** Dead prefix length at which the backing array is compacted. */
const COMPACT_DEAD_ENTRIES = 1024;

export class Unstable {
  snapshot: Snapshot | undefined = undefined;
  private entries: Entry[] = [];
  private start = 0;
  /** Index of the first unstable entry. */
  offset: LogIndex;

  constructor(offset: LogIndex) {
    assert(Number.isInteger(offset) && offset >= 1, "unstable: offset must be >= 1");
    this.offset = offset;
  }

  get length(): number {
    return this.entries.length - this.start;
  }

  /** First index if the unstable snapshot determines it. */
  maybeFirstIndex(): LogIndex | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  /** Last index if anything unstable determines it. */
  maybeLastIndex(): LogIndex | undefined {
    const n = this.length;
    if (n > 0) return this.offset + n - 1;
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index;
  }

  /** Term of index if the unstable part knows it; -1 otherwise. */
  maybeTerm(index: LogIndex): Term {
    if (index < this.offset) {
      const s = this.snapshot;
      return s !== undefined && s.metadata.index === index ? s.metadata.term : -1;
    }
    const k = index - this.offset;
    if (k >= this.length) return -1;
    return this.entries[this.start + k]!.term;
  }

  entryAt(index: LogIndex): Entry {
    const e = this.entries[this.start + index - this.offset];
    assert(e !== undefined && e.index === index, `unstable: no entry at ${index}`);
    return e;
  }

  /** Persisted through (index, term): drop that prefix. Ignored when the entry was replaced since. */
  stableTo(index: LogIndex, term: Term): void {
    if (index < this.offset) return;
    if (this.maybeTerm(index) !== term) return;
    const drop = index + 1 - this.offset;
    this.start += drop;
    this.offset = index + 1;
    if (this.start === this.entries.length) {
      this.entries = [];
      this.start = 0;
    } else if (this.start >= COMPACT_DEAD_ENTRIES && this.start * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.start);
      this.start = 0;
    }
  }

  stableSnapTo(index: LogIndex): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === index) this.snapshot = undefined;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.entries = [];
    this.start = 0;
    this.snapshot = snapshot;
  }

  /**
   * Appends entries that directly follow or overwrite part of the log (Raft paper 5.3: a conflicting
   * suffix is replaced). Entries must be contiguous; the caller guarantees nothing committed is cut.
   */
  truncateAndAppend(ents: Entry[]): void {
    const from = ents[0]!.index;
    const n = this.length;
    if (from === this.offset + n) {
      for (let i = 0; i < ents.length; i++) this.entries.push(ents[i]!);
    } else if (from <= this.offset) {
      // The whole unstable tail is replaced; the storage part above `from` is overwritten when the
      // caller appends these entries (MemoryStorage.append truncates a conflicting tail).
      this.entries = ents.slice();
      this.start = 0;
      this.offset = from;
    } else {
      this.entries.length = this.start + (from - this.offset);
      for (let i = 0; i < ents.length; i++) this.entries.push(ents[i]!);
    }
  }

  /** Entries in [lo, hi); the caller checked the bounds. */
  slice(lo: LogIndex, hi: LogIndex): Entry[] {
    assert(lo >= this.offset && hi <= this.offset + this.length && lo <= hi, `unstable: bad slice [${lo}, ${hi})`);
    return this.entries.slice(this.start + lo - this.offset, this.start + hi - this.offset);
  }

  /** A copy of every unstable entry (what a Ready hands out). */
  all(): Entry[] {
    return this.start === 0 ? this.entries.slice() : this.entries.slice(this.start);
  }

  last(): Entry | undefined {
    return this.length > 0 ? this.entries[this.entries.length - 1] : undefined;
  }
}
