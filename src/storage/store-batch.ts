/**
 * StoreBatch: the writes of one driver iteration, built in memory and handed to NodeStore.write()
 * as one atomic LevelDB batch (node-store.ts says why one batch): Raft's log, hard state, conf
 * state and snapshot records of every group, the metadata group's state record and applied index,
 * shard descriptors, tombstones. A shard's state machine writes nothing here: its state is durable
 * as its log plus its checkpoint files (checkpoint-store.ts), and a checkpoint is recorded here as
 * the shard's snapshot record (putSnapshot with the checkpoint's metadata) with a compactLog below
 * it. Key layout in keys.ts, value encodings in records.ts.
 */
import type { ConfState, Entry, HardState, Snapshot } from "../raft/types.js";
import { assert } from "../util/assert.js";
import { crc32c } from "./crc32c.js";
import {
  appliedKey,
  confStateKey,
  groupRange,
  groupStateKey,
  hardStateKey,
  KeyPrefix,
  type KeyRange,
  logKey,
  snapshotChunkKey,
  snapshotChunkRange,
  snapshotMetaKey,
  tombstoneKey,
} from "./keys.js";
import { encodeApplied, encodeConfState, encodeEntry, encodeHardState, encodeSnapshotMeta, sealValue } from "./records.js";

/** Snapshot data is split into values of at most this many bytes (LevelDB handles big values poorly). */
export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 1 << 20;
/** Bound on the operations one StoreBatch may hold (range clears count once, before expansion). */
export const DEFAULT_BATCH_OPS_MAX = 1 << 20;

export type BatchOp =
  | { type: "put"; key: Uint8Array; value: Uint8Array }
  | { type: "del"; key: Uint8Array }
  /** Delete every key in the range that exists when the batch is written (LevelDB has no range tombstone). */
  | { type: "clear"; range: KeyRange };

export function assertId(value: number, what: string): void {
  assert(Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff, `${what} must be a u32, got ${value}`);
}

function assertIndex(value: number, what: string): void {
  assert(Number.isSafeInteger(value) && value >= 0, `${what} must be a non-negative safe integer, got ${value}`);
}

/**
 * The writes of one driver iteration. Operations take effect in call order within the batch (a
 * later operation on the same key wins), exactly as in a LevelDB write batch. Nothing touches the
 * disk until NodeStore.write().
 */
export class StoreBatch {
  private readonly ops: BatchOp[] = [];
  private bytesTotal = 0;
  private sealed = false;

  constructor(
    private readonly snapshotChunkBytes = DEFAULT_SNAPSHOT_CHUNK_BYTES,
    private readonly opsMax = DEFAULT_BATCH_OPS_MAX,
  ) {
    assert(Number.isInteger(snapshotChunkBytes) && snapshotChunkBytes > 0, "snapshotChunkBytes must be a positive integer");
    assert(Number.isInteger(opsMax) && opsMax > 0, "opsMax must be a positive integer");
  }

  /** Operations queued (a range clear counts as one). */
  get size(): number {
    return this.ops.length;
  }

  /** Key and value bytes of the queued puts and deletes (range clears not included). */
  get bytes(): number {
    return this.bytesTotal;
  }

