/**
 * A tally node: one LevelDB, one peer transport, and one Raft group per hosted shard. The driver
 * loop below is the only place that orders storage writes, peer sends and applies. One iterate():
 *
 *   1. create/remove replicas the map asks for (their own synced batch); tick every group up to
 *      the monotonic clock; step inbound messages; run queued loop actions; propose queued
 *      commands (as few entries per group as maxEntryBytes allows) and start ReadIndex rounds;
 *   2. collect Ready from every group and send its appends and heartbeats AT ONCE, before the
 *      fsync (Raft thesis 10.2.1; safe because a leader steps no acknowledgement before its own
 *      write completes: docs/adr/0003-send-before-fsync.md);
 *   3. build ONE batch for all groups (group commit): snapshots, entries, hard states, and the
 *      effects of applying the committed entries IN MEMORY with the applied index (so a crash
 *      never half-applies an entry: docs/adr/0004-apply-before-write.md); writes whose entries
 *      were already durable here are answered now;
 *   4. write the batch, fsynced only when a Ready has mustSync (new entries, term or vote);
 *   5. only then send every other message (votes, responses, snapshots), answer the remaining
 *      writes, serve reads whose index is applied, and advance every group.
 * docs/architecture.md ("The Ready contract as implemented") lists each step and every deviation
 * from the strict Ready order in one place.
 */
import { mkdirSync } from "node:fs";
import { MemoryStorage } from "../raft/memory-storage.js";
import { EMPTY_SNAPSHOT_DATA, metadataOnly, ShardStorage } from "./shard-storage.js";
import { decodeConfChange, RawNode } from "../raft/raw-node.js";
import { entryBytes } from "../raft/util.js";
import {
  ConfChangeTransition,
  ConfChangeType,
  EntryType,
  MessageType,
  Role,
  type ConfChange,
  type ConfState,
  type Message,
  type RaftConfig,
  type Ready,
} from "../raft/types.js";
import type { Command, CommandResult } from "../shard/commands.js";
import {
  CounterStateMachine,
  decodeCounterRecord,
  encodeCounterRecord,
  type AdmitMutation,
  type ShardOptions,
} from "../shard/state-machine.js";
import { COUNTERS_MAX } from "../shard/counter-table.js";
import {
  emptyMap,
  metaMembers,
  MetaStateMachine,
  shardMembers,
  type ClusterMap,
  type MetaCommand,
  type MetaResult,
  type ShardRecord,
} from "../meta/map.js";
import { NodeStore, type StoreBatch } from "../storage/node-store.js";
import { PeerTransport, type PeerTransportStats } from "../transport/peer-transport.js";
import { assert } from "../util/assert.js";
import { monotonicMs, wallClockMs } from "../util/clock.js";
import { FailedPreconditionError, InvalidArgumentError, NotLeaderError, UnavailableError, WrongShardError } from "../util/errors.js";
import { componentLogger, type Logger } from "../util/log.js";
import { createPrng } from "../util/prng.js";
import { slotOf } from "../meta/slots.js";
import { computePlacement, findNode, metaReplicaIds, type ClusterConfig, type NodeConfig } from "./config/config.js";
import {
  decodeDescriptor,
  decodeSplitEntry,
  encodeDescriptor,
  encodeSplitEntry,
  SPLIT_ENTRY_MARKER,
  unwrapShardSnapshot,
  wrapShardSnapshot,
  type ShardDescriptor,
  type SplitEntry,
} from "./descriptor.js";
import { AdminClients, type HeartbeatReply, type NodeReport, type ShardChangeRequest, type ShardReport } from "./meta-wire.js";
import { MetaController } from "./meta-controller.js";
import {
  encodeMetaCommands,
  encodeShardEntry,
  GroupReplica,
  readCounter,
  type MetaReplica,
  type ReadWaiter,
  type ReplicaMachine,
  type ShardReplica,
} from "./shard-replica.js";
import { nodeCertificateProvider, nodeClientCredentials } from "./config/tls.js";
import { internalCallMetadata, peerSecretFor } from "./config/auth.js";

/**
 * Bound on the operations of one store batch. A snapshot install or a range split writes a whole
 * shard's state -- every counter and kind record -- in one batch, atomically with the applied
 * index, and a shard may hold COUNTERS_MAX counters: the store's default (2^20) made a node that
 * installed a snapshot of a 1.25 M-counter shard stop itself ("StoreBatch exceeds 1048576
 * operations", bench/scale.ts at 10 M counters). The bound stays as a guard against a runaway.
 */
export const STORE_BATCH_OPS_MAX = 4 * COUNTERS_MAX;

export interface NodeOptions {
  config: ClusterConfig;
  nodeId: number;
  logger?: Logger;
}

export interface ReadResult {
  /** kind: set when the key holds another kind (windowed counter, rate limit, unique count). */
  values: Array<{ value: bigint; version: number; exists: boolean; kind?: string | undefined }>;
  term: number;
  appliedIndex: number;
}

export interface MutationOutcome {
  result: CommandResult;
  index: number;
  term: number;
}

export type Consistency = "linearizable" | "stale";

export interface ShardBackupSnapshot {
  shardId: number;
  descriptor: ShardDescriptor;
  appliedIndex: number;
  term: number;
  clockMs: number;
  counters: number;
  leaderId: number;
  /** wrapShardSnapshot(descriptor, machine snapshot at appliedIndex). */
  data: Uint8Array;
}

/** Bounded: the transport drops beyond its own bound; this bounds what waits for one iteration. */
const INBOUND_MESSAGES_MAX = 200_000;
/** Never tick more than this many times in one catch-up (a long pause already expired every lease). */
const CATCH_UP_TICKS_MAX = 200;
/**
 * A shard also compacts its log once this many bytes were applied since the last compaction, and
 * keeps at most LOG_TAIL_BYTES of tail (besides at most 1,000 entries). Compaction by entry count
 * alone never came for large entries: a 10,000-op AddBatch is one entry of ~1,250 ops per shard,
 * so a 10 M-counter fill kept its whole log in memory (~20 B per counter) and on disk. Compacting
 * a shard is cheap (its snapshot is metadata only, see ShardStorage); a follower further behind
 * than the tail gets a snapshot built from the leader's applied state.
 */
const LOG_COMPACT_BYTES = 8 * 1024 * 1024;
const LOG_TAIL_BYTES = 4 * 1024 * 1024;

/** Buckets of a leader's per-slot-range load histogram (where to split a hot shard). */
const SLOT_LOAD_BUCKETS = 64;
/** Test-only planted bug (see ackBeforeCommit); read once at start-up. */
const ACK_BEFORE_COMMIT = process.env.TALLY_TEST_ACK_BEFORE_COMMIT === "1";
/**
 * PLANTED BUG for the chaos harness (TALLY_TEST_NOT_LEADER_AFTER_PROPOSE=1, never in production):
 * a leader that loses leadership answers its proposed writes NOT_LEADER ("not applied") although
 * they may still commit, the defect the error contract forbids. The chaos checker's contract client
 * must catch the double count that follows (test/chaos/planted.test.ts).
 */
const NOT_LEADER_AFTER_PROPOSE = process.env.TALLY_TEST_NOT_LEADER_AFTER_PROPOSE === "1";

/** The counter state machine's options on every node of the cluster (restore uses them too). */
export function shardOptionsOf(config: ClusterConfig): ShardOptions {
  return {
    sessionTimeoutMs: config.cluster.sessionTimeoutMs,
    maxSessions: 100_000,
    maxSessionsPerCaller: config.cluster.sessionsPerCallerMax,
    maxRetainedResultsPerSession: 1_024,
  };
}

/** How often transferLeader() looks whether the new leader has taken over. */
const TRANSFER_POLL_MS = 20;

/** The group id of the metadata Raft group; shards are 1.. */
export const META_GROUP_ID = 0;

type AnyReplica = GroupReplica<any, any, ReplicaMachine<any>>;

