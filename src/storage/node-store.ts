/**
 * The node's log store: one LevelDB holding, for every Raft group on this node, its log, hard
 * state, conf state and snapshot record (metadata, and chunks where the snapshot carries data);
 * the metadata group's state record and applied index; shard descriptors for replicas waiting for
 * their first snapshot; tombstones of removed replicas; and the store's identity (format version).
 * Key layout in keys.ts, value encodings in records.ts.
 *
 * A shard's state (counters, sessions, kinds) is not in this store: it is durable as the shard's
 * log plus its checkpoint files (checkpoint-store.ts, <dataDir>/checkpoints), and the shard's
 * snapshot record here names the checkpoint a restart starts from (docs/adr/0009, and
 * docs/architecture.md "Checkpoints, snapshots and log compaction").
 *
 * The driver loop builds one StoreBatch (store-batch.ts) per iteration (the Readys of all groups,
 * the metadata group's applied state, recorded checkpoints and the log compaction below them) and
 * writes it with write(batch, { sync }) as ONE LevelDB write batch: LevelDB applies a batch
 * atomically, so after a crash either all of an iteration's state is there or none of it -- the
 * metadata group's applied index never runs ahead of the state record it describes, and a log is
 * never compacted without the snapshot record that covers it. With sync the batch is fsynced before
 * write() resolves, which is what Raft needs before the messages of the same Ready may go out (Raft
 * paper 5.2/5.3 and thesis 3.8: a vote or an acknowledged entry must survive a crash).
 *
 * Writes are serialized in call order. The batches written while one write is in flight are joined
 * into the next LevelDB batch (group commit across loop iterations: the loop does not wait for its
 * write before building the next batch), which keeps each batch whole and their order. A failed
 * write makes the store fail-stop: every later write
 * rejects, because after a failed fsync the on-disk state is unknown (the "fsyncgate" lesson;
 * etcd panics on WAL write errors for the same reason).
 *
 * LevelDB is reached through the KvEngine seam (kv-engine.ts): open() binds LevelDB, openWith()
 * any engine that keeps the same promises (the simulator's in-memory disk, test/sim/real).
 */
import { mkdir } from "node:fs/promises";
import type { ConfState, Entry, HardState, Snapshot } from "../raft/types.js";
import { emptyHardState } from "../raft/types.js";
import { assert } from "../util/assert.js";
import { CorruptionError, UnavailableError } from "../util/errors.js";
import { componentLogger, type Logger } from "../util/log.js";
import { crc32c } from "./crc32c.js";
import { type KvEngine, type KvWrite, LevelKvEngine } from "./kv-engine.js";
import {
  appliedKey,
  groupStateKey,
  compareKeys,
  confStateKey,
  decodeLogKey,
  groupIdOfKey,
  groupRange,
  hardStateKey,
  identityKey,
  keyInRange,
  KeyPrefix,
  type KeyRange,
  prefixKeyRange,
  logRange,
  snapshotChunkKey,
  snapshotChunkRange,
  snapshotMetaKey,
} from "./keys.js";
import {
  type AppliedState,
  decodeApplied,
  decodeConfState,
  decodeEntry,
  decodeHardState,
  decodeIdentity,
  decodeSnapshotMeta,
  encodeIdentity,
  openValue,
  STORE_FORMAT_VERSION,
} from "./records.js";
import { assertId, type BatchOp, DEFAULT_BATCH_OPS_MAX, DEFAULT_SNAPSHOT_CHUNK_BYTES, StoreBatch } from "./store-batch.js";

export { DEFAULT_BATCH_OPS_MAX, DEFAULT_SNAPSHOT_CHUNK_BYTES, StoreBatch };

/**
 * Records per read when scanning a group's log (one promise per nextv, not per entry). Each is
 * checksummed and decoded before the next read, in one go: an entry of a 10,000-op AddBatch is
 * ~40 KiB per shard, so 64 of them are ~2.5 MiB (a few ms), where 1,000 held a restart's event
 * loop for 50-90 ms per batch.
 */
const SCAN_BATCH = 64;

export interface GroupState {
  hardState: HardState;
  confState: ConfState | undefined;
  snapshot: Snapshot | undefined;
  /** The log after the snapshot: contiguous, starting at snapshot index + 1 (or 1 without a snapshot). */
  entries: Entry[];
  applied: AppliedState | undefined;
}

export interface NodeStoreOptions {
  logger?: Logger;
  /** Chunk size for stored snapshot data. */
  snapshotChunkBytes?: number;
  /** Bound on operations per StoreBatch. */
  batchOpsMax?: number;
  /** Called after every successful batch write with its duration (metrics: fsync time). */
  onWrite?: (seconds: number, sync: boolean, bytes: number) => void;
}

