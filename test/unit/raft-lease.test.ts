/**
 * Leader leases (thesis 6.4.1) and the vote restriction that makes them safe (thesis 4.2.3).
 */
import { describe, expect, it } from "vitest";
import { type Message, MessageType, Role } from "../../src/raft/index.js";
import { Cluster, type NodeOptions } from "./raft-harness.js";

const leaseOptions: NodeOptions = { checkQuorum: true, leaseDriftTicks: 2 }; // electionTicks 10, heartbeat 1

const vote = (from: number, to: number, term: number): Message => ({
  type: MessageType.Vote,
  to,
  from,
  term,
  logTerm: 100,
  index: 1000,
  entries: [],
  commit: 0,
  reject: false,
  rejectHint: 0,
});

describe("leader lease (thesis 6.4.1)", () => {
  it("is valid once a quorum acks a round, for electionTicks - leaseDriftTicks from the send tick", () => {
    const c = new Cluster([1, 2, 3], leaseOptions);
    c.elect(1);
    const n1 = c.get(1).node;
    expect(n1.leaseValid()).toBe(false); // no round acknowledged yet
    c.tick(1); // round sent at leader tick 1
    expect(n1.leaseValid()).toBe(false); // sent, not acknowledged
    c.stabilize();
    expect(n1.leaseValid()).toBe(true);
    expect(n1.status().leaseValid).toBe(true);
    expect(n1.status().leaseRemainingTicks).toBe(1 + 10 - 2 - 1);
    c.isolate(1);
    for (let k = 1; k <= 7; k++) {
      c.tick(1);
      c.stabilize();
      expect(n1.leaseValid(), `after ${k} ticks`).toBe(true);
    }
    c.tick(1); // leader tick 9 = 1 + 10 - 2
    expect(n1.leaseValid()).toBe(false);
    expect(n1.status().leaseRemainingTicks).toBe(0);
    expect(n1.status().role).toBe(Role.Leader); // still leader: the lease ends before CheckQuorum acts
  });

  it("keeps being renewed by heartbeat rounds", () => {
    const c = new Cluster([1, 2, 3], leaseOptions);
    c.elect(1);
    c.tickAll(50);
    expect(c.get(1).node.leaseValid()).toBe(true);
    expect(c.get(2).node.leaseValid()).toBe(false);
  });

  it("needs an entry of the leader's term to be committed first", () => {
    const c = new Cluster([1, 2, 3], leaseOptions);
    c.filter = (m) => m.type !== MessageType.App;
    c.elect(1);
    c.tick(1);
    c.stabilize(); // heartbeats acknowledged, but the no-op is not committed
    expect(c.get(1).node.status().role).toBe(Role.Leader);
    expect(c.get(1).node.leaseValid()).toBe(false);
    c.filter = () => true;
    c.tick(1);
    c.stabilize();
    expect(c.get(1).node.leaseValid()).toBe(true);
  });

  it("is off without a drift margin (leaseDriftTicks 0) or without checkQuorum", () => {
    for (const options of [
      { checkQuorum: true, leaseDriftTicks: 0 },
      { checkQuorum: false, leaseDriftTicks: 0 },
    ]) {
      const c = new Cluster([1, 2, 3], options);
      c.elect(1);
      c.tickAll(5);
      expect(c.get(1).node.leaseValid()).toBe(false);
    }
  });

  it("ends the moment a leadership transfer starts, and comes back after an abort with no TimeoutNow sent", () => {
    const c = new Cluster([1, 2, 3], leaseOptions);
    c.elect(1);
    c.isolate(3);
    c.propose(1, "x"); // 3 lags, so the transfer must first catch it up
    c.tickAll(2);
    expect(c.get(1).node.leaseValid()).toBe(true);
    c.get(1).node.transferLeader(3);
    expect(c.get(1).node.leaseValid()).toBe(false);
    expect(c.get(1).node.status().leadTransferee).toBe(3);
    c.tickAll(10); // the transfer times out after an election timeout
    expect(c.get(1).node.status().leadTransferee).toBe(0);
    c.tickAll(2);
    expect(c.get(1).node.leaseValid()).toBe(true);
    expect(c.sentOfType(MessageType.TimeoutNow)).toHaveLength(0);
  });

  it("stays off for the rest of the term once a TimeoutNow went out", () => {
    const c = new Cluster([1, 2, 3], leaseOptions);
    c.elect(1);
    c.tickAll(2);
    c.isolate(3); // caught up but unreachable: TimeoutNow is sent at once and lost
    c.get(1).node.transferLeader(3);
    c.stabilize();
    expect(c.sentOfType(MessageType.TimeoutNow)).toHaveLength(1);
    c.tickAll(30);
    expect(c.leader()).toBe(1);
    expect(c.get(1).node.status().leadTransferee).toBe(0);
    // The lost TimeoutNow may still arrive and trigger an election that bypasses the vote
    // restriction, so this leader must not trust a lease again in this term.
    expect(c.get(1).node.leaseValid()).toBe(false);
  });

  it("is recomputed under the new configuration's quorum after a membership change", () => {
    const c = new Cluster([1, 2, 3], leaseOptions);
    c.elect(1);
    c.add(4);
    c.isolate(4);
    c.tickAll(2);
    c.isolate(3);
    c.tickAll(10); // 1 and 2 keep the lease alive; 3's last ack is now stale
    expect(c.get(1).node.leaseValid()).toBe(true);
    // Adding 4 (unreachable) makes {1,2} a minority of {1,2,3,4}: the lease must end when the
    // change is applied, not when CheckQuorum eventually notices.
    c.proposeConfChange(1, { transition: 0, changes: [{ type: 0, nodeId: 4 }] });
    c.stabilize();
    expect(c.get(1).node.status().config.voters).toEqual([1, 2, 3, 4]);
    expect(c.get(1).node.status().role).toBe(Role.Leader);
    expect(c.get(1).node.leaseValid()).toBe(false);
  });
});