export class TallyNode {
  readonly nodeId: number;
  readonly self: NodeConfig;
  readonly config: ClusterConfig;
  readonly replicas = new Map<number, ShardReplica>();
  /** This node's replica of the metadata group, when it is one of the metaReplicas. */
  meta: MetaReplica | undefined;
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
  private store!: NodeStore;
  private transport!: PeerTransport;
  private readonly log: Logger;
  private inbound: Array<[number, Message]> = [];
  private inboundDropped = 0;
  private lastTickMs = 0;
  private running = false;
  private stopped = false;
  private wakeResolve: (() => void) | undefined;
  private wakePending = false;
  private loopDone: Promise<void> | undefined;
  private fatalError: Error | undefined;
  /** Replica creations and removals decided from the map, carried out at the top of an iteration. */
  private groupsToCreate = new Map<number, ShardRecord>();
  private groupsToDestroy = new Set<number>();
  /**
   * Shard id -> the epoch at which this node's replica was removed (persisted 'T' records). A
   * replica is re-created only from a map that shows this node a member at a LATER epoch, i.e.
   * after a conf change re-added it (which gives it fresh progress at the leader). Without it, a
   * map that lags the removal re-created an empty replica under the same node id while the leader
   * still tracked the old one's match: its first heartbeat carried a commit index beyond the empty
   * log (found by the container chaos run, seed 7108), and a lagging peer could have had its vote.
   */
  private tombstones = new Map<number, number>();
  private metaChange: "create" | "destroy" | undefined;
  /** Work that must touch Raft inside the loop (conf changes, transfers), run before proposing. */
  private loopActions: Array<() => void> = [];
  /** Writes to add to the next iteration's batch (state changed outside Ready, such as an unsafe recovery). */
  private pendingWrites: Array<(batch: StoreBatch) => void> = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatInFlight = false;
  private heartbeatTarget = 0;
  private lastReportMs = 0;
  readonly stats = {
    iterations: 0,
    entriesWritten: 0,
    syncs: 0,
    applied: 0,
    appliedBytesPerIterationMax: 0,
    leaderChanges: 0,
    snapshotsInstalled: 0,
    snapshotsTaken: 0,
    snapshotsBuilt: 0,
    replicasCreated: 0,
    replicasRemoved: 0,
    staleEpochRejected: 0,
  };

  constructor(options: NodeOptions) {
    this.config = options.config;
    this.nodeId = options.nodeId;
    this.self = findNode(this.config, this.nodeId);
    this.log = options.logger ?? componentLogger("node", { node: this.nodeId });
  }

  private get shardOptions(): ShardOptions {
    return shardOptionsOf(this.config);
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
    const bootstrap = this.store.batch();
    this.tombstones = await this.store.loadTombstones();
    const onDisk = new Set(await this.store.listGroups());
    const metaIds = metaReplicaIds(this.config);
    // Only a brand-new store bootstraps the metadata group: a node that has data but no metadata
    // replica had it moved away (or never had one) and must not start a second group.
    if (onDisk.has(META_GROUP_ID) || (metaIds.includes(this.nodeId) && onDisk.size === 0)) {
      this.meta = await this.restoreMeta(bootstrap, metaIds, !onDisk.has(META_GROUP_ID));
      this.map = this.meta.machine.map as ClusterMap;
    }
    // Shards live where their data is; the map adds and removes replicas from here on.
    for (const shardId of onDisk) {
      if (shardId === META_GROUP_ID) continue;
      this.replicas.set(shardId, await this.restoreShard(shardId, undefined, bootstrap));
    }
    if (bootstrap.size > 0) await this.store.write(bootstrap, { sync: true });

    const peers = new Map<number, string>();
    for (const node of this.config.nodes) if (node.id !== this.nodeId) peers.set(node.id, node.peer);
    for (const node of this.map.nodes) if (node.id !== this.nodeId && node.state !== "removed") peers.set(node.id, node.peer);
    this.transport = new PeerTransport({
      nodeId: this.nodeId,
      // nodes[].peerListen: where to bind when it differs from the address peers dial (containers, chaos proxies).
      listenAddress: this.self.peerListen ?? this.self.peer,
      peers,
      onMessages: (_from, batch) => this.receive(batch),
      onSnapshot: async (_from, groupId, message) => this.receive([[groupId, message]]),
      logger: componentLogger("transport", { node: this.nodeId }),
      tls: nodeCertificateProvider(this.config, this.self, this.log),
      peerSecret: peerSecretFor(this.config),
    });
    this.transport.onSnapshotResult = (to, groupId, ok) => {
      this.groupReplica(groupId)?.raw.reportSnapshot(to, ok);
      this.wake();
    };
    this.transport.onUnreachable = (to) => {
      for (const replica of this.allReplicas()) replica.raw.reportUnreachable(to);
    };
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
    this.lastTickMs = monotonicMs();
    this.running = true;
    this.loopDone = this.runLoop();
    this.reconcile();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.config.placement.heartbeatMs);
    this.heartbeatTimer.unref();
    this.log.info({ shards: [...this.replicas.keys()], meta: this.meta !== undefined, peer: this.self.peer }, "node started");
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

  private *allReplicas(): Iterable<AnyReplica> {
    if (this.meta !== undefined) yield this.meta;
    yield* this.replicas.values();
  }

  private groupReplica(groupId: number): AnyReplica | undefined {
    return groupId === META_GROUP_ID ? this.meta : this.replicas.get(groupId);
  }

  private raftConfig(groupId: number, storage: MemoryStorage, applied: number): RaftConfig {
    return {
      id: this.nodeId,
      electionTicks: this.config.cluster.electionTicks,
      heartbeatTicks: this.config.cluster.heartbeatTicks,
      storage,
      applied,
      maxSizePerMsg: this.config.limits.maxSizePerMsgBytes,
      maxInflightMessages: this.config.limits.maxInflightMessages,
      maxInflightBytes: this.config.limits.maxInflightBytes,
      maxUncommittedEntriesBytes: 256 * 1024 * 1024,
      // The driver loop applies a Ready's committed entries synchronously, so this bounds how long
      // one iteration holds the event loop. At 64 MiB a learner catching up by log over a shard of
      // 1,000,000 counters applied ~760,000 of them in one iteration: 3-4 s of blocked loop on an
      // idle machine, over 10 s on a loaded one, long enough for its heartbeats to stop and the
      // placement controller to abort the move ("target node 4 died"). The rest of the committed
      // entries come in the next iterations (etcd's default: MaxCommittedSizePerReady = MaxSizePerMsg).
      maxCommittedSizePerReady: this.config.limits.maxSizePerMsgBytes,
      preVote: true,
      checkQuorum: true,
      leaseDriftTicks: this.config.cluster.leaseDriftTicks,
      prng: createPrng((this.nodeId * 7919 + groupId * 104729 + Math.floor(wallClockMs())) >>> 0),
    };
  }

  private get replicaLimits() {
    return { maxPendingProposals: this.config.limits.maxPendingProposalsPerShard, maxEntryBytes: this.config.limits.maxEntryBytes };
  }

