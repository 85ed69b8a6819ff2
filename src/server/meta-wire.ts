/**
 * The node-to-node calls of the metadata protocol and their proto messages (proto/tally.proto):
 *   - Heartbeat: the load report a node sends the metadata leader every placement.heartbeatMs
 *     (NodeReport as HeartbeatRequest), answered by the leader's id and, when the sender's map is
 *     older, the whole partition map (HeartbeatReply as HeartbeatResponse, the map as PartitionMap);
 *   - ShardChange: a membership change (or leadership transfer, or split) the leader asks a shard's
 *     leader to make (ShardChangeRequest, one oneof member per action), answered by the shard's epoch.
 * The map travels field for field, with explicit presence where a map may lack a field (an
 * operation's splitSlot and newShardId, the hot list, the meta membership), so a node adopts exactly
 * the map the leader holds. A decoder refuses what it cannot read (INVALID_ARGUMENT): in particular
 * an older node's msgpack body (field 1, reserved) decodes as an empty message and is refused,
 * never misread. One small client pool reaches other nodes' AdminService.
 */
import * as grpc from "@grpc/grpc-js";
import type {
  HeartbeatRequestInput,
  HeartbeatRequestMessage,
  HeartbeatResponseInput,
  HeartbeatResponseMessage,
  PartitionMapInput,
  PartitionMapMessage,
  ShardChangeRequestInput,
  ShardChangeRequestMessage,
  ShardChangeResponseInput,
  ShardChangeResponseMessage,
  ShardReportMessage,
} from "../api/proto.js";
import { tallyProto } from "../api/proto.js";
import { decodeServiceError } from "../api/error-details.js";
import {
  type ClusterMap,
  NODE_STATES,
  type NodeRecord,
  type NodeState,
  type OperationKind,
  type OperationRecord,
  type OperationState,
  type ShardRecord,
} from "../meta/map.js";
import type { HotRecord } from "../meta/hot.js";
import { InvalidArgumentError } from "../util/errors.js";

export interface ShardReport {
  id: number;
  epoch: number;
  slotStart: number;
  slotEnd: number;
  voters: number[];
  learners: number[];
  votersOutgoing: number[];
  leader: number;
  term: number;
  commit: number;
  applied: number;
  isLeader: boolean;
  /** Leaders only: match index of every peer. */
  progress: Array<[number, number]>;
  /** Leaders only: mutations applied per second since the previous report. */
  opsPerSecond: number;
  counters: number;
  /** Leaders only: the slot that halves recent load (where a split would go); 0 = none. */
  splitSlot: number;
}

export interface NodeReport {
  /** host absent: none named (the node's own id). */
  node: { id: number; client: string; peer: string; zone: string; host?: string };
  mapVersion: number;
  shards: ShardReport[];
}

export interface HeartbeatReply {
  metaLeader: number;
  /** Present when the sender's map is older. */
  map?: ClusterMap;
}

export type ShardChangeAction =
  | { action: "add-learner"; nodeId: number }
  | { action: "promote-and-remove"; nodeId: number; removeId: number }
  | { action: "promote"; nodeId: number }
  | { action: "remove"; nodeId: number }
  | { action: "transfer-leader"; nodeId: number }
  | { action: "split"; splitSlot: number; newShardId: number };

export type ShardChangeRequest = ShardChangeAction & { shardId: number; expectedEpoch: number };

// ---- Heartbeat ----

/** The request that carries `report` (the sender's side). */
export function heartbeatRequest(report: NodeReport): HeartbeatRequestInput {
  const { node } = report;
  return {
    node: { id: node.id, clientAddress: node.client, peerAddress: node.peer, zone: node.zone, host: node.host ?? "" },
    mapVersion: report.mapVersion,
    shards: report.shards.map((shard) => ({
      shardId: shard.id,
      epoch: shard.epoch,
      slotStart: shard.slotStart,
      slotEnd: shard.slotEnd,
      voters: shard.voters,
      learners: shard.learners,
      votersOutgoing: shard.votersOutgoing,
      leader: shard.leader,
      term: shard.term,
      commit: shard.commit,
      applied: shard.applied,
      isLeader: shard.isLeader,
      progress: shard.progress.map(([nodeId, match]) => ({ nodeId, match })),
      opsPerSecond: shard.opsPerSecond,
      counters: shard.counters,
      splitSlot: shard.splitSlot,
    })),
  };
}

