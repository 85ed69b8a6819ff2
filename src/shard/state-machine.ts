/**
 * The counter state machine of one shard: exact int64 counters with versions, and client sessions
 * for exactly-once mutations (Raft thesis section 6.3).
 *
 * Pure and deterministic. Every replica applies the same committed entries in the same order and
 * must reach the same state and return the same results: there is no clock but the leader's
 * timestamp inside each entry, no randomness, and no iteration over anything whose order could
 * differ between replicas.
 *
 * Invariants:
 * - appliedIndex only grows; every counter's version is in [1, appliedIndex].
 * - clockMs = max(timestampMs over applied entries); it never goes back, even when a new leader's
 *   wall clock is behind the old one's.
 * - a mutate either applies all its ops or none (ops apply in order with an undo log, which is
 *   replayed backwards if any op fails).
 * - a (clientId, seq) is applied at most once: its outcome is retained until the client
 *   acknowledges it (firstUnackedSeq > seq), and from then on the seq is refused.
 * - an (owner, requestId) is applied at most once while the request-id table remembers it (at
 *   least requestIdRetentionMs of the clock; request-ids.ts), and a storage id names at most one
 *   session or request id.
 *
 * Durability is the replicated log plus checkpoints: applying a committed entry changes memory
 * only, and tracks no changes (no per-counter, per-session or per-kind record). A checkpoint is a
 * shard image: captureImage() copies the whole state between entries (memcpy of the counter
 * table's blocks), encodeShardImage() turns it into checksummed blocks in short slices, and
 * fromImage()/fromImageAsync() load it back.
 *
 * The machine coordinates; the work is beside it:
 *   - shard-state.ts       the state: tables, clock, applied index (memory only)
 *   - session-commands.ts  register, sessionless writes and session commands, each applied at most once
 *   - mutation.ts          the ops of one mutate, all or none, one function per op kind
 *   - shard-reads.ts       reads of counters and kinds, top k and aggregates
 *   - shard-image.ts       shard images: capture, encode (checksummed blocks), load (validated, in slices)
 *   - shard-records.ts     the state as records: exportRecords() (splits, tools), the counter record
 *   - shard-load.ts        load() from records, and the checks of every loaded record (all loaders)
 *   - shard-snapshot.ts    the deterministic snapshot bytes (replica comparison, backups), formats 1 to 4
 *   - shard-options.ts     ShardOptions and their defaults
 */
import { assert } from "../util/assert.js";
import { CorruptionError } from "../util/errors.js";
import type { Crc32 } from "./binary.js";
import { decodeEntryShape, type Command, type CommandResult, type OpResult } from "./commands.js";
import type { KeyChange } from "./change-log.js";
import { encodeKindRecord } from "./kind-table.js";
import type { HyperLogLog } from "../kinds/hll.js";
import type { Aggregate, KeyValue } from "../kinds/topk.js";
import type { WindowAggregate, WindowBucket, WindowRange } from "./kinds/windows.js";
import { Mutation } from "./mutation.js";
import { SessionCommands, type AdmitMutation } from "./session-commands.js";
import type { BlockBuffers } from "./counter-table.js";
import type { SlicePause } from "./counter-table-slices.js";
import { captureImage, captureImageInSlices, prepareImageBuffers, readImage, type ShardImage } from "./shard-image.js";
import { loadRecords } from "./shard-load.js";
import type { ShardOptions } from "./shard-options.js";
import { ShardReads, type TimeRange } from "./shard-reads.js";
import { exportRecords } from "./shard-records.js";
import { readSnapshot, writeSnapshot } from "./shard-snapshot.js";
import { ShardState } from "./shard-state.js";

export type { Command, CommandFailure, CommandResult, CounterOp, OpResult } from "./commands.js";
export { DEFAULT_SESSIONS_PER_CALLER_MAX, validateShardOptions, type ShardOptions } from "./shard-options.js";
export { SESSION_ID_IN_USE, type AdmitMutation } from "./session-commands.js";
export { encodeShardImage, SHARD_IMAGE_MAGIC, type ShardImage } from "./shard-image.js";

/** Memory for an image's counter blocks (CounterStateMachine.prepareImageBuffers, imageBuffers). */
export type ImageBuffers = BlockBuffers;
export type { TimeRange } from "./shard-reads.js";