  /** Loads the group's Raft state into a fresh MemoryStorage; bootstraps it with `voters` when there is none. */
  private async loadRaftState<S extends MemoryStorage>(
    groupId: number,
    storage: S,
    bootstrapVoters: number[] | undefined,
    bootstrap: StoreBatch,
    bootstrapData?: Uint8Array,
  ) {
    const loaded = await this.store.loadGroup(groupId);
    const fresh =
      loaded.confState === undefined && loaded.snapshot === undefined && loaded.entries.length === 0 && loaded.hardState.term === 0;
    let confState: ConfState = { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
    if (fresh && bootstrapVoters !== undefined) {
      RawNode.bootstrap(storage, bootstrapVoters, bootstrapData);
      const snapshot = storage.snapshot();
      confState = snapshot.metadata.confState;
      bootstrap.putSnapshot(groupId, snapshot);
      bootstrap.setConfState(groupId, confState);
      bootstrap.setHardState(groupId, storage.initialState().hardState);
    } else if (!fresh) {
      if (loaded.snapshot) storage.applySnapshot(loaded.snapshot);
      if (loaded.entries.length > 0) storage.append(loaded.entries);
      storage.setHardState(loaded.hardState);
      confState = loaded.confState ?? loaded.snapshot?.metadata.confState ?? confState;
      storage.setConfState(confState);
    }
    return { loaded, storage, confState, fresh };
  }

  private async restoreMeta(bootstrap: StoreBatch, voters: number[], fresh: boolean): Promise<MetaReplica> {
    const { storage, confState, loaded } = await this.loadRaftState(
      META_GROUP_ID,
      new MemoryStorage(),
      fresh ? voters : undefined,
      bootstrap,
    );
    const stateBytes = await this.store.getGroupState(META_GROUP_ID);
    let machine = stateBytes === undefined ? new MetaStateMachine() : MetaStateMachine.restore(stateBytes);
    if (stateBytes === undefined && loaded.snapshot !== undefined && loaded.snapshot.data.length > 0)
      machine = MetaStateMachine.restore(loaded.snapshot.data);
    const replica = new GroupReplica(
      META_GROUP_ID,
      { epoch: 1, slotStart: 0, slotEnd: 1 },
      storage,
      this.raftConfig(META_GROUP_ID, storage, machine.appliedIndex),
      machine,
      confState,
      this.replicaLimits,
      this.shardOptions,
      encodeMetaCommands,
    ) as MetaReplica;
    replica.lastSnapshotIndex = storage.firstIndex() - 1;
    return replica;
  }

  /**
   * A shard replica from what is on disk; or, for a replica the map just assigned (`record`), a new
   * one: bootstrapped with the shard's initial voters at epoch 1 (every initial replica writes the
   * same first snapshot), otherwise empty, to be filled by the leader's snapshot.
   */
  private async restoreShard(shardId: number, record: ShardRecord | undefined, bootstrap: StoreBatch): Promise<ShardReplica> {
    const initial = record !== undefined && record.epoch === 1 && record.voters.includes(this.nodeId) ? record.voters : undefined;
    const descriptorBytes = await this.store.getGroupState(shardId);
    let descriptor: ShardDescriptor;
    if (descriptorBytes !== undefined) descriptor = decodeDescriptor(descriptorBytes, `shard ${shardId}`);
    else if (record !== undefined) descriptor = { epoch: record.epoch, slotStart: record.slotStart, slotEnd: record.slotEnd };
    else descriptor = this.initialDescriptor(shardId);
    // The first snapshot carries the state at index 1 -- an empty shard over its initial range --
    // so a replica that catches up from it learns the range it started with.
    const startState = new CounterStateMachine(this.shardOptions);
    startState.applyEntry(1, new Uint8Array(0));
    const bootstrapData = initial !== undefined ? wrapShardSnapshot(descriptor, startState.snapshot()) : undefined;
    const { loaded, storage, confState, fresh } = await this.loadRaftState(shardId, new ShardStorage(), initial, bootstrap, bootstrapData);
    if (fresh) bootstrap.putGroupState(shardId, encodeDescriptor(descriptor));
    let machine: CounterStateMachine;
    if (fresh) {
      machine = initial !== undefined ? startState : new CounterStateMachine(this.shardOptions);
      if (initial !== undefined) bootstrap.setApplied(shardId, 1, 0);
    } else {
      const counters: Array<[Uint8Array, { value: bigint; version: number }]> = [];
      for await (const batch of this.store.scanCounterBatches(shardId))
        for (const [key, value] of batch) counters.push([key, decodeCounterRecord(value)]);
      const sessions: Array<[number, Uint8Array]> = [];
      for await (const batch of this.store.scanSessionBatches(shardId)) for (const entry of batch) sessions.push(entry);
      const kinds: Array<[Uint8Array, Uint8Array]> = [];
      for await (const batch of this.store.scanKindBatches(shardId)) for (const entry of batch) kinds.push(entry);
      machine = CounterStateMachine.load(
        this.shardOptions,
        loaded.applied?.index ?? 0,
        loaded.applied?.clockMs ?? 0,
        counters,
        sessions,
        kinds,
      );
    }
    return this.newShardReplica(shardId, descriptor, storage, machine, confState, storage.firstIndex() - 1);
  }

  private newShardReplica(
    shardId: number,
    descriptor: ShardDescriptor,
    storage: ShardStorage,
    machine: CounterStateMachine,
    confState: ConfState,
    lastSnapshotIndex: number,
  ): ShardReplica {
    const replica = new GroupReplica(
      shardId,
      descriptor,
      storage,
      this.raftConfig(shardId, storage, machine.appliedIndex),
      machine,
      confState,
      this.replicaLimits,
      this.shardOptions,
      encodeShardEntry,
    ) as ShardReplica;
    replica.lastSnapshotIndex = lastSnapshotIndex;
    replica.admit = this.admitFor(replica);
    storage.appliedState = () => ({
      index: replica.machine.appliedIndex,
      confState: replica.confState,
      data: () => this.snapshotData(replica),
    });
    storage.onBuilt = (index, bytes, ms) => {
      this.stats.snapshotsBuilt++;
      this.log.info({ shard: shardId, index, bytes, ms: Math.round(ms) }, "built a snapshot for a follower");
    };
    return replica;
  }

  /** The state changes the machine reports, with its applied index, into the batch. */
  private writeShardChanges(shardId: number, machine: CounterStateMachine, batch: StoreBatch): void {
    const changes = machine.takeChanges();
    for (const [key, record] of changes.counters)
      batch.putCounter(shardId, key, record === undefined ? undefined : encodeCounterRecord(record));
    for (const [clientId, record] of changes.sessions) batch.putSession(shardId, clientId, record);
    for (const [key, record] of changes.kinds) batch.putKind(shardId, key, record);
    batch.setApplied(shardId, machine.appliedIndex, machine.clockMs);
  }

  /**
   * The routing check at apply time, from the replica's replicated descriptor only (so every
   * replica reaches the same verdict): a mutation routed by another epoch, or naming a key outside
   * the slot range, is refused with WRONG_SHARD and changes nothing.
   */
  private admitFor(replica: ShardReplica): AdmitMutation {
    return (command) => {
      const descriptor = replica.descriptor;
      if (command.epoch !== undefined && command.epoch !== 0) {
        if (command.epoch !== descriptor.epoch) {
          this.stats.staleEpochRejected++;
          return {
            ok: false,
            code: "WRONG_SHARD",
            message: `shard ${replica.shardId} is at epoch ${descriptor.epoch}, the request was routed by epoch ${command.epoch}`,
            currentEpoch: descriptor.epoch,
          };
        }
        // Same epoch, same range: route() checked these keys against it at admission (the range
        // changes only with the epoch), so the per-key hashing is not repeated on every replica.
        return undefined;
      }
      for (const op of command.ops) {
        const slot = slotOf(op.key);
        if (slot < descriptor.slotStart || slot >= descriptor.slotEnd) {
          return {
            ok: false,
            code: "WRONG_SHARD",
            message: `key in slot ${slot} does not belong to shard ${replica.shardId}`,
            currentEpoch: descriptor.epoch,
          };
        }
      }
      return undefined;
    };
  }

  /** A shard's descriptor at its bootstrap (epoch 1, its initial slot range from the config). */
  private initialDescriptor(shardId: number): ShardDescriptor {
    const placement = computePlacement(this.config).find((p) => p.shardId === shardId);
    if (placement === undefined) throw new Error(`shard ${shardId} has no descriptor and is not in the initial placement`);
    return { epoch: placement.epoch, slotStart: placement.slots.start, slotEnd: placement.slots.end };
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
    this.reconcile();
  }

  /** Compares hosted replicas with the map; changes are carried out by the loop. */
  private reconcile(): void {
    if (!this.map.initialized) return;
    const metaMember = metaMembers(this.map).includes(this.nodeId);
    if (metaMember && this.meta === undefined) this.metaChange = "create";
    // Only on a map from elsewhere: our own replica's map cannot tell us we were removed before we applied it.
    if (!metaMember && this.meta !== undefined && this.map !== this.meta.machine.map && this.map.meta.voters.length > 0)
      this.metaChange = "destroy";
    for (const shard of this.map.shards) {
      const local = this.replicas.get(shard.id);
      const member = shardMembers(shard).includes(this.nodeId);
      if (member && local === undefined && shard.epoch > (this.tombstones.get(shard.id) ?? 0)) this.groupsToCreate.set(shard.id, shard);
      // Removed from the shard by a change the map has seen applied: this replica is garbage.
      if (!member && local !== undefined && shard.epoch > local.descriptor.epoch) this.groupsToDestroy.add(shard.id);
    }
    if (this.groupsToCreate.size > 0 || this.groupsToDestroy.size > 0 || this.metaChange !== undefined) this.wake();
  }

  private async changeGroups(): Promise<void> {
    if (this.metaChange !== undefined) {
      const change = this.metaChange;
      this.metaChange = undefined;
      const batch = this.store.batch();
      if (change === "create" && this.meta === undefined) {
        this.meta = await this.restoreMeta(batch, [], false);
        this.controller = this.newController();
        this.log.info("created a metadata replica");
      } else if (change === "destroy" && this.meta !== undefined && this.map.version > this.meta.machine.appliedIndex) {
        this.meta.failInflight(new UnavailableError(`node ${this.nodeId} no longer holds a metadata replica`));
        this.meta = undefined;
        this.controller = undefined;
        batch.destroyGroup(META_GROUP_ID);
        this.log.info("removed the metadata replica");
      }
      if (batch.size > 0) await this.store.write(batch, { sync: true });
    }
    if (this.groupsToCreate.size === 0 && this.groupsToDestroy.size === 0) return;
    const create = [...this.groupsToCreate.values()];
    const destroy = [...this.groupsToDestroy];
    this.groupsToCreate.clear();
    this.groupsToDestroy.clear();
    const batch = this.store.batch();
    for (const shardId of destroy) {
      const replica = this.replicas.get(shardId);
      if (replica === undefined) continue;
      // UNAVAILABLE, not WRONG_SHARD: a proposal in flight here may still commit elsewhere.
      replica.failInflight(new UnavailableError(`shard ${shardId} no longer has a replica on node ${this.nodeId}`));
      this.replicas.delete(shardId);
      // Its own epoch, or the map's when the map (newer) also leaves this node out; not a map that
      // already shows a re-add, whose replica must still be created.
      const mapped = this.map.shards.find((shard) => shard.id === shardId);
      const removedAt =
        mapped !== undefined && !shardMembers(mapped).includes(this.nodeId)
          ? Math.max(replica.descriptor.epoch, mapped.epoch)
          : replica.descriptor.epoch;
      this.tombstones.set(shardId, removedAt);
      batch.putTombstone(shardId, removedAt);
      batch.destroyGroup(shardId);
      batch.clearShardState(shardId);
      this.stats.replicasRemoved++;
      this.log.info({ shard: shardId }, "removed replica");
    }
    for (const record of create) {
      if (this.replicas.has(record.id)) continue;
      // Queued from a map older than a removal carried out since (in this very batch, say).
      if (record.epoch <= (this.tombstones.get(record.id) ?? 0)) continue;
      this.replicas.set(record.id, await this.restoreShard(record.id, record, batch));
      this.stats.replicasCreated++;
      this.log.info({ shard: record.id, epoch: record.epoch }, "created replica");
    }
    if (batch.size > 0) await this.store.write(batch, { sync: true });
    // A replica removed here may already be re-added in the map this node holds (a later epoch, past
    // its tombstone); without a new map nothing else would look again, so look now.
    if (destroy.length > 0) this.reconcile();
  }

  /** Runs `action` inside the loop, before proposals (Raft is never touched between Ready and advance). */
  inLoop<T>(action: () => T): Promise<T> {
    this.checkAlive();
    return new Promise((resolve, reject) => {
      this.loopActions.push(() => {
        try {
          resolve(action());
        } catch (error) {
          reject(error as Error);
        }
      });
      this.wake();
    });
  }

  // ---- heartbeats: load reports up, the map down ----

  private report(): NodeReport {
    const now = monotonicMs();
    const elapsedS = this.lastReportMs === 0 ? 1 : Math.max(0.05, (now - this.lastReportMs) / 1000);
    this.lastReportMs = now;
    const shards: ShardReport[] = [];
    for (const replica of this.replicas.values()) {
      const status = replica.raw.status();
      const conf = replica.confState;
      const isLeader = replica.isLeader;
      const ops = replica.appliedCommands;
      replica.appliedCommands = 0;
      shards.push({
        id: replica.shardId,
        epoch: replica.descriptor.epoch,
        slotStart: replica.descriptor.slotStart,
        slotEnd: replica.descriptor.slotEnd,
        voters: [...conf.voters],
        learners: [...conf.learners, ...conf.learnersNext],
        votersOutgoing: [...conf.votersOutgoing],
        leader: status.leader,
        term: status.term,
        commit: status.commit,
        applied: replica.machine.appliedIndex,
        isLeader,
        progress: isLeader ? [...status.progress].map(([id, progress]) => [id, progress.match] as [number, number]) : [],
        opsPerSecond: isLeader ? ops / elapsedS : 0,
        counters: replica.machine.counterCount(),
        splitSlot: isLeader ? loadMedianSlot(replica) : 0,
      });
      replica.slotLoad.fill(0);
    }
    return {
      node: { id: this.nodeId, client: this.self.client, peer: this.self.peer, zone: this.self.zone },
      mapVersion: this.map.version,
      shards,
    };
  }

  /** One heartbeat to the metadata leader (or to this node's own controller). */
  private async heartbeat(): Promise<void> {
    if (!this.running || this.heartbeatInFlight) return;
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
        const reply = await this.adminClients.internal<HeartbeatReply>(
          address,
          "heartbeat",
          report,
          Math.max(500, this.config.placement.heartbeatMs * 3),
        );
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
    return this.inLoop(() => {
      const replica = this.replicas.get(request.shardId);
      if (replica === undefined)
        throw new WrongShardError(`shard ${request.shardId} has no replica on node ${this.nodeId}`, request.shardId, 0);
      if (!replica.isLeader) throw replica.notLeaderError(this.leaderAddress);
      if (replica.descriptor.epoch !== request.expectedEpoch) {
        throw new FailedPreconditionError(
          `shard ${request.shardId} is at epoch ${replica.descriptor.epoch}, the change expected ${request.expectedEpoch}`,
        );
      }
      switch (request.action) {
        case "add-learner":
          replica.raw.proposeConfChange({
            transition: ConfChangeTransition.Auto,
            changes: [{ type: ConfChangeType.AddLearnerNode, nodeId: request.nodeId }],
          });
          break;
        case "promote-and-remove":
          replica.raw.proposeConfChange({
            transition: ConfChangeTransition.JointImplicit,
            changes: [
              { type: ConfChangeType.AddNode, nodeId: request.nodeId },
              { type: ConfChangeType.RemoveNode, nodeId: request.removeId },
            ],
          });
          break;
        case "promote":
          replica.raw.proposeConfChange({
            transition: ConfChangeTransition.Auto,
            changes: [{ type: ConfChangeType.AddNode, nodeId: request.nodeId }],
          });
          break;
        case "remove":
          replica.raw.proposeConfChange({
            transition: ConfChangeTransition.Auto,
            changes: [{ type: ConfChangeType.RemoveNode, nodeId: request.nodeId }],
          });
          break;
        case "transfer-leader":
          replica.raw.transferLeader(request.nodeId);
          break;
        case "split": {
          const { slotStart, slotEnd } = replica.descriptor;
          if (!(request.splitSlot > slotStart && request.splitSlot < slotEnd)) {
            throw new InvalidArgumentError(
              `split slot ${request.splitSlot} is not inside shard ${request.shardId}'s slots ${slotStart}-${slotEnd - 1}`,
            );
          }
          const conf = replica.confState;
          if (conf.votersOutgoing.length > 0 || conf.learners.length > 0 || conf.learnersNext.length > 0) {
            throw new FailedPreconditionError(`shard ${request.shardId} is changing membership; split it afterwards`);
          }
          replica.raw.propose(
            encodeSplitEntry({ splitSlot: request.splitSlot, newShardId: request.newShardId, expectedEpoch: replica.descriptor.epoch }),
          );
          break;
        }
        default:
          throw new InvalidArgumentError(`unknown shard change ${String((request as { action: unknown }).action)}`);
      }
      return { epoch: replica.descriptor.epoch };
    });
  }

  /**
   * LAST RESORT (tallyctl recover --unsafe): a shard that lost its quorum forever continues from
   * this replica alone. Its configuration is rewritten to this node as the only voter and its epoch
   * jumps by 1000 (above anything the lost replicas could have reached); the replica campaigns and
   * the controller re-replicates it. Writes the lost replicas acknowledged beyond what this one
   * holds are gone: that is what "unsafe" means.
   */
  recoverUnsafe(shardId: number): Promise<number> {
    return this.inLoop(() => {
      const replica = this.replicas.get(shardId);
      if (replica === undefined) throw new WrongShardError(`shard ${shardId} has no replica on node ${this.nodeId}`, shardId, 0);
      const conf: ConfState = { voters: [this.nodeId], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
      replica.failInflight(new UnavailableError(`shard ${shardId} is being recovered`));
      replica.storage.setConfState(conf);
      replica.confState = conf;
      replica.descriptor = { ...replica.descriptor, epoch: replica.descriptor.epoch + 1000 };
      replica.raw = new RawNode(this.raftConfig(shardId, replica.storage, replica.machine.appliedIndex));
      replica.role = Role.Follower;
      replica.leader = 0;
      const descriptor = encodeDescriptor(replica.descriptor);
      this.pendingWrites.push((batch) => {
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
    let id = shardId;
    if (id === 0) {
      const first = keys[0];
      if (first === undefined) throw new WrongShardError("request names no shard and no key", 0, 0);
      id = this.shardIdForKey(first);
      if (id === 0) throw new UnavailableError(`node ${this.nodeId} does not know the partition map yet`);
    }
    const replica = this.replicas.get(id);
    if (replica === undefined) {
      const record = this.map.shards.find((shard) => shard.id === id);
      if (record === undefined) throw new WrongShardError(`shard ${id} does not exist`, id, 0);
      const leaderHint = record.voters[0];
      throw new NotLeaderError(
        `shard ${id} has no replica on node ${this.nodeId}`,
        leaderHint === undefined ? undefined : String(leaderHint),
        leaderHint === undefined ? undefined : this.leaderAddress(leaderHint),
        id,
      );
    }
    const descriptor = replica.descriptor;
    if (epoch !== 0 && epoch !== descriptor.epoch) {
      this.stats.staleEpochRejected++;
      throw new WrongShardError(`shard ${id} is at epoch ${descriptor.epoch}, request routed by epoch ${epoch}`, id, descriptor.epoch);
    }
    const load = replica.slotLoad;
    const width = descriptor.slotEnd - descriptor.slotStart;
    for (const key of keys) {
      const slot = slotOf(key);
      load[Math.min(SLOT_LOAD_BUCKETS - 1, Math.floor(((slot - descriptor.slotStart) * SLOT_LOAD_BUCKETS) / width))]! += 1;
      if (slot < descriptor.slotStart || slot >= descriptor.slotEnd) {
        throw new WrongShardError(
          `key in slot ${slot} does not belong to shard ${id} (slots ${descriptor.slotStart}-${descriptor.slotEnd - 1})`,
          id,
          descriptor.epoch,
        );
      }
    }
    return replica;
  }

  /** The shard owning the key's slot by the map (0 when the map is not known yet). */
  shardIdForKey(key: Uint8Array): number {
    const slot = slotOf(key);
    for (const replica of this.replicas.values())
      if (slot >= replica.descriptor.slotStart && slot < replica.descriptor.slotEnd) return replica.shardId;
    return this.map.shards.find((shard) => slot >= shard.slotStart && slot < shard.slotEnd)?.id ?? 0;
  }

  /** Proposes one validated command through the shard's leader; resolves when it is applied. */
  submit(
    replica: ShardReplica,
    command: Command,
    bytes: number,
    timeoutMs = this.config.limits.requestTimeoutMs,
  ): Promise<MutationOutcome> {
    this.checkAlive();
    if (!replica.isLeader) return Promise.reject(replica.notLeaderError(this.leaderAddress));
    if (ACK_BEFORE_COMMIT && command.type === "mutate") return this.ackBeforeCommit(replica, command, bytes, timeoutMs);
    return new Promise<MutationOutcome>((resolve, reject) => {
      replica.enqueue({
        command,
        bytes,
        deadlineMs: monotonicMs() + timeoutMs,
        resolve: (result, index, term) => resolve({ result, index, term }),
        reject,
      });
      this.wake();
    });
  }

  /**
   * PLANTED BUG for the chaos harness (TALLY_TEST_ACK_BEFORE_COMMIT=1, never in production): answers
   * a mutation from the leader's applied state before the entry is committed, then proposes it
   * anyway. A leader crash loses acknowledged writes and concurrent adds see stale values; the
   * chaos checker must catch both (test/chaos/planted.test.ts).
   */
  private ackBeforeCommit(
    replica: ShardReplica,
    command: Extract<Command, { type: "mutate" }>,
    bytes: number,
    timeoutMs: number,
  ): Promise<MutationOutcome> {
    const results = command.ops.map((op) => {
      const current = readCounter(replica, op.key);
      const before = current?.value ?? 0n;
      const value = op.kind === "add" ? before + op.delta : "value" in op ? op.value : 0n;
      return { value, version: current?.version ?? 0 };
    });
    replica.enqueue({ command, bytes, deadlineMs: monotonicMs() + timeoutMs, resolve: () => undefined, reject: () => undefined });
    this.wake();
    return Promise.resolve({
      result: { ok: true, type: "mutate", results, duplicate: false },
      index: replica.machine.appliedIndex,
      term: replica.raw.term,
    });
  }

  read(
    replica: ShardReplica,
    keys: Uint8Array[],
    consistency: Consistency,
    minIndex: number,
    timeoutMs = this.config.limits.requestTimeoutMs,
  ): Promise<ReadResult> {
    this.checkAlive();
    const answer = (r: ShardReplica): ReadResult => ({
      values: keys.map((key) => {
        const record = readCounter(r, key);
        return record === undefined
          ? { value: 0n, version: 0, exists: false, kind: r.machine.kindOf(key, Date.now()) }
          : { value: record.value, version: record.version, exists: true };
      }),
      term: r.raw.term,
      appliedIndex: r.machine.appliedIndex,
    });
    if (consistency === "stale") {
      if (replica.machine.appliedIndex >= minIndex) return Promise.resolve(answer(replica));
      return new Promise((resolve, reject) => {
        replica.addReadAtIndex({ index: minIndex, deadlineMs: monotonicMs() + timeoutMs, serve: (r) => resolve(answer(r)), reject });
        this.wake();
      });
    }
    return this.linearizable(replica, minIndex, timeoutMs, answer);
  }

  /**
   * `answer` runs on the shard's leader at an applied index at or above both minIndex and a
   * ReadIndex taken after this call (or under a valid lease): it sees every write acknowledged
   * before the call. It runs synchronously, so it sees one applied state.
   */
  private linearizable<T>(replica: ShardReplica, minIndex: number, timeoutMs: number, answer: (r: ShardReplica) => T): Promise<T> {
    if (!replica.isLeader) return Promise.reject(replica.notLeaderError(this.leaderAddress));
    // Bring the lease up to the monotonic clock first: after a pause (GC, SIGSTOP) the ticks we
    // missed must count before we trust the lease.
    this.catchUpTicks();
    if (replica.canServeLeaseRead() && replica.machine.appliedIndex >= minIndex) return Promise.resolve(answer(replica));
    return new Promise((resolve, reject) => {
      const waiter: ReadWaiter = {
        index: -1,
        deadlineMs: monotonicMs() + timeoutMs,
        serve: (r) => {
          if (r.machine.appliedIndex >= minIndex) resolve(answer(r));
          else r.addReadAtIndex({ ...waiter, index: minIndex });
        },
        reject,
      };
      replica.addLinearizableRead(waiter);
      this.wake();
    });
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
    return this.linearizable(replica, 0, timeoutMs, (r) => ({
      shardId,
      descriptor: { ...r.descriptor },
      appliedIndex: r.machine.appliedIndex,
      term: r.raw.term,
      clockMs: r.machine.clockMs,
      counters: r.machine.counterCount(),
      leaderId: this.nodeId,
      data: wrapShardSnapshot(r.descriptor, r.machine.snapshot()),
    }));
  }

  /**
   * Hands shard `shardId`'s leadership to node `to` and waits until this replica sees `to` lead,
   * as etcd's MoveLeader does: the caller learns whether it happened, not only that it was asked.
   * The transfer starts inside the loop (Raft is never touched between a Ready and its advance).
   * Raft aborts a transfer the target does not finish within an election timeout (it is behind or
   * unreachable); then, or at `timeoutMs`, this fails UNAVAILABLE, and a retry is safe.
   */
  async transferLeader(shardId: number, to: number, timeoutMs = this.transferTimeoutMs()): Promise<void> {
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

  /** Long enough for a transfer Raft may complete (it aborts one after an election timeout), with room for a slow loop. */
  private transferTimeoutMs(): number {
    const { electionTicks, tickMs } = this.config.cluster;
    return Math.max(2000, 4 * electionTicks * tickMs);
  }

  // ---- the driver loop ----

  private receive(batch: Array<[number, Message]>): void {
    if (this.inbound.length + batch.length > INBOUND_MESSAGES_MAX) {
      this.inboundDropped += batch.length; // Raft retransmits.
      return;
    }
    for (const item of batch) this.inbound.push(item);
    this.wake();
  }

  private wake(): void {
    this.wakePending = true;
    const resolve = this.wakeResolve;
    if (resolve !== undefined) {
      this.wakeResolve = undefined;
      resolve();
    }
  }

  private waitForWork(): Promise<void> {
    if (this.wakePending) {
      this.wakePending = false;
      return Promise.resolve();
    }
    const untilTick = Math.max(1, this.lastTickMs + this.config.cluster.tickMs - monotonicMs());
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wakeResolve = undefined;
        resolve();
      }, untilTick);
      this.wakeResolve = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private catchUpTicks(): void {
    const now = monotonicMs();
    const tickMs = this.config.cluster.tickMs;
    let ticks = Math.floor((now - this.lastTickMs) / tickMs);
    if (ticks <= 0) return;
    if (ticks > CATCH_UP_TICKS_MAX) {
      this.log.warn({ missedTicks: ticks }, "driver loop was paused; catching up");
      ticks = CATCH_UP_TICKS_MAX;
      this.lastTickMs = now;
    } else {
      this.lastTickMs += ticks * tickMs;
    }
    for (const replica of this.allReplicas()) for (let i = 0; i < ticks; i++) replica.raw.tick();
    for (const replica of this.allReplicas()) {
      replica.expire(now);
      if (replica.storage instanceof ShardStorage) replica.storage.expireBuilt(now);
    }
  }

  private async runLoop(): Promise<void> {
    try {
      while (this.running) {
        await this.iterate();
        if (this.running) await this.waitForWork();
      }
    } catch (error) {
      this.fatalError = error as Error;
      this.running = false;
      this.log.fatal({ err: error }, "driver loop failed; the node stops serving");
      for (const replica of this.allReplicas())
        replica.failInflight(new UnavailableError(`node ${this.nodeId} stopped: ${(error as Error).message}`));
      this.onHealthChange?.(false);
      this.onFatal?.(error as Error);
    }
  }

  /** Called when the loop dies (storage corruption, fsync failure): the process should exit. */
  onFatal: ((error: Error) => void) | undefined;
  /** Called when the node's ability to serve changes (health service). */
  onHealthChange: ((serving: boolean) => void) | undefined;

  private checkAlive(): void {
    if (this.fatalError) throw new UnavailableError(`node ${this.nodeId} has stopped: ${this.fatalError.message}`);
    if (!this.running) throw new UnavailableError(`node ${this.nodeId} is not running`);
  }

  private async iterate(): Promise<void> {
    this.stats.iterations++;
    await this.changeGroups();
    this.catchUpTicks();
    if (this.inbound.length > 0) {
      const inbound = this.inbound;
      this.inbound = [];
      for (const [groupId, message] of inbound) {
        const replica = this.groupReplica(groupId);
        if (replica === undefined) continue;
        replica.raw.step(message);
      }
    }
    if (this.loopActions.length > 0) {
      const actions = this.loopActions;
      this.loopActions = [];
      for (const action of actions) action();
    }
    const nowWall = wallClockMs();
    for (const replica of this.allReplicas()) {
      replica.proposeQueued(nowWall, this.leaderAddress);
      replica.issueReadIndex(this.leaderAddress);
    }

    const readies: Array<[AnyReplica, Ready]> = [];
    for (const replica of this.allReplicas()) if (replica.raw.hasReady()) readies.push([replica, replica.raw.ready()]);
    if (readies.length === 0) return;

    // Thesis 10.2.1: a leader may write its log in parallel with replicating it, so its App and
    // Heartbeat messages leave before the fsync. Safe here because iterations are sequential: the
    // leader's own write completes before it steps any acknowledgement, so it never counts itself
    // toward a commit before its entries are durable. Everything else (votes, acknowledgements)
    // promises durable state and waits for the write.
    const late: Array<[number, Message]> = [];
    for (const [replica, ready] of readies) {
      for (const message of ready.messages) {
        if (message.type === MessageType.App || message.type === MessageType.Heartbeat)
          this.transport.send(message.to, replica.shardId, message);
        else late.push([replica.shardId, message]);
      }
    }
    this.transport.flush();

    // 2. Build ONE batch for every group: snapshots, new entries, hard states, and the effects of
    // applying committed entries together with the applied index (so a crash never half-applies).
    // Applying in memory before the write is safe: committed entries are durable on a quorum, and
    // a crash before the write replays them from the log. So replies to the writes applied here go
    // out before the write (below), except where this node's own copy of the entry is in this very
    // batch; ReadIndex reads still wait for it.
    const batch = this.store.batch();
    let mustSync = this.pendingWrites.length > 0;
    for (const write of this.pendingWrites.splice(0)) write(batch);
    for (const [replica, ready] of readies) {
      if (ready.snapshot !== undefined && ready.snapshot.metadata.index > 0) this.installSnapshot(replica, ready, batch);
      if (ready.entries.length > 0) {
        const first = ready.entries[0]!.index;
        const previousLast = replica.storage.lastIndex();
        replica.storage.append(ready.entries);
        if (first <= previousLast) batch.truncateAfter(replica.shardId, first - 1, previousLast);
        batch.appendEntries(replica.shardId, ready.entries);
        this.stats.entriesWritten += ready.entries.length;
      }
      if (ready.hardState !== undefined) {
        replica.storage.setHardState(ready.hardState);
        batch.setHardState(replica.shardId, ready.hardState);
      }
      mustSync ||= ready.mustSync;
      if (ready.softState !== undefined) this.onSoftState(replica, ready.softState.role, ready.softState.leader);
      this.apply(replica, ready, batch);
    }
    // Answer the writes this iteration applied whose entries were already on disk here (all of
    // them but a single-voter group's newest): committed entries are durable on a quorum, so the
    // answer need not wait for this batch's fsync, which holds the next entries (thesis 10.2.1).
    for (const [replica, ready] of readies)
      replica.completeApplied(ready.entries.length > 0 ? ready.entries[0]!.index - 1 : Number.POSITIVE_INFINITY);
    if (batch.size > 0) {
      await this.store.write(batch, { sync: mustSync });
      if (mustSync) this.stats.syncs++;
    }

    // 3. Send the rest, now that what they promise is durable; answer clients and reads.
    for (const [shardId, message] of late) this.transport.send(message.to, shardId, message);
    if (late.length > 0) this.transport.flush();
    for (const [replica, ready] of readies) {
      replica.completeApplied();
      for (const readState of ready.readStates) replica.onReadState(readState.index, readState.context);
      replica.serveAppliedReads();
    }

    // 4. Advance.
    for (const [replica] of readies) replica.raw.advance();
    if (readies.some(([replica]) => replica.raw.hasReady())) this.wakePending = true;
  }

  private onSoftState(replica: AnyReplica, role: Role, leader: number): void {
    const wasLeader = replica.isLeader;
    replica.role = role;
    const leaderChanged = leader !== replica.leader;
    if (leaderChanged) this.stats.leaderChanges++;
    replica.leader = leader;
    if (leaderChanged) this.onLeaderChange?.();
    if (role === Role.Leader && !wasLeader) {
      this.log.info({ shard: replica.shardId, term: replica.raw.term }, "became leader");
    } else if (role !== Role.Leader && wasLeader) {
      replica.failInflight(replica.notLeaderError(this.leaderAddress), NOT_LEADER_AFTER_PROPOSE);
    }
  }

  private apply(replica: AnyReplica, ready: Ready, batch: StoreBatch): void {
    if (ready.committedEntries.length === 0) return;
    let appliedBytes = 0;
    for (const entry of ready.committedEntries) appliedBytes += entryBytes(entry);
    this.stats.appliedBytesPerIterationMax = Math.max(this.stats.appliedBytesPerIterationMax, appliedBytes);
    replica.appliedBytesSinceSnapshot += appliedBytes;
    const shard = replica.shardId === META_GROUP_ID ? undefined : (replica as ShardReplica);
    let removedSelf = false;
    for (const entry of ready.committedEntries) {
      if (entry.type === EntryType.ConfChange) {
        const change = decodeConfChange(entry.data);
        replica.confState = replica.raw.applyConfChange(change);
        replica.storage.setConfState(replica.confState);
        batch.setConfState(replica.shardId, replica.confState);
        replica.machine.applyEntry(entry.index, new Uint8Array(0));
        if (shard !== undefined) {
          // Every change of the replica set is a new epoch (requests routed by the old one are refused).
          shard.descriptor = { ...shard.descriptor, epoch: shard.descriptor.epoch + 1 };
          batch.putGroupState(shard.shardId, encodeDescriptor(shard.descriptor));
          const conf = shard.confState;
          removedSelf = ![...conf.voters, ...conf.learners, ...conf.votersOutgoing, ...conf.learnersNext].includes(this.nodeId);
          this.log.info(
            {
              shard: shard.shardId,
              epoch: shard.descriptor.epoch,
              voters: conf.voters,
              learners: conf.learners,
              outgoing: conf.votersOutgoing,
            },
            "membership changed",
          );
        }
      } else if (shard !== undefined && entry.data.length > 0 && entry.data[0] === SPLIT_ENTRY_MARKER) {
        this.applySplit(shard, entry.index, decodeSplitEntry(entry.data)!, batch);
      } else {
        replica.applyNormal(entry);
      }
      this.stats.applied++;
    }
    if (shard !== undefined) {
      this.writeShardChanges(shard.shardId, shard.machine, batch);
      // Removed from the group: the replica is garbage once this batch is written.
      if (removedSelf) this.groupsToDestroy.add(shard.shardId);
    } else {
      const meta = replica as MetaReplica;
      batch.putGroupState(META_GROUP_ID, meta.machine.snapshot());
      batch.setApplied(META_GROUP_ID, meta.machine.appliedIndex, meta.machine.map.clockMs);
      this.adoptMap(meta.machine.map as ClusterMap);
    }
    this.maybeSnapshot(replica, batch);
  }

  /**
   * Applies a range split at `index` (on every replica, in log order, so every replica splits the
   * same state): the parent keeps [slotStart, splitSlot), the new shard gets [splitSlot, slotEnd)
   * with the counters there and a copy of every session (a client retrying a write that may have
   * applied before the split finds its outcome on either side), both at epoch + 1. The new shard's
   * Raft group starts from a snapshot at `index` with the parent's voters, written in the same
   * batch as the parent's apply, so a crash leaves both or neither. Its counters keep their
   * versions (all <= index) and its own log continues above index, so versions never repeat.
   * A split that no longer fits (epoch moved, slot outside, membership changing) changes nothing.
   */
  private applySplit(parent: ShardReplica, index: number, split: SplitEntry, batch: StoreBatch): void {
    parent.machine.applyEntry(index, new Uint8Array(0));
    const before = parent.descriptor;
    const conf = parent.confState;
    const fits =
      split.expectedEpoch === before.epoch &&
      split.splitSlot > before.slotStart &&
      split.splitSlot < before.slotEnd &&
      conf.votersOutgoing.length === 0 &&
      conf.learners.length === 0 &&
      conf.learnersNext.length === 0;
    if (!fits) {
      this.log.warn({ shard: parent.shardId, split, descriptor: before }, "split entry no longer applies; ignored");
      return;
    }
    const epoch = before.epoch + 1;
    parent.descriptor = { epoch, slotStart: before.slotStart, slotEnd: split.splitSlot };
    batch.putGroupState(parent.shardId, encodeDescriptor(parent.descriptor));
    const moved = parent.machine.removeWhere((key) => slotOf(key) >= split.splitSlot);
    const movedKinds = parent.machine.removeKindsWhere((key) => slotOf(key) >= split.splitSlot);
    const sessions = [...parent.machine.exportRecords().sessions];
    const childId = split.newShardId;
    const childDescriptor: ShardDescriptor = { epoch, slotStart: split.splitSlot, slotEnd: before.slotEnd };
    this.log.info({ shard: parent.shardId, newShard: childId, splitSlot: split.splitSlot, moved: moved.length, epoch }, "shard split");
    if (this.replicas.has(childId)) return; // created from the map already (it caught up by snapshot)
    // A node replaying this entry after joining later was not a voter then: the new shard's
    // replicas are the parent's voters at the split, and it is not one of them.
    if (!conf.voters.includes(this.nodeId)) return;
    const child = CounterStateMachine.load(this.shardOptions, index, parent.machine.clockMs, moved, sessions, movedKinds);
    const storage = new ShardStorage();
    const childConf: ConfState = { voters: [...conf.voters], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
    // Metadata only, like every shard's: the child's state goes to its records below, and its
    // leader builds snapshot data from the applied state when a follower needs it.
    const snapshot = { metadata: { index, term: 1, confState: childConf }, data: EMPTY_SNAPSHOT_DATA };
    storage.applySnapshot(snapshot);
    const hardState = { term: 1, vote: 0, commit: index };
    storage.setHardState(hardState);
    batch.putSnapshot(childId, snapshot);
    batch.setConfState(childId, childConf);
    batch.setHardState(childId, hardState);
    batch.putGroupState(childId, encodeDescriptor(childDescriptor));
    for (const [key, record] of moved) batch.putCounter(childId, key, encodeCounterRecord(record));
    for (const [clientId, record] of sessions) batch.putSession(childId, clientId, record);
    for (const [key, record] of movedKinds) batch.putKind(childId, key, record);
    batch.setApplied(childId, index, child.clockMs);
    const replica = this.newShardReplica(childId, childDescriptor, storage, child, childConf, index);
    this.replicas.set(childId, replica);
    this.stats.replicasCreated++;
    this.wakePending = true;
  }

  private snapshotData(replica: AnyReplica): Uint8Array {
    if (replica.shardId === META_GROUP_ID) return (replica as MetaReplica).machine.snapshot();
    const shard = replica as ShardReplica;
    return wrapShardSnapshot(shard.descriptor, shard.machine.snapshot());
  }

  private maybeSnapshot(replica: AnyReplica, batch: StoreBatch): void {
    const applied = replica.machine.appliedIndex;
    const isMeta = replica.shardId === META_GROUP_ID;
    const byEntries = applied - replica.lastSnapshotIndex >= this.config.cluster.snapshotEveryEntries;
    const byBytes = !isMeta && replica.appliedBytesSinceSnapshot >= LOG_COMPACT_BYTES;
    if ((!byEntries && !byBytes) || applied <= replica.lastSnapshotIndex) return;
    // A shard's snapshot is metadata only: its state is in its records, and ShardStorage builds
    // the data when a follower needs it. The metadata group's state is small: it keeps the data.
    const data = isMeta ? this.snapshotData(replica) : EMPTY_SNAPSHOT_DATA;
    const snapshot = replica.storage.createSnapshot(applied, replica.confState, data);
    const firstIndex = replica.storage.firstIndex();
    // Keep a tail of the log so briefly lagging followers catch up by log, not by snapshot.
    const keep = this.tailEntries(replica, applied, Math.min(1000, Math.floor(this.config.cluster.snapshotEveryEntries / 2)));
    const compactTo = applied - keep;
    batch.putSnapshot(replica.shardId, snapshot);
    if (compactTo >= firstIndex) {
      replica.storage.compact(compactTo);
      batch.compactLog(replica.shardId, compactTo, firstIndex);
    }
    replica.lastSnapshotIndex = applied;
    replica.appliedBytesSinceSnapshot = 0;
    this.stats.snapshotsTaken++;
  }

  /** How many entries up to `applied` to keep: at most `maxEntries`, and (shards) at most LOG_TAIL_BYTES of them. */
  private tailEntries(replica: AnyReplica, applied: number, maxEntries: number): number {
    if (replica.shardId === META_GROUP_ID) return maxEntries;
    const from = Math.max(replica.storage.firstIndex(), applied - maxEntries + 1);
    if (from > applied) return 0;
    const tail = replica.storage.entries(from, applied + 1, Number.POSITIVE_INFINITY);
    let kept = 0;
    let bytes = 0;
    for (let i = tail.length - 1; i >= 0; i--) {
      bytes += entryBytes(tail[i]!);
      if (bytes > LOG_TAIL_BYTES) break;
      kept++;
    }
    return kept;
  }

  private installSnapshot(replica: AnyReplica, ready: Ready, batch: StoreBatch): void {
    const snapshot = ready.snapshot!;
    const previousFirst = replica.storage.firstIndex();
    const previousLast = replica.storage.lastIndex();
    replica.storage.applySnapshot(snapshot);
    replica.confState = snapshot.metadata.confState;
    replica.lastSnapshotIndex = snapshot.metadata.index;
    replica.appliedBytesSinceSnapshot = 0;
    if (previousLast >= previousFirst) batch.compactLog(replica.shardId, previousLast, previousFirst);
    // A shard's installed state goes to its records (below); it stores the snapshot's metadata only.
    batch.putSnapshot(replica.shardId, replica.shardId === META_GROUP_ID ? snapshot : metadataOnly(snapshot));
    batch.setConfState(replica.shardId, replica.confState);
    if (replica.shardId === META_GROUP_ID) {
      const meta = replica as MetaReplica;
      // Empty data: the bootstrap snapshot (index 1), taken before anything was applied.
      if (snapshot.data.length === 0) {
        meta.machine = new MetaStateMachine();
        meta.machine.applyEntry(snapshot.metadata.index, new Uint8Array(0));
      } else {
        meta.machine = MetaStateMachine.restore(snapshot.data);
      }
      assert(meta.machine.appliedIndex === snapshot.metadata.index, "meta snapshot state matches its index");
      batch.putGroupState(META_GROUP_ID, snapshot.data);
      batch.setApplied(META_GROUP_ID, meta.machine.appliedIndex, meta.machine.map.clockMs);
      this.adoptMap(meta.machine.map as ClusterMap);
    } else {
      const shard = replica as ShardReplica;
      let descriptor: ShardDescriptor;
      let machine: CounterStateMachine;
      if (snapshot.data.length === 0) {
        // A bootstrap snapshot written before it carried its state (index 1): an empty shard over
        // its initial range -- never the range the map shows now, which a split may have shrunk.
        // Anything later without data would wipe the shard: refuse it (the leader sent metadata only).
        assert(snapshot.metadata.index <= 1, `shard ${shard.shardId}: a snapshot at index ${snapshot.metadata.index} arrived without data`);
        descriptor = this.initialDescriptor(shard.shardId);
        machine = new CounterStateMachine(shard.options);
        machine.applyEntry(snapshot.metadata.index, new Uint8Array(0));
      } else {
        const unwrapped = unwrapShardSnapshot(snapshot.data);
        descriptor = unwrapped.descriptor;
        machine = CounterStateMachine.restore(unwrapped.machine, shard.options);
      }
      assert(machine.appliedIndex === snapshot.metadata.index, "snapshot state matches its index");
      shard.machine = machine;
      shard.descriptor = descriptor;
      batch.clearShardState(shard.shardId);
      batch.putGroupState(shard.shardId, encodeDescriptor(descriptor));
      // The restored machine reports every counter and session as a change.
      this.writeShardChanges(shard.shardId, machine, batch);
    }
    this.stats.snapshotsInstalled++;
    this.log.info({ group: replica.shardId, index: snapshot.metadata.index }, "installed snapshot");
  }

  // ---- status and shutdown ----

  groupStatus(): Array<{ shardId: number; status: ReturnType<RawNode["status"]>; applied: number; epoch: number }> {
    return [...this.allReplicas()].map((replica) => ({
      shardId: replica.shardId,
      status: replica.raw.status(),
      applied: replica.machine.appliedIndex,
      epoch: replica.shardId === META_GROUP_ID ? (this.meta?.machine.appliedIndex ?? 0) : replica.descriptor.epoch,
    }));
  }

  get inboundDroppedCount(): number {
    return this.inboundDropped;
  }

  get isRunning(): boolean {
    return this.running;
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
    return this.fatalError;
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
    if (this.running && options.transferLeadership !== false) {
      for (const replica of this.allReplicas()) {
        if (!replica.isLeader) continue;
        const status = replica.raw.status();
        let best = 0;
        let bestMatch = -1;
        for (const [id, progress] of status.progress) {
          if (id === this.nodeId || progress.isLearner) continue;
          if (progress.match > bestMatch) {
            best = id;
            bestMatch = progress.match;
          }
        }
        if (best !== 0) replica.raw.transferLeader(best);
      }
      this.wake();
      while (monotonicMs() < deadline && [...this.allReplicas()].some((r) => r.isLeader)) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.running = false;
    this.wake();
    await this.loopDone;
    for (const replica of this.allReplicas()) replica.failInflight(new UnavailableError(`node ${this.nodeId} is shutting down`));
    this.adminClients.close();
    await this.transport?.close();
    await this.store?.close();
    this.log.info("node stopped");
  }
}

/**
 * The slot that halves the leader's recent key load (bucket resolution), strictly inside the
 * shard's range; the middle of the range when there was no load. 0 when the range is one slot.
 */
function loadMedianSlot(replica: ShardReplica): number {
  const { slotStart, slotEnd } = replica.descriptor;
  if (slotEnd - slotStart < 2) return 0;
  const load = replica.slotLoad;
  let total = 0;
  for (let i = 0; i < load.length; i++) total += load[i]!;
  let slot = Math.floor((slotStart + slotEnd) / 2);
  if (total > 0) {
    let running = 0;
    for (let i = 0; i < load.length; i++) {
      running += load[i]!;
      if (running >= total / 2) {
        slot = slotStart + Math.floor(((i + 1) * (slotEnd - slotStart)) / load.length);
        break;
      }
    }
  }
  return Math.min(slotEnd - 1, Math.max(slotStart + 1, slot));
}
