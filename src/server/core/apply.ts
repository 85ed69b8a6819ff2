/**
 * The replicated state machines as the driver loop drives them (ReplicatedStateMachines,
 * core/ports.ts): committed entries applied in memory with their effects and the applied index
 * put into the iteration's batch (conf changes and the epoch, range splits, counter and metadata
 * commands), log compaction after an apply, and the install of a leader's snapshot.
 */
import { decodeConfChange } from "../../raft/raw-node.js";
import { entryBytes } from "../../raft/util.js";
import { EntryType, type ConfState, type Entry, type Snapshot } from "../../raft/types.js";
import { CounterStateMachine, encodeCounterRecord } from "../../shard/state-machine.js";
import { MetaStateMachine, type ClusterMap } from "../../meta/map.js";
import { slotOf } from "../../meta/slots.js";
import type { StoreBatch } from "../../storage/node-store.js";
import { assert } from "../../util/assert.js";
import type { Logger } from "../../util/log.js";
import { META_GROUP_ID, shardOptionsOf, type ClusterConfig } from "../config/config.js";
import {
  decodeSplitEntry,
  encodeDescriptor,
  SPLIT_ENTRY_MARKER,
  unwrapShardSnapshot,
  type ShardDescriptor,
  type SplitEntry,
} from "../descriptor.js";
import { EMPTY_SNAPSHOT_DATA, metadataOnly, ShardStorage } from "../shard-storage.js";
import type { MetaReplica, ShardReplica } from "../shard-replica.js";
import { snapshotData, type AnyReplica, type NodeGroups } from "./groups.js";
import type { NodeStats } from "./node-types.js";
import type { ReplicatedStateMachines } from "./ports.js";

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
}

/** The state changes the machine reports, with its applied index, into the batch. */
function writeShardChanges(shardId: number, machine: CounterStateMachine, batch: StoreBatch): void {
  const changes = machine.takeChanges();
  for (const [key, record] of changes.counters)
    batch.putCounter(shardId, key, record === undefined ? undefined : encodeCounterRecord(record));
  for (const [clientId, record] of changes.sessions) batch.putSession(shardId, clientId, record);
  for (const [key, record] of changes.kinds) batch.putKind(shardId, key, record);
  batch.setApplied(shardId, machine.appliedIndex, machine.clockMs);
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
    let appliedBytes = 0;
    for (const entry of committedEntries) appliedBytes += entryBytes(entry);
    this.stats.appliedBytesPerIterationMax = Math.max(this.stats.appliedBytesPerIterationMax, appliedBytes);
    replica.appliedBytesSinceSnapshot += appliedBytes;
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
      writeShardChanges(shard.shardId, shard.machine, batch);
      // Removed from the group: the replica is garbage once this batch is written.
      if (removedSelf) this.groups.scheduleRemoval(shard.shardId);
    } else {
      const meta = replica as MetaReplica;
      batch.putGroupState(META_GROUP_ID, meta.machine.snapshot());
      batch.setApplied(META_GROUP_ID, meta.machine.appliedIndex, meta.machine.map.clockMs);
      this.options.adoptMap(meta.machine.map as ClusterMap);
    }
    this.maybeSnapshot(replica, batch);
  }

  /** Applies one ConfChange entry; returns whether this node was removed from the shard by it. */
  private applyConfChange(replica: AnyReplica, shard: ShardReplica | undefined, entry: Entry, batch: StoreBatch): boolean {
    const change = decodeConfChange(entry.data);
    replica.confState = replica.raw.applyConfChange(change);
    replica.storage.setConfState(replica.confState);
    batch.setConfState(replica.shardId, replica.confState);
    replica.machine.applyEntry(entry.index, new Uint8Array(0));
    if (shard === undefined) return false;
    // Every change of the replica set is a new epoch (requests routed by the old one are refused).
    shard.descriptor = { ...shard.descriptor, epoch: shard.descriptor.epoch + 1 };
    batch.putGroupState(shard.shardId, encodeDescriptor(shard.descriptor));
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
    return ![...conf.voters, ...conf.learners, ...conf.votersOutgoing, ...conf.learnersNext].includes(this.nodeId);
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
    if (this.groups.replicas.has(childId)) return; // created from the map already (it caught up by snapshot)
    // A node replaying this entry after joining later was not a voter then: the new shard's
    // replicas are the parent's voters at the split, and it is not one of them.
    if (!conf.voters.includes(this.nodeId)) return;
    const child = CounterStateMachine.load(shardOptionsOf(this.options.config), index, parent.machine.clockMs, moved, sessions, movedKinds);
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
    const replica = this.groups.newShardReplica(childId, childDescriptor, storage, child, childConf, index);
    this.groups.replicas.set(childId, replica);
    this.stats.replicasCreated++;
    this.options.wake();
  }

  private maybeSnapshot(replica: AnyReplica, batch: StoreBatch): void {
    const applied = replica.machine.appliedIndex;
    const isMeta = replica.shardId === META_GROUP_ID;
    const snapshotEveryEntries = this.options.config.cluster.snapshotEveryEntries;
    const byEntries = applied - replica.lastSnapshotIndex >= snapshotEveryEntries;
    const byBytes = !isMeta && replica.appliedBytesSinceSnapshot >= LOG_COMPACT_BYTES;
    if ((!byEntries && !byBytes) || applied <= replica.lastSnapshotIndex) return;
    // A shard's snapshot is metadata only: its state is in its records, and ShardStorage builds
    // the data when a follower needs it. The metadata group's state is small: it keeps the data.
    const data = isMeta ? snapshotData(replica) : EMPTY_SNAPSHOT_DATA;
    const snapshot = replica.storage.createSnapshot(applied, replica.confState, data);
    const firstIndex = replica.storage.firstIndex();
    // Keep a tail of the log so briefly lagging followers catch up by log, not by snapshot.
    const keep = tailEntries(replica, applied, Math.min(1000, Math.floor(snapshotEveryEntries / 2)));
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

  installSnapshot(replica: AnyReplica, snapshot: Snapshot, batch: StoreBatch): void {
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
      this.options.adoptMap(meta.machine.map as ClusterMap);
    } else {
      this.installShardState(replica as ShardReplica, snapshot, batch);
    }
    this.stats.snapshotsInstalled++;
    this.log.info({ group: replica.shardId, index: snapshot.metadata.index }, "installed snapshot");
  }

  /** A shard's machine and descriptor from the snapshot, its records replaced in the batch. */
  private installShardState(shard: ShardReplica, snapshot: Snapshot, batch: StoreBatch): void {
    let descriptor: ShardDescriptor;
    let machine: CounterStateMachine;
    if (snapshot.data.length === 0) {
      // A bootstrap snapshot written before it carried its state (index 1): an empty shard over
      // its initial range -- never the range the map shows now, which a split may have shrunk.
      // Anything later without data would wipe the shard: refuse it (the leader sent metadata only).
      assert(snapshot.metadata.index <= 1, `shard ${shard.shardId}: a snapshot at index ${snapshot.metadata.index} arrived without data`);
      descriptor = this.groups.initialDescriptor(shard.shardId);
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
    writeShardChanges(shard.shardId, machine, batch);
  }
}

/** How many entries up to `applied` to keep: at most `maxEntries`, and (shards) at most LOG_TAIL_BYTES of them. */
function tailEntries(replica: AnyReplica, applied: number, maxEntries: number): number {
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
