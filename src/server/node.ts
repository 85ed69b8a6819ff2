/**
 * A tally node: one LevelDB, one peer transport, and one Raft group per hosted shard. TallyNode is
 * the facade the gRPC services and tallyd see; it wires the driver loop (core/driver-loop.ts, the
 * only place that orders storage writes, peer sends and applies) to the real parts: NodeStore as
 * its log store, PeerTransport as its network, the process clock, the hosted groups
 * (core/groups.ts) and their state machines (core/apply.ts). The heartbeat to the metadata leader,
 * the placement controller and the requests of the services (route, submit, read, shard changes)
 * are here; each reaches Raft only inside the loop (inLoop()) or through a replica's queues.
 * docs/architecture.md ("The driver loop", "Ports") describes the loop and what each port promises.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { RawNode } from "../raft/raw-node.js";
import { Role, type ConfChange, type ConfState } from "../raft/types.js";
import type { Command } from "../shard/commands.js";
import { COUNTERS_MAX } from "../shard/counter-table.js";
import { emptyMap, type ClusterMap, type MetaCommand, type MetaResult } from "../meta/map.js";
import { FileCheckpointStore } from "../storage/checkpoint-store.js";
import { NodeStore, type StoreBatch } from "../storage/node-store.js";
import { PeerTransport, type PeerTransportStats } from "../transport/peer-transport.js";
import { monotonicMs } from "../util/clock.js";
import { InvalidArgumentError, NotLeaderError, UnavailableError, WrongShardError } from "../util/errors.js";
import { componentLogger, type Logger } from "../util/log.js";
import { findNode, META_GROUP_ID, metaReplicaIds, shardOptionsOf, type ClusterConfig, type NodeConfig } from "./config/config.js";
import { encodeDescriptor } from "./descriptor.js";
import { AdminClients, type HeartbeatReply, type NodeReport, type ShardChangeRequest } from "./meta-wire.js";
import { MetaController } from "./meta-controller.js";
import type { MetaReplica, ShardReplica } from "./shard-replica.js";
import { nodeCertificateProvider, nodeClientCredentials } from "./config/tls.js";
import { internalCallMetadata, peerSecretFor } from "./config/auth.js";
import { GroupApplier } from "./core/apply.js";
import { Checkpointer } from "./core/checkpoints.js";
import { SnapshotExchange } from "./core/snapshot-exchange.js";
import type { ControllerHost } from "./core/controller-host.js";
import { DriverLoop } from "./core/driver-loop.js";
import { NodeGroups, type AnyReplica } from "./core/groups.js";
import { loadReport } from "./core/load-report.js";
import {
  newNodeStats,
  type Consistency,
  type MutationOutcome,
  type NodeFaults,
  type TallyNodeOptions,
  type ReadResult,
  type ShardBackupSnapshot,
} from "./core/node-types.js";
import { SlicePacer, systemClock } from "./core/system-clock.js";
import { backupOf, linearizable, readKeys, routeRequest, shardIdForKey, submitCommand, type RequestContext } from "./core/requests.js";
import { mostCaughtUpVoter, proposeShardChange } from "./core/shard-change.js";

export type {
  Consistency,
  MutationOutcome,
  NodeFaults,
  NodeOptions,
  ReadResult,
  ShardBackupSnapshot,
  TallyNodeOptions,
} from "./core/node-types.js";
/** The group id of the metadata Raft group (shards are 1..), and the counter state machine's options on every node of the cluster (restore uses them too). */
export { META_GROUP_ID, shardOptionsOf } from "./config/config.js";
/** Bound on the operations of one store batch: a guard against a runaway (no batch holds a shard's state since format 2). */
export const STORE_BATCH_OPS_MAX = 4 * COUNTERS_MAX;

/** How often transferLeader() looks whether the new leader has taken over. */
const TRANSFER_POLL_MS = 20;
/** Long enough for a transfer Raft may complete (it aborts one after an election timeout), with room for a slow loop. */
const transferTimeoutMs = (c: { electionTicks: number; tickMs: number }): number => Math.max(2000, 4 * c.electionTicks * c.tickMs);

