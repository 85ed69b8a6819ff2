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
 */
import { assert } from "../util/assert.js";
import { CorruptionError, FailedPreconditionError, InvalidArgumentError, OutOfRangeError, type ErrorCode } from "../util/errors.js";
import { ByteReader, ByteWriter, INT64_MAX, INT64_MIN } from "./binary.js";
import {
  decodeEntryShape,
  DEFAULT_SHARD_LIMITS,
  requestDigest,
  sessionClientId,
  SESSION_IDS_PER_ENTRY,
  validateCommand,
  type Command,
  type CommandFailure,
  type CommandResult,
  type CounterOp,
  type MutatingCommand,
  type OpResult,
} from "./commands.js";
import { CounterTable, COUNTERS_MAX, SLOT_DIRTY, SLOT_TOUCHED } from "./counter-table.js";
import { describeKey } from "./keys.js";
import { ChangeLog, type ChangeKind, type KeyChange } from "./change-log.js";
import { decodeKindRecord, encodeKindRecord, KIND_NAMES, KindTable, KindTag, type KindEntry } from "./kind-table.js";
import { compareBytes } from "./kinds/codec.js";
import { HyperLogLog } from "./kinds/hll.js";
import { SlidingWindowLimiter } from "./kinds/ratelimit.js";
import { aggregate, keyHasPrefix, topK, type Aggregate, type KeyValue } from "./kinds/topk.js";
import { WindowedCounter, type WindowAggregate, type WindowBucket, type WindowRange } from "./kinds/windows.js";
import {
  acknowledgeBelow,
  decodeOutcome,
  decodeSessionRecord,
  encodeOutcome,
  encodeSessionRecord,
  newSession,
  DIGEST_UNKNOWN,
  readSession,
  retainedPosition,
  retainOutcome,
  SessionTable,
  writeSession,
  type MutateOutcome,
  type Session,
} from "./sessions.js";
import {
  decodeRequestIdRecord,
  DEFAULT_REQUEST_ID_OPTIONS,
  encodeRequestIdRecord,
  isRequestIdRecord,
  readRequestId,
  RequestIdTable,
  writeRequestId,
  type RequestIdRecord,
} from "./request-ids.js";

export type { Command, CommandFailure, CommandResult, CounterOp, OpResult } from "./commands.js";

export interface ShardOptions {
  /** A session with no command for longer than this (by leader-stamped time) expires. */
  sessionTimeoutMs: number;
  /** Registering beyond this evicts the least recently active session. */
  maxSessions: number;
  /**
   * Sessions one authenticated caller may hold on this shard; registering beyond it fails with
   * OVERLOADED (RESOURCE_EXHAUSTED), so one caller cannot evict everyone else's sessions. Not
   * applied to the anonymous owner "" of a cluster without auth. Default DEFAULT_SESSIONS_PER_CALLER_MAX.
   */
  maxSessionsPerCaller?: number;
  /** Unacknowledged outcomes one session may hold; a mutate beyond it fails with OVERLOADED. */
  maxRetainedResultsPerSession: number;
  /** Counters one shard may hold (default and ceiling COUNTERS_MAX); creating more fails with OVERLOADED. */
  maxCounters?: number;
  /**
   * Sessionless writes (request-ids.ts): an id is remembered at least requestIdRetentionMs (by
   * leader-stamped time); a named caller holds at most requestIdsPerCallerMax and the shard at most
   * requestIdsMax, beyond which a new id is OVERLOADED. Defaults DEFAULT_REQUEST_ID_OPTIONS. Like
   * every option here, all replicas must use the same values.
   */
  requestIdRetentionMs?: number;
  requestIdsPerCallerMax?: number;
  requestIdsMax?: number;
  /**
   * Seed of the in-memory key hash. Not observable (replicas may differ); a per-process random
   * value from the server makes hash-flooding by chosen keys impractical.
   */
  hashSeed?: number;
}

/** Throws InvalidArgumentError naming the bad option (etcd Config.validate style). */
export function validateShardOptions(options: ShardOptions): void {
  const positive = (name: string, value: unknown, max = Number.MAX_SAFE_INTEGER): void => {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1 || value > max) {
      throw new InvalidArgumentError(`shard option ${name} must be an integer in [1, ${max}], got ${String(value)}`);
    }
  };
  positive("sessionTimeoutMs", options.sessionTimeoutMs);
  positive("maxSessions", options.maxSessions);
  positive("maxRetainedResultsPerSession", options.maxRetainedResultsPerSession);
  if (options.maxSessionsPerCaller !== undefined) positive("maxSessionsPerCaller", options.maxSessionsPerCaller);
  if (options.maxCounters !== undefined) positive("maxCounters", options.maxCounters, COUNTERS_MAX);
  if (options.requestIdRetentionMs !== undefined) positive("requestIdRetentionMs", options.requestIdRetentionMs);
  if (options.requestIdsPerCallerMax !== undefined) positive("requestIdsPerCallerMax", options.requestIdsPerCallerMax);
  if (options.requestIdsMax !== undefined) positive("requestIdsMax", options.requestIdsMax);
  if (options.hashSeed !== undefined && !(Number.isInteger(options.hashSeed) && options.hashSeed >= 0 && options.hashSeed <= 0xffff_ffff)) {
    throw new InvalidArgumentError(`shard option hashSeed must be a u32, got ${String(options.hashSeed)}`);
  }
}

export const DEFAULT_SESSIONS_PER_CALLER_MAX = 10_000;

/** The failure message of a register whose random id is taken; the proposer registers again with another. */
export const SESSION_ID_IN_USE = "session id in use";

/**
 * Decides, deterministically from replicated state only, whether a mutation may apply here; a
 * failure result (WRONG_SHARD) refuses it. Supplied by the replica that owns the shard descriptor.
 */
export type AdmitMutation = (command: MutatingCommand) => CommandFailure | undefined;

export interface ShardChanges {
  /** Counter key -> its state now, or undefined if it was deleted. */
  counters: Array<[Uint8Array, OpResult | undefined]>;
  /**
   * Storage id -> its record now, or undefined if it is gone: a session (encodeSessionRecord, under
   * its client id) or a request id (encodeRequestIdRecord, under its storage id).
   */
  sessions: Array<[number, Uint8Array | undefined]>;
  /** Key -> its kind record now (encodeKindRecord), or undefined if it is gone. */
  kinds: Array<[Uint8Array, Uint8Array | undefined]>;
}

/**
 * Keys deleted by expiry per entry, at most (ExpiryIndex.expired's limit): bounds one entry's
 * apply time however many keys fall due at once; the rest go with the next entries. A due key not
 * deleted yet reads and mutates as absent (it is deleted before an op touches it).
 */
export const EXPIRED_PER_ENTRY_MAX = 1_000;

const SNAPSHOT_MAGIC = 0x544c5953; // "TLYS"
/** 4: format 3 plus the request-id table (request-ids.ts writeRequestId). restore() reads 1-4. */
const SNAPSHOT_FORMAT = 4;
/** 3: format 2 with each session's owner and request digests (sessions.ts writeSession). */
const SNAPSHOT_FORMAT_NO_REQUEST_IDS = 3;
const SNAPSHOT_FORMAT_UNBOUND_SESSIONS = 2;
const SNAPSHOT_FORMAT_COUNTERS_ONLY = 1;
const KEY_BYTES_MAX = DEFAULT_SHARD_LIMITS.maxKeyBytes;

