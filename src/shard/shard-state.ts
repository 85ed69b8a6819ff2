/**
 * The replicated state of one shard, held by its CounterStateMachine (state-machine.ts) and
 * shared with the modules that apply commands to it (mutation.ts, session-commands.ts), read it
 * (shard-reads.ts), persist it (shard-records.ts) and rebuild it (shard-load.ts,
 * shard-snapshot.ts).
 *
 * Invariants (the machine's, state-machine.ts, hold here): appliedIndex only grows; clockMs never
 * goes back; a storage id names at most one session or request id; every change since the last
 * takeChanges() is listed in the dirty fields below.
 */
import { ChangeLog, type ChangeKind } from "./change-log.js";
import { CounterTable, SLOT_DIRTY } from "./counter-table.js";
import { KindTable } from "./kind-table.js";
import { RequestIdTable } from "./request-ids.js";
import { SessionTable } from "./sessions.js";
import { resolveShardOptions, type ShardOptions } from "./shard-options.js";

/** The op result of a reset: the counter no longer exists, which reads as value 0, version 0. */
export const DELETED_VALUE = 0n;
export const DELETED_VERSION = 0;

export class ShardState {
  readonly options: Readonly<Required<ShardOptions>>;
  readonly counters: CounterTable;
  readonly sessions = new SessionTable();
  readonly requestIds = new RequestIdTable();
  readonly kinds = new KindTable();
  /** Recent changes for watch streams; rebuilt (empty) when the machine is loaded or restored. */
  changeLog = new ChangeLog(0);
  appliedIndex = 0;
  clockMs = 0;
  /**
   * Changes since the last takeChanges(), bounded by what was applied since: slots whose
   * SLOT_DIRTY flag was set (listed once per setting), and keys (copied) of counters deleted. A
   * deleted counter's slot loses its flag, so a listed slot that was freed, or reused by another
   * key that was listed again, is reported at most once and never under the old key.
   */
  dirtySlots: number[] = [];
  deletedKeys: Uint8Array[] = [];
  readonly dirtySessions = new Set<number>();
  readonly markSessionDirty = (clientId: number): void => {
    this.dirtySessions.add(clientId);
  };
  /** Storage ids of request ids added or expired since the last takeChanges(). */
  readonly dirtyRequestIds = new Set<number>();
  readonly markRequestIdDirty = (storageId: number): void => {
    this.dirtyRequestIds.add(storageId);
  };

  constructor(options: ShardOptions) {
    this.options = resolveShardOptions(options);
    this.counters = new CounterTable(this.options.hashSeed);
  }

  counterExists(key: Uint8Array): boolean {
    const slot = this.counters.find(key);
    return slot >= 0 && this.counters.version(slot) !== DELETED_VERSION;
  }

  /** Deletes a key of any kind (expiry), reporting it in takeChanges(). */
  deleteKey(key: Uint8Array): void {
    const slot = this.counters.find(key);
    let existed = false;
    if (slot >= 0 && this.counters.version(slot) !== DELETED_VERSION) {
      this.deletedKeys.push(this.counters.keyBytes(slot));
      this.counters.clearFlag(slot, SLOT_DIRTY);
      this.counters.remove(slot);
      existed = true;
    }
    if (this.kinds.remove(key)) existed = true;
    if (existed) this.changed(this.appliedIndex, key, DELETED_VALUE, DELETED_VERSION, "deleted");
  }

  changed(index: number, key: Uint8Array, value: bigint, version: number, kind: ChangeKind): void {
    this.changeLog.append(index, key, value, version, kind);
  }

  /** A session or a request id is stored under this id (they share the shard's session records). */
  storageIdInUse(id: number): boolean {
    return this.sessions.get(id) !== undefined || this.requestIds.hasStorageId(id);
  }
}
