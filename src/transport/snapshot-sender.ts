/**
 * Sending one snapshot: a client-streaming `Snapshot` call of its own (peer-transport.ts says why),
 * the data in chunks of snapshotChunkBytes, each with its CRC32C (and a MAC with a peer secret),
 * waiting on 'drain' when the call's buffer is full.
 */
import * as grpc from "@grpc/grpc-js";
import type { NodeId } from "../raft/types.js";
import { crc32c } from "../storage/crc32c.js";
import { encodeSnapshotHeader } from "./codec.js";
import { type FrameMac, type PeerAuthenticator, snapshotChunkFields } from "./peer-auth.js";
import type { PeerLink, SnapshotJob } from "./peer-link.js";
import type { PeerTransportStats, SnapshotSource } from "./peer-options.js";
import type { PeerClient, SnapshotChunkWire } from "./peer-proto.js";

/** What sending needs of the transport. */
export interface SnapshotSendContext {
  nodeId: NodeId;
  fromNode: string;
  auth: PeerAuthenticator | undefined;
  snapshotChunkBytes: number;
  snapshotTimeoutMs: number;
  stats: PeerTransportStats;
}

/** The message's own data as a source. */
export function inMemorySource(data: Uint8Array): SnapshotSource {
  return { open: () => Promise.resolve(data.length), read: (offset, length) => Promise.resolve(data.subarray(offset, offset + length)) };
}

/**
 * Streams one snapshot, its data read from `source` chunk by chunk (a checkpoint file is never
 * loaded whole); resolves to undefined on success or to the reason it failed.
 */
export async function sendSnapshot(
  context: SnapshotSendContext,
  client: PeerClient,
  link: PeerLink,
  job: SnapshotJob,
  source: SnapshotSource,
): Promise<string | undefined> {
  let dataLength: number;
  try {
    dataLength = await source.open();
  } catch (error) {
    return `cannot read the snapshot: ${(error as Error).message}`;
  }
  return new Promise<string | undefined>((resolve) => {
    let settled = false;
    let wakeWriter: (() => void) | undefined;
    const finish = (error: string | undefined): void => {
      if (settled) return;
      settled = true;
      link.activeSnapshotCall = undefined;
      wakeWriter?.();
      resolve(error);
    };
    const handshake = context.auth?.dial("snapshot", context.nodeId, link.id);
    let call: grpc.ClientWritableStream<SnapshotChunkWire>;
    try {
      call = client.Snapshot(
        handshake?.metadata ?? new grpc.Metadata(),
        { deadline: Date.now() + context.snapshotTimeoutMs },
        (error, ack) => {
          if (error !== null) finish(`${grpc.status[error.code] ?? error.code}: ${error.details}`);
          else if (ack?.ok !== true) finish(`refused by peer: ${ack?.error ?? "no reason"}`);
          else finish(undefined);
        },
      );
    } catch (error) {
      finish(`cannot start the call: ${(error as Error).message}`);
      return;
    }
    link.activeSnapshotCall = call;
    call.on("error", () => undefined); // reported through the callback
    call.on("drain", () => wakeWriter?.());
    const writeAll = async (frameMac: FrameMac | undefined): Promise<void> => {
      let offset = 0;
      do {
        const end = Math.min(offset + context.snapshotChunkBytes, dataLength);
        const chunk = await source.read(offset, end - offset);
        if (chunk.length !== end - offset) throw new Error(`snapshot data ended at ${offset + chunk.length} of ${dataLength} bytes`);
        if (settled) return;
        const wire: SnapshotChunkWire = {
          fromNode: context.fromNode,
          groupId: job.groupId,
          header: offset === 0 ? encodeSnapshotHeader(job.message, dataLength) : new Uint8Array(0),
          data: chunk,
          offset,
          last: end === dataLength,
          crc32c: crc32c(chunk),
        };
        if (frameMac !== undefined)
          wire.mac = frameMac.sign(
            snapshotChunkFields(wire.groupId, wire.offset, wire.last, wire.crc32c, wire.header.length),
            wire.header,
            wire.data,
          );
        const accepted = call.write(wire);
        offset = end;
        if (!accepted && !settled) {
          await new Promise<void>((wake) => (wakeWriter = wake));
          wakeWriter = undefined;
        }
      } while (offset < dataLength && !settled);
      if (!settled) call.end();
    };
    const start = (frameMac: FrameMac | undefined): void => {
      writeAll(frameMac).catch((error: unknown) => {
        call.cancel();
        finish(`write failed: ${(error as Error).message}`);
      });
    };
    if (handshake === undefined) {
      start(undefined);
      return;
    }
    // With a peer secret nothing is written before the receiver proved it holds the secret.
    call.on("metadata", (headers: grpc.Metadata) => {
      if (settled) return;
      let frameMac: FrameMac;
      try {
        frameMac = handshake.finish(headers);
      } catch (error) {
        context.stats.unauthenticated += 1;
        call.cancel();
        finish(`peer failed authentication: ${(error as Error).message}`);
        return;
      }
      start(frameMac);
    });
  });
}
