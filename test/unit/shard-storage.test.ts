/** ShardStorage: a shard's snapshot is built from the applied state when Raft asks for one. */
import { describe, expect, it } from "vitest";
import { EntryType, type ConfState, type Entry } from "../../src/raft/index.js";
import { BUILT_SNAPSHOT_TTL_MS, ShardStorage } from "../../src/server/shard-storage.js";
import { monotonicMs } from "../../src/util/clock.js";

const conf = (voters: number[]): ConfState => ({ voters, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false });
const entries = (from: number, to: number, term: number): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ index: from + i, term, type: EntryType.Normal, data: new Uint8Array(0) }));

function storageWithLog(): { storage: ShardStorage; state: { applied: number; conf: ConfState; builds: number } } {
  const storage = new ShardStorage();
  storage.append([...entries(1, 10, 1), ...entries(11, 30, 2)]);
  const state = { applied: 25, conf: conf([1, 2, 3]), builds: 0 };
  storage.appliedState = () => ({
    index: state.applied,
    confState: state.conf,
    data: () => {
      state.builds++;
      return Uint8Array.of(state.applied, state.builds);
    },
  });
  return { storage, state };
}

describe("ShardStorage", () => {
  it("stores metadata only at compaction and builds a snapshot at the applied index, with its term and configuration, when asked", () => {
    const { storage, state } = storageWithLog();
    storage.createSnapshot(20, conf([1, 2, 3]), new Uint8Array(0));
    storage.compact(15);
    expect(state.builds).toBe(0);
    const built = storage.snapshot();
    expect(built.metadata).toEqual({ index: 25, term: 2, confState: conf([1, 2, 3]) });
    expect(Array.from(built.data)).toEqual([25, 1]);
    // The configuration is copied: a later change of the replica's does not alter a sent snapshot.
    state.conf.voters.push(4);
    expect(built.metadata.confState.voters).toEqual([1, 2, 3]);
  });

  it("hands the same build to several followers while it covers the compaction point, and rebuilds once it does not", () => {
    const { storage, state } = storageWithLog();
    const first = storage.snapshot();
    state.applied = 28;
    expect(storage.snapshot()).toBe(first);
    expect(state.builds).toBe(1);
    // The log is compacted past the built snapshot: a follower given it could not continue by log.
    storage.createSnapshot(28, state.conf, new Uint8Array(0));
    storage.compact(27);
    const second = storage.snapshot();
    expect(second.metadata.index).toBe(28);
    expect(state.builds).toBe(2);
  });

  it("forgets a build after its time and when a snapshot is installed, so its memory is given back", () => {
    const { storage, state } = storageWithLog();
    storage.snapshot();
    storage.expireBuilt(monotonicMs());
    storage.snapshot();
    expect(state.builds).toBe(1);
    storage.expireBuilt(monotonicMs() + BUILT_SNAPSHOT_TTL_MS);
    storage.snapshot();
    expect(state.builds).toBe(2);
    // Installing a snapshot replaces the state the build was made from.
    storage.applySnapshot({ metadata: { index: 29, term: 2, confState: conf([1, 2, 3]) }, data: Uint8Array.of(7, 7) });
    state.applied = 29;
    expect(storage.snapshot().metadata.index).toBe(29);
    expect(state.builds).toBe(3);
  });

  it("without an applied state (before the replica exists) it is the stored snapshot", () => {
    const storage = new ShardStorage();
    storage.append(entries(1, 5, 1));
    const stored = storage.createSnapshot(3, conf([1]), Uint8Array.of(9));
    expect(storage.snapshot()).toBe(stored);
  });

  it("keeps only the metadata of a snapshot it installs (the state goes to the shard's records)", () => {
    const storage = new ShardStorage();
    storage.applySnapshot({ metadata: { index: 40, term: 3, confState: conf([1, 2]) }, data: new Uint8Array(1000) });
    expect(storage.snapshot()).toEqual({ metadata: { index: 40, term: 3, confState: conf([1, 2]) }, data: new Uint8Array(0) });
  });

  it("refuses to build below the stored snapshot (the applied state would be older than what was compacted)", () => {
    const { storage, state } = storageWithLog();
    storage.createSnapshot(26, state.conf, new Uint8Array(0));
    expect(() => storage.snapshot()).toThrow(/below the stored snapshot/);
  });
});