describe("vote restriction behind the lease (thesis 4.2.3)", () => {
  it("a follower ignores higher-term votes for electionTicks after hearing from the leader", () => {
    const c = new Cluster([1, 2, 3], leaseOptions);
    c.elect(1);
    c.tickAll(1);
    c.isolate(2);
    const term = c.get(2).node.status().term;
    for (let k = 0; k < 10; k++) {
      c.get(2).node.step(vote(3, 2, term + 1));
      c.stabilize();
      expect(c.get(2).node.status().term, `tick ${k}`).toBe(term);
      c.tick(2);
    }
    c.get(2).node.step(vote(3, 2, term + 1));
    c.stabilize();
    expect(c.get(2).node.status().term).toBe(term + 1);
  });

  it("a restarted follower waits an election timeout before voting (it may back a lease it forgot)", () => {
    const c = new Cluster([1, 2, 3], leaseOptions);
    c.elect(1);
    c.tickAll(1);
    c.get(2).restart();
    c.isolate(2);
    const term = c.get(2).node.status().term;
    c.get(2).node.step(vote(3, 2, term + 1));
    c.stabilize();
    expect(c.get(2).node.status().term).toBe(term);
    c.tick(2, 10);
    c.get(2).node.step(vote(3, 2, term + 1));
    c.stabilize();
    expect(c.get(2).node.status().term).toBe(term + 1);
  });

  it("campaign() is refused while the node itself backs a live leader", () => {
    const c = new Cluster([1, 2, 3], leaseOptions);
    c.elect(1);
    c.tickAll(1);
    c.get(2).node.campaign();
    c.stabilize();
    expect(c.leader()).toBe(1);
    expect(c.get(2).node.status().role).toBe(Role.Follower);
  });

  /**
   * Five nodes; the leader (1) holds a lease acknowledged by 2 and 3. Nodes 4 and 5 cannot reach
   * it, time out and campaign; they need a vote from 2 or 3. With the restriction they never get
   * one while 1 is live. With the leaseWithoutVoteRestriction knob they do, and a new leader is
   * elected while 1 still trusts its lease: exactly the stale read the restriction prevents.
   */
  function overlap(leaseWithoutVoteRestriction: boolean): { violations: number; newLeader: boolean } {
    const c = new Cluster([1, 2, 3, 4, 5], { ...leaseOptions, testKnobs: { leaseWithoutVoteRestriction } });
    c.elect(1);
    c.tickAll(1);
    c.cutLink(1, 4);
    c.cutLink(1, 5);
    let violations = 0;
    let newLeader = false;
    c.onReady = (id, rd) => {
      if (id === 1 || rd.softState?.role !== Role.Leader) return;
      newLeader = true;
      if (c.get(1).node.leaseValid()) violations++;
    };
    for (let i = 0; i < 60; i++) c.tickAll(1);
    return { violations, newLeader };
  }

  it("keeps a new leader from being elected while the lease holds", () => {
    expect(overlap(false)).toEqual({ violations: 0, newLeader: false });
  });

  it("leaseWithoutVoteRestriction knob: a new leader appears while the old lease is valid", () => {
    const out = overlap(true);
    expect(out.newLeader).toBe(true);
    expect(out.violations).toBeGreaterThan(0);
  });
});

