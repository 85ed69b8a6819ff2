/**
 * The receiving side of the peer transport: the `Raft` streams and `Snapshot` calls other nodes
 * open to this one. Only configured peers may speak, and their claim is proven (peer-transport.ts
 * says how); a bad frame refuses its whole stream. Received messages are handed to the node from
 * the gRPC event, never from inside the transport's send()/flush().
 */
import * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";
import type { Message, NodeId } from "../raft/types.js";
import type { Logger } from "../util/log.js";
import { nodeIdOfCertificate } from "../util/tls.js";
import { crc32c } from "../storage/crc32c.js";
import { decodeFrame, decodeSnapshotHeader, type GroupMessage } from "./codec.js";
import { type FrameMac, type PeerAuthenticator, PeerAuthError, type PeerRpc, snapshotChunkFields } from "./peer-auth.js";
import type { PeerTransportOptions, PeerTransportStats } from "./peer-options.js";
import type { RaftFrameWire, SnapshotAckWire, SnapshotChunkWire } from "./peer-proto.js";
import type { ReloadingCertificateProvider } from "./reloading-credentials.js";

/** What receiving needs of the transport. */
export interface PeerReceiverContext {
  nodeId: NodeId;
  /** With mTLS a peer's certificate must name the node id it claims. */
  tls: ReloadingCertificateProvider | undefined;
  auth: PeerAuthenticator | undefined;
  stats: PeerTransportStats;
  logger: Logger;
  maxSnapshotBytes: number;
  maxInboundSnapshots: number;
  /** Whether `id` is a configured peer. */
  isPeer: (id: NodeId) => boolean;
  /** A peer opened a stream to us, so it is up (the transport reconnects to it at once). */
  peerIsBack: (id: NodeId) => void;
  onMessages: PeerTransportOptions["onMessages"];
  onSnapshot: PeerTransportOptions["onSnapshot"];
}

function parseNodeId(text: string): NodeId {
  // The proto comment shows "n1"; cluster ids are numbers. Accept both spellings.
  const match = /^n?(\d{1,15})$/.exec(text);
  if (match === null) throw new Error(`bad from_node ${JSON.stringify(text.slice(0, 32))}`);
  const id = Number(match[1]);
  if (id === 0) throw new Error("from_node is 0 (none)");
  return id;
}

export class PeerReceiver {
  private inboundSnapshots = 0;

  constructor(private readonly context: PeerReceiverContext) {}

  /**
   * Only configured peers may speak: Raft steps a message from anyone, so one from an unknown id
   * with a high term would depose a leader, and an App or Snap from it would be appended or
   * installed (found by the fuzzer). With mTLS the id is also bound to the peer's certificate;
   * with a peer secret, to the call's handshake (acceptCall) and every frame's MAC.
   */
  private knownPeer(call: { getAuthContext(): { sslPeerCertificate?: PeerCertificate } }, from: NodeId): NodeId {
    if (!this.context.isPeer(from)) throw new Error(`node ${from} is not a peer of node ${this.context.nodeId}`);
    if (this.context.tls !== undefined) {
      const certified = nodeIdOfCertificate(call.getAuthContext().sslPeerCertificate);
      if (certified !== from)
        throw new Error(`frames claim node ${from} but the connection's certificate names node ${certified ?? "(none)"}`);
    }
    return from;
  }

