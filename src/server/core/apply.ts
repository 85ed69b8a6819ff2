/**
 * The replicated state machines as the driver loop drives them (ReplicatedStateMachines,
 * core/ports.ts): committed entries applied (conf changes and the epoch, range splits, counter and
 * metadata commands), and the install of a leader's snapshot.
 *
 * A shard's apply changes memory only: its durability is the log plus its checkpoints
 * (checkpoints.ts), started from here when one is due. The metadata group's state is small and
 * stays a record written with every apply, beside its applied index, with log compaction by
 * entry count.
 */
import { decodeConfChange } from "../../raft/raw-node.js";
import { EntryType, type ConfState, type Entry, type Snapshot } from "../../raft/types.js";
import { CounterStateMachine } from "../../shard/state-machine.js";
import { MetaStateMachine, type ClusterMap } from "../../meta/map.js";
import { slotOf } from "../../meta/slots.js";
import type { StoreBatch } from "../../storage/node-store.js";
import { assert } from "../../util/assert.js";
import type { Logger } from "../../util/log.js";
import { decodeShardSnapshotData, isCheckpoint, type DecodedShardState } from "../checkpoint-format.js";
import { META_GROUP_ID, shardOptionsOf, type ClusterConfig } from "../config/config.js";
import { decodeSplitEntry, SPLIT_ENTRY_MARKER, wrapShardSnapshot, type ShardDescriptor, type SplitEntry } from "../descriptor.js";
import { metadataOnly, ShardStorage } from "../shard-storage.js";
import type { Checkpointer } from "./checkpoints.js";
import type { MetaReplica, ShardReplica } from "../shard-replica.js";
import { snapshotData, type AnyReplica, type NodeGroups } from "./groups.js";
import type { NodeStats } from "./node-types.js";
import type { ReplicatedStateMachines } from "./ports.js";

export interface GroupApplierOptions {
  nodeId: number;
  config: ClusterConfig;
  stats: NodeStats;
  logger: Logger;
  groups: NodeGroups;
  /** The metadata group applied (or installed) a new map. */
  adoptMap: (map: ClusterMap) => void;
  /** Wakes the driver loop (a split created a replica that has work). */
  wake: () => void;
  /** Shard checkpoints (started from apply when due). */
  checkpointer: Checkpointer;
  /** A received snapshot's state, decoded ahead of its install (TallyNode's snapshot receiver), if it matches. */
  takePrepared: (shardId: number, index: number) => DecodedShardState | undefined;
}

export class GroupApplier implements ReplicatedStateMachines<AnyReplica, StoreBatch> {
  private readonly nodeId: number;
  private readonly stats: NodeStats;
  private readonly log: Logger;
  private readonly groups: NodeGroups;

  constructor(private readonly options: GroupApplierOptions) {
    this.nodeId = options.nodeId;
    this.stats = options.stats;
    this.log = options.logger;
    this.groups = options.groups;
  }

  apply(replica: AnyReplica, committedEntries: Entry[], batch: StoreBatch): void {
    if (committedEntries.length === 0) return;
    const shard = replica.shardId === META_GROUP_ID ? undefined : (replica as ShardReplica);
    let removedSelf = false;
    for (const entry of committedEntries) {
      if (entry.type === EntryType.ConfChange) {
        removedSelf = this.applyConfChange(replica, shard, entry, batch);
      } else if (shard !== undefined && entry.data.length > 0 && entry.data[0] === SPLIT_ENTRY_MARKER) {
        this.applySplit(shard, entry.index, decodeSplitEntry(entry.data)!, batch);
      } else {
        replica.applyNormal(entry);
      }
      this.stats.applied++;
    }
    if (shard !== undefined) {
      // Removed from the group: the replica is garbage once this batch is written.
      if (removedSelf) this.groups.scheduleRemoval(shard.shardId);
      this.options.checkpointer.noteApplied(shard, committedEntries);
      if (!removedSelf) this.options.checkpointer.maybeStart(shard);
      if (!removedSelf) this.options.checkpointer.maybeGrow(shard);
    } else {
      const meta = replica as MetaReplica;
      batch.putGroupState(META_GROUP_ID, meta.machine.snapshot());
      batch.setApplied(META_GROUP_ID, meta.machine.appliedIndex, meta.machine.map.clockMs);
      this.options.adoptMap(meta.machine.map as ClusterMap);
      this.maybeSnapshotMeta(meta, batch);
    }
  }