  /**
   * Persist `entries` of a group. They must be contiguous with non-decreasing terms. When they
   * replace a conflicting suffix, the caller also calls truncateAfter(lastNewIndex, previousLastIndex)
   * so that no stale entry survives behind the new tail (Raft paper 5.3, receiver rule 3).
   */
  appendEntries(groupId: number, entries: Entry[]): void {
    assertId(groupId, "group id");
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      assertIndex(entry.index, "entry index");
      assert(entry.index > 0, "entry index must be positive");
      assertIndex(entry.term, "entry term");
      if (i > 0) {
        const previous = entries[i - 1]!;
        assert(entry.index === previous.index + 1, `entries not contiguous: ${previous.index} then ${entry.index}`);
        assert(entry.term >= previous.term, `entry terms decrease: ${previous.term} then ${entry.term}`);
      }
      const key = logKey(groupId, entry.index);
      this.put(key, encodeEntry(key, entry));
    }
  }

  /** Delete the log keys (index, previousLastIndex] of a group. No-op when previousLastIndex <= index. */
  truncateAfter(groupId: number, index: number, previousLastIndex: number): void {
    assertId(groupId, "group id");
    assertIndex(index, "index");
    assertIndex(previousLastIndex, "previousLastIndex");
    for (let i = index + 1; i <= previousLastIndex; i++) this.del(logKey(groupId, i));
  }

  setHardState(groupId: number, hardState: HardState): void {
    assertId(groupId, "group id");
    assertIndex(hardState.term, "term");
    assertIndex(hardState.vote, "vote");
    assertIndex(hardState.commit, "commit");
    const key = hardStateKey(groupId);
    this.put(key, encodeHardState(key, hardState));
  }

  setConfState(groupId: number, confState: ConfState): void {
    assertId(groupId, "group id");
    const key = confStateKey(groupId);
    this.put(key, encodeConfState(key, confState));
  }

  /**
   * The metadata group's applied index and its map's clock, written in the same batch as its state
   * record (putGroupState). Shards keep theirs in their checkpoints, not here.
   */
  setApplied(groupId: number, index: number, clockMs: number): void {
    assertId(groupId, "group id");
    assertIndex(index, "applied index");
    assertIndex(clockMs, "clockMs");
    const key = appliedKey(groupId);
    this.put(key, encodeApplied(key, { index, clockMs }));
  }

  /**
   * Store a snapshot (metadata, and data in chunks), replacing the group's previous one. The log is
   * not touched: after installing a snapshot received from a leader the caller also truncates and
   * compacts the log; loadGroup only returns entries after the snapshot's index.
   */
  putSnapshot(groupId: number, snapshot: Snapshot): void {
    assertId(groupId, "group id");
    const { metadata, data } = snapshot;
    assertIndex(metadata.index, "snapshot index");
    assertIndex(metadata.term, "snapshot term");
    const chunkCount = Math.ceil(data.length / this.snapshotChunkBytes);
    for (let chunk = 0; chunk < chunkCount; chunk++) {
      const key = snapshotChunkKey(groupId, chunk);
      const start = chunk * this.snapshotChunkBytes;
      this.put(key, sealValue(key, data.subarray(start, start + this.snapshotChunkBytes)));
    }
    // Chunks of an older, larger snapshot must not linger behind the new one.
    this.clear(snapshotChunkRange(groupId, chunkCount));
    const key = snapshotMetaKey(groupId);
    this.put(key, encodeSnapshotMeta(key, { metadata, dataBytes: data.length, chunkCount, dataCrc32c: crc32c(data) }));
  }

  /**
   * Delete the log entries [firstIndex, throughIndex] (they are covered by a snapshot). Requires a
   * stored snapshot with index >= throughIndex (in this batch or an earlier one); loadGroup reports
   * a log that starts after its snapshot as corruption.
   *
   * Implemented as a range clear of every stored entry at or below throughIndex, not only from
   * firstIndex: after a restart the in-memory log starts after the stored snapshot, so entries the
   * previous run kept below it (a compaction that kept a tail) would otherwise never be deleted.
   */
  compactLog(groupId: number, throughIndex: number, firstIndex: number): void {
    assertId(groupId, "group id");
    assertIndex(throughIndex, "throughIndex");
    assertIndex(firstIndex, "firstIndex");
    assert(firstIndex <= throughIndex + 1, `compactLog: firstIndex ${firstIndex} beyond throughIndex ${throughIndex} + 1`);
    this.clear({ gte: logKey(groupId, 0), lt: logKey(groupId, throughIndex + 1) });
  }

  /**
   * The group's own state record, in the same batch as what it covers: the metadata group's whole
   * state machine; a shard's descriptor (epoch, slot range) until its state is in a checkpoint.
   */
  putGroupState(groupId: number, bytes: Uint8Array): void {
    assertId(groupId, "group id");
    const key = groupStateKey(groupId);
    this.put(key, sealValue(key, bytes));
  }

  /**
   * Marks this node's replica of `groupId` as removed at `epoch` (kept after destroyGroup): a
   * replica re-created from a map no newer than that would be an empty replica under a node id the
   * group may still count (a leader that has not yet applied the removal sends it its old commit
   * index; a lagging peer could get its vote again). See TallyNode.reconcile.
   */
  putTombstone(groupId: number, epoch: number): void {
    assertId(groupId, "group id");
    assert(Number.isSafeInteger(epoch) && epoch >= 0, `tombstone epoch must be a non-negative safe integer, got ${epoch}`);
    const key = tombstoneKey(groupId);
    const value = new Uint8Array(8);
    new DataView(value.buffer).setBigUint64(0, BigInt(epoch));
    this.put(key, sealValue(key, value));
  }

  /**
   * Delete everything a group keeps here (log, hard/conf/applied state, snapshot metadata and
   * chunks, group state record), for a replica that was removed from this node. Its tombstone
   * (putTombstone) stays; a shard's checkpoint files are the caller's to remove
   * (FileCheckpointStore.removeGroup) once this batch is durable.
   */
  destroyGroup(groupId: number): void {
    assertId(groupId, "group id");
    for (const prefix of [
      KeyPrefix.log,
      KeyPrefix.hardState,
      KeyPrefix.applied,
      KeyPrefix.confState,
      KeyPrefix.snapshotMeta,
      KeyPrefix.snapshotChunk,
      KeyPrefix.meta,
    ]) {
      this.clear(groupRange(prefix, groupId));
    }
  }

  /** @internal Hands the operations to NodeStore.write, once. */
  takeOps(): readonly BatchOp[] {
    assert(!this.sealed, "a StoreBatch can be written only once");
    this.sealed = true;
    return this.ops;
  }

  private put(key: Uint8Array, value: Uint8Array): void {
    this.push({ type: "put", key, value });
    this.bytesTotal += key.length + value.length;
  }

  private del(key: Uint8Array): void {
    this.push({ type: "del", key });
    this.bytesTotal += key.length;
  }

  private clear(range: KeyRange): void {
    this.push({ type: "clear", range });
  }

  private push(op: BatchOp): void {
    assert(!this.sealed, "StoreBatch modified after write()");
    assert(this.ops.length < this.opsMax, `StoreBatch exceeds ${this.opsMax} operations`);
    this.ops.push(op);
  }
}
