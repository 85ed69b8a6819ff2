/**
 * Restart from checkpoints, on real processes (core/checkpoints.ts, core/groups.ts restoreShardFromDisk):
 * - a node SIGKILLed while it writes checkpoints comes back from its newest one plus its log, exactly;
 * - a newer checkpoint file that does not read back whole (a torn write, bit rot) is skipped for
 *   the previous one, with a warning;
 * - when the recorded checkpoint itself is damaged the node refuses to start and says what to do.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import { eventually, TestCluster } from "../support/cluster.js";
import { RawNodeClient } from "../support/raw-client.js";

const KEYS = 40;
const keyOf = (i: number) => `ckpt-${i}`;

function checkpointFiles(cluster: TestCluster, id: number, shard = 1): number[] {
  const dir = join(cluster.config.nodes.find((n) => n.id === id)!.dataDir, "checkpoints", `g${shard}`);
  return readdirSync(dir)
    .filter((name) => name.endsWith(".ckpt"))
    .map((name) => Number(name.slice(0, -5)))
    .sort((a, b) => a - b);
}

function checkpointPath(cluster: TestCluster, id: number, index: number, shard = 1): string {
  return join(cluster.config.nodes.find((n) => n.id === id)!.dataDir, "checkpoints", `g${shard}`, `${index}.ckpt`);
}

/** STALE values through node `id` alone ("" where it cannot answer yet). */
async function staleValues(cluster: TestCluster, id: number): Promise<string[]> {
  const node = new RawNodeClient(cluster.config.nodes.find((n) => n.id === id)!.client);
  try {
    const keys = Array.from({ length: KEYS }, (_, i) => Buffer.from(keyOf(i)));
    const reply = await node.call("getMany", { keys, consistency: "STALE", shardId: 1 }, 5000).catch(() => undefined);
    return reply === undefined ? keys.map(() => "") : reply.values.map((v: { value: string }) => String(v.value));
  } finally {
    node.close();
  }
}

describe("restart from checkpoints", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.destroy();
    cluster = undefined;
  });

  it("SIGKILL while checkpointing: back from the newest checkpoint plus the log; a torn newer file is skipped", async () => {
    const c = (cluster = await TestCluster.start({ nodes: 3, shards: 1, snapshotEveryEntries: 50 }));
    const client = new TallyClient({ endpoints: c.endpoints(), deadlineMs: 20_000 });
    let round = 0;
    const write = async (rounds: number) => {
      for (let r = 0; r < rounds; r++, round++) for (let i = 0; i < KEYS; i++) await client.add(keyOf(i), 1n);
    };
    try {
      await client.connect();
      await write(5); // 200 single adds: several checkpoints on every replica
      const victim = 3;
      await eventually(async () => (checkpointFiles(c, victim).length > 0 ? true : undefined), 20_000, "node 3 checkpointed");
      await c.kill(victim);
      await write(2);
      // A newer checkpoint that never finished: the newest file, cut short, under a higher index.
      const newest = checkpointFiles(c, victim).at(-1)!;
      const bytes = readFileSync(checkpointPath(c, victim, newest));
      writeFileSync(checkpointPath(c, victim, newest + 1000), bytes.subarray(0, Math.floor(bytes.length / 2)));
      c.startNode(victim);
      const expected = String(round);
      await eventually(
        async () => ((await staleValues(c, victim)).every((v) => v === expected) ? true : undefined),
        30_000,
        "node 3 serves every count after its restart",
      );
      expect(c.logs(victim)).toMatch(/does not read back whole/);
      c.assertNoUnexpectedExit();
    } finally {
      await client.close();
    }
  }, 120_000);

  it("a damaged recorded checkpoint: the node refuses to start and says what to do", async () => {
    const c = (cluster = await TestCluster.start({ nodes: 3, shards: 1, snapshotEveryEntries: 50 }));
    const client = new TallyClient({ endpoints: c.endpoints(), deadlineMs: 20_000 });
    try {
      await client.connect();
      for (let r = 0; r < 4; r++) for (let i = 0; i < KEYS; i++) await client.add(keyOf(i), 1n);
    } finally {
      await client.close();
    }
    const victim = 2;
    await eventually(async () => (checkpointFiles(c, victim).length > 0 ? true : undefined), 20_000, "node 2 checkpointed");
    await c.stop(victim);
    for (const index of checkpointFiles(c, victim)) {
      const path = checkpointPath(c, victim, index);
      const bytes = readFileSync(path);
      bytes[Math.floor(bytes.length / 2)]! ^= 0x20;
      writeFileSync(path, bytes);
    }
    const child = c.startNode(victim, { expectExit: true });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).not.toBe(0);
    expect(c.logs(victim)).toMatch(/no readable checkpoint at or above index \d+/);
  }, 120_000);
});
