import { describe, expect, it } from "vitest";
import { type Entry, EntryType, MemoryStorage, MessageType, ProgressState, RawNode, Role } from "../../src/raft/index.js";
import { Cluster, TestNode, enc } from "./raft-harness.js";

/** Bootstrapped storage followed by entries of the given terms at indexes 2, 3, ... */
function storageWithLog(voters: number[], terms: number[], tag: string): MemoryStorage {
  const s = new MemoryStorage();
  RawNode.bootstrap(s, voters);
  const ents: Entry[] = terms.map((term, i) => ({ term, index: i + 2, type: EntryType.Normal, data: enc(`${tag}${i + 2}`) }));
  s.append(ents);
  s.setHardState({ term: Math.max(1, ...terms), vote: 0, commit: 1 });
  return s;
}

function clusterWithLogs(logs: Record<number, number[]>, options = {}): Cluster {
  const c = new Cluster([], options);
  const ids = Object.keys(logs).map(Number);
  for (const id of ids) {
    const storage = storageWithLog(ids, logs[id]!, `n${id}-`);
    c.nodes.set(id, new TestNode(id, storage, 1, { ...c.options }));
  }
  return c;
}

const bytes = (n: number): Uint8Array => new Uint8Array(n).fill(7);

describe("log replication (paper 5.3)", () => {
  it("replicates and commits entries on every node in order", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    for (let i = 0; i < 20; i++) c.propose(1, `e${i}`);
    c.stabilize();
    const want = Array.from({ length: 20 }, (_, i) => `e${i}`);
    for (const n of c.nodes.values()) expect(n.appliedData()).toEqual(want);
  });

  it("a follower's conflicting tail is overwritten and found with few round trips (fast backtracking)", () => {
    const leaderLog = [2, 2, 2, ...Array<number>(50).fill(5)];
    const followerLog = [2, 2, 2, ...Array<number>(60).fill(3)];
    const c = clusterWithLogs({ 1: leaderLog, 2: followerLog, 3: leaderLog });
    c.get(1).node.campaign();
    c.stabilize();
    expect(c.get(1).node.status().role).toBe(Role.Leader);
    const rejects = c.sent.filter((m) => m.type === MessageType.AppResp && m.from === 2 && m.reject);
    // One rejection suffices: the hint (index, term) lets the leader skip every term-3 and
    // term-5 entry at once (etcd findConflictByTerm). Stepping back one entry at a time would
    // take about fifty.
    expect(rejects.length).toBeLessThanOrEqual(2);
    const s2 = c.get(2).storage;
    const s1 = c.get(1).storage;
    expect(s2.lastIndex()).toBe(s1.lastIndex());
    for (let i = 2; i <= s1.lastIndex(); i++) expect(s2.term(i)).toBe(s1.term(i));
    expect(c.get(2).node.status().commit).toBe(s1.lastIndex());
  });

  it("a follower that is behind gets the missing suffix", () => {
    const c = clusterWithLogs({ 1: [2, 2, 3, 3, 3], 2: [2], 3: [2, 2, 3] });
    c.get(1).node.campaign();
    c.stabilize();
    for (const id of [2, 3]) expect(c.get(id).storage.lastIndex()).toBe(c.get(1).storage.lastIndex());
  });

  it("probes one message at a time, then pipelines up to maxInflightMessages", () => {
    const c = new Cluster([1, 2, 3], { maxSizePerMsg: 100, maxInflightMessages: 4 });
    c.elect(1);
    expect(c.get(1).node.status().progress.get(2)?.state).toBe(ProgressState.Replicate);
    c.filter = () => false; // nothing is acknowledged
    c.sent = [];
    for (let i = 0; i < 10; i++) c.get(1).node.propose(bytes(90)); // 106 bytes each: one per App
    c.process(1);
    const apps = c.sent.filter((m) => m.type === MessageType.App && m.to === 2);
    expect(apps).toHaveLength(4);
    for (const m of apps) expect(m.entries).toHaveLength(1);
    const pr = c.get(1).node.status().progress.get(2)!;
    expect(pr.inflightMessages).toBe(4);
    // Acknowledging frees the window and the rest flows.
    c.filter = () => true;
    c.stabilize();
    expect(c.get(2).storage.lastIndex()).toBe(c.get(1).storage.lastIndex());
  });

  it("bounds in-flight bytes with maxInflightBytes", () => {
    const c = new Cluster([1, 2, 3], { maxSizePerMsg: 116, maxInflightMessages: 100, maxInflightBytes: 300 });
    c.elect(1);
    c.filter = () => false;
    c.sent = [];
    for (let i = 0; i < 10; i++) c.get(1).node.propose(bytes(100)); // 116 bytes with overhead
    c.process(1);
    const apps = c.sent.filter((m) => m.type === MessageType.App && m.to === 2);
    expect(apps).toHaveLength(3); // 116, 232, 348 >= 300: full
    expect(c.get(1).node.status().progress.get(2)!.inflightBytes).toBe(348);
  });

  it("keeps each App within maxSizePerMsg (but always sends at least one entry)", () => {
    const c = new Cluster([1, 2, 3], { maxSizePerMsg: 500 });
    c.elect(1);
    c.sent = [];
    for (let i = 0; i < 20; i++) c.get(1).node.propose(bytes(100));
    c.get(1).node.propose(bytes(2000));
    c.stabilize();
    const apps = c.sent.filter((m) => m.type === MessageType.App && m.entries.length > 0);
    for (const m of apps) {
      const size = m.entries.reduce((s, e) => s + e.data.length + 16, 0);
      expect(m.entries.length === 1 || size <= 500).toBe(true);
    }
    expect(apps.some((m) => m.entries.length === 1 && m.entries[0]!.data.length === 2000)).toBe(true);
    expect(c.get(3).storage.lastIndex()).toBe(c.get(1).storage.lastIndex());
  });

  it("recovers a pipeline whose every in-flight App was lost (heartbeat nudge)", () => {
    const c = new Cluster([1, 2, 3], { maxSizePerMsg: 100, maxInflightMessages: 2 });
    c.elect(1);
    c.filter = (m) => !(m.type === MessageType.App && m.to === 2);
    for (let i = 0; i < 6; i++) c.get(1).node.propose(bytes(90));
    c.stabilize();
    expect(c.get(1).node.status().progress.get(2)!.inflightMessages).toBe(2);
    c.filter = () => true;
    for (let i = 0; i < 10; i++) c.tickAll(1);
    expect(c.get(2).storage.lastIndex()).toBe(c.get(1).storage.lastIndex());
  });

  it("a leader heartbeats on the node's shared rounds as well as its own interval, then on the rounds only", () => {
    const c = new Cluster([1, 2, 3], { heartbeatTicks: 5, electionTicks: 20 });
    c.elect(1);
    const leader = c.get(1).node;
    const heartbeatsAt: number[] = [];
    const step = (tick: number, due: boolean) => {
      c.sent = [];
      leader.tick(due);
      c.stabilize();
      if (c.sent.some((m) => m.type === MessageType.Heartbeat && m.from === 1)) heartbeatsAt.push(tick);
    };
    // Its own interval alone: every 5th tick from the election.
    for (let t = 1; t <= 10; t++) step(t, false);
    expect(heartbeatsAt).toEqual([5, 10]);
    heartbeatsAt.length = 0;
    // The node's rounds fall on ticks 13, 18, 23, ... (another phase): one at once, then only those.
    for (let t = 11; t <= 30; t++) step(t, (t - 13) % 5 === 0);
    expect(heartbeatsAt).toEqual([13, 18, 23, 28]);
    // Rounds stop (a stalled driver): its own interval takes over, never later than 5 ticks.
    heartbeatsAt.length = 0;
    for (let t = 31; t <= 40; t++) step(t, false);
    expect(heartbeatsAt).toEqual([33, 38]);
  });

  it("commitUpdatesOnTick: followers learn a commit on the leader's next tick, or with its next entries", () => {
    const commitOf = (c: Cluster, id: number) => c.get(id).node.status().commit;
    const commitOnlyApps = (c: Cluster) => c.sent.filter((m) => m.type === MessageType.App && m.entries.length === 0).length;
    // Without the option: a commit-only App follows every commit at once.
    const eager = new Cluster([1, 2, 3], { heartbeatTicks: 5, electionTicks: 20 });
    eager.elect(1);
    eager.sent = [];
    eager.propose(1, "a");
    eager.stabilize();
    expect(commitOnlyApps(eager)).toBe(2);
    expect(commitOf(eager, 2)).toBe(commitOf(eager, 1));

    const c = new Cluster([1, 2, 3], { heartbeatTicks: 5, electionTicks: 20, commitUpdatesOnTick: true });
    c.elect(1);
    c.tick(1);
    c.stabilize();
    c.sent = [];
    c.propose(1, "a");
    c.stabilize();
    const leaderCommit = commitOf(c, 1);
    expect(c.get(1).appliedData()).toEqual(["a"]);
    expect(commitOnlyApps(c)).toBe(0);
    expect(commitOf(c, 2)).toBeLessThan(leaderCommit);
    // The next entries carry it.
    c.propose(1, "b");
    c.stabilize();
    expect(commitOf(c, 2)).toBe(leaderCommit);
    expect(c.get(2).appliedData()).toEqual(["a"]);
    // The next tick tells the last one, in one commit-only App per follower.
    c.sent = [];
    c.tick(1);
    c.stabilize();
    expect(commitOnlyApps(c)).toBe(2);
    for (const id of [2, 3]) {
      expect(commitOf(c, id)).toBe(commitOf(c, 1));
      expect(c.get(id).appliedData()).toEqual(["a", "b"]);
    }
    // Nothing new to tell: a tick sends no App.
    c.sent = [];
    c.tick(1);
    c.stabilize();
    expect(commitOnlyApps(c)).toBe(0);
  });

  it("heartbeats carry min(match, commit), so a lagging follower never commits what it lacks", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.filter = (m) => !(m.type === MessageType.App && m.to === 3);
    for (let i = 0; i < 5; i++) c.propose(1, `x${i}`);
    c.stabilize();
    c.sent = [];
    c.tick(1);
    c.stabilize();
    const hb3 = c.sent.find((m) => m.type === MessageType.Heartbeat && m.to === 3)!;
    const hb2 = c.sent.find((m) => m.type === MessageType.Heartbeat && m.to === 2)!;
    const commit = c.get(1).node.status().commit;
    expect(hb2.commit).toBe(commit);
    expect(hb3.commit).toBe(c.get(1).node.status().progress.get(3)!.match);
    expect(hb3.commit).toBeLessThan(commit);
  });

  it("hands out at most maxCommittedSizePerReady bytes of committed entries per Ready", () => {
    const c = new Cluster([1, 2, 3], { maxCommittedSizePerReady: 300 });
    c.elect(1);
    c.filter = (m) => m.to !== 3;
    for (let i = 0; i < 10; i++) c.get(1).node.propose(bytes(100));
    c.stabilize();
    c.filter = () => true;
    const sizes: number[] = [];
    c.onReady = (id, rd) => {
      if (id === 3 && rd.committedEntries.length > 0) sizes.push(rd.committedEntries.length);
    };
    c.tickAll(3);

    expect(sizes.reduce((a, b) => a + b, 0)).toBe(10);
    expect(sizes.length).toBeGreaterThan(3);
    for (const n of sizes) expect(n).toBeLessThanOrEqual(2); // 116 bytes each, 300-byte budget
  });

  it("reportUnreachable drops a Replicate follower back to Probe", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    expect(c.get(1).node.status().progress.get(2)!.state).toBe(ProgressState.Replicate);
    c.get(1).node.reportUnreachable(2);
    expect(c.get(1).node.status().progress.get(2)!.state).toBe(ProgressState.Probe);
    c.propose(1, "after");
    c.stabilize();
    expect(c.get(2).appliedData()).toContain("after");
    expect(c.get(1).node.status().progress.get(2)!.state).toBe(ProgressState.Replicate);
  });
});

