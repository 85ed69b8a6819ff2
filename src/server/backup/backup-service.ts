/**
 * AdminService.ShardBackup: streams one shard's snapshot, taken on its leader at a linearizable
 * applied index (TallyNode.backupSnapshot), in chunks of at most BACKUP_CHUNK_BYTES, honouring the
 * stream's flow control so a large shard is never one message or an unbounded send buffer.
 */
import { createHash } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import type { Outgoing, ShardBackupChunkMessage, ShardBackupRequestMessage } from "../../api/proto.js";
import { InvalidArgumentError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { failStream } from "../rpc/errors.js";
import type { ShardBackupSnapshot, TallyNode } from "../node.js";

export type ShardBackupCall = grpc.ServerWritableStream<ShardBackupRequestMessage, Outgoing<ShardBackupChunkMessage>>;

export const BACKUP_CHUNK_BYTES = 1 << 20;

export function serveShardBackup(node: TallyNode, call: ShardBackupCall, log: Logger): void {
  const fail = (error: unknown): void => failStream(call, error, log);
  let snapshot: Promise<ShardBackupSnapshot>;
  try {
    const shardId = Number(call.request.shardId ?? 0);
    if (!Number.isInteger(shardId) || shardId <= 0 || shardId > 0xffff_ffff)
      throw new InvalidArgumentError(`shard_id: must be a shard id, got ${String(call.request.shardId)}`);
    snapshot = node.backupSnapshot(shardId);
  } catch (error) {
    fail(error);
    return;
  }
  snapshot.then((taken) => streamSnapshot(node, call, taken)).catch(fail);
}

async function streamSnapshot(node: TallyNode, call: ShardBackupCall, snapshot: ShardBackupSnapshot): Promise<void> {
  const header = {
    shardId: snapshot.shardId,
    epoch: String(snapshot.descriptor.epoch),
    slotStart: snapshot.descriptor.slotStart,
    slotEnd: snapshot.descriptor.slotEnd,
    appliedIndex: String(snapshot.appliedIndex),
    term: String(snapshot.term),
    clockMs: String(snapshot.clockMs),
    counters: String(snapshot.counters),
    totalBytes: String(snapshot.data.length),
    leaderId: String(snapshot.leaderId),
    clusterName: node.config.cluster.name,
  };
  const hash = createHash("sha256");
  let offset = 0;
  // An empty shard still sends one (empty-data) chunk: the last one.
  do {
    if (call.cancelled || call.destroyed) return;
    const data = snapshot.data.subarray(offset, Math.min(snapshot.data.length, offset + BACKUP_CHUNK_BYTES));
    hash.update(data);
    const last = offset + data.length === snapshot.data.length;
    const more = call.write({
      ...header,
      offset: String(offset),
      data: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
      last,
      sha256: last ? hash.digest("hex") : "",
    });
    offset += data.length;
    if (!last && !more) await drainedOrGone(call);
  } while (offset < snapshot.data.length);
  call.end();
}

/** Resolves when the stream can take more, or when the client went away (then nothing more is sent). */
function drainedOrGone(call: ShardBackupCall): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off("drain", done);
      call.off("cancelled", done);
      call.off("close", done);
      resolve();
    };
    call.on("drain", done);
    call.on("cancelled", done);
    call.on("close", done);
  });
}
