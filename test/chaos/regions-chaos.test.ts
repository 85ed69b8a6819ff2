/**
 * Regions under chaos (issue 21), short: two regions (a 3-node and a 1-node cluster) and three
 * regions (1 node each), 50-150 ms one-way latency and 2% emulated packet loss between them (the
 * proxy stalls a direction for a retransmission timeout, and rarely resets a connection:
 * test/support/proxy.ts; this run never needs iptables), inter-region partitions and replicator
 * restarts (and kill -9 of a node of the 3-node region) coming and going, while every region adds to shared keys and runs escrow increments and
 * decrements down to the floor with on-demand transfers. After the heal every region's global sum
 * must equal the acknowledged adds (ambiguous ones at most once), no component doubled, and the
 * escrow floor held at every sample and at the end (regions-checker.ts). The long run with real
 * loss: `npm run chaos -- --workload regions --time 600` (docs/regions.md).
 */
import { describe, expect, it } from "vitest";
import { describeRegionRun, runRegionChaos, type RegionChaosOptions } from "./regions-run.js";

const seed = Number(process.env.CHAOS_SEED ?? 2121);

async function check(options: Omit<RegionChaosOptions, "seed">, faultKinds: string[]): Promise<void> {
  const run = await runRegionChaos({ ...options, seed });
  const lines = describeRegionRun(run);
  console.log(`${lines.join("\n")}\nseed ${seed}, report ${run.dir}/result.json`);
  const summary = `seed ${seed}, report ${run.dir}/result.json\n${lines.join("\n")}`;
  expect(run.problems, summary).toEqual([]);
  expect(run.valid, summary).toBe(true);
  expect(new Set(run.faults.map((fault) => fault.name)), summary).toEqual(new Set(faultKinds));
  expect(run.counts.ok, summary).toBeGreaterThan(100);
  // The floor was reached and defended: decrements were refused there, and rights moved on demand.
  expect(run.escrow.refused, summary).toBeGreaterThan(0);
  expect(run.escrow.samples, summary).toBeGreaterThan(20);
  expect(run.lossCounters.stalls, summary).toBeGreaterThan(0);
  expect(run.convergedMs, summary).toBeDefined();
}

describe("regions under chaos (latency, loss, partitions)", () => {
  it(
    "two regions (3 nodes + 1 node, one of them killed): sums equal everywhere and to the acknowledged adds; the floor holds",
    { timeout: 90_000 },
    () =>
      check(
        {
          regionNodes: [3, 1],
          // Three fault windows: a partition, then a replicator restart and a node kill in either order.
          timeS: 13,
          rate: 24,
          keys: 4,
          escrowKeys: 2,
          loss: 0.02,
          faultMs: 2500,
          quietMs: 1500,
          drainTimeoutMs: 30_000,
        },
        ["partition-pair", "restart-replicator", "kill-node"],
      ),
  );

  it("three regions (1 node each): the same across isolations of a region", { timeout: 90_000 }, () =>
    check(
      {
        regionNodes: [1, 1, 1],
        timeS: 13,
        rate: 20,
        keys: 4,
        escrowKeys: 2,
        loss: 0.02,
        faultMs: 2500,
        quietMs: 1500,
        drainTimeoutMs: 30_000,
      },
      ["partition-pair", "restart-replicator", "isolate-region"],
    ),
  );
});
