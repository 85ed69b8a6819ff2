/**
 * tallyctl's health answers: the one-line verdict and compact table of `status`, and
 * `endpoint health`. Both exit non-zero when something is wrong, so a script or a probe can use
 * them without parsing: 0 healthy, 5 degraded (every shard has a leader, but a node is down, so
 * redundancy is reduced) or an unhealthy endpoint, 6 unavailable (a shard has no leader: writes
 * to its keys fail), 3 no endpoint answered.
 *
 * "A shard has a leader" means a node that answered now reports itself as its leader; a leader
 * that other replicas still name but that did not answer does not count.
 */
import type { StatusResponseMessage } from "../api/proto.js";
import type { ClusterStatus, GroupStatus, NodeStatus } from "../client/index.js";
import { EXIT, type ExitCode } from "./exit-codes.js";
import { formatTable } from "./format.js";
import type { ClusterMapReply } from "./format-map.js";
import { humanTransportError, isTransportText } from "./human-errors.js";

/** The metadata group's id in status replies. */
const META_GROUP_ID = 0;

export type VerdictState = "healthy" | "degraded" | "unavailable";

export interface Verdict {
  state: VerdictState;
  /** e.g. "healthy: 3/3 nodes, 8/8 shards with a leader". */
  line: string;
  exitCode: ExitCode;
}

function byNodeId(a: { nodeId: string }, b: { nodeId: string }): number {
  return a.nodeId.localeCompare(b.nodeId, undefined, { numeric: true });
}

function isLeader(group: GroupStatus): boolean {
  return group.role.toLowerCase() === "leader";
}

/** Every group id hosted by a node that answered, and the shards of the map. */
function shardIds(status: ClusterStatus, map: ClusterMapReply | undefined): number[] {
  const ids = new Set<number>(map?.shards.map((shard) => shard.shardId) ?? []);
  for (const node of status.nodes) for (const group of node.groups) if (group.groupId !== META_GROUP_ID) ids.add(group.groupId);
  return [...ids].sort((a, b) => a - b);
}

/** The group's leader among the nodes that answered. */
function leaderOf(status: ClusterStatus, groupId: number): { node: NodeStatus; group: GroupStatus } | undefined {
  for (const node of status.nodes) {
    if (!node.reachable) continue;
    const group = node.groups.find((candidate) => candidate.groupId === groupId && isLeader(candidate));
    if (group !== undefined) return { node, group };
  }
  return undefined;
}

function listed(noun: string, ids: Array<string | number>, singular: string, plural: string): string {
  return ids.length === 1 ? `${noun} ${ids[0]} ${singular}` : `${noun}s ${ids.join(", ")} ${plural}`;
}

export function statusVerdict(status: ClusterStatus, map: ClusterMapReply | undefined): Verdict {
  const nodes = [...status.nodes].sort(byNodeId);
  const down = nodes.filter((node) => !node.reachable).map((node) => node.nodeId);
  const shards = shardIds(status, map);
  const leaderless = shards.filter((id) => leaderOf(status, id) === undefined);
  const hostsMeta = nodes.some((node) => node.groups.some((group) => group.groupId === META_GROUP_ID));
  const metaLeaderless = hostsMeta && leaderOf(status, META_GROUP_ID) === undefined;
  const counts = `${nodes.length - down.length}/${nodes.length} nodes, ${shards.length - leaderless.length}/${shards.length} shards with a leader`;
  const problems: string[] = [];
  if (leaderless.length > 0) problems.push(listed("shard", leaderless, "has no leader", "have no leader"));
  if (down.length > 0) problems.push(listed("node", down, "unreachable", "unreachable"));
  // Counters are still served without it; membership and placement changes wait.
  if (metaLeaderless) problems.push("the metadata group has no leader");
  if (problems.length === 0) return { state: "healthy", line: `healthy: ${counts}`, exitCode: EXIT.ok };
  const state: VerdictState = leaderless.length > 0 ? "unavailable" : "degraded";
  return {
    state,
    line: `${state}: ${problems.join("; ")} (${counts})`,
    exitCode: state === "unavailable" ? EXIT.unavailable : EXIT.degraded,
  };
}

/** The reason a node did not answer, in an operator's words. */
export function nodeProblem(node: NodeStatus): string {
  if (node.error === "") return "did not answer";
  return isTransportText(node.error) ? humanTransportError(node.error) : node.error;
}

/**
 * The verdict, one row per node and one per shard (its leader's view: term, commit, slowest
 * follower's lag, lease; how many of its replicas answered), the map's version and operations.
 */