  /**
   * With a peer secret: the dialer's handshake, from a configured peer, answered; undefined
   * without one. A refusal is counted and logged, and the caller ends the call with it.
   */
  private acceptCall(
    rpc: PeerRpc,
    call: grpc.ServerDuplexStream<RaftFrameWire, RaftFrameWire> | grpc.ServerReadableStream<SnapshotChunkWire, SnapshotAckWire>,
  ): { accepted?: { dialer: NodeId; frames: FrameMac }; refused?: grpc.StatusObject } {
    if (this.context.auth === undefined) return {};
    try {
      const { dialer, answer, frames } = this.context.auth.accept(rpc, this.context.nodeId, call.metadata);
      this.knownPeer(call, dialer);
      call.sendMetadata(answer);
      return { accepted: { dialer, frames } };
    } catch (error) {
      this.context.stats.unauthenticated += 1;
      const details = `peer authentication failed: ${(error as Error).message}`;
      this.context.logger.warn({ rpc, peer: call.getPeer(), error: (error as Error).message }, "peer call refused");
      return { refused: { code: grpc.status.UNAUTHENTICATED, details, metadata: new grpc.Metadata() } };
    }
  }

  handleRaftStream(call: grpc.ServerDuplexStream<RaftFrameWire, RaftFrameWire>): void {
    let rejected = false;
    let heard = false;
    const { accepted, refused } = this.acceptCall("raft", call);
    if (refused !== undefined) {
      call.emit("error", refused);
      return;
    }
    if (accepted === undefined) call.sendMetadata(new grpc.Metadata());
    call.on("data", (frame: RaftFrameWire) => {
      if (rejected) return;
      let from: NodeId;
      let batch: GroupMessage[];
      try {
        from = this.knownPeer(call, parseNodeId(frame.fromNode));
        if (accepted !== undefined) {
          // Credentials before decoding: the MAC is checked on the raw bytes.
          const number = accepted.frames.frames;
          if (from !== accepted.dialer)
            throw new PeerAuthError(`frame ${number} claims node ${from} on a call authenticated as node ${accepted.dialer}`);
          if (!accepted.frames.verify(frame.mac, frame.payload))
            throw new PeerAuthError(`frame ${number}: bad MAC (forged, altered, replayed or out of order)`);
        }
        batch = decodeFrame({ payload: frame.payload, crc32c: frame.crc32c });
        for (const [groupId, message] of batch) {
          if (message.from !== from) throw new Error(`group ${groupId}: message from ${message.from} on a stream from node ${from}`);
          if (message.to !== this.context.nodeId)
            throw new Error(`group ${groupId}: message for node ${message.to} arrived at node ${this.context.nodeId}`);
        }
      } catch (error) {
        // Refuse the stream, not just the frame: the sender reconnects, and whatever is wrong with
        // it (corruption, a misrouted address) is logged once per stream instead of per frame.
        rejected = true;
        this.context.stats.framesRejected += 1;
        const unauthenticated = error instanceof PeerAuthError;
        if (unauthenticated) this.context.stats.unauthenticated += 1;
        this.context.logger.warn({ peer: frame.fromNode, error: (error as Error).message }, "peer frame rejected");
        call.emit("error", {
          code: unauthenticated ? grpc.status.UNAUTHENTICATED : grpc.status.DATA_LOSS,
          details: `frame rejected: ${(error as Error).message}`,
        });
        return;
      }
      if (!heard) {
        heard = true;
        this.context.peerIsBack(from);
      }
      this.context.stats.framesReceived += 1;
      this.context.stats.messagesReceived += batch.length;
      if (batch.length > 0) this.deliver(() => this.context.onMessages(from, batch)); // else a hello
    });
    call.on("end", () => call.end());
    call.on("error", () => undefined); // the sender went away: normal
  }

