/**
 * A shard's state as storage records: the changes since the last call, which the apply path
 * writes in the same batch as the applied index (takeChanges), every record of the state
 * (exportRecords), and the bytes of a counter record. The records' keys are in
 * src/storage/keys.ts; a session slot holds a session (sessions.ts encodeSessionRecord) or a
 * request id (request-ids.ts encodeRequestIdRecord); a kind record is kind-table.ts
 * encodeKindRecord. shard-load.ts reads them back.
 */
import { assert } from "../util/assert.js";
import { CorruptionError } from "../util/errors.js";
import { INT64_MAX, INT64_MIN } from "../util/int64.js";
import { ByteReader } from "./binary.js";
import type { OpResult } from "./commands.js";
import { SLOT_DIRTY } from "./counter-table.js";
import { encodeKindRecord } from "./kind-table.js";
import { encodeRequestIdRecord } from "./request-ids.js";
import { encodeSessionRecord } from "./sessions.js";
import type { ShardState } from "./shard-state.js";

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

/** Changes since the last call, to write in the same storage batch as the applied index. */
export function takeChanges(state: ShardState): ShardChanges {
  // Deletions first: a key deleted and then created again in the same period appears twice, and
  // applying the list in order leaves the right final state.
  const counters: Array<[Uint8Array, OpResult | undefined]> = state.deletedKeys.map((key) => [key, undefined]);
  const table = state.counters;
  for (const slot of state.dirtySlots) {
    if (!table.isOccupied(slot) || !table.clearFlag(slot, SLOT_DIRTY)) continue;
    counters.push([table.keyBytes(slot), { value: table.value(slot), version: table.version(slot) }]);
  }
  // Sessions and request ids share storage ids over time (an id freed by one may be taken by the
  // other), so each dirty id is reported once, with what holds it now.
  const sessions: Array<[number, Uint8Array | undefined]> = [];
  for (const id of state.dirtyRequestIds) state.dirtySessions.add(id);
  for (const id of state.dirtySessions) sessions.push([id, storageRecord(state, id)]);
  state.dirtySlots = [];
  state.deletedKeys = [];
  state.dirtySessions.clear();
  state.dirtyRequestIds.clear();
  return { counters, sessions, kinds: state.kinds.takeChanges() };
}

/** The record stored under a session/request-id storage id now, or undefined if none. */
function storageRecord(state: ShardState, id: number): Uint8Array | undefined {
  const session = state.sessions.get(id);
  if (session !== undefined) return encodeSessionRecord(session);
  const record = state.requestIds.byStorageId(id);
  return record === undefined ? undefined : encodeRequestIdRecord(record);
}

/** Every record of the current state, in load() form (for tests and tools). Lazy; do not apply while iterating. */
export function exportRecords(state: ShardState): {
  counters: Iterable<[Uint8Array, OpResult]>;
  sessions: Iterable<[number, Uint8Array]>;
  kinds: Iterable<[Uint8Array, Uint8Array]>;
} {
  const table = state.counters;
  const sessions = state.sessions;
  const requestIds = state.requestIds;
  const kinds = state.kinds;
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
