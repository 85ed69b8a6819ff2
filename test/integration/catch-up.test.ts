/**
 * A replica catching up by log applies the backlog in bounded steps, not in one driver iteration.
 *
 * Found by bench/placement.ts: a learner catching up over a shard of 1,000,000 counters applied
 * ~760,000 of them in one iteration (Raft handed it up to 64 MiB of committed entries per Ready),
 * holding its event loop for 3-4 s on an idle machine and over 10 s on a loaded one; its
 * heartbeats stopped, and the placement controller aborted the move with "target node 4 died".
 * Each Ready now carries at most limits.maxSizePerMsgBytes of committed entries (at least one
 * entry), so one iteration's apply is bounded; tally_apply_bytes_per_iteration_max shows it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import { eventually, TestCluster } from "../support/cluster.js";

const MAX_SIZE_PER_MSG_BYTES = 64 * 1024;
const BATCHES = 120;
const ADDS_PER_BATCH = 500;

interface MapReply {
  shards: Array<{ shardId: number; voters: string[]; learners: string[] }>;
  operations: Array<{ id: string; state: string; step: string }>;
}

async function metric(cluster: TestCluster, nodeId: number, name: string): Promise<number> {
  const text = await (await fetch(`${cluster.opsUrl(nodeId)}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const row = text.split("\n").find((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));
  if (row === undefined) throw new Error(`no ${name} in node ${nodeId}'s metrics`);
  return Number(row.slice(row.lastIndexOf(" ") + 1));
}

describe("catch-up by log", () => {
  let cluster: TestCluster;
  let client: TallyClient;

  beforeAll(async () => {
    cluster = await TestCluster.start({
      nodes: 3,
      shards: 1,
      metrics: true,
      // No snapshot is taken, so the new replica must replay the whole log.
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

  it("a learner replaying a log of many entries applies at most limits.maxSizePerMsgBytes (plus one entry) per iteration", async () => {
    // 500 adds of these keys make an entry of about 12 KB, well under MAX_SIZE_PER_MSG_BYTES; the
    // whole log is over ten times it.
    for (let b = 0; b < BATCHES; b++) {
      const ops = Array.from({ length: ADDS_PER_BATCH }, (_, i) => ({ key: `catch-up-${b * ADDS_PER_BATCH + i}`, delta: 1n }));
      await client.addBatch(ops);
    }

    const four = await cluster.addNode("z4");
    cluster.startNode(four);
    const map = () => client.admin<MapReply>("ClusterMap", {}, { deadlineMs: 5000 });
    const shard = await eventually(async () => {
      const m = await map();
      return m.shards[0]?.voters.length === 3 ? m.shards[0] : undefined;
    }, 30_000, "the shard in the map");
    await eventually(async () => (await client.admin("ShardMove", { shardId: shard.shardId, fromNode: shard.voters[0], toNode: String(four) }), true), 30_000, "node 4 accepted as a move target");
    // ClusterMap answers from the local copy of whichever node the client asks, and the nodes apply
    // the metadata log at their own pace: read the voters from the same reply that shows the move done.
    const ended = await eventually(async () => {
      const m = await map();
      const last = m.operations.at(-1);
      return last !== undefined && last.state !== "running" ? { op: last, voters: m.shards[0]!.voters } : undefined;
    }, 120_000, "the move to end");
    expect(ended.op.state, ended.op.step).toBe("done");

    const applied = await metric(cluster, four, "tally_apply_bytes_per_iteration_max");
    expect(applied).toBeGreaterThan(0);
    // At most the bound plus the one entry that crosses it (an entry is far smaller than the bound).
    expect(applied).toBeLessThanOrEqual(2 * MAX_SIZE_PER_MSG_BYTES);
    // It replayed the log (the leader may fold client batches that meet into one entry) rather than installing a snapshot of the state.
    expect(await metric(cluster, four, "tally_raft_entries_applied_total")).toBeGreaterThanOrEqual(BATCHES / 4);
    expect(await metric(cluster, four, "tally_snapshots_installed_total")).toBeLessThanOrEqual(1); // the empty bootstrap one
    expect(ended.voters).toContain(String(four));
    for (const i of [0, 1, BATCHES * ADDS_PER_BATCH - 1]) expect((await client.get(`catch-up-${i}`)).value).toBe(1n);
    cluster.assertNoUnexpectedExit();
  }, 240_000);
});
