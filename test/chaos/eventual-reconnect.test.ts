/**
 * Found by the eventual chaos run (issue 21): a flusher whose shard leader was unreachable kept
 * its connection to that leader in gRPC's default reconnect backoff (1 s growing to 120 s), so
 * after a kill-all, or a partition of a few seconds, its buffered adds waited many seconds (up to
 * minutes) after the leader was back. The flusher's channels now reconnect like the client's
 * (100 ms growing to 1 s).
 *
 * Here node 1 is cut from node 2 (peer and client ports, both ways: the client ports are behind
 * proxies) while node 2 leads the only shard: node 1 accepts an eventual add and its flusher keeps
 * dialing node 2's client port. The proxy counts those dials: with gRPC's default backoff 4 in 15 s
 * (at most 7), with the fix about 20. After the heal the add must count exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import { eventually } from "../support/cluster.js";
import { linksBetween } from "./backend.js";
import { metricOf } from "./eventual-run.js";
import { ProcessCluster } from "./process-cluster.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const CUT_MS = 15_000;

const bufferAdds = (cluster: ProcessCluster, id: number): Promise<number | undefined> =>
  metricOf(cluster, id, "tally_eventual_buffer_adds");
const until = <T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> => eventually(probe, timeoutMs, what);

describe("eventual flusher: reconnecting to a shard leader that was unreachable", () => {
  let cluster: ProcessCluster;
  let client: TallyClient;

  beforeAll(async () => {
    cluster = await ProcessCluster.start({ nodes: 3, shards: 1, seed: 7, metrics: true, clientProxies: true });
    client = new TallyClient({ endpoints: [cluster.config.nodes[0]!.client], deadlineMs: 10_000 });
  }, 90_000);

  afterAll(async () => {
    await client?.close();
    await cluster?.destroy();
  });

  it("keeps dialing the leader while cut from it, and flushes once healed", { timeout: 90_000 }, async () => {
    await until("node 2 leads shard 1", 20_000, async () => {
      if ((await cluster.leaderOf(1)) === 2) return true;
      await cluster.transferLeader(1, 2);
      await sleep(300);
      return undefined;
    });
    // Node 1's flusher has a session and a connection to node 2.
    await client.add("warm", 1n, { mode: "eventual" });
    expect((await client.getEventual("warm", { consistency: "linearizable" })).committed).toBe(1n);

    await cluster.cutLinks(linksBetween([1], [2]));
    await client.add("k", 1n, { mode: "eventual" });
    const proxy = cluster.clientMesh!.proxies.get(2)!;
    const refusedBefore = proxy.connectionsRefused;
    await sleep(CUT_MS);
    const dials = proxy.connectionsRefused - refusedBefore;
    console.log(`node 1 dialed node 2's client port ${dials} times in ${CUT_MS} ms while cut from it`);
    expect(await bufferAdds(cluster, 1), "node 1 could not flush while cut from the leader").toBe(1);
    await cluster.healNetwork();

    await until("node 1's buffer drained", 30_000, async () => ((await bufferAdds(cluster, 1)) === 0 ? true : undefined));
    expect((await client.get("k")).value).toBe(1n);
    // gRPC's default backoff (1 s x 1.6 per failure) makes at most 7 dials in 15 s (about 0, 1,
    // 2.6, 5.2 and 9.3 s, jittered); with the fix about one a second.
    expect(dials, `node 1 dialed node 2's client port ${dials} times in ${CUT_MS} ms`).toBeGreaterThanOrEqual(9);
  });
});
