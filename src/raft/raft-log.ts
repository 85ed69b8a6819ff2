/**
 * The node's view of the log (etcd's raftLog): stable entries in LogStorage, followed by the
 * unstable tail the caller has not yet persisted, plus the commit and applied indexes.
 *
 * Invariant: firstIndex() - 1 <= applied <= committed <= lastIndex().
 */
import { assert } from "../util/assert.js";
import { CompactedError, type Entry, EntryType, type LogIndex, type LogStorage, type Snapshot, type Term } from "./types.js";
import { Unstable } from "./unstable.js";
import { entryBytes } from "./util.js";

export class RaftLog {
  readonly unstable: Unstable;
  committed: LogIndex;
  applied: LogIndex;
  /** Bytes of the entries returned by the last slice() call (so callers count bytes once). */
  lastSliceBytes = 0;

  constructor(readonly storage: LogStorage) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    assert(first >= 1 && last >= first - 1, `raft log: storage reports first ${first}, last ${last}`);
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): LogIndex {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): LogIndex {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /**
   * Term of the entry at index, or -1 when it is compacted or beyond the last index. Never throws
   * on the normal paths: bounds are checked before storage is asked.
   */
  term(index: LogIndex): Term {
    const t = this.unstable.maybeTerm(index);
    if (t >= 0) return t;
    if (index < this.firstIndex() - 1 || index > this.lastIndex()) return -1;
    try {
      return this.storage.term(index);
    } catch (err) {
      if (err instanceof CompactedError) return -1;
      throw err;
    }
  }

  lastTerm(): Term {
    const t = this.term(this.lastIndex());
    assert(t >= 0, "raft log: last term unavailable");
    return t;
  }

  matchTerm(index: LogIndex, term: Term): boolean {
    return this.term(index) === term;
  }

  /** Raft paper 5.4.1: a candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: LogIndex, term: Term): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Index of the first entry in ents that conflicts with (or is missing from) the log, or 0 when
   * every entry is already present.
   */
  findConflict(ents: Entry[]): LogIndex {
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i]!;
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast backtracking (etcd findConflictByTerm; thesis 5.3's optimization): the largest index <=
   * `index` whose term is <= `term`, with that term. Every entry above it has a term > `term`, so
   * none of them can match a log whose entry at `index` has term `term`. Returns [index, 0] when
   * the term is unknown there (compacted), which makes the caller fall back to one step.
   */
  findConflictByTerm(index: LogIndex, term: Term): [LogIndex, Term] {
    for (; index > 0; index--) {
      const ours = this.term(index);
      if (ours < 0) return [index, 0];
      if (ours <= term) return [index, ours];
    }
    return [0, 0];
  }

  /**
   * AppendEntries receiver (Raft paper Figure 2, rules 2-5). Returns the index of the last new
   * entry, or -1 when the consistency check fails.
   */
  maybeAppend(index: LogIndex, logTerm: Term, committed: LogIndex, ents: Entry[]): LogIndex {
    if (!this.matchTerm(index, logTerm)) return -1;
    const lastNew = index + ents.length;
    const conflict = this.findConflict(ents);
    if (conflict !== 0) {
      assert(conflict > this.committed, `raft log: entry ${conflict} conflicts with committed ${this.committed}`);
      const from = conflict - (index + 1);
      this.append(from === 0 ? ents : ents.slice(from));
    }
    // Rule 5: commit no further than what this message proved we share with the leader.
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: Entry[]): LogIndex {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    assert(after >= this.committed, `raft log: append after ${after} would overwrite committed ${this.committed}`);
    assert(after <= this.lastIndex(), `raft log: append after ${after} leaves a gap (last ${this.lastIndex()})`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * Entries in [lo, hi), at most maxBytes (but at least one when lo < hi). Throws CompactedError
   * when lo is compacted. Sets lastSliceBytes.
   */
  slice(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    assert(lo <= hi, `raft log: bad slice [${lo}, ${hi})`);
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(`raft log: index ${lo} is compacted (first is ${first})`);
    assert(hi <= this.lastIndex() + 1, `raft log: slice hi ${hi} beyond last ${this.lastIndex()}`);
    this.lastSliceBytes = 0;
    if (lo === hi) return [];
    const uOffset = this.unstable.offset;
    let out: Entry[];
    let bytes = 0;
    if (lo < uOffset) {
      out = this.storage.entries(lo, Math.min(hi, uOffset), maxBytes);
      for (let i = 0; i < out.length; i++) bytes += entryBytes(out[i]!);
      // Storage stopped early for the size limit: do not add unstable entries after a gap.
      if (out.length < Math.min(hi, uOffset) - lo || hi <= uOffset) {
        this.lastSliceBytes = bytes;
        return out;
      }
    } else {
      out = [];
    }
    const uLo = Math.max(lo, uOffset);
    for (let i = uLo; i < hi; i++) {
      const e = this.unstable.entryAt(i);
      const b = entryBytes(e);
      if (out.length > 0 && bytes + b > maxBytes) break;
      bytes += b;
      out.push(e);
    }
    this.lastSliceBytes = bytes;
    return out;
  }

  commitTo(index: LogIndex): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `raft log: commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  appliedTo(index: LogIndex): void {
    if (index === 0) return;
    assert(index <= this.committed && index >= this.applied, `raft log: applied ${index} outside [${this.applied}, ${this.committed}]`);
    this.applied = index;
  }

  hasNextCommittedEntries(): boolean {
    if (this.unstable.snapshot !== undefined) return false;
    return this.committed > Math.max(this.applied, this.firstIndex() - 1);
  }

  /** Committed entries not yet applied, at most maxBytes (at least one). None while a snapshot is pending. */
  nextCommittedEntries(maxBytes: number): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    const lo = Math.max(this.applied + 1, this.firstIndex());
    return this.slice(lo, this.committed + 1, maxBytes);
  }

  /** True when an unapplied committed entry is a ConfChange (a node must not campaign then: etcd hup). */
  hasUnappliedConfChanges(): boolean {
    let lo = Math.max(this.applied + 1, this.firstIndex());
    const hi = this.committed + 1;
    while (lo < hi) {
      const page = this.slice(lo, hi, 1 << 20);
      for (let i = 0; i < page.length; i++) if (page[i]!.type === EntryType.ConfChange) return true;
      lo += page.length;
    }
    return false;
  }

  /** A snapshot from the leader replaces the log (Raft paper 7). */
  restore(snapshot: Snapshot): void {
    assert(snapshot.metadata.index > this.committed, "raft log: restoring a snapshot older than the commit index");
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }

  stableTo(index: LogIndex, term: Term): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: LogIndex): void {
    this.unstable.stableSnapTo(index);
  }
}