export class TallyNode implements ControllerHost {
  readonly nodeId: number;
  readonly self: NodeConfig;
  readonly config: ClusterConfig;
  /** The newest partition map this node knows (its meta replica's, or the last heartbeat reply's). */
  map: ClusterMap = emptyMap();
  private adoptedMapVersion = -1;
  /** The metadata leader as last learned (0 = unknown). */
  metaLeaderId = 0;
  private controller: MetaController | undefined;
  // Node-to-node AdminService calls carry the node's certificate and (with auth) the internal token.
  readonly adminClients = new AdminClients(
    () => nodeClientCredentials(this.config, this.self),
    () => internalCallMetadata(this.config),
  );
  readonly stats = newNodeStats();
  private store!: NodeStore;
  private transport!: PeerTransport;
  private readonly log: Logger;
  /** The hosted groups (the loop's registry) and their state machines (the loop's apply port). */
  private readonly groups: NodeGroups;
  private readonly applier: GroupApplier;
  /** The shards' checkpoint files, and the background writer of new ones. */
  private readonly checkpointStore: FileCheckpointStore;
  private readonly checkpointer: Checkpointer;
  /** Snapshots to and from peers: checkpoints streamed from disk, received ones made durable and decoded ahead of install. */
  private readonly snapshots: SnapshotExchange;
  /** Created by start(), once the store and the transport exist. */
  private loop: DriverLoop<AnyReplica, StoreBatch> | undefined;
  private stopped = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatInFlight = false;
  private heartbeatTarget = 0;
  private lastReportMs = 0;
  private readonly faults: NodeFaults;
  private readonly slices = new SlicePacer(); // one slice of background work per event-loop turn

  constructor(options: TallyNodeOptions) {
    this.config = options.config;
    this.nodeId = options.nodeId;
    this.faults = { ...options.faults };
    this.self = findNode(this.config, this.nodeId);
    this.log = options.logger ?? componentLogger("node", { node: this.nodeId });
    this.checkpointStore = new FileCheckpointStore(join(this.self.dataDir, "checkpoints"));
    const common = { nodeId: this.nodeId, config: this.config, stats: this.stats, logger: this.log, wake: () => this.wake() };
    this.groups = new NodeGroups({
      ...common,
      currentMap: () => this.map,
      onMetaReplica: (created) => {
        this.controller = created ? this.newController() : undefined;
      },
      checkpoints: this.checkpointStore,
      pause: this.slices.pause,
    });
    this.checkpointer = new Checkpointer({
      store: this.checkpointStore,
      stats: this.stats,
      logger: this.log,
      everyEntries: this.config.cluster.snapshotEveryEntries,
      replicaOf: (shardId) => this.groups.replicas.get(shardId),
      queueWrite: (write, afterDurable) => this.loop?.queueWrite(write, afterDurable),
      pause: this.slices.pause,
      wake: () => this.wake(),
      nowMs: monotonicMs,
    });
    this.snapshots = new SnapshotExchange({
      checkpoints: this.checkpointStore,
      shardOptions: shardOptionsOf(this.config),
      logger: this.log,
      pause: this.slices.pause,
      storedSnapshot: async (groupId) => (await this.store.loadGroup(groupId)).snapshot,
    });
    this.applier = new GroupApplier({
      ...common,
      groups: this.groups,
      adoptMap: (map) => this.adoptMap(map),
      checkpointer: this.checkpointer,
      takePrepared: (shardId, index) => this.snapshots.takePrepared(shardId, index),
    });
  }

  /** Every shard replica this node hosts, by shard id. */
  get replicas(): ReadonlyMap<number, ShardReplica> {
    return this.groups.replicas;
  }

  /** This node's replica of the metadata group, when it is one of the metaReplicas. */
  get meta(): MetaReplica | undefined {
    return this.groups.meta;
  }

