/**
 * The partition map's records (nodes, shards, operations, hot counters), the meta commands that
 * change it, and the queries everyone runs on it. The state machine that applies the commands is
 * MetaStateMachine (map.ts, which re-exports this module); each command's rule is in map-commands.ts.
 */
import type { HotRecord } from "./hot.js";

export type NodeState = "up" | "down" | "draining" | "removed";
export const NODE_STATES: readonly NodeState[] = ["up", "down", "draining", "removed"];

export interface NodeRecord {
  id: number;
  client: string;
  peer: string;
  zone: string;
  /**
   * The machine the node's process runs on: a failure domain below the zone, so several tallyd
   * on one host never hold two replicas of a shard (ADR 0013). Absent = the node's own id (every
   * node its own host), as in maps and commands written before hosts existed; read it via hostOf.
   */
  host?: string;
  state: NodeState;
  /** Leader-stamped time of the last state change. */
  sinceMs: number;
}

export interface ShardRecord {
  id: number;
  /** Inclusive. */
  slotStart: number;
  /** Exclusive. */
  slotEnd: number;
  epoch: number;
  voters: number[];
  learners: number[];
  /** Voters of the outgoing half while the shard is in a joint configuration. */
  votersOutgoing: number[];
}

export type OperationKind = "move" | "split";
export type OperationState = "running" | "done" | "aborted";

export interface OperationRecord {
  id: number;
  kind: OperationKind;
  shardId: number;
  from: number;
  to: number;
  state: OperationState;
  /** What it is doing or why it ended. */
  step: string;
  /** Who asked: "operator" or the controller rule that planned it. */
  reason: string;
  /** Splits: the first slot of the new shard, and its id (allocated when the split starts). */
  splitSlot?: number;
  newShardId?: number;
  createdMs: number;
  updatedMs: number;
}

export interface ClusterMap {
  initialized: boolean;
  clusterName: string;
  replicationFactor: number;
  /** The applied index of the meta group: the map's version. */
  version: number;
  clockMs: number;
  nodes: NodeRecord[];
  shards: ShardRecord[];
  /** The metadata group's own membership, as its leader last applied it. */
  meta: { voters: number[]; learners: number[]; votersOutgoing: number[] };
  /** Running operations and the most recent finished ones (at most FINISHED_KEPT). */
  operations: OperationRecord[];
  nextOperationId: number;
  /** Hot counters (src/meta/hot.ts), sorted by key. Absent in maps written before they existed. */
  hot?: HotRecord[];
}

export type MetaCommand =
  | {
      type: "init";
      clusterName: string;
      replicationFactor: number;
      nodes: Array<Omit<NodeRecord, "state" | "sinceMs">>;
      shards: ShardRecord[];
      metaVoters: number[];
      hot?: Array<{ key: Uint8Array; tags: number[] }>;
    }
  | { type: "meta-report"; voters: number[]; learners: number[]; votersOutgoing: number[] }
  | { type: "node-add"; node: Omit<NodeRecord, "state" | "sinceMs"> }
  | { type: "node-state"; nodeId: number; state: NodeState }
  | { type: "shard-report"; shard: ShardRecord }
  | { type: "op-start"; op: Pick<OperationRecord, "kind" | "shardId" | "from" | "to" | "reason" | "splitSlot"> }
  | { type: "op-update"; id: number; state: OperationState; step: string }
  /** Declares key hot with s sub-counters, or raises its s; s never shrinks. */
  | { type: "hot-declare"; key: Uint8Array; subCounters: number }
  /** Lets writers use the first `writable` sub-counters (the controller, once every live node has them). */
  | { type: "hot-activate"; key: Uint8Array; writable: number };

export type MetaResult =
  | { ok: true; opId?: number; changed: boolean }
  | { ok: false; code: "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "NOT_FOUND"; message: string };

export function emptyMap(): ClusterMap {
  return {
    initialized: false,
    clusterName: "",
    replicationFactor: 0,
    version: 0,
    clockMs: 0,
    nodes: [],
    shards: [],
    meta: { voters: [], learners: [], votersOutgoing: [] },
    operations: [],
    nextOperationId: 1,
    hot: [],
  };
}

export function hotRecordOf(map: ClusterMap, key: Uint8Array): HotRecord | undefined {
  return (map.hot ?? []).find((record) => Buffer.compare(record.key, key) === 0);
}

/** The shard owning a slot in this map (0 if none: only before init). */
export function shardOfSlotIn(map: ClusterMap, slot: number): number {
  return map.shards.find((shard) => slot >= shard.slotStart && slot < shard.slotEnd)?.id ?? 0;
}

export function nodeById(map: ClusterMap, id: number): NodeRecord | undefined {
  return map.nodes.find((node) => node.id === id);
}

/** A node's host: its `host`, or its own id when it has none (every node its own host). */
export function hostOf(node: { id: number; host?: string | undefined }): string {
  return node.host ?? String(node.id);
}

/** The host of node `id` in this map (its id when the map does not know the node). */
export function hostOfId(map: ClusterMap, id: number): string {
  const node = nodeById(map, id);
  return node === undefined ? String(id) : hostOf(node);
}

export function shardById(map: ClusterMap, id: number): ShardRecord | undefined {
  return map.shards.find((shard) => shard.id === id);
}

/** Every node that holds a replica of the shard in any role. */
export function shardMembers(shard: ShardRecord): number[] {
  return [...new Set([...shard.voters, ...shard.learners, ...shard.votersOutgoing])].sort((a, b) => a - b);
}

export function describeOperation(op: OperationRecord): string {
  if (op.kind === "split") return `split shard ${op.shardId} at slot ${op.splitSlot} (new shard ${op.newShardId})`;
  return op.from === 0
    ? `add a replica of shard ${op.shardId} on node ${op.to}`
    : `move shard ${op.shardId} from node ${op.from} to node ${op.to}`;
}

/** Nodes holding a replica of the metadata group in any role. */
export function metaMembers(map: ClusterMap): number[] {
  const meta = map.meta ?? { voters: [], learners: [], votersOutgoing: [] };
  return [...new Set([...meta.voters, ...meta.learners, ...meta.votersOutgoing])].sort((a, b) => a - b);
}
