/**
 * The checker must bite: hand-made histories with a lost update, a double count, a non-linearizable
 * read, impossible add results and a STALE read below its minIndex are rejected; a history that is
 * only explainable by an ambiguous add having taken effect is accepted.
 */
import { describe, expect, it } from "vitest";
import { checkHistory, subsetSums, type FaultWindow, type HistoryOp } from "./checker.js";

let nextId = 0;
function add(key: string, delta: number, invokedAt: number, completedAt: number | undefined, value?: number): HistoryOp {
  return completedAt === undefined
    ? { id: nextId++, worker: 0, key, kind: "add", delta, status: "ambiguous", invokedAt }
    : { id: nextId++, worker: 0, key, kind: "add", delta, status: "ok", invokedAt, completedAt, value: String(value) };
}
function read(key: string, invokedAt: number, completedAt: number, value: number): HistoryOp {
  return { id: nextId++, worker: 1, key, kind: "read", status: "ok", invokedAt, completedAt, value: String(value) };
}
function final(key: string, at: number, value: number): HistoryOp {
  return { id: nextId++, worker: -1, key, kind: "final-read", status: "ok", invokedAt: at, completedAt: at + 1, value: String(value) };
}

describe("subsetSums", () => {
  it("uses every delta at most once", () => {
    const sums = subsetSums([2, 2, 5]);
    const reachable = [...sums.keys()].filter((s) => sums[s] === 1);
    expect(reachable).toEqual([0, 2, 4, 5, 7, 9]);
  });
});

describe("checkHistory", () => {
  it("a contract add answered NOT_LEADER whose key reads 1 was applied: INVALID, counted, whatever else holds", () => {
    const refused = (key: string, code: string): HistoryOp => ({
      id: nextId++,
      worker: 1000,
      key,
      kind: "add",
      delta: 1,
      status: "fail",
      invokedAt: 1,
      completedAt: 2,
      errorCode: code,
      contract: true,
    });
    const unknown: HistoryOp = {
      id: nextId++,
      worker: 1000,
      key: "c3",
      kind: "add",
      delta: 1,
      status: "ambiguous",
      invokedAt: 1,
      errorCode: "AMBIGUOUS",
      contract: true,
    };
    const clean = [
      refused("c1", "NOT_LEADER"),
      final("c1", 10, 0),
      refused("c2", "WRONG_SHARD"),
      final("c2", 10, 0),
      unknown,
      final("c3", 10, 1),
    ];
    const ok = checkHistory(clean);
    expect(ok.valid).toBe(true);
    expect(ok.contract).toMatchObject({ adds: 3, definiteButApplied: 0, answers: { NOT_LEADER: 1, WRONG_SHARD: 1, AMBIGUOUS: 1 } });
    const applied = checkHistory([refused("c1", "NOT_LEADER"), final("c1", 10, 1)]);
    expect(applied.valid).toBe(false);
    expect(applied.contract.definiteButApplied).toBe(1);
    expect(applied.problems.join("\n")).toContain('answered "not applied" but applied');
  });

  it("accepts a clean history, with an ambiguous add that took effect", () => {
    const history = [
      add("a", 3, 0, undefined),
      add("a", 2, 10, 20, 5),
      read("a", 30, 40, 5),
      add("b", 1, 0, 5, 1),
      final("a", 100, 5),
      final("b", 100, 1),
    ];
    const result = checkHistory(history);
    expect(result.problems).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it("accepts a history where an ambiguous add never took effect", () => {
    const history = [add("a", 3, 0, undefined), add("a", 2, 10, 20, 2), final("a", 100, 2)];
    expect(checkHistory(history).valid).toBe(true);
  });

  it("rejects a lost update (final below the acknowledged sum)", () => {
    const history = [add("a", 1, 0, 5, 1), add("a", 2, 10, 15, 3), add("a", 3, 20, 25, 6), final("a", 100, 3)];
    const result = checkHistory(history);
    expect(result.valid).toBe(false);
    expect(result.problems.join("\n")).toMatch(/lost update/);
  });

  it("rejects a double count (final above acknowledged + every ambiguous add)", () => {
    const history = [add("a", 2, 0, 5, 2), add("a", 3, 10, undefined), final("a", 100, 8)];
    const result = checkHistory(history);
    expect(result.valid).toBe(false);
    expect(result.problems.join("\n")).toMatch(/double count/);
  });

  it("rejects a final value that no subset of ambiguous adds explains (one applied twice)", () => {
    // Acknowledged 1 plus a subset of ambiguous {4, 4} allows 1, 5 or 9; 7 is none of them.
    const history = [add("a", 1, 0, 5, 1), add("a", 4, 10, undefined), add("a", 4, 12, undefined), final("a", 100, 7)];
    const result = checkHistory(history);
    expect(result.valid).toBe(false);
    expect(result.problems.join("\n")).toMatch(/no sum of a subset/);
  });

  it("rejects a linearizable read that misses a completed add (stale read on the leader path)", () => {
    const history = [add("a", 1, 0, 10, 1), read("a", 20, 30, 0), final("a", 100, 1)];
    const result = checkHistory(history);
    expect(result.valid).toBe(false);
    expect(result.linearizability.ok).toBe(false);
    expect(result.finalValues[0]!.ok).toBe(true);
  });

  it("rejects two concurrent adds that saw the same starting value (acknowledged before commit)", () => {
    const history = [add("a", 2, 0, 10, 2), add("a", 3, 1, 11, 3), final("a", 100, 5)];
    const result = checkHistory(history);
    expect(result.valid).toBe(false);
    expect(result.linearizability.ok).toBe(false);
  });

  it("rejects a STALE read below its minIndex or below a value already seen", () => {
    const base: HistoryOp = {
      id: nextId++,
      worker: 2,
      key: "a",
      kind: "stale-read",
      status: "ok",
      invokedAt: 20,
      completedAt: 25,
      value: "1",
      minIndex: "9",
      appliedIndex: "8",
    };
    expect(checkHistory([add("a", 1, 0, 5, 1), base, final("a", 100, 1)]).staleReads.violations).toHaveLength(1);
    const regress: HistoryOp = { ...base, id: nextId++, appliedIndex: "12", value: "0", minValue: "1" };
    const result = checkHistory([add("a", 1, 0, 5, 1), regress, final("a", 100, 1)]);
    expect(result.valid).toBe(false);
    expect(result.staleReads.violations.join("\n")).toMatch(/already seen/);
  });

  it("is unknown, not valid, without a final read", () => {
    expect(checkHistory([add("a", 1, 0, 5, 1)]).valid).toBe("unknown");
  });

  it("splits availability by fault windows", () => {
    const failed: HistoryOp = { id: nextId++, worker: 0, key: "a", kind: "read", status: "fail", invokedAt: 55, completedAt: 60 };
    const faults: FaultWindow[] = [{ name: "kill", startMs: 50, endMs: 70 }];
    const result = checkHistory([add("a", 1, 0, 5, 1), add("a", 1, 52, 58, 2), failed, final("a", 100, 2)], faults);
    expect(result.availability.duringFaults).toBe(0.5);
    expect(result.availability.outsideFaults).toBe(1);
  });
});
