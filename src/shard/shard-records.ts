/**
 * A shard's state as records: every record of the state (exportRecords), which a range split
 * passes to the new shard's load() and tools read. A session slot holds a session (sessions.ts
 * encodeSessionRecord) or a request id (request-ids.ts encodeRequestIdRecord); a kind record is
 * kind-table.ts encodeKindRecord. shard-load.ts reads them back.
 *
 * Not a persistence path: durability is the log plus checkpoints (shard-image.ts), and applying an
 * entry tracks no changes.
 */
import type { OpResult } from "./commands.js";
import { encodeKindRecord } from "./kind-table.js";
import { encodeRequestIdRecord } from "./request-ids.js";
import { encodeSessionRecord } from "./sessions.js";
import type { ShardState } from "./shard-state.js";

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
