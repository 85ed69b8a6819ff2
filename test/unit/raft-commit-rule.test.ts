/**
 * Paper 5.4.2 and Figure 8: a leader must not commit an entry of an earlier term by counting
 * replicas; it commits such entries only indirectly, by committing an entry of its own term.
 */
import { describe, expect, it } from "vitest";
import { type Entry, MessageType, Role } from "../../src/raft/index.js";
import { Cluster } from "./raft-harness.js";

interface Outcome {
  /** (index -> set of "term:data") applied by anyone, over the whole run. */
  applied: Map<number, Set<string>>;
  leaderCommitAfterC: number;
  error?: Error;
}

function figure8(commitPreviousTermEntries: boolean): Outcome {
  const c = new Cluster([1, 2, 3, 4, 5], { maxSizePerMsg: 1, testKnobs: { commitPreviousTermEntries } });
  const applied = new Map<number, Set<string>>();
  const record = (entries: Entry[]) => {
    for (const e of entries) {
      const set = applied.get(e.index) ?? new Set<string>();
      set.add(`${e.term}:${new TextDecoder().decode(e.data)}`);
      applied.set(e.index, set);
    }
  };
  c.onReady = (_id, rd) => record(rd.committedEntries);
  let leaderCommitAfterC = 0;
  try {
    // S1 leads term 2; its no-op (index 2) commits everywhere.
    expect(c.elect(1)).toBe(1);
    expect(c.get(1).node.status().term).toBe(2);

    // (a) S1 replicates x (index 3, term 2) to S2 only, then crashes.
    c.filter = (m) => !(m.type === MessageType.App && m.to !== 2);
    c.propose(1, "x");
    c.stabilize();
    expect(c.get(2).storage.lastIndex()).toBe(3);
    c.get(1).up = false;

    // (b) S5 wins term 3 with S3 and S4, appends its no-op at index 3 (term 3) locally, crashes.
    c.filter = (m) => !(m.type === MessageType.App && m.from === 5);
    c.get(5).node.campaign();
    c.stabilize();
    expect(c.get(5).node.status().role).toBe(Role.Leader);
    expect(c.get(5).node.status().term).toBe(3);
    expect(c.get(5).storage.term(3)).toBe(3);
    c.get(5).up = false;

    // (c) S1 restarts and wins term 4 (S2, S3, S4). It gets x (term 2) onto S3, so x is on a
    // majority (S1, S2, S3), but its own no-op (index 4) reaches nobody and S4 gets nothing.
    // Nobody else may learn a commit index above 2 from S1.
    c.get(1).restart();
    c.get(1).up = true;
    c.filter = (m) => {
      if (m.from === 1 && m.commit > 2) return false;
      if (m.type === MessageType.App && m.to === 4) return false;
      if (m.type === MessageType.App && m.from === 1) m.entries = m.entries.filter((e) => e.index < 4);
      return true;
    };
    c.get(1).node.campaign(); // term 3: S3 and S4 already voted for S5
    c.stabilize();
    if (c.get(1).node.status().role !== Role.Leader) {
      c.get(1).node.campaign(); // term 4
      c.stabilize();
    }
    expect(c.get(1).node.status().role).toBe(Role.Leader);
    expect(c.get(1).node.status().term).toBe(4);
    expect(c.get(3).storage.term(3)).toBe(2);
    leaderCommitAfterC = c.get(1).node.status().commit;

    // (d) S1 crashes; S5 restarts and wins term 5 (its last term 3 beats everyone's 2), then
    // overwrites index 3 everywhere with its term-3 entry and commits it.
    c.get(1).up = false;
    c.filter = () => true;
    c.get(5).restart();
    c.get(5).up = true;
    for (let i = 0; i < 3 && c.get(5).node.status().role !== Role.Leader; i++) {
      c.get(5).node.campaign();
      c.stabilize();
    }
    expect(c.get(5).node.status().role).toBe(Role.Leader);
    c.stabilize();
  } catch (err) {
    return { applied, leaderCommitAfterC, error: err as Error };
  }
  return { applied, leaderCommitAfterC };
}

describe("commit rule (paper 5.4.2, Figure 8)", () => {
  it("does not commit a previous-term entry by counting replicas, so nothing committed is lost", () => {
    const out = figure8(false);
    expect(out.error).toBeUndefined();
    expect(out.leaderCommitAfterC).toBe(2); // x is on a majority but is not committed
    for (const [index, values] of out.applied) expect([index, [...values]]).toEqual([index, [...values].slice(0, 1)]);
    expect([...out.applied.get(3)!]).toEqual(["3:"]); // S5's no-op won index 3
  });

  it("the commitPreviousTermEntries knob reproduces Figure 8's lost commit", () => {
    const out = figure8(true);
    expect(out.error).toBeUndefined();
    expect(out.leaderCommitAfterC).toBe(3);
    // S1 applied x at index 3, the others later applied S5's entry there: state machines diverge.
    expect([...out.applied.get(3)!].sort()).toEqual(["2:x", "3:"]);
  });
});
