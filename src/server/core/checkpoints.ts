/**
 * Shard checkpoints (docs/architecture.md, "Checkpoints"): a shard's durability is its replicated
 * log plus the newest checkpoint of its whole state; applying an entry changes memory only.
 *
 * The life of one checkpoint:
 *   1. due (GroupApplier, after an apply): enough log applied since the last one, none in flight;
 *   2. capture, started inside the loop iteration with the shard's apply held (hold()): the
 *      machine's image at its applied index (typed-array copies in 4 MiB slices, a yield between
 *      them) and the header (index, the log's term there, the replica's conf state and descriptor
 *      as applied);
 *   3. outside the loop: the image encoded in slices (checksums), written to a temporary file,
 *      fsynced, renamed, the directory fsynced (CheckpointStore);
 *   4. commit, in a later loop batch (DriverLoop.queueWrite): the log store's snapshot record now
 *      names this index (the restart point), Raft's storage takes it as its snapshot, and the log
 *      is compacted below it, keeping a tail for briefly lagging followers;
 *   5. once that batch is durable: older checkpoint files are removed.
 * A crash between any two steps leaves the previous checkpoint and the log above it, which is all
 * a restart needs (restart: the newest checkpoint file that reads back whole, at or above the
 * recorded one, plus the log above it; groups.ts restoreShard).
 */
import { entryBytes } from "../../raft/util.js";
import type { Entry } from "../../raft/types.js";
import type { ShardImage } from "../../shard/state-machine.js";
import type { SlicePause } from "../../shard/counter-table-slices.js";
import type { StoreBatch } from "../../storage/node-store.js";
import type { Logger } from "../../util/log.js";
import { encodeCheckpoint, type CheckpointHeader } from "../checkpoint-format.js";
import { EMPTY_SNAPSHOT_DATA } from "../shard-storage.js";
export { newCheckpointState, type CheckpointState } from "../shard-storage.js";
import type { ShardReplica } from "../shard-replica.js";
import type { NodeStats } from "./node-types.js";
import type { CheckpointStore } from "./ports.js";

/** A checkpoint is due once this many bytes of entries were applied since the last one... */
export const CHECKPOINT_LOG_BYTES_MIN = 4 * 1024 * 1024;
/**
 * ...and at least this fraction of the last checkpoint's size (compressed, as written), so the log
 * on disk stays a fraction of the state and a restart replays a bounded log.
 */
export const CHECKPOINT_LOG_FRACTION = 0.25;
/** A shard that applied anything since its last checkpoint gets one after this long, however little (sweep()). */
export const CHECKPOINT_IDLE_MS = 30_000;
/**
 * The log keeps a tail below the checkpoint for briefly lagging followers: at most this many
 * bytes, 1,000 entries, and half of snapshotEveryEntries (one further behind gets the checkpoint,
 * streamed from its file). Held in memory as well as on disk.
 */
export const LOG_TAIL_BYTES = 2 * 1024 * 1024;
export const LOG_TAIL_ENTRIES_MAX = 1000;
/**
 * Checkpoints written at once per node: each holds a copy of its shard's state until written, so
 * this bounds the memory they take (a shard due while another is written waits for a later apply).
 */
export const CHECKPOINTS_IN_FLIGHT_MAX = 1;

export interface CheckpointerOptions {
  store: CheckpointStore;
  stats: NodeStats;
  logger: Logger;
  /** Entries applied since the last checkpoint that also make one due (the config's snapshotEveryEntries). */
  everyEntries: number;
  /** The shard's replica now (undefined when it is gone or was replaced). */
  replicaOf: (shardId: number) => ShardReplica | undefined;
  /** Runs `write` in the next loop batch (which is then fsynced), then `afterDurable` once that batch is written. */
  queueWrite: (write: (batch: StoreBatch) => void, afterDurable: () => void) => void;
  /** Yields to the event loop between slices of work; its clock, where it has one, sizes the copies' slices by their time. */
  pause: SlicePause;
  /** Wakes the driver loop (a shard's apply was held and is released). */
  wake: () => void;
  /** The monotonic clock (for sweep()). */
  nowMs: () => number;
  /** Compress checkpoints (default true; the simulator turns it off: zlib's thread pool runs outside its virtual time). */
  compress?: boolean;
  /**
   * PLANTED BUG for the simulator (never set in production): a commit compacts the log up to the
   * shard's applied index, above the checkpoint it records, so the entries between them exist
   * nowhere on this node. The simulator's checkers must catch it (test/sim/real).
   */
  plantedCompactAboveCheckpoint?: boolean;
}

