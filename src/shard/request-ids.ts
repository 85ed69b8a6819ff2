/**
 * Request ids: exactly-once writes for callers that keep no session (proto RequestHeader.request_id).
 *
 * A write names itself with a client-chosen id; the shard remembers, per caller (the authenticated
 * owner, "" without auth), each id it applied with a digest of its ops and its outcome. A retry of
 * the id returns the saved outcome instead of applying again; a reuse with other ops is refused.
 * Like sessions (sessions.ts) the table is replicated state: every replica applies the same
 * writes and expires the same ids at the same log position, because time is the state machine's
 * clock (leader-stamped entry timestamps), never a replica's own.
 *
 * Retention (docs/protocol.md): an id is remembered for at least `retentionMs` of that clock after
 * the write applied. The count bounds never shorten that: a caller already holding `perCallerMax`
 * ids (or a shard holding `totalMax`) is refused a new one with OVERLOADED and the time until its
 * oldest id expires, and nothing is applied. So the time bound wins: no id is forgotten early,
 * and the count bounds cap the rate of id'd writes instead (perCallerMax / retentionMs).
 *
 * The table is kept in apply order (log index, command position): the clock never goes back, so
 * the front is always the oldest id and expiry is O(1) per removed id, no scan. Invariant: the
 * iteration order of `records` is ascending (index, ordinal), hence non-decreasing appliedAtMs,
 * and each owner's map is the same order restricted to that owner.
 *
 * Persistence: the table is part of the shard's state, so checkpoints (shard images), snapshots,
 * splits (a child inherits its parent's records as it does sessions), backup and restore carry it
 * unchanged. In record form (exportRecords, load) a record shares the session records' id space
 * under its own storageId; its first byte (REQUEST_ID_RECORD_FORMAT) tells it from a session
 * record (formats 1 and 2).
 */
import { assert } from "../util/assert.js";
import { ByteReader, ByteWriter } from "./binary.js";
import { requestIdProblem } from "./commands.js";
import { decodeOutcome } from "./sessions.js";

export interface RequestIdOptions {
  /** An id is remembered at least this long (state-machine clock) after its write applied. */
  retentionMs: number;
  /** Ids one named caller may hold on a shard; beyond it a new id is OVERLOADED. Not applied to the anonymous owner "". */
  perCallerMax: number;
  /** Ids a shard holds in all; beyond it a new id is OVERLOADED. */
  totalMax: number;
}

/**
 * Defaults: 2 minutes covers a client's retries after a timeout with room to spare; 50,000 per
 * caller and 100,000 per shard (~300 bytes each in memory) allow ~400 id'd writes/s per caller and
 * ~800/s per shard sustained. A batch of up to 10,000 ops takes one id.
 */
export const DEFAULT_REQUEST_ID_OPTIONS: Readonly<RequestIdOptions> = Object.freeze({
  retentionMs: 120_000,
  perCallerMax: 50_000,
  totalMax: 100_000,
});

export interface RequestIdRecord {
  /** Its key among the shard's session records: unique among live sessions and request ids. */
  readonly storageId: number;
  readonly owner: string;
  readonly requestId: string;
  /** State-machine clock when the write applied; remembered until appliedAtMs + retentionMs. */
  readonly appliedAtMs: number;
  /** Log index and command position of the write: the canonical order. */
  readonly index: number;
  readonly ordinal: number;
  /** requestDigest of the write's ops. */
  readonly digest: number;
  /** encodeOutcome of what the write returned (sessions.ts). */
  readonly outcome: Uint8Array;
}

export class RequestIdTable {
  /** Every record by storage id, in apply order (the front is the oldest). */
  private readonly records = new Map<number, RequestIdRecord>();
  /** Owner -> request id -> record, each in apply order; owners with none are absent. */
  private readonly perOwner = new Map<string, Map<string, RequestIdRecord>>();
  private newest: RequestIdRecord | undefined;

  get size(): number {
    return this.records.size;
  }

  get(owner: string, requestId: string): RequestIdRecord | undefined {
    return this.perOwner.get(owner)?.get(requestId);
  }

  hasStorageId(storageId: number): boolean {
    return this.records.has(storageId);
  }

  byStorageId(storageId: number): RequestIdRecord | undefined {
    return this.records.get(storageId);
  }

  countOf(owner: string): number {
    return this.perOwner.get(owner)?.size ?? 0;
  }

  /** The most recently applied record, if any. */
  latest(): RequestIdRecord | undefined {
    return this.newest;
  }

