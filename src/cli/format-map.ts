/** Human output of the partition map and of placement plans (tallyctl status, rebalance, failover). */
import type { ClusterMapResponseMessage, RebalanceResponseMessage } from "../api/proto.js";
import { formatTable as table } from "./format.js";

/** The ClusterMap reply as the client library decodes it (proto ClusterMapResponse). */
export type ClusterMapReply = ClusterMapResponseMessage;

/** The Rebalance and Failover reply (proto RebalanceResponse). */
export type PlanReply = RebalanceResponseMessage;

export function formatClusterMap(map: ClusterMapReply): string {
  const lines: string[] = [];
  lines.push(
    `partition map version ${map.version}, metadata leader ${map.metaLeaderId || "unknown"}${map.fromMetaLeader ? "" : " (cached copy; liveness and load come from the metadata leader)"}`,
  );
  lines.push(
    `metadata group replicas: ${(map.metaVoters ?? []).join(", ") || "unknown"}${map.metaLearners?.length ? ` (learners ${map.metaLearners.join(", ")})` : ""}`,
  );
  lines.push("");
  lines.push(
    table(
      ["NODE", "ADDRESS", "ZONE", "HOST", "STATE", "ALIVE", "REPLICAS", "LEADERS", "OPS/S"],
      map.nodes.map((n) => [
        n.nodeId,
        n.clientAddress,
        n.zone,
        n.host || n.nodeId,
        n.state,
        map.fromMetaLeader ? (n.alive ? "yes" : `no (${n.lastHeartbeatMsAgo} ms)`) : "-",
        String(n.replicas),
        map.fromMetaLeader ? String(n.leaders) : "-",
        map.fromMetaLeader ? n.opsPerSecond.toFixed(0) : "-",
      ]),
    ),
  );
  lines.push("");
  lines.push(
    table(
      ["SHARD", "SLOTS", "EPOCH", "VOTERS", "LEARNERS", "LEADER", "OPS/S"],
      map.shards.map((s) => [
        String(s.shardId),
        `${s.slotStart}-${s.slotEnd - 1}`,
        s.epoch,
        s.voters.join(",") + (s.votersOutgoing.length > 0 ? ` (joint, outgoing ${s.votersOutgoing.join(",")})` : ""),
        s.learners.join(",") || "-",
        s.leaderId || "-",
        s.opsPerSecond.toFixed(0),
      ]),
    ),
  );
  const running = map.operations.filter((op) => op.state === "running");
  const finished = map.operations.filter((op) => op.state !== "running").slice(-5);
  lines.push("");
  if (running.length === 0 && finished.length === 0) {
    lines.push("operations: none");
  } else {
    lines.push(
      table(
        ["OP", "KIND", "SHARD", "FROM", "TO", "STATE", "AGE", "STEP", "REASON"],
        [...running, ...finished].map((op) => [
          op.id,
          op.kind,
          String(op.shardId),
          op.kind === "split" ? `slot ${op.splitSlot}` : op.fromNode,
          op.kind === "split" ? `shard ${op.newShardId}` : op.toNode,
          op.state,
          `${(Number(op.ageMs) / 1000).toFixed(1)}s`,
          op.step,
          op.reason,
        ]),
      ),
    );
  }
  return lines.join("\n");
}

export function formatPlan(plan: PlanReply): string {
  if (plan.changes.length === 0) return plan.summary;
  return `${plan.summary}\n\n${table(
    ["KIND", "SHARD", "FROM", "TO", "REASON"],
    plan.changes.map((c) => [c.kind, String(c.shardId), c.fromNode, c.toNode, c.reason]),
  )}`;
}
