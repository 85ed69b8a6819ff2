/**
 * The rules of the meta commands, one function per command type: each checks its command against
 * the map and changes the map in place, or refuses with a MetaResult. MetaStateMachine.apply
 * (map.ts) dispatches to them. Pure and deterministic: `now` is the leader's stamp of the entry.
 */
import { InvalidArgumentError } from "../util/errors.js";
import {
  type ClusterMap,
  describeOperation,
  hostOf,
  hostOfId,
  hotRecordOf,
  type MetaCommand,
  type MetaResult,
  metaMembers,
  NODE_STATES,
  nodeById,
  type NodeRecord,
  shardById,
  shardMembers,
  shardOfSlotIn,
  type ShardRecord,
} from "./cluster-map.js";
import {
  chooseHotTags,
  hotTagsProblem,
  HOT_KEY_BYTES_MAX,
  HOT_KEYS_MAX,
  HOT_SUB_COUNTERS_MAX,
  isHotSubKey,
  type HotRecord,
} from "./hot.js";
import { SLOT_COUNT } from "./slots.js";

type CommandOf<T extends MetaCommand["type"]> = Extract<MetaCommand, { type: T }>;

const FINISHED_KEPT = 50;

/** Initializes the map once; a second init changes nothing. */
export function applyInit(map: ClusterMap, command: CommandOf<"init">, now: number): MetaResult {
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

/** The metadata group's own membership, as its leader applied it. */
export function applyMetaReport(map: ClusterMap, command: CommandOf<"meta-report">): MetaResult {
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

/** Adds a node; node ids and live addresses are never reused. */
export function applyNodeAdd(map: ClusterMap, command: CommandOf<"node-add">, now: number): MetaResult {
  validateNode(command.node);
  const existing = nodeById(map, command.node.id);
  if (existing !== undefined) {
    const same =
      existing.client === command.node.client &&
      existing.peer === command.node.peer &&
      existing.zone === command.node.zone &&
      hostOf(existing) === hostOf(command.node);
    if (same && existing.state !== "removed") return { ok: true, changed: false };
    return {
      ok: false,
      code: "FAILED_PRECONDITION",
      message: `node ${command.node.id} already exists (${existing.client}, zone ${existing.zone}, host ${hostOf(existing)}, ${existing.state}); node ids are never reused`,
    };
  }
  for (const node of map.nodes) {
    if (node.state === "removed") continue;
    if (node.client === command.node.client || node.peer === command.node.peer) {
      return { ok: false, code: "FAILED_PRECONDITION", message: `address already used by node ${node.id}` };
    }
    // A machine sits in one zone: a host named in two would let zone spread count it twice.
    if (hostOf(node) === hostOf(command.node) && node.zone !== command.node.zone) {
      return {
        ok: false,
        code: "FAILED_PRECONDITION",
        message: `host ${hostOf(node)} is in zone ${node.zone} (node ${node.id}), not ${command.node.zone}`,
      };
    }
  }
  map.nodes.push({ ...command.node, state: "up", sinceMs: now });
  map.nodes.sort((a, b) => a.id - b.id);
  return { ok: true, changed: true };
}

/** Changes a node's state; removal is final and needs the node to hold no replica. */
export function applyNodeState(map: ClusterMap, command: CommandOf<"node-state">, now: number): MetaResult {
  const node = nodeById(map, command.nodeId);
  if (node === undefined) return { ok: false, code: "NOT_FOUND", message: `node ${command.nodeId} is not in the cluster` };
  if (!NODE_STATES.includes(command.state)) throw new InvalidArgumentError(`unknown node state ${String(command.state)}`);
  if (node.state === command.state) return { ok: true, changed: false };
  if (node.state === "removed") return { ok: false, code: "FAILED_PRECONDITION", message: `node ${node.id} was removed; removal is final` };
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

/** Adopts a shard's descriptor when its epoch is newer; a split's right part becomes the new shard. */
export function applyShardReport(map: ClusterMap, command: CommandOf<"shard-report">): MetaResult {
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

/** Starts a move or a split; at most one operation runs per shard. */
export function applyOpStart(map: ClusterMap, command: CommandOf<"op-start">, now: number): MetaResult {
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
    const newShardId = Math.max(0, ...map.shards.map((other) => other.id), ...map.operations.map((other) => other.newShardId ?? 0)) + 1;
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
  // The host rule is hard: a move that would leave two replicas of the shard on one machine is
  // refused, whoever asked (the planner never proposes one; an operator's `shard move` may).
  const sameHost = members.find((id) => id !== op.from && hostOfId(map, id) === hostOf(target));
  if (sameHost !== undefined)
    return {
      ok: false,
      code: "FAILED_PRECONDITION",
      message: `node ${op.to} is on host ${hostOf(target)}, which already holds a replica of shard ${op.shardId} (node ${sameHost}); two replicas of a shard never share a host`,
    };
  const id = map.nextOperationId++;
  map.operations.push({ ...op, id, state: "running", step: "planned", createdMs: now, updatedMs: now });
  return { ok: true, opId: id, changed: true };
}

/** Records an operation's progress or end; keeps the last FINISHED_KEPT finished ones. */
export function applyOpUpdate(map: ClusterMap, command: CommandOf<"op-update">, now: number): MetaResult {
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

/**
 * Invariant: a hot key's sub-counter count only grows and its tags never change, so every
 * sub-counter that ever took an add stays in the set that readers sum.
 */
export function declareHot(map: ClusterMap, rawKey: unknown, subCounters: unknown, index: number): MetaResult {
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

/** Lets writers use more of a hot key's sub-counters; the count never shrinks. */
export function applyHotActivate(map: ClusterMap, command: CommandOf<"hot-activate">, now: number): MetaResult {
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

function sortedIds(ids: unknown): number[] {
  if (!Array.isArray(ids)) throw new InvalidArgumentError("node id list is not a list");
  for (const id of ids) positiveInteger(id, "node id");
  return [...(ids as number[])].sort((a, b) => a - b);
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
  // Absent: the node's own id. Present: a name, never empty (empty is how the wire says absent).
  if (node.host !== undefined && (typeof node.host !== "string" || node.host.length === 0 || node.host.length > 256))
    throw new InvalidArgumentError("node host must be a non-empty string of at most 256 characters");
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
