/** The add-latency stage trace (src/server/core/stage-trace.ts): its switches and its arithmetic. */
import { describe, expect, it } from "vitest";
import { StageTrace, type WriteTrace } from "../../src/server/core/stage-trace.js";

const fresh = (queuedAt: number): WriteTrace => ({ queuedAt, proposedAt: 0, writtenAt: 0, ackAt: 0, appliedAt: 0 });

describe("StageTrace", () => {
  it("is off unless TALLY_TRACE_ADDS is set, and refuses a bad value by name", () => {
    expect(StageTrace.fromEnv({}).enabled).toBe(false);
    expect(StageTrace.fromEnv({ TALLY_TRACE_ADDS: "0" }).enabled).toBe(false);
    expect(StageTrace.fromEnv({ TALLY_TRACE_ADDS: "4" }).enabled).toBe(true);
    expect(() => StageTrace.fromEnv({ TALLY_TRACE_ADDS: "yes" })).toThrow(/TALLY_TRACE_ADDS must be a non-negative integer, got "yes"/);
    expect(() => StageTrace.fromEnv({ TALLY_TRACE_ADDS: "2", TALLY_TRACE_EVERY_MS: "-1" })).toThrow(/TALLY_TRACE_EVERY_MS/);
  });

  it("samples 1 in N, and never when off", () => {
    const trace = new StageTrace(4);
    expect(Array.from({ length: 12 }, () => trace.sample()).filter(Boolean)).toHaveLength(3);
    const off = new StageTrace(0);
    expect(Array.from({ length: 12 }, () => off.sample()).filter(Boolean)).toHaveLength(0);
  });

  it("times a sampled write through its stages, in microseconds", () => {
    const trace = new StageTrace(1);
    const write = fresh(100);
    trace.proposed(7, 42, [write], 100.5);
    trace.acked(7, 41, 101); // an ack below the entry: not this one's
    trace.written(7, 42, 101.25);
    trace.acked(7, 42, 102);
    trace.acked(7, 43, 102.5); // a later ack: the first one counts
    trace.applied(7, 42, 102.75);
    trace.finish(write, 103);
    const line = trace.summary();
    expect(line).toContain("queued=500/500/500(1)");
    expect(line).toContain("leaderWrite=750/750/750(1)");
    expect(line).toContain("firstAck=1500/1500/1500(1)");
    expect(line).toContain("ackToApply=750/750/750(1)");
    expect(line).toContain("applyToAnswer=250/250/250(1)");
    expect(line).toContain("total=3000/3000/3000(1)");
    expect(trace.summary()).toBe(""); // the samples start again
  });

  it("gives p50, p99 and max, and hands each sample to its observers", () => {
    const trace = new StageTrace(1);
    const seen: number[] = [];
    const stop = trace.observe((stage, seconds) => stage === "wake" && seen.push(seconds));
    for (let i = 1; i <= 100; i++) trace.record("wake", i / 1000); // 1..100 µs
    stop();
    trace.record("wake", 1);
    expect(seen).toHaveLength(100);
    expect(seen[99]).toBeCloseTo(0.0001);
    expect(trace.summary()).toBe("wake=51/100/1000(101)");
  });
});
