/**
 * Placement costs (issue 5), on 4 real tallyd processes (fsync on), one shard on nodes 1-3:
 *   - the time to move a replica of a shard holding N counters to node 4 (learner, snapshot,
 *     catch up, joint promote/remove), driven by the placement controller;
 *   - what clients see meanwhile: the longest gap between two acknowledged adds of a closed loop
 *     (8 in flight) during a leader transfer and during the move;
 *   - the cost of one routing-map refresh (Routes RPC) as the client library does it.
 *
 *   npx tsx bench/placement.ts [--counters 1000000] [--json out.json]
 */
import { writeFileSync } from "node:fs";
import { TallyClient } from "../src/client/index.js";
import { ensureBundles } from "../bin/bundle.js";
import { TestCluster } from "../test/support/cluster.js";
import { longestGapMs, parseArgs } from "./lib.js";

const args = parseArgs(process.argv.slice(2));
const counterCount = Number(args.option("counters", "1000000"));
const jsonOut = args.option("json", "");

interface MapReply {
  metaLeaderId: string;
  shards: Array<{ shardId: number; voters: string[]; learners: string[]; votersOutgoing: string[]; leaderId: string }>;
  operations: Array<{ id: string; state: string; step: string }>;
}

/** Adds in a closed loop; reports the longest gap between acknowledgements inside a window. */
class AckGaps {
  private readonly acks: number[] = [];
  private running = true;
  private readonly loops: Promise<void>[] = [];
  constructor(client: TallyClient, concurrency: number) {
    for (let w = 0; w < concurrency; w++) {
      this.loops.push(
        (async () => {
          let i = 0;
          while (this.running) {
            try {
              await client.add(`gap-${w}-${i++ % 100}`, 1n, { deadlineMs: 15_000 });
              this.acks.push(performance.now());
            } catch {
              // counted as a gap
            }
          }
        })(),
      );
    }
  }
  maxGapMs(fromMs: number, toMs: number): number {
    return longestGapMs(this.acks, fromMs, toMs);
  }
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

ensureBundles(); // the nodes run dist/tallyd.mjs (bin/tallyd.js never builds): rebuild it if src/ is newer
const cluster = await TestCluster.start({
  nodes: 3,
  shards: 1,
  snapshotEveryEntries: 10_000,
  placement: { autoRebalance: false, heartbeatMs: 100, downAfterMs: 30_000, catchUpTimeoutMs: 600_000 },
});
const results: Record<string, number | string> = { counters: counterCount };
try {
  const four = await cluster.addNode("z4");
  cluster.startNode(four);
  const client = new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 60_000 });
  await client.connect();
  const map = () => client.admin<MapReply>("ClusterMap", {}, { deadlineMs: 5000 });
  await until("node 4 in the map", 30_000, async () => ((await map()).shards.length > 0 ? true : undefined));

  const fillStart = performance.now();
  for (let start = 0; start < counterCount; start += 10_000) {
    const ops = [];
    for (let i = start; i < Math.min(counterCount, start + 10_000); i++) ops.push({ key: `c${i}`, delta: 1n });
    await client.addBatch(ops);
  }
  results.fillSeconds = Number(((performance.now() - fillStart) / 1000).toFixed(1));
  console.log(`filled ${counterCount} counters in ${results.fillSeconds} s`);

  const refreshes = 200;
  const refreshStart = performance.now();
  for (let i = 0; i < refreshes; i++) await client.routes();
  results.routesRefreshMs = Number(((performance.now() - refreshStart) / refreshes).toFixed(3));

  const gaps = new AckGaps(client, 8);
  await new Promise((r) => setTimeout(r, 1000));

  // Leader transfer.
  const leaderOf = async () => until("a leader", 10_000, async () => (await client.routes()).shards[0]!.leaderId);
  const leader = await leaderOf();
  let shard = (await map()).shards[0]!;
  const to = shard.voters.find((v) => v !== leader)!;
  const transferFrom = performance.now();
  await client.admin(
    "TransferLeader",
    { shardId: 1, toNode: to },
    { address: cluster.config.nodes.find((n) => String(n.id) === leader)!.client },
  );
  await until("the transfer", 10_000, async () => ((await leaderOf()) === to ? true : undefined));
  await new Promise((r) => setTimeout(r, 1000));
  results.transferUnavailableMs = Number(gaps.maxGapMs(transferFrom, performance.now()).toFixed(1));

  // A move of a follower's replica to node 4.
  shard = (await map()).shards[0]!;
  const from = shard.voters.find((v) => v !== to)!;
  const moveStart = performance.now();
  await client.admin("ShardMove", { shardId: 1, fromNode: from, toNode: String(four) });
  await until("the move", 600_000, async () => {
    const m = await map();
    const op = m.operations.at(-1);
    return op && op.state !== "running" ? op : undefined;
  }).then((op) => {
    if (op.state !== "done") throw new Error(`move ended ${op.state}: ${op.step}`);
  });
  results.moveSeconds = Number(((performance.now() - moveStart) / 1000).toFixed(2));
  results.moveUnavailableMs = Number(gaps.maxGapMs(moveStart, performance.now()).toFixed(1));
  await gaps.stop();
  await client.close();
  console.log(JSON.stringify(results));
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify(results, null, 2));
} finally {
  await cluster.destroy();
}