  /** Applies one ConfChange entry; returns whether this node was removed from the shard by it. */
  private applyConfChange(replica: AnyReplica, shard: ShardReplica | undefined, entry: Entry, batch: StoreBatch): boolean {
    const change = decodeConfChange(entry.data);
    const wasMember = inConfiguration(replica.confState, this.nodeId);
    replica.confState = replica.raw.applyConfChange(change);
    replica.storage.setConfState(replica.confState);
    replica.machine.applyEntry(entry.index, new Uint8Array(0));
    // A shard's conf state and descriptor are part of its checkpoints; the metadata group's are records.
    if (shard === undefined) {
      batch.setConfState(replica.shardId, replica.confState);
      return false;
    }
    // Every change of the replica set is a new epoch (requests routed by the old one are refused).
    shard.descriptor = { ...shard.descriptor, epoch: shard.descriptor.epoch + 1 };
    const conf = shard.confState;
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
    // A replica that caught up from a snapshot older than the change that (re-)added it replays
    // changes from before it joined: ones that do not name it yet, and, on a node re-added after a
    // removal, the removal of its earlier replica (at or below the tombstone's epoch). Neither
    // removes it: it destroyed itself and came back empty while its leader counted its match
    // ("commit 183 beyond last index 0", test/integration/placement.test.ts).
    const historical = shard.descriptor.epoch <= this.groups.tombstoneEpoch(shard.shardId);
    return wasMember && !historical && !inConfiguration(conf, this.nodeId);
  }

  /**
   * Applies a range split at `index` (on every replica, in log order, so every replica splits the
   * same state): the parent keeps [slotStart, splitSlot), the new shard gets [splitSlot, slotEnd)
   * with the counters there and a copy of every session (a client retrying a write that may have
   * applied before the split finds its outcome on either side), both at epoch + 1. The new shard's
   * Raft group starts from a snapshot at `index` with the parent's voters, written in the same
   * batch as the parent's apply, so a crash leaves both or neither. Its counters keep their
   * versions (all <= index) and its own log continues above index, so versions never repeat.
   * The new shard's state goes into the log store with its snapshot (it has no checkpoint yet),
   * so the split is durable with the batch; its first checkpoint follows soon after.
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
    const moved = parent.machine.removeWhere((key) => slotOf(key) >= split.splitSlot);
    const movedKinds = parent.machine.removeKindsWhere((key) => slotOf(key) >= split.splitSlot);
    const sessions = [...parent.machine.exportRecords().sessions];
    const childId = split.newShardId;
    const childDescriptor: ShardDescriptor = { epoch, slotStart: split.splitSlot, slotEnd: before.slotEnd };
    this.log.info({ shard: parent.shardId, newShard: childId, splitSlot: split.splitSlot, moved: moved.length, epoch }, "shard split");
    if (this.groups.replicas.has(childId)) return; // created from the map already (it caught up by snapshot)
    // A node replaying this entry after joining later was not a voter then: the new shard's
    // replicas are the parent's voters at the split, and it is not one of them.
    if (!conf.voters.includes(this.nodeId)) return;
    const child = CounterStateMachine.load(shardOptionsOf(this.options.config), index, parent.machine.clockMs, moved, sessions, movedKinds);
    const storage = new ShardStorage();
    const childConf: ConfState = { voters: [...conf.voters], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
    const snapshot = { metadata: { index, term: 1, confState: childConf }, data: wrapShardSnapshot(childDescriptor, child.snapshot()) };
    storage.applySnapshot(snapshot);
    const hardState = { term: 1, vote: 0, commit: index };
    storage.setHardState(hardState);
    batch.putSnapshot(childId, snapshot);
    batch.setConfState(childId, childConf);
    batch.setHardState(childId, hardState);
    const replica = this.groups.newShardReplica(childId, childDescriptor, storage, child, childConf, index);
    this.groups.replicas.set(childId, replica);
    this.stats.replicasCreated++;
    this.options.wake();
  }

  /** The metadata group compacts its log every snapshotEveryEntries entries (its state is small: the snapshot keeps it). */
  private maybeSnapshotMeta(meta: MetaReplica, batch: StoreBatch): void {
    const applied = meta.machine.appliedIndex;
    const snapshotEveryEntries = this.options.config.cluster.snapshotEveryEntries;
    if (applied - meta.lastSnapshotIndex < snapshotEveryEntries || applied <= meta.lastSnapshotIndex) return;
    const snapshot = meta.storage.createSnapshot(applied, meta.confState, snapshotData(meta));
    const firstIndex = meta.storage.firstIndex();
    // Keep a tail of the log so briefly lagging followers catch up by log, not by snapshot.
    const compactTo = applied - Math.min(1000, Math.floor(snapshotEveryEntries / 2));
    batch.putSnapshot(META_GROUP_ID, snapshot);
    if (compactTo >= firstIndex) {
      meta.storage.compact(compactTo);
      batch.compactLog(META_GROUP_ID, compactTo, firstIndex);
    }
    meta.lastSnapshotIndex = applied;
    this.stats.snapshotsTaken++;
  }

