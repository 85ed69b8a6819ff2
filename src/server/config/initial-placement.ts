/**
 * Where replicas start: the metadata group's replicas and the initial shard placement, both
 * computed from cluster.yaml alone (every node gets the same answer), and the host rules the config
 * must meet for them (ADR 0013: no group keeps two replicas on one host). config.ts re-exports these.
 */
import { evenSlotRanges, type SlotRange } from "../../meta/slots.js";

/** A node as dealing sees it: its id and host. */
export interface DealtNode {
  id: number;
  host: string;
}

/** The parts of the cluster config placement reads (ClusterConfig has them). */
export interface PlacementInput {
  cluster: { replicationFactor: number; metaReplicas: number; shards: number };
  nodes: ReadonlyArray<DealtNode & { zone: string }>;
}

export interface ShardPlacement {
  shardId: number;
  slots: SlotRange;
  epoch: number;
  /** Raft node ids of the replicas, all voters. */
  replicas: number[];
}

/**
 * The metadata group's replicas: the first cluster.metaReplicas node ids (stable as nodes are
 * added), skipping a node whose host already has one (validation ensures enough hosts).
 */
export function metaReplicaIds(config: PlacementInput): number[] {
  const hosts = new Set<string>();
  const ids: number[] = [];
  for (const node of [...config.nodes].sort((a, b) => a.id - b.id)) {
    if (ids.length === config.cluster.metaReplicas || hosts.has(node.host)) continue;
    hosts.add(node.host);
    ids.push(node.id);
  }
  return ids;
}

/**
 * The initial shard placement, proposed once by the first metadata leader (the map is the
 * authority afterwards): the shards' replica slots are dealt to nodes in turn (dealReplicas).
 */
export function computePlacement(config: PlacementInput): ShardPlacement[] {
  const ranges = evenSlotRanges(config.cluster.shards);
  const order = dealOrder(config.nodes);
  return ranges.map((slots, i) => ({
    shardId: i + 1,
    slots,
    epoch: 1,
    replicas: dealReplicas(order, config.cluster.replicationFactor, i),
  }));
}

/**
 * The nodes in dealing order: hosts in turn (a host's turn is its lowest node id), each host's
 * nodes by id, so neighbours in the order sit on different hosts while hosts have nodes left. With
 * every node its own host it is the sorted ids, the placement of clusters from before hosts.
 */
export function dealOrder(nodes: readonly DealtNode[]): DealtNode[] {
  const byHost = new Map<string, DealtNode[]>();
  for (const node of [...nodes].sort((a, b) => a.id - b.id)) byHost.set(node.host, [...(byHost.get(node.host) ?? []), node]);
  const order: DealtNode[] = [];
  for (let round = 0; order.length < nodes.length; round++)
    for (const hostNodes of byHost.values()) if (round < hostNodes.length) order.push(hostNodes[round]!);
  return order;
}

/**
 * The replicas of the i-th shard: from position i x RF of the dealing order on, the next
 * `replicationFactor` nodes whose hosts the shard does not use yet. Every shard gets RF replicas
 * on RF distinct hosts (validation ensures that many hosts), and replica counts per node differ by
 * at most one when hosts have equal node counts (the controller balances the rest).
 */
export function dealReplicas(order: readonly DealtNode[], replicationFactor: number, i: number): number[] {
  const replicas: number[] = [];
  const hosts = new Set<string>();
  for (let k = 0; k < order.length && replicas.length < replicationFactor; k++) {
    const node = order[(i * replicationFactor + k) % order.length]!;
    if (hosts.has(node.host)) continue;
    hosts.add(node.host);
    replicas.push(node.id);
  }
  return replicas.sort((a, b) => a - b);
}

/** Hosts: enough of them for the replication factor and the metadata group; one zone each. */
export function hostProblems(config: PlacementInput): string[] {
  const problems: string[] = [];
  const zoneOfHost = new Map<string, { zone: string; index: number }>();
  config.nodes.forEach((node, i) => {
    const seen = zoneOfHost.get(node.host);
    if (seen === undefined) zoneOfHost.set(node.host, { zone: node.zone, index: i });
    else if (seen.zone !== node.zone)
      problems.push(`nodes[${i}].host: host ${node.host} is in zone ${seen.zone} (nodes[${seen.index}]), not ${node.zone}`);
  });
  const hosts = zoneOfHost.size;
  for (const field of ["replicationFactor", "metaReplicas"] as const) {
    const wanted = config.cluster[field];
    if (wanted > hosts && wanted <= config.nodes.length)
      problems.push(
        `cluster.${field} (${wanted}) exceeds the number of hosts (${hosts}); two replicas of a group never share a host (nodes[].host)`,
      );
  }
  return problems;
}
