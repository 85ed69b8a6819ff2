/**
 * The region chaos run must be able to fail: each planted bug must make it INVALID, with the check
 * that exists for it. `escrow-bypass` (decrements by a plain add, no rights spent) must break the
 * floor identity in the samples; `double-apply` (a component copy doubled at a future index) must
 * keep the regions from agreeing (STALLED) and fail the sums.
 */
import { describe, expect, it } from "vitest";
import { describeRegionRun, runRegionChaos, type RegionChaosOptions } from "./regions-run.js";

const base: RegionChaosOptions = {
  regionNodes: [1, 1],
  timeS: 6,
  rate: 24,
  keys: 2,
  escrowKeys: 1,
  seed: 77,
  loss: 0.02,
  faultMs: 2000,
  quietMs: 1000,
  drainTimeoutMs: 5_000,
  outRoot: null,
};

describe("region chaos: planted bugs are caught", () => {
  it("escrow decrements that spend no rights break the floor identity", { timeout: 60_000 }, async () => {
    const run = await runRegionChaos({ ...base, plant: "escrow-bypass" });
    const summary = describeRegionRun(run).join("\n");
    expect(run.valid, summary).toBe(false);
    expect(run.escrow.floorProblems, summary).toBeGreaterThan(0);
    expect(
      run.problems.some((problem) => /^FLOOR: .*not atomic/.test(problem)),
      summary,
    ).toBe(true);
  });

  it("a component applied twice is seen: the regions never agree, the sums fail", { timeout: 60_000 }, async () => {
    const run = await runRegionChaos({ ...base, plant: "double-apply" });
    const summary = describeRegionRun(run).join("\n");
    expect(run.valid, summary).toBe(false);
    expect(
      run.problems.some((problem) => problem.startsWith("STALLED")),
      summary,
    ).toBe(true);
    expect(
      run.problems.some((problem) => /disagree|COUNTED TWICE/.test(problem)),
      summary,
    ).toBe(true);
    expect(run.escrow.floorProblems, summary).toBe(0);
  });
});
