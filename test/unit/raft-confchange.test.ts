/** Membership changes: single-voter changes, joint consensus (thesis 4.3), learners. */
import { describe, expect, it } from "vitest";
import {
  type ConfChange,
  ConfChangeTransition,
  ConfChangeType,
  EntryType,
  MessageType,
  ProposalDroppedError,
  Role,
  encodeConfChange,
} from "../../src/raft/index.js";
import { InvalidArgumentError } from "../../src/util/errors.js";
import { Cluster } from "./raft-harness.js";

const add = (nodeId: number): ConfChange => ({
  transition: ConfChangeTransition.Auto,
  changes: [{ type: ConfChangeType.AddNode, nodeId }],
});
const learner = (nodeId: number): ConfChange => ({
  transition: ConfChangeTransition.Auto,
  changes: [{ type: ConfChangeType.AddLearnerNode, nodeId }],
});
const remove = (nodeId: number): ConfChange => ({
  transition: ConfChangeTransition.Auto,
  changes: [{ type: ConfChangeType.RemoveNode, nodeId }],
});

function errorOf(fn: () => void): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe("membership changes (thesis 4)", () => {
  it("adds a learner that catches up from an empty log but never votes or counts", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, "before");
    c.stabilize();
    c.add(4);
    c.proposeConfChange(1, learner(4));
    c.stabilize();
    expect(c.get(1).node.status().config.learners).toEqual([4]);
    expect(c.get(4).appliedData()).toEqual(["before"]);
    expect(c.get(4).node.status().config.learners).toEqual([4]);
    // Learners never campaign.
    c.isolate(4);
    c.tickAll(50);
    expect(c.get(4).node.status().role).toBe(Role.Follower);
    expect(c.get(4).node.status().term).toBe(c.get(1).node.status().term);
    // And never count: with 2 and 3 down, the leader cannot commit although 4 acknowledges.
    c.heal();
    c.get(2).up = false;
    c.get(3).up = false;
    const commit = c.get(1).node.status().commit;
    c.propose(1, "no quorum");
    c.stabilize();
    expect(c.get(4).storage.lastIndex()).toBe(c.get(1).storage.lastIndex());
    expect(c.get(1).node.status().commit).toBe(commit);
  });

  it("promotes a learner to voter, after which it counts toward the quorum", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.add(4);
    c.proposeConfChange(1, learner(4));
    c.stabilize();
    c.proposeConfChange(1, add(4));
    c.stabilize();
    expect(c.get(1).node.status().config.voters).toEqual([1, 2, 3, 4]);
    c.get(3).up = false;
    c.propose(1, "three of four");
    c.stabilize();
    expect(c.get(4).appliedData()).toEqual(["three of four"]);
  });

  it("removes a voter, which then never campaigns", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.proposeConfChange(1, remove(3));
    c.stabilize();
    expect(c.get(1).node.status().config.voters).toEqual([1, 2]);
    expect(c.get(3).node.status().config.voters).toEqual([1, 2]);
    c.isolate(3);
    c.tickAll(60);
    expect(c.get(3).node.status().role).toBe(Role.Follower);
    expect(c.leader()).toBe(1);
  });

  it("a removed leader steps down", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.proposeConfChange(1, remove(1));
    c.stabilize();
    expect(c.get(1).node.status().role).toBe(Role.Follower);
    expect(c.get(2).node.status().config.voters).toEqual([2, 3]);
    for (let i = 0; i < 40 && c.leader() === 0; i++) c.tickAll(1);
    expect([2, 3]).toContain(c.leader());
    expect(c.get(1).node.status().role).toBe(Role.Follower);
  });

  it("enters and automatically leaves a joint configuration for a multi-voter change", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.add(4);
    c.add(5);
    const seen: string[] = [];
    c.onReady = (id, rd) => {
      if (id !== 1) return;
      for (const e of rd.committedEntries) if (e.type === EntryType.ConfChange) seen.push(`${e.index}`);
    };
    c.proposeConfChange(1, {
      transition: ConfChangeTransition.Auto,
      changes: [
        { type: ConfChangeType.AddNode, nodeId: 4 },
        { type: ConfChangeType.AddNode, nodeId: 5 },
        { type: ConfChangeType.RemoveNode, nodeId: 2 },
        { type: ConfChangeType.RemoveNode, nodeId: 3 },
      ],
    });
    c.stabilize();
    expect(seen).toHaveLength(2); // enter joint, then the leader's automatic leave
    for (const id of [1, 4, 5]) {
      const cs = c.get(id).node.status().config;
      expect([cs.voters, cs.votersOutgoing, cs.autoLeave]).toEqual([[1, 4, 5], [], false]);
    }
    c.get(2).up = false;
    c.get(3).up = false;
    c.propose(1, "new config");
    c.stabilize();
    expect(c.get(5).appliedData()).toEqual(["new config"]);
  });

  it("in a joint configuration decisions need majorities of both halves", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.add(4);
    c.add(5);
    c.proposeConfChange(1, {
      transition: ConfChangeTransition.JointExplicit,
      changes: [
        { type: ConfChangeType.AddNode, nodeId: 4 },
        { type: ConfChangeType.AddNode, nodeId: 5 },
        { type: ConfChangeType.RemoveNode, nodeId: 2 },
        { type: ConfChangeType.RemoveNode, nodeId: 3 },
      ],
    });
    c.stabilize();
    const cs = c.get(1).node.status().config;
    expect([cs.voters, cs.votersOutgoing, cs.autoLeave]).toEqual([[1, 4, 5], [1, 2, 3], false]);
    // New majority {1,4,5} up, old majority lacking (2 and 3 down): nothing commits.
    c.get(2).up = false;
    c.get(3).up = false;
    const commit = c.get(1).node.status().commit;
    c.propose(1, "joint");
    c.stabilize();
    expect(c.get(1).node.status().commit).toBe(commit);
    // Bring 2 back: {1,2} is a majority of the old half and the entry commits.
    c.get(2).up = true;
    c.tickAll(3);
    expect(c.get(1).node.status().commit).toBeGreaterThan(commit);
    // Explicit joint configs are left by an empty change.
    c.proposeConfChange(1, { transition: ConfChangeTransition.Auto, changes: [] });
    c.stabilize();
    expect(c.get(1).node.status().config.votersOutgoing).toEqual([]);
  });

  it("demoting an outgoing voter to learner waits in learnersNext until the joint config is left", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.add(4);
    c.proposeConfChange(1, {
      transition: ConfChangeTransition.JointExplicit,
      changes: [
        { type: ConfChangeType.AddNode, nodeId: 4 },
        { type: ConfChangeType.AddLearnerNode, nodeId: 3 },
      ],
    });
    c.stabilize();
    let cs = c.get(1).node.status().config;
    expect([cs.voters, cs.votersOutgoing, cs.learners, cs.learnersNext]).toEqual([[1, 2, 4], [1, 2, 3], [], [3]]);
    c.proposeConfChange(1, { transition: ConfChangeTransition.Auto, changes: [] });
    c.stabilize();
    cs = c.get(1).node.status().config;
    expect([cs.voters, cs.votersOutgoing, cs.learners, cs.learnersNext]).toEqual([[1, 2, 4], [], [3], []]);
  });

  it("allows at most one unapplied configuration change", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.add(4);
    c.filter = () => false;
    c.proposeConfChange(1, learner(4));
    const err = errorOf(() => c.proposeConfChange(1, learner(5)));
    expect(err).toBeInstanceOf(ProposalDroppedError);
    expect((err as ProposalDroppedError).reason).toBe("conf-change-pending");
    c.filter = () => true;
    c.stabilize();
    expect(errorOf(() => c.proposeConfChange(1, learner(5)))).toBeUndefined();
  });

  it("a new leader admits no change until it applied everything it inherited", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.filter = (m) => !(m.type === MessageType.AppResp && m.to === 1); // "a" reaches 2 and 3, never commits
    c.propose(1, "a");
    c.stabilize();
    c.filter = (m) => m.type !== MessageType.App; // node 2's no-op will not commit either
    c.get(2).node.campaign();
    c.stabilize();
    expect(c.get(2).node.status().role).toBe(Role.Leader);
    const err = errorOf(() => c.proposeConfChange(2, learner(4)));
    expect((err as ProposalDroppedError).reason).toBe("conf-change-pending");
    c.filter = () => true;
    c.tickAll(2);
    expect(errorOf(() => c.proposeConfChange(2, learner(4)))).toBeUndefined();
  });

  it("rejects changes that cannot apply, with a reason", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const cases: ConfChange[] = [
      { transition: ConfChangeTransition.Auto, changes: [] }, // not joint: nothing to leave
      {
        transition: ConfChangeTransition.Auto,
        changes: [
          { type: ConfChangeType.RemoveNode, nodeId: 1 },
          { type: ConfChangeType.RemoveNode, nodeId: 2 },
          { type: ConfChangeType.RemoveNode, nodeId: 3 },
        ],
      }, // removes every voter
    ];
    for (const cc of cases) expect(errorOf(() => c.proposeConfChange(1, cc))).toBeInstanceOf(InvalidArgumentError);
    c.proposeConfChange(1, { transition: ConfChangeTransition.JointExplicit, changes: [{ type: ConfChangeType.AddNode, nodeId: 4 }] });
    c.stabilize();
    const again = errorOf(() => c.proposeConfChange(1, add(5))); // already joint
    expect(again).toBeInstanceOf(InvalidArgumentError);
    expect((again as Error).message).toMatch(/joint/);
  });

  it("ignores, deterministically, a committed change that no longer applies", () => {
    const c = new Cluster([1, 2, 3]);
    const before = c.get(2).node.status().config;
    const cs = c.get(2).node.applyConfChange({ transition: ConfChangeTransition.Auto, changes: [] });
    expect(cs).toEqual(before);
  });

  it("a node with a committed but unapplied configuration change does not campaign", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.proposeConfChange(1, learner(4));
    c.process(1);
    c.deliver(); // 2 and 3 append the entry
    c.process(2);
    c.process(3);
    c.deliver(); // the leader commits it
    const n2 = c.get(2);
    n2.up = false; // the harness stops handling node 2's Readies
    c.tick(1);
    c.process(1);
    for (const m of c.queue) if (m.to === 2) n2.node.step(m); // heartbeat carries the commit
    c.queue = [];
    const st = n2.node.status();
    expect(st.commit).toBeGreaterThan(st.applied);
    const term = st.term;
    n2.node.campaign();
    expect(n2.node.status().role).toBe(Role.Follower);
    expect(n2.node.status().term).toBe(term);
    // Once applied, it may campaign.
    n2.up = true;
    c.process(2);
    n2.node.campaign();
    expect(n2.node.status().term).toBe(term + 1);
  });

  it("encodes what it proposes with the ConfChange codec", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.proposeConfChange(1, learner(7));
    c.stabilize();
    const e = c.get(1).applied.find((x) => x.type === EntryType.ConfChange)!;
    expect(e.data).toEqual(encodeConfChange(learner(7)));
  });
});
