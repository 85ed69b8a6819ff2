/**
 * One node's simulated disk. The node writes each Ready to its MemoryStorage at once (the page
 * cache: Raft may read it back immediately) and, separately, to this durable image when the
 * seeded fsync completes. A crash throws the MemoryStorage away and restarts from the durable
 * image, so everything written but not yet synced is lost, exactly as after a power cut.
 *
 * The durable image is plain data (hard state, snapshot, entries after the snapshot), kept apart
 * from MemoryStorage on purpose: the simulator should not trust the code it is testing to model
 * its own durability.
 */
import { assert } from "../../src/util/assert.js";
import { MemoryStorage } from "../../src/raft/memory-storage.js";
import { type Entry, emptyHardState, type HardState, type LogIndex, type Snapshot } from "../../src/raft/types.js";

export class SimDisk {
  private hardState: HardState = emptyHardState();
  private snapshot: Snapshot | undefined;
  /** Index just before entries[0]: the last compacted (or snapshot-installed) index. */
  private offset: LogIndex = 0;
  /** Invariant: contiguous; entries[i].index === offset + 1 + i; offset <= snapshotIndex() <= lastIndex(). */
  private entries: Entry[] = [];

  /** Copies what RawNode.bootstrap wrote to a fresh storage (the initial members' first "disk"). */
  static fromStorage(storage: MemoryStorage): SimDisk {
    const disk = new SimDisk();
    const snapshot = storage.snapshot();
    if (snapshot.metadata.index > 0) disk.snapshot = snapshot;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    disk.offset = first - 1;
    if (last >= first) disk.entries = storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER);
    disk.hardState = { ...storage.initialState().hardState };
    return disk;
  }

  snapshotIndex(): LogIndex {
    return this.snapshot?.metadata.index ?? 0;
  }

  lastIndex(): LogIndex {
    return this.offset + this.entries.length;
  }

  durableHardState(): HardState {
    return { ...this.hardState };
  }

  /** An fsync completed: one Ready's snapshot, entries and hard state are now durable (one batch). */
  persist(snapshot: Snapshot | undefined, entries: Entry[], hardState: HardState | undefined): void {
    if (snapshot !== undefined) {
      assert(snapshot.metadata.index > this.snapshotIndex(), "disk: snapshot must move forward");
      this.snapshot = snapshot;
      this.offset = snapshot.metadata.index;
      this.entries = [];
    }
    if (entries.length > 0) {
      const first = entries[0]!.index;
      assert(first <= this.lastIndex() + 1, `disk: gap appending ${first} after ${this.lastIndex()}`);
      // Entries at or below the compaction point are committed and folded into the snapshot.
      const skip = Math.max(0, this.offset + 1 - first);
      if (skip < entries.length) {
        this.entries.length = entries[skip]!.index - this.offset - 1;
        for (let i = skip; i < entries.length; i++) this.entries.push(entries[i]!);
      }
    }
    if (hardState !== undefined) this.hardState = { ...hardState };
    this.checkInvariants();
  }

  /** The application took a snapshot and compacted its log up to compactIndex (written and synced at once). */
  snapshotAndCompact(snapshot: Snapshot, compactIndex: LogIndex): void {
    assert(snapshot.metadata.index > this.snapshotIndex(), "disk: snapshot must move forward");
    assert(snapshot.metadata.index <= this.lastIndex(), "disk: snapshot beyond the durable log");
    assert(compactIndex <= snapshot.metadata.index, "disk: cannot compact past the snapshot");
    this.snapshot = snapshot;
    if (compactIndex > this.offset) {
      this.entries = this.entries.slice(compactIndex - this.offset);
      this.offset = compactIndex;
    }
    this.checkInvariants();
  }

  /** A new MemoryStorage holding exactly the durable image (restart after a crash). */
  load(): MemoryStorage {
    const storage = new MemoryStorage();
    if (this.snapshot !== undefined) storage.applySnapshot(this.snapshot);
    // MemoryStorage skips entries at or below the snapshot: a restart keeps no log before it.
    if (this.entries.length > 0) storage.append(this.entries);
    storage.setHardState(this.hardState);
    if (this.snapshot !== undefined) storage.setConfState(this.snapshot.metadata.confState);
    return storage;
  }

  /** The snapshot a restart restores the state machine from. */
  durableSnapshot(): Snapshot | undefined {
    return this.snapshot;
  }

  private checkInvariants(): void {
    assert(this.offset <= this.snapshotIndex() || this.snapshot === undefined, "disk: compacted past the snapshot");
    assert(this.snapshotIndex() <= this.lastIndex(), "disk: snapshot beyond the log");
    assert(this.hardState.commit <= this.lastIndex(), `disk: commit ${this.hardState.commit} beyond last index ${this.lastIndex()}`);
  }
}
