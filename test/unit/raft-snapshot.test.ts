/** Snapshots and log compaction (paper 7), and the MemoryStorage contract. */
import { describe, expect, it } from "vitest";
import {
  CompactedError,
  type Entry,
  EntryType,
  MemoryStorage,
  MessageType,
  ProgressState,
  RawNode,
  type Snapshot,
  SnapshotTemporarilyUnavailableError,
  UnavailableIndexError,
} from "../../src/raft/index.js";
import { Cluster, enc } from "./raft-harness.js";

/** Snapshots the leader's state (the applied data so far) and compacts its log. */
function snapshotAndCompact(c: Cluster, id: number): Snapshot {
  const n = c.get(id);
  const st = n.node.status();
  const snap = n.storage.createSnapshot(st.applied, st.config, enc(JSON.stringify(n.appliedData())));
  n.storage.compact(st.applied);
  return snap;
}

describe("snapshots (paper 7)", () => {
  it("catches up a follower whose next entry was compacted away", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.get(3).up = false;
    for (let i = 0; i < 10; i++) c.propose(1, `e${i}`);
    c.stabilize();
    const snap = snapshotAndCompact(c, 1);
    c.propose(1, "after-snapshot");
    c.stabilize();
    let installed: Snapshot | undefined;
    c.onReady = (id, rd) => {
      if (id === 3 && rd.snapshot) installed = rd.snapshot;
    };
    c.get(3).up = true;
    c.tickAll(3);
    const snaps = c.sentOfType(MessageType.Snap);
    expect(snaps.map((m) => [m.to, m.snapshot?.metadata.index])).toEqual([[3, snap.metadata.index]]);
    expect(installed?.metadata.index).toBe(snap.metadata.index);
    expect(JSON.parse(new TextDecoder().decode(installed!.data))).toEqual(Array.from({ length: 10 }, (_, i) => `e${i}`));
    // After the snapshot, entries flow normally and the follower applies only what follows it.
    expect(c.get(3).appliedData()).toEqual(["after-snapshot"]);
    expect(c.get(3).storage.firstIndex()).toBe(snap.metadata.index + 1);
    expect(c.get(3).node.status().applied).toBe(c.get(1).node.status().applied);
    // The leader moves on when the transport reports success.
    c.get(1).node.reportSnapshot(3, true);
    c.tickAll(2);
    expect(c.get(1).node.status().progress.get(3)!.state).toBe(ProgressState.Replicate);
  });

  it("retries after a failed snapshot report", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.get(3).up = false;
    for (let i = 0; i < 5; i++) c.propose(1, `e${i}`);
    c.stabilize();
    snapshotAndCompact(c, 1);
    c.filter = (m) => m.type !== MessageType.Snap; // the transport loses it
    c.get(3).up = true;
    c.tickAll(2);
    expect(c.get(1).node.status().progress.get(3)!.state).toBe(ProgressState.Snapshot);
    c.get(1).node.reportSnapshot(3, false);
    expect(c.get(1).node.status().progress.get(3)!.state).toBe(ProgressState.Probe);
    c.filter = () => true;
    c.tickAll(3);
    expect(c.sentOfType(MessageType.Snap).length).toBeGreaterThanOrEqual(2);
    expect(c.get(3).node.status().commit).toBe(c.get(1).node.status().commit);
  });

  it("waits while the snapshot is temporarily unavailable", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.get(3).up = false;
    for (let i = 0; i < 5; i++) c.propose(1, `e${i}`);
    c.stabilize();
    snapshotAndCompact(c, 1);
    const storage = c.get(1).storage;
    const real = storage.snapshot.bind(storage);
    let available = false;
    storage.snapshot = () => {
      if (!available) throw new SnapshotTemporarilyUnavailableError("building");
      return real();
    };
    c.get(3).up = true;
    c.tickAll(3);
    expect(c.sentOfType(MessageType.Snap)).toHaveLength(0);
    available = true;
    c.tickAll(3);
    expect(c.sentOfType(MessageType.Snap)).toHaveLength(1);
    expect(c.get(3).node.status().commit).toBe(c.get(1).node.status().commit);
  });

  it("a new member created with empty storage starts from a snapshot", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, "x");
    c.stabilize();
    c.add(4);
    c.proposeConfChange(1, { transition: 0, changes: [{ type: 0, nodeId: 4 }] });
    c.stabilize();
    const snaps = c.sentOfType(MessageType.Snap);
    expect(snaps.map((m) => m.to)).toEqual([4]);
    expect(c.get(4).node.status().config.voters).toEqual([1, 2, 3, 4]);
    expect(c.get(4).appliedData()).toEqual(["x"]);
  });

  it("a follower ignores a snapshot it already covers, but answers", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, "x");
    c.stabilize();
    const st = c.get(2).node.status();
    const old: Snapshot = { metadata: { index: 1, term: 1, confState: st.config }, data: new Uint8Array() };
    c.get(2).node.step({
      type: MessageType.Snap,
      to: 2,
      from: 1,
      term: st.term,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      snapshot: old,
    });
    const rd = c.get(2).node.ready();
    expect(rd.snapshot).toBeUndefined();
    expect(rd.messages.map((m) => [m.type, m.index])).toEqual([[MessageType.AppResp, st.commit]]);
    c.get(2).node.advance();
  });
});

