/**
 * Found by the eventual chaos run (issue 21): when a shard's leader was paused (SIGSTOP) or cut
 * off, the other nodes' flushes in flight to it waited for their whole deadline
 * (limits.requestTimeoutMs, 5 s by default) although a new leader took over within about an
 * election timeout; every add they carried stayed invisible meanwhile. The flusher's calls now
 * watch this node's replica of the shard and are abandoned (outcome unknown, re-sent under the
 * same seq, which the shard's session dedupes) once it learns of another leader.
 *
 * Here the deadline is 30 s and node 2, the leader of the only shard, is paused for good while
 * node 1 holds an add: the add must become visible while node 2 is still paused, and count once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import { eventually } from "../support/cluster.js";
import { metricOf } from "./eventual-run.js";
import { ProcessCluster } from "./process-cluster.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("eventual flusher: the shard's leader paused while a flush is in flight to it", () => {
  let cluster: ProcessCluster;
  const clients: TallyClient[] = [];

  beforeAll(async () => {
    cluster = await ProcessCluster.start({ nodes: 3, shards: 1, seed: 5, metrics: true, requestTimeoutMs: 30_000 });
  }, 90_000);

  afterAll(async () => {
    for (const client of clients) await client.close();
    await cluster?.resume(2).catch(() => undefined);
    await cluster?.destroy();
  });

  it("re-sends the flush to the new leader instead of waiting out the deadline", { timeout: 90_000 }, async () => {
    const [one, , three] = cluster.config.nodes.map((n) => n.client);
    const writer = new TallyClient({ endpoints: [one!], deadlineMs: 10_000 });
    const reader = new TallyClient({ endpoints: [three!], deadlineMs: 5_000 });
    clients.push(writer, reader);
    await eventually(
      async () => {
        if ((await cluster.leaderOf(1)) === 2) return true;
        await cluster.transferLeader(1, 2);
        await sleep(300);
        return undefined;
      },
      20_000,
      "node 2 leads shard 1",
    );
    // Node 1's flusher has its session and its connection to node 2.
    expect((await writer.add("warm", 1n, { mode: "eventual" })).nodeId).toBe(1);
    expect((await writer.getEventual("warm", { consistency: "linearizable" })).committed).toBe(1n);

    await cluster.pause(2);
    const pausedAt = performance.now();
    expect((await writer.add("k", 1n, { mode: "eventual" })).nodeId).toBe(1);
    const visibleAfterMs = await eventually(
      async () => ((await reader.get("k").catch(() => undefined))?.value === 1n ? performance.now() - pausedAt : undefined),
      20_000,
      "the add visible while node 2 is paused",
    );
    console.log(`visible ${visibleAfterMs.toFixed(0)} ms after the leader was paused (the flush deadline is 30 s)`);
    expect(cluster.isPaused(2)).toBe(true);

    await cluster.resume(2);
    await eventually(
      async () => ((await metricOf(cluster, 1, "tally_eventual_buffer_adds")) === 0 ? true : undefined),
      30_000,
      "node 1's buffer drained",
    );
    expect((await reader.get("k")).value).toBe(1n);
    expect((await reader.get("warm")).value).toBe(1n);
  });
});