  /** Opens storage, restores every group on disk (and the metadata group), binds the transport and starts the loop. */
  async start(): Promise<void> {
    const field = `nodes[${this.config.nodes.indexOf(this.self)}]`;
    try {
      mkdirSync(this.self.dataDir, { recursive: true });
      this.store = await NodeStore.open(this.self.dataDir, {
        logger: componentLogger("storage", { node: this.nodeId }),
        batchOpsMax: STORE_BATCH_OPS_MAX,
        onWrite: (seconds, sync, bytes) => this.onStoreWrite?.(seconds, sync, bytes),
      });
    } catch (error) {
      throw new Error(`${field}.dataDir (${this.self.dataDir}): ${(error as Error).message}`, { cause: error });
    }
    await this.groups.restore(this.store);
    if (this.meta !== undefined) this.map = this.meta.machine.map as ClusterMap;

    const peers = new Map<number, string>();
    for (const node of this.config.nodes) if (node.id !== this.nodeId) peers.set(node.id, node.peer);
    for (const node of this.map.nodes) if (node.id !== this.nodeId && node.state !== "removed") peers.set(node.id, node.peer);
    this.transport = new PeerTransport({
      nodeId: this.nodeId,
      // nodes[].peerListen: where to bind when it differs from the address peers dial (containers, chaos proxies).
      listenAddress: this.self.peerListen ?? this.self.peer,
      peers,
      onMessages: (_from, batch) => this.loop?.receive(batch),
      onSnapshot: async (_from, groupId, message) => {
        if (groupId !== META_GROUP_ID) await this.snapshots.received(groupId, message);
        this.loop?.receive([[groupId, message]]);
      },
      snapshotSource: (groupId, message) => (groupId === META_GROUP_ID ? undefined : this.snapshots.source(groupId, message)),
      logger: componentLogger("transport", { node: this.nodeId }),
      tls: nodeCertificateProvider(this.config, this.self, this.log),
      peerSecret: peerSecretFor(this.config),
    });
    this.transport.onSnapshotResult = (to, groupId, ok) => {
      this.groups.get(groupId)?.raw.reportSnapshot(to, ok);
      this.wake();
    };
    this.transport.onUnreachable = (to) => {
      for (const replica of this.groups.all()) replica.raw.reportUnreachable(to);
    };
    // The loop exists before the transport listens, so nothing a peer sends is lost; it starts below.
    this.loop = this.newLoop();
    try {
      await this.transport.start();
    } catch (error) {
      await this.store.close();
      const inUse = /EADDRINUSE/.test(String((error as Error).message)) ? "address already in use" : (error as Error).message;
      throw new Error(
        `${field}.${this.self.peerListen === undefined ? "peer" : "peerListen"} (${this.self.peerListen ?? this.self.peer}): ${inUse}`,
        { cause: error },
      );
    }
    if (this.meta !== undefined) this.controller = this.newController();
    this.loop.start();
    this.groups.reconcile();
    this.heartbeatTimer = setInterval(() => {
      if (this.isRunning) this.checkpointer.sweep(this.groups.replicas.values());
      void this.heartbeat();
    }, this.config.placement.heartbeatMs);
    this.heartbeatTimer.unref();
    this.log.info({ shards: [...this.replicas.keys()], meta: this.meta !== undefined, peer: this.self.peer }, "node started");
  }

  /** The driver loop over the real parts: LevelDB, the peer transport, the process clock. */
  private newLoop(): DriverLoop<AnyReplica, StoreBatch> {
    return new DriverLoop<AnyReplica, StoreBatch>(
      { store: this.store, network: this.transport, clock: systemClock, groups: this.groups, machines: this.applier },
      {
        nodeId: this.nodeId,
        tickMs: this.config.cluster.tickMs,
        heartbeatTicks: this.config.cluster.heartbeatTicks,
        logger: this.log,
        stats: this.stats,
        leaderAddress: this.leaderAddress,
        plantedNotLeaderAfterPropose: this.faults.notLeaderAfterPropose === true,
        onLeaderChange: () => this.onLeaderChange?.(),
        onFatal: (error) => {
          this.onHealthChange?.(false);
          this.onFatal?.(error);
        },
      },
    );
  }

  private newController(): MetaController {
    return new MetaController(this, componentLogger("controller", { node: this.nodeId }));
  }

  /** A membership change of the metadata group, proposed by its leader (the controller). */
  metaConfChange(change: ConfChange): Promise<void> {
    return this.inLoop(() => {
      if (this.meta === undefined || !this.meta.isLeader) throw this.metaNotLeaderError();
      this.meta.raw.proposeConfChange(change);
    });
  }

  metaTransferLeader(to: number): Promise<void> {
    return this.inLoop(() => {
      if (this.meta === undefined || !this.meta.isLeader) throw this.metaNotLeaderError();
      this.meta.raw.transferLeader(to);
    });
  }

  // ---- the partition map ----

  /** Adopts a newer map: peers learn new addresses, and replicas are created or removed to match. */
  adoptMap(map: ClusterMap): void {
    // The local meta replica's map is mutated in place, so "newer" is judged by the version adopted last.
    if (map.version < this.map.version || map.version === this.adoptedMapVersion) return;
    this.map = map;
    this.adoptedMapVersion = map.version;
    for (const node of map.nodes) {
      if (node.id === this.nodeId) continue;
      this.transport?.setPeer(node.id, node.state === "removed" ? undefined : node.peer);
    }
    this.groups.reconcile();
  }

