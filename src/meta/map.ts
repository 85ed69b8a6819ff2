/**
 * The metadata group's state machine: the partition map. Replicated by its own Raft group (group
 * 0, on the first `metaReplicas` nodes), it holds
 *   - nodes: id, addresses, zone, and the operator/controller state (up, down, draining, removed);
 *   - shards: id, slot range, epoch, voters and learners, as last reported by the shard's leader;
 *   - operations: replica moves in flight and the last finished ones, so that a move survives a
 *     crash of its coordinator (the meta leader) and a new leader resumes it.
 *
 * Authority: the meta group decides membership (which nodes exist, what moves to make); each shard
 * is the authority on its own descriptor (epoch, replica set), which changes only through entries
 * in the shard's own log (CockroachDB's range descriptors). The map mirrors those descriptors:
 * shard leaders report them, and a report is adopted only if its epoch is newer, so the map only
 * moves forward. Liveness (heartbeats, load) is soft state on the meta leader, never logged.
 *
 * Pure and deterministic like src/shard: time is the leader's stamp in each entry.
 */
import { Packr } from "msgpackr";
import { assert } from "../util/assert.js";
import { CorruptionError, InvalidArgumentError } from "../util/errors.js";
import { SLOT_COUNT } from "./slots.js";
import {
  chooseHotTags,
  hotTagsProblem,
  HOT_KEY_BYTES_MAX,
  HOT_KEYS_MAX,
  HOT_SUB_COUNTERS_MAX,
  isHotSubKey,
  type HotRecord,
} from "./hot.js";

export type NodeState = "up" | "down" | "draining" | "removed";
export const NODE_STATES: readonly NodeState[] = ["up", "down", "draining", "removed"];

export interface NodeRecord {
  id: number;
  client: string;
  peer: string;
  zone: string;
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

const FINISHED_KEPT = 50;
const packr = new Packr({ useRecords: false, moreTypes: false });

export function encodeMetaEntry(timestampMs: number, commands: MetaCommand[]): Uint8Array {
  return packr.pack([timestampMs, commands]);
}

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

export function shardById(map: ClusterMap, id: number): ShardRecord | undefined {
  return map.shards.find((shard) => shard.id === id);
}

/** Every node that holds a replica of the shard in any role. */
export function shardMembers(shard: ShardRecord): number[] {
  return [...new Set([...shard.voters, ...shard.learners, ...shard.votersOutgoing])].sort((a, b) => a - b);
}

export class MetaStateMachine {
  private state: ClusterMap = emptyMap();

  get appliedIndex(): number {
    return this.state.version;
  }

  get map(): Readonly<ClusterMap> {
    return this.state;
  }

  /** Applies one committed entry; results in command order. Empty data is a no-op entry. */
  applyEntry(index: number, data: Uint8Array): MetaResult[] {
    assert(index > this.state.version, `meta entry ${index} applied out of order (applied ${this.state.version})`);
    this.state.version = index;
    if (data.length === 0) return [];
    let decoded: unknown;
    try {
      decoded = packr.unpack(data);
    } catch (error) {
      throw new CorruptionError(`meta entry ${index} does not decode: ${(error as Error).message}`);
    }
    if (!Array.isArray(decoded) || decoded.length !== 2 || typeof decoded[0] !== "number" || !Array.isArray(decoded[1])) {
      throw new CorruptionError(`meta entry ${index} has the wrong shape`);
    }
    const timestampMs = decoded[0];
    if (timestampMs > this.state.clockMs) this.state.clockMs = timestampMs;
    return (decoded[1] as MetaCommand[]).map((command) => {
      try {
        return this.apply(command, index);
      } catch (error) {
        if (error instanceof InvalidArgumentError) return { ok: false, code: "INVALID_ARGUMENT", message: error.message };
        throw error;
      }
    });
  }