/** A write waiting its turn; the batches written meanwhile join its operations. */
interface QueuedWrite {
  ops: BatchOp[];
  sync: boolean;
  done: Promise<void>;
}

export class NodeStore {
  readonly stats = { batches: 0, syncs: 0, bytesWritten: 0 };

  private writeTail: Promise<void> = Promise.resolve();
  /** The write waiting for the one in flight: later writes join it (group commit). */
  private queued: QueuedWrite | undefined;
  private failure: unknown = undefined;
  private closed = false;

  private constructor(
    private readonly db: KvEngine,
    readonly dir: string,
    private readonly logger: Logger,
    private readonly snapshotChunkBytes: number,
    private readonly batchOpsMax: number,
    private readonly onWrite: NodeStoreOptions["onWrite"],
  ) {}

  /** Opens (creating if needed) the store in `dir`. Rejects with UnavailableError saying why when it cannot. */
  static async open(dir: string, options: NodeStoreOptions = {}): Promise<NodeStore> {
    checkOptions(options);
    try {
      await mkdir(dir, { recursive: true });
    } catch (error) {
      throw new UnavailableError(`cannot create store directory ${dir}: ${(error as Error).message}`, { cause: error });
    }
    let engine: LevelKvEngine;
    try {
      engine = await LevelKvEngine.open(dir);
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why =
        cause?.code === "LEVEL_LOCKED"
          ? "it is locked by another process (is another tallyd using this data directory?)"
          : (cause?.message ?? (error as Error).message);
      throw new UnavailableError(`cannot open store at ${dir}: ${why}`, { cause: error });
    }
    return NodeStore.openWith(engine, dir, options);
  }

  /**
   * The store over an engine that is already open (the simulator's in-memory engine; open() passes
   * LevelDB). `dir` only names the store in messages and logs. The engine is closed with the store,
   * or when the identity check fails.
   */
  static async openWith(engine: KvEngine, dir: string, options: NodeStoreOptions = {}): Promise<NodeStore> {
    checkOptions(options);
    const logger = options.logger ?? componentLogger("storage");
    const snapshotChunkBytes = options.snapshotChunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES;
    const batchOpsMax = options.batchOpsMax ?? DEFAULT_BATCH_OPS_MAX;
    const store = new NodeStore(engine, dir, logger, snapshotChunkBytes, batchOpsMax, options.onWrite);
    try {
      await store.checkIdentity();
    } catch (error) {
      await engine.close();
      throw error;
    }
    logger.info({ dir }, "store opened");
    return store;
  }

  private async checkIdentity(): Promise<void> {
    const key = identityKey();
    const value = await this.db.get(key);
    if (value === undefined) {
      await this.db.write([{ type: "put", key, value: encodeIdentity(key, STORE_FORMAT_VERSION) }], { sync: true });
      return;
    }
    const version = decodeIdentity(key, value);
    if (version !== STORE_FORMAT_VERSION) {
      throw new UnavailableError(`cannot open store at ${this.dir}: ${formatMismatch(version)}`);
    }
  }

  batch(): StoreBatch {
    this.assertOpen();
    return new StoreBatch(this.snapshotChunkBytes, this.batchOpsMax);
  }

  /**
   * Writes `batch` as one atomic LevelDB batch; with sync the data is on stable storage when this
   * resolves. Writes happen in call order. Range clears are expanded here, against the state left
   * by all earlier writes, and also delete keys put earlier in the same batch.
   */
  write(batch: StoreBatch, options: { sync: boolean }): Promise<void> {
    this.assertOpen();
    const ops = batch.takeOps();
    // Group commit: a write queued behind the one in flight takes the batches written after it
    // too, as one LevelDB batch with one fsync (synced if any of them asked). Joining batches in
    // call order is the same as writing them one after another: a range clear sees the keys put
    // before it in the joined batch (applyOps()).
    const queued = this.queued;
    if (queued !== undefined && queued.ops.length + ops.length <= this.batchOpsMax) {
      for (const op of ops) queued.ops.push(op);
      queued.sync ||= options.sync;
      return queued.done;
    }
    const entry: QueuedWrite = { ops: [...ops], sync: options.sync, done: Promise.resolve() };
    this.queued = entry;
    entry.done = this.writeTail.then(() => {
      if (this.queued === entry) this.queued = undefined;
      return this.applyOps(entry.ops, entry.sync);
    });
    // The chain itself never rejects; a failure is recorded in this.failure and fails later writes.
    this.writeTail = entry.done.catch(() => undefined);
    return entry.done;
  }