  /** Runs `action` inside the loop, before proposals (Raft is never touched between Ready and advance). */
  inLoop<T>(action: () => T): Promise<T> {
    return this.checkAlive().inLoop(action);
  }

  private wake(): void {
    this.loop?.wake();
  }

  /** The running loop; UNAVAILABLE when it is not running (not started, stopped, or dead). */
  private checkAlive(): DriverLoop<AnyReplica, StoreBatch> {
    if (this.loop === undefined) throw new UnavailableError(`node ${this.nodeId} is not running`);
    this.loop.checkAlive();
    return this.loop;
  }

  // ---- heartbeats: load reports up, the map down ----

  private report(): NodeReport {
    const now = monotonicMs();
    const elapsedS = this.lastReportMs === 0 ? 1 : Math.max(0.05, (now - this.lastReportMs) / 1000);
    this.lastReportMs = now;
    return loadReport(this.self, this.map.version, this.replicas.values(), elapsedS);
  }

  /** One heartbeat to the metadata leader (or to this node's own controller). */
  private async heartbeat(): Promise<void> {
    if (!this.isRunning || this.heartbeatInFlight) return;
    this.heartbeatInFlight = true;
    try {
      const report = this.report();
      if (this.meta?.isLeader && this.controller !== undefined) {
        this.metaLeaderId = this.nodeId;
        this.controller.onHeartbeat(report);
        void this.controller.tick();
        return;
      }
      if (this.meta !== undefined && this.meta.leader !== 0) this.metaLeaderId = this.meta.leader;
      const candidates = this.metaCandidates();
      const target =
        this.metaLeaderId !== 0 && this.metaLeaderId !== this.nodeId
          ? this.metaLeaderId
          : candidates[this.heartbeatTarget++ % candidates.length]!;
      const address = this.clientAddressOf(target);
      if (address === undefined) return;
      try {
        const reply = await this.adminClients.internal(address, "heartbeat", report, Math.max(500, this.config.placement.heartbeatMs * 3));
        this.metaLeaderId = reply.metaLeader;
        if (reply.map !== undefined) this.adoptMap(reply.map);
      } catch (error) {
        const hint = (error as NotLeaderError).leaderId;
        this.metaLeaderId = error instanceof NotLeaderError && hint !== undefined ? Number(hint) : 0;
      }
    } catch (error) {
      this.log.warn({ err: error }, "heartbeat failed");
    } finally {
      this.heartbeatInFlight = false;
    }
  }

  /** Handles a heartbeat on the metadata leader. */
  onHeartbeat(report: NodeReport): HeartbeatReply {
    if (this.meta === undefined || !this.meta.isLeader || this.controller === undefined) {
      throw this.metaNotLeaderError();
    }
    this.controller.onHeartbeat(report);
    const map = this.meta.machine.map;
    return {
      metaLeader: this.nodeId,
      ...(report.mapVersion < map.version || (!report.mapVersion && map.initialized) ? { map: map as ClusterMap } : {}),
    };
  }

  metaNotLeaderError(): NotLeaderError {
    const leader = this.meta?.leader || this.metaLeaderId;
    return new NotLeaderError(
      leader ? `the metadata group is led by node ${leader}` : "the metadata leader is not known yet",
      leader ? String(leader) : undefined,
      leader ? this.clientAddressOf(leader) : undefined,
      META_GROUP_ID,
    );
  }

  private metaCandidates(): number[] {
    const members = this.map.meta?.voters ?? [];
    return members.length > 0 ? members : metaReplicaIds(this.config);
  }

  clientAddressOf(id: number): string | undefined {
    return this.map.nodes.find((node) => node.id === id)?.client ?? this.config.nodes.find((node) => node.id === id)?.client;
  }

  /** Proposes meta commands through this node's metadata replica (which must lead). */
  submitMeta(commands: MetaCommand[], timeoutMs = this.config.limits.requestTimeoutMs): Promise<MetaResult[]> {
    this.checkAlive();
    const meta = this.meta;
    if (meta === undefined || !meta.isLeader) return Promise.reject(this.metaNotLeaderError());
    return Promise.all(
      commands.map(
        (command) =>
          new Promise<MetaResult>((resolve, reject) => {
            meta.enqueue({ command, bytes: 256, deadlineMs: monotonicMs() + timeoutMs, resolve: (result) => resolve(result), reject });
            this.wake();
          }),
      ),
    );
  }