describe("Ready contract", () => {
  it("persists entries and hard state before the messages that depend on them", () => {
    const c = new Cluster([1, 2, 3]);
    const n = c.get(1).node;
    n.campaign();
    const rd = n.ready();
    expect(rd.hardState).toEqual({ term: 2, vote: 1, commit: 1 });
    expect(rd.mustSync).toBe(true);
    expect(rd.messages.map((m) => m.type)).toEqual([MessageType.Vote, MessageType.Vote]);
    expect(rd.softState).toEqual({ leader: 0, role: Role.Candidate });
    n.advance();
    expect(n.hasReady()).toBe(false);
  });

  it("does not ask for a sync when only the commit index moved", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, "a");
    // Leader persists the entry and sends it; followers ack; the leader's next Ready only commits.
    c.process(1);
    c.deliver();
    c.process(2);
    c.process(3);
    c.deliver();
    const rd = c.get(1).node.ready();
    expect(rd.entries).toHaveLength(0);
    expect(rd.hardState?.commit).toBe(3);
    expect(rd.mustSync).toBe(false);
    expect(rd.committedEntries.map((e) => new TextDecoder().decode(e.data))).toEqual(["a"]);
    c.get(1).node.advance();
  });

  it("refuses a second ready() before advance()", () => {
    const c = new Cluster([1, 2, 3]);
    const n = c.get(1).node;
    n.campaign();
    n.ready();
    expect(() => n.ready()).toThrow(/advance/);
    n.advance();
  });

  it("refuses local message types and misaddressed messages from the network", () => {
    const c = new Cluster([1, 2, 3]);
    const base = { to: 1, from: 2, term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
    expect(() => c.get(1).node.step({ ...base, type: MessageType.Hup })).toThrow(/local/);
    expect(() => c.get(1).node.step({ ...base, type: MessageType.Beat })).toThrow(/local/);
    expect(() => c.get(1).node.step({ ...base, term: 1, type: MessageType.Heartbeat, to: 2 })).toThrow(/delivered/);
    expect(() => c.get(1).node.step({ ...base, type: MessageType.Heartbeat })).toThrow(/without a term/);
  });
});