  /** The oldest record of `owner`, or of the whole table when owner is undefined. */
  oldest(owner?: string): RequestIdRecord | undefined {
    const records = owner === undefined ? this.records : this.perOwner.get(owner);
    if (records === undefined) return undefined;
    for (const record of records.values()) return record;
    return undefined;
  }

  /** Adds a record applied after every record in the table (or loaded in apply order). */
  insert(record: RequestIdRecord): void {
    assert(!this.records.has(record.storageId), "request id storage id already in use");
    assert(this.get(record.owner, record.requestId) === undefined, "request id inserted twice");
    const newest = this.newest;
    if (newest !== undefined) {
      assert(
        newest.index < record.index || (newest.index === record.index && newest.ordinal < record.ordinal),
        "request id inserted out of apply order",
      );
      assert(newest.appliedAtMs <= record.appliedAtMs, "request id clock went backwards");
    }
    this.records.set(record.storageId, record);
    let owned = this.perOwner.get(record.owner);
    if (owned === undefined) {
      owned = new Map();
      this.perOwner.set(record.owner, owned);
    }
    owned.set(record.requestId, record);
    this.newest = record;
  }

  /**
   * Removes the ids remembered for longer than retentionMs at clockMs, oldest first, reporting
   * each storage id to onExpired if given. Stops at the first live one: the order invariant makes
   * every later one live.
   */
  expire(clockMs: number, retentionMs: number, onExpired?: (storageId: number) => void): void {
    for (;;) {
      const oldest = this.oldest();
      if (oldest === undefined || clockMs - oldest.appliedAtMs <= retentionMs) return;
      this.records.delete(oldest.storageId);
      const owned = this.perOwner.get(oldest.owner)!;
      owned.delete(oldest.requestId);
      if (owned.size === 0) this.perOwner.delete(oldest.owner);
      if (this.records.size === 0) this.newest = undefined;
      onExpired?.(oldest.storageId);
    }
  }

  /** Records in apply order, oldest first. */
  values(): IterableIterator<RequestIdRecord> {
    return this.records.values();
  }
}

/** The first byte of a request-id record ('R'); session records start with their format, 1 or 2. */
export const REQUEST_ID_RECORD_FORMAT = 0x52;

/** True when a record of the shard's session slots holds a request id rather than a session. */
export function isRequestIdRecord(bytes: Uint8Array): boolean {
  return bytes.length > 0 && bytes[0] === REQUEST_ID_RECORD_FORMAT;
}

/** Writes a record (no format byte); shared by the record form, the snapshot (format 4) and the shard image. */
export function writeRequestId(writer: ByteWriter, record: RequestIdRecord): void {
  writer.u64(record.storageId);
  writer.u64(record.appliedAtMs);
  writer.u64(record.index);
  writer.u32(record.ordinal);
  writer.u32(record.digest);
  writer.string16(record.owner);
  writer.string16(record.requestId);
  writer.u32(record.outcome.length);
  writer.raw(record.outcome);
}

/** Reads what writeRequestId wrote; throws CorruptionError on damage. */
export function readRequestId(reader: ByteReader): RequestIdRecord {
  const storageId = reader.u64();
  const appliedAtMs = reader.u64();
  const index = reader.u64();
  const ordinal = reader.u32();
  const digest = reader.u32();
  const owner = reader.string16();
  const requestId = reader.string16();
  if (storageId < 1) reader.fail("request id record with storage id 0");
  if (index < 1) reader.fail(`request id record ${storageId} at index 0`);
  const problem = requestIdProblem(requestId);
  if (problem !== undefined) reader.fail(`request id record ${storageId}: request id ${problem}`);
  const outcome = reader.raw(reader.u32());
  decodeOutcome(outcome); // validates; throws CorruptionError
  return { storageId, owner, requestId, appliedAtMs, index, ordinal, digest, outcome };
}

const recordWriter = new ByteWriter(512);

/** The value stored for a request id under its session slot `S|shard|storageId`. */
export function encodeRequestIdRecord(record: RequestIdRecord): Uint8Array {
  recordWriter.reset();
  recordWriter.u8(REQUEST_ID_RECORD_FORMAT);
  writeRequestId(recordWriter, record);
  return recordWriter.finish();
}

export function decodeRequestIdRecord(bytes: Uint8Array): RequestIdRecord {
  const reader = new ByteReader(bytes, "request id record");
  const format = reader.u8();
  if (format !== REQUEST_ID_RECORD_FORMAT) reader.fail(`not a request id record (format ${format})`);
  const record = readRequestId(reader);
  reader.expectEnd();
  return record;
}
