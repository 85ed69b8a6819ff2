/**
 * A shard's Raft storage: the in-memory log (MemoryStorage) whose snapshot is the shard's newest
 * committed checkpoint, metadata only.
 *
 * A shard's state is made durable by checkpoints (core/checkpoints.ts), files written in the
 * background; this storage holds only their metadata (index, term, conf state). When Raft must
 * send a follower a snapshot it takes snapshot() -- the newest checkpoint's metadata with empty
 * data -- and the peer transport streams that checkpoint's file from disk (TallyNode's snapshot
 * source), so nothing is built or encoded on demand. Before a shard's first checkpoint its snapshot
 * is the one the log store holds (the bootstrap at index 1, a split's new shard at the split), whose
 * data the same source reads back from the log store.
 */
import { MemoryStorage } from "../raft/memory-storage.js";
import type { Snapshot } from "../raft/types.js";

export const EMPTY_SNAPSHOT_DATA = new Uint8Array(0);

/** The snapshot without its data: what a shard stores and keeps in memory. */
export function metadataOnly(snapshot: Snapshot): Snapshot {
  return snapshot.data.length === 0 ? snapshot : { metadata: snapshot.metadata, data: EMPTY_SNAPSHOT_DATA };
}

/** Per-shard checkpoint progress (core/checkpoints.ts). */
export interface CheckpointState {
  /** The newest committed checkpoint (the restart point), if any. */
  committed: { index: number; bytes: number } | undefined;
  inFlight: boolean;
  appliedBytesSince: number;
  appliedEntriesSince: number;
  /** When the last checkpoint started (monotonic ms); unset until the first sweep sees the shard. */
  lastStartedMs?: number;
}

export function newCheckpointState(): CheckpointState {
  return { committed: undefined, inFlight: false, appliedBytesSince: 0, appliedEntriesSince: 0 };
}

export class ShardStorage extends MemoryStorage {
  /** The shard's checkpoint progress (core/checkpoints.ts). */
  checkpoint: CheckpointState = newCheckpointState();

  /** The index of the snapshot this storage holds (the newest committed checkpoint, or the stored one). */
  snapshotIndex(): number {
    return super.snapshot().metadata.index;
  }

  /** Installs a snapshot (from disk at start-up, or a leader's), keeping its metadata only. */
  override applySnapshot(snapshot: Snapshot): void {
    super.applySnapshot(metadataOnly(snapshot));
  }
}