describe("MemoryStorage", () => {
  const ents = (from: number, terms: number[]): Entry[] =>
    terms.map((term, i) => ({ term, index: from + i, type: EntryType.Normal, data: enc(`${from + i}`) }));

  it("appends, truncates a conflicting tail and reports bounds", () => {
    const s = new MemoryStorage();
    s.append(ents(1, [1, 1, 2, 2]));
    expect([s.firstIndex(), s.lastIndex(), s.term(0), s.term(4)]).toEqual([1, 4, 0, 2]);
    s.append(ents(3, [3]));
    expect([s.lastIndex(), s.term(3)]).toEqual([3, 3]);
    expect(() => s.append(ents(6, [3]))).toThrow(/gap/);
    expect(() => s.term(9)).toThrow(UnavailableIndexError);
  });

  it("limits entries() by bytes but returns at least one", () => {
    const s = new MemoryStorage();
    s.append(ents(1, [1, 1, 1, 1]));
    expect(s.entries(1, 5, 0)).toHaveLength(1);
    expect(s.entries(1, 5, 2 * 17)).toHaveLength(2); // 1-byte payload + 16 overhead each
    expect(s.entries(1, 5, 1 << 20)).toHaveLength(4);
    expect(() => s.entries(1, 6, 100)).toThrow(UnavailableIndexError);
  });

  it("compacts, keeping the term of the compaction point", () => {
    const s = new MemoryStorage();
    s.append(ents(1, [1, 2, 3, 4]));
    s.compact(2);
    expect([s.firstIndex(), s.lastIndex(), s.term(2), s.term(4)]).toEqual([3, 4, 2, 4]);
    expect(() => s.term(1)).toThrow(CompactedError);
    expect(() => s.entries(2, 4, 100)).toThrow(CompactedError);
    s.append(ents(2, [2, 3, 5])); // overlaps the compacted entry: skipped there, truncates after
    expect([s.lastIndex(), s.term(4)]).toEqual([4, 5]);
  });

  it("applies a snapshot, replacing the log, and refuses to go backwards", () => {
    const s = new MemoryStorage();
    s.append(ents(1, [1, 1, 1]));
    const cs = { voters: [1, 2], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
    s.applySnapshot({ metadata: { index: 10, term: 4, confState: cs }, data: enc("state") });
    expect([s.firstIndex(), s.lastIndex(), s.term(10)]).toEqual([11, 10, 4]);
    expect(s.initialState().confState.voters).toEqual([1, 2]);
    expect(s.initialState().hardState.commit).toBe(10);
    expect(() => s.applySnapshot({ metadata: { index: 5, term: 4, confState: cs }, data: enc("") })).toThrow(/newer/);
  });

  it("bootstrap writes exactly the documented initial state", () => {
    const s = new MemoryStorage();
    RawNode.bootstrap(s, [3, 1, 2]);
    expect(s.initialState()).toEqual({
      hardState: { term: 1, vote: 0, commit: 1 },
      confState: { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    });
    expect(s.snapshot().metadata).toEqual({ index: 1, term: 1, confState: s.initialState().confState });
    expect([s.firstIndex(), s.lastIndex(), s.term(1)]).toEqual([2, 1, 1]);
    expect(() => RawNode.bootstrap(s, [1])).toThrow(/not empty/);
    expect(() => RawNode.bootstrap(new MemoryStorage(), [])).toThrow(/voter/);
    expect(() => RawNode.bootstrap(new MemoryStorage(), [1, 1])).toThrow(/duplicate/);
  });
});
