/**
 * Node-to-node Raft transport over gRPC (proto/peer.proto).
 *
 * Shape (TiKV's raft client / BatchRaftMessage, etcd's rafthttp for the failure handling):
 * - One long-lived bidirectional `Raft` stream per ordered node pair: A opens a stream to B for
 *   A->B traffic, B opens its own for B->A. Each frame carries the messages of all groups queued
 *   for that peer since the last flush(), so a node with many groups sends a few large frames
 *   instead of many small ones. Order is preserved per pair; Raft tolerates loss but gains nothing
 *   from reordering.
 * - Snapshots go on their own client-streaming `Snapshot` call in chunks, so a multi-megabyte
 *   transfer never stalls heartbeats on the Raft stream (etcd sends snapshots on a separate
 *   connection for the same reason).
 * - Every queue is bounded and a full queue drops. Raft is built for a lossy network: the leader
 *   retransmits from its progress tracking, so dropping is always safe and blocking never is.
 * - A peer that is down is retried with capped exponential backoff and jitter; while it is down
 *   messages to it are dropped and the node is told (onUnreachable), so Raft moves the peer to
 *   probe state instead of streaming into the void (etcd: ReportUnreachable).
 * - Only nodes of the cluster may speak: Raft trusts every message it steps, so one accepted from
 *   anyone else can depose a leader or append and commit entries. A frame must name a configured
 *   peer, and that claim is proven: with mTLS by the connection's certificate, without TLS by the
 *   cluster secret (peerSecret: a handshake per call and a MAC on every frame, peer-auth.ts). With
 *   neither, the claim is taken on trust and start() warns that the port is open.
 *
 * Callbacks into the node (onMessages, onSnapshot, onSnapshotResult, onUnreachable) are always
 * made from gRPC or timer events, never from inside send()/flush(), so the driver loop is never
 * re-entered while it iterates over a Ready.
 */
import * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";
import type { Message, NodeId } from "../raft/types.js";
import { MessageType } from "../raft/types.js";
import { assert } from "../util/assert.js";
import { UnavailableError } from "../util/errors.js";
import { componentLogger, type Logger } from "../util/log.js";
import {
  nodeIdOfCertificate,
  type ReloadingCertificateProvider,
  reloadingChannelCredentials,
  reloadingServerCredentials,
} from "../util/tls.js";
import { crc32c } from "../storage/crc32c.js";
import { decodeFrame, decodeSnapshotHeader, encodeFrame, encodeSnapshotHeader, estimateMessageBytes, type GroupMessage } from "./codec.js";
import { type FrameMac, PeerAuthenticator, PeerAuthError, type PeerRpc, snapshotChunkFields } from "./peer-auth.js";
import { type PeerClient, peerService, type RaftFrameWire, type SnapshotAckWire, type SnapshotChunkWire } from "./peer-proto.js";

export interface PeerTransportOptions {
  /** Numeric raft node id (cluster.yaml ids are numbers). */
  nodeId: NodeId;
  /** "127.0.0.1:7101"; port 0 picks a free port (see boundAddress). Bind errors reject start(). */
  listenAddress: string;
  /** Other nodes' peer addresses. */
  peers: Map<NodeId, string>;
  onMessages: (from: NodeId, batch: Array<[groupId: number, message: Message]>) => void;
  /** A Snap message with message.snapshot.data assembled. The sender learns ok when this resolves. */
  onSnapshot: (from: NodeId, groupId: number, message: Message) => Promise<void>;
  /** Bound on messages waiting per peer; a full queue drops (Raft retransmits). Default 8192. */
  maxQueuedMessagesPerPeer?: number;
  /** Frames are split above this many (estimated) bytes. Default 4 MiB. */
  maxFrameBytes?: number;
  /** Snapshot data bytes per chunk. Default 1 MiB. */
  snapshotChunkBytes?: number;
  /** Bound on snapshots waiting per peer (one is sent at a time); beyond it they fail at once. Default 8. */
  maxQueuedSnapshotsPerPeer?: number;
  /** Largest snapshot accepted from a peer. Default 1 GiB. */
  maxSnapshotBytes?: number;
  /** Snapshots received concurrently (each is buffered whole); beyond it a sender is refused. Default 4. */
  maxInboundSnapshots?: number;
  /** Deadline of one snapshot transfer. Default 120 s. */
  snapshotTimeoutMs?: number;
  /** Reconnect backoff: first delay and cap (each delay is jittered to [d/2, d]). Default 50 ms, 2 s. */
  reconnectBackoffMinMs?: number;
  reconnectBackoffMaxMs?: number;
  /** HTTP/2 keepalive ping interval; a dead peer is noticed within about 1.5x this. Default 10 s. */
  keepaliveMs?: number;
  logger?: Logger;
  /**
   * mTLS: this node's certificate and the cluster CA. Every connection in both directions then
   * requires a certificate from the CA, and a peer's certificate must name the node id it claims
   * (the server checks each stream's first frame; the dialer checks the server's certificate).
   */
  tls?: ReloadingCertificateProvider;
  /**
   * The cluster secret (at least 32 characters, the same on every node): every call in both
   * directions must prove it, and every frame and snapshot chunk carries a MAC under a key of
   * that call (peer-auth.ts). For clusters without TLS; with both, both are checked.
   */
  peerSecret?: string;
}