  private apply(command: MetaCommand, index: number): MetaResult {
    const map = this.state;
    const now = map.clockMs;
    if (command.type !== "init" && !map.initialized)
      return { ok: false, code: "FAILED_PRECONDITION", message: "the partition map is not initialized yet" };
    switch (command.type) {
      case "init": {
        if (map.initialized) return { ok: true, changed: false };
        validateInit(command);
        map.initialized = true;
        map.clusterName = command.clusterName;
        map.replicationFactor = command.replicationFactor;
        map.nodes = command.nodes.map((node) => ({ ...node, state: "up", sinceMs: now }));
        map.shards = command.shards.map(copyShard);
        map.meta = { voters: [...command.metaVoters].sort((a, b) => a - b), learners: [], votersOutgoing: [] };
        // A restored cluster (tallyctl restore) starts with the backup's hot counters, every
        // sub-counter writable: every node starts from this map.
        map.hot = (command.hot ?? [])
          .map((hot) => ({ key: hotKey(hot.key), tags: [...hot.tags], writable: hot.tags.length, declaredVersion: 0, updatedMs: now }))
          .sort((a, b) => Buffer.compare(a.key, b.key));
        return { ok: true, changed: true };
      }
      case "meta-report": {
        const next = {
          voters: sortedIds(command.voters),
          learners: sortedIds(command.learners),
          votersOutgoing: sortedIds(command.votersOutgoing),
        };
        if (next.voters.length === 0) throw new InvalidArgumentError("the metadata group cannot have no voters");
        if (JSON.stringify(next) === JSON.stringify(map.meta)) return { ok: true, changed: false };
        map.meta = next;
        return { ok: true, changed: true };
      }
      case "node-add": {
        validateNode(command.node);
        const existing = nodeById(map, command.node.id);
        if (existing !== undefined) {
          const same =
            existing.client === command.node.client && existing.peer === command.node.peer && existing.zone === command.node.zone;
          if (same && existing.state !== "removed") return { ok: true, changed: false };
          return {
            ok: false,
            code: "FAILED_PRECONDITION",
            message: `node ${command.node.id} already exists (${existing.client}, zone ${existing.zone}, ${existing.state}); node ids are never reused`,
          };
        }
        for (const node of map.nodes) {
          if (node.state === "removed") continue;
          if (node.client === command.node.client || node.peer === command.node.peer) {
            return { ok: false, code: "FAILED_PRECONDITION", message: `address already used by node ${node.id}` };
          }
        }
        map.nodes.push({ ...command.node, state: "up", sinceMs: now });
        map.nodes.sort((a, b) => a.id - b.id);
        return { ok: true, changed: true };
      }
      case "node-state": {
        const node = nodeById(map, command.nodeId);
        if (node === undefined) return { ok: false, code: "NOT_FOUND", message: `node ${command.nodeId} is not in the cluster` };
        if (!NODE_STATES.includes(command.state)) throw new InvalidArgumentError(`unknown node state ${String(command.state)}`);
        if (node.state === command.state) return { ok: true, changed: false };
        if (node.state === "removed")
          return { ok: false, code: "FAILED_PRECONDITION", message: `node ${node.id} was removed; removal is final` };
        if (command.state === "removed") {
          const holding = map.shards.filter((shard) => shardMembers(shard).includes(node.id)).map((shard) => shard.id);
          if (metaMembers(map).includes(node.id)) {
            return {
              ok: false,
              code: "FAILED_PRECONDITION",
              message: `node ${node.id} still holds a replica of the metadata group; drain it first`,
            };
          }
          if (holding.length > 0) {
            return {
              ok: false,
              code: "FAILED_PRECONDITION",
              message: `node ${node.id} still holds replicas of shards ${holding.join(", ")}; drain it first`,
            };
          }
        }
        node.state = command.state;
        node.sinceMs = now;
        return { ok: true, changed: true };
      }
      case "shard-report": {
        validateShard(command.shard);
        const shard = shardById(map, command.shard.id);
        if (shard === undefined) {
          return { ok: false, code: "NOT_FOUND", message: `shard ${command.shard.id} is not in the map` };
        }
        if (command.shard.epoch <= shard.epoch) return { ok: true, changed: false };
        if (command.shard.slotStart !== shard.slotStart || command.shard.slotEnd > shard.slotEnd) {
          return {
            ok: false,
            code: "FAILED_PRECONDITION",
            message: `shard ${shard.id} reported range [${command.shard.slotStart}, ${command.shard.slotEnd}) that is not a left part of [${shard.slotStart}, ${shard.slotEnd})`,
          };
        }
        if (command.shard.slotEnd < shard.slotEnd) {
          // The shard split: its right part is the new shard the running split named.
          const split = map.operations.find(
            (op) => op.state === "running" && op.kind === "split" && op.shardId === shard.id && op.splitSlot === command.shard.slotEnd,
          );
          if (split === undefined || split.newShardId === undefined) {
            return {
              ok: false,
              code: "FAILED_PRECONDITION",
              message: `shard ${shard.id} shrank to slot ${command.shard.slotEnd} without a split operation naming it`,
            };
          }
          if (shardById(map, split.newShardId) === undefined) {
            map.shards.push(
              copyShard({
                ...command.shard,
                id: split.newShardId,
                slotStart: command.shard.slotEnd,
                slotEnd: shard.slotEnd,
                learners: [],
                votersOutgoing: [],
              }),
            );
            map.shards.sort((a, b) => a.slotStart - b.slotStart);
          }
        }
        Object.assign(shard, copyShard(command.shard));
        return { ok: true, changed: true };
      }
      case "op-start": {
        const { op } = command;
        const shard = shardById(map, op.shardId);
        if (shard === undefined) return { ok: false, code: "NOT_FOUND", message: `shard ${op.shardId} does not exist` };
        const busy = map.operations.find((other) => other.state === "running" && other.shardId === op.shardId);
        if (busy !== undefined)
          return {
            ok: false,
            code: "FAILED_PRECONDITION",
            message: `shard ${op.shardId} already has operation ${busy.id} running (${describeOperation(busy)})`,
          };
        if (op.kind === "split") {
          const slot = op.splitSlot ?? -1;
          if (!(Number.isInteger(slot) && slot > shard.slotStart && slot < shard.slotEnd)) {
            return {
              ok: false,
              code: "FAILED_PRECONDITION",
              message: `split slot ${slot} is not inside shard ${shard.id}'s slots ${shard.slotStart}-${shard.slotEnd - 1}`,
            };
          }
          const newShardId =
            Math.max(0, ...map.shards.map((other) => other.id), ...map.operations.map((other) => other.newShardId ?? 0)) + 1;
          const id = map.nextOperationId++;
          map.operations.push({
            ...op,
            from: 0,
            to: 0,
            splitSlot: slot,
            newShardId,
            id,
            state: "running",
            step: "planned",
            createdMs: now,
            updatedMs: now,
          });
          return { ok: true, opId: id, changed: true };
        }
        const target = nodeById(map, op.to);
        if (target === undefined || target.state !== "up")
          return { ok: false, code: "FAILED_PRECONDITION", message: `target node ${op.to} is not an up node` };
        const members = shardMembers(shard);
        if (op.from !== 0 && !shard.voters.includes(op.from))
          return {
            ok: false,
            code: "FAILED_PRECONDITION",
            message: `node ${op.from} is not a voter of shard ${op.shardId} (voters ${shard.voters.join(", ")})`,
          };
        if (members.includes(op.to))
          return { ok: false, code: "FAILED_PRECONDITION", message: `node ${op.to} already holds a replica of shard ${op.shardId}` };
        const id = map.nextOperationId++;
        map.operations.push({ ...op, id, state: "running", step: "planned", createdMs: now, updatedMs: now });
        return { ok: true, opId: id, changed: true };
      }
      case "op-update": {
        const op = map.operations.find((candidate) => candidate.id === command.id);
        if (op === undefined) return { ok: false, code: "NOT_FOUND", message: `operation ${command.id} is unknown` };
        if (op.state !== "running") return { ok: true, changed: false };
        op.state = command.state;
        op.step = String(command.step).slice(0, 200);
        op.updatedMs = now;
        const finished = map.operations.filter((candidate) => candidate.state !== "running");
        if (finished.length > FINISHED_KEPT) {
          const drop = new Set(finished.slice(0, finished.length - FINISHED_KEPT));
          map.operations = map.operations.filter((candidate) => !drop.has(candidate));
        }
        return { ok: true, changed: true };
      }
      case "hot-declare":
        return this.declareHot(command.key, command.subCounters, index);
      case "hot-activate": {
        const key = hotKey(command.key);
        const record = hotRecordOf(map, key);
        if (record === undefined) return { ok: false, code: "NOT_FOUND", message: "the key is not a hot counter" };
        if (!(Number.isInteger(command.writable) && command.writable >= 1))
          throw new InvalidArgumentError(`writable must be a positive integer, got ${String(command.writable)}`);
        const writable = Math.min(command.writable, record.tags.length);
        if (writable <= record.writable) return { ok: true, changed: false };
        map.hot = (map.hot ?? []).map((other) => (other === record ? { ...record, writable, updatedMs: now } : other));
        return { ok: true, changed: true };
      }
      default:
        throw new InvalidArgumentError(`unknown meta command ${String((command as { type: unknown }).type)} at index ${index}`);
    }
  }

