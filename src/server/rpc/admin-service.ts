/**
 * AdminService (proto/tally.proto) for one node: status, the cluster map, membership and placement
 * changes (answered by the metadata leader: others reply NOT_LEADER with its address), leadership
 * transfer and unsafe recovery. The node-to-node methods of the same service are in internal.ts,
 * ShardBackup in src/server/backup/backup-service.ts.
 */
import * as grpc from "@grpc/grpc-js";
import type {
  ClusterMapResponseInput,
  DeclareHotRequestMessage,
  FailoverRequestMessage,
  MetaChangeResponseInput,
  NodeAddRequestMessage,
  NodeStateRequestMessage,
  NodeStatusInput,
  PeerLagInput,
  RebalanceRequestMessage,
  RebalanceResponseInput,
  RecoverUnsafeRequestMessage,
  ShardMoveRequestMessage,
  ShardSplitRequestMessage,
  StatusRequestMessage,
  StatusResponseInput,
  StatusResponseMessage,
  TransferLeaderRequestMessage,
  TransferLeaderResponseInput,
} from "../../api/proto.js";
import { tallyProto } from "../../api/proto.js";
import { hostOf, hotRecordOf, shardMembers, type MetaCommand } from "../../meta/map.js";
import { Role } from "../../raft/types.js";
import { describeKey } from "../../shard/keys.js";
import { wallClockMs } from "../../util/clock.js";
import { FailedPreconditionError, InvalidArgumentError, TallyError } from "../../util/errors.js";
import { internalCallMetadata } from "../config/auth.js";
import { nodeClientCredentials } from "../config/tls.js";
import type { MetaController } from "../meta-controller.js";
import type { TallyNode } from "../node.js";
import { key, u32 } from "./fields.js";

/** How long Status waits for each other node's own status. */
const PEER_STATUS_TIMEOUT_MS = 1500;

type MetaChangeResponse = MetaChangeResponseInput;
type NodeStatus = NodeStatusInput;
type StatusCall = (
  request: Partial<StatusRequestMessage>,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response: StatusResponseMessage) => void,
) => void;

const roleName: Record<Role, string> = {
  [Role.Follower]: "follower",
  [Role.PreCandidate]: "pre-candidate",
  [Role.Candidate]: "candidate",
  [Role.Leader]: "leader",
};

/** The AdminService calls, bound to one node. */
export class AdminApi {
  constructor(private readonly node: TallyNode) {}

  /** This node's status, and unless `localOnly` every other known node's, asked in parallel. */
  async status(request: StatusRequestMessage): Promise<StatusResponseInput> {
    const node = this.node;
    const local = this.localStatus();
    if (request.localOnly) return { nodes: [local] };
    const known = node.map.nodes.length > 0 ? node.map.nodes.filter((n) => n.state !== "removed") : node.config.nodes;
    const credentials = nodeClientCredentials(node.config, node.self);
    const others = await Promise.all(
      known.filter((n) => n.id !== node.nodeId).map((n) => fetchPeerStatus(n, credentials, internalCallMetadata(node.config))),
    );
    return { nodes: [local, ...others].sort((a, b) => Number(a.nodeId) - Number(b.nodeId)) };
  }