export function formatCompactStatus(status: ClusterStatus, map: ClusterMapReply | undefined, verdict: Verdict): string {
  const nodes = [...status.nodes].sort(byNodeId);
  const mapNode = (id: string) => map?.nodes.find((node) => node.nodeId === id);
  const nodeRows = nodes.map((node) => {
    const leaders = node.groups.filter((group) => isLeader(group)).length;
    return [
      node.nodeId,
      node.clientAddress,
      node.zone,
      node.host,
      mapNode(node.nodeId)?.state ?? "-",
      node.reachable ? "yes" : "no",
      node.reachable ? String(node.groups.length) : "-",
      node.reachable ? String(leaders) : "-",
    ];
  });
  const reachable = new Set(nodes.filter((node) => node.reachable).map((node) => node.nodeId));
  const groupRow = (label: string, groupId: number, slots: string, voters: string[] | undefined): string[] => {
    const hosting = nodes.filter((node) => node.reachable && node.groups.some((group) => group.groupId === groupId)).length;
    const replicas = voters === undefined ? String(hosting) : `${voters.filter((id) => reachable.has(id)).length}/${voters.length}`;
    const led = leaderOf(status, groupId);
    if (led === undefined) return [label, slots, "none", "-", "-", "-", "-", replicas];
    const lag = led.group.peers.reduce((max, peer) => (peer.lag > max ? peer.lag : max), 0n);
    return [
      label,
      slots,
      led.node.nodeId,
      String(led.group.term),
      String(led.group.commit),
      String(lag),
      led.group.leaseValid ? "valid" : "none",
      replicas,
    ];
  };
  const groupRows: string[][] = [];
  if (nodes.some((node) => node.groups.some((group) => group.groupId === META_GROUP_ID)))
    groupRows.push(groupRow("meta", META_GROUP_ID, "-", map?.metaVoters));
  for (const id of shardIds(status, map)) {
    const shard = map?.shards.find((candidate) => candidate.shardId === id);
    groupRows.push(groupRow(String(id), id, shard === undefined ? "-" : `${shard.slotStart}-${shard.slotEnd - 1}`, shard?.voters));
  }
  const notes = nodes.filter((node) => !node.reachable).map((node) => `node ${node.nodeId} (${node.clientAddress}): ${nodeProblem(node)}`);
  const running = map?.operations.filter((operation) => operation.state === "running").length ?? 0;
  const mapLine =
    map === undefined
      ? "partition map unavailable"
      : `partition map version ${map.version}, metadata leader ${map.metaLeaderId || "unknown"}; operations: ${running === 0 ? "none running" : `${running} running`}`;
  return [
    verdict.line,
    "",
    formatTable(["NODE", "ADDRESS", "ZONE", "HOST", "STATE", "ALIVE", "GROUPS", "LEADERS"], nodeRows, new Set([6, 7])),
    ...notes,
    "",
    formatTable(["SHARD", "SLOTS", "LEADER", "TERM", "COMMIT", "LAG", "LEASE", "REPLICAS"], groupRows, new Set([3, 4, 5])),
    "",
    mapLine,
    `${nodes.length} nodes (${reachable.size} reachable); answered by ${status.answeredBy}; \`tallyctl status --verbose\` shows every replica and the whole map`,
  ].join("\n");
}

/** One endpoint's answer to `endpoint health`. */
export interface EndpointHealth {
  endpoint: string;
  healthy: boolean;
  /** Round trip of the health check, ms (when the node answered it). */
  tookMs?: number;
  nodeId?: string;
  groups?: number;
  leaders?: number;
  /** Why it is unhealthy. */
  problem?: string;
}

/** A node's own status (AdminService.Status with local_only; proto StatusResponse). */
export type LocalStatusReply = StatusResponseMessage;

export function formatEndpointHealth(results: EndpointHealth[]): string {
  return results
    .map((result) => {
      if (!result.healthy) return `${result.endpoint} is unhealthy: ${result.problem ?? "unknown"}`;
      const detail = result.nodeId === undefined ? "serving" : `node ${result.nodeId}, ${result.groups} groups, leads ${result.leaders}`;
      return `${result.endpoint} is healthy: ${detail}, took ${result.tookMs!.toFixed(1)} ms`;
    })
    .join("\n");
}

export function endpointHealthExitCode(results: EndpointHealth[]): ExitCode {
  if (results.every((result) => result.healthy)) return EXIT.ok;
  if (results.every((result) => result.tookMs === undefined)) return EXIT.unreachable;
  return EXIT.degraded;
}

/**
 * One endpoint judged: healthy exactly when its health check says SERVING (its /readyz is 200).
 * Its own status, when it could be read, adds who it is and, for a node not serving, which of its
 * groups know no leader.
 */
export function judgeEndpoint(endpoint: string, tookMs: number, serving: string, local: LocalStatusReply | undefined): EndpointHealth {
  const node = local?.nodes?.[0];
  const groups = node?.groups ?? [];
  const result: EndpointHealth = { endpoint, tookMs, healthy: serving === "SERVING" };
  if (node !== undefined)
    Object.assign(result, {
      nodeId: node.nodeId ?? "?",
      groups: groups.length,
      leaders: groups.filter((group) => group.role.toLowerCase() === "leader").length,
    });
  if (result.healthy) return result;
  const leaderless = groups
    .filter((group) => group.leaderId === "" || group.leaderId === "0")
    .map((group) => (group.groupId === META_GROUP_ID ? "meta" : String(group.groupId)));
  const who = node === undefined ? "the node" : `node ${result.nodeId}`;
  result.problem =
    leaderless.length > 0
      ? `${serving}: ${who} knows no leader for ${listed("group", leaderless, "", "").trim()} (an election, or no quorum reachable)`
      : `${serving}: ${who} is not ready (stopping, not in the partition map yet, or a shard's leader is unreachable from it; its /readyz says which)`;
  return result;
}