export class Checkpointer {
  private readonly store: CheckpointStore;
  private readonly log: Logger;
  /** Checkpoint writes in flight, so stop() can wait for them. */
  private readonly running = new Set<Promise<void>>();
  private stopped = false;
  /** Shards whose apply is held for work done in slices (a capture, a table growth): one such job per shard. */
  private readonly held = new Set<number>();

  constructor(private readonly options: CheckpointerOptions) {
    this.store = options.store;
    this.log = options.logger;
  }

  /** Counts what an apply added to the shard's log since its last checkpoint. */
  noteApplied(replica: ShardReplica, entries: Entry[]): void {
    const state = replica.storage.checkpoint;
    for (const entry of entries) state.appliedBytesSince += entryBytes(entry);
    state.appliedEntriesSince += entries.length;
  }

  /** The applied bytes at which the shard is due. */
  private dueBytes(replica: ShardReplica): number {
    return Math.max(CHECKPOINT_LOG_BYTES_MIN, (replica.storage.checkpoint.committed?.bytes ?? 0) * CHECKPOINT_LOG_FRACTION);
  }

  /**
   * Starts a checkpoint of every shard that applied anything since its last one and has not had one
   * for CHECKPOINT_IDLE_MS (so a shard that went quiet below the size threshold still bounds the
   * log a restart replays). Called from a timer, between loop iterations.
   */
  sweep(replicas: Iterable<ShardReplica>): void {
    const now = this.options.nowMs();
    for (const replica of replicas) {
      const state = replica.storage.checkpoint;
      if (this.stopped || this.running.size >= CHECKPOINTS_IN_FLIGHT_MAX) return;
      if (state.inFlight || state.appliedEntriesSince === 0) continue;
      state.lastStartedMs ??= now;
      if (now - state.lastStartedMs >= CHECKPOINT_IDLE_MS) this.start(replica);
    }
  }

  /** Starts a checkpoint of the shard at its applied index when one is due (called inside the loop, after an apply). */
  maybeStart(replica: ShardReplica): void {
    const state = replica.storage.checkpoint;
    if (this.stopped || state.inFlight || this.running.size >= CHECKPOINTS_IN_FLIGHT_MAX) return;
    if (state.appliedBytesSince < this.dueBytes(replica) && state.appliedEntriesSince < this.options.everyEntries) return;
    this.start(replica);
  }

  /**
   * Grows the shard's counter table ahead of need, in slices, with its apply held meanwhile (called
   * inside the loop, after an apply): an insert that had to grow it would copy tens of MB, or
   * rehash millions of index entries, in one event-loop turn.
   */
  maybeGrow(replica: ShardReplica): void {
    if (this.stopped || this.held.has(replica.shardId) || !replica.machine.growthDue()) return;
    const machine = replica.machine;
    const run = this.hold(replica, () => machine.growAhead(this.options.pause))
      .catch((error: unknown) => this.log.warn({ err: error, shard: replica.shardId }, "cannot grow the counter table ahead"))
      .finally(() => this.running.delete(run));
    this.running.add(run);
  }

  /**
   * Runs `job` with the shard's apply held (RawNode.holdApply: entries are still appended, sent and
   * committed, but not applied), so the job sees one state across its slices; then releases it and
   * wakes the loop. Reads go on; a lease read waits for the apply to catch up.
   */
  private async hold<T>(replica: ShardReplica, job: () => Promise<T>): Promise<T> {
    this.held.add(replica.shardId);
    replica.raw.holdApply = true;
    try {
      return await job();
    } finally {
      replica.raw.holdApply = false;
      this.held.delete(replica.shardId);
      this.options.wake();
    }
  }

  /**
   * Captures the shard at its applied index, its apply held while the counter blocks are copied in
   * slices, and writes its checkpoint in the background.
   */
  start(replica: ShardReplica): void {
    const state = replica.storage.checkpoint;
    if (this.held.has(replica.shardId)) return; // a growth runs: a later apply or sweep starts it
    const index = replica.machine.appliedIndex;
    if (index <= (state.committed?.index ?? 0) || index < replica.storage.firstIndex() - 1) return;
    const header: CheckpointHeader = {
      shardId: replica.shardId,
      index,
      term: replica.storage.term(index),
      confState: structuredClone(replica.confState),
      descriptor: { ...replica.descriptor },
    };
    state.inFlight = true;
    state.lastStartedMs = this.options.nowMs();
    state.appliedBytesSince = 0;
    state.appliedEntriesSince = 0;
    const machine = replica.machine;
    const captured = this.hold(replica, () => machine.captureImageInSlices(this.options.pause));
    // A snapshot installed meanwhile replaced the machine: its image is of a state left behind.
    const run = captured
      .then((image) => (replica.machine === machine ? this.write(replica, header, image) : undefined))
      .catch((error: unknown) => {
        this.options.stats.checkpointsFailed++;
        this.log.error({ err: error, shard: header.shardId, index }, "checkpoint capture failed; the log is kept until one succeeds");
      })
      .finally(() => {
        state.inFlight = false;
        this.running.delete(run);
      });
    this.running.add(run);
  }

