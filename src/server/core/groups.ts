/**
 * The Raft groups this node hosts (the driver loop's GroupRegistry, core/ports.ts): the metadata
 * replica and every shard replica, how each is restored from the store or created for the map,
 * and the replica creations and removals the map (reconcile()) or the loop decide, carried out by
 * changeGroups() at the top of an iteration with their own synced batch.
 */
import { MemoryStorage } from "../../raft/memory-storage.js";
import { RawNode } from "../../raft/raw-node.js";
import type { ConfState, Entry, HardState, RaftConfig, Snapshot } from "../../raft/types.js";
import { CounterStateMachine, type AdmitMutation, type ShardOptions } from "../../shard/state-machine.js";
import { metaMembers, MetaStateMachine, shardMembers, type ClusterMap, type ShardRecord } from "../../meta/map.js";
import { slotOf } from "../../meta/slots.js";
import type { NodeStore, StoreBatch } from "../../storage/node-store.js";
import { wallClockMs } from "../../util/clock.js";
import { CorruptionError, UnavailableError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { createPrng } from "../../util/prng.js";
import { computePlacement, META_GROUP_ID, metaReplicaIds, shardOptionsOf, type ClusterConfig } from "../config/config.js";
import { decodeDescriptor, encodeDescriptor, type ShardDescriptor } from "../descriptor.js";
import { decodeCheckpoint, decodeShardSnapshotData, type DecodedShardState } from "../checkpoint-format.js";
import { metadataOnly, ShardStorage } from "../shard-storage.js";
import {
  encodeMetaCommands,
  encodeShardEntry,
  GroupReplica,
  type MetaReplica,
  type ReplicaMachine,
  type ShardReplica,
} from "../shard-replica.js";
import type { NodeStats } from "./node-types.js";
import type { CheckpointStore, GroupRegistry } from "./ports.js";

export type AnyReplica = GroupReplica<any, any, ReplicaMachine<any>>;

/**
 * Committed entries one Ready hands a group to apply, at most (at least one entry): with every
 * shard of a node replaying at once (a restart), an iteration applies at most this much per shard
 * (or one entry: a 10,000-op AddBatch puts ~40 KiB in each of 8 shards' logs, ~2 ms to apply).
 */
export const COMMITTED_BYTES_PER_READY_MAX = 16 * 1024;

/** Shards restored at once at start-up (each holds its checkpoint's bytes and its table while it loads). */
const RESTORE_CONCURRENCY = 3;

export interface NodeGroupsOptions {
  nodeId: number;
  config: ClusterConfig;
  stats: NodeStats;
  logger: Logger;
  /** The newest partition map the node knows. */
  currentMap: () => ClusterMap;
  /** Wakes the driver loop (there is work for changeGroups()). */
  wake: () => void;
  /** The metadata replica was created (true) or removed (false): the controller follows it. */
  onMetaReplica: (created: boolean) => void;
  /** The shards' checkpoint files. */
  checkpoints: CheckpointStore;
  /** Yields to the event loop between slices of work (loading a checkpoint). */
  pause: () => Promise<void>;
}

/** The bytes of the metadata group's snapshot at its applied index. */
export function snapshotData(replica: MetaReplica): Uint8Array {
  return replica.machine.snapshot();
}

export class NodeGroups implements GroupRegistry<AnyReplica> {
  readonly replicas = new Map<number, ShardReplica>();
  /** This node's replica of the metadata group, when it is one of the metaReplicas. */
  meta: MetaReplica | undefined;
  private store!: NodeStore;
  private readonly nodeId: number;
  private readonly config: ClusterConfig;
  private readonly stats: NodeStats;
  private readonly log: Logger;
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
  /** Shards whose replica was removed in the batch being built: their checkpoint files go once it is written. */
  private readonly checkpointFilesToRemove = new Set<number>();

  constructor(private readonly options: NodeGroupsOptions) {
    this.nodeId = options.nodeId;
    this.config = options.config;
    this.stats = options.stats;
    this.log = options.logger;
  }

  private get shardOptions(): ShardOptions {
    return shardOptionsOf(this.config);
  }

  *all(): Iterable<AnyReplica> {
    if (this.meta !== undefined) yield this.meta;
    yield* this.replicas.values();
  }

  get(groupId: number): AnyReplica | undefined {
    return groupId === META_GROUP_ID ? this.meta : this.replicas.get(groupId);
  }

  /** Restores every group on `store` (and bootstraps the metadata group on a brand-new metadata node). */
  async restore(store: NodeStore): Promise<void> {
    this.store = store;
    const bootstrap = store.batch();
    this.tombstones = await store.loadTombstones();
    const onDisk = new Set(await store.listGroups());
    const metaIds = metaReplicaIds(this.config);
    // Only a brand-new store bootstraps the metadata group: a node that has data but no metadata
    // replica had it moved away (or never had one) and must not start a second group.
    if (onDisk.has(META_GROUP_ID) || (metaIds.includes(this.nodeId) && onDisk.size === 0)) {
      this.meta = await this.restoreMeta(bootstrap, metaIds, !onDisk.has(META_GROUP_ID));
    }
    // Shards live where their data is; the map adds and removes replicas from here on. A few at a
    // time: one shard's checkpoint inflates on the thread pool while another's table is rebuilt.
    const shardIds = [...onDisk].filter((id) => id !== META_GROUP_ID).sort((a, b) => a - b);
    const restored = new Map<number, ShardReplica>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < shardIds.length) {
        const shardId = shardIds[next++]!;
        restored.set(shardId, await this.restoreShard(shardId, undefined, bootstrap));
      }
    };
    await Promise.all(Array.from({ length: Math.min(RESTORE_CONCURRENCY, shardIds.length) }, worker));
    for (const shardId of shardIds) this.replicas.set(shardId, restored.get(shardId)!);
    if (bootstrap.size > 0) await store.write(bootstrap, { sync: true });
  }

  raftConfig(groupId: number, storage: MemoryStorage, applied: number): RaftConfig {
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
      // A shard's is smaller still: a restarted node replays every shard's log above its checkpoint
      // at once, and 8 shards at 1 MiB each held the loop for seconds (bench/scale.ts).
      maxCommittedSizePerReady: Math.min(this.config.limits.maxSizePerMsgBytes, COMMITTED_BYTES_PER_READY_MAX),
      preVote: true,
      // The driver loop writes one batch while it steps acknowledgements and builds the next
      // (driver-loop.ts): a leader counts its own log only once the loop reports it durable.
      asyncStorageWrites: true,
      // Followers learn a commit on the leader's next tick (or with its next entries): a lone write
      // costs one round of peer messages, not two (docs/architecture.md, the driver loop, step 2).
      commitUpdatesOnTick: true,
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
  ) {
    const loaded = await this.store.loadGroup(groupId);
    const fresh =
      loaded.confState === undefined && loaded.snapshot === undefined && loaded.entries.length === 0 && loaded.hardState.term === 0;
    let confState: ConfState = { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
    if (fresh && bootstrapVoters !== undefined) {
      RawNode.bootstrap(storage, bootstrapVoters);
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
    const loaded = await this.store.loadGroup(shardId);
    const fresh = loaded.snapshot === undefined && loaded.entries.length === 0 && loaded.hardState.term === 0;
    if (!fresh) return this.restoreShardFromDisk(shardId, loaded, bootstrap);
    // Files a removed replica of the shard left behind (a crash before they were removed).
    await this.options.checkpoints.removeGroup(shardId);
    const descriptorBytes = await this.store.getGroupState(shardId);
    let descriptor: ShardDescriptor;
    if (descriptorBytes !== undefined) descriptor = decodeDescriptor(descriptorBytes, `shard ${shardId}`);
    else if (record !== undefined) descriptor = { epoch: record.epoch, slotStart: record.slotStart, slotEnd: record.slotEnd };
    else descriptor = this.initialDescriptor(shardId);
    // The descriptor says which range the replica holds until its first snapshot or checkpoint.
    bootstrap.putGroupState(shardId, encodeDescriptor(descriptor));
    const storage = new ShardStorage();
    const machine = new CounterStateMachine(this.shardOptions);
    let confState: ConfState = { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
    if (initial !== undefined) {
      // The first snapshot is the state at index 1 -- an empty shard over its initial range -- and
      // carries no data: a replica that installs it starts empty over its initial range.
      machine.applyEntry(1, new Uint8Array(0));
      RawNode.bootstrap(storage, initial);
      const snapshot = storage.snapshot();
      confState = snapshot.metadata.confState;
      bootstrap.putSnapshot(shardId, snapshot);
      bootstrap.setConfState(shardId, confState);
      bootstrap.setHardState(shardId, storage.initialState().hardState);
    }
    return this.newShardReplica(shardId, descriptor, storage, machine, confState, storage.firstIndex() - 1);
  }

  /**
   * A shard restarts from its newest checkpoint that reads back whole, at or above the one the log
   * store records (a newer file was written but not yet recorded, or installed from a leader just
   * before a crash), or from the snapshot the log store holds with its data (bootstrap, split),
   * then replays its log above that index (Raft hands the committed entries to apply again).
   */
  private async restoreShardFromDisk(
    shardId: number,
    loaded: Awaited<ReturnType<NodeStore["loadGroup"]>>,
    bootstrap: StoreBatch,
  ): Promise<ShardReplica> {
    const recorded = loaded.snapshot;
    const recordedIndex = recorded?.metadata.index ?? 0;
    let state: DecodedShardState | undefined;
    let snapshot: Snapshot | undefined;
    const files = (await this.options.checkpoints.list(shardId)).filter((index) => index >= recordedIndex).reverse();
    for (const index of files) {
      try {
        const data = await this.options.checkpoints.read(shardId, index);
        state = await decodeCheckpoint(data, this.shardOptions, this.options.pause, `checkpoint ${index} of shard ${shardId}`);
        const header = state.header!;
        snapshot = { metadata: { index: header.index, term: header.term, confState: header.confState }, data: new Uint8Array(0) };
        break;
      } catch (error) {
        if (!(error instanceof CorruptionError)) throw error;
        this.log.warn({ shard: shardId, index, err: error }, "checkpoint does not read back whole; trying the previous one");
      }
    }
    if (state === undefined && recorded !== undefined && recorded.data.length > 0) {
      state = decodeShardSnapshotData(recorded.data, this.shardOptions, `stored snapshot of shard ${shardId}`);
      snapshot = recorded;
    }
    if (state === undefined && recordedIndex > 1) {
      throw new CorruptionError(
        `shard ${shardId}: no readable checkpoint at or above index ${recordedIndex} (files: ${files.join(", ") || "none"}), ` +
          `and the log below it is compacted: this node cannot restore the shard. Replace the node: ` +
          `tallyctl node drain, then node remove, then add a node with an empty data directory (its replicas are copied from the others)`,
      );
    }
    if (state === undefined) {
      // No state yet. At index 1 (a bootstrap snapshot, which carries no data): an empty shard over
      // its INITIAL range at epoch 1, as installShardState() makes it, since the log above is
      // replayed and every conf change in it bumps the epoch again (the descriptor the map gave
      // the replica when it was created is already past them). At index 0 (a replica still
      // waiting for its first snapshot): that descriptor, which says what it waits for.
      const descriptorBytes = await this.store.getGroupState(shardId);
      const descriptor =
        recordedIndex === 1 || descriptorBytes === undefined
          ? this.initialDescriptor(shardId)
          : decodeDescriptor(descriptorBytes, `shard ${shardId}`);
      const machine = new CounterStateMachine(this.shardOptions);
      if (recordedIndex > 0) machine.applyEntry(recordedIndex, new Uint8Array(0));
      state = { descriptor, machine, header: undefined };
      snapshot = recorded;
    }
    const storage = new ShardStorage();
    const confState = this.restoreRaftLog(storage, snapshot, loaded.entries, loaded.hardState, loaded.confState);
    if (snapshot !== undefined) this.recordRestartPoint(shardId, snapshot, recordedIndex, loaded.entries, storage, bootstrap);
    if (state.header !== undefined) storage.checkpoint.committed = { index: state.header.index, bytes: 0 };
    return this.newShardReplica(shardId, state.descriptor, storage, state.machine, confState, storage.firstIndex() - 1);
  }

  /**
   * Fills a restarted shard's log cache: the snapshot the state was restored from, the log above it
   * (dropped whole when its entry at the snapshot's index has another term: a suffix no leader
   * committed, left by a crash between writing an installed checkpoint and recording it), and the
   * hard state with commit at least the snapshot's index. Returns the conf state as of the snapshot.
   */
  private restoreRaftLog(
    storage: ShardStorage,
    snapshot: Snapshot | undefined,
    entries: Entry[],
    hardState: HardState,
    storedConf: ConfState | undefined,
  ): ConfState {
    if (snapshot === undefined) {
      // A log without a snapshot: a replica that never had state (its conf state is the stored one).
      if (entries.length > 0) storage.append(entries);
      storage.setHardState(hardState);
      const conf = storedConf ?? { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
      storage.setConfState(conf);
      return conf;
    }
    const index = snapshot.metadata.index;
    storage.applySnapshot(snapshot);
    const at = entries.find((entry) => entry.index === index);
    const matches = at === undefined ? entries.length === 0 || entries[0]!.index > index : at.term === snapshot.metadata.term;
    const above = matches ? entries.filter((entry) => entry.index > index) : [];
    if (above.length > 0) storage.append(above);
    storage.setHardState({ ...hardState, commit: Math.max(hardState.commit, index) });
    storage.setConfState(snapshot.metadata.confState);
    return snapshot.metadata.confState;
  }

  /**
   * When the restart used a newer checkpoint than the recorded one (written but not yet recorded,
   * or installed from a leader whose install batch a crash lost), or dropped a log suffix that
   * conflicts with it, the log store is brought in line before anything is appended: the snapshot
   * record names the checkpoint, the stored log at or below it (all of it, if it conflicted) is
   * removed, and the hard state's commit is at least its index. Without this, entries appended
   * above the checkpoint sat above a gap in the stored log (the simulator, seed 1835: "log of group
   * 2 has a gap: expected index 43, found 83" at the next restart).
   */
  private recordRestartPoint(
    shardId: number,
    snapshot: Snapshot,
    recordedIndex: number,
    entries: Entry[],
    storage: ShardStorage,
    bootstrap: StoreBatch,
  ): void {
    const index = snapshot.metadata.index;
    const storedLast = entries.length > 0 ? entries[entries.length - 1]!.index : recordedIndex;
    const droppedConflict = storage.lastIndex() < storedLast && storedLast > index;
    if (index <= recordedIndex && !droppedConflict) return;
    const through = droppedConflict ? storedLast : Math.min(index, storedLast);
    if (through >= recordedIndex + 1) bootstrap.compactLog(shardId, through, recordedIndex + 1);
    bootstrap.putSnapshot(shardId, metadataOnly(snapshot));
    bootstrap.setConfState(shardId, snapshot.metadata.confState);
    bootstrap.setHardState(shardId, storage.initialState().hardState);
  }

  newShardReplica(
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
    return replica;
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
  initialDescriptor(shardId: number): ShardDescriptor {
    const placement = computePlacement(this.config).find((p) => p.shardId === shardId);
    if (placement === undefined) throw new Error(`shard ${shardId} has no descriptor and is not in the initial placement`);
    return { epoch: placement.epoch, slotStart: placement.slots.start, slotEnd: placement.slots.end };
  }

  /** The epoch at which this node's replica of the shard was last removed (0: never). */
  tombstoneEpoch(shardId: number): number {
    return this.tombstones.get(shardId) ?? 0;
  }

  /** The replica was removed from its group: it is garbage once the current batch is written. */
  scheduleRemoval(shardId: number): void {
    this.groupsToDestroy.add(shardId);
  }

  /** Compares hosted replicas with the map; changes are carried out by the loop. */
  reconcile(): void {
    const map = this.options.currentMap();
    if (!map.initialized) return;
    const metaMember = metaMembers(map).includes(this.nodeId);
    if (metaMember && this.meta === undefined) this.metaChange = "create";
    // Only on a map from elsewhere: our own replica's map cannot tell us we were removed before we applied it.
    if (!metaMember && this.meta !== undefined && map !== this.meta.machine.map && map.meta.voters.length > 0) this.metaChange = "destroy";
    for (const shard of map.shards) {
      const local = this.replicas.get(shard.id);
      const member = shardMembers(shard).includes(this.nodeId);
      if (member && local === undefined && shard.epoch > (this.tombstones.get(shard.id) ?? 0)) this.groupsToCreate.set(shard.id, shard);
      // Removed from the shard by a change the map has seen applied: this replica is garbage.
      if (!member && local !== undefined && shard.epoch > local.descriptor.epoch) this.groupsToDestroy.add(shard.id);
    }
    if (this.groupsToCreate.size > 0 || this.groupsToDestroy.size > 0 || this.metaChange !== undefined) this.options.wake();
  }

  async changeGroups(): Promise<void> {
    if (this.metaChange !== undefined) await this.changeMetaReplica();
    if (this.groupsToCreate.size === 0 && this.groupsToDestroy.size === 0) return;
    const create = [...this.groupsToCreate.values()];
    const destroy = [...this.groupsToDestroy];
    this.groupsToCreate.clear();
    this.groupsToDestroy.clear();
    const batch = this.store.batch();
    for (const shardId of destroy) this.destroyShard(shardId, batch);
    for (const record of create) {
      if (this.replicas.has(record.id)) continue;
      // Queued from a map older than a removal carried out since (in this very batch, say).
      if (record.epoch <= (this.tombstones.get(record.id) ?? 0)) continue;
      this.replicas.set(record.id, await this.restoreShard(record.id, record, batch));
      this.stats.replicasCreated++;
      this.log.info({ shard: record.id, epoch: record.epoch }, "created replica");
    }
    if (batch.size > 0) await this.store.write(batch, { sync: true });
    for (const shardId of this.checkpointFilesToRemove)
      if (!this.replicas.has(shardId)) await this.options.checkpoints.removeGroup(shardId);
    this.checkpointFilesToRemove.clear();
    // A replica removed here may already be re-added in the map this node holds (a later epoch, past
    // its tombstone); without a new map nothing else would look again, so look now.
    if (destroy.length > 0) this.reconcile();
  }

  private async changeMetaReplica(): Promise<void> {
    const change = this.metaChange;
    this.metaChange = undefined;
    const batch = this.store.batch();
    if (change === "create" && this.meta === undefined) {
      this.meta = await this.restoreMeta(batch, [], false);
      this.options.onMetaReplica(true);
      this.log.info("created a metadata replica");
    } else if (change === "destroy" && this.meta !== undefined && this.options.currentMap().version > this.meta.machine.appliedIndex) {
      this.meta.failInflight(new UnavailableError(`node ${this.nodeId} no longer holds a metadata replica`));
      this.meta = undefined;
      this.options.onMetaReplica(false);
      batch.destroyGroup(META_GROUP_ID);
      this.log.info("removed the metadata replica");
    }
    if (batch.size > 0) await this.store.write(batch, { sync: true });
  }

  private destroyShard(shardId: number, batch: StoreBatch): void {
    const replica = this.replicas.get(shardId);
    if (replica === undefined) return;
    // UNAVAILABLE, not WRONG_SHARD: a proposal in flight here may still commit elsewhere.
    replica.failInflight(new UnavailableError(`shard ${shardId} no longer has a replica on node ${this.nodeId}`));
    this.replicas.delete(shardId);
    // Its own epoch, or the map's when the map (newer) also leaves this node out; not a map that
    // already shows a re-add, whose replica must still be created.
    const mapped = this.options.currentMap().shards.find((shard) => shard.id === shardId);
    const removedAt =
      mapped !== undefined && !shardMembers(mapped).includes(this.nodeId)
        ? Math.max(replica.descriptor.epoch, mapped.epoch)
        : replica.descriptor.epoch;
    this.tombstones.set(shardId, removedAt);
    batch.putTombstone(shardId, removedAt);
    batch.destroyGroup(shardId);
    this.checkpointFilesToRemove.add(shardId);
    this.stats.replicasRemoved++;
    this.log.info({ shard: shardId }, "removed replica");
  }
}
