/**
 * Client sessions for exactly-once mutations (Raft thesis section 6.3, "Implementing linearizable
 * semantics").
 *
 * Each session remembers the outcome of every seq the client has not yet acknowledged, so a retry
 * returns the saved outcome instead of applying twice. Sessions expire by the state machine's
 * clock, which only moves with leader-stamped entry timestamps, so every replica expires the same
 * sessions at the same log position (thesis 6.3: "sessions must expire deterministically").
 *
 * The table is kept in least-recently-active order: a touched session moves to the end of the
 * Map. Activity stamps are (entry index, command position) and only grow, and the clock never
 * goes back, so the front is always the session idle longest: expiry and eviction are O(1) per
 * removed session, no scan.
 *
 * Invariant: iteration order of `sessions` is ascending (touchIndex, touchOrdinal), and therefore
 * non-decreasing lastActiveMs.
 *
 * A session belongs to the caller that registered it (`owner`, the authenticated principal's name;
 * "" on a cluster without auth): the state machine refuses every command of another caller before
 * it touches the session, so nobody can read another caller's retained results or burn its seqs.
 * Each retained outcome keeps a digest of the request that produced it: a retry must be the same
 * request, so a reused seq with another payload is refused instead of answered with the old result.
 */
import { assert } from "../util/assert.js";
import type { ErrorCode } from "../util/errors.js";
import { NATIVE_LITTLE_ENDIAN } from "../util/int64.js";
import { ByteReader, ByteWriter } from "./binary.js";
import type { CommandFailure, CommandResult, OpResult } from "./commands.js";

export interface Session {
  readonly clientId: number;
  /** The principal that registered the session ("" without auth); only it may use the session. */
  readonly owner: string;
  /** State-machine clock at the session's last command. */
  lastActiveMs: number;
  /** Log index and command position of the last command: the canonical LRU order. */
  touchIndex: number;
  touchOrdinal: number;
  /**
   * Highest firstUnackedSeq the client sent: it holds replies for every seq below, so their
   * results are forgotten and those seqs are refused from then on.
   */
  firstUnackedSeq: number;
  /**
   * Retained outcomes (encoded, success or failure), ascending by seq, all >= firstUnackedSeq:
   * retainedSeqs[i] is the seq of retainedOutcomes[i]. Sorted arrays rather than a Map: a session
   * usually retains a handful, seqs mostly arrive in order (append), and acknowledgement drops a
   * prefix; this was several times cheaper than Map iteration on the apply path.
   */
  readonly retainedSeqs: number[];
  readonly retainedOutcomes: Uint8Array[];
  /** requestDigest of the mutate behind each retained outcome; DIGEST_UNKNOWN for state loaded from format 1. */
  readonly retainedDigests: number[];
}

/** A retained outcome loaded from a record written before digests were kept: its retry is not checked. */
export const DIGEST_UNKNOWN = -1;

export function newSession(clientId: number, owner: string, clockMs: number, index: number, ordinal: number): Session {
  return {
    clientId,
    owner,
    lastActiveMs: clockMs,
    touchIndex: index,
    touchOrdinal: ordinal,
    firstUnackedSeq: 0,
    retainedSeqs: [],
    retainedOutcomes: [],
    retainedDigests: [],
  };
}

