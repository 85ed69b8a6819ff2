/**
 * Rebuilds a shard's state from records (loadRecords: what exportRecords() in shard-records.ts
 * gives, as a range split and backup restore pass them), and checks every record as it goes in, for
 * loadRecords, the snapshot reader (shard-snapshot.ts) and the image reader (shard-image.ts) alike:
 * a record that contradicts the rest (a version above the applied index, a key twice, sessions out
 * of activity order, ...) is a CorruptionError, never a state that the tables' own asserts would
 * stop later.
 */
import { CorruptionError } from "../util/errors.js";
import { INT64_MAX, INT64_MIN } from "../util/int64.js";
import { DEFAULT_SHARD_LIMITS, type OpResult } from "./commands.js";
import { ChangeLog } from "./change-log.js";
import { COUNTERS_MAX } from "./counter-table.js";
import { describeKey } from "./keys.js";
import { decodeKindRecord, KIND_NAMES, KindTag, type KindEntry } from "./kind-table.js";
import { decodeRequestIdRecord, isRequestIdRecord, type RequestIdRecord } from "./request-ids.js";
import { decodeSessionRecord, type Session } from "./sessions.js";
import type { ShardState } from "./shard-state.js";

export const KEY_BYTES_MAX = DEFAULT_SHARD_LIMITS.maxKeyBytes;

/** Reports damage: throws CorruptionError naming the problem. */
export type Corrupt = (problem: string) => never;

/**
 * A new state from records (exportRecords() form), without replaying the log. Throws CorruptionError if a record contradicts the rest (version above
 * appliedIndex, a session record stored under another id, ...).
 */
export function loadRecords(
  state: ShardState,
  appliedIndex: number,
  clockMs: number,
  counters: Iterable<[Uint8Array, OpResult]>,
  sessions: Iterable<[number, Uint8Array]>,
  kinds: Iterable<[Uint8Array, Uint8Array]>,
): void {
  const corrupt = (problem: string): never => {
    throw new CorruptionError(`shard state: ${problem}`);
  };
  if (!Number.isSafeInteger(appliedIndex) || appliedIndex < 0) corrupt(`bad applied index ${appliedIndex}`);
  if (!Number.isSafeInteger(clockMs) || clockMs < 0) corrupt(`bad clock ${clockMs}`);
  state.appliedIndex = appliedIndex;
  state.clockMs = clockMs;
  for (const [key, counter] of counters) {
    if (key.length < 1 || key.length > KEY_BYTES_MAX) corrupt(`counter key of ${key.length} bytes`);
    loadCounter(state, key, counter.value, counter.version, corrupt);
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
  // Records come in any order (storage gives key order); the LRU order is recovered from the activity stamps.
  loaded.sort((a, b) => a.touchIndex - b.touchIndex || a.touchOrdinal - b.touchOrdinal);
  for (const session of loaded) insertLoadedSession(state, session, corrupt);
  loadedRequestIds.sort((a, b) => a.index - b.index || a.ordinal - b.ordinal);
  for (const record of loadedRequestIds) insertLoadedRequestId(state, record, corrupt);
  for (const [key, record] of kinds) loadKind(state, key, record, corrupt);
  state.changeLog = new ChangeLog(appliedIndex);
}

/** A kind record from load(), a snapshot or an image; checked against the counters (one kind per key). */
export function loadKind(state: ShardState, key: Uint8Array, record: Uint8Array, corrupt: Corrupt): void {
  if (key.length < 1 || key.length > KEY_BYTES_MAX) corrupt(`kind key of ${key.length} bytes`);
  let entry: KindEntry;
  try {
    entry = decodeKindRecord(key, record);
  } catch (error) {
    return corrupt(`kind record of ${describeKey(key)}: ${(error as Error).message}`);
  }
  const isCounter = state.counterExists(key);
  if (entry.tag === KindTag.Ttl && !isCounter) corrupt(`TTL record of ${describeKey(key)} without its counter`);
  if (entry.tag !== KindTag.Ttl && isCounter) corrupt(`${describeKey(key)} is both a counter and a ${KIND_NAMES[entry.tag]}`);
  if (entry.version > state.appliedIndex)
    corrupt(`kind record of ${describeKey(key)} version ${entry.version} above applied ${state.appliedIndex}`);
  if (entry.tag !== KindTag.Ttl && state.counters.size + state.kinds.structured >= COUNTERS_MAX) corrupt(`more than ${COUNTERS_MAX} keys`);
  state.kinds.load(entry, state.appliedIndex);
}

export function loadCounter(state: ShardState, key: Uint8Array, value: bigint, version: number, corrupt: Corrupt): number {
  const counters = state.counters;
  if (typeof value !== "bigint" || value < INT64_MIN || value > INT64_MAX) {
    corrupt(`counter ${describeKey(key)} value outside int64`);
  }
  if (!Number.isSafeInteger(version) || version < 1 || version > state.appliedIndex) {
    corrupt(`counter ${describeKey(key)} version ${version} outside [1, applied ${state.appliedIndex}]`);
  }
  if (counters.size >= COUNTERS_MAX) corrupt(`more than ${COUNTERS_MAX} counters`);
  const slot = counters.findOrInsert(key);
  if (counters.version(slot) !== 0) corrupt(`counter ${describeKey(key)} appears twice`);
  counters.write(slot, value, version);
  return slot;
}

/** A request id from records, a snapshot or an image, in apply order; damage is a CorruptionError. */
export function insertLoadedRequestId(state: ShardState, record: RequestIdRecord, corrupt: Corrupt): void {
  const requestIds = state.requestIds;
  if (state.storageIdInUse(record.storageId)) corrupt(`storage id ${record.storageId} holds two records`);
  if (requestIds.get(record.owner, record.requestId) !== undefined) corrupt(`request id ${JSON.stringify(record.requestId)} appears twice`);
  if (record.index > state.appliedIndex) corrupt(`request id ${record.storageId} applied after the applied index`);
  if (record.appliedAtMs > state.clockMs) corrupt(`request id ${record.storageId} applied after the clock`);
  const newest = requestIds.latest();
  if (newest !== undefined) {
    if (!(newest.index < record.index || (newest.index === record.index && newest.ordinal < record.ordinal)))
      corrupt(`request id ${record.storageId} out of apply order`);
    if (newest.appliedAtMs > record.appliedAtMs) corrupt(`request id ${record.storageId} clock goes back`);
  }
  requestIds.insert(record);
}

export function insertLoadedSession(state: ShardState, session: Session, corrupt: Corrupt): void {
  const sessions = state.sessions;
  if (sessions.get(session.clientId) !== undefined) corrupt(`session ${session.clientId} appears twice`);
  if (session.touchIndex > state.appliedIndex) corrupt(`session ${session.clientId} active after applied index`);
  if (session.lastActiveMs > state.clockMs) corrupt(`session ${session.clientId} active after the clock`);
  // Checked here so that damage is a CorruptionError; SessionTable.insert asserts the same.
  const last = sessions.latest();
  if (last !== undefined) {
    const ordered =
      last.touchIndex < session.touchIndex || (last.touchIndex === session.touchIndex && last.touchOrdinal < session.touchOrdinal);
    if (!ordered) corrupt(`session ${session.clientId} out of activity order`);
    if (last.lastActiveMs > session.lastActiveMs) corrupt(`session ${session.clientId} activity clock goes back`);
  }
  sessions.insert(session);
}