/**
 * Keys deleted by expiry per entry, at most (ExpiryIndex.expired's limit): bounds one entry's
 * apply time however many keys fall due at once; the rest go with the next entries. A due key not
 * deleted yet reads and mutates as absent (it is deleted before an op touches it).
 */
export const EXPIRED_PER_ENTRY_MAX = 1_000;

export class CounterStateMachine {
  private readonly state: ShardState;
  private readonly commands: SessionCommands;
  private readonly reads: ShardReads;

  constructor(options: ShardOptions) {
    this.state = new ShardState(options);
    this.commands = new SessionCommands(this.state, new Mutation(this.state));
    this.reads = new ShardReads(this.state);
  }

  get appliedIndex(): number {
    return this.state.appliedIndex;
  }

  get clockMs(): number {
    return this.state.clockMs;
  }

  counterCount(): number {
    return this.state.counters.size;
  }

  sessionCount(): number {
    return this.state.sessions.size;
  }

  /** Request ids the shard remembers (sessionless writes, request-ids.ts). */
  requestIdCount(): number {
    return this.state.requestIds.size;
  }

  /**
   * readNowMs: a reader's clock (the serving replica's wall time) for hiding keys whose TTL is due
   * although no entry has deleted them yet (the state's clock only moves with entries). Never
   * behind the state's clock.
   */
  get(key: Uint8Array, readNowMs = 0): OpResult | undefined {
    return this.reads.get(key, readNowMs);
  }

  /**
   * The kind name of a key that holds a windowed counter, rate limit or unique count (not a plain
   * counter); undefined otherwise. A plain get of such a key is refused naming it, rather than
   * answering "does not exist".
   */
  kindOf(key: Uint8Array, readNowMs = 0): string | undefined {
    return this.reads.kindOf(key, readNowMs);
  }

  /**
   * Applies one committed entry and returns one result per command, in order. `index` must be
   * above appliedIndex (gaps are allowed: entries the shard does not see, such as membership
   * changes). Empty data is the leader's no-op: nothing changes but appliedIndex.
   *
   * Throws CorruptionError, changing nothing, if the data does not decode: the leader encodes only
   * validated commands and storage verifies checksums, so such an entry is a bug or corruption and
   * must stop this replica rather than be skipped (skipping would diverge from replicas that could
   * read it). A command that decodes but breaks a bound yields an INVALID_ARGUMENT result instead:
   * the bounds are protocol constants, so every replica reaches the same verdict.
   */
  applyEntry(index: number, data: Uint8Array, admit?: AdmitMutation): CommandResult[] {
    const state = this.state;
    // Messages are built only on failure: this runs for every entry.
    if (!Number.isSafeInteger(index)) assert(false, `entry index must be a safe integer: ${index}`);
    if (index <= state.appliedIndex) assert(false, `entry ${index} applied out of order (applied ${state.appliedIndex})`);
    assert(data instanceof Uint8Array, "entry data must be a Uint8Array");
    if (data.length === 0) {
      state.appliedIndex = index;
      return [];
    }
    let commands: Command[];
    let timestampMs: number;
    try {
      ({ commands, timestampMs } = decodeEntryShape(data));
    } catch (error) {
      throw new CorruptionError(`entry ${index} does not decode: ${(error as Error).message}`);
    }
    if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) {
      throw new CorruptionError(`entry ${index} has a bad timestamp ${timestampMs}`);
    }

    state.appliedIndex = index;
    // Thesis 6.3: time for session expiry comes from the leader, through the log, and must not go
    // back when leadership moves to a node whose clock is behind.
    if (timestampMs > state.clockMs) state.clockMs = timestampMs;
    state.sessions.expire(state.clockMs, state.options.sessionTimeoutMs);
    state.requestIds.expire(state.clockMs, state.options.requestIdRetentionMs);
    for (const due of state.kinds.due(state.clockMs, EXPIRED_PER_ENTRY_MAX)) state.deleteKey(due.key);