  /**
   * Invariant: a hot key's sub-counter count only grows and its tags never change, so every
   * sub-counter that ever took an add stays in the set that readers sum.
   */
  private declareHot(rawKey: unknown, subCounters: unknown, index: number): MetaResult {
    const map = this.state;
    const key = hotKey(rawKey);
    if (!(typeof subCounters === "number" && Number.isInteger(subCounters) && subCounters >= 2 && subCounters <= HOT_SUB_COUNTERS_MAX)) {
      throw new InvalidArgumentError(`sub-counter count must be an integer in 2..${HOT_SUB_COUNTERS_MAX}, got ${String(subCounters)}`);
    }
    const record = hotRecordOf(map, key);
    if (record !== undefined && subCounters < record.tags.length) {
      return {
        ok: false,
        code: "FAILED_PRECONDITION",
        message: `the key already has ${record.tags.length} sub-counters; the count only grows (asked ${subCounters})`,
      };
    }
    if (record !== undefined && subCounters === record.tags.length) return { ok: true, changed: false };
    if (record === undefined && (map.hot ?? []).length >= HOT_KEYS_MAX) {
      return { ok: false, code: "FAILED_PRECONDITION", message: `the map already holds ${HOT_KEYS_MAX} hot keys` };
    }
    const tags = chooseHotTags(key, record?.tags ?? [], subCounters, (slot) => shardOfSlotIn(map, slot));
    const next: HotRecord = {
      key: Uint8Array.from(key),
      tags,
      writable: record?.writable ?? 1,
      declaredVersion: index,
      updatedMs: map.clockMs,
    };
    map.hot = [...(map.hot ?? []).filter((other) => other !== record), next].sort((a, b) => Buffer.compare(a.key, b.key));
    return { ok: true, changed: true };
  }