  /** The map for tallyctl, with the metadata leader's liveness and load when this node is it. */
  clusterMap(): ClusterMapResponseInput {
    const map = this.node.map;
    const controller = this.node.metaController;
    const counts = controller?.counts();
    const leaders = controller?.leaders() ?? new Map<number, number>();
    if (controller === undefined) {
      for (const replica of this.node.replicas.values()) if (replica.leader !== 0) leaders.set(replica.shardId, replica.leader);
    }
    const nowMs = wallClockMs();
    return {
      version: String(map.version),
      metaLeaderId: this.node.meta?.leader ? String(this.node.meta.leader) : this.node.metaLeaderId ? String(this.node.metaLeaderId) : "",
      fromMetaLeader: controller !== undefined,
      metaVoters: (map.meta?.voters ?? []).map(String),
      metaLearners: (map.meta?.learners ?? []).map(String),
      nodes: map.nodes.map((n) => {
        const ago = controller?.lastSeenAgoMs(n.id);
        return {
          nodeId: String(n.id),
          clientAddress: n.client,
          peerAddress: n.peer,
          zone: n.zone,
          host: hostOf(n),
          state: n.state,
          alive: controller?.isAlive(n.id) ?? false,
          lastHeartbeatMsAgo: ago === undefined ? "0" : String(Math.round(ago)),
          replicas: counts?.get(n.id)?.replicas ?? map.shards.filter((shard) => shardMembers(shard).includes(n.id)).length,
          leaders: counts?.get(n.id)?.leaders ?? 0,
          opsPerSecond: counts?.get(n.id)?.opsPerSecond ?? 0,
        };
      }),
      shards: map.shards.map((shard) => ({
        shardId: shard.id,
        slotStart: shard.slotStart,
        slotEnd: shard.slotEnd,
        epoch: String(shard.epoch),
        voters: shard.voters.map(String),
        learners: shard.learners.map(String),
        votersOutgoing: shard.votersOutgoing.map(String),
        leaderId: leaders.has(shard.id) ? String(leaders.get(shard.id)) : "",
        opsPerSecond: controller?.shardLoad(shard.id) ?? 0,
      })),
      operations: map.operations.map((op) => ({
        id: String(op.id),
        kind: op.kind,
        shardId: op.shardId,
        fromNode: String(op.from),
        toNode: String(op.to),
        state: op.state,
        step: op.step,
        reason: op.reason,
        ageMs: String(Math.max(0, nowMs - op.createdMs)),
        splitSlot: op.splitSlot ?? 0,
        newShardId: op.newShardId ?? 0,
      })),
    };
  }

  private controller(): MetaController {
    const controller = this.node.metaController;
    if (controller === undefined) throw this.node.metaNotLeaderError();
    return controller;
  }

  private nodeIdOf(raw: unknown, field: string, mustExist = true): number {
    const id = Number(raw);
    if (!Number.isSafeInteger(id) || id <= 0) throw new InvalidArgumentError(`${field}: "${String(raw)}" is not a node id`);
    if (mustExist && !this.node.map.nodes.some((n) => n.id === id))
      throw new InvalidArgumentError(
        `${field}: node ${id} is not in the cluster (nodes ${this.node.map.nodes.map((n) => n.id).join(", ")})`,
      );
    return id;
  }

  private async metaChange(command: MetaCommand, summary: string): Promise<MetaChangeResponse> {
    this.controller();
    const [result] = await this.node.submitMeta([command]);
    if (result === undefined) throw new TallyError("INTERNAL", "no result");
    if (!result.ok)
      throw result.code === "INVALID_ARGUMENT" ? new InvalidArgumentError(result.message) : new FailedPreconditionError(result.message);
    return {
      summary: result.changed ? summary : `no change: ${summary} already`,
      operationId: String(result.opId ?? 0),
      version: String(this.node.map.version),
    };
  }

  async declareHot(request: DeclareHotRequestMessage): Promise<MetaChangeResponse> {
    const k = key(request.key, "key");
    const subCounters = u32(request.subCounters, "sub_counters");
    const before = hotRecordOf(this.node.map, k)?.tags.length ?? 1;
    const reply = await this.metaChange(
      { type: "hot-declare", key: k, subCounters },
      `${describeKey(k)} is a hot counter over ${subCounters} sub-counters (was ${before}); writers use the new ones once every node has the map`,
    );
    return reply;
  }

