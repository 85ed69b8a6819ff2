import type { ClusterMapReply } from "../../src/cli/format-map.js";

/** One line per part of a partition map, for a wait's "last seen": shards, then the latest operations. */
export function mapSummary(map: ClusterMapReply | undefined): string {
  if (map === undefined) return "no map read yet";
  const shards = map.shards.map(
    (s) =>
      `shard ${s.shardId} [${s.slotStart},${s.slotEnd}) epoch ${s.epoch} leader ${s.leaderId || "-"} voters ${s.voters} learners ${s.learners} outgoing ${s.votersOutgoing}`,
  );
  const operations = map.operations.slice(-6).map((op) => `op ${op.id} ${op.kind} shard ${op.shardId} ${op.state}: ${op.step}`);
  return [`map version ${map.version}, meta leader ${map.metaLeaderId}`, ...shards, ...operations].join("\n  ");
}
