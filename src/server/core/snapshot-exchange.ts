/**
 * Shard snapshots between peers, on the node's side of the peer transport.
 *
 * Sending: a shard's Raft snapshot is its newest checkpoint, metadata only in memory
 * (shard-storage.ts); source() gives the transport that checkpoint's file to stream in chunks, or,
 * before the shard's first checkpoint, the snapshot the log store holds with its data.
 *
 * Receiving: received() runs before Raft sees the snapshot. A checkpoint is written to this node's
 * checkpoint files (durable before the install that records it), then decoded into a machine in
 * slices (core/checkpoints.ts's pause), so the install inside the loop only swaps it in; the sender
 * learns success once both are done.
 */
import { MessageType, type Message, type Snapshot } from "../../raft/types.js";
import type { ShardOptions } from "../../shard/state-machine.js";
import type { SnapshotSource } from "../../transport/peer-options.js";
import { CorruptionError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { decodeCheckpoint, decodeCheckpointHeader, isCheckpoint, type DecodedShardState } from "../checkpoint-format.js";
import type { CheckpointStore } from "./ports.js";

export interface SnapshotExchangeOptions {
  checkpoints: CheckpointStore;
  shardOptions: ShardOptions;
  logger: Logger;
  pause: () => Promise<void>;
  /** The snapshot the log store holds for the group, with its data. */
  storedSnapshot: (groupId: number) => Promise<Snapshot | undefined>;
}

export class SnapshotExchange {
  /** Received checkpoints decoded ahead of their install, by shard. */
  private readonly prepared = new Map<number, { index: number; state: DecodedShardState }>();

  constructor(private readonly options: SnapshotExchangeOptions) {}

  /** Where the data of an outgoing shard snapshot comes from (undefined: the message carries it). */
  source(groupId: number, message: Message): SnapshotSource | undefined {
    const snapshot = message.snapshot;
    if (snapshot === undefined || snapshot.data.length > 0 || snapshot.metadata.index <= 1) return undefined;
    const index = snapshot.metadata.index;
    const checkpoints = this.options.checkpoints;
    let stored: Uint8Array | undefined;
    // Once per send: the transport asks for the length again to log it, and the fallback below
    // reads a whole group from the log store.
    let opened: Promise<number> | undefined;
    const open = async (): Promise<number> => {
      try {
        return await checkpoints.size(groupId, index);
      } catch {
        // No checkpoint file yet: the snapshot the log store holds (a split's new shard).
        const held = await this.options.storedSnapshot(groupId);
        if (held === undefined || held.metadata.index !== index || held.data.length === 0)
          throw new CorruptionError(`shard ${groupId} has no checkpoint or stored snapshot at index ${index}`);
        stored = held.data;
        return stored.length;
      }
    };
    return {
      open: () => (opened ??= open()),
      read: (offset, length) =>
        stored !== undefined
          ? Promise.resolve(stored.subarray(offset, offset + length))
          : checkpoints.readChunk(groupId, index, offset, length),
    };
  }

  /** A shard snapshot arrived (whole): make a checkpoint durable here and decode it ahead of its install. */
  async received(groupId: number, message: Message): Promise<void> {
    if (message.type !== MessageType.Snap || message.snapshot === undefined) return;
    const { metadata, data } = message.snapshot;
    if (!isCheckpoint(data)) return;
    const what = `snapshot of shard ${groupId} at ${metadata.index}`;
    const { header } = decodeCheckpointHeader(data, what);
    if (header.shardId !== groupId || header.index !== metadata.index || header.term !== metadata.term)
      throw new CorruptionError(`${what}: its checkpoint is of shard ${header.shardId} at ${header.index} (term ${header.term})`);
    const started = performance.now();
    const state = await decodeCheckpoint(data, this.options.shardOptions, this.options.pause, what);
    await this.options.checkpoints.write(groupId, metadata.index, [data]);
    this.prepared.set(groupId, { index: metadata.index, state });
    this.options.logger.info(
      { shard: groupId, index: metadata.index, bytes: data.length, ms: Math.round(performance.now() - started) },
      "received a checkpoint",
    );
  }

  /** The decoded state of the snapshot being installed, when it is the one received last. */
  takePrepared(groupId: number, index: number): DecodedShardState | undefined {
    const prepared = this.prepared.get(groupId);
    if (prepared === undefined) return undefined;
    this.prepared.delete(groupId);
    return prepared.index === index ? prepared.state : undefined;
  }
}