  nodeAdd(request: NodeAddRequestMessage): Promise<MetaChangeResponse> {
    const id = this.nodeIdOf(request.nodeId, "node_id", false);
    const node = {
      id,
      client: String(request.clientAddress ?? ""),
      peer: String(request.peerAddress ?? ""),
      zone: String(request.zone || "default"),
      host: String(request.host || id),
    };
    for (const field of ["client", "peer"] as const) {
      if (!/^([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.test(node[field]))
        throw new InvalidArgumentError(`${field}_address: must be "host:port", got "${node[field]}"`);
    }
    return this.metaChange(
      { type: "node-add", node },
      `node ${id} added (${node.client}, peer ${node.peer}, zone ${node.zone}, host ${node.host}); start tallyd for it`,
    );
  }

  nodeState(request: NodeStateRequestMessage): Promise<MetaChangeResponse> {
    const id = this.nodeIdOf(request.nodeId, "node_id");
    const state = String(request.state);
    if (state !== "up" && state !== "draining" && state !== "removed")
      throw new InvalidArgumentError(`state: must be up, draining or removed, got "${state}"`);
    const what =
      state === "draining"
        ? "draining: its replicas and leaders move to other nodes"
        : state === "removed"
          ? "removed from the cluster"
          : "up: it takes replicas and leaders again";
    return this.metaChange({ type: "node-state", nodeId: id, state }, `node ${id} ${what}`);
  }

  async shardMove(request: ShardMoveRequestMessage): Promise<MetaChangeResponse> {
    const shardId = u32(request.shardId, "shard_id");
    if (!this.node.map.shards.some((shard) => shard.id === shardId))
      throw new InvalidArgumentError(`shard_id: shard ${shardId} does not exist`);
    const from = this.nodeIdOf(request.fromNode, "from_node");
    const to = this.nodeIdOf(request.toNode, "to_node");
    if (from === to) throw new InvalidArgumentError("from_node and to_node are the same node");
    const id = await this.controller().startMove(shardId, from, to, "operator");
    return {
      summary: `operation ${id}: move shard ${shardId} from node ${from} to node ${to} started`,
      operationId: String(id),
      version: String(this.node.map.version),
    };
  }

  async shardSplit(request: ShardSplitRequestMessage): Promise<MetaChangeResponse> {
    const shardId = u32(request.shardId, "shard_id");
    const shard = this.node.map.shards.find((candidate) => candidate.id === shardId);
    if (shard === undefined) throw new InvalidArgumentError(`shard_id: shard ${shardId} does not exist`);
    const at = u32(request.atSlot, "at_slot");
    if (at !== 0 && !(at > shard.slotStart && at < shard.slotEnd)) {
      throw new InvalidArgumentError(
        `at_slot: ${at} is not inside shard ${shardId}'s slots ${shard.slotStart + 1}-${shard.slotEnd - 1} (the new shard starts there)`,
      );
    }
    const { id, splitSlot } = await this.controller().startSplit(shardId, at === 0 ? undefined : at, "operator");
    return {
      summary: `operation ${id}: split shard ${shardId} at slot ${splitSlot} started`,
      operationId: String(id),
      version: String(this.node.map.version),
    };
  }

  async rebalance(request: RebalanceRequestMessage): Promise<RebalanceResponseInput> {
    const controller = this.controller();
    const plan = request.apply ? await controller.applyPlan() : controller.plan();
    const changes = [
      ...plan.moves.map((m) => ({ kind: "move", shardId: m.shardId, fromNode: String(m.from), toNode: String(m.to), reason: m.reason })),
      ...plan.transfers.map((t) => ({
        kind: "leader-transfer",
        shardId: t.shardId,
        fromNode: String(t.from),
        toNode: String(t.to),
        reason: t.reason,
      })),
      ...(plan.blocked ?? []).map((b) => ({
        kind: "blocked",
        shardId: b.shardId,
        fromNode: String(b.from),
        toNode: "-",
        reason: b.reason,
      })),
    ];
    const blocked = plan.blocked?.length ?? 0;
    const summary =
      changes.length === 0
        ? "balanced: nothing to do"
        : `${request.apply ? "started" : "would make"} ${plan.moves.length} moves and ${plan.transfers.length} leader transfers` +
          (blocked > 0 ? `; ${blocked} replicas have nowhere to go` : "");
    return { changes, summary };
  }

  async failover(request: FailoverRequestMessage): Promise<RebalanceResponseInput> {
    const id = this.nodeIdOf(request.nodeId, "node_id");
    const moved = await this.controller().failover(id);
    return {
      changes: moved.map((m) => ({
        kind: "leader-transfer",
        shardId: m.shardId,
        fromNode: String(m.from),
        toNode: String(m.to),
        reason: "failover",
      })),
      summary: moved.length === 0 ? `node ${id} leads no shard` : `moved ${moved.length} leaderships off node ${id}`,
    };
  }

  async recoverUnsafe(request: RecoverUnsafeRequestMessage): Promise<MetaChangeResponse> {
    const shardId = u32(request.shardId, "shard_id");
    if (!request.iUnderstandDataLoss)
      throw new FailedPreconditionError(
        "recover --unsafe needs i_understand_data_loss: writes acknowledged by the lost replicas may be gone",
      );
    const epoch = await this.node.recoverUnsafe(shardId);
    return {
      summary: `shard ${shardId}: node ${this.node.nodeId} is now its only voter at epoch ${epoch}; the controller re-replicates it`,
      operationId: "0",
      version: String(this.node.map.version),
    };
  }

  localStatus(): NodeStatus {
    const groups = this.node.groupStatus().map(({ shardId, status, applied, epoch }) => {
      const peers: PeerLagInput[] = [];
      for (const [id, progress] of status.progress) {
        peers.push({
          nodeId: String(id),
          match: String(progress.match),
          lag: String(Math.max(0, status.lastIndex - progress.match)),
          state: ["probe", "replicate", "snapshot"][progress.state] ?? "unknown",
        });
      }
      return {
        groupId: shardId,
        role: roleName[status.role],
        term: String(status.term),
        leaderId: status.leader === 0 ? "" : String(status.leader),
        commit: String(status.commit),
        applied: String(applied),
        lastIndex: String(status.lastIndex),
        leaseValid: status.leaseValid,
        epoch: String(epoch),
        peers,
      };
    });
    const stats = this.node.stats;
    return {
      nodeId: String(this.node.nodeId),
      clientAddress: this.node.self.client,
      zone: this.node.self.zone,
      host: this.node.self.host,
      reachable: true,
      groups,
      error: "",
      stats: {
        loopIterations: String(stats.iterations),
        syncs: String(stats.syncs),
        entriesWritten: String(stats.entriesWritten),
        entriesApplied: String(stats.applied),
        leaderChanges: String(stats.leaderChanges),
        inboundDropped: String(this.node.inboundDroppedCount),
        snapshotsInstalled: String(stats.snapshotsInstalled),
        snapshotsTaken: String(stats.snapshotsTaken),
      },
    };
  }

  /** Answers once the new leader has taken over (node.ts transferLeader), or UNAVAILABLE. */
  async transferLeader(request: TransferLeaderRequestMessage): Promise<TransferLeaderResponseInput> {
    const shardId = u32(request.shardId, "shard_id");
    const to = Number(request.toNode);
    if (!Number.isSafeInteger(to) || to <= 0 || !this.node.map.nodes.some((n) => n.id === to)) {
      throw new InvalidArgumentError(`to_node: unknown node "${request.toNode}"`);
    }
    await this.node.transferLeader(shardId, to);
    return { leaderId: String(to) };
  }
}

/** Another node's own status (Status with local_only), or an unreachable entry saying why. */
function fetchPeerStatus(
  peer: { id: number; client: string; zone: string; host?: string },
  credentials: grpc.ChannelCredentials,
  metadata = new grpc.Metadata(),
): Promise<NodeStatus> {
  const { id, client: address, zone } = peer;
  return new Promise((resolve) => {
    const client = new (tallyProto().AdminService)(address, credentials) as unknown as grpc.Client & { status: StatusCall };
    const unreachable = (message: string): NodeStatus => ({
      nodeId: String(id),
      clientAddress: address,
      zone,
      host: hostOf(peer),
      reachable: false,
      groups: [],
      error: message,
    });
    // grpc-js measures a deadline against the system clock, so it is Date.now(), not util/clock.
    client.status({ localOnly: true }, metadata, { deadline: Date.now() + PEER_STATUS_TIMEOUT_MS }, (error, response) => {
      client.close();
      if (error) resolve(unreachable(error.details || error.message));
      else resolve(response.nodes?.[0] ?? unreachable("empty status"));
    });
  });
}
