/** Proposal refusal: every refusal is synchronous and typed; nothing is dropped silently. */
import { describe, expect, it } from "vitest";
import { ProposalDroppedError, Role } from "../../src/raft/index.js";
import { Cluster, enc } from "./raft-harness.js";

function refusal(fn: () => void): ProposalDroppedError | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProposalDroppedError) return err;
    throw err;
  }
  return undefined;
}

describe("proposal refusal", () => {
  it("no-leader before any election, not-leader with a hint after", () => {
    const c = new Cluster([1, 2, 3]);
    expect(refusal(() => c.propose(2, "x"))?.reason).toBe("no-leader");
    c.elect(1);
    const r = refusal(() => c.propose(2, "x"));
    expect([r?.reason, r?.leaderHint]).toEqual(["not-leader", 1]);
    expect(r?.message).toMatch(/leader 1/);
  });

  it("queue-full beyond maxUncommittedEntriesBytes, and accepts again once entries commit", () => {
    const c = new Cluster([1, 2, 3], { maxUncommittedEntriesBytes: 1000 });
    c.elect(1);
    c.isolate(1); // nothing commits
    const n = c.get(1).node;
    for (let i = 0; i < 10; i++) n.propose(new Uint8Array(100)); // exactly 1000 bytes
    const r = refusal(() => n.propose(new Uint8Array(1)));
    expect([r?.reason, r?.leaderHint]).toEqual(["queue-full", 1]);
    // Empty proposals carry no payload and are not counted (like the leader's no-op).
    expect(refusal(() => n.propose(new Uint8Array(0)))).toBeUndefined();
    c.heal();
    c.stabilize();
    expect(refusal(() => n.propose(new Uint8Array(100)))).toBeUndefined();
  });

  it("admits one oversized entry when nothing is outstanding", () => {
    const c = new Cluster([1, 2, 3], { maxUncommittedEntriesBytes: 1000 });
    c.elect(1);
    expect(refusal(() => c.get(1).node.propose(new Uint8Array(5000)))).toBeUndefined();
    expect(refusal(() => c.get(1).node.propose(new Uint8Array(1)))?.reason).toBe("queue-full");
  });

  it("a candidate refuses with no-leader", () => {
    const c = new Cluster([1, 2, 3]);
    c.filter = () => false;
    c.get(1).node.campaign();
    expect(c.get(1).node.status().role).toBe(Role.Candidate);
    expect(refusal(() => c.propose(1, "x"))?.reason).toBe("no-leader");
  });

  it("accepted proposals are committed exactly once, in order", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const accepted: string[] = [];
    for (let i = 0; i < 50; i++) {
      if (refusal(() => c.get(1).node.propose(enc(`p${i}`))) === undefined) accepted.push(`p${i}`);
      if (i % 7 === 0) c.stabilize();
    }
    c.stabilize();
    expect(c.get(3).appliedData()).toEqual(accepted);
  });
});

describe("holding apply (RawNode.holdApply)", () => {
  it("a held follower appends and acknowledges but applies nothing; released, it applies all in order", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.stabilize();
    c.get(3).node.holdApply = true;
    for (let i = 0; i < 5; i++) c.propose(1, `p${i}`);
    c.stabilize();
    // The held replica still counted toward the commit: the leader applied all five.
    expect(c.get(1).appliedData()).toEqual(["p0", "p1", "p2", "p3", "p4"]);
    expect(c.get(3).appliedData()).toEqual([]);
    c.get(3).node.holdApply = false;
    expect(c.get(3).node.hasReady()).toBe(true);
    c.stabilize();
    expect(c.get(3).appliedData()).toEqual(["p0", "p1", "p2", "p3", "p4"]);
  });
});