  private async write(replica: ShardReplica, header: CheckpointHeader, image: ShardImage): Promise<void> {
    const started = performance.now();
    let bytes = 0;
    try {
      const blocks = await encodeCheckpoint(header, image, this.options.pause, this.options.compress ?? true);
      for (const block of blocks) bytes += block.length;
      await this.store.write(header.shardId, header.index, blocks);
    } catch (error) {
      this.options.stats.checkpointsFailed++;
      this.log.error({ err: error, shard: header.shardId, index: header.index }, "checkpoint failed; the log is kept until one succeeds");
      return;
    }
    if (this.stopped) return;
    const writtenMs = performance.now() - started;
    this.options.queueWrite(
      (batch) => this.commit(replica, header, bytes, batch),
      () => void this.removeOlder(header.shardId, header.index),
    );
    this.log.debug({ shard: header.shardId, index: header.index, bytes, ms: Math.round(writtenMs) }, "checkpoint written");
  }

  /** Inside the loop: makes the written checkpoint the shard's restart point and compacts the log below it. */
  private commit(replica: ShardReplica, header: CheckpointHeader, bytes: number, batch: StoreBatch): void {
    const current = this.options.replicaOf(header.shardId);
    const storage = replica.storage;
    // Replaced (an installed snapshot, a re-created replica) or overtaken: the file is garbage.
    if (current !== replica || header.index <= (storage.checkpoint.committed?.index ?? 0)) return;
    if (header.index <= storage.snapshot().metadata.index) return;
    storage.checkpoint.committed = { index: header.index, bytes };
    const firstIndex = storage.firstIndex();
    storage.createSnapshot(header.index, header.confState, EMPTY_SNAPSHOT_DATA);
    batch.putSnapshot(header.shardId, {
      metadata: { index: header.index, term: header.term, confState: header.confState },
      data: EMPTY_SNAPSHOT_DATA,
    });
    const tailMax = Math.min(LOG_TAIL_ENTRIES_MAX, Math.floor(this.options.everyEntries / 2));
    const compactTo =
      this.options.plantedCompactAboveCheckpoint === true
        ? Math.min(replica.machine.appliedIndex, storage.lastIndex())
        : header.index - tailEntries(replica, header.index, tailMax);
    if (compactTo >= firstIndex) {
      storage.compact(compactTo);
      batch.compactLog(header.shardId, compactTo, firstIndex);
    }
    replica.lastSnapshotIndex = header.index;
    this.options.stats.checkpointsTaken++;
    this.options.stats.snapshotsTaken++;
  }

  /** A snapshot was installed at `index` in the current batch: older checkpoint files go once a later batch is durable. */
  afterInstall(shardId: number, index: number, _isCheckpoint: boolean): void {
    this.options.queueWrite(
      () => undefined,
      () => void this.removeOlder(shardId, index),
    );
  }

  /** Removes the shard's checkpoint files below `index` (the committed one). */
  async removeOlder(shardId: number, index: number): Promise<void> {
    try {
      for (const older of await this.store.list(shardId)) if (older < index) await this.store.remove(shardId, older);
    } catch (error) {
      this.log.warn({ err: error, shard: shardId }, "cannot remove old checkpoints");
    }
  }

  /** Stops starting checkpoints and waits for the writes in flight (their commits are dropped). */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([...this.running]);
  }
}

/** How many entries up to `index` the log keeps below a checkpoint: at most `maxEntries`, and at most LOG_TAIL_BYTES of them. */
function tailEntries(replica: ShardReplica, index: number, maxEntries: number): number {
  const from = Math.max(replica.storage.firstIndex(), index - maxEntries + 1);
  if (from > index) return 0;
  const tail = replica.storage.entries(from, index + 1, Number.POSITIVE_INFINITY);
  let kept = 0;
  let bytes = 0;
  for (let i = tail.length - 1; i >= 0; i--) {
    bytes += entryBytes(tail[i]!);
    if (bytes > LOG_TAIL_BYTES) break;
    kept++;
  }
  return kept;
}