  private async applyOps(ops: readonly BatchOp[], sync: boolean): Promise<void> {
    if (this.failure !== undefined) {
      throw new UnavailableError("store is fail-stopped after an earlier write error", { cause: this.failure });
    }
    const writes: KvWrite[] = [];
    const putsSoFar: Uint8Array[] = [];
    let bytes = 0;
    for (const op of ops) {
      if (op.type === "put") {
        writes.push(op);
        putsSoFar.push(op.key);
        bytes += op.key.length + op.value.length;
      } else if (op.type === "del") {
        writes.push(op);
        bytes += op.key.length;
      } else {
        for (const key of putsSoFar) if (keyInRange(key, op.range)) writes.push({ type: "del", key });
        for await (const key of this.db.keys({ gte: op.range.gte, lt: op.range.lt })) {
          writes.push({ type: "del", key });
          bytes += key.length;
        }
      }
    }
    const startedMs = performance.now();
    try {
      await this.db.write(writes, { sync });
    } catch (error) {
      this.failure = error;
      this.logger.error({ err: error }, "store write failed; the store is now fail-stopped");
      throw error;
    }
    this.stats.batches += 1;
    if (sync) this.stats.syncs += 1;
    this.stats.bytesWritten += bytes;
    this.onWrite?.((performance.now() - startedMs) / 1000, sync, bytes);
  }

  /**
   * Everything stored for one group, checked: every value's checksum, the log's contiguity from
   * the snapshot on, non-decreasing terms, and commit within the stored log.
   */
  async loadGroup(groupId: number): Promise<GroupState> {
    this.assertOpen();
    assertId(groupId, "group id");
    const hardStateValue = await this.db.get(hardStateKey(groupId));
    const hardState = hardStateValue === undefined ? emptyHardState() : decodeHardState(hardStateKey(groupId), hardStateValue);
    const confStateValue = await this.db.get(confStateKey(groupId));
    const confState = confStateValue === undefined ? undefined : decodeConfState(confStateKey(groupId), confStateValue);
    const appliedValue = await this.db.get(appliedKey(groupId));
    const applied = appliedValue === undefined ? undefined : decodeApplied(appliedKey(groupId), appliedValue);
    const snapshot = await this.loadSnapshot(groupId);

    const snapshotIndex = snapshot?.metadata.index ?? 0;
    let previousTerm = snapshot?.metadata.term ?? 0;
    let expectedIndex = snapshotIndex + 1;
    const entries: Entry[] = [];
    const range = logRange(groupId, expectedIndex);
    const decode = (key: Uint8Array, value: Uint8Array) => decodeEntry(key, value, decodeLogKey(key).index);
    for await (const batch of this.scanBatches(range, decode)) {
      for (const entry of batch) {
        if (entry.index !== expectedIndex) {
          throw new CorruptionError(
            `log of group ${groupId} has a gap: expected index ${expectedIndex}, found ${entry.index}` +
              (entries.length === 0 ? ` (compacted past the stored snapshot at ${snapshotIndex}?)` : ""),
          );
        }
        if (entry.term < previousTerm) {
          throw new CorruptionError(
            `log of group ${groupId}: entry ${entry.index} has term ${entry.term} below the preceding term ${previousTerm}`,
          );
        }
        entries.push(entry);
        previousTerm = entry.term;
        expectedIndex += 1;
      }
    }
    const lastIndex = expectedIndex - 1;
    if (hardState.commit > lastIndex) {
      throw new CorruptionError(`group ${groupId}: hard state commit ${hardState.commit} beyond the stored log (last index ${lastIndex})`);
    }
    return { hardState, confState, snapshot, entries, applied };
  }

  private async loadSnapshot(groupId: number): Promise<Snapshot | undefined> {
    const metaKey = snapshotMetaKey(groupId);
    const metaValue = await this.db.get(metaKey);
    if (metaValue === undefined) return undefined;
    const meta = decodeSnapshotMeta(metaKey, metaValue);
    const data = new Uint8Array(meta.dataBytes);
    let offset = 0;
    let chunk = 0;
    const range = snapshotChunkRange(groupId);
    for await (const [key, value] of this.db.iterator({ gte: range.gte, lt: range.lt })) {
      if (compareKeys(key, snapshotChunkKey(groupId, chunk)) !== 0) {
        throw new CorruptionError(`snapshot of group ${groupId}: chunk ${chunk} missing or out of order`);
      }
      const bytes = openValue(key, value, `snapshot chunk (group ${groupId}, chunk ${chunk})`);
      if (offset + bytes.length > data.length) {
        throw new CorruptionError(`snapshot of group ${groupId}: chunks exceed the recorded ${meta.dataBytes} bytes`);
      }
      data.set(bytes, offset);
      offset += bytes.length;
      chunk += 1;
    }
    if (chunk !== meta.chunkCount || offset !== meta.dataBytes) {
      throw new CorruptionError(
        `snapshot of group ${groupId}: found ${chunk} chunks / ${offset} bytes, metadata says ${meta.chunkCount} / ${meta.dataBytes}`,
      );
    }
    const dataCrc = crc32c(data);
    if (dataCrc !== meta.dataCrc32c) {
      throw new CorruptionError(`snapshot of group ${groupId}: data checksum mismatch after reassembly`);
    }
    return { metadata: meta.metadata, data };
  }

