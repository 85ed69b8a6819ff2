/**
 * In-memory LogStorage (etcd's MemoryStorage): the reference implementation of the storage contract,
 * used by tests, the simulator and the benchmark. storage/ implements the same contract on LevelDB.
 *
 * Layout: `ents[0]` is a dummy entry holding the index and term of the last compacted entry (the
 * snapshot point); real entries follow contiguously. So firstIndex() = ents[0].index + 1 and
 * term(firstIndex() - 1) is always answerable (Raft paper 7: the snapshot keeps the last included
 * index and term so the AppendEntries consistency check works at the boundary).
 */
import { assert } from "../util/assert.js";
import {
  CompactedError,
  type ConfState,
  type Entry,
  EntryType,
  emptyConfState,
  emptyHardState,
  type HardState,
  type LogIndex,
  type LogStorage,
  type Snapshot,
  type Term,
  UnavailableIndexError,
} from "./types.js";
import { cloneConfState, entryBytes } from "./util.js";

const emptyData = new Uint8Array(0);

export class MemoryStorage implements LogStorage {
  private hardState: HardState = emptyHardState();
  private confState: ConfState = emptyConfState();
  private snap: Snapshot = {
    metadata: { index: 0, term: 0, confState: emptyConfState() },
    data: emptyData,
  };
  /** Invariant: ents.length >= 1; ents[i].index === ents[0].index + i. */
  private ents: Entry[] = [{ term: 0, index: 0, type: EntryType.Normal, data: emptyData }];

  constructor() {}

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: cloneConfState(this.confState) };
  }

  setHardState(hs: HardState): void {
    assert(Number.isInteger(hs.term) && hs.term >= 0, "hard state term must be a non-negative integer");
    assert(Number.isInteger(hs.commit) && hs.commit >= 0, "hard state commit must be a non-negative integer");
    this.hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
  }

  setConfState(cs: ConfState): void {
    this.confState = cloneConfState(cs);
  }

  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    const offset = this.dummy().index;
    if (lo <= offset) throw new CompactedError(`entries: index ${lo} is compacted (first is ${offset + 1})`);
    if (hi > this.lastIndex() + 1) {
      throw new UnavailableIndexError(`entries: hi ${hi} is beyond last index ${this.lastIndex()}`);
    }
    assert(lo <= hi, "entries: lo must be <= hi");
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - offset]!;
      bytes += entryBytes(e);
      // Always at least one entry, so a single oversized entry still makes progress.
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  term(index: LogIndex): Term {
    const offset = this.dummy().index;
    if (index < offset) throw new CompactedError(`term: index ${index} is compacted (first is ${offset + 1})`);
    const e = this.ents[index - offset];
    if (e === undefined) throw new UnavailableIndexError(`term: index ${index} is beyond last index`);
    return e.term;
  }

  firstIndex(): LogIndex {
    return this.dummy().index + 1;
  }

  lastIndex(): LogIndex {
    return this.dummy().index + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Appends entries, truncating a conflicting tail first (the caller hands over Ready.entries,
   * which may overwrite an uncommitted suffix: Raft paper 5.3). Entries at or below the compaction
   * point are skipped: they are committed and identical by the Log Matching Property.
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const firstNew = entries[0]!.index;
    const lastNew = firstNew + entries.length - 1;
    if (lastNew < first) return;
    assert(firstNew <= this.lastIndex() + 1, `append: gap: last index ${this.lastIndex()}, appending at ${firstNew}`);
    for (let i = 1; i < entries.length; i++) {
      assert(entries[i]!.index === firstNew + i, "append: entries must be contiguous");
    }
    const skip = first > firstNew ? first - firstNew : 0;
    const offset = this.dummy().index;
    const keep = firstNew + skip - offset; // number of ents (including the dummy) that stay
    if (keep < this.ents.length) this.ents.length = keep;
    for (let i = skip; i < entries.length; i++) this.ents.push(entries[i]!);
  }

  /** Replaces the log with a snapshot (Ready.snapshot). Refuses to go backwards. */
  applySnapshot(snapshot: Snapshot): void {
    const index = snapshot.metadata.index;
    assert(index > this.snap.metadata.index, `applySnapshot: snapshot ${index} is not newer than ${this.snap.metadata.index}`);
    this.snap = snapshot;
    this.ents = [{ term: snapshot.metadata.term, index, type: EntryType.Normal, data: emptyData }];
    this.confState = cloneConfState(snapshot.metadata.confState);
    if (this.hardState.commit < index) this.hardState = { ...this.hardState, commit: index };
  }

  /**
   * Makes a snapshot at `index` (the application's applied index) with the application's state.
   * It becomes what snapshot() returns; the log is not compacted (call compact() for that).
   */
  createSnapshot(index: LogIndex, confState: ConfState, data: Uint8Array): Snapshot {
    assert(index > this.snap.metadata.index, `createSnapshot: index ${index} is not newer than the snapshot`);
    assert(index <= this.lastIndex(), `createSnapshot: index ${index} is beyond last index ${this.lastIndex()}`);
    this.snap = { metadata: { index, term: this.term(index), confState: cloneConfState(confState) }, data };
    return this.snap;
  }

  /** Drops entries up to and including `index`; the term of `index` stays as the new dummy. */
  compact(index: LogIndex): void {
    const offset = this.dummy().index;
    if (index <= offset) return;
    assert(index <= this.lastIndex(), `compact: index ${index} is beyond last index ${this.lastIndex()}`);
    const i = index - offset;
    const dummy = this.ents[i]!;
    const rest = this.ents.slice(i + 1);
    rest.unshift({ term: dummy.term, index: dummy.index, type: EntryType.Normal, data: emptyData });
    this.ents = rest;
  }

  private dummy(): Entry {
    return this.ents[0]!;
  }
}