    const results: CommandResult[] = new Array(commands.length);
    let registers = 0;
    for (let position = 0; position < commands.length; position++) {
      const command = commands[position]!;
      if (command.type === "register") {
        results[position] = this.commands.register(command, index, position, registers);
        registers++;
      } else if (command.type === "write") {
        results[position] = this.commands.applyWrite(command, index, position, admit);
      } else {
        results[position] = this.commands.applyCommand(command, index, position, admit);
      }
    }
    return results;
  }

  /**
   * Changes after `afterIndex` whose key matches (watch streams), at most about `limit`; undefined
   * when changes after afterIndex are no longer all retained (compacted: re-read, then watch).
   */
  changesSince(afterIndex: number, matches: (key: Uint8Array) => boolean, limit: number): KeyChange[] | undefined {
    return this.state.changeLog.since(afterIndex, matches, limit);
  }

  /** The lowest index a watch may resume after. */
  get changesRetainedAfter(): number {
    return this.state.changeLog.retainedAfter;
  }

  // ---- reads of the kinds (answered from applied state; the server picks the replica) ----

  /** The bucket holding timeMs (zero when the key does not exist). */
  windowAt(key: Uint8Array, timeMs: number, readNowMs = 0): WindowBucket & { version: number } {
    return this.reads.windowAt(key, timeMs, readNowMs);
  }

  windowRange(
    key: Uint8Array,
    fromMs: number,
    toMs: number,
    stepMs: number,
    agg: WindowAggregate,
    readNowMs = 0,
  ): WindowRange & { version: number } {
    return this.reads.windowRange(key, fromMs, toMs, stepMs, agg, readNowMs);
  }

  /** The union of the keys' sketches (an empty sketch when none exists). */
  uniqueSketch(keys: Uint8Array[], readNowMs = 0): HyperLogLog {
    return this.reads.uniqueSketch(keys, readNowMs);
  }

  /** This shard's exact top k plain counters whose key starts with prefix. */
  topK(prefix: Uint8Array, k: number, readNowMs = 0, window?: TimeRange): KeyValue[] {
    return this.reads.topK(prefix, k, readNowMs, window);
  }

  /**
   * Count, sum, min, max, avg of this shard's plain counters whose key starts with prefix; with a
   * window, of its windowed counters' sums over [window.fromMs, window.toMs) instead.
   */
  aggregate(prefix: Uint8Array, readNowMs = 0, window?: TimeRange): Aggregate {
    return this.reads.aggregate(prefix, readNowMs, window);
  }

  /**
   * A range split: removes every counter whose key `moves` (deterministic in the key bytes alone)
   * and returns them in key order. The caller builds the new shard's machine from them (load()) at
   * the same applied index.
   */
  removeWhere(moves: (key: Uint8Array) => boolean): Array<[Uint8Array, OpResult]> {
    const table = this.state.counters;
    const moved: Array<[Uint8Array, OpResult]> = [];
    const slots: number[] = [];
    for (const slot of table.sortedSlots()) {
      const key = table.keyBytes(slot);
      if (!moves(key)) continue;
      moved.push([key, { value: table.value(slot), version: table.version(slot) }]);
      slots.push(slot);
    }
    for (const slot of slots) table.remove(slot);
    assert(table.size >= 0, "counter count below zero after a split");
    return moved;
  }

  /**
   * The kind records' half of a range split: removes every kinded key that `moves` and returns
   * their records in key order, for load().
   */
  removeKindsWhere(moves: (key: Uint8Array) => boolean): Array<[Uint8Array, Uint8Array]> {
    const kinds = this.state.kinds;
    const moved: Array<[Uint8Array, Uint8Array]> = [];
    for (const entry of kinds.sorted()) {
      if (!moves(entry.key)) continue;
      moved.push([entry.key, encodeKindRecord(entry)]);
      kinds.remove(entry.key);
    }
    return moved;
  }

  /** Every record of the current state, in load() form (for tests and tools). Lazy; do not apply while iterating. */
  exportRecords(): {
    counters: Iterable<[Uint8Array, OpResult]>;
    sessions: Iterable<[number, Uint8Array]>;
    kinds: Iterable<[Uint8Array, Uint8Array]>;
  } {
    return exportRecords(this.state);
  }

  /**
   * The whole state (counters, sessions with their retained results and LRU order, kinds, request
   * ids, clock, appliedIndex) as deterministic bytes; the layout is in shard-snapshot.ts.
   */
  snapshot(): Uint8Array {
    return writeSnapshot(this.state);
  }

  /** Rebuilds a state machine from snapshot() bytes. Throws CorruptionError on any damage. */
  static restore(data: Uint8Array, options: ShardOptions): CounterStateMachine {
    const machine = new CounterStateMachine(options);
    readSnapshot(machine.state, data);
    return machine;
  }

  /**
   * A machine from records (exportRecords() form: a range split's moved state, backup restore),
   * without replaying the log. Throws CorruptionError if a record contradicts the rest (version
   * above appliedIndex, a session record stored under another id, ...).
   */
  static load(
    options: ShardOptions,
    appliedIndex: number,
    clockMs: number,
    counters: Iterable<[Uint8Array, OpResult]>,
    sessions: Iterable<[number, Uint8Array]>,
    kinds: Iterable<[Uint8Array, Uint8Array]> = [],
  ): CounterStateMachine {
    const machine = new CounterStateMachine(options);
    loadRecords(machine.state, appliedIndex, clockMs, counters, sessions, kinds);
    return machine;
  }

  /**
   * The whole state at the applied index, as copies: the machine may go on applying and the image
   * does not change. Synchronous and cheap for counters (two memcpys of the counter table's
   * blocks); sessions and kinds are encoded, request-id records referenced (they are immutable).
   * Encode it with encodeShardImage(). Call between entries.
   */
  captureImage(spare?: ImageBuffers): ShardImage {
    return captureImage(this.state, spare);
  }

  /**
   * captureImage() with the counter blocks copied in slices, `await pause()` between them: no
   * event-loop turn copies the whole table. The machine must not apply until it resolves (the
   * driver loop holds the shard's apply meanwhile); reads may go on.
   */
  captureImageInSlices(pause: SlicePause): Promise<ShardImage> {
    return captureImageInSlices(this.state, pause);
  }

  /** True when the counter table will soon need to grow (CounterTable.growthDue): growAhead() then. */
  growthDue(): boolean {
    return this.state.counters.growthDue();
  }

  /** Grows the counter table in slices ahead of need; the machine must not apply until it resolves. */
  growAhead(pause: SlicePause): Promise<void> {
    return this.state.counters.growAhead(pause);
  }

  /**
   * The memory a captureImage() of this machine needs for its counter blocks, prepared (allocated
   * and written once, in slices with `await pause()` between them) so that the capture copies into
   * memory that is already mapped: a copy into fresh memory pays its page faults inside
   * captureImage(), several times the copy itself at millions of counters. `spare` (a released
   * image's buffers) is returned as it is when it is large enough. The machine may apply meanwhile.
   */
  prepareImageBuffers(spare: ImageBuffers | undefined, pause: () => Promise<void>): Promise<ImageBuffers> {
    return prepareImageBuffers(this.state.counters.blockBytes(), spare, pause);
  }

  /**
   * The buffers of an image's counter blocks, for a later captureImage(), once the image (and
   * every block encodeShardImage returned for it) is no longer used, e.g. its checkpoint is
   * written. Passing the buffers of an image that is still read corrupts what reads it.
   */
  static imageBuffers(image: ShardImage): ImageBuffers | undefined {
    // Never the arena: an image's arena is a view of the table's own (not a copy).
    const rows = image.counters.rows.buffer;
    const index = image.counters.index.buffer;
    return rows instanceof ArrayBuffer && index instanceof ArrayBuffer && rows !== index ? { rows, index } : undefined;
  }

  /** A machine from the bytes of encodeShardImage() (concatenated). Throws CorruptionError on any damage. */
  static fromImage(bytes: Uint8Array, options: ShardOptions, blockCrc?: Crc32): CounterStateMachine {
    const machine = new CounterStateMachine(options);
    const steps = readImage(machine.state, bytes, blockCrc);
    while (steps.next().done !== true);
    return machine;
  }

  /**
   * fromImage(), with `await pause()` between slices of the work (checksums, row validation and
   * the index rebuild, sessions, kinds, request ids), so no slice holds the event loop for long.
   */
  static async fromImageAsync(
    bytes: Uint8Array,
    options: ShardOptions,
    pause: () => Promise<void>,
    blockCrc?: Crc32,
  ): Promise<CounterStateMachine> {
    const machine = new CounterStateMachine(options);
    const steps = readImage(machine.state, bytes, blockCrc);
    do await pause();
    while (steps.next().done !== true);
    return machine;
  }
}
