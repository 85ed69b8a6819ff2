/**
 * The error contract's planted bug: with TALLY_TEST_NOT_LEADER_AFTER_PROPOSE=1 a leader that loses
 * leadership answers its proposed writes NOT_LEADER ("not applied") though they may still commit.
 * Contract workers (raw protocol, a key per add, no resend after a "not applied" answer) under
 * pauses of their shard's leader (pause-leader) must show such adds applied, and the run must come out INVALID. If this passes with
 * the flag removed, the contract check has gone blind.
 */
import { describe, expect, it } from "vitest";
import { PLANTED_NOT_LEADER_RUN, runChaos } from "./run.js";

describe("chaos harness against a planted NOT_LEADER-after-propose bug", () => {
  it("finds adds answered NOT_LEADER that were applied", { timeout: 150_000 }, async () => {
    const run = await runChaos(PLANTED_NOT_LEADER_RUN);
    console.log(
      `planted NOT_LEADER: ${run.faults.length} leader pauses, contract answers ${JSON.stringify(run.result.contract.answers)}, applied after "not applied": ${run.result.contract.definiteButApplied}`,
    );
    expect(run.faults.length).toBeGreaterThanOrEqual(3);
    expect(run.result.contract.adds).toBeGreaterThan(100);
    expect(run.result.contract.definiteButApplied, JSON.stringify(run.result.contract.answers)).toBeGreaterThan(0);
    expect(run.result.valid).toBe(false);
  });
});
