/**
 * A shard compacts its log by size as well as by entry count, and a follower that fell behind the
 * compacted log catches up by a snapshot its leader builds from the applied state.
 *
 * Large entries (a big AddBatch is one entry per shard) never reached snapshotEveryEntries, so a
 * 10 M-counter fill kept its whole log in memory and on disk. Now a shard compacts once 8 MiB were
 * applied since the last compaction, keeping at most 4 MiB of tail.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import { eventually, TestCluster } from "../support/cluster.js";
import { RawNodeClient } from "../support/raw-client.js";

const OPS_PER_BATCH = 5000;
/** ~200-byte keys: a batch is one entry of about 1 MiB. */
const keyOf = (batch: number, i: number) => `${"compaction/".repeat(18)}${batch}-${i}`;

async function metric(cluster: TestCluster, nodeId: number, name: string): Promise<number> {
  const text = await (await fetch(`${cluster.opsUrl(nodeId)}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const row = text.split("\n").find((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));
  if (row === undefined) throw new Error(`no ${name} in node ${nodeId}'s metrics`);
  return Number(row.slice(row.lastIndexOf(" ") + 1));
}

describe("log compaction by size", () => {
  let cluster: TestCluster;
  let client: TallyClient;

  beforeAll(async () => {
    // The default snapshotEveryEntries (10,000): only the size rule can compact in this test.
    cluster = await TestCluster.start({ nodes: 3, shards: 1, metrics: true });
    client = new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 20_000 });
    await client.connect();
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await cluster?.destroy();
  });

  const write = async (from: number, to: number) => {
    for (let b = from; b < to; b++) await client.addBatch(Array.from({ length: OPS_PER_BATCH }, (_, i) => ({ key: keyOf(b, i), delta: BigInt(b + 1) })));
  };

  it("every replica compacts after ~8 MiB of entries; a follower behind the tail catches up by a built snapshot, exactly", async () => {
    await write(0, 20);
    for (const id of [1, 2, 3]) await eventually(async () => ((await metric(cluster, id, "tally_snapshots_taken_total")) >= 2 ? true : undefined), 20_000, `node ${id} compacted twice`);

    // Node 3 misses more than the 4 MiB tail, then comes back.
    await cluster.kill(3);
    await write(20, 32);
    cluster.startNode(3);
    const three = new RawNodeClient(cluster.config.nodes.find((n) => n.id === 3)!.client);
    try {
      const stale = async (keys: string[]) =>
        (await three.call("getMany", { keys: keys.map((k) => Buffer.from(k)), consistency: "STALE", shardId: 1 }, 10_000)).values.map((v: { value: string }) => String(v.value));
      await eventually(async () => ((await stale([keyOf(31, OPS_PER_BATCH - 1)]).catch(() => [""]))[0] === "32" ? true : undefined), 60_000, "node 3 caught up");
      expect(await metric(cluster, 3, "tally_snapshots_installed_total")).toBeGreaterThanOrEqual(1);
      const built = await Promise.all([1, 2].map((id) => metric(cluster, id, "tally_snapshots_built_total")));
      expect(built[0]! + built[1]!).toBeGreaterThanOrEqual(1);
      // Every count through node 3 alone: from before its kill, and from while it was down.
      for (const b of [0, 7, 19, 20, 26, 31]) {
        const keys = Array.from({ length: OPS_PER_BATCH }, (_, i) => keyOf(b, i));
        const values = await stale(keys);
        expect(values.every((v: string) => v === String(b + 1)), `batch ${b} through node 3`).toBe(true);
      }
    } finally {
      three.close();
    }
    cluster.assertNoUnexpectedExit();
  }, 240_000);
});