/** The report a heartbeat carries (the metadata leader's side). */
export function nodeReportOf(request: HeartbeatRequestMessage): NodeReport {
  const node = request.node;
  if (node === null || node.id < 1)
    throw new InvalidArgumentError("heartbeat: node is required (does the sending node run an older version?)");
  return {
    node: { id: node.id, client: node.clientAddress, peer: node.peerAddress, zone: node.zone, ...hostField(node.host) },
    mapVersion: whole(request.mapVersion, "heartbeat map_version"),
    shards: request.shards.map(shardReportOf),
  };
}

function shardReportOf(shard: ShardReportMessage): ShardReport {
  const at = `heartbeat shard ${shard.shardId}`;
  return {
    id: shard.shardId,
    epoch: whole(shard.epoch, `${at} epoch`),
    slotStart: shard.slotStart,
    slotEnd: shard.slotEnd,
    voters: shard.voters,
    learners: shard.learners,
    votersOutgoing: shard.votersOutgoing,
    leader: shard.leader,
    term: whole(shard.term, `${at} term`),
    commit: whole(shard.commit, `${at} commit`),
    applied: whole(shard.applied, `${at} applied`),
    isLeader: shard.isLeader,
    progress: shard.progress.map((peer) => [peer.nodeId, whole(peer.match, `${at} progress`)] as [number, number]),
    opsPerSecond: shard.opsPerSecond,
    counters: whole(shard.counters, `${at} counters`),
    splitSlot: shard.splitSlot,
  };
}

/** The metadata leader's answer. */
export function heartbeatResponse(reply: HeartbeatReply): HeartbeatResponseInput {
  const response: HeartbeatResponseInput = { metaLeader: reply.metaLeader };
  if (reply.map !== undefined) response.map = partitionMap(reply.map);
  return response;
}

/** The answer as the sender reads it. */
export function heartbeatReplyOf(response: HeartbeatResponseMessage): HeartbeatReply {
  if (response.metaLeader < 1)
    throw new InvalidArgumentError("heartbeat reply: meta_leader is required (does the metadata leader run an older version?)");
  const reply: HeartbeatReply = { metaLeader: response.metaLeader };
  if (response.map !== null) reply.map = clusterMapOf(response.map);
  return reply;
}

/** The partition map, field for field (clusterMapOf is the inverse). */
export function partitionMap(map: ClusterMap): PartitionMapInput {
  const message: PartitionMapInput = {
    initialized: map.initialized,
    clusterName: map.clusterName,
    replicationFactor: map.replicationFactor,
    version: map.version,
    clockMs: map.clockMs,
    nodes: map.nodes.map((node) => ({
      id: node.id,
      clientAddress: node.client,
      peerAddress: node.peer,
      zone: node.zone,
      state: node.state,
      sinceMs: node.sinceMs,
      host: node.host ?? "",
    })),
    shards: map.shards.map((shard) => ({ ...shard })),
    operations: map.operations.map((op) => {
      const { splitSlot, newShardId, ...rest } = op;
      return {
        ...rest,
        hasSplitSlot: splitSlot !== undefined,
        splitSlot: splitSlot ?? 0,
        hasNewShardId: newShardId !== undefined,
        newShardId: newShardId ?? 0,
      };
    }),
    nextOperationId: map.nextOperationId,
    hasHot: map.hot !== undefined,
    hot: map.hot ?? [],
  };
  // Maps written before the metadata group reported its membership have none.
  if ((map as Partial<ClusterMap>).meta !== undefined) message.meta = map.meta;
  return message;
}

