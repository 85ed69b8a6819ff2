/**
 * A short clean chaos run on the process backend: kill -9 of leaders, SIGSTOP pauses longer than
 * the election timeout, leader isolation and one-way partitions, a leadership-transfer storm, a
 * clock-skewed restart, live clock jumps, and a full disk (with the log compacted every 100 entries,
 * so restarted nodes catch up by snapshot) (the node must stop itself and come back
 * intact), under a concurrent add/read workload and two contract workers (the raw protocol, taking
 * "not applied" answers at their word). The history must check out valid:
 * no lost or double-counted add, linearizable adds and reads, STALE reads at or past their
 * minIndex. On failure the report is under .chaos/ (the path is in the assertion message).
 */
import { describe, expect, it } from "vitest";
import { runChaos } from "./run.js";

describe("chaos (process backend)", () => {
  it(
    "a run with crashes, pauses, partitions, transfers, clock skew and jumps, and a full disk is valid",
    { timeout: 240_000 },
    async () => {
      const seed = Number(process.env.CHAOS_SEED ?? 42);
      const run = await runChaos({
        nodes: 3,
        timeS: 70,
        rate: 50,
        keys: 4,
        readRatio: 0.3,
        nemeses: [
          "kill-leader",
          "pause",
          "partition-leader",
          "partition-one-way",
          "transfer-storm",
          "clock-skew",
          "clock-jump",
          "disk",
          "kill",
        ],
        seed,
        concurrency: 5,
        // Raw-protocol clients that take NOT_LEADER and the other "not applied" codes at their word.
        contractWorkers: 2,
        faultMs: 4000,
        quietMs: 3000,
        // Compact often (keeping a 50-entry tail), so a node that was down catches up by a snapshot
        // its shard's leader builds from the applied state, under the same faults.
        snapshotEveryEntries: 100,
      });
      const summary = `seed ${seed}, report ${run.dir}/report.html, snapshots installed ${run.snapshotsInstalled}\n${run.result.problems.join("\n")}`;
      console.log(
        `chaos test: ${run.faults.length} faults, ${run.result.counts.ok} ops ok, snapshots installed since each node's last start: ${run.snapshotsInstalled}`,
      );
      expect(run.faults.length, summary).toBeGreaterThanOrEqual(6);
      expect(run.result.counts.ok, summary).toBeGreaterThan(500);
      expect(run.result.contract.adds, summary).toBeGreaterThan(100);
      expect(run.result.contract.definiteButApplied, summary).toBe(0);
      expect(run.result.valid, summary).toBe(true);
    },
  );
});
