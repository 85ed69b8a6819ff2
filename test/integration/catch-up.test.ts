/**
 * How a replica that is behind catches up, on real processes.
 *
 * By log: a replica replaying a long backlog applies it in bounded steps, not in one driver
 * iteration. Found by bench/placement.ts: a learner catching up over a shard of 1,000,000 counters
 * applied ~760,000 of them in one iteration (Raft handed it up to 64 MiB of committed entries per
 * Ready), holding its event loop for 3-4 s on an idle machine and over 10 s on a loaded one; its
 * heartbeats stopped, and the placement controller aborted the move with "target node 4 died".
 * Each Ready now carries at most limits.maxSizePerMsgBytes of committed entries (at least one
 * entry), so one iteration's apply is bounded; tally_apply_bytes_per_iteration_max shows it.
 *
 * By snapshot: a new replica (its log starts before the shard's first entry) gets the leader's
 * snapshot: its newest checkpoint streamed from its file (core/snapshot-exchange.ts), or before the
 * shard's first checkpoint the bootstrap snapshot, and then the log.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import { eventually, TestCluster } from "../support/cluster.js";
import { RawNodeClient } from "../support/raw-client.js";

const MAX_SIZE_PER_MSG_BYTES = 64 * 1024;
const BATCHES = 120;
const ADDS_PER_BATCH = 500;

interface MapReply {
  shards: Array<{ shardId: number; voters: string[]; learners: string[] }>;
  operations: Array<{ id: string; state: string; step: string }>;
}

/** STALE values of `keys` (all in shard 1) as this one node has them; "" where it cannot answer yet. */
async function staleValues(node: RawNodeClient, keys: string[]): Promise<string[]> {
  const reply = await node
    .call("getMany", { keys: keys.map((k) => Buffer.from(k)), consistency: "STALE", shardId: 1 })
    .catch(() => undefined);
  return reply === undefined ? keys.map(() => "") : reply.values.map((v: { value: string }) => String(v.value));
}

describe("catch-up", () => {
  let cluster: TestCluster;
  let client: TallyClient;

  beforeAll(async () => {
    cluster = await TestCluster.start({
      nodes: 3,
      shards: 1,
      metrics: true,
      // No compaction by entry count (and the log stays far below the 8 MiB size rule): a follower that was down replays it all.
      snapshotEveryEntries: 1_000_000,
      limits: { maxSizePerMsgBytes: MAX_SIZE_PER_MSG_BYTES },
      placement: { autoRebalance: false, heartbeatMs: 100, downAfterMs: 30_000 },
    });
    client = new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 20_000 });
    await client.connect();
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await cluster?.destroy();
  });

  const addAll = async (prefix: string) => {
    for (let b = 0; b < BATCHES; b++) {
      const ops = Array.from({ length: ADDS_PER_BATCH }, (_, i) => ({ key: `${prefix}-${b * ADDS_PER_BATCH + i}`, delta: 1n }));
      await client.addBatch(ops);
    }
  };

  it("a follower replaying a log of many entries applies at most limits.maxSizePerMsgBytes (plus one entry) per iteration", async () => {
    // Node 3 misses every batch; nothing is compacted (snapshotEveryEntries is huge), so it catches up by log.
    await cluster.kill(3);
    // 500 adds of these keys make an entry of about 12 KB, well under MAX_SIZE_PER_MSG_BYTES; the
    // whole backlog is over ten times it.
    await addAll("catch-up");
    cluster.startNode(3);
    const three = new RawNodeClient(cluster.config.nodes.find((n) => n.id === 3)!.client);
    try {
      await eventually(
        async () => ((await staleValues(three, [`catch-up-${BATCHES * ADDS_PER_BATCH - 1}`]))[0] === "1" ? true : undefined),
        60_000,
        "node 3 caught up",
      );
    } finally {
      three.close();
    }
    const applied = await cluster.metric(3, "tally_apply_bytes_per_iteration_max");
    expect(applied).toBeGreaterThan(0);
    // At most the bound plus the one entry that crosses it (an entry is far smaller than the bound).
    expect(applied).toBeLessThanOrEqual(2 * MAX_SIZE_PER_MSG_BYTES);
    // It replayed the log (the leader may fold client batches that meet into one entry) rather than installing a snapshot.
    expect(await cluster.metric(3, "tally_raft_entries_applied_total")).toBeGreaterThanOrEqual(BATCHES / 4);
    expect(await cluster.metric(3, "tally_snapshots_installed_total")).toBe(0);
    cluster.assertNoUnexpectedExit();
  }, 240_000);

  it("a new replica gets a snapshot from the leader, and serves every count exactly", async () => {
    const four = await cluster.addNode("z4");
    cluster.startNode(four);
    const map = () => client.admin<MapReply>("ClusterMap", {}, { deadlineMs: 5000 });
    const shard = await eventually(
      async () => {
        const m = await map();
        return m.shards[0]?.voters.length === 3 ? m.shards[0] : undefined;
      },
      30_000,
      "the shard in the map",
    );
    await eventually(
      async () => (await client.admin("ShardMove", { shardId: shard.shardId, fromNode: shard.voters[0], toNode: String(four) }), true),
      30_000,
      "node 4 accepted as a move target",
    );
    // ClusterMap answers from the local copy of whichever node the client asks, and the nodes apply
    // the metadata log at their own pace: read the voters from the same reply that shows the move done.
    const ended = await eventually(
      async () => {
        const m = await map();
        const last = m.operations.at(-1);
        return last !== undefined && last.state !== "running" ? { op: last, voters: m.shards[0]!.voters } : undefined;
      },
      120_000,
      "the move to end",
    );
    expect(ended.op.state, ended.op.step).toBe("done");
    expect(ended.voters).toContain(String(four));
    // Its log started before the shard's first entry: it installed a snapshot.
    expect(await cluster.metric(four, "tally_snapshots_installed_total")).toBeGreaterThanOrEqual(1);
    // Every count, read through node 4 alone.
    const keys = Array.from({ length: BATCHES * ADDS_PER_BATCH }, (_, i) => `catch-up-${i}`);
    const node4 = new RawNodeClient(cluster.config.nodes.find((n) => n.id === four)!.client);
    try {
      await eventually(
        async () => ((await staleValues(node4, [keys.at(-1)!]))[0] === "1" ? true : undefined),
        30_000,
        "node 4 applied the last batch",
      );
      for (let i = 0; i < keys.length; i += 5000) {
        const values = await staleValues(node4, keys.slice(i, i + 5000));
        expect(
          values.every((value) => value === "1"),
          `keys ${i}..${i + 4999} through node 4`,
        ).toBe(true);
      }
    } finally {
      node4.close();
    }
    cluster.assertNoUnexpectedExit();
  }, 240_000);
});