  installSnapshot(replica: AnyReplica, snapshot: Snapshot, batch: StoreBatch): void {
    const previousFirst = replica.storage.firstIndex();
    const previousLast = replica.storage.lastIndex();
    replica.storage.applySnapshot(snapshot);
    replica.confState = snapshot.metadata.confState;
    replica.lastSnapshotIndex = snapshot.metadata.index;
    if (previousLast >= previousFirst) batch.compactLog(replica.shardId, previousLast, previousFirst);
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
      batch.putSnapshot(META_GROUP_ID, snapshot);
      batch.putGroupState(META_GROUP_ID, snapshot.data);
      batch.setApplied(META_GROUP_ID, meta.machine.appliedIndex, meta.machine.map.clockMs);
      this.options.adoptMap(meta.machine.map as ClusterMap);
    } else {
      this.installShardState(replica as ShardReplica, snapshot, batch);
    }
    this.stats.snapshotsInstalled++;
    this.log.info({ group: replica.shardId, index: snapshot.metadata.index }, "installed snapshot");
  }

  /**
   * A shard's machine and descriptor from the snapshot. A checkpoint was made durable as a file by
   * the receiver before Raft saw it, so the log store records its metadata only (the restart
   * point); other data (a bootstrap or split snapshot from a leader with no checkpoint yet) is
   * stored with its data. Checkpoint files below the installed index go once the batch is durable.
   */
  private installShardState(shard: ShardReplica, snapshot: Snapshot, batch: StoreBatch): void {
    const index = snapshot.metadata.index;
    let decoded: DecodedShardState;
    if (snapshot.data.length === 0) {
      // A bootstrap snapshot written before it carried its state (index 1): an empty shard over
      // its initial range -- never the range the map shows now, which a split may have shrunk.
      // Anything later without data would wipe the shard: refuse it (the leader sent metadata only).
      assert(index <= 1, `shard ${shard.shardId}: a snapshot at index ${index} arrived without data`);
      const machine = new CounterStateMachine(shard.options);
      machine.applyEntry(index, new Uint8Array(0));
      decoded = { descriptor: this.groups.initialDescriptor(shard.shardId), machine, header: undefined };
    } else {
      decoded =
        this.options.takePrepared(shard.shardId, index) ??
        decodeShardSnapshotData(snapshot.data, shard.options, `snapshot of shard ${shard.shardId} at ${index}`);
    }
    assert(decoded.machine.appliedIndex === index, "snapshot state matches its index");
    shard.machine = decoded.machine;
    shard.descriptor = decoded.descriptor;
    const checkpoint = isCheckpoint(snapshot.data);
    batch.putSnapshot(shard.shardId, checkpoint ? metadataOnly(snapshot) : snapshot);
    shard.storage.checkpoint = {
      committed: checkpoint ? { index, bytes: snapshot.data.length } : undefined,
      inFlight: shard.storage.checkpoint.inFlight,
      appliedBytesSince: 0,
      appliedEntriesSince: 0,
    };
    this.options.checkpointer.afterInstall(shard.shardId, index, checkpoint);
  }
}

/** Whether `nodeId` is in the configuration in any role (voter, learner, outgoing, incoming learner). */
function inConfiguration(conf: ConfState, nodeId: number): boolean {
  return [...conf.voters, ...conf.learners, ...conf.votersOutgoing, ...conf.learnersNext].includes(nodeId);
}