/** Position of the first retained seq >= seq (binary search). */
function lowerBound(seqs: number[], seq: number): number {
  let low = 0;
  let high = seqs.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (seqs[middle]! < seq) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Where seq's outcome is retained, or -1. */
export function retainedPosition(session: Session, seq: number): number {
  const seqs = session.retainedSeqs;
  // Fast path: the newest seq (a retry of the last request) or nothing retained.
  const last = seqs.length - 1;
  if (last < 0) return -1;
  if (seqs[last] === seq) return last;
  const position = lowerBound(seqs, seq);
  return seqs[position] === seq ? position : -1;
}

export function retainOutcome(session: Session, seq: number, digest: number, outcome: Uint8Array): void {
  assert(seq >= session.firstUnackedSeq, "retaining an acknowledged seq");
  assert(Number.isInteger(digest) && digest >= 0 && digest <= 0xffff_ffff, "request digest must be a u32");
  const seqs = session.retainedSeqs;
  if (seqs.length === 0 || seqs[seqs.length - 1]! < seq) {
    seqs.push(seq);
    session.retainedOutcomes.push(outcome);
    session.retainedDigests.push(digest);
    return;
  }
  const position = lowerBound(seqs, seq);
  assert(seqs[position] !== seq, "seq retained twice");
  seqs.splice(position, 0, seq);
  session.retainedOutcomes.splice(position, 0, outcome);
  session.retainedDigests.splice(position, 0, digest);
}

/** Thesis 6.3: the client holds replies below firstUnackedSeq; forget them. Monotonic. */
export function acknowledgeBelow(session: Session, firstUnackedSeq: number): void {
  if (firstUnackedSeq <= session.firstUnackedSeq) return;
  session.firstUnackedSeq = firstUnackedSeq;
  const seqs = session.retainedSeqs;
  if (seqs.length === 0 || seqs[0]! >= firstUnackedSeq) return;
  const count = lowerBound(seqs, firstUnackedSeq);
  dropPrefix(seqs, count);
  dropPrefix(session.retainedOutcomes, count);
  dropPrefix(session.retainedDigests, count);
}

/** array.splice(0, count) without allocating the removed items (pop is inlined; length= is not). */
function dropPrefix<T>(array: T[], count: number): void {
  const kept = array.length - count;
  for (let i = 0; i < kept; i++) array[i] = array[i + count]!;
  for (let i = 0; i < count; i++) array.pop();
}

/** The outcome of a mutate as retained in a session. */
export type MutateOutcome = Extract<CommandResult, { type: "mutate" }> | CommandFailure;

export class SessionTable {
  private readonly sessions = new Map<number, Session>();
  /** Sessions per owner (per-caller quotas); owners with none are absent. */
  private readonly perOwner = new Map<string, number>();
  /** The most recently active session (Map has no O(1) last()). */
  private newest: Session | undefined;

  get size(): number {
    return this.sessions.size;
  }

  get(clientId: number): Session | undefined {
    return this.sessions.get(clientId);
  }

  /** How many sessions `owner` holds. */
  countOf(owner: string): number {
    return this.perOwner.get(owner) ?? 0;
  }

  /** Adds a new session, or re-adds one loaded (records, snapshot, image) in canonical order. */
  insert(session: Session): void {
    assert(!this.sessions.has(session.clientId), "session already exists");
    const newest = this.newest;
    if (newest !== undefined) {
      assert(compareTouch(newest, session) < 0, "session inserted out of activity order");
      assert(newest.lastActiveMs <= session.lastActiveMs, "session activity clock went backwards");
    }
    this.sessions.set(session.clientId, session);
    this.perOwner.set(session.owner, this.countOf(session.owner) + 1);
    this.newest = session;
  }

  /** Records activity and moves the session to the most recently active end. */
  touch(session: Session, clockMs: number, index: number, ordinal: number): void {
    assert(this.sessions.get(session.clientId) === session, "touch of an unknown session");
    assert(clockMs >= session.lastActiveMs, "session activity clock went backwards");
    assert(
      session.touchIndex < index || (session.touchIndex === index && session.touchOrdinal < ordinal),
      "session touched at an older log position",
    );
    this.sessions.delete(session.clientId);
    session.lastActiveMs = clockMs;
    session.touchIndex = index;
    session.touchOrdinal = ordinal;
    if (this.newest === session) {
      this.sessions.set(session.clientId, session);
    } else {
      this.perOwner.set(session.owner, this.countOf(session.owner) - 1);
      this.insert(session);
    }
  }

  /** The most recently active session, if any. */
  latest(): Session | undefined {
    return this.newest;
  }

  /** The session idle longest, if any. */
  oldest(): Session | undefined {
    for (const session of this.sessions.values()) return session;
    return undefined;
  }

  removeOldest(): Session | undefined {
    const oldest = this.oldest();
    if (oldest !== undefined) this.remove(oldest.clientId);
    return oldest;
  }

  /**
   * Removes sessions idle for more than timeoutMs at clockMs, oldest first, reporting each to
   * onExpired if given. Stops at the first live session: the order invariant makes every later one
   * live too.
   */
  expire(clockMs: number, timeoutMs: number, onExpired?: (clientId: number) => void): void {
    for (;;) {
      const oldest = this.oldest();
      if (oldest === undefined || clockMs - oldest.lastActiveMs <= timeoutMs) return;
      this.remove(oldest.clientId);
      onExpired?.(oldest.clientId);
    }
  }

  /** Sessions in canonical order: least recently active first. */
  values(): IterableIterator<Session> {
    return this.sessions.values();
  }

  private remove(clientId: number): void {
    const session = this.sessions.get(clientId);
    assert(session !== undefined, "remove of an unknown session");
    this.sessions.delete(clientId);
    const left = this.countOf(session.owner) - 1;
    if (left === 0) this.perOwner.delete(session.owner);
    else this.perOwner.set(session.owner, left);
    // Only the oldest sessions are ever removed, so the newest changes only when the table empties.
    if (this.sessions.size === 0) this.newest = undefined;
    else assert(this.newest?.clientId !== clientId, "removed the newest session of a non-empty table");
  }
}

type TouchStamp = Pick<Session, "touchIndex" | "touchOrdinal">;

function compareTouch(a: TouchStamp, b: TouchStamp): number {
  if (a.touchIndex !== b.touchIndex) return a.touchIndex - b.touchIndex;
  return a.touchOrdinal - b.touchOrdinal;
}

const OUTCOME_OK = 1;
const OUTCOME_FAILED = 2;
/** OK with kind results: each result is i64 value, u64 version, u8 flags, then the flagged fields. */
const OUTCOME_OK_KINDS = 3;
const RESULT_HAS_EVENT_TIME = 1;
const RESULT_HAS_ACQUIRE = 2;
const FAILURE_HAS_OP_INDEX = 1;
const FAILURE_HAS_CURRENT_VERSION = 2;
/** 2: format 1 plus the owner and a request digest per retained outcome. */
const SESSION_RECORD_FORMAT = 2;
const SESSION_RECORD_FORMAT_UNBOUND = 1;

function hasKindFields(result: OpResult): boolean {
  return result.eventTimeMs !== undefined || result.allowed !== undefined;
}

function writeOutcome(writer: ByteWriter, outcome: MutateOutcome): void {
  if (outcome.ok && outcome.results.some(hasKindFields)) {
    writer.u8(OUTCOME_OK_KINDS);
    writer.u32(outcome.results.length);
    for (const result of outcome.results) {
      writer.i64(result.value);
      writer.u64(result.version);
      const flags =
        (result.eventTimeMs !== undefined ? RESULT_HAS_EVENT_TIME : 0) | (result.allowed !== undefined ? RESULT_HAS_ACQUIRE : 0);
      writer.u8(flags);
      if (result.eventTimeMs !== undefined) writer.u64(result.eventTimeMs);
      if (result.allowed !== undefined) {
        writer.u8(result.allowed ? 1 : 0);
        writer.u64(result.retryAfterMs ?? 0);
      }
    }
    return;
  }
  if (outcome.ok) {
    writer.u8(OUTCOME_OK);
    writer.u32(outcome.results.length);
    for (const result of outcome.results) {
      writer.i64(result.value);
      writer.u64(result.version);
    }
    return;
  }
  writer.u8(OUTCOME_FAILED);
  writer.string16(outcome.code);
  writer.string16(outcome.message);
  let flags = 0;
  if (outcome.opIndex !== undefined) flags |= FAILURE_HAS_OP_INDEX;
  if (outcome.currentVersion !== undefined) flags |= FAILURE_HAS_CURRENT_VERSION;
  writer.u8(flags);
  if (outcome.opIndex !== undefined) writer.u32(outcome.opIndex);
  if (outcome.currentVersion !== undefined) writer.u64(outcome.currentVersion);
}

/** Reused across calls (apply is synchronous): allocating a writer per mutate dominated apply cost. */
const outcomeWriter = new ByteWriter(4096);
const int64Scratch = new DataView(new ArrayBuffer(8));

/** The outcome of one mutate, as a session retains it (compact: 16 bytes per op result). */
export function encodeOutcome(outcome: MutateOutcome): Uint8Array {
  if (outcome.ok && outcome.packedValues !== undefined) return encodePackedOutcome(outcome.packedValues, outcome.packedVersion!);
  if (outcome.ok && outcome.results.length === 1 && !hasKindFields(outcome.results[0]!)) return encodeSingleResult(outcome.results[0]!);
  outcomeWriter.reset();
  writeOutcome(outcomeWriter, outcome);
  return outcomeWriter.finish();
}

/** A packed mutate's outcome (mutation.ts mutatePacked) from its values: same bytes as writeOutcome, no bigint read per op. */
function encodePackedOutcome(values: BigInt64Array, version: number): Uint8Array {
  assert(Number.isSafeInteger(version) && version >= 0, "op result version must be a safe integer");
  const count = values.length;
  const out = new Uint8Array(5 + count * 16);
  const view = new DataView(out.buffer);
  out[0] = OUTCOME_OK;
  view.setUint32(1, count);
  const words = new Uint32Array(values.buffer, values.byteOffset, count * 2);
  const [low, high] = NATIVE_LITTLE_ENDIAN ? [0, 1] : [1, 0];
  const versionHigh = Math.floor(version / 0x1_0000_0000);
  const versionLow = version >>> 0;
  for (let i = 0, at = 5; i < count; i++, at += 16) {
    view.setUint32(at, words[i * 2 + high]!);
    view.setUint32(at + 4, words[i * 2 + low]!);
    view.setUint32(at + 8, versionHigh);
    view.setUint32(at + 12, versionLow);
  }
  return out;
}

/** The common case (a one-op mutate) without the writer: same bytes as writeOutcome. */
function encodeSingleResult(result: OpResult): Uint8Array {
  assert(Number.isSafeInteger(result.version) && result.version >= 0, "op result version must be a safe integer");
  const out = new Uint8Array(21);
  out[0] = OUTCOME_OK;
  out[4] = 1; // u32 count = 1
  int64Scratch.setBigInt64(0, result.value); // throws on a value outside int64
  putUint32(out, 5, int64Scratch.getUint32(0));
  putUint32(out, 9, int64Scratch.getUint32(4));
  putUint32(out, 13, Math.floor(result.version / 0x1_0000_0000));
  putUint32(out, 17, result.version % 0x1_0000_0000);
  return out;
}

function putUint32(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value >>> 24;
  out[offset + 1] = (value >>> 16) & 0xff;
  out[offset + 2] = (value >>> 8) & 0xff;
  out[offset + 3] = value & 0xff;
}

/** Decodes a retained outcome and marks it as a duplicate (that is the only reason to read one). */
export function decodeOutcome(bytes: Uint8Array): MutateOutcome {
  const reader = new ByteReader(bytes, "retained mutate result");
  const tag = reader.u8();
  let outcome: MutateOutcome;
  if (tag === OUTCOME_OK) {
    const count = reader.u32();
    // 16 bytes per op result: a corrupt count fails here instead of allocating.
    if (count * 16 > reader.remaining) reader.fail(`bad result count ${count}`);
    const results: OpResult[] = new Array(count);
    for (let i = 0; i < count; i++) results[i] = { value: reader.i64(), version: reader.u64() };
    outcome = { ok: true, type: "mutate", results, duplicate: true };
  } else if (tag === OUTCOME_OK_KINDS) {
    const count = reader.u32();
    if (count * 17 > reader.remaining) reader.fail(`bad result count ${count}`);
    const results: OpResult[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const result: OpResult = { value: reader.i64(), version: reader.u64() };
      const flags = reader.u8();
      if ((flags & ~(RESULT_HAS_EVENT_TIME | RESULT_HAS_ACQUIRE)) !== 0) reader.fail(`bad result flags ${flags}`);
      if (flags & RESULT_HAS_EVENT_TIME) result.eventTimeMs = reader.u64();
      if (flags & RESULT_HAS_ACQUIRE) {
        const allowed = reader.u8();
        if (allowed > 1) reader.fail(`bad allowed flag ${allowed}`);
        result.allowed = allowed === 1;
        result.retryAfterMs = reader.u64();
      }
      results[i] = result;
    }
    outcome = { ok: true, type: "mutate", results, duplicate: true };
  } else if (tag === OUTCOME_FAILED) {
    const code = reader.string16() as ErrorCode;
    if (!/^[A-Z_]{1,32}$/.test(code)) reader.fail(`bad error code ${JSON.stringify(code)}`);
    const message = reader.string16();
    const flags = reader.u8();
    if ((flags & ~(FAILURE_HAS_OP_INDEX | FAILURE_HAS_CURRENT_VERSION)) !== 0) reader.fail(`bad flags ${flags}`);
    const failure: CommandFailure = { ok: false, code, message };
    if (flags & FAILURE_HAS_OP_INDEX) failure.opIndex = reader.u32();
    if (flags & FAILURE_HAS_CURRENT_VERSION) failure.currentVersion = reader.u64();
    failure.duplicate = true;
    outcome = failure;
  } else {
    return reader.fail(`unknown outcome tag ${tag}`);
  }
  reader.expectEnd();
  return outcome;
}

/**
 * Writes a session (the current layout, with owner and digests); shared by the session record
 * (record form), the snapshot (format 3) and the shard image.
 */
export function writeSession(writer: ByteWriter, session: Session): void {
  writer.u64(session.clientId);
  writer.u64(session.lastActiveMs);
  writer.u64(session.touchIndex);
  writer.u32(session.touchOrdinal);
  writer.u64(session.firstUnackedSeq);
  writer.string16(session.owner);
  const seqs = session.retainedSeqs;
  writer.u32(seqs.length);
  for (let i = 0; i < seqs.length; i++) {
    const outcome = session.retainedOutcomes[i]!;
    const digest = session.retainedDigests[i]!;
    writer.u64(seqs[i]!);
    // u8 0: no digest (loaded from format 1); 1: the u32 digest follows.
    if (digest === DIGEST_UNKNOWN) {
      writer.u8(0);
    } else {
      writer.u8(1);
      writer.u32(digest);
    }
    writer.u32(outcome.length);
    writer.raw(outcome);
  }
}

/** Reads a session written by writeSession; `bound` false reads the format-1 layout (no owner, no digests). */
export function readSession(reader: ByteReader, bound = true): Session {
  const clientId = reader.u64();
  const lastActiveMs = reader.u64();
  const touchIndex = reader.u64();
  const touchOrdinal = reader.u32();
  const firstUnackedSeq = reader.u64();
  if (clientId < 1) reader.fail("session client id 0");
  if (touchIndex < 1) reader.fail(`session ${clientId} touch index 0`);
  const owner = bound ? reader.string16() : "";
  const count = reader.u32();
  // Each retained result takes at least 13 bytes (seq, length, tag): a corrupt count fails here
  // instead of driving a huge loop. (No check against maxRetainedResultsPerSession: a restart may
  // lower that bound, and records written under the old one must still load.)
  if (count * 13 > reader.remaining) reader.fail(`session ${clientId} claims ${count} retained results`);
  const retainedSeqs: number[] = [];
  const retainedOutcomes: Uint8Array[] = [];
  const retainedDigests: number[] = [];
  let previousSeq = 0;
  for (let i = 0; i < count; i++) {
    const seq = reader.u64();
    if (seq <= previousSeq) reader.fail(`session ${clientId} results not in ascending seq order`);
    if (seq < firstUnackedSeq) reader.fail(`session ${clientId} retains acknowledged seq ${seq}`);
    previousSeq = seq;
    let digest = DIGEST_UNKNOWN;
    if (bound) {
      const hasDigest = reader.u8();
      if (hasDigest > 1) reader.fail(`session ${clientId} bad digest flag ${hasDigest}`);
      if (hasDigest === 1) digest = reader.u32();
    }
    retainedDigests.push(digest);
    const length = reader.u32();
    const outcome = reader.raw(length);
    decodeOutcome(outcome); // validates; throws CorruptionError
    retainedSeqs.push(seq);
    retainedOutcomes.push(outcome);
  }
  return { clientId, owner, lastActiveMs, touchIndex, touchOrdinal, firstUnackedSeq, retainedSeqs, retainedOutcomes, retainedDigests };
}

const sessionWriter = new ByteWriter(4096);

/** The value stored for a session under its `S|shard|client` key. */
export function encodeSessionRecord(session: Session): Uint8Array {
  sessionWriter.reset();
  sessionWriter.u8(SESSION_RECORD_FORMAT);
  writeSession(sessionWriter, session);
  return sessionWriter.finish();
}

export function decodeSessionRecord(bytes: Uint8Array): Session {
  const reader = new ByteReader(bytes, "session record");
  const format = reader.u8();
  if (format !== SESSION_RECORD_FORMAT && format !== SESSION_RECORD_FORMAT_UNBOUND) reader.fail(`unknown session record format ${format}`);
  const session = readSession(reader, format === SESSION_RECORD_FORMAT);
  reader.expectEnd();
  return session;
}