  get metaController(): MetaController | undefined {
    return this.meta?.isLeader ? this.controller : undefined;
  }

  /**
   * A membership change or leader transfer the metadata leader asks of this shard's leader. It is
   * conditional on the shard's epoch, so a retried or stale request changes nothing.
   */
  shardChange(request: ShardChangeRequest): Promise<{ epoch: number }> {
    return this.inLoop(() => proposeShardChange(this.replicas.get(request.shardId), request, this.nodeId, this.leaderAddress));
  }

  /**
   * LAST RESORT (tallyctl recover --unsafe): a shard that lost its quorum forever continues from
   * this replica alone. Its configuration is rewritten to this node as the only voter and its epoch
   * jumps by 1000 (above anything the lost replicas could have reached); the replica campaigns and
   * the controller re-replicates it. Writes the lost replicas acknowledged beyond what this one
   * holds are gone: that is what "unsafe" means.
   */
  recoverUnsafe(shardId: number): Promise<number> {
    const loop = this.checkAlive();
    return loop.inLoop(() => {
      const replica = this.replicas.get(shardId);
      if (replica === undefined) throw new WrongShardError(`shard ${shardId} has no replica on node ${this.nodeId}`, shardId, 0);
      const conf: ConfState = { voters: [this.nodeId], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
      replica.failInflight(new UnavailableError(`shard ${shardId} is being recovered`));
      replica.storage.setConfState(conf);
      replica.confState = conf;
      replica.descriptor = { ...replica.descriptor, epoch: replica.descriptor.epoch + 1000 };
      replica.raw = new RawNode(this.groups.raftConfig(shardId, replica.storage, replica.machine.appliedIndex));
      replica.role = Role.Follower;
      replica.leader = 0;
      const descriptor = encodeDescriptor(replica.descriptor);
      loop.queueWrite((batch) => {
        batch.setConfState(shardId, conf);
        batch.putGroupState(shardId, descriptor);
      });
      replica.raw.campaign();
      this.log.warn({ shard: shardId, epoch: replica.descriptor.epoch }, "UNSAFE RECOVERY: this replica is now the shard's only voter");
      return replica.descriptor.epoch;
    });
  }

  // ---- the public surface used by the gRPC services ----

  leaderAddress = (id: number): string | undefined => this.clientAddressOf(id);

  /** Resolves the replica a request routed to, checking the epoch and that every key belongs to it. */
  route(shardId: number, epoch: number, keys: Uint8Array[]): ShardReplica {
    return routeRequest(this, shardId, epoch, keys);
  }

  /** The shard owning the key's slot by the map (0 when the map is not known yet). */
  shardIdForKey(key: Uint8Array): number {
    return shardIdForKey(this, key);
  }

  /** Proposes one validated command through the shard's leader; resolves when it is applied. */
  submit(
    replica: ShardReplica,
    command: Command,
    bytes: number,
    timeoutMs = this.config.limits.requestTimeoutMs,
  ): Promise<MutationOutcome> {
    this.checkAlive();
    return submitCommand(this.requestContext, replica, command, bytes, timeoutMs, this.faults.ackBeforeCommit === true);
  }

  read(
    replica: ShardReplica,
    keys: Uint8Array[],
    consistency: Consistency,
    minIndex: number,
    timeoutMs = this.config.limits.requestTimeoutMs,
  ): Promise<ReadResult> {
    this.checkAlive();
    return readKeys(this.requestContext, replica, keys, consistency, minIndex, timeoutMs);
  }

  /**
   * tallyctl backup: the shard's whole state as snapshot bytes (the wrapped form Raft snapshots
   * carry: descriptor + counters, sessions and kind records), taken on its leader in one step at an
   * applied index no older than a linearizable read started now. NOT_LEADER elsewhere.
   */
  backupSnapshot(shardId: number, timeoutMs = this.config.limits.requestTimeoutMs): Promise<ShardBackupSnapshot> {
    this.checkAlive();
    if (shardId === 0) throw new InvalidArgumentError("shard_id is required");
    const replica = this.route(shardId, 0, []);
    return linearizable(this.requestContext, replica, 0, timeoutMs, (r) => backupOf(r, shardId, this.nodeId));
  }

  /** What the request functions (core/requests.ts) need of the node. */
  private readonly requestContext: RequestContext = {
    leaderAddress: (id) => this.leaderAddress(id),
    wake: () => this.wake(),
    catchUpTicks: () => this.loop?.catchUpTicks(),
  };

  /**
   * Hands shard `shardId`'s leadership to node `to` and waits until this replica sees `to` lead,
   * as etcd's MoveLeader does: the caller learns whether it happened, not only that it was asked.
   * The transfer starts inside the loop (Raft is never touched between a Ready and its advance).
   * Raft aborts a transfer the target does not finish within an election timeout (it is behind or
   * unreachable); then, or at `timeoutMs`, this fails UNAVAILABLE, and a retry is safe.
   */
  async transferLeader(shardId: number, to: number, timeoutMs = transferTimeoutMs(this.config.cluster)): Promise<void> {
    await this.inLoop(() => {
      const replica = this.replicas.get(shardId);
      if (replica === undefined) throw new WrongShardError(`shard ${shardId} has no replica on node ${this.nodeId}`, shardId, 0);
      if (!replica.isLeader) throw replica.notLeaderError(this.leaderAddress);
      if (to !== this.nodeId) replica.raw.transferLeader(to);
    });
    const deadline = monotonicMs() + timeoutMs;
    for (;;) {
      if (this.replicas.get(shardId)?.leader === to) return;
      if (monotonicMs() >= deadline) {
        throw new UnavailableError(
          `leadership of shard ${shardId} did not move to node ${to} within ${timeoutMs} ms (the target may be behind or unreachable); retry`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, TRANSFER_POLL_MS));
    }
  }

  /** Called when the loop dies (storage corruption, fsync failure): the process should exit. */
  onFatal: ((error: Error) => void) | undefined;
  /** Called when the node's ability to serve changes (health service). */
  onHealthChange: ((serving: boolean) => void) | undefined;

  // ---- status and shutdown ----

  groupStatus(): Array<{ shardId: number; status: ReturnType<RawNode["status"]>; applied: number; epoch: number }> {
    return [...this.groups.all()].map((replica) => ({
      shardId: replica.shardId,
      status: replica.raw.status(),
      applied: replica.machine.appliedIndex,
      epoch: replica.shardId === META_GROUP_ID ? (this.meta?.machine.appliedIndex ?? 0) : replica.descriptor.epoch,
    }));
  }

  get inboundDroppedCount(): number {
    return this.loop?.inboundDroppedCount ?? 0;
  }

  get isRunning(): boolean {
    return this.loop?.isRunning ?? false;
  }

  // ---- operations surface (metrics and health, src/server/ops/metrics.ts and ops-http.ts) ----

  /** Called when a replica on this node learns of a new leader (or loses its leader): readiness may change. */
  onLeaderChange: (() => void) | undefined;

  /** Called after every storage batch write (its duration, whether it was fsynced, its size). */
  onStoreWrite: ((seconds: number, sync: boolean, bytes: number) => void) | undefined;

  /** True from the moment stop() begins: the node is draining and should get no new traffic. */
  get isStopping(): boolean {
    return this.stopped;
  }

  /** Why the loop died (storage failure), if it did. */
  get failure(): Error | undefined {
    return this.loop?.failure;
  }

  /** Raft messages waiting per peer. */
  peerQueueDepths(): Map<number, number> {
    return this.transport?.queueDepths() ?? new Map();
  }

  /** The outgoing Raft link to `id` is up (readiness: a follower can reach its leader). */
  peerConnected(id: number): boolean {
    return this.transport?.isConnected(id) ?? false;
  }

  /** The peer transport's counters (frames, drops, reconnects). */
  get transportStats(): Readonly<PeerTransportStats> | undefined {
    return this.transport?.stats;
  }

  /**
   * Graceful stop: hand every leadership to an up-to-date follower (so clients see a transfer, not
   * an election timeout), then stop the loop, flush and close.
   */
  async stop(options: { transferLeadership?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const deadline = monotonicMs() + (options.timeoutMs ?? 3000);
    if (this.isRunning && options.transferLeadership !== false) {
      for (const replica of this.groups.all()) {
        if (!replica.isLeader) continue;
        const best = mostCaughtUpVoter(replica.raw.status(), this.nodeId);
        if (best !== 0) replica.raw.transferLeader(best);
      }
      this.wake();
      while (monotonicMs() < deadline && [...this.groups.all()].some((r) => r.isLeader)) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    await this.loop?.stop();
    await this.checkpointer.stop();
    for (const replica of this.groups.all()) replica.failInflight(new UnavailableError(`node ${this.nodeId} is shutting down`));
    this.adminClients.close();
    await this.transport?.close();
    await this.store?.close();
    this.log.info("node stopped");
  }
}