describe("leaderContactTicks (a replica's silence from a working leader)", () => {
  const MAX = Number.MAX_SAFE_INTEGER;

  it("counts a follower's ticks since it heard from its leader, and is MAX when it knows none", () => {
    const c = new Cluster([1, 2, 3], leaseOptions);
    expect(c.get(2).node.leaderContactTicks()).toBe(MAX); // no leader yet
    c.elect(1);
    c.tickAll(3); // a heartbeat round every tick
    expect(c.get(2).node.leaderContactTicks()).toBe(0);
    c.isolate(1);
    for (let k = 1; k <= 5; k++) {
      c.tick(2);
      expect(c.get(2).node.leaderContactTicks(), `after ${k} ticks`).toBe(k);
    }
    c.heal();
    c.tick(1);
    c.stabilize();
    expect(c.get(2).node.leaderContactTicks()).toBe(0);
  });

  it("is 0 for a leader whose lease holds, then ages from the last acknowledged round once cut off", () => {
    const c = new Cluster([1, 2, 3], leaseOptions);
    c.elect(1);
    const n1 = c.get(1).node;
    expect(n1.leaderContactTicks()).toBe(0); // just elected, no round yet: ticks since then
    c.tick(1); // round sent at leader tick 1
    c.stabilize();
    expect(n1.leaseValid()).toBe(true);
    expect(n1.leaderContactTicks()).toBe(0);
    c.isolate(1);
    for (let k = 1; k <= 7; k++) {
      c.tick(1);
      c.stabilize();
      expect(n1.leaderContactTicks(), `lease still holds after ${k} ticks`).toBe(0);
    }
    c.tick(1); // the lease ends: 8 ticks since the last round a quorum acknowledged was sent
    expect(n1.leaseValid()).toBe(false);
    expect(n1.status().role).toBe(Role.Leader);
    expect(n1.leaderContactTicks()).toBe(8);
    c.tick(1);
    expect(n1.leaderContactTicks()).toBe(9);
    // The next CheckQuorum finds no quorum heard from: it steps down and knows no leader.
    for (let k = 0; k < 20 && n1.status().role === Role.Leader; k++) c.tick(1);
    expect(n1.status().role).toBe(Role.Follower);
    expect(n1.leaderContactTicks()).toBe(MAX);
  });

  it("ages from the election for a leader none of whose rounds a quorum acknowledged", () => {
    const c = new Cluster([1, 2, 3], leaseOptions);
    c.filter = (m) => m.type !== MessageType.HeartbeatResp;
    c.elect(1);
    const n1 = c.get(1).node;
    c.tick(1, 4);
    c.stabilize();
    expect(n1.status().role).toBe(Role.Leader);
    expect(n1.leaseValid()).toBe(false);
    expect(n1.leaderContactTicks()).toBe(4);
  });

  it("is 0 for a leader without leases (it cannot tell)", () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false, leaseDriftTicks: 0 });
    c.elect(1);
    c.isolate(1);
    c.tick(1, 30);
    expect(c.get(1).node.leaderContactTicks()).toBe(0);
  });
});
