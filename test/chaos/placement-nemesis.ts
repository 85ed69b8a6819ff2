/**
 * The placement nemesis: membership changes and range splits under load, through the same admin
 * API tallyctl uses. With more nodes than replicas it moves a random shard's replica from a random
 * voter to a random node that lacks one (learner, catch-up, joint promote/remove); it also splits a
 * random shard at a random slot (while the cluster has fewer than SPLIT_SHARDS_MAX shards). Each
 * runs for up to the fault window; the next nemesis may start while a move is still catching up,
 * which is the point: moves overlap kills, pauses and partitions in an "all" run.
 */
import { TallyClient } from "../../src/client/index.js";
import type { Prng } from "../../src/util/prng.js";

interface MapReply {
  nodes: Array<{ nodeId: string; state: string }>;
  shards: Array<{ shardId: number; slotStart: number; slotEnd: number; voters: string[]; learners: string[] }>;
  operations: Array<{ id: string; kind: string; shardId: number; state: string; step: string }>;
}

const SPLIT_SHARDS_MAX = 16;

export async function runPlacementNemesis(
  cluster: { endpoints(): string[]; nodeIds: number[] },
  faultMs: number,
  rng: Prng,
): Promise<string> {
  const client = new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: Math.max(3000, faultMs) });
  try {
    const map = await client.admin<MapReply>("ClusterMap", {}, { deadlineMs: 3000 });
    const up = map.nodes.filter((n) => n.state === "up").map((n) => Number(n.nodeId));
    const movable = map.shards.filter((s) => s.learners.length === 0 && up.some((id) => !s.voters.includes(String(id))));
    const doMove = movable.length > 0 && (map.shards.length >= SPLIT_SHARDS_MAX || rng.chance(0.6));
    let started: string;
    if (doMove) {
      const shard = movable[rng.nextInt(movable.length)]!;
      const from = Number(shard.voters[rng.nextInt(shard.voters.length)]);
      const targets = up.filter((id) => !shard.voters.includes(String(id)));
      const to = targets[rng.nextInt(targets.length)]!;
      await client.admin("ShardMove", { shardId: shard.shardId, fromNode: String(from), toNode: String(to) }, { deadlineMs: 3000 });
      started = `move shard ${shard.shardId} ${from}->${to}`;
    } else {
      const wide = map.shards.filter((s) => s.slotEnd - s.slotStart >= 2);
      if (wide.length === 0) return "placement: nothing to split";
      const shard = wide[rng.nextInt(wide.length)]!;
      const at = shard.slotStart + 1 + rng.nextInt(shard.slotEnd - shard.slotStart - 1);
      await client.admin("ShardSplit", { shardId: shard.shardId, atSlot: at }, { deadlineMs: 3000 });
      started = `split shard ${shard.shardId} at slot ${at}`;
    }
    // Hold the window while the operation runs; report how far it got.
    const deadline = performance.now() + faultMs;
    let last = "running";
    while (performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      const now = await client.admin<MapReply>("ClusterMap", {}, { deadlineMs: 2000 }).catch(() => undefined);
      const op = now?.operations.at(-1);
      if (op !== undefined) last = `${op.state}: ${op.step}`;
      if (op !== undefined && op.state !== "running") break;
    }
    return `${started} (${last})`;
  } catch (error) {
    return `placement: not started (${(error as Error).message})`;
  } finally {
    await client.close();
  }
}