  snapshot(): Uint8Array {
    return packr.pack(this.state);
  }

  static restore(data: Uint8Array): MetaStateMachine {
    const machine = new MetaStateMachine();
    let decoded: unknown;
    try {
      decoded = packr.unpack(data);
    } catch (error) {
      throw new CorruptionError(`meta state does not decode: ${(error as Error).message}`);
    }
    const state = decoded as ClusterMap;
    if (
      typeof state !== "object" ||
      state === null ||
      !Array.isArray(state.nodes) ||
      !Array.isArray(state.shards) ||
      !Array.isArray(state.operations)
    ) {
      throw new CorruptionError("meta state has the wrong shape");
    }
    machine.state = state;
    return machine;
  }
}

export function describeOperation(op: OperationRecord): string {
  if (op.kind === "split") return `split shard ${op.shardId} at slot ${op.splitSlot} (new shard ${op.newShardId})`;
  return op.from === 0
    ? `add a replica of shard ${op.shardId} on node ${op.to}`
    : `move shard ${op.shardId} from node ${op.from} to node ${op.to}`;
}

function sortedIds(ids: unknown): number[] {
  if (!Array.isArray(ids)) throw new InvalidArgumentError("node id list is not a list");
  for (const id of ids) positiveInteger(id, "node id");
  return [...(ids as number[])].sort((a, b) => a - b);
}

/** Nodes holding a replica of the metadata group in any role. */
export function metaMembers(map: ClusterMap): number[] {
  const meta = map.meta ?? { voters: [], learners: [], votersOutgoing: [] };
  return [...new Set([...meta.voters, ...meta.learners, ...meta.votersOutgoing])].sort((a, b) => a - b);
}

function copyShard(shard: ShardRecord): ShardRecord {
  return {
    id: shard.id,
    slotStart: shard.slotStart,
    slotEnd: shard.slotEnd,
    epoch: shard.epoch,
    voters: [...shard.voters].sort((a, b) => a - b),
    learners: [...shard.learners].sort((a, b) => a - b),
    votersOutgoing: [...(shard.votersOutgoing ?? [])].sort((a, b) => a - b),
  };
}

function hotKey(raw: unknown): Uint8Array {
  if (!(raw instanceof Uint8Array)) throw new InvalidArgumentError("hot key must be bytes");
  if (raw.length < 1 || raw.length > HOT_KEY_BYTES_MAX)
    throw new InvalidArgumentError(`hot key must be 1..${HOT_KEY_BYTES_MAX} bytes, got ${raw.length}`);
  if (isHotSubKey(raw)) throw new InvalidArgumentError("hot key contains the reserved sub-counter suffix \\0hot:");
  return raw;
}

function positiveInteger(value: unknown, what: string): void {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1)
    throw new InvalidArgumentError(`${what} must be a positive integer, got ${String(value)}`);
}

