import type { ClusterStatus, MutationResult, ReadResult, RoutesSnapshot } from "../client/index.js";

/**
 * tallyctl's output. Human output is aligned tables and one-line results; --json output is one
 * JSON document per command with 64-bit integers as decimal strings (the proto3 JSON mapping's
 * rule for int64), so no consumer parses a counter into a rounding double.
 */

export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => (typeof inner === "bigint" ? inner.toString() : inner), 2);
}

/** Columns padded to their widest cell; numeric columns right-aligned. */
export function formatTable(headers: string[], rows: string[][], numericColumns: ReadonlySet<number> = new Set()): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, column) => (numericColumns.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

function fenceText(fence: { term: bigint; index: bigint }): string {
  return `${fence.term}/${fence.index}`;
}

export function formatMutation(key: string, result: MutationResult): string {
  if (result.subCounters !== undefined)
    return `${key}: added to one of its ${result.subCounters} sub-counters (that one is now ${result.value}; \`get\` sums them)`;
  return `${key} = ${result.value}  (version ${result.version}, fence ${fenceText(result.fence)})`;
}

export function mutationJson(key: string, result: MutationResult): object {
  return { key, value: result.value, version: result.version, fence: result.fence };
}

export function formatRead(key: string, result: ReadResult): string {
  if (result.subCounters !== undefined)
    return `${key} = ${result.value}  (hot: the sum of ${result.subCounters} sub-counters, each read ${result.exists ? "" : "and absent "}at its shard)`;
  if (!result.exists) return `${key} = 0  (does not exist; applied ${result.appliedIndex})`;
  return `${key} = ${result.value}  (version ${result.version}, fence ${fenceText(result.fence)}, applied ${result.appliedIndex})`;
}

export function readJson(key: string, result: ReadResult): object {
  return { key, ...result };
}

const STATUS_HEADERS = ["NODE", "ADDRESS", "ZONE", "HOST", "GROUP", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAG", "LEASE"];
const STATUS_NUMERIC = new Set([4, 6, 8, 9, 10]);

/**
 * One row per (node, group). LAG is the leader's view of its slowest follower (entries behind);
 * "-" on followers, whose own apply lag is COMMIT - APPLIED. LEASE is shown for leaders only.
 */
export function formatStatus(status: ClusterStatus): string {
  const rows: string[][] = [];
  const notes: string[] = [];
  const nodes = [...status.nodes].sort((a, b) => a.nodeId.localeCompare(b.nodeId, undefined, { numeric: true }));
  for (const node of nodes) {
    if (!node.reachable) {
      rows.push([node.nodeId, node.clientAddress, node.zone, node.host, "-", "unreachable", "", "", "", "", "", ""]);
      if (node.error) notes.push(`node ${node.nodeId} (${node.clientAddress}): ${node.error}`);
      continue;
    }
    if (node.groups.length === 0) {
      rows.push([node.nodeId, node.clientAddress, node.zone, node.host, "-", "no groups", "", "", "", "", "", ""]);
      continue;
    }
    for (const group of [...node.groups].sort((a, b) => a.groupId - b.groupId)) {
      const isLeader = group.role.toLowerCase() === "leader";
      const lag = group.peers.length > 0 ? group.peers.reduce((max, peer) => (peer.lag > max ? peer.lag : max), 0n).toString() : "-";
      rows.push([
        node.nodeId,
        node.clientAddress,
        node.zone,
        node.host,
        String(group.groupId),
        group.role.toLowerCase(),
        String(group.term),
        group.leaderId || "-",
        String(group.commit),
        String(group.applied),
        lag,
        isLeader ? (group.leaseValid ? "valid" : "none") : "-",
      ]);
    }
  }
  const reachable = status.nodes.filter((node) => node.reachable).length;
  const summary = `${status.nodes.length} nodes (${reachable} reachable); answered by ${status.answeredBy}`;
  return [formatTable(STATUS_HEADERS, rows, STATUS_NUMERIC), "", ...notes, summary].join("\n");
}

export function formatRoutes(routes: RoutesSnapshot): string {
  const rows = routes.shards.map((shard) => {
    const leader = shard.leaderId === undefined ? "-" : `${shard.leaderId}${shard.leaderAddress ? ` (${shard.leaderAddress})` : ""}`;
    const replicas = shard.replicas.map((replica) => (replica.role ? `${replica.nodeId}:${replica.role}` : replica.nodeId)).join(",");
    return [String(shard.shardId), `${shard.slotStart}-${shard.slotEnd - 1}`, String(shard.epoch), String(shard.term), leader, replicas];
  });
  const summary = `${routes.shards.length} shards over ${routes.slotCount} slots`;
  return `${formatTable(["SHARD", "SLOTS", "EPOCH", "TERM", "LEADER", "REPLICAS"], rows, new Set([0, 2, 3]))}\n\n${summary}`;
}

/** An accepted membership or placement change: its summary line, or with --json the whole reply. */
export function changeOutput(reply: { summary?: string; operationId?: string }, json: boolean): string | object {
  return json ? reply : String(reply.summary ?? "");
}