export interface PeerTransportStats {
  framesSent: number;
  messagesSent: number;
  /** Messages and snapshots dropped: full queue, peer unreachable, unknown peer, oversized. */
  dropped: number;
  framesReceived: number;
  messagesReceived: number;
  /** Frames refused by this receiver (bad checksum, undecodable, misaddressed, bad MAC). */
  framesRejected: number;
  /**
   * Peer authentication failures, both ends: calls refused (no or malformed handshake, not a
   * peer), frames and chunks with a bad MAC, and peers that failed to prove the secret to us.
   */
  unauthenticated: number;
  snapshotsSent: number;
  snapshotsFailed: number;
  snapshotsReceived: number;
  /** Raft streams that ended and were scheduled for reconnection. */
  reconnects: number;
}

type LinkState = "idle" | "connecting" | "connected" | "backoff" | "closed";

interface SnapshotJob {
  groupId: number;
  message: Message;
}

/** The sending side towards one peer. */
class PeerLink {
  state: LinkState = "idle";
  client: PeerClient | undefined;
  stream: grpc.ClientDuplexStream<RaftFrameWire, RaftFrameWire> | undefined;
  /**
   * False from a stream failure until a new stream is accepted: messages sent meanwhile are dropped
   * at once rather than queued for a peer that is known to be down (it starts optimistic).
   */
  reachable = true;
  /** write() returned false: wait for 'drain' before writing more. */
  blocked = false;
  /** With a peer secret: the MACs of the current stream, once the peer proved the secret. */
  frameMac: FrameMac | undefined;
  queue: GroupMessage[] = [];
  backoffMs: number;
  reconnectTimer: NodeJS.Timeout | undefined;
  snapshots: SnapshotJob[] = [];
  snapshotRunning = false;
  activeSnapshotCall: grpc.ClientWritableStream<SnapshotChunkWire> | undefined;

  constructor(
    readonly id: NodeId,
    readonly address: string,
    backoffMinMs: number,
  ) {
    this.backoffMs = backoffMinMs;
  }
}

const KIB = 1024;
const MIB = 1024 * KIB;

function positiveInteger(value: number, name: string): number {
  assert(Number.isSafeInteger(value) && value > 0, `${name} must be a positive integer, got ${value}`);
  return value;
}

function parseNodeId(text: string): NodeId {
  // The proto comment shows "n1"; cluster ids are numbers. Accept both spellings.
  const match = /^n?(\d{1,15})$/.exec(text);
  if (match === null) throw new Error(`bad from_node ${JSON.stringify(text.slice(0, 32))}`);
  const id = Number(match[1]);
  if (id === 0) throw new Error("from_node is 0 (none)");
  return id;
}

