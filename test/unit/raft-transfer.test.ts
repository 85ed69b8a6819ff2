/** Leadership transfer (thesis 3.10). */
import { describe, expect, it } from "vitest";
import { MessageType, ProposalDroppedError, Role } from "../../src/raft/index.js";
import { newMessage } from "../../src/raft/util.js";
import { Cluster, enc } from "./raft-harness.js";

function dropReason(fn: () => void): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProposalDroppedError) return err.reason;
    throw err;
  }
  return undefined;
}

describe("leadership transfer (thesis 3.10)", () => {
  it("hands leadership to an up-to-date voter with TimeoutNow, skipping PreVote", () => {
    const c = new Cluster([1, 2, 3], { preVote: true, checkQuorum: true, leaseDriftTicks: 2 });
    c.elect(1);
    c.tickAll(2);
    const term = c.get(1).node.status().term;
    c.sent = [];
    c.get(1).node.transferLeader(2);
    c.stabilize();
    expect(c.sentOfType(MessageType.TimeoutNow).map((m) => [m.from, m.to])).toEqual([[1, 2]]);
    expect(c.sentOfType(MessageType.PreVote)).toHaveLength(0);
    expect(c.leader()).toBe(2);
    expect(c.get(2).node.status().term).toBe(term + 1);
    // Node 3 heard from leader 1 just now, yet granted: the transfer vote bypasses the restriction.
    expect(c.get(3).node.status().leader).toBe(2);
    expect(c.get(1).node.status().role).toBe(Role.Follower);
  });

  it("catches a lagging transferee up first", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    for (let i = 0; i < 5; i++) c.propose(1, `x${i}`);
    c.stabilize();
    c.get(1).node.transferLeader(3);
    c.stabilize();
    expect(c.sentOfType(MessageType.TimeoutNow)).toHaveLength(0);
    c.heal();
    c.tickAll(3);
    expect(c.sentOfType(MessageType.TimeoutNow)).toHaveLength(1);
    expect(c.leader()).toBe(3);
    expect(c.get(3).appliedData()).toEqual(["x0", "x1", "x2", "x3", "x4"]);
  });

  it("refuses proposals while transferring and resumes after the transfer times out", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    c.propose(1, "lag");
    c.stabilize();
    c.get(1).node.transferLeader(3);
    expect(dropReason(() => c.propose(1, "during"))).toBe("transferring");
    expect(dropReason(() => c.get(1).node.proposeConfChange({ transition: 0, changes: [{ type: 1, nodeId: 9 }] }))).toBe("transferring");
    for (let i = 0; i < 10; i++) {
      c.tick(1);
      c.stabilize();
    }
    expect(c.get(1).node.status().leadTransferee).toBe(0);
    expect(c.leader()).toBe(1);
    expect(dropReason(() => c.propose(1, "after"))).toBeUndefined();
  });

  it("ignores a transfer to a learner, a non-member or itself", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.add(4);
    c.proposeConfChange(1, { transition: 0, changes: [{ type: 1, nodeId: 4 }] });
    c.stabilize();
    for (const target of [4, 9, 1]) {
      c.get(1).node.transferLeader(target);
      expect(c.get(1).node.status().leadTransferee).toBe(0);
    }
    c.stabilize();
    expect(c.sentOfType(MessageType.TimeoutNow)).toHaveLength(0);
  });

  it("a follower forwards the request to the leader in its own name, the transferee in index", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.get(3).node.transferLeader(2);
    c.stabilize();
    expect(c.sentOfType(MessageType.TransferLeader).map((m) => [m.from, m.to, m.index])).toEqual([[3, 1, 2]]);
    expect(c.leader()).toBe(2);
    // A follower asking for leadership itself.
    c.sent = [];
    c.get(3).node.transferLeader(3);
    c.stabilize();
    expect(c.sentOfType(MessageType.TransferLeader).map((m) => [m.from, m.to, m.index])).toEqual([[3, 2, 3]]);
    expect(c.leader()).toBe(3);
  });

  it("a follower drops a transfer request another node sent it", () => {
    // Only a node's own requests are forwarded: relayed, this one would leave 1 with from = 3.
    // (The term rules already stop a lagging node's TransferLeader; the rule covers it anyway.)
    const c = new Cluster([1, 2, 3]);
    c.elect(2);
    const term = c.get(1).node.status().term;
    c.sent = [];
    const request = newMessage(MessageType.TransferLeader, 1, 3, term);
    request.index = 3;
    c.get(1).node.step(request);
    c.stabilize();
    expect(c.sentOfType(MessageType.TransferLeader)).toHaveLength(0);
    expect(c.sentOfType(MessageType.TimeoutNow)).toHaveLength(0);
    expect(c.leader()).toBe(2);
  });

  it("a newer transfer replaces one in progress", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    c.propose(1, "lag");
    c.stabilize();
    c.get(1).node.transferLeader(3);
    expect(c.get(1).node.status().leadTransferee).toBe(3);
    c.get(1).node.transferLeader(2);
    c.stabilize();
    expect(c.leader()).toBe(2);
  });

  it("proposals on a follower name the leader", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    let err: unknown;
    try {
      c.get(2).node.propose(enc("x"));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProposalDroppedError);
    expect((err as ProposalDroppedError).reason).toBe("not-leader");
    expect((err as ProposalDroppedError).leaderHint).toBe(1);
  });
});
