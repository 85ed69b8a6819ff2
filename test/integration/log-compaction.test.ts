/**
 * A shard checkpoints and compacts its log by size as well as by entry count, and a follower that
 * fell behind the compacted log catches up by the leader's newest checkpoint, streamed from disk.
 *
 * Large entries (a big AddBatch is one entry per shard) never reached snapshotEveryEntries, so a
 * 10 M-counter fill kept its whole log in memory and on disk. Now a shard checkpoints once 4 MiB
 * (and a quarter of its last checkpoint's size) were applied since the last one, and compacts its
 * log below it, keeping at most 2 MiB of tail (core/checkpoints.ts).
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import { eventually, TestCluster } from "../support/cluster.js";
import { RawNodeClient } from "../support/raw-client.js";

const OPS_PER_BATCH = 5000;
/** ~200-byte keys: a batch is one entry of about 1 MiB. */
const keyOf = (batch: number, i: number) => `${"compaction/".repeat(18)}${batch}-${i}`;

describe("log compaction by size", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.destroy();
    cluster = undefined;
  });

  it("every replica checkpoints after ~4 MiB of entries; a follower behind the tail catches up by a checkpoint, exactly", async () => {
    // The default snapshotEveryEntries (10,000): only the size rule can compact in this test.
    const c = (cluster = await TestCluster.start({ nodes: 3, shards: 1, metrics: true }));
    const client = new TallyClient({ endpoints: c.endpoints(), deadlineMs: 20_000 });
    const write = async (from: number, to: number) => {
      for (let b = from; b < to; b++)
        await client.addBatch(Array.from({ length: OPS_PER_BATCH }, (_, i) => ({ key: keyOf(b, i), delta: BigInt(b + 1) })));
    };
    const three = new RawNodeClient(c.config.nodes.find((n) => n.id === 3)!.client);
    try {
      await client.connect();
      await write(0, 20);
      for (const id of [1, 2, 3])
        await eventually(
          async () => ((await c.metric(id, "tally_snapshots_taken_total")) >= 2 ? true : undefined),
          20_000,
          `node ${id} compacted twice`,
        );

      // Node 3 misses more than the 2 MiB tail, then comes back.
      await c.kill(3);
      await write(20, 32);
      c.startNode(3);
      const stale = async (keys: string[]) =>
        (await three.call("getMany", { keys: keys.map((k) => Buffer.from(k)), consistency: "STALE", shardId: 1 }, 10_000)).values.map(
          (v: { value: string }) => String(v.value),
        );
      await eventually(
        async () => ((await stale([keyOf(31, OPS_PER_BATCH - 1)]).catch(() => [""]))[0] === "32" ? true : undefined),
        60_000,
        "node 3 caught up",
      );
      expect(await c.metric(3, "tally_snapshots_installed_total")).toBeGreaterThanOrEqual(1);
      // The installed snapshot is node 3's checkpoint now: a file under its data dir.
      const files = readdirSync(join(c.config.nodes.find((n) => n.id === 3)!.dataDir, "checkpoints", "g1"));
      expect(files.filter((name) => name.endsWith(".ckpt")).length).toBeGreaterThanOrEqual(1);
      // Every count through node 3 alone: from before its kill, and from while it was down.
      for (const b of [0, 7, 19, 20, 26, 31]) {
        const values = await stale(Array.from({ length: OPS_PER_BATCH }, (_, i) => keyOf(b, i)));
        expect(
          values.every((v: string) => v === String(b + 1)),
          `batch ${b} through node 3`,
        ).toBe(true);
      }
      c.assertNoUnexpectedExit();
    } finally {
      three.close();
      await client.close();
    }
  }, 240_000);
});
