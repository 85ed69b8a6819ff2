/**
 * The placement planner: given the partition map and what the meta leader knows of liveness and
 * leadership, which replica moves and leader transfers would bring the cluster to its goals. Pure
 * (the controller in src/server/meta-controller.ts executes what it returns), so the rules are unit
 * tested and `tallyctl rebalance --plan` shows exactly what `--apply` would start.
 *
 * Goals, in priority order (TiKV PD's schedulers, CockroachDB's allocator):
 *   1. every shard keeps `replicationFactor` voters on up nodes: replicas on down, draining or
 *      removed nodes move elsewhere (re-replication, drain);
 *   2. a shard's replicas sit on distinct hosts (always), and in distinct zones when enough zones
 *      exist;
 *   3. replica counts across up nodes differ by at most one, as far as 2 allows;
 *   4. leaders are off draining/down nodes, and leader counts are as even as the voters allow
 *      (differ by at most one wherever some choice of leaders among each shard's voters does).
 * The host rule is hard (ADR 0013): several tallyd may run on one machine, and a shard with two of
 * three replicas there loses its quorum with the machine. A target is always an up node that holds
 * no replica of the shard and whose host holds none either (the leaving replica aside: a move
 * between two processes of one host is allowed), chosen by: a zone the shard does not use yet, then
 * the fewest replicas, then the lowest id (deterministic). No such node: no move is planned (the
 * meta state machine also refuses such a move, map-commands.ts applyOpStart).
 */
import { hostOfId, shardMembers, type ClusterMap, type NodeRecord, type ShardRecord } from "./map.js";

export interface PlacementView {
  /** Nodes the meta leader considers alive now (recent heartbeat). */
  alive: ReadonlySet<number>;
  /** The leader each shard's replicas reported, if known. */
  leaders: ReadonlyMap<number, number>;
  /** Shards with an operation already running (not planned again). */
  busyShards: ReadonlySet<number>;
  /** Mutations/s each shard's leader applies (hot-leader moves); absent = no load known. */
  load?: ReadonlyMap<number, number>;
}

export interface PlannedMove {
  shardId: number;
  from: number;
  to: number;
  reason: string;
}

export interface PlannedTransfer {
  shardId: number;
  from: number;
  to: number;
  reason: string;
  /** Off a node that must not lead (down, draining, removed), rather than for balance. */
  urgent?: boolean;
}

/** A replica that must move (or be added) but that no node may take: nothing is planned for it. */
export interface BlockedMove {
  shardId: number;
  /** The node it must leave; 0: a missing replica. */
  from: number;
  reason: string;
}

export interface Plan {
  moves: PlannedMove[];
  transfers: PlannedTransfer[];
  /** Present when some replica cannot go anywhere the rules allow (tallyctl rebalance --plan shows why). */
  blocked?: BlockedMove[];
}

/** A node that may receive replicas and leaders. */
function usable(node: NodeRecord, view: PlacementView): boolean {
  return node.state === "up" && view.alive.has(node.id);
}

/** A node whose replicas must leave. */
function evacuating(node: NodeRecord | undefined): boolean {
  return node === undefined || node.state === "down" || node.state === "draining" || node.state === "removed";
}