/** The partition map a PartitionMap carries; refuses a node state, operation kind or state it does not know. */
export function clusterMapOf(message: PartitionMapMessage): ClusterMap {
  const map: ClusterMap = {
    initialized: message.initialized,
    clusterName: message.clusterName,
    replicationFactor: message.replicationFactor,
    version: whole(message.version, "map version"),
    clockMs: whole(message.clockMs, "map clock_ms"),
    nodes: message.nodes.map((node): NodeRecord => ({
      id: node.id,
      client: node.clientAddress,
      peer: node.peerAddress,
      zone: node.zone,
      ...hostField(node.host),
      state: oneOf<NodeState>(node.state, NODE_STATES, `map node ${node.id} state`),
      sinceMs: whole(node.sinceMs, `map node ${node.id} since_ms`),
    })),
    shards: message.shards.map((shard): ShardRecord => ({
      id: shard.id,
      slotStart: shard.slotStart,
      slotEnd: shard.slotEnd,
      epoch: whole(shard.epoch, `map shard ${shard.id} epoch`),
      voters: shard.voters,
      learners: shard.learners,
      votersOutgoing: shard.votersOutgoing,
    })),
    meta: { voters: [], learners: [], votersOutgoing: [] },
    operations: message.operations.map(operationOf),
    nextOperationId: whole(message.nextOperationId, "map next_operation_id"),
  };
  if (message.meta !== null) {
    const { voters, learners, votersOutgoing } = message.meta;
    map.meta = { voters, learners, votersOutgoing };
  } else delete (map as Partial<ClusterMap>).meta;
  if (message.hasHot)
    map.hot = message.hot.map((hot): HotRecord => ({
      key: Buffer.from(hot.key),
      tags: hot.tags,
      writable: hot.writable,
      declaredVersion: whole(hot.declaredVersion, "map hot declared_version"),
      updatedMs: whole(hot.updatedMs, "map hot updated_ms"),
    }));
  return map;
}

const OPERATION_KINDS: readonly OperationKind[] = ["move", "split"];
const OPERATION_STATES: readonly OperationState[] = ["running", "done", "aborted"];

function operationOf(op: PartitionMapMessage["operations"][number]): OperationRecord {
  const id = whole(op.id, "map operation id");
  const record: OperationRecord = {
    id,
    kind: oneOf(op.kind, OPERATION_KINDS, `map operation ${id} kind`),
    shardId: op.shardId,
    from: op.from,
    to: op.to,
    state: oneOf(op.state, OPERATION_STATES, `map operation ${id} state`),
    step: op.step,
    reason: op.reason,
    createdMs: whole(op.createdMs, `map operation ${id} created_ms`),
    updatedMs: whole(op.updatedMs, `map operation ${id} updated_ms`),
  };
  if (op.hasSplitSlot) record.splitSlot = op.splitSlot;
  if (op.hasNewShardId) record.newShardId = op.newShardId;
  return record;
}

// ---- ShardChange ----

/** The request that asks for `request` (the metadata leader's side). */
export function shardChangeRequest(request: ShardChangeRequest): ShardChangeRequestInput {
  const message: ShardChangeRequestInput = { shardId: request.shardId, expectedEpoch: request.expectedEpoch };
  switch (request.action) {
    case "add-learner":
      return { ...message, addLearner: { nodeId: request.nodeId } };
    case "promote-and-remove":
      return { ...message, promoteAndRemove: { nodeId: request.nodeId, removeId: request.removeId } };
    case "promote":
      return { ...message, promote: { nodeId: request.nodeId } };
    case "remove":
      return { ...message, remove: { nodeId: request.nodeId } };
    case "transfer-leader":
      return { ...message, transferLeader: { nodeId: request.nodeId } };
    case "split":
      return { ...message, split: { splitSlot: request.splitSlot, newShardId: request.newShardId } };
  }
}

/** The change a ShardChangeRequest asks for (the shard leader's side). */
export function shardChangeOf(message: ShardChangeRequestMessage): ShardChangeRequest {
  const base = { shardId: message.shardId, expectedEpoch: whole(message.expectedEpoch, "shard change expected_epoch") };
  if (base.shardId < 1 || message.action === undefined)
    throw new InvalidArgumentError("shard change: shard_id and an action are required (does the metadata leader run an older version?)");
  const nodeId = (field: { nodeId: number } | null | undefined): number => {
    if (field === null || field === undefined || field.nodeId < 1) throw new InvalidArgumentError("shard change: node_id is required");
    return field.nodeId;
  };
  switch (message.action) {
    case "addLearner":
      return { ...base, action: "add-learner", nodeId: nodeId(message.addLearner) };
    case "promoteAndRemove": {
      const removeId = message.promoteAndRemove?.removeId ?? 0;
      if (removeId < 1) throw new InvalidArgumentError("shard change: remove_id is required");
      return { ...base, action: "promote-and-remove", nodeId: nodeId(message.promoteAndRemove), removeId };
    }
    case "promote":
      return { ...base, action: "promote", nodeId: nodeId(message.promote) };
    case "remove":
      return { ...base, action: "remove", nodeId: nodeId(message.remove) };
    case "transferLeader":
      return { ...base, action: "transfer-leader", nodeId: nodeId(message.transferLeader) };
    case "split": {
      const split = message.split;
      if (split === null || split === undefined || split.splitSlot < 1 || split.newShardId < 1)
        throw new InvalidArgumentError("shard change: split_slot and new_shard_id are required");
      return { ...base, action: "split", splitSlot: split.splitSlot, newShardId: split.newShardId };
    }
  }
}