export class PeerTransport {
  /** Set by the node: reportSnapshot(to, ok ? finish : failure) on the group. */
  onSnapshotResult?: (to: NodeId, groupId: number, ok: boolean) => void;
  /** Set by the node: reportUnreachable(to) on every group. */
  onUnreachable?: (to: NodeId) => void;

  readonly stats: PeerTransportStats = {
    framesSent: 0,
    messagesSent: 0,
    dropped: 0,
    framesReceived: 0,
    messagesReceived: 0,
    framesRejected: 0,
    unauthenticated: 0,
    snapshotsSent: 0,
    snapshotsFailed: 0,
    snapshotsReceived: 0,
    reconnects: 0,
  };

  private readonly nodeId: NodeId;
  private readonly fromNode: string;
  private readonly logger: Logger;
  private readonly maxQueuedMessagesPerPeer: number;
  private readonly maxFrameBytes: number;
  private readonly snapshotChunkBytes: number;
  private readonly maxQueuedSnapshotsPerPeer: number;
  private readonly maxSnapshotBytes: number;
  private readonly maxInboundSnapshots: number;
  private readonly snapshotTimeoutMs: number;
  private readonly backoffMinMs: number;
  private readonly backoffMaxMs: number;
  /** gRPC's per-message limit, both directions; well above a frame so one oversized message still fits. */
  private readonly grpcMessageBytesMax: number;
  private readonly channelOptions: grpc.ChannelOptions;
  private readonly auth: PeerAuthenticator | undefined;

  private readonly links = new Map<NodeId, PeerLink>();
  private server: grpc.Server | undefined;
  private port = 0;
  private started = false;
  private closed = false;
  private inboundSnapshots = 0;
  private readonly pendingCallbacks = new Set<NodeJS.Immediate>();
  private removeReloadListener: (() => void) | undefined;

  constructor(private readonly options: PeerTransportOptions) {
    assert(Number.isSafeInteger(options.nodeId) && options.nodeId > 0, `nodeId must be a positive integer, got ${options.nodeId}`);
    this.nodeId = options.nodeId;
    this.fromNode = String(options.nodeId);
    this.logger = options.logger ?? componentLogger("transport", { node: options.nodeId });
    this.auth = options.peerSecret === undefined ? undefined : new PeerAuthenticator(options.peerSecret);
    this.maxQueuedMessagesPerPeer = positiveInteger(options.maxQueuedMessagesPerPeer ?? 8192, "maxQueuedMessagesPerPeer");
    this.maxFrameBytes = positiveInteger(options.maxFrameBytes ?? 4 * MIB, "maxFrameBytes");
    this.snapshotChunkBytes = positiveInteger(options.snapshotChunkBytes ?? 1 * MIB, "snapshotChunkBytes");
    this.maxQueuedSnapshotsPerPeer = positiveInteger(options.maxQueuedSnapshotsPerPeer ?? 8, "maxQueuedSnapshotsPerPeer");
    this.maxSnapshotBytes = positiveInteger(options.maxSnapshotBytes ?? 1024 * MIB, "maxSnapshotBytes");
    this.maxInboundSnapshots = positiveInteger(options.maxInboundSnapshots ?? 4, "maxInboundSnapshots");
    this.snapshotTimeoutMs = positiveInteger(options.snapshotTimeoutMs ?? 120_000, "snapshotTimeoutMs");
    this.backoffMinMs = positiveInteger(options.reconnectBackoffMinMs ?? 50, "reconnectBackoffMinMs");
    this.backoffMaxMs = positiveInteger(options.reconnectBackoffMaxMs ?? 2000, "reconnectBackoffMaxMs");
    assert(this.backoffMinMs <= this.backoffMaxMs, "reconnectBackoffMinMs must not exceed reconnectBackoffMaxMs");
    assert(this.maxFrameBytes >= 4 * KIB, "maxFrameBytes must be at least 4 KiB");
    this.grpcMessageBytesMax = Math.max(64 * MIB, 2 * this.maxFrameBytes, 2 * this.snapshotChunkBytes + 64 * KIB);
    assert(this.grpcMessageBytesMax <= 0x7fff_ffff, "maxFrameBytes / snapshotChunkBytes too large for gRPC");
    const keepaliveMs = positiveInteger(options.keepaliveMs ?? 10_000, "keepaliveMs");
    this.channelOptions = {
      "grpc.keepalive_time_ms": keepaliveMs,
      "grpc.keepalive_timeout_ms": Math.max(1000, Math.floor(keepaliveMs / 2)),
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.max_send_message_length": this.grpcMessageBytesMax,
      "grpc.max_receive_message_length": this.grpcMessageBytesMax,
      "grpc.initial_reconnect_backoff_ms": this.backoffMinMs,
      "grpc.max_reconnect_backoff_ms": this.backoffMaxMs,
      // Own connections per transport: in tests several nodes live in one process, and a shared
      // subchannel would outlive the node that closed it.
      "grpc.use_local_subchannel_pool": 1,
      // Channelz bookkeeping runs on every message; nothing reads it.
      "grpc.enable_channelz": 0,
    };
    for (const [id, address] of options.peers) this.setPeer(id, address);
  }