function replicaCounts(map: ClusterMap): Map<number, number> {
  const counts = new Map<number, number>();
  for (const node of map.nodes) counts.set(node.id, 0);
  for (const shard of map.shards) for (const id of shardMembers(shard)) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

function zoneOf(map: ClusterMap, id: number): string | undefined {
  return map.nodes.find((node) => node.id === id)?.zone;
}

function chooseTarget(
  map: ClusterMap,
  view: PlacementView,
  shard: ShardRecord,
  leaving: number,
  counts: Map<number, number>,
): number | undefined {
  const members = shardMembers(shard);
  const zonesUsed = new Set(members.filter((id) => id !== leaving).map((id) => zoneOf(map, id)));
  const candidates = map.nodes.filter(
    (node) => usable(node, view) && !members.includes(node.id) && hostAllows(map, shard, leaving, node.id),
  );
  candidates.sort(
    (a, b) =>
      Number(zonesUsed.has(a.zone)) - Number(zonesUsed.has(b.zone)) || (counts.get(a.id) ?? 0) - (counts.get(b.id) ?? 0) || a.id - b.id,
  );
  return candidates[0]?.id;
}

/** Whether `to` may take the place of `leaving` (0: none) in the shard: no other member on its host. */
function hostAllows(map: ClusterMap, shard: ShardRecord, leaving: number, to: number): boolean {
  const host = hostOfId(map, to);
  return shardMembers(shard).every((id) => id === leaving || id === to || hostOfId(map, id) !== host);
}

/** Two voters of a shard on one host (a map from before the rule, an unsafe recovery): move one off. */
function hostSpreadMove(map: ClusterMap, view: PlacementView, shards: ShardRecord[], counts: Map<number, number>) {
  for (const shard of shards) {
    const byHost = new Map<string, number[]>();
    for (const id of shard.voters) byHost.set(hostOfId(map, id), [...(byHost.get(hostOfId(map, id)) ?? []), id]);
    for (const [host, ids] of byHost) {
      if (ids.length < 2) continue;
      const from = [...ids].sort((a, b) => (counts.get(b) ?? 0) - (counts.get(a) ?? 0) || b - a)[0]!;
      const to = chooseTarget(map, view, shard, from, counts);
      if (to !== undefined) return { shardId: shard.id, from, to, reason: `host ${host} holds ${ids.length} replicas` };
    }
  }
  return undefined;
}

/**
 * Replica count balance: a replica from a node holding at least two more than another, busiest
 * pair first. Pairs beyond the busiest and emptiest are tried too, since the host rule can forbid
 * every move between those two (each of the busiest node's shards already on the emptiest's host).
 * When no pair can trade, a chain of two: the busiest gives to a node holding one more than the
 * emptiest, which can then give to the emptiest (the next round finds that move directly).
 */
function balanceMove(map: ClusterMap, view: PlacementView, shards: ShardRecord[], counts: Map<number, number>) {
  const count = (id: number) => counts.get(id) ?? 0;
  const byCount = map.nodes
    .filter((candidate) => usable(candidate, view))
    .map((candidate) => candidate.id)
    .sort((a, b) => count(b) - count(a) || a - b);
  const canGive = (from: number, to: number, except?: ShardRecord) =>
    shards.find(
      (candidate) =>
        candidate !== except &&
        candidate.voters.includes(from) &&
        !shardMembers(candidate).includes(to) &&
        hostAllows(map, candidate, from, to) &&
        !zoneSpreadWorse(map, candidate, from, to),
    );
  const pairs: Array<[number, number]> = [];
  for (const most of byCount)
    for (const least of [...byCount].reverse()) {
      if (count(most) - count(least) <= 1) break;
      pairs.push([most, least]);
    }
  const reason = (most: number, least: number) => `balance: node ${most} holds ${count(most)} replicas, node ${least} ${count(least)}`;
  for (const [most, least] of pairs) {
    const shard = canGive(most, least);
    if (shard !== undefined) return { shardId: shard.id, from: most, to: least, reason: reason(most, least) };
  }
  for (const [most, least] of pairs) {
    for (const middle of byCount) {
      if (count(middle) !== count(least) + 1 || middle === most) continue;
      const first = canGive(most, middle);
      if (first !== undefined && canGive(middle, least, first) !== undefined)
        return { shardId: first.id, from: most, to: middle, reason: `${reason(most, least)} (through node ${middle})` };
    }
  }
  return undefined;
}

/** Whether moving the shard's replica from `from` to `to` leaves it in fewer distinct zones. */
function zoneSpreadWorse(map: ClusterMap, shard: ShardRecord, from: number, to: number): boolean {
  const otherZones = new Set(shard.voters.filter((id) => id !== from).map((id) => zoneOf(map, id)));
  return otherZones.has(zoneOf(map, to)) && !otherZones.has(zoneOf(map, from));
}

/**
 * The map as if every running move had completed. Planning counts replicas on it: counted from the
 * map as it stands, a second move planned while the first still runs sees the same imbalance and
 * makes the same choice (with two moves at once, node A holding 4 and node B 2 became A 2 and B 4,
 * then back again, forever).
 */
export function withRunningMoves(map: ClusterMap): ClusterMap {
  const running = map.operations.filter((op) => op.state === "running" && op.kind === "move");
  return running.reduce((current, op) => withMove(current, op), map);
}

/** One step of planning: the most urgent move, or undefined. */
export function planOneMove(current: ClusterMap, view: PlacementView): PlannedMove | undefined {
  const map = withRunningMoves(current);
  const counts = replicaCounts(map);
  const shards = map.shards.filter(
    (shard) => !view.busyShards.has(shard.id) && shard.votersOutgoing.length === 0 && shard.learners.length === 0,
  );
  const node = (id: number) => map.nodes.find((candidate) => candidate.id === id);

  // 0. Under-replicated shards (after an unsafe recovery, or a replication factor raised): add a
  //    replica (from = 0: nothing leaves).
  for (const shard of shards) {
    if (shard.voters.length >= map.replicationFactor) continue;
    const to = chooseTarget(map, view, shard, 0, counts);
    if (to !== undefined)
      return { shardId: shard.id, from: 0, to, reason: `under-replicated: ${shard.voters.length} of ${map.replicationFactor} voters` };
  }

  // 1. Replicas on nodes that are down, draining or removed.
  for (const shard of shards) {
    for (const id of shard.voters) {
      const holder = node(id);
      if (!evacuating(holder)) continue;
      const to = chooseTarget(map, view, shard, id, counts);
      if (to !== undefined)
        return { shardId: shard.id, from: id, to, reason: `${holder === undefined ? "unknown" : holder.state} node ${id}` };
    }
  }

  // 2a. Host spread: the hard rule, should a map break it.
  const hostMove = hostSpreadMove(map, view, shards, counts);
  if (hostMove !== undefined) return hostMove;

  // 2b. Zone spread: two replicas in one zone while a usable node in an unused zone exists.
  const usableZones = new Set(map.nodes.filter((candidate) => usable(candidate, view)).map((candidate) => candidate.zone));
  for (const shard of shards) {
    const byZone = new Map<string, number[]>();
    for (const id of shard.voters) {
      const zone = zoneOf(map, id) ?? "";
      byZone.set(zone, [...(byZone.get(zone) ?? []), id]);
    }
    if (byZone.size >= Math.min(shard.voters.length, usableZones.size)) continue;
    for (const ids of byZone.values()) {
      if (ids.length < 2) continue;
      const from = [...ids].sort((a, b) => (counts.get(b) ?? 0) - (counts.get(a) ?? 0) || b - a)[0]!;
      const to = chooseTarget(map, view, shard, from, counts);
      if (to !== undefined && !byZone.has(zoneOf(map, to) ?? ""))
        return { shardId: shard.id, from, to, reason: `zone ${zoneOf(map, from)} holds ${ids.length} replicas` };
    }
  }

  // 3. Replica count balance across usable nodes.
  return balanceMove(map, view, shards, counts);
}

/** Leader transfers: off nodes that must not lead, then toward equal leader counts. */
export function planTransfers(map: ClusterMap, view: PlacementView, limit: number): PlannedTransfer[] {
  const transfers: PlannedTransfer[] = [];
  const leaderCount = new Map<number, number>();
  for (const node of map.nodes) if (usable(node, view)) leaderCount.set(node.id, 0);
  for (const leader of view.leaders.values()) leaderCount.set(leader, (leaderCount.get(leader) ?? 0) + 1);
  const node = (id: number) => map.nodes.find((candidate) => candidate.id === id);
  const pickTarget = (shard: ShardRecord, exclude: number): number | undefined =>
    shard.voters
      .filter((id) => id !== exclude && node(id) !== undefined && usable(node(id)!, view))
      .sort((a, b) => (leaderCount.get(a) ?? 0) - (leaderCount.get(b) ?? 0) || a - b)[0];
  const move = (shard: ShardRecord, from: number, to: number, reason: string, urgent = false) => {
    transfers.push(urgent ? { shardId: shard.id, from, to, reason, urgent } : { shardId: shard.id, from, to, reason });
    leaderCount.set(from, (leaderCount.get(from) ?? 1) - 1);
    leaderCount.set(to, (leaderCount.get(to) ?? 0) + 1);
  };
  for (const shard of map.shards) {
    if (transfers.length >= limit) return transfers;
    if (view.busyShards.has(shard.id)) continue;
    const leader = view.leaders.get(shard.id);
    if (leader === undefined) continue;
    const holder = node(leader);
    if (holder !== undefined && holder.state === "up") continue;
    const to = pickTarget(shard, leader);
    if (to !== undefined) move(shard, leader, to, `leader on ${holder?.state ?? "unknown"} node ${leader}`, true);
  }
  const loadOf = (shardId: number) => view.load?.get(shardId) ?? 0;
  // Count balancing moves the coolest leaders, so it never undoes a hot-leader move below.
  const byLoad = [...map.shards].sort((a, b) => loadOf(a.id) - loadOf(b.id) || a.id - b.id);
  while (transfers.length < limit) {
    const chain = costReducingChain(map, view, byLoad, leaderCount, transfers);
    if (chain === undefined) break;
    // The far end first: each step then leaves every node at or below the count it had, so a chain
    // cut short (a refused transfer, a cooldown) never leaves the cluster worse than it was.
    for (const step of chain.reverse()) {
      if (transfers.length >= limit) break;
      move(step.shard, step.from, step.to, `balance leaders: node ${step.source} leads ${step.sourceCount}`);
    }
  }
  // Hot nodes: a node whose leaders carry well above the mean load hands one hot leadership to the
  // voter whose node is coolest, when that leaves both below where the hot node was.
  if (view.load !== undefined && transfers.length < limit) {
    const nodeLoad = new Map<number, number>();
    for (const id of leaderCount.keys()) nodeLoad.set(id, 0);
    const leaders = new Map(view.leaders);
    for (const t of transfers) leaders.set(t.shardId, t.to);
    for (const [shardId, leader] of leaders) nodeLoad.set(leader, (nodeLoad.get(leader) ?? 0) + loadOf(shardId));
    const loads = [...nodeLoad.values()];
    const mean = loads.reduce((a, b) => a + b, 0) / Math.max(1, loads.length);
    const [hot, hotLoad] = [...nodeLoad.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0] ?? [0, 0];
    if (hot !== 0 && hotLoad > 1.5 * mean && hotLoad >= HOT_NODE_OPS_MIN) {
      const candidates = map.shards
        .filter(
          (shard) => leaders.get(shard.id) === hot && !view.busyShards.has(shard.id) && !transfers.some((t) => t.shardId === shard.id),
        )
        .sort((a, b) => loadOf(b.id) - loadOf(a.id));
      for (const shard of candidates.slice(candidates.length > 1 ? 0 : candidates.length)) {
        const to = shard.voters
          .filter((id) => id !== hot && node(id) !== undefined && usable(node(id)!, view))
          .sort((a, b) => (nodeLoad.get(a) ?? 0) - (nodeLoad.get(b) ?? 0) || a - b)[0];
        if (to === undefined || (nodeLoad.get(to) ?? 0) + loadOf(shard.id) >= hotLoad) continue;
        transfers.push({
          shardId: shard.id,
          from: hot,
          to,
          reason: `hot node ${hot}: its leaders apply ${Math.round(hotLoad)} ops/s (mean ${Math.round(mean)})`,
        });
        break;
      }
    }
  }
  return transfers;
}

interface ChainStep {
  shard: ShardRecord;
  from: number;
  to: number;
  /** The chain's busy first node, and how many leaderships it held when the chain was planned. */
  source: number;
  sourceCount: number;
}

/**
 * The shortest chain of leader transfers that takes one leadership from a node leading `c` shards
 * to a node leading at most `c - 2`, through voters of each shard (a cost-reducing path, Harvey et
 * al., "Semi-matchings for bipartite graphs and load balancing", 2003). Leader counts are even as
 * the replica placement allows exactly when no such chain exists; a single transfer alone can stall
 * (counts 2/1/1/0/0 where the busiest node's shards have only the nodes leading one as voters).
 * Sources are tried busiest first; within a node, shards coolest first, voters least-leading first.
 */
function costReducingChain(
  map: ClusterMap,
  view: PlacementView,
  byLoad: readonly ShardRecord[],
  leaderCount: ReadonlyMap<number, number>,
  planned: readonly PlannedTransfer[],
): ChainStep[] | undefined {
  const byId = new Map(map.nodes.map((node) => [node.id, node]));
  const isUsable = (id: number) => byId.get(id) !== undefined && usable(byId.get(id)!, view);
  const leaderOf = new Map(view.leaders);
  for (const t of planned) leaderOf.set(t.shardId, t.to);
  const movable = byLoad.filter((shard) => !view.busyShards.has(shard.id) && !planned.some((t) => t.shardId === shard.id));
  const sources = [...leaderCount.entries()].filter(([id]) => isUsable(id)).sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  const least = Math.min(...sources.map(([, count]) => count));
  for (const [source, sourceCount] of sources) {
    if (sourceCount - least <= 1) return undefined;
    // Breadth-first over nodes; an edge u -> v is a shard u leads with v as a usable voter.
    const via = new Map<number, { shard: ShardRecord; from: number }>();
    const seen = new Set([source]);
    const queue = [source];
    for (let head = 0; head < queue.length; head++) {
      const from = queue[head]!;
      for (const shard of movable) {
        if (leaderOf.get(shard.id) !== from) continue;
        const voters = shard.voters
          .filter((id) => !seen.has(id) && isUsable(id))
          .sort((a, b) => (leaderCount.get(a) ?? 0) - (leaderCount.get(b) ?? 0) || a - b);
        for (const to of voters) {
          via.set(to, { shard, from });
          seen.add(to);
          if ((leaderCount.get(to) ?? 0) <= sourceCount - 2) {
            const chain: ChainStep[] = [];
            for (let at = to; at !== source; at = via.get(at)!.from) chain.unshift({ ...via.get(at)!, to: at, source, sourceCount });
            return chain;
          }
          queue.push(to);
        }
      }
    }
  }
  return undefined;
}

/** Below this many ops/s on its leaders a node is never "hot" (noise). */
const HOT_NODE_OPS_MIN = 200;

/**
 * A copy of the map with a move completed: `to` a voter, `from` (0: none) gone. Idempotent, so it
 * also applies to a move already part done (its learner added, or its target promoted).
 */
export function withMove(map: ClusterMap, move: Pick<PlannedMove, "shardId" | "from" | "to">): ClusterMap {
  return {
    ...map,
    shards: map.shards.map((shard) =>
      shard.id !== move.shardId
        ? shard
        : {
            ...shard,
            epoch: shard.epoch + 1,
            voters: [...new Set([...shard.voters.filter((id) => id !== move.from), move.to])].sort((a, b) => a - b),
            learners: shard.learners.filter((id) => id !== move.to && id !== move.from),
            votersOutgoing: [],
          },
    ),
  };
}

/**
 * Replicas on down, draining or removed nodes, and missing replicas, that no node may take: every
 * up node outside the shard is on a host the shard already uses (or there is none). The planner
 * plans nothing for them rather than break the host rule; this says why, for `rebalance --plan`.
 */
export function blockedMoves(current: ClusterMap, view: PlacementView): BlockedMove[] {
  const map = withRunningMoves(current);
  const counts = replicaCounts(map);
  const blocked: BlockedMove[] = [];
  for (const shard of map.shards) {
    if (view.busyShards.has(shard.id) || shard.votersOutgoing.length > 0 || shard.learners.length > 0) continue;
    const leaving = shard.voters.filter((id) => evacuating(map.nodes.find((node) => node.id === id)));
    if (shard.voters.length < map.replicationFactor) leaving.push(0);
    for (const from of leaving) {
      if (chooseTarget(map, view, shard, from, counts) !== undefined) continue;
      const members = shardMembers(shard).filter((id) => id !== from);
      const outside = map.nodes.filter((node) => usable(node, view) && !members.includes(node.id) && node.id !== from);
      const hosts = [...new Set(members.map((id) => hostOfId(map, id)))].join(", ");
      blocked.push({
        shardId: shard.id,
        from,
        reason:
          (from === 0 ? "a missing replica" : `the replica on node ${from}`) +
          (outside.length === 0
            ? ": no up node outside the shard"
            : `: every up node outside the shard is on a host it already uses (${hosts}); two replicas of a shard never share a host`),
      });
    }
  }
  return blocked;
}

/** The whole plan `tallyctl rebalance --plan` shows: moves in order until balanced, then transfers. */
export function planAll(map: ClusterMap, view: PlacementView, maxMoves = 100): Plan {
  const moves: PlannedMove[] = [];
  let current = map;
  const busy = new Set(view.busyShards);
  for (let i = 0; i < maxMoves; i++) {
    const move = planOneMove(current, { ...view, busyShards: busy });
    if (move === undefined) break;
    moves.push(move);
    current = withMove(current, move);
  }
  const leaders = new Map(view.leaders);
  for (const move of moves) if (leaders.get(move.shardId) === move.from) leaders.delete(move.shardId);
  const plan: Plan = { moves, transfers: planTransfers(current, { ...view, leaders }, map.shards.length) };
  const blocked = blockedMoves(current, { ...view, busyShards: busy });
  if (blocked.length > 0) plan.blocked = blocked;
  return plan;
}
