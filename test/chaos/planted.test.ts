/**
 * The planted bug: with TALLY_TEST_ACK_BEFORE_COMMIT=1 a leader acknowledges adds from its applied
 * state before they commit. A short chaos run with kill -9 of leaders must come out INVALID (lost
 * acknowledged updates and/or add results no linearization explains). If this test passes with
 * the flag removed, the harness has gone blind.
 */
import { describe, expect, it } from "vitest";
import { PLANTED_BUG_RUN, runChaos } from "./run.js";

describe("chaos harness against a planted ack-before-commit bug", () => {
  it("rejects the history", { timeout: 150_000 }, async () => {
    const run = await runChaos(PLANTED_BUG_RUN);
    expect(run.faults.length).toBeGreaterThanOrEqual(2);
    expect(run.result.counts.ok).toBeGreaterThan(100);
    expect(run.result.valid, run.result.problems.join("\n")).toBe(false);
    expect(run.result.problems.length).toBeGreaterThan(0);
  });
});