  /** The address actually bound (differs from listenAddress when it asked for port 0). */
  get boundAddress(): string {
    assert(this.started && this.port > 0, "boundAddress before start()");
    const host = this.options.listenAddress.slice(0, this.options.listenAddress.lastIndexOf(":"));
    return `${host}:${this.port}`;
  }

  async start(): Promise<void> {
    assert(!this.started, "PeerTransport.start() called twice");
    assert(!this.closed, "PeerTransport.start() after close()");
    this.started = true;
    const server = new grpc.Server({
      "grpc.max_send_message_length": this.grpcMessageBytesMax,
      "grpc.max_receive_message_length": this.grpcMessageBytesMax,
      "grpc.keepalive_time_ms": this.channelOptions["grpc.keepalive_time_ms"],
      "grpc.keepalive_timeout_ms": this.channelOptions["grpc.keepalive_timeout_ms"],
      // Channelz stays on here (unlike the channels): grpc-js 1.14's forceShutdown() destroys only
      // the sessions its channelz handler tracked; without it peers would not see this server close.
    });
    server.addService(peerService().service, {
      Raft: (call: grpc.ServerDuplexStream<RaftFrameWire, RaftFrameWire>) => this.handleRaftStream(call),
      Snapshot: (call: grpc.ServerReadableStream<SnapshotChunkWire, SnapshotAckWire>, callback: grpc.sendUnaryData<SnapshotAckWire>) =>
        this.handleSnapshotCall(call, callback),
    });
    this.server = server;
    const address = this.options.listenAddress;
    try {
      this.port = await new Promise<number>((resolve, reject) => {
        const credentials = this.options.tls ? reloadingServerCredentials(this.options.tls, true) : grpc.ServerCredentials.createInsecure();
        server.bindAsync(address, credentials, (error, port) => (error ? reject(error) : resolve(port)));
      });
    } catch (error) {
      server.forceShutdown();
      this.server = undefined;
      throw new UnavailableError(`cannot listen for peer traffic on ${address}: ${(error as Error).message}`, { cause: error });
    }
    const authentication = [this.options.tls ? "mTLS" : "", this.auth ? "cluster secret" : ""].filter(Boolean).join(" + ") || "none";
    this.logger.info({ address: this.boundAddress, peers: [...this.links.keys()], authentication }, "peer transport listening");
    if (authentication === "none") {
      this.logger.warn(
        { address: this.boundAddress },
        "peer port is not authenticated: anyone who reaches it can speak as a node of this cluster and write any key (docs/security.md)",
      );
    }
    for (const link of this.links.values()) this.connect(link);
    // An HTTP/2 connection keeps the certificate it was opened with, and a peer that refused our
    // old one would refuse every stream on it: redial everyone with the new certificate.
    this.removeReloadListener = this.options.tls?.onReload(() => {
      for (const [id, link] of [...this.links]) {
        this.setPeer(id, undefined);
        this.setPeer(id, link.address);
      }
      this.logger.info("certificates reloaded: redialled every peer");
    });
  }

