/**
 * A shard's whole state as snapshot bytes: the writer (format 4) and the reader of formats 1 to
 * 4. Deterministic: every replica at the same applied index writes the same bytes. The reader
 * checks each record as it goes in (shard-load.ts) and throws CorruptionError on any damage.
 */
import { ByteReader, ByteWriter } from "./binary.js";
import { ChangeLog } from "./change-log.js";
import { encodeKindRecord } from "./kind-table.js";
import { compareBytes } from "../kinds/codec.js";
import { readRequestId, writeRequestId } from "./request-ids.js";
import { readSession, writeSession } from "./sessions.js";
import { insertLoadedRequestId, insertLoadedSession, KEY_BYTES_MAX, loadCounter, loadKind } from "./shard-load.js";
import type { ShardState } from "./shard-state.js";

const SNAPSHOT_MAGIC = 0x544c5953; // "TLYS"
/** 4: format 3 plus the request-id table (request-ids.ts writeRequestId). restore() reads 1-4. */
const SNAPSHOT_FORMAT = 4;
/** 3: format 2 with each session's owner and request digests (sessions.ts writeSession). */
const SNAPSHOT_FORMAT_NO_REQUEST_IDS = 3;
const SNAPSHOT_FORMAT_UNBOUND_SESSIONS = 2;
const SNAPSHOT_FORMAT_COUNTERS_ONLY = 1;

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
export function writeSnapshot(state: ShardState): Uint8Array {
  const writer = new ByteWriter(64 + state.counters.size * 48);
  writer.u32(SNAPSHOT_MAGIC);
  writer.u16(SNAPSHOT_FORMAT);
  writer.u64(state.appliedIndex);
  writer.u64(state.clockMs);
  writer.u32(state.counters.size);
  const table = state.counters;
  const slots = table.sortedSlots();
  writer.writeWith(table.snapshotRowsBytes(), (bytes, position) => table.writeSnapshotRows(slots, bytes, position));
  writer.u32(state.sessions.size);
  for (const session of state.sessions.values()) writeSession(writer, session);
  const kinds = state.kinds.sorted();
  writer.u32(kinds.length);
  for (const entry of kinds) {
    const record = encodeKindRecord(entry);
    writer.u16(entry.key.length);
    writer.raw(entry.key);
    writer.u32(record.length);
    writer.raw(record);
  }
  writer.u32(state.requestIds.size);
  for (const record of state.requestIds.values()) writeRequestId(writer, record);
  writer.crc32Trailer();
  return writer.finish();
}

/** Reads writeSnapshot() bytes (any format from 1 to 4) into a new state. Throws CorruptionError on any damage. */
export function readSnapshot(state: ShardState, data: Uint8Array): void {
  const reader = new ByteReader(data, "shard snapshot");
  reader.verifyCrc32Trailer();
  if (reader.u32() !== SNAPSHOT_MAGIC) reader.fail("bad magic");
  const format = reader.u16();
  const known = [SNAPSHOT_FORMAT, SNAPSHOT_FORMAT_NO_REQUEST_IDS, SNAPSHOT_FORMAT_UNBOUND_SESSIONS, SNAPSHOT_FORMAT_COUNTERS_ONLY];
  if (!known.includes(format)) reader.fail(`unknown format ${format} (this version reads formats 1 to ${SNAPSHOT_FORMAT})`);
  state.appliedIndex = reader.u64();
  state.clockMs = reader.u64();
  const counterCount = reader.u32();
  if (counterCount * 19 > reader.remaining) reader.fail(`counter count ${counterCount} exceeds the data`);
  state.counters.reserve(counterCount);
  let previousSlot = -1;
  const corrupt = (problem: string): never => reader.fail(problem);
  for (let i = 0; i < counterCount; i++) {
    const keyLength = reader.u16();
    if (keyLength < 1 || keyLength > KEY_BYTES_MAX) reader.fail(`counter ${i} key length ${keyLength}`);
    const key = reader.subarray(keyLength);
    const value = reader.i64();
    const version = reader.u64();
    const slot = loadCounter(state, key, value, version, corrupt);
    if (previousSlot >= 0 && state.counters.compareKeys(previousSlot, slot) >= 0) {
      reader.fail(`counter ${i} keys not in ascending order`);
    }
    previousSlot = slot;
  }
  const sessionCount = reader.u32();
  if (sessionCount * 40 > reader.remaining) reader.fail(`session count ${sessionCount} exceeds the data`);
  for (let i = 0; i < sessionCount; i++) {
    insertLoadedSession(state, readSession(reader, format >= SNAPSHOT_FORMAT_NO_REQUEST_IDS), corrupt);
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
      loadKind(state, key, reader.raw(reader.u32()), corrupt);
    }
  }
  if (format >= SNAPSHOT_FORMAT) {
    const requestIdCount = reader.u32();
    if (requestIdCount * 45 > reader.remaining) reader.fail(`request id count ${requestIdCount} exceeds the data`);
    for (let i = 0; i < requestIdCount; i++) {
      insertLoadedRequestId(state, readRequestId(reader), corrupt);
    }
  }
  reader.expectEnd(4);
  state.changeLog = new ChangeLog(state.appliedIndex);
}