/** The op result of a reset: the counter no longer exists, which reads as value 0, version 0. */
const DELETED_VALUE = 0n;
const DELETED_VERSION = 0;

/** A command that fails validation, as the INVALID_ARGUMENT result it gets; undefined when valid. */
function invalidCommand(command: Command): CommandResult | undefined {
  try {
    validateCommand(command);
    return undefined;
  } catch (error) {
    if (error instanceof InvalidArgumentError) return failure("INVALID_ARGUMENT", error.message);
    throw error;
  }
}
/** [fromMs, toMs) in ms since the epoch. */
export interface TimeRange {
  fromMs: number;
  toMs: number;
}

export class CounterStateMachine {
  private readonly options: Readonly<Required<ShardOptions>>;
  private readonly counters: CounterTable;
  private readonly sessions = new SessionTable();
  private readonly requestIds = new RequestIdTable();
  private readonly kinds = new KindTable();
  /** Recent changes for watch streams; rebuilt (empty) when the machine is loaded or restored. */
  private changeLog = new ChangeLog(0);
  private appliedIndexValue = 0;
  private clockMsValue = 0;
  /**
   * Changes since the last takeChanges(), bounded by what was applied since: slots whose
   * SLOT_DIRTY flag was set (listed once per setting), and keys (copied) of counters deleted. A
   * deleted counter's slot loses its flag, so a listed slot that was freed, or reused by another
   * key that was listed again, is reported at most once and never under the old key.
   */
  private dirtySlots: number[] = [];
  private deletedKeys: Uint8Array[] = [];
  /**
   * Undo log of the mutate being applied, reused across mutates (apply is synchronous) so the hot
   * path allocates nothing for it: the touched slots in first-touch order (each carries the
   * SLOT_TOUCHED flag meanwhile) and their prior state. Holds at most maxOps entries.
   */
  private readonly undoSlots: number[] = [];
  private readonly undoValues: bigint[] = [];
  private readonly undoVersions: number[] = [];
  private readonly dirtySessions = new Set<number>();
  private readonly markSessionDirty = (clientId: number): void => {
    this.dirtySessions.add(clientId);
  };
  /** Storage ids of request ids added or expired since the last takeChanges(). */
  private readonly dirtyRequestIds = new Set<number>();
  private readonly markRequestIdDirty = (storageId: number): void => {
    this.dirtyRequestIds.add(storageId);
  };

  constructor(options: ShardOptions) {
    validateShardOptions(options);
    this.options = Object.freeze({
      ...options,
      maxCounters: options.maxCounters ?? COUNTERS_MAX,
      maxSessionsPerCaller: options.maxSessionsPerCaller ?? DEFAULT_SESSIONS_PER_CALLER_MAX,
      requestIdRetentionMs: options.requestIdRetentionMs ?? DEFAULT_REQUEST_ID_OPTIONS.retentionMs,
      requestIdsPerCallerMax: options.requestIdsPerCallerMax ?? DEFAULT_REQUEST_ID_OPTIONS.perCallerMax,
      requestIdsMax: options.requestIdsMax ?? DEFAULT_REQUEST_ID_OPTIONS.totalMax,
      hashSeed: options.hashSeed ?? 0x9e3779b9,
    });
    this.counters = new CounterTable(this.options.hashSeed);
  }

  get appliedIndex(): number {
    return this.appliedIndexValue;
  }

  get clockMs(): number {
    return this.clockMsValue;
  }

  counterCount(): number {
    return this.counters.size;
  }

  sessionCount(): number {
    return this.sessions.size;
  }

  /** Request ids the shard remembers (sessionless writes, request-ids.ts). */
  requestIdCount(): number {
    return this.requestIds.size;
  }

  /**
   * readNowMs: a reader's clock (the serving replica's wall time) for hiding keys whose TTL is due
   * although no entry has deleted them yet (the state's clock only moves with entries). Never
   * behind the state's clock.
   */
  get(key: Uint8Array, readNowMs = 0): OpResult | undefined {
    if (this.kinds.isDue(key, Math.max(this.clockMsValue, readNowMs))) return undefined;
    const slot = this.counters.find(key);
    if (slot < 0) return undefined;
    const version = this.counters.version(slot);
    assert(version >= 1, "a transient counter slot outlived its mutate");
    return { value: this.counters.value(slot), version };
  }

