/**
 * The container backend (`npm run chaos:container`; needs scripts/docker-up.sh's daemon). First
 * that each fault really happens: a one-way cut and an isolation move leadership away, a frozen
 * leader is replaced, kill -9 of every node and `docker start` keep the data, a clock-skewed
 * restart comes back, a node that dies by itself is noticed. Then a short chaos run whose history must check out valid, and one against
 * the planted ack-before-commit bug that must not (else this harness has gone blind).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import { eventually } from "../support/cluster.js";
import { linksBetween } from "./backend.js";
import { ContainerCluster } from "./container-cluster.js";
import { PLANTED_BUG_RUN, runChaos } from "./run.js";

const LEADER_CHANGE_TIMEOUT_MS = 15_000;

async function newLeader(cluster: ContainerCluster, oldLeader: number): Promise<number> {
  return eventually(
    async () => {
      const leader = await cluster.leaderOf(1);
      return leader !== undefined && leader !== oldLeader ? leader : undefined;
    },
    LEADER_CHANGE_TIMEOUT_MS,
    `a leader of shard 1 other than ${oldLeader}`,
  );
}

describe("chaos (container backend)", () => {
  it("partitions, pauses, kills and restarts take effect; data survives", async () => {
    const cluster = await ContainerCluster.start({ nodes: 3, shards: 1, seed: 11 });
    const client = new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 20_000 });
    try {
      expect((await client.add("survivor", 5n)).value).toBe(5n);
      const first = (await cluster.leaderOf(1))!;
      const others = cluster.nodeIds.filter((id) => id !== first);

      // One-way: the leader's messages stop reaching the followers, so they elect someone else.
      await cluster.cutLinks(others.map((id) => [first, id] as const));
      const second = await newLeader(cluster, first);
      await cluster.healNetwork();
      await cluster.waitReady(30_000);

      await cluster.cutLinks(
        linksBetween(
          [second],
          cluster.nodeIds.filter((id) => id !== second),
        ),
      );
      const third = await newLeader(cluster, second);
      await cluster.healNetwork();
      await cluster.waitReady(30_000);

      await cluster.pause(third);
      expect(cluster.isPaused(third)).toBe(true);
      await newLeader(cluster, third);
      await cluster.resume(third);
      await cluster.waitReady(30_000);

      expect((await client.add("survivor", 2n)).value).toBe(7n);
      for (const id of cluster.nodeIds) await cluster.kill(id);
      expect(cluster.nodeIds.some((id) => cluster.isRunning(id))).toBe(false);
      for (const id of cluster.nodeIds) await cluster.startNode(id);
      await cluster.kill(1);
      await cluster.startNode(1, 1500);
      expect(cluster.clockOffsetOf(1)).toBe(1500);
      // A tallyd that dies behind the harness's back (as a crash would) is noticed, then restarted.
      await promisify(execFile)("docker", ["kill", `${cluster.runId}-n2`], { timeout: 30_000 });
      const died = await eventually(
        async () => ((await cluster.syncState()).length > 0 ? cluster.nodeIds.filter((id) => !cluster.isRunning(id)) : undefined),
        10_000,
        "n2 seen dead",
      );
      expect(died).toEqual([2]);
      await cluster.startNode(2);
      await cluster.waitReady(60_000);
      expect((await client.get("survivor")).value).toBe(7n);
    } finally {
      await client.close();
      await cluster.destroy();
    }
  });

  it("a short run with kill -9, docker pause, partitions, clock skew and jumps, and a full disk is valid", async () => {
    const seed = Number(process.env.CHAOS_SEED ?? 77);
    const run = await runChaos({
      backend: "container",
      nodes: 3,
      timeS: 45,
      rate: 50,
      keys: 4,
      readRatio: 0.3,
      nemeses: [
        "kill",
        "kill-leader",
        "pause",
        "partition-leader",
        "partition-halves",
        "partition-one-way",
        "clock-skew",
        "clock-jump",
        "disk",
      ],
      seed,
      concurrency: 5,
    });
    const summary = `seed ${seed}, report ${run.dir}/report.html\n${run.result.problems.join("\n")}`;
    expect(run.faults.length, summary).toBeGreaterThanOrEqual(5);
    expect(
      run.faults.filter((fault) => fault.detail?.startsWith("nemesis error")),
      summary,
    ).toEqual([]);
    expect(run.result.counts.ok, summary).toBeGreaterThan(400);
    expect(run.result.valid, summary).toBe(true);
  });

  it("rejects the history of a node with the planted ack-before-commit bug", async () => {
    const run = await runChaos({ ...PLANTED_BUG_RUN, backend: "container" });
    expect(run.faults.length).toBeGreaterThanOrEqual(2);
    expect(run.result.counts.ok).toBeGreaterThan(100);
    expect(run.result.valid, run.result.problems.join("\n")).toBe(false);
  });
});