  /**
   * Queue a message for `to`. Never blocks and never throws on a network condition: when the queue
   * is full, the peer is unreachable or unknown, the message is dropped and counted.
   */
  send(to: NodeId, groupId: number, message: Message): void {
    assert(Number.isInteger(groupId) && groupId >= 0 && groupId <= 0xffff_ffff, `groupId must be a u32, got ${groupId}`);
    assert(message.to === to, `message.to ${message.to} differs from destination ${to}`);
    assert(message.from === this.nodeId, `message.from ${message.from} is not this node ${this.nodeId}`);
    if (this.closed) {
      this.stats.dropped += 1;
      return;
    }
    const link = this.links.get(to);
    if (message.type === MessageType.Snap) {
      this.enqueueSnapshot(link, to, groupId, message);
      return;
    }
    if (link === undefined || !link.reachable || link.queue.length >= this.maxQueuedMessagesPerPeer) {
      this.stats.dropped += 1;
      return;
    }
    link.queue.push([groupId, message]);
  }

  /** Write everything queued: one frame per peer (more only above maxFrameBytes). */
  flush(): void {
    if (this.closed) return;
    for (const link of this.links.values()) this.writeQueued(link);
  }

  /** Messages waiting to be written, per peer (each bounded by maxQueuedMessagesPerPeer). */
  queueDepths(): Map<NodeId, number> {
    const depths = new Map<NodeId, number>();
    for (const [id, link] of this.links) depths.set(id, link.queue.length);
    return depths;
  }

  isConnected(to: NodeId): boolean {
    return this.links.get(to)?.state === "connected";
  }

  /** Add, move or (address undefined) remove a peer. Messages queued for a moved peer are dropped. */
  setPeer(id: NodeId, address: string | undefined): void {
    assert(Number.isSafeInteger(id) && id > 0, `peer id must be a positive integer, got ${id}`);
    assert(id !== this.nodeId, "a node is not its own peer");
    if (this.closed) return;
    const existing = this.links.get(id);
    if (existing !== undefined && existing.address === address) return;
    if (existing !== undefined) {
      this.links.delete(id);
      this.closeLink(existing);
    }
    if (address === undefined) return;
    const link = new PeerLink(id, address, this.backoffMinMs);
    this.links.set(id, link);
    if (this.started) this.connect(link);
  }

  /** Ends every stream and call and the server. After it resolves no handle of this transport is left. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.removeReloadListener?.();
    for (const immediate of this.pendingCallbacks) clearImmediate(immediate);
    this.pendingCallbacks.clear();
    for (const link of this.links.values()) this.closeLink(link);
    this.links.clear();
    this.server?.forceShutdown();
    this.server = undefined;
    this.logger.info("peer transport closed");
  }

  // ---- sending: the Raft stream ----

  /**
   * A peer just opened a stream to us, so it is up: if our own stream to it is waiting out a
   * reconnect backoff (up to backoffMaxMs after it was down), connect now on a fresh channel (the
   * old channel may sit in its own backoff). A restarted node then hears its leaders at once
   * instead of up to two seconds later.
   */
  private peerIsBack(id: NodeId): void {
    const link = this.links.get(id);
    if (link === undefined || link.state !== "backoff" || link.reconnectTimer === undefined) return;
    clearTimeout(link.reconnectTimer);
    link.reconnectTimer = undefined;
    link.backoffMs = this.backoffMinMs;
    if (link.client !== undefined && link.client.getChannel().getConnectivityState(false) !== grpc.connectivityState.READY) {
      link.client.close(); // a snapshot call on it was failing anyway
      link.client = undefined;
    }
    this.logger.debug({ peer: id }, "peer is back; reconnecting now");
    this.connect(link);
  }

