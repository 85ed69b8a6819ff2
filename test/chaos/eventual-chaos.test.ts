/**
 * Eventual counters under chaos (issue 21), short: 3 real tallyd processes, workers sending
 * eventual adds and addEventual batches to random nodes, probes measuring ack -> visible, and a
 * schedule that runs kill -9 + restart (the buffer must replay), kill-all, SIGSTOP pauses (a node
 * holding a buffer, a shard leader) and partitions (a node cut from the others while it still
 * accepts adds). After the heal every buffer must drain, and every key must read exactly its
 * acknowledged adds plus a subset of the ambiguous ones (eventual-checker.ts). The visibility
 * figures are printed and written to the report, never asserted (no timing targets in tests).
 * The long run: `npm run chaos -- --workload eventual --time 600` (docs/testing.md).
 */
import { describe, expect, it } from "vitest";
import { describeEventualRun, runEventualChaos } from "./eventual-run.js";

describe("eventual counters under chaos (process backend)", () => {
  it("counts every acknowledged eventual add exactly once after kills, pauses and partitions", { timeout: 150_000 }, async () => {
    const seed = Number(process.env.CHAOS_SEED ?? 21);
    const run = await runEventualChaos({
      nodes: 3,
      timeS: 40,
      rate: 60,
      keys: 6,
      nemeses: ["kill", "pause", "partition-leader", "kill-all", "pause-leader", "partition-halves"],
      seed,
      concurrency: 4,
      probes: 2,
      faultMs: 3000,
      quietMs: 2500,
      drainTimeoutMs: 30_000,
      // Shorter than a fault plus a restart: flusher sessions expire and the marker counter decides.
      sessionTimeoutMs: 4000,
    });
    const lines = describeEventualRun(run);
    console.log(`${lines.join("\n")}\nseed ${seed}, report ${run.dir}/result.json`);
    const summary = `seed ${seed}, report ${run.dir}/result.json\n${lines.join("\n")}`;
    expect(run.faults.length, summary).toBeGreaterThanOrEqual(6);
    expect(new Set(run.faults.map((f) => f.name)).size, summary).toBe(6);
    expect(run.check.counts.ok, summary).toBeGreaterThan(300);
    expect(run.drainMs, summary).toBeDefined();
    expect(run.problems, summary).toEqual([]);
    expect(run.valid, summary).toBe(true);
  });
});
