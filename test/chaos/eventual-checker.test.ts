/**
 * The eventual chaos checker (eventual-checker.ts) must be able to fail: a key whose final value
 * is below its acknowledged sum (a lost add), above acknowledged + ambiguous (a double count), or
 * in range but unreachable by any subset of the ambiguous requests, is a violation naming the
 * key, the expected range and the value; refused adds must not count. And the outcome of each
 * client error (refused or ambiguous) follows the client's contract.
 */
import { describe, expect, it } from "vitest";
import { ClusterUnreachableError } from "../../src/client/errors.js";
import { AmbiguousError, InvalidArgumentError, TallyError } from "../../src/util/errors.js";
import { checkEventualHistory, summarizeVisibility, type EventualOp } from "./eventual-checker.js";
import { eventualOutcome } from "./eventual-run.js";

let nextId = 0;
const op = (status: EventualOp["status"], adds: Array<[string, number]>): EventualOp => ({
  id: nextId++,
  worker: 0,
  node: 1,
  kind: adds.length === 1 ? "add" : "batch",
  adds: adds.map(([key, delta]) => ({ key, delta })),
  status,
  invokedAt: 0,
});

// k: acknowledged 3 + 4 = 7, ambiguous requests {2} and {5 (a batch's 2 + 3)}, refused 10.
const history = [
  op("ok", [["k", 3]]),
  op("ok", [
    ["k", 4],
    ["j", 1],
  ]),
  op("ambiguous", [["k", 2]]),
  op("ambiguous", [
    ["k", 2],
    ["k", 3],
  ]),
  op("fail", [["k", 10]]),
];
const finals = (k: string) =>
  new Map([
    ["k", k],
    ["j", "1"],
  ]);

describe("eventual chaos checker", () => {
  it("accepts the acknowledged sum plus any subset of the ambiguous requests", () => {
    for (const value of ["7", "9", "12", "14"]) {
      const result = checkEventualHistory(history, finals(value));
      expect(result.problems, value).toEqual([]);
      expect(result.valid).toBe(true);
    }
    const result = checkEventualHistory(history, finals("7"));
    expect(result.counts).toEqual({ ok: 2, fail: 1, ambiguous: 2 });
    expect(result.addCounts).toEqual({ ok: 3, fail: 1, ambiguous: 3 });
    expect(result.keys.find((k) => k.key === "k")).toMatchObject({ acknowledgedSum: "7", ambiguousSum: "7", refusedSum: "10" });
  });

  it("flags a lost add: the value below the acknowledged sum", () => {
    const result = checkEventualHistory(history, finals("6"));
    expect(result.valid).toBe(false);
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toMatch(/^k: LOST 1: value 6, expected 7\.\.14/);
  });

  it("flags a double count or a refused add counted: the value above acknowledged + ambiguous", () => {
    const result = checkEventualHistory(history, finals("17"));
    expect(result.valid).toBe(false);
    expect(result.problems[0]).toMatch(/^k: COUNTED TWICE .* 3 too many: value 17, expected 7\.\.14/);
    // The refused add of 10 counted: 7 + 10 = 17 is out of range whatever the ambiguous did.
    expect(checkEventualHistory(history, finals("24")).valid).toBe(false);
  });

  it("flags a value in range that no subset of the ambiguous requests reaches (a batch counts whole)", () => {
    // 7 + 3: only the batch's 3, without its 2, would make it.
    const result = checkEventualHistory(history, finals("10"));
    expect(result.valid).toBe(false);
    expect(result.problems[0]).toMatch(/^k: value 10 is in range but no subset of the ambiguous deltas \[2,5\]/);
  });

  it("flags a key whose final value could not be read, and a key read but never written unless 0", () => {
    const missing = new Map<string, string | undefined>([
      ["k", undefined],
      ["j", "1"],
    ]);
    expect(checkEventualHistory(history, missing).problems[0]).toMatch(/^k: no final value could be read/);
    expect(checkEventualHistory([], new Map([["x", "0"]])).valid).toBe(true);
    expect(checkEventualHistory([], new Map([["x", "1"]])).problems[0]).toMatch(/^x: COUNTED TWICE/);
  });

  it("refuses a history with a non-positive delta", () => {
    expect(() => checkEventualHistory([op("ok", [["k", 0]])], new Map())).toThrow(/must be a positive integer/);
  });

  it("classifies client errors by the client's contract", () => {
    expect(eventualOutcome(new AmbiguousError("no answer"))).toBe("ambiguous");
    expect(eventualOutcome(new ClusterUnreachableError(["127.0.0.1:1"]))).toBe("fail");
    expect(eventualOutcome(new InvalidArgumentError("bad"))).toBe("fail");
    expect(eventualOutcome(new TallyError("TIMEOUT", "late"))).toBe("ambiguous");
    expect(eventualOutcome(new TallyError("INTERNAL", "?"))).toBe("ambiguous");
    expect(eventualOutcome(new Error("socket hang up"))).toBe("ambiguous");
  });

  it("splits ack -> visible into quiet periods and fault windows (with a recovery tail)", () => {
    const samples = [
      { key: "p", node: 1, ackAt: 0, visibleAt: 100 },
      { key: "p", node: 1, ackAt: 200, visibleAt: 400 },
      { key: "p", node: 1, ackAt: 1000, visibleAt: 3000 },
      { key: "p", node: 1, ackAt: 5500, visibleAt: 5600 },
      { key: "p", node: 1, ackAt: 9000 },
    ];
    const report = summarizeVisibility(samples, [{ name: "kill", startMs: 2000, endMs: 5000 }], 1000);
    // 9000 is never seen, outside any window: a quiet sample that counts against "within 1 s".
    expect(report.quiet).toMatchObject({ samples: 3, notSeen: 1, p50Ms: 100, maxMs: 200 });
    expect(report.quiet.within1s).toBeCloseTo(2 / 3);
    // 1000..3000 overlaps the window, 5500 falls in its 1 s recovery tail.
    expect(report.faults).toMatchObject({ samples: 2, notSeen: 0, maxMs: 2000, within1s: 0.5 });
    expect(report.all.samples).toBe(5);
  });
});