  private connect(link: PeerLink): void {
    if (this.closed || link.state === "closed") return;
    const handshake = this.auth?.dial("raft", this.nodeId, link.id);
    const stream = this.clientFor(link).Raft(handshake?.metadata ?? new grpc.Metadata(), {});
    link.stream = stream;
    link.state = "connecting";
    link.blocked = false;
    link.frameMac = undefined;
    // The receiver sends its headers as soon as it accepts the stream: that is "connected" (with a
    // peer secret, once they prove it; nothing is written before).
    stream.on("metadata", (headers: grpc.Metadata) => {
      if (link.stream !== stream) return;
      if (handshake !== undefined) {
        try {
          link.frameMac = handshake.finish(headers);
        } catch (error) {
          this.stats.unauthenticated += 1;
          this.logger.warn({ peer: link.id, address: link.address, error: (error as Error).message }, "peer failed authentication");
          stream.cancel();
          return;
        }
      }
      link.state = "connected";
      link.reachable = true;
      link.backoffMs = this.backoffMinMs;
      this.logger.debug({ peer: link.id, address: link.address }, "peer stream connected");
      this.writeQueued(link);
    });
    stream.on("data", () => undefined); // The receiver sends nothing we need; keep the stream flowing.
    stream.on("drain", () => {
      if (link.stream !== stream) return;
      link.blocked = false;
      this.writeQueued(link);
    });
    // A peer dying mid-stream is normal: the error is followed by 'status', handled there.
    stream.on("error", (error: grpc.ServiceError) => {
      if (link.stream === stream) this.logger.debug({ peer: link.id, code: error.code, details: error.details }, "peer stream error");
    });
    stream.on("status", (status: grpc.StatusObject) => this.streamEnded(link, stream, status));
    this.writeQueued(link);
  }

  /** One channel per link, shared by its Raft stream and snapshot calls; gRPC reconnects it itself. */
  private clientFor(link: PeerLink): PeerClient {
    const credentials = this.options.tls ? reloadingChannelCredentials(this.options.tls, link.id) : grpc.credentials.createInsecure();
    link.client ??= new (peerService().Client)(link.address, credentials, this.channelOptions);
    return link.client;
  }

  private streamEnded(link: PeerLink, stream: grpc.ClientDuplexStream<RaftFrameWire, RaftFrameWire>, status: grpc.StatusObject): void {
    if (link.stream !== stream) return;
    link.stream = undefined;
    link.blocked = false;
    if (this.closed || link.state === "closed") return;
    const wasConnected = link.state === "connected";
    link.state = "backoff";
    link.reachable = false;
    // Whatever was queued is stale by the time the peer is back; Raft resends from its progress.
    this.stats.dropped += link.queue.length;
    link.queue = [];
    this.stats.reconnects += 1;
    const delayMs = Math.round(link.backoffMs * (0.5 + Math.random() * 0.5));
    link.backoffMs = Math.min(link.backoffMs * 2, this.backoffMaxMs);
    const log = wasConnected ? this.logger.warn.bind(this.logger) : this.logger.debug.bind(this.logger);
    log({ peer: link.id, address: link.address, code: status.code, details: status.details, retryInMs: delayMs }, "peer stream ended");
    link.reconnectTimer = setTimeout(() => {
      link.reconnectTimer = undefined;
      this.connect(link);
    }, delayMs);
    link.reconnectTimer.unref();
    this.onUnreachable?.(link.id);
  }

  private writeQueued(link: PeerLink): void {
    const stream = link.stream;
    if (stream === undefined || link.blocked) return;
    const frameMac = link.frameMac;
    if (this.auth !== undefined && frameMac === undefined) return; // the handshake is not done
    while (link.queue.length > 0 && !link.blocked) {
      let count = 0;
      let bytes = 0;
      while (count < link.queue.length) {
        const messageBytes = estimateMessageBytes(link.queue[count]![1]);
        if (count > 0 && bytes + messageBytes > this.maxFrameBytes) break;
        bytes += messageBytes;
        count += 1;
      }
      const items = link.queue.splice(0, count);
      const frame = encodeFrame(items);
      if (frame.payload.length > this.grpcMessageBytesMax) {
        // Only a single message can get here (frames are cut far below the limit). Sending it
        // would fail the stream over and over; drop it and let Raft pick smaller batches.
        this.stats.dropped += items.length;
        this.logger.error({ peer: link.id, bytes: frame.payload.length }, "message larger than the gRPC limit dropped");
        continue;
      }
      const wire: RaftFrameWire = { fromNode: this.fromNode, payload: frame.payload, crc32c: frame.crc32c };
      if (frameMac !== undefined) wire.mac = frameMac.sign(frame.payload);
      const accepted = stream.write(wire);
      this.stats.framesSent += 1;
      this.stats.messagesSent += items.length;
      if (!accepted) link.blocked = true;
    }
  }

