/** ReadIndex (thesis 6.4). */
import { describe, expect, it } from "vitest";
import { MAX_PENDING_READS, MemoryStorage, MessageType, ProposalDroppedError, RawNode, Role } from "../../src/raft/index.js";
import { Cluster, enc, makeConfig } from "./raft-harness.js";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("ReadIndex (thesis 6.4)", () => {
  it("releases a read at the commit index once a quorum acks a heartbeat round", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, "a");
    c.stabilize();
    const commit = c.get(1).node.status().commit;
    c.filter = () => false; // no acks yet
    c.get(1).node.readIndex(enc("r1"));
    c.process(1);
    expect(c.get(1).readStates).toHaveLength(0);
    const hbs = c.queue.filter((m) => m.type === MessageType.Heartbeat);
    expect(hbs.map((m) => m.to).sort()).toEqual([2, 3]);
    c.queue = [];
    // One ack (plus the leader itself) is a quorum of three.
    c.filter = (m) => m.from === 2 || m.to === 2;
    c.get(1).node.readIndex(enc("r2"));
    c.stabilize();
    expect(c.get(1).readStates.map((r) => [r.index, text(r.context)])).toEqual([
      [commit, "r1"],
      [commit, "r2"],
    ]);
  });

  it("batches reads that arrive together behind one heartbeat round", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.sent = [];
    for (let i = 0; i < 5; i++) c.get(1).node.readIndex(enc(`r${i}`));
    c.stabilize();
    expect(c.sentOfType(MessageType.Heartbeat)).toHaveLength(2); // one round to two followers
    expect(c.get(1).readStates.map((r) => text(r.context))).toEqual(["r0", "r1", "r2", "r3", "r4"]);
  });

  it("a new leader defers reads until an entry of its term is committed", () => {
    const c = new Cluster([1, 2, 3]);
    c.filter = (m) => m.type !== MessageType.App;
    c.elect(1);
    expect(c.get(1).node.status().role).toBe(Role.Leader);
    c.sent = [];
    c.get(1).node.readIndex(enc("early"));
    c.stabilize();
    expect(c.get(1).readStates).toHaveLength(0);
    expect(c.sentOfType(MessageType.Heartbeat)).toHaveLength(0); // not even a round yet
    c.filter = () => true;
    c.tick(1);
    c.stabilize();
    const rs = c.get(1).readStates;
    expect(rs.map((r) => text(r.context))).toEqual(["early"]);
    // The read index is at least the no-op of this term, not the stale pre-election commit.
    expect(rs[0]!.index).toBe(c.get(1).node.status().commit);
    expect(rs[0]!.index).toBeGreaterThan(1);
  });

  it("a follower forwards the request and gets the leader's read index", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, "a");
    c.stabilize();
    c.get(3).node.readIndex(enc("from-3"));
    c.stabilize();
    expect(c.sentOfType(MessageType.ReadIndex).map((m) => [m.from, m.to])).toEqual([[3, 1]]);
    expect(c.get(3).readStates.map((r) => [r.index, text(r.context)])).toEqual([[c.get(1).node.status().commit, "from-3"]]);
    expect(c.get(1).readStates).toHaveLength(0);
  });

  it("a follower drops a read another node sent it instead of relaying it in that node's name", () => {
    // 3 has not heard of 2's election and still takes 1 for its leader; 1 follows 2. Relayed
    // unchanged, 3's request left 1 with from = 3, and PeerTransport.send stopped node 1.
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.cutLink(2, 3);
    c.elect(2);
    expect(c.get(1).node.status().leader).toBe(2);
    expect(c.get(3).node.status().leader).toBe(1);
    c.sent = [];
    c.get(3).node.readIndex(enc("stale"));
    c.stabilize();
    expect(c.sentOfType(MessageType.ReadIndex).map((m) => [m.from, m.to])).toEqual([[3, 1]]);
    expect(c.sentOfType(MessageType.ReadIndexResp)).toHaveLength(0);
    expect([1, 2, 3].map((id) => c.get(id).readStates.length)).toEqual([0, 0, 0]);
    // Once 3 hears of leader 2, its read goes there and the answer comes back to 3.
    c.heal();
    c.tickAll(1);
    expect(c.get(3).node.status().leader).toBe(2);
    c.sent = [];
    c.get(3).node.readIndex(enc("fresh"));
    c.stabilize();
    expect(c.sentOfType(MessageType.ReadIndex).map((m) => [m.from, m.to])).toEqual([[3, 2]]);
    expect(c.sentOfType(MessageType.ReadIndexResp).map((m) => [m.from, m.to])).toEqual([[2, 3]]);
    expect(c.get(3).readStates.map((r) => [r.index, text(r.context)])).toEqual([[c.get(2).node.status().commit, "fresh"]]);
  });

  it("a single voter answers immediately", () => {
    const storage = new MemoryStorage();
    RawNode.bootstrap(storage, [1]);
    const node = new RawNode(makeConfig(1, storage, 1));
    node.campaign();
    const rd = node.ready();
    storage.append(rd.entries);
    node.advance();
    node.readIndex(enc("solo"));
    const rd2 = node.ready();
    expect(rd2.readStates.map((r) => [r.index, text(r.context)])).toEqual([[2, "solo"]]);
    expect(rd2.messages).toHaveLength(0);
    node.advance();
  });

  it("is refused without a known leader", () => {
    const c = new Cluster([1, 2, 3]);
    expect(() => c.get(1).node.readIndex(enc("x"))).toThrow(ProposalDroppedError);
    try {
      c.get(1).node.readIndex(enc("x"));
    } catch (err) {
      expect((err as ProposalDroppedError).reason).toBe("no-leader");
    }
  });

  it("an isolated leader never confirms a read", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(1);
    c.get(1).node.readIndex(enc("stale?"));
    for (let i = 0; i < 30; i++) {
      c.tick(1);
      c.stabilize();
    }
    expect(c.get(1).readStates).toHaveLength(0);
  });

  it("bounds the queue of pending reads", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(1);
    for (let i = 0; i < MAX_PENDING_READS; i++) c.get(1).node.readIndex(enc(`${i}`));
    let err: unknown;
    try {
      c.get(1).node.readIndex(enc("one too many"));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProposalDroppedError);
    expect((err as ProposalDroppedError).reason).toBe("queue-full");
  });

  it("drops pending reads when leadership is lost (callers time them out)", () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: true });
    c.elect(1);
    c.isolate(1);
    c.get(1).node.readIndex(enc("lost"));
    for (let i = 0; i < 25; i++) c.tick(1);
    c.stabilize();
    expect(c.get(1).node.status().role).toBe(Role.Follower);
    c.heal();
    c.tickAll(30);
    expect(c.get(1).readStates).toHaveLength(0);
  });
});