  /** Ids of every group with any state on this node, ascending. */
  async listGroups(): Promise<number[]> {
    this.assertOpen();
    const groups = new Set<number>();
    for (const prefix of [KeyPrefix.log, KeyPrefix.hardState, KeyPrefix.applied, KeyPrefix.confState, KeyPrefix.snapshotMeta]) {
      // Jump from group to group instead of walking every log entry.
      let range = prefixKeyRange(prefix);
      for (;;) {
        const keys = this.db.keys({ gte: range.gte, lt: range.lt, limit: 1 });
        let key: Uint8Array | undefined;
        try {
          key = (await keys.nextv(1))[0];
        } finally {
          await keys.close();
        }
        if (key === undefined) break;
        const groupId = groupIdOfKey(key);
        groups.add(groupId);
        if (groupId === 0xffff_ffff) break;
        range = { gte: groupRange(prefix, groupId).lt, lt: range.lt };
      }
    }
    return [...groups].sort((a, b) => a - b);
  }

  private async *scanBatches<T>(range: KeyRange, decode: (key: Uint8Array, value: Uint8Array) => T): AsyncIterable<T[]> {
    this.assertOpen();
    const iterator = this.db.iterator({ gte: range.gte, lt: range.lt });
    try {
      for (;;) {
        const entries = await iterator.nextv(SCAN_BATCH);
        if (entries.length === 0) return;
        const out: T[] = new Array(entries.length);
        for (let i = 0; i < entries.length; i++) out[i] = decode(entries[i]![0], entries[i]![1]);
        yield out;
      }
    } finally {
      await iterator.close();
    }
  }

  /** Every tombstone (putTombstone): group id -> the epoch its replica was removed at. */
  async loadTombstones(): Promise<Map<number, number>> {
    this.assertOpen();
    const tombstones = new Map<number, number>();
    const range = prefixKeyRange(KeyPrefix.tombstone);
    for await (const [key, value] of this.db.iterator({ gte: range.gte, lt: range.lt })) {
      const bytes = openValue(key, value, "tombstone");
      if (bytes.length !== 8) throw new CorruptionError(`tombstone of group ${groupIdOfKey(key)} has ${bytes.length} bytes, not 8`);
      tombstones.set(groupIdOfKey(key), Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0)));
    }
    return tombstones;
  }

  /** The group's state record (putGroupState), checked, or undefined. */
  async getGroupState(groupId: number): Promise<Uint8Array | undefined> {
    this.assertOpen();
    assertId(groupId, "group id");
    const key = groupStateKey(groupId);
    const value = await this.db.get(key);
    return value === undefined ? undefined : openValue(key, value, `group state (group ${groupId})`);
  }

  /** Waits for queued writes, then closes the database. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writeTail;
    await this.db.close();
    this.logger.info({ dir: this.dir }, "store closed");
  }

  private assertOpen(): void {
    assert(!this.closed, "NodeStore used after close()");
  }
}

/** Why a directory of another on-disk format is refused, and what to do about it. */
function formatMismatch(version: number): string {
  const found = `on-disk format ${version}, this build reads format ${STORE_FORMAT_VERSION}`;
  if (version > STORE_FORMAT_VERSION) return `${found}: the directory was written by a newer build; run that build or a newer one`;
  const what =
    version === 1
      ? "Format 1 kept a record per counter; this build keeps each shard's state as checkpoint files plus its log, and cannot read it. "
      : "This build cannot read it. ";
  return (
    `${found}. ${what}Either start from an empty data directory (in a running cluster, replace the node: ` +
    `tallyctl node drain, tallyctl node remove, then add a node with an empty data directory; its replicas are copied from the others), ` +
    `or restore a backup taken with tallyctl backup into new data directories (tallyctl restore)`
  );
}

function checkOptions(options: NodeStoreOptions): void {
  const snapshotChunkBytes = options.snapshotChunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES;
  const batchOpsMax = options.batchOpsMax ?? DEFAULT_BATCH_OPS_MAX;
  assert(Number.isInteger(snapshotChunkBytes) && snapshotChunkBytes > 0, "snapshotChunkBytes must be a positive integer");
  assert(Number.isInteger(batchOpsMax) && batchOpsMax > 0, "batchOpsMax must be a positive integer");
}