  private closeLink(link: PeerLink): void {
    link.state = "closed";
    if (link.reconnectTimer !== undefined) clearTimeout(link.reconnectTimer);
    link.reconnectTimer = undefined;
    const stream = link.stream;
    link.stream = undefined;
    stream?.cancel();
    this.stats.dropped += link.queue.length;
    link.queue = [];
    const pending = link.snapshots;
    link.snapshots = [];
    for (const job of pending) this.reportSnapshot(link.id, job.groupId, false);
    link.activeSnapshotCall?.cancel();
    link.client?.close();
    link.client = undefined;
  }

  // ---- sending: snapshots ----

  private enqueueSnapshot(link: PeerLink | undefined, to: NodeId, groupId: number, message: Message): void {
    assert(message.snapshot !== undefined, "Snap message without a snapshot");
    if (link === undefined || link.snapshots.length >= this.maxQueuedSnapshotsPerPeer) {
      this.stats.dropped += 1;
      this.reportSnapshot(to, groupId, false);
      return;
    }
    link.snapshots.push({ groupId, message });
    if (!link.snapshotRunning) {
      this.runSnapshots(link).catch((error: unknown) => this.logger.error({ err: error, peer: to }, "snapshot sender failed"));
    }
  }

  private async runSnapshots(link: PeerLink): Promise<void> {
    link.snapshotRunning = true;
    try {
      for (;;) {
        const job = link.snapshots.shift();
        if (job === undefined || link.state === "closed" || this.closed) return;
        const started = performance.now();
        const error = await this.sendSnapshot(link, job);
        if (this.closed) return;
        const bytes = job.message.snapshot!.data.length;
        if (error === undefined) {
          this.stats.snapshotsSent += 1;
          this.logger.info({ peer: link.id, group: job.groupId, bytes, ms: Math.round(performance.now() - started) }, "snapshot sent");
        } else {
          this.stats.snapshotsFailed += 1;
          this.logger.warn({ peer: link.id, group: job.groupId, bytes, error }, "snapshot failed");
        }
        this.reportSnapshot(link.id, job.groupId, error === undefined);
        // A link closed by setPeer reported its queued snapshots already; this loop ends here.
      }
    } finally {
      link.snapshotRunning = false;
    }
  }