  /**
   * The kind name of a key that holds a windowed counter, rate limit or unique count (not a plain
   * counter); undefined otherwise. A plain get of such a key is refused naming it, rather than
   * answering "does not exist".
   */
  kindOf(key: Uint8Array, readNowMs = 0): string | undefined {
    const entry = this.kinds.get(key);
    if (entry === undefined || entry.tag === KindTag.Ttl) return undefined;
    if (this.kinds.isDue(key, Math.max(this.clockMsValue, readNowMs))) return undefined;
    return KIND_NAMES[entry.tag];
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
    // Messages are built only on failure: this runs for every entry.
    if (!Number.isSafeInteger(index)) assert(false, `entry index must be a safe integer: ${index}`);
    if (index <= this.appliedIndexValue) assert(false, `entry ${index} applied out of order (applied ${this.appliedIndexValue})`);
    assert(data instanceof Uint8Array, "entry data must be a Uint8Array");
    if (data.length === 0) {
      this.appliedIndexValue = index;
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

    this.appliedIndexValue = index;
    // Thesis 6.3: time for session expiry comes from the leader, through the log, and must not go
    // back when leadership moves to a node whose clock is behind.
    if (timestampMs > this.clockMsValue) this.clockMsValue = timestampMs;
    this.sessions.expire(this.clockMsValue, this.options.sessionTimeoutMs, this.markSessionDirty);
    this.requestIds.expire(this.clockMsValue, this.options.requestIdRetentionMs, this.markRequestIdDirty);
    for (const due of this.kinds.due(this.clockMsValue, EXPIRED_PER_ENTRY_MAX)) this.deleteKey(due.key);

    const results: CommandResult[] = new Array(commands.length);
    let registers = 0;
    for (let position = 0; position < commands.length; position++) {
      const command = commands[position]!;
      if (command.type === "register") {
        results[position] = this.register(command, index, position, registers);
        registers++;
      } else if (command.type === "write") {
        results[position] = this.applyWrite(command, index, position, admit);
      } else {
        results[position] = this.applyCommand(command, index, position, admit);
      }
    }
    return results;
  }

  private register(command: Extract<Command, { type: "register" }>, index: number, position: number, ordinal: number): CommandResult {
    const invalid = invalidCommand(command);
    if (invalid !== undefined) return invalid;
    const owner = command.owner ?? "";
    let clientId: number;
    if (command.clientId === undefined) {
      // An entry from before random ids: the id is the entry's index and the register's ordinal.
      if (ordinal >= SESSION_IDS_PER_ENTRY) {
        return failure("OVERLOADED", `too many session registrations in entry ${index}; max ${SESSION_IDS_PER_ENTRY}`);
      }
      clientId = sessionClientId(index, ordinal);
    } else {
      clientId = command.clientId;
    }
    // A random id can meet a live one (2^53 ids): refused, and the proposer registers with another.
    if (this.storageIdInUse(clientId)) return failure("FAILED_PRECONDITION", SESSION_ID_IN_USE);
    const perCaller = this.options.maxSessionsPerCaller;
    if (owner !== "" && this.sessions.countOf(owner) >= perCaller) {
      return failure(
        "OVERLOADED",
        `caller "${owner}" holds ${perCaller} sessions on this shard (the most one caller may); reuse them, or let idle ones expire`,
      );
    }
    // Thesis 6.3 bounds sessions with LRU eviction: the session idle longest goes; its client
    // then sees SESSION_EXPIRED. Deterministic because the LRU order is part of the state. A loop,
    // not an if: state loaded under a larger maxSessions may hold more than the bound.
    while (this.sessions.size >= this.options.maxSessions) {
      const evicted = this.sessions.removeOldest();
      assert(evicted !== undefined, "maxSessions >= 1 but no session to evict");
      this.dirtySessions.add(evicted.clientId);
    }
    this.sessions.insert(newSession(clientId, owner, this.clockMsValue, index, position));
    this.dirtySessions.add(clientId);
    assert(this.sessions.size <= this.options.maxSessions, "session table above maxSessions");
    return { ok: true, type: "register", clientId };
  }

  /** A session or a request id is stored under this id (they share the shard's session records). */
  private storageIdInUse(id: number): boolean {
    return this.sessions.get(id) !== undefined || this.requestIds.hasStorageId(id);
  }

  /**
   * A sessionless write (request-ids.ts): the saved outcome when its (owner, requestId) is
   * remembered with the same ops, INVALID_ARGUMENT when with other ops; else the routing check,
   * the table's bounds, then the ops all or none, and the outcome is remembered (a definite
   * failure of the ops too: a retry gets the same answer). Refusals before the ops ran (routing,
   * bounds) are not remembered: nothing applied, so the same id may be sent again.
   */
  private applyWrite(
    command: Extract<Command, { type: "write" }>,
    index: number,
    position: number,
    admit: AdmitMutation | undefined,
  ): CommandResult {
    const invalid = invalidCommand(command);
    if (invalid !== undefined) return invalid;
    const owner = command.owner ?? "";
    const digest = requestDigest(command.ops);
    const known = this.requestIds.get(owner, command.requestId);
    if (known !== undefined) {
      if (known.digest !== digest) {
        // Answering with the saved result would tell this caller that a different request applied.
        return failure(
          "INVALID_ARGUMENT",
          `request id ${JSON.stringify(command.requestId)} was used for a different request at index ${known.index}; ` +
            "a retry must resend the same operations (use a new request id for a new request)",
        );
      }
      return decodeOutcome(known.outcome);
    }
    if (admit !== undefined) {
      const refusal = admit(command);
      if (refusal !== undefined) return refusal;
    }
    const full = this.requestIdsFull(owner);
    if (full !== undefined) return full;
    if (this.kinds.size > 0) {
      for (const op of command.ops) if (this.kinds.isDue(op.key, this.clockMsValue)) this.deleteKey(op.key);
    }
    const outcome = this.mutate(command.ops, index);
    const storageId = this.freeStorageId(index, position);
    this.requestIds.insert({
      storageId,
      owner,
      requestId: command.requestId,
      appliedAtMs: this.clockMsValue,
      index,
      ordinal: position,
      digest,
      outcome: encodeOutcome(outcome),
    });
    this.dirtyRequestIds.add(storageId);
    return outcome;
  }

  /** OVERLOADED (with the wait until an id frees up) when a new id would pass a bound, else undefined. */
  private requestIdsFull(owner: string): CommandFailure | undefined {
    const { requestIdsPerCallerMax, requestIdsMax, requestIdRetentionMs } = this.options;
    let oldest: RequestIdRecord | undefined;
    let what: string;
    if (owner !== "" && this.requestIds.countOf(owner) >= requestIdsPerCallerMax) {
      oldest = this.requestIds.oldest(owner);
      what = `caller "${owner}" holds ${requestIdsPerCallerMax} request ids on this shard (requestIdsPerCallerMax)`;
    } else if (this.requestIds.size >= requestIdsMax) {
      oldest = this.requestIds.oldest();
      what = `this shard holds ${requestIdsMax} request ids (requestIdsMax)`;
    } else {
      return undefined;
    }
    assert(oldest !== undefined, "a full request-id table has an oldest id");
    const retryAfterMs = Math.max(1, oldest.appliedAtMs + requestIdRetentionMs - this.clockMsValue + 1);
    return {
      ok: false,
      code: "OVERLOADED",
      message: `${what}, each remembered for ${requestIdRetentionMs} ms; nothing was applied: retry after ${retryAfterMs} ms, or use a session for a higher rate`,
      retryAfterMs,
    };
  }

  /**
   * The storage id of the request id written by command `position` of entry `index`: the id a
   * register of that entry position would get (sessionClientId), or the next free one above it.
   * Deterministic: every replica holds the same sessions and request ids.
   */
  private freeStorageId(index: number, position: number): number {
    let id = index * SESSION_IDS_PER_ENTRY + position;
    while (this.storageIdInUse(id)) id++;
    assert(Number.isSafeInteger(id), "request id storage id overflows a safe integer");
    return id;
  }

  private applyCommand(command: Command, index: number, position: number, admit: AdmitMutation | undefined): CommandResult {
    const invalid = invalidCommand(command);
    if (invalid !== undefined) return invalid;
    assert(command.type !== "register" && command.type !== "write", "register and write are handled by applyEntry");
    const session = this.sessions.get(command.clientId);
    if (session === undefined) {
      return failure("SESSION_EXPIRED", `session ${command.clientId} is unknown or expired; register a new one`);
    }
    // Before anything touches the session: another caller may not keep it alive, read its retained
    // results, or advance its acknowledgements.
    if (session.owner !== (command.owner ?? "")) {
      return failure("PERMISSION_DENIED", `session ${command.clientId} belongs to another caller; register a session of your own`);
    }
    this.sessions.touch(session, this.clockMsValue, index, position);
    this.dirtySessions.add(session.clientId);
    if (command.type === "keepalive") return { ok: true, type: "keepalive" };

    // Thesis 6.3: the client's lowest unacknowledged seq lets the state machine forget replies.
    acknowledgeBelow(session, command.firstUnackedSeq);
    if (command.seq < session.firstUnackedSeq) {
      // The outcome is forgotten, so we can neither replay it nor safely apply again. This is a
      // stale duplicate (the client already has the reply): refused, with its own code so a client
      // can tell it from an expired session (which needs a new registration; this one does not).
      return failure(
        "SEQ_ACKNOWLEDGED",
        `seq ${command.seq} of session ${command.clientId} was already acknowledged ` +
          `(results below seq ${session.firstUnackedSeq} are forgotten)`,
      );
    }
    const digest = requestDigest(command.ops);
    const retained = retainedPosition(session, command.seq);
    if (retained >= 0) {
      const was = session.retainedDigests[retained]!;
      if (was !== DIGEST_UNKNOWN && was !== digest) {
        // Answering with the saved result would tell this caller that a different request applied.
        return failure(
          "INVALID_ARGUMENT",
          `seq ${command.seq} of session ${command.clientId} was used for a different request; a retry must resend the same operations (use a new seq for a new request)`,
        );
      }
      return decodeOutcome(session.retainedOutcomes[retained]!);
    }
    // The routing check, at apply time so that it is ordered with the shard's own descriptor
    // changes in the log: a mutation routed by a stale epoch, or naming a key outside the range,
    // changes nothing and is not retained (the client retries the same seq after a refresh).
    if (admit !== undefined) {
      const refusal = admit(command);
      if (refusal !== undefined) return refusal;
    }
    const retainedCount = session.retainedSeqs.length;
    if (retainedCount >= this.options.maxRetainedResultsPerSession) {
      // Not retained: nothing was applied, so a retry of this seq after acknowledgements is safe.
      return failure(
        "OVERLOADED",
        `session ${command.clientId} holds ${retainedCount} unacknowledged results ` +
          `(maxRetainedResultsPerSession ${this.options.maxRetainedResultsPerSession}); ` +
          `advance firstUnackedSeq before sending seq ${command.seq}`,
      );
    }
    if (this.kinds.size > 0) {
      for (const op of command.ops) if (this.kinds.isDue(op.key, this.clockMsValue)) this.deleteKey(op.key);
    }
    const outcome = this.mutate(command.ops, index);
    retainOutcome(session, command.seq, digest, encodeOutcome(outcome));
    assert(session.retainedSeqs.length <= this.options.maxRetainedResultsPerSession, "retained results above bound");
    return outcome;
  }

  /**
   * Applies ops in order directly to the table, saving each touched slot's prior state first; if
   * an op fails, every touched slot is put back and the failure returned, so a mutate applies all
   * or nothing. Later ops see earlier ones. Version of every changed counter = index.
   *
   * Slots stay put for the whole mutate: a key that does not exist gets a transient version-0
   * slot, and a reset writes version 0 rather than removing; slots left at version 0 are removed
   * at the end (commit or rollback).
   */
  private mutate(ops: CounterOp[], index: number): MutateOutcome {
    const table = this.counters;
    const kinds = this.kinds;
    const undoSlots = this.undoSlots;
    const undoValues = this.undoValues;
    const undoVersions = this.undoVersions;
    let touched = 0;
    const liveAtStart = table.size;
    let liveDelta = 0;
    const results: OpResult[] = new Array(ops.length);
    // A single op needs no kind undo: each structure checks everything before it writes.
    const kindUndo = ops.length > 1;
    let kindResets: Uint8Array[] | undefined;

    for (let opIndex = 0; opIndex < ops.length; opIndex++) {
      const op = ops[opIndex]!;
      if (op.kind === "window" || op.kind === "acquire" || op.kind === "unique") {
        const outcome = this.applyKindOp(op, opIndex, index, kindUndo, liveAtStart + liveDelta);
        if ("ok" in outcome) return this.abortMutate(touched, outcome);
        results[opIndex] = outcome;
        continue;
      }
      const kind = kinds.size === 0 ? undefined : kinds.get(op.key);
      if (kind !== undefined && kind.tag !== KindTag.Ttl) {
        if (op.kind !== "reset") {
          return this.abortMutate(
            touched,
            opFailure("FAILED_PRECONDITION", opIndex, op, `the key holds a ${KIND_NAMES[kind.tag]}; a key holds one kind (reset it first)`),
          );
        }
        if (kindUndo) kinds.saveUndo(op.key);
        kinds.remove(op.key);
        (kindResets ??= []).push(op.key);
        results[opIndex] = { value: DELETED_VALUE, version: DELETED_VERSION };
        continue;
      }
      const slot = table.findOrInsert(op.key);
      const currentVersion = table.version(slot);
      // A slot is saved on first touch only, so rollback restores the state before the mutate.
      if (table.setFlag(slot, SLOT_TOUCHED)) {
        undoSlots[touched] = slot;
        undoValues[touched] = table.value(slot);
        undoVersions[touched] = currentVersion;
        touched++;
      }
      const exists = currentVersion !== DELETED_VERSION;
      let value: bigint;
      let version = index;
      let failed: CommandFailure | undefined;
      switch (op.kind) {
        case "add": {
          const base = exists ? table.value(slot) : 0n;
          value = base + op.delta;
          if (value > INT64_MAX || value < INT64_MIN) {
            failed = opFailure("OUT_OF_RANGE", opIndex, op, `${base} + ${op.delta} = ${value} is outside int64`);
          } else if (op.floor !== undefined && value < op.floor) {
            failed = opFailure("FAILED_PRECONDITION", opIndex, op, `result ${value} would be below the floor ${op.floor}`);
          }
          break;
        }
        case "set":
          value = op.value;
          break;
        case "reset":
          value = DELETED_VALUE;
          version = DELETED_VERSION;
          break;
        case "cas":
          value = op.value;
          if (currentVersion !== op.expectedVersion) {
            failed = opFailure(
              "VERSION_MISMATCH",
              opIndex,
              op,
              `expected version ${op.expectedVersion}, counter is at version ${currentVersion}`,
            );
            failed.currentVersion = currentVersion;
          }
          break;
      }
      if (
        failed === undefined &&
        !exists &&
        version !== DELETED_VERSION &&
        liveAtStart + liveDelta + kinds.structured >= this.options.maxCounters
      ) {
        failed = opFailure("OVERLOADED", opIndex, op, `shard holds ${this.options.maxCounters} counters (maxCounters); it must split`);
      }
      if (failed !== undefined) return this.abortMutate(touched, failed);
      if (exists && version === DELETED_VERSION) liveDelta--;
      else if (!exists && version !== DELETED_VERSION) liveDelta++;
      table.write(slot, value, version);
      results[opIndex] = { value, version };
      if (op.kind === "reset") {
        if (kind !== undefined) {
          if (kindUndo) kinds.saveUndo(op.key);
          kinds.remove(op.key);
        }
      } else if ((op.kind === "add" || op.kind === "set") && op.ttlMs !== undefined) {
        if (kindUndo) kinds.saveUndo(op.key);
        const expiresAtMs = this.clockMsValue + op.ttlMs;
        if (kind === undefined) {
          kinds.put({ key: op.key.slice(), tag: KindTag.Ttl, structure: undefined, version: 0, expiresAtMs });
        } else {
          kind.expiresAtMs = expiresAtMs;
          kinds.touched(kind);
        }
      }
    }

    for (let i = 0; i < touched; i++) {
      const slot = undoSlots[i]!;
      table.clearFlag(slot, SLOT_TOUCHED);
      if (table.version(slot) !== DELETED_VERSION) {
        if (table.setFlag(slot, SLOT_DIRTY)) this.dirtySlots.push(slot);
        if (table.version(slot) === index) this.changed(index, table.keyView(slot), table.value(slot), index, "counter");
        continue;
      }
      if (undoVersions[i]! !== DELETED_VERSION) {
        const key = table.keyBytes(slot);
        this.deletedKeys.push(key);
        this.changed(index, key, DELETED_VALUE, DELETED_VERSION, "deleted");
      }
      table.remove(slot); // drops its flags; a listed slot is skipped in takeChanges unless re-listed
    }
    for (let opIndex = 0; opIndex < ops.length; opIndex++) {
      const op = ops[opIndex]!;
      if (op.kind === "window" || op.kind === "acquire" || op.kind === "unique") {
        const result = results[opIndex]!;
        if (result.version === index) this.changed(index, op.key, result.value, index, op.kind === "acquire" ? "limit" : op.kind);
      }
    }
    // Resets of kinded keys (a counter's reset is recorded above).
    if (kindResets !== undefined) {
      for (const key of kindResets) if (kinds.get(key) === undefined) this.changed(index, key, DELETED_VALUE, DELETED_VERSION, "deleted");
    }
    kinds.endMutate();
    assert(table.size === liveAtStart + liveDelta, "counter count drifted during a mutate");
    return { ok: true, type: "mutate", results, duplicate: false };
  }

  /** Undoes a failed mutate (counters and kinds) and returns its failure. */
  private abortMutate(touched: number, failed: CommandFailure): CommandFailure {
    this.rollback(touched);
    this.kinds.rollback();
    return failed;
  }

  private counterExists(key: Uint8Array): boolean {
    const slot = this.counters.find(key);
    return slot >= 0 && this.counters.version(slot) !== DELETED_VERSION;
  }

  /**
   * One windowed / rate-limit / unique op. Refused (FAILED_PRECONDITION) when the key holds
   * another kind; the structure's own checks (InvalidArgumentError, OutOfRangeError) become the
   * op's failure and have changed nothing. A denied acquire is a result, and changes nothing.
   */
  private applyKindOp(op: KindOp, opIndex: number, index: number, kindUndo: boolean, plainCounters: number): OpResult | CommandFailure {
    const tag = op.kind === "window" ? KindTag.Window : op.kind === "acquire" ? KindTag.Limit : KindTag.Unique;
    const existing = this.kinds.get(op.key);
    const holder = existing?.tag ?? (this.counterExists(op.key) ? KindTag.Ttl : undefined);
    if (holder !== undefined && holder !== tag) {
      return opFailure("FAILED_PRECONDITION", opIndex, op, `the key holds a ${KIND_NAMES[holder]}; a key holds one kind (reset it first)`);
    }
    if (existing === undefined && op.kind === "acquire" && op.n === 0) {
      return { value: BigInt(op.limit), version: DELETED_VERSION, allowed: true, retryAfterMs: 0 };
    }
    if (existing === undefined && plainCounters + this.kinds.structured >= this.options.maxCounters) {
      return opFailure("OVERLOADED", opIndex, op, `shard holds ${this.options.maxCounters} counters (maxCounters); it must split`);
    }
    const structure = existing?.structure ?? newStructure(tag);
    const nowMs = this.clockMsValue;
    if (kindUndo && existing !== undefined) this.kinds.saveUndo(op.key);
    let result: OpResult;
    let changed: boolean;
    try {
      switch (op.kind) {
        case "window": {
          const window = structure as WindowedCounter;
          const eventTimeMs = op.eventTimeMs ?? nowMs;
          window.add(eventTimeMs, op.delta, nowMs);
          result = { value: window.at(eventTimeMs).sum, version: index, eventTimeMs };
          changed = true;
          break;
        }
        case "acquire": {
          const acquired = (structure as SlidingWindowLimiter).tryAcquire(op.n, op.limit, op.windowMs, nowMs);
          changed = acquired.allowed && op.n > 0;
          const version = changed ? index : (existing?.version ?? DELETED_VERSION);
          result = { value: BigInt(acquired.remaining), version, allowed: acquired.allowed, retryAfterMs: acquired.retryAfterMs };
          break;
        }
        case "unique": {
          const sketch = structure as HyperLogLog;
          changed = false;
          for (const item of op.items) if (sketch.add(item)) changed = true;
          result = { value: changed ? 1n : 0n, version: changed ? index : (existing?.version ?? index) };
          break;
        }
      }
    } catch (error) {
      if (error instanceof InvalidArgumentError) return opFailure("INVALID_ARGUMENT", opIndex, op, error.message);
      if (error instanceof OutOfRangeError) return opFailure("OUT_OF_RANGE", opIndex, op, error.message);
      throw error;
    }
    const ttlMs = op.kind === "acquire" ? undefined : op.ttlMs;
    if (!changed && ttlMs === undefined) return result;
    const expiresAtMs = ttlMs === undefined ? (existing?.expiresAtMs ?? 0) : nowMs + ttlMs;
    if (existing === undefined) {
      if (kindUndo) this.kinds.saveUndo(op.key);
      this.kinds.put({ key: op.key.slice(), tag, structure, version: index, expiresAtMs });
    } else {
      if (changed) existing.version = index;
      existing.expiresAtMs = expiresAtMs;
      this.kinds.touched(existing);
    }
    return result;
  }

  /** Deletes a key of any kind (expiry), reporting it in takeChanges(). */
  private deleteKey(key: Uint8Array): void {
    const slot = this.counters.find(key);
    let existed = false;
    if (slot >= 0 && this.counters.version(slot) !== DELETED_VERSION) {
      this.deletedKeys.push(this.counters.keyBytes(slot));
      this.counters.clearFlag(slot, SLOT_DIRTY);
      this.counters.remove(slot);
      existed = true;
    }
    if (this.kinds.remove(key)) existed = true;
    if (existed) this.changed(this.appliedIndexValue, key, DELETED_VALUE, DELETED_VERSION, "deleted");
  }

  private changed(index: number, key: Uint8Array, value: bigint, version: number, kind: ChangeKind): void {
    this.changeLog.append(index, key, value, version, kind);
  }

  /**
   * Changes after `afterIndex` whose key matches (watch streams), at most about `limit`; undefined
   * when changes after afterIndex are no longer all retained (compacted: re-read, then watch).
   */
  changesSince(afterIndex: number, matches: (key: Uint8Array) => boolean, limit: number): KeyChange[] | undefined {
    return this.changeLog.since(afterIndex, matches, limit);
  }

  /** The lowest index a watch may resume after. */
  get changesRetainedAfter(): number {
    return this.changeLog.retainedAfter;
  }

  // ---- reads of the kinds (answered from applied state; the server picks the replica) ----

  /** The key's structure of that kind; undefined if absent or expired; FailedPreconditionError if another kind. */
  private structureOf(key: Uint8Array, tag: KindTag, readNowMs: number): KindEntry | undefined {
    if (this.kinds.isDue(key, Math.max(this.clockMsValue, readNowMs))) return undefined;
    const entry = this.kinds.get(key);
    const holder = entry?.tag ?? (this.counterExists(key) ? KindTag.Ttl : undefined);
    if (holder === undefined) return undefined;
    if (holder !== tag)
      throw new FailedPreconditionError(`key ${describeKey(key)} holds a ${KIND_NAMES[holder]}, not a ${KIND_NAMES[tag]}`);
    return entry;
  }

  /** The bucket holding timeMs (zero when the key does not exist). */
  windowAt(key: Uint8Array, timeMs: number, readNowMs = 0): WindowBucket & { version: number } {
    const entry = this.structureOf(key, KindTag.Window, readNowMs);
    const window = (entry?.structure as WindowedCounter | undefined) ?? EMPTY_WINDOW;
    return { ...window.at(timeMs), version: entry?.version ?? 0 };
  }

  windowRange(
    key: Uint8Array,
    fromMs: number,
    toMs: number,
    stepMs: number,
    agg: WindowAggregate,
    readNowMs = 0,
  ): WindowRange & { version: number } {
    const entry = this.structureOf(key, KindTag.Window, readNowMs);
    const window = (entry?.structure as WindowedCounter | undefined) ?? EMPTY_WINDOW;
    return { ...window.range(fromMs, toMs, stepMs, agg), version: entry?.version ?? 0 };
  }

  /** The union of the keys' sketches (an empty sketch when none exists). */
  uniqueSketch(keys: Uint8Array[], readNowMs = 0): HyperLogLog {
    const union = new HyperLogLog();
    for (const key of keys) {
      const entry = this.structureOf(key, KindTag.Unique, readNowMs);
      if (entry !== undefined) union.merge(entry.structure as HyperLogLog);
    }
    return union;
  }

  /** This shard's exact top k plain counters whose key starts with prefix. */
  topK(prefix: Uint8Array, k: number, readNowMs = 0, window?: TimeRange): KeyValue[] {
    return topK(window === undefined ? this.prefixed(prefix, readNowMs) : this.prefixedWindows(prefix, readNowMs, window), k);
  }

  /**
   * Count, sum, min, max, avg of this shard's plain counters whose key starts with prefix; with a
   * window, of its windowed counters' sums over [window.fromMs, window.toMs) instead.
   */
  aggregate(prefix: Uint8Array, readNowMs = 0, window?: TimeRange): Aggregate {
    return aggregate(window === undefined ? this.prefixed(prefix, readNowMs) : this.prefixedWindows(prefix, readNowMs, window), prefix);
  }

  /**
   * Windowed counters with the prefix and an add in the range, each valued at its sum over it (the same range on
   * every shard, chosen by the caller, so the merged answer is over one period). A range no tier
   * holds for some key is INVALID_ARGUMENT for the whole read, never a silent 0.
   */
  private *prefixedWindows(prefix: Uint8Array, readNowMs: number, window: TimeRange): Iterable<KeyValue> {
    const nowMs = Math.max(this.clockMsValue, readNowMs);
    for (const entry of this.kinds.values()) {
      if (entry.tag !== KindTag.Window || !keyHasPrefix(entry.key, prefix) || this.kinds.isDue(entry.key, nowMs)) continue;
      const structure = entry.structure as WindowedCounter;
      const sum = structure.range(window.fromMs, window.toMs, window.toMs - window.fromMs, "sum").points[0]!.value;
      // Only counters with an add in the range take part (a sum of 0 may still be +5 and -5).
      if (sum === 0n && structure.range(window.fromMs, window.toMs, window.toMs - window.fromMs, "count").points[0]!.value === 0n) continue;
      yield { key: entry.key, value: sum };
    }
  }

  private *prefixed(prefix: Uint8Array, readNowMs: number): Iterable<KeyValue> {
    const table = this.counters;
    const nowMs = Math.max(this.clockMsValue, readNowMs);
    for (const slot of table.occupiedSlots()) {
      const key = table.keyView(slot);
      if (!keyHasPrefix(key, prefix) || this.kinds.isDue(key, nowMs)) continue;
      yield { key, value: table.value(slot) };
    }
  }

  /** Puts back the first `touched` undo-log slots, newest first; removes slots the mutate created. */
  private rollback(touched: number): void {
    const table = this.counters;
    for (let i = touched - 1; i >= 0; i--) {
      const slot = this.undoSlots[i]!;
      const version = this.undoVersions[i]!;
      table.clearFlag(slot, SLOT_TOUCHED);
      if (version === DELETED_VERSION) table.remove(slot);
      else table.write(slot, this.undoValues[i]!, version);
    }
  }

  /** Changes since the last call, to write in the same storage batch as the applied index. */
  takeChanges(): ShardChanges {
    // Deletions first: a key deleted and then created again in the same period appears twice, and
    // applying the list in order leaves the right final state.
    const counters: Array<[Uint8Array, OpResult | undefined]> = this.deletedKeys.map((key) => [key, undefined]);
    const table = this.counters;
    for (const slot of this.dirtySlots) {
      if (!table.isOccupied(slot) || !table.clearFlag(slot, SLOT_DIRTY)) continue;
      counters.push([table.keyBytes(slot), { value: table.value(slot), version: table.version(slot) }]);
    }
    // Sessions and request ids share storage ids over time (an id freed by one may be taken by the
    // other), so each dirty id is reported once, with what holds it now.
    const sessions: Array<[number, Uint8Array | undefined]> = [];
    for (const id of this.dirtyRequestIds) this.dirtySessions.add(id);
    for (const id of this.dirtySessions) sessions.push([id, this.storageRecord(id)]);
    this.dirtySlots = [];
    this.deletedKeys = [];
    this.dirtySessions.clear();
    this.dirtyRequestIds.clear();
    return { counters, sessions, kinds: this.kinds.takeChanges() };
  }

  /** The record stored under a session/request-id storage id now, or undefined if none. */
  private storageRecord(id: number): Uint8Array | undefined {
    const session = this.sessions.get(id);
    if (session !== undefined) return encodeSessionRecord(session);
    const record = this.requestIds.byStorageId(id);
    return record === undefined ? undefined : encodeRequestIdRecord(record);
  }

  /**
   * A range split: removes every counter whose key `moves` (deterministic in the key bytes alone),
   * reporting them as deletions in the next takeChanges(), and returns them in key order. The
   * caller builds the new shard's machine from them (load()) at the same applied index.
   */
  removeWhere(moves: (key: Uint8Array) => boolean): Array<[Uint8Array, OpResult]> {
    const table = this.counters;
    const moved: Array<[Uint8Array, OpResult]> = [];
    const slots: number[] = [];
    for (const slot of table.sortedSlots()) {
      const key = table.keyBytes(slot);
      if (!moves(key)) continue;
      moved.push([key, { value: table.value(slot), version: table.version(slot) }]);
      slots.push(slot);
    }
    for (let i = 0; i < slots.length; i++) {
      table.clearFlag(slots[i]!, SLOT_DIRTY);
      table.remove(slots[i]!);
      this.deletedKeys.push(moved[i]![0]);
    }
    assert(this.counters.size >= 0, "counter count below zero after a split");
    return moved;
  }

  /**
   * The kind records' half of a range split: removes every kinded key that `moves` (reported as
   * deletions in the next takeChanges()) and returns their records in key order, for load().
   */
  removeKindsWhere(moves: (key: Uint8Array) => boolean): Array<[Uint8Array, Uint8Array]> {
    const moved: Array<[Uint8Array, Uint8Array]> = [];
    for (const entry of this.kinds.sorted()) {
      if (!moves(entry.key)) continue;
      moved.push([entry.key, encodeKindRecord(entry)]);
      this.kinds.remove(entry.key);
    }
    return moved;
  }

  /** Every record of the current state, in load() form (for tests and tools). Lazy; do not apply while iterating. */
  exportRecords(): {
    counters: Iterable<[Uint8Array, OpResult]>;
    sessions: Iterable<[number, Uint8Array]>;
    kinds: Iterable<[Uint8Array, Uint8Array]>;
  } {
    const table = this.counters;
    const sessions = this.sessions;
    const requestIds = this.requestIds;
    const kinds = this.kinds;
    return {
      kinds: (function* () {
        for (const entry of kinds.sorted()) yield [entry.key, encodeKindRecord(entry)] as [Uint8Array, Uint8Array];
      })(),
      counters: (function* () {
        for (const slot of table.occupiedSlots()) {
          yield [table.keyBytes(slot), { value: table.value(slot), version: table.version(slot) }] as [Uint8Array, OpResult];
        }
      })(),
      sessions: (function* () {
        for (const session of sessions.values()) yield [session.clientId, encodeSessionRecord(session)] as [number, Uint8Array];
        for (const record of requestIds.values()) yield [record.storageId, encodeRequestIdRecord(record)] as [number, Uint8Array];
      })(),
    };
  }

  /**
   * The whole state (counters, sessions with their retained results and LRU order, clock,
   * appliedIndex) as deterministic bytes: counters sorted bytewise by key, sessions in their
   * canonical activity order, CRC-32 trailer. Layout (big-endian):
   *   u32 magic "TLYS" | u16 format | u64 appliedIndex | u64 clockMs
   *   u32 counterCount | { u16 keyLength, key, i64 value, u64 version }*
   *   u32 sessionCount | session* (see sessions.ts writeSession)
   *   u32 kindCount | { u16 keyLength, key, u32 recordLength, record (encodeKindRecord) }*   (format >= 2)
   *   u32 requestIdCount | request id* in apply order (see request-ids.ts writeRequestId)  (format >= 4)
   *   u32 crc32
   */
  snapshot(): Uint8Array {
    const writer = new ByteWriter(64 + this.counters.size * 48);
    writer.u32(SNAPSHOT_MAGIC);
    writer.u16(SNAPSHOT_FORMAT);
    writer.u64(this.appliedIndexValue);
    writer.u64(this.clockMsValue);
    writer.u32(this.counters.size);
    const table = this.counters;
    const slots = table.sortedSlots();
    writer.writeWith(table.snapshotRowsBytes(), (bytes, position) => table.writeSnapshotRows(slots, bytes, position));
    writer.u32(this.sessions.size);
    for (const session of this.sessions.values()) writeSession(writer, session);
    const kinds = this.kinds.sorted();
    writer.u32(kinds.length);
    for (const entry of kinds) {
      const record = encodeKindRecord(entry);
      writer.u16(entry.key.length);
      writer.raw(entry.key);
      writer.u32(record.length);
      writer.raw(record);
    }
    writer.u32(this.requestIds.size);
    for (const record of this.requestIds.values()) writeRequestId(writer, record);
    writer.crc32Trailer();
    return writer.finish();
  }

  /**
   * Rebuilds a state machine from snapshot() bytes. Throws CorruptionError on any damage.
   * The first takeChanges() of the result reports every counter and session, so the caller can
   * clear the shard's persisted state and write that in the same batch as the snapshot.
   */
  static restore(data: Uint8Array, options: ShardOptions): CounterStateMachine {
    const machine = new CounterStateMachine(options);
    const reader = new ByteReader(data, "shard snapshot");
    reader.verifyCrc32Trailer();
    if (reader.u32() !== SNAPSHOT_MAGIC) reader.fail("bad magic");
    const format = reader.u16();
    const known = [SNAPSHOT_FORMAT, SNAPSHOT_FORMAT_NO_REQUEST_IDS, SNAPSHOT_FORMAT_UNBOUND_SESSIONS, SNAPSHOT_FORMAT_COUNTERS_ONLY];
    if (!known.includes(format)) reader.fail(`unknown format ${format} (this version reads formats 1 to ${SNAPSHOT_FORMAT})`);
    machine.appliedIndexValue = reader.u64();
    machine.clockMsValue = reader.u64();
    const counterCount = reader.u32();
    if (counterCount * 19 > reader.remaining) reader.fail(`counter count ${counterCount} exceeds the data`);
    machine.counters.reserve(counterCount);
    let previousSlot = -1;
    const corrupt = (problem: string): never => reader.fail(problem);
    for (let i = 0; i < counterCount; i++) {
      const keyLength = reader.u16();
      if (keyLength < 1 || keyLength > KEY_BYTES_MAX) reader.fail(`counter ${i} key length ${keyLength}`);
      const key = reader.subarray(keyLength);
      const value = reader.i64();
      const version = reader.u64();
      const slot = machine.loadCounter(key, value, version, corrupt);
      if (previousSlot >= 0 && machine.counters.compareKeys(previousSlot, slot) >= 0) {
        reader.fail(`counter ${i} keys not in ascending order`);
      }
      previousSlot = slot;
      machine.counters.setFlag(slot, SLOT_DIRTY);
      machine.dirtySlots.push(slot);
    }
    const sessionCount = reader.u32();
    if (sessionCount * 40 > reader.remaining) reader.fail(`session count ${sessionCount} exceeds the data`);
    for (let i = 0; i < sessionCount; i++) {
      const session = readSession(reader, format >= SNAPSHOT_FORMAT_NO_REQUEST_IDS);
      machine.insertLoadedSession(session, corrupt);
      machine.dirtySessions.add(session.clientId);
    }
    if (format !== SNAPSHOT_FORMAT_COUNTERS_ONLY) {
      const kindCount = reader.u32();
      if (kindCount * 24 > reader.remaining) reader.fail(`kind count ${kindCount} exceeds the data`);
      let previous: Uint8Array | undefined;
      for (let i = 0; i < kindCount; i++) {
        const keyLength = reader.u16();
        if (keyLength < 1 || keyLength > KEY_BYTES_MAX) reader.fail(`kind ${i} key length ${keyLength}`);
        const key = reader.raw(keyLength);
        if (previous !== undefined && compareBytes(previous, key) >= 0) reader.fail(`kind ${i} keys not in ascending order`);
        previous = key;
        machine.loadKind(key, reader.raw(reader.u32()), true, corrupt);
      }
    }
    if (format >= SNAPSHOT_FORMAT) {
      const requestIdCount = reader.u32();
      if (requestIdCount * 45 > reader.remaining) reader.fail(`request id count ${requestIdCount} exceeds the data`);
      for (let i = 0; i < requestIdCount; i++) {
        const record = readRequestId(reader);
        machine.insertLoadedRequestId(record, corrupt);
        machine.dirtyRequestIds.add(record.storageId);
      }
    }
    reader.expectEnd(4);
    machine.changeLog = new ChangeLog(machine.appliedIndexValue);
    return machine;
  }

  /**
   * Start-up from persisted records (what takeChanges() produced), without replaying the log.
   * Throws CorruptionError if a record contradicts the rest (version above appliedIndex, a
   * session record stored under another id, ...).
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
    const corrupt = (problem: string): never => {
      throw new CorruptionError(`shard state: ${problem}`);
    };
    if (!Number.isSafeInteger(appliedIndex) || appliedIndex < 0) corrupt(`bad applied index ${appliedIndex}`);
    if (!Number.isSafeInteger(clockMs) || clockMs < 0) corrupt(`bad clock ${clockMs}`);
    machine.appliedIndexValue = appliedIndex;
    machine.clockMsValue = clockMs;
    for (const [key, counter] of counters) {
      if (key.length < 1 || key.length > KEY_BYTES_MAX) corrupt(`counter key of ${key.length} bytes`);
      machine.loadCounter(key, counter.value, counter.version, corrupt);
    }
    const loaded: Session[] = [];
    const loadedRequestIds: RequestIdRecord[] = [];
    for (const [clientId, record] of sessions) {
      if (isRequestIdRecord(record)) {
        const requestId = decodeRequestIdRecord(record);
        if (requestId.storageId !== clientId) corrupt(`request id record ${requestId.storageId} stored under id ${clientId}`);
        loadedRequestIds.push(requestId);
        continue;
      }
      const session = decodeSessionRecord(record);
      if (session.clientId !== clientId) corrupt(`session record ${session.clientId} stored under id ${clientId}`);
      loaded.push(session);
    }
    // Storage returns sessions in key order; the LRU order is recovered from the activity stamps.
    loaded.sort((a, b) => a.touchIndex - b.touchIndex || a.touchOrdinal - b.touchOrdinal);
    for (const session of loaded) machine.insertLoadedSession(session, corrupt);
    loadedRequestIds.sort((a, b) => a.index - b.index || a.ordinal - b.ordinal);
    for (const record of loadedRequestIds) machine.insertLoadedRequestId(record, corrupt);
    for (const [key, record] of kinds) machine.loadKind(key, record, false, corrupt);
    machine.changeLog = new ChangeLog(appliedIndex);
    return machine;
  }

  /** A kind record from storage or a snapshot; checked against the counters (one kind per key). */
  private loadKind(key: Uint8Array, record: Uint8Array, markDirty: boolean, corrupt: (problem: string) => never): void {
    if (key.length < 1 || key.length > KEY_BYTES_MAX) corrupt(`kind key of ${key.length} bytes`);
    let entry: KindEntry;
    try {
      entry = decodeKindRecord(key, record);
    } catch (error) {
      return corrupt(`kind record of ${describeKey(key)}: ${(error as Error).message}`);
    }
    const isCounter = this.counterExists(key);
    if (entry.tag === KindTag.Ttl && !isCounter) corrupt(`TTL record of ${describeKey(key)} without its counter`);
    if (entry.tag !== KindTag.Ttl && isCounter) corrupt(`${describeKey(key)} is both a counter and a ${KIND_NAMES[entry.tag]}`);
    if (entry.version > this.appliedIndexValue)
      corrupt(`kind record of ${describeKey(key)} version ${entry.version} above applied ${this.appliedIndexValue}`);
    if (entry.tag !== KindTag.Ttl && this.counters.size + this.kinds.structured >= COUNTERS_MAX) corrupt(`more than ${COUNTERS_MAX} keys`);
    this.kinds.load(entry, this.appliedIndexValue, markDirty);
  }

  private loadCounter(key: Uint8Array, value: bigint, version: number, corrupt: (problem: string) => never): number {
    if (typeof value !== "bigint" || value < INT64_MIN || value > INT64_MAX) {
      corrupt(`counter ${describeKey(key)} value outside int64`);
    }
    if (!Number.isSafeInteger(version) || version < 1 || version > this.appliedIndexValue) {
      corrupt(`counter ${describeKey(key)} version ${version} outside [1, applied ${this.appliedIndexValue}]`);
    }
    if (this.counters.size >= COUNTERS_MAX) corrupt(`more than ${COUNTERS_MAX} counters`);
    const slot = this.counters.findOrInsert(key);
    if (this.counters.version(slot) !== 0) corrupt(`counter ${describeKey(key)} appears twice`);
    this.counters.write(slot, value, version);
    return slot;
  }

  /** A request id from storage or a snapshot, in apply order; damage is a CorruptionError. */
  private insertLoadedRequestId(record: RequestIdRecord, corrupt: (problem: string) => never): void {
    if (this.storageIdInUse(record.storageId)) corrupt(`storage id ${record.storageId} holds two records`);
    if (this.requestIds.get(record.owner, record.requestId) !== undefined)
      corrupt(`request id ${JSON.stringify(record.requestId)} appears twice`);
    if (record.index > this.appliedIndexValue) corrupt(`request id ${record.storageId} applied after the applied index`);
    if (record.appliedAtMs > this.clockMsValue) corrupt(`request id ${record.storageId} applied after the clock`);
    const newest = this.requestIds.latest();
    if (newest !== undefined) {
      if (!(newest.index < record.index || (newest.index === record.index && newest.ordinal < record.ordinal)))
        corrupt(`request id ${record.storageId} out of apply order`);
      if (newest.appliedAtMs > record.appliedAtMs) corrupt(`request id ${record.storageId} clock goes back`);
    }
    this.requestIds.insert(record);
  }

  private insertLoadedSession(session: Session, corrupt: (problem: string) => never): void {
    if (this.sessions.get(session.clientId) !== undefined) corrupt(`session ${session.clientId} appears twice`);
    if (session.touchIndex > this.appliedIndexValue) corrupt(`session ${session.clientId} active after applied index`);
    if (session.lastActiveMs > this.clockMsValue) corrupt(`session ${session.clientId} active after the clock`);
    // Checked here so that damage is a CorruptionError; SessionTable.insert asserts the same.
    const last = this.sessions.latest();
    if (last !== undefined) {
      const ordered =
        last.touchIndex < session.touchIndex || (last.touchIndex === session.touchIndex && last.touchOrdinal < session.touchOrdinal);
      if (!ordered) corrupt(`session ${session.clientId} out of activity order`);
      if (last.lastActiveMs > session.lastActiveMs) corrupt(`session ${session.clientId} activity clock goes back`);
    }
    this.sessions.insert(session);
  }
}

type KindOp = Extract<CounterOp, { kind: "window" | "acquire" | "unique" }>;

function newStructure(tag: KindTag): WindowedCounter | SlidingWindowLimiter | HyperLogLog {
  switch (tag) {
    case KindTag.Window:
      return new WindowedCounter();
    case KindTag.Limit:
      return new SlidingWindowLimiter();
    case KindTag.Unique:
      return new HyperLogLog();
    default:
      return assert(false, `no structure for kind tag ${tag}`) as never;
  }
}

/** Answers reads of a windowed key that does not exist (never written: reads do not mutate). */
const EMPTY_WINDOW = new WindowedCounter();

function failure(code: ErrorCode, message: string): CommandFailure {
  return { ok: false, code, message };
}

function opFailure(code: ErrorCode, opIndex: number, op: CounterOp, problem: string): CommandFailure {
  return { ok: false, code, message: `ops[${opIndex}] (${op.kind}) on key ${describeKey(op.key)}: ${problem}`, opIndex };
}

const COUNTER_RECORD_BYTES = 16;

/** A counter as stored under its `C|shard|key` key: i64 value, u64 version, big-endian, 16 bytes. */
export function encodeCounterRecord(record: OpResult): Uint8Array {
  // Written in place rather than through ByteWriter: one record per changed counter per entry is
  // the hottest encode on the apply path. Same bytes as ByteWriter.i64 + u64 (the edge cases are
  // in test/unit/shard-commands.test.ts and bench/wire-codec.ts checks equality).
  const { value, version } = record;
  assert(value >= INT64_MIN && value <= INT64_MAX, "counter value out of int64 range");
  assert(Number.isSafeInteger(version) && version >= 1, "counter version must be a positive safe integer");
  const bytes = new Uint8Array(COUNTER_RECORD_BYTES);
  if (value >= SAFE_INTEGER_MIN && value <= SAFE_INTEGER_MAX) {
    // Exact in a double: split into the high (signed) and low (unsigned) 32-bit words, which is
    // the two's-complement layout, without a DataView or any bigint arithmetic.
    const number = Number(value);
    const high = Math.floor(number / TWO_POW_32);
    writeU32(bytes, 0, high >>> 0);
    writeU32(bytes, 4, number - high * TWO_POW_32);
  } else {
    new DataView(bytes.buffer).setBigInt64(0, value);
  }
  writeU32(bytes, 8, Math.floor(version / TWO_POW_32));
  writeU32(bytes, 12, version % TWO_POW_32);
  return bytes;
}

const TWO_POW_32 = 0x1_0000_0000;
const SAFE_INTEGER_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_INTEGER_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** Big-endian u32; `word` is an integer in [0, 2^32). */
function writeU32(bytes: Uint8Array, offset: number, word: number): void {
  bytes[offset] = word >>> 24;
  bytes[offset + 1] = (word >>> 16) & 0xff;
  bytes[offset + 2] = (word >>> 8) & 0xff;
  bytes[offset + 3] = word & 0xff;
}

export function decodeCounterRecord(bytes: Uint8Array): OpResult {
  if (bytes.length !== 16) throw new CorruptionError(`counter record is ${bytes.length} bytes; expected 16`);
  const reader = new ByteReader(bytes, "counter record");
  const value = reader.i64();
  const version = reader.u64();
  if (version < 1) reader.fail("counter version 0");
  return { value, version };
}
