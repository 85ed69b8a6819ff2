/**
 * Eventual counters end to end on real tallyd processes (docs/eventual.md): adds through every node,
 * one node SIGKILLed mid-stream and restarted, and after the buffers drain every key's linearizable
 * value equals the sum of the acknowledged adds exactly (no loss, no double count). Probe keys
 * measure ack -> visible in a linearizable read; the distribution is printed (a benchmark figure,
 * not asserted: the machine is shared).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import { eventually, TestCluster } from "../support/cluster.js";

const KEYS = 16;
const WRITERS_PER_NODE = 6;
const RUN_MS = 6_000;
const VICTIM = 2;
const PROBES = 400;
const PROBERS = 8;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

describe("eventual counters (real processes)", () => {
  let cluster: TestCluster;
  const clients: TallyClient[] = [];

  beforeAll(async () => {
    cluster = await TestCluster.start({
      nodes: 3,
      shards: 4,
      metrics: true,
      placement: { autoRebalance: false, heartbeatMs: 200, downAfterMs: 30_000 },
    });
    // One client per node: its home node is its only configured endpoint (the map adds the rest).
    for (const node of cluster.config.nodes) clients.push(new TallyClient({ endpoints: [node.client], deadlineMs: 20_000 }));
    for (const client of clients) await client.connect();
  }, 90_000);

  afterAll(async () => {
    for (const client of clients) await client.close();
    await cluster?.destroy();
  });

  it("refuses bad input and buffers nothing", async () => {
    const client = clients[0]!;
    await expect(client.add("bad:floor", 1n, { mode: "eventual", floor: 0n })).rejects.toThrow(/no floor/);
    await expect(client.addEventual([])).rejects.toThrow(/at least one/);
    await expect(client.addEventual([{ key: "x".repeat(300), delta: 1n }])).rejects.toThrow(/must be 1/);
    const read = await client.getEventual("bad:floor", { consistency: "linearizable", includePending: true });
    expect(read.value).toBe(0n);
    expect(read.pendingDelta).toBe(0n);
  });

  it("counts every acknowledged add exactly once across a SIGKILL and restart", async () => {
    const acked = new Map<string, bigint>();
    const errors: string[] = [];
    let ackedAdds = 0;
    let stop = false;
    const writer = async (client: TallyClient, seed: number) => {
      let n = seed;
      while (!stop) {
        n = (n * 1103515245 + 12345) % 2 ** 31;
        const key = `ev:${n % KEYS}`;
        const delta = BigInt((n % 5) + 1);
        try {
          await client.add(key, delta, { mode: "eventual" });
          acked.set(key, (acked.get(key) ?? 0n) + delta);
          ackedAdds++;
        } catch (error) {
          errors.push(`${(error as Error).name}: ${(error as Error).message}`);
        }
      }
    };
    const visibility: number[] = [];
    const prober = async (first: number) => {
      for (let i = first; i < PROBES && !stop; i += PROBERS) {
        const client = clients[i % clients.length]!;
        const key = `probe:${i}`;
        try {
          await client.add(key, 1n, { mode: "eventual" });
        } catch {
          continue;
        }
        const ackedAt = performance.now();
        // Polled from another node than the one that buffered it: what any reader sees.
        const reader = clients[(i + 1) % clients.length]!;
        while (performance.now() - ackedAt < 10_000) {
          const read = await reader.get(key).catch(() => undefined);
          if (read !== undefined && read.value === 1n) {
            visibility.push(performance.now() - ackedAt);
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
    };
    const writers = clients.flatMap((client, c) => Array.from({ length: WRITERS_PER_NODE }, (_, w) => writer(client, c * 100 + w + 1)));
    const probing = Promise.all(Array.from({ length: PROBERS }, (_, first) => prober(first)));
    await new Promise((resolve) => setTimeout(resolve, RUN_MS / 3));
    await cluster.kill(VICTIM);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    cluster.startNode(VICTIM);
    await new Promise((resolve) => setTimeout(resolve, RUN_MS / 2));
    stop = true;
    await Promise.all([...writers, probing]);

    // Drained: no node holds an unflushed add.
    await eventually(
      async () => {
        for (const node of cluster.config.nodes) if ((await cluster.metric(node.id, "tally_eventual_buffer_adds")) !== 0) return false;
        return true;
      },
      30_000,
      "every node's eventual buffer drained",
    );
    const reader = clients[0]!;
    for (const [key, sum] of acked) expect((await reader.get(key, { deadlineMs: 20_000 })).value, key).toBe(sum);
    for (let i = 0; i < KEYS; i++) if (!acked.has(`ev:${i}`)) expect((await reader.get(`ev:${i}`)).value).toBe(0n);
    // A linearizable eventual read through each node agrees, with nothing pending.
    for (const client of clients) {
      const read = await client.getEventual("ev:1", { consistency: "linearizable", includePending: true });
      expect(read.value).toBe(acked.get("ev:1") ?? 0n);
      expect(read.stalenessMs).toBe(0);
    }
    expect(errors, errors.slice(0, 5).join("\n")).toEqual([]);

    const sorted = [...visibility].sort((a, b) => a - b);
    const within1s = sorted.filter((ms) => ms <= 1000).length / Math.max(1, sorted.length);
    process.stdout.write(
      `eventual: ${ackedAdds} acknowledged adds over ${KEYS} keys through 3 nodes, node ${VICTIM} SIGKILLed and restarted; ` +
        `ack -> visible (linearizable read, ${sorted.length} probes): p50 ${percentile(sorted, 50).toFixed(0)} ms, ` +
        `p90 ${percentile(sorted, 90).toFixed(0)} ms, p99 ${percentile(sorted, 99).toFixed(0)} ms, max ${percentile(sorted, 100).toFixed(0)} ms, ` +
        `${(within1s * 100).toFixed(1)}% within 1 s\n`,
    );
  }, 120_000);

  it("client-side aggregation sums in the process and flushes exactly once, exact or eventual", async () => {
    const exact = clients[0]!.aggregator({ flushIntervalMs: 20 });
    const eventual = clients[1]!.aggregator({ flushIntervalMs: 20, mode: "eventual" });
    for (let i = 0; i < 1000; i++) {
      exact.add(`agg:${i % 5}`);
      eventual.add(`agg:${i % 5}`, 2n);
      if (i % 100 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await exact.close();
    await eventual.close();
    expect(exact.stats.lostAdds + eventual.stats.lostAdds).toBe(0);
    for (let k = 0; k < 5; k++) {
      // Linearizable through the node that buffered the eventual part: after its flush.
      const read = await clients[1]!.getEventual(`agg:${k}`, { consistency: "linearizable" });
      expect(read.committed).toBe(200n + 400n);
    }
  });

  it("a linearizable eventual read waits for this node's pending flush of the key", async () => {
    const client = clients[2]!;
    await client.add("ev:lin", 7n, { mode: "eventual" });
    const read = await client.getEventual("ev:lin", { consistency: "linearizable" });
    expect(read.committed).toBe(7n);
    expect(read.pendingDelta).toBe(0n);
  });
});