  /** Streams one snapshot; resolves to undefined on success or to the reason it failed. */
  private sendSnapshot(link: PeerLink, job: SnapshotJob): Promise<string | undefined> {
    const client = this.clientFor(link);
    const data = job.message.snapshot!.data;
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
      const handshake = this.auth?.dial("snapshot", this.nodeId, link.id);
      let call: grpc.ClientWritableStream<SnapshotChunkWire>;
      try {
        call = client.Snapshot(
          handshake?.metadata ?? new grpc.Metadata(),
          { deadline: Date.now() + this.snapshotTimeoutMs },
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
          const end = Math.min(offset + this.snapshotChunkBytes, data.length);
          const chunk = data.subarray(offset, end);
          const wire: SnapshotChunkWire = {
            fromNode: this.fromNode,
            groupId: job.groupId,
            header: offset === 0 ? encodeSnapshotHeader(job.message) : new Uint8Array(0),
            data: chunk,
            offset,
            last: end === data.length,
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
        } while (offset < data.length && !settled);
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
          this.stats.unauthenticated += 1;
          call.cancel();
          finish(`peer failed authentication: ${(error as Error).message}`);
          return;
        }
        start(frameMac);
      });
    });
  }

  private reportSnapshot(to: NodeId, groupId: number, ok: boolean): void {
    this.later(() => this.onSnapshotResult?.(to, groupId, ok));
  }

  /** Runs `callback` on a later turn of the event loop, unless the transport closes first. */
  private later(callback: () => void): void {
    if (this.closed) return;
    const immediate = setImmediate(() => {
      this.pendingCallbacks.delete(immediate);
      if (!this.closed) callback();
    });
    this.pendingCallbacks.add(immediate);
  }

  // ---- receiving ----

  /**
   * Only configured peers may speak: Raft steps a message from anyone, so one from an unknown id
   * with a high term would depose a leader, and an App or Snap from it would be appended or
   * installed (found by the fuzzer). With mTLS the id is also bound to the peer's certificate;
   * with a peer secret, to the call's handshake (acceptCall) and every frame's MAC.
   */
  private knownPeer(call: { getAuthContext(): { sslPeerCertificate?: PeerCertificate } }, from: NodeId): NodeId {
    if (!this.links.has(from)) throw new Error(`node ${from} is not a peer of node ${this.nodeId}`);
    if (this.options.tls !== undefined) {
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
    if (this.auth === undefined) return {};
    try {
      const { dialer, answer, frames } = this.auth.accept(rpc, this.nodeId, call.metadata);
      this.knownPeer(call, dialer);
      call.sendMetadata(answer);
      return { accepted: { dialer, frames } };
    } catch (error) {
      this.stats.unauthenticated += 1;
      const details = `peer authentication failed: ${(error as Error).message}`;
      this.logger.warn({ rpc, peer: call.getPeer(), error: (error as Error).message }, "peer call refused");
      return { refused: { code: grpc.status.UNAUTHENTICATED, details, metadata: new grpc.Metadata() } };
    }
  }

  private handleRaftStream(call: grpc.ServerDuplexStream<RaftFrameWire, RaftFrameWire>): void {
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
          if (message.to !== this.nodeId)
            throw new Error(`group ${groupId}: message for node ${message.to} arrived at node ${this.nodeId}`);
        }
      } catch (error) {
        // Refuse the stream, not just the frame: the sender reconnects, and whatever is wrong with
        // it (corruption, a misrouted address) is logged once per stream instead of per frame.
        rejected = true;
        this.stats.framesRejected += 1;
        const unauthenticated = error instanceof PeerAuthError;
        if (unauthenticated) this.stats.unauthenticated += 1;
        this.logger.warn({ peer: frame.fromNode, error: (error as Error).message }, "peer frame rejected");
        call.emit("error", {
          code: unauthenticated ? grpc.status.UNAUTHENTICATED : grpc.status.DATA_LOSS,
          details: `frame rejected: ${(error as Error).message}`,
        });
        return;
      }
      if (!heard) {
        heard = true;
        this.peerIsBack(from);
      }
      this.stats.framesReceived += 1;
      this.stats.messagesReceived += batch.length;
      this.deliver(() => this.options.onMessages(from, batch));
    });
    call.on("end", () => call.end());
    call.on("error", () => undefined); // the sender went away: normal
  }

  private handleSnapshotCall(
    call: grpc.ServerReadableStream<SnapshotChunkWire, SnapshotAckWire>,
    callback: grpc.sendUnaryData<SnapshotAckWire>,
  ): void {
    const { accepted, refused } = this.acceptCall("snapshot", call);
    if (refused !== undefined) {
      callback(refused);
      return;
    }
    if (this.inboundSnapshots >= this.maxInboundSnapshots) {
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
      if (!ok) this.logger.warn({ error }, "inbound snapshot refused");
      callback(null, { ok, error });
    };
    const refuse = (error: PeerAuthError): void => {
      if (!release()) return;
      this.stats.unauthenticated += 1;
      this.logger.warn({ error: error.message }, "inbound snapshot refused");
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
          if (header.message.from !== from || header.message.to !== this.nodeId) throw new Error("snapshot header is misaddressed");
          if (header.dataBytes > this.maxSnapshotBytes)
            throw new Error(`snapshot of ${header.dataBytes} bytes exceeds ${this.maxSnapshotBytes}`);
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
      this.stats.snapshotsReceived += 1;
      const snapshotMessage = message;
      Promise.resolve()
        .then(() => this.options.onSnapshot(from, groupId, snapshotMessage))
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
      this.logger.error({ err: error }, "onMessages threw");
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}