function validateNode(node: Omit<NodeRecord, "state" | "sinceMs">): void {
  positiveInteger(node.id, "node id");
  for (const field of ["client", "peer", "zone"] as const) {
    if (typeof node[field] !== "string" || node[field].length === 0 || node[field].length > 256)
      throw new InvalidArgumentError(`node ${field} must be a non-empty string`);
  }
}

function validateShard(shard: ShardRecord): void {
  positiveInteger(shard.id, "shard id");
  positiveInteger(shard.epoch, "shard epoch");
  if (!(
    Number.isInteger(shard.slotStart) &&
    Number.isInteger(shard.slotEnd) &&
    shard.slotStart >= 0 &&
    shard.slotStart < shard.slotEnd &&
    shard.slotEnd <= SLOT_COUNT
  )) {
    throw new InvalidArgumentError(`shard ${shard.id} slot range [${shard.slotStart}, ${shard.slotEnd}) is invalid`);
  }
  for (const list of [shard.voters, shard.learners, shard.votersOutgoing ?? []]) {
    if (!Array.isArray(list)) throw new InvalidArgumentError(`shard ${shard.id} replica list is not a list`);
    for (const id of list) positiveInteger(id, `shard ${shard.id} replica id`);
  }
  if (shard.voters.length === 0) throw new InvalidArgumentError(`shard ${shard.id} has no voters`);
}

function validateInit(command: Extract<MetaCommand, { type: "init" }>): void {
  positiveInteger(command.replicationFactor, "replicationFactor");
  if (!Array.isArray(command.nodes) || command.nodes.length === 0) throw new InvalidArgumentError("init names no nodes");
  command.nodes.forEach(validateNode);
  if (!Array.isArray(command.shards) || command.shards.length === 0) throw new InvalidArgumentError("init names no shards");
  command.shards.forEach(validateShard);
  let next = 0;
  for (const shard of [...command.shards].sort((a, b) => a.slotStart - b.slotStart)) {
    if (shard.slotStart !== next) throw new InvalidArgumentError(`init slot ranges leave a gap or overlap at slot ${next}`);
    next = shard.slotEnd;
  }
  if (next !== SLOT_COUNT) throw new InvalidArgumentError(`init slot ranges end at ${next}, not ${SLOT_COUNT}`);
  const hot = command.hot ?? [];
  if (!Array.isArray(hot) || hot.length > HOT_KEYS_MAX) throw new InvalidArgumentError(`init hot must list at most ${HOT_KEYS_MAX} keys`);
  const keys = new Set<string>();
  for (const record of hot) {
    const key = Buffer.from(hotKey(record.key)).toString("latin1");
    if (keys.has(key)) throw new InvalidArgumentError("init names a hot key twice");
    keys.add(key);
    const problem = hotTagsProblem(record.tags);
    if (problem !== undefined) throw new InvalidArgumentError(`init hot key tags ${problem}`);
  }
}
