/**
 * The replicated state of one shard, held by its CounterStateMachine (state-machine.ts) and
 * shared with the modules that apply commands to it (mutation.ts, session-commands.ts), read it
 * (shard-reads.ts), export it (shard-records.ts, shard-snapshot.ts, shard-image.ts) and rebuild it
 * (shard-load.ts, shard-snapshot.ts, shard-image.ts).
 *
 * Memory only: durability is the replicated log plus checkpoints, each a shard image
 * (shard-image.ts) of this whole state at an applied index, captured between entries and written in
 * the background. So applying an entry changes these tables and nothing else: no change tracking,
 * no per-counter, per-session or per-kind record.
 *
 * Invariants (the machine's, state-machine.ts, hold here): appliedIndex only grows; clockMs never
 * goes back; a storage id names at most one session or request id.
 */
import { ChangeLog, type ChangeKind } from "./change-log.js";
import { CounterTable } from "./counter-table.js";
import { KindTable } from "./kind-table.js";
import { RequestIdTable } from "./request-ids.js";
import { SessionTable } from "./sessions.js";
import { resolveShardOptions, type ShardOptions } from "./shard-options.js";

/** The op result of a reset: the counter no longer exists, which reads as value 0, version 0. */
export const DELETED_VALUE = 0n;
export const DELETED_VERSION = 0;

export class ShardState {
  readonly options: Readonly<Required<ShardOptions>>;
  /** Replaced only while a shard image loads into a new machine (shard-image.ts), before it applies anything. */
  counters: CounterTable;
  readonly sessions = new SessionTable();
  readonly requestIds = new RequestIdTable();
  readonly kinds = new KindTable();
  /** Recent changes for watch streams; rebuilt (empty) when the machine is loaded or restored. */
  changeLog = new ChangeLog(0);
  appliedIndex = 0;
  clockMs = 0;
  constructor(options: ShardOptions) {
    this.options = resolveShardOptions(options);
    this.counters = new CounterTable(this.options.hashSeed);
  }

  counterExists(key: Uint8Array): boolean {
    const slot = this.counters.find(key);
    return slot >= 0 && this.counters.version(slot) !== DELETED_VERSION;
  }

  /** Deletes a key of any kind (expiry), recording the deletion in the change log. */
  deleteKey(key: Uint8Array): void {
    const slot = this.counters.find(key);
    let existed = false;
    if (slot >= 0 && this.counters.version(slot) !== DELETED_VERSION) {
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