  handleSnapshotCall(
    call: grpc.ServerReadableStream<SnapshotChunkWire, SnapshotAckWire>,
    callback: grpc.sendUnaryData<SnapshotAckWire>,
  ): void {
    const { accepted, refused } = this.acceptCall("snapshot", call);
    if (refused !== undefined) {
      callback(refused);
      return;
    }
    if (this.inboundSnapshots >= this.context.maxInboundSnapshots) {
      callback(null, { ok: false, error: `busy: ${this.inboundSnapshots} snapshots already being received` });
      return;
    }
    this.inboundSnapshots += 1;
    let done = false;
    const release = (): boolean => {
      if (done) return false;
      done = true;
      this.inboundSnapshots -= 1;
      return true;
    };
    const reply = (ok: boolean, error = ""): void => {
      if (!release()) return;
      if (!ok) this.context.logger.warn({ error }, "inbound snapshot refused");
      callback(null, { ok, error });
    };
    const refuse = (error: PeerAuthError): void => {
      if (!release()) return;
      this.context.stats.unauthenticated += 1;
      this.context.logger.warn({ error: error.message }, "inbound snapshot refused");
      callback({ code: grpc.status.UNAUTHENTICATED, details: `peer authentication failed: ${error.message}` });
    };
    let from = 0;
    let groupId = 0;
    let message: Message | undefined;
    let data = new Uint8Array(0);
    let received = 0;
    let sawLast = false;
    call.on("data", (chunk: SnapshotChunkWire) => {
      if (done) return;
      try {
        if (accepted !== undefined) {
          // Credentials before decoding: the MAC is checked on the raw fields.
          const number = accepted.frames.frames;
          if (parseNodeId(chunk.fromNode) !== accepted.dialer)
            throw new PeerAuthError(`chunk ${number} claims node ${chunk.fromNode} on a call authenticated as node ${accepted.dialer}`);
          const fields = snapshotChunkFields(chunk.groupId, chunk.offset, chunk.last, chunk.crc32c, chunk.header.length);
          if (!accepted.frames.verify(chunk.mac, fields, chunk.header, chunk.data))
            throw new PeerAuthError(`chunk ${number}: bad MAC (forged, altered, replayed or out of order)`);
        }
        if (message === undefined) {
          from = this.knownPeer(call, parseNodeId(chunk.fromNode));
          groupId = chunk.groupId;
          const header = decodeSnapshotHeader(chunk.header);
          if (header.message.from !== from || header.message.to !== this.context.nodeId) throw new Error("snapshot header is misaddressed");
          if (header.dataBytes > this.context.maxSnapshotBytes)
            throw new Error(`snapshot of ${header.dataBytes} bytes exceeds ${this.context.maxSnapshotBytes}`);
          message = header.message;
          data = new Uint8Array(header.dataBytes);
        } else if (chunk.groupId !== groupId || parseNodeId(chunk.fromNode) !== from) {
          throw new Error("chunk of another transfer");
        }
        if (sawLast) throw new Error("chunk after the last one");
        if (chunk.offset !== received) throw new Error(`chunk at offset ${chunk.offset}, expected ${received}`);
        if (crc32c(chunk.data) !== chunk.crc32c) throw new Error(`chunk at offset ${chunk.offset}: checksum mismatch`);
        if (received + chunk.data.length > data.length) throw new Error("chunks exceed the announced size");
        data.set(chunk.data, received);
        received += chunk.data.length;
        sawLast = chunk.last;
      } catch (error) {
        if (error instanceof PeerAuthError) refuse(error);
        else reply(false, (error as Error).message);
      }
    });
    call.on("end", () => {
      if (done) return;
      if (message?.snapshot === undefined || !sawLast || received !== data.length) {
        reply(false, `incomplete snapshot: ${received} of ${data.length} bytes`);
        return;
      }
      message.snapshot.data = data;
      this.context.stats.snapshotsReceived += 1;
      const snapshotMessage = message;
      Promise.resolve()
        .then(() => this.context.onSnapshot(from, groupId, snapshotMessage))
        .then(
          () => reply(true),
          (error: unknown) => reply(false, `node refused: ${(error as Error).message}`),
        );
    });
    call.on("error", () => release()); // the sender went away
    call.on("cancelled", () => release());
  }

  /**
   * Hands received messages to the node. The node's callback is not the network's concern: if it
   * throws, that is a programmer error and it is rethrown outside gRPC's event handler so it
   * crashes loudly instead of being swallowed by the stream machinery.
   */
  private deliver(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.context.logger.error({ err: error }, "onMessages threw");
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}
