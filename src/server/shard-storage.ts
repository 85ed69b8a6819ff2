/**
 * A shard's Raft storage whose snapshot is made when a follower needs one, from the replica's
 * applied state, instead of at every log compaction.
 *
 * A shard's state is persisted as records (counters, sessions, kinds) with its applied index, in
 * the same batch as the entries' effects, and a node restarts from those records; the snapshot's
 * data only ever served a follower that fell behind the compacted log. Making it at compaction
 * cost every replica a full encoding of the shard (0.6-1.8 s of driver loop at 1.25 M counters),
 * a copy held in memory (about 30 B per counter) and tens of MB written to LevelDB, every
 * snapshotEveryEntries entries. Now compaction stores the snapshot's metadata only, and
 * snapshot() (which Raft calls when it must send one) builds data at the applied index:
 *
 *   index = the machine's applied index, term = the log's term there, confState = the replica's
 *   configuration as applied, data = the shard snapshot (descriptor + state machine).
 *
 * That is a valid snapshot to send: everything at or below the applied index is committed, the
 * applied index is never below the compaction point (the log keeps a tail behind it), so the
 * term is known and Raft's check index >= firstIndex - 1 holds. A built snapshot is reused while
 * it still covers the compaction point and is young, so several lagging followers (or retries)
 * cost one build; it is dropped after BUILT_SNAPSHOT_TTL_MS to give the memory back.
 */
import { MemoryStorage } from "../raft/memory-storage.js";
import type { ConfState, Snapshot } from "../raft/types.js";
import { assert } from "../util/assert.js";
import { monotonicMs } from "../util/clock.js";

export const EMPTY_SNAPSHOT_DATA = new Uint8Array(0);

/** The snapshot without its data: what a shard stores and keeps in memory. */
export function metadataOnly(snapshot: Snapshot): Snapshot {
  return snapshot.data.length === 0 ? snapshot : { metadata: snapshot.metadata, data: EMPTY_SNAPSHOT_DATA };
}

/** How long a built snapshot may be handed out again before it is rebuilt (or dropped). */
export const BUILT_SNAPSHOT_TTL_MS = 30_000;

export interface AppliedState {
  index: number;
  confState: ConfState;
  data: () => Uint8Array;
}

export class ShardStorage extends MemoryStorage {
  /** The replica's applied state; set once the replica exists (until then snapshot() is the stored one). */
  appliedState: (() => AppliedState) | undefined;
  /** Called after each build with its index, size and duration (logging, stats). */
  onBuilt: ((index: number, bytes: number, ms: number) => void) | undefined;
  private built: Snapshot | undefined;
  private builtAtMs = 0;

  override snapshot(): Snapshot {
    const stored = super.snapshot();
    const source = this.appliedState;
    if (source === undefined) return stored;
    const now = monotonicMs();
    if (this.built !== undefined && this.built.metadata.index >= this.firstIndex() - 1 && now - this.builtAtMs < BUILT_SNAPSHOT_TTL_MS)
      return this.built;
    const applied = source();
    assert(
      applied.index >= stored.metadata.index,
      `shard storage: applied index ${applied.index} is below the stored snapshot ${stored.metadata.index}`,
    );
    assert(
      applied.index >= this.firstIndex() - 1,
      `shard storage: applied index ${applied.index} is below the compaction point ${this.firstIndex() - 1}`,
    );
    const started = monotonicMs();
    const data = applied.data();
    this.built = {
      metadata: { index: applied.index, term: this.term(applied.index), confState: structuredClone(applied.confState) },
      data,
    };
    this.builtAtMs = monotonicMs();
    this.onBuilt?.(applied.index, data.length, this.builtAtMs - started);
    return this.built;
  }

  /**
   * Installs a snapshot (from disk at start-up, or a leader's), keeping its metadata only: the
   * state it carries goes to the shard's records. A snapshot built before is forgotten.
   */
  override applySnapshot(snapshot: Snapshot): void {
    super.applySnapshot(metadataOnly(snapshot));
    this.built = undefined;
  }

  /** Forgets a built snapshot that is past its time (called from the driver loop's ticks). */
  expireBuilt(nowMs: number): void {
    if (this.built !== undefined && nowMs - this.builtAtMs >= BUILT_SNAPSHOT_TTL_MS) this.built = undefined;
  }
}