export function shardChangeResponse(reply: { epoch: number }): ShardChangeResponseInput {
  return { epoch: reply.epoch };
}

export function shardChangeReplyOf(response: ShardChangeResponseMessage): { epoch: number } {
  const epoch = whole(response.epoch, "shard change reply epoch");
  if (epoch < 1) throw new InvalidArgumentError("shard change reply: epoch is required (does the shard leader run an older version?)");
  return { epoch };
}

/** A uint64 field (a decimal string) as a number; refused above 2^53. */
function whole(raw: string, field: string): number {
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError(`${field}: ${raw} is not an unsigned integer below 2^53`);
  return value;
}

function oneOf<T extends string>(raw: string, allowed: readonly T[], field: string): T {
  if (!(allowed as readonly string[]).includes(raw))
    throw new InvalidArgumentError(`${field}: ${JSON.stringify(raw)} is not one of ${allowed.join(", ")}`);
  return raw as T;
}

// ---- The client pool ----

/** What each node-to-node call of this protocol sends and gets back, and its codec. */
interface InternalCalls {
  heartbeat: { request: NodeReport; reply: HeartbeatReply };
  shardChange: { request: ShardChangeRequest; reply: { epoch: number } };
}
type InternalCodecs = {
  [M in keyof InternalCalls]: { encode(request: InternalCalls[M]["request"]): object; decode(response: never): InternalCalls[M]["reply"] };
};
const INTERNAL_CODECS: InternalCodecs = {
  heartbeat: { encode: heartbeatRequest, decode: heartbeatReplyOf },
  shardChange: { encode: shardChangeRequest, decode: shardChangeReplyOf },
};

type AdminClient = grpc.Client & Record<string, any>;

/**
 * gRPC clients of other nodes' AdminService, one per address, closed with the node. They present
 * the node's own credentials: its certificate when TLS is on, the internal token when auth is on
 * (both given lazily, as functions, so they are read when the first call is made).
 */
export class AdminClients {
  private readonly clients = new Map<string, AdminClient>();

  constructor(
    private readonly credentials: () => grpc.ChannelCredentials = () => grpc.credentials.createInsecure(),
    private readonly metadata: () => grpc.Metadata | undefined = () => undefined,
  ) {}

  private client(address: string): AdminClient {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new (tallyProto().AdminService)(address, this.credentials()) as AdminClient;
      this.clients.set(address, client);
    }
    return client;
  }

  /** Calls method with the request; rejects with the server's typed error, or UNAVAILABLE. */
  call<T>(address: string, method: string, request: unknown, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      // grpc-js measures a deadline against the system clock, so it is Date.now(), not util/clock.
      this.client(address)[method](
        request,
        this.metadata() ?? new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (error: grpc.ServiceError | null, response: T) => {
          if (error === null) resolve(response);
          else reject(decodeServiceError(error).error);
        },
      );
    });
  }

  /** A node-to-node call of the metadata protocol: Heartbeat or ShardChange, in its proto messages. */
  async internal<M extends keyof InternalCalls>(
    address: string,
    method: M,
    request: InternalCalls[M]["request"],
    timeoutMs: number,
  ): Promise<InternalCalls[M]["reply"]> {
    const codec: InternalCodecs[M] = INTERNAL_CODECS[method];
    const response = await this.call<never>(address, method, codec.encode(request), timeoutMs);
    return codec.decode(response);
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/** A node's host off the wire: "" is how proto3 says none (older senders, maps from before hosts). */
function hostField(host: string): { host?: string } {
  return host === "" ? {} : { host };
}
