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
 *   probe state instead of streaming into the void (etcd: ReportUnreachable). A node that comes
 *   back opens its streams at once and, with nothing to send yet, writes an empty frame on each:
 *   hearing a peer ends the backoff towards it, so leaders reach a restarted follower at once.
 * - Only nodes of the cluster may speak: Raft trusts every message it steps, so one accepted from
 *   anyone else can depose a leader or append and commit entries. A frame must name a configured
 *   peer, and that claim is proven: with mTLS by the connection's certificate, without TLS by the
 *   cluster secret (peerSecret: a handshake per call and a MAC on every frame, peer-auth.ts). With
 *   neither, the claim is taken on trust and start() warns that the port is open.
 *
 * Callbacks into the node (onMessages, onSnapshot, onSnapshotResult, onUnreachable) are always
 * made from gRPC or timer events, never from inside send()/flush(), so the driver loop is never
 * re-entered while it iterates over a Ready.
 *
 * This file is the sending side and the facade; peer-receiver.ts receives, snapshot-sender.ts
 * streams one snapshot, peer-link.ts holds the state kept per peer, peer-options.ts the options.
 */
import * as grpc from "@grpc/grpc-js";
import type { Message, NodeId } from "../raft/types.js";
import { MessageType } from "../raft/types.js";
import { assert } from "../util/assert.js";
import { UnavailableError } from "../util/errors.js";
import { componentLogger, type Logger } from "../util/log.js";
import { encodeFrame, estimateMessageBytes } from "./codec.js";
import { PeerAuthenticator } from "./peer-auth.js";
import { PeerLink } from "./peer-link.js";
import type { PeerTransportOptions, PeerTransportStats } from "./peer-options.js";
import { type PeerClient, peerService, type RaftFrameWire, type SnapshotAckWire, type SnapshotChunkWire } from "./peer-proto.js";
import { PeerReceiver } from "./peer-receiver.js";
import { reloadingChannelCredentials, reloadingServerCredentials } from "./reloading-credentials.js";
import { inMemorySource, sendSnapshot, type SnapshotSendContext } from "./snapshot-sender.js";

export type { PeerTransportOptions, PeerTransportStats } from "./peer-options.js";

const KIB = 1024;
const MIB = 1024 * KIB;

function positiveInteger(value: number, name: string): number {
  assert(Number.isSafeInteger(value) && value > 0, `${name} must be a positive integer, got ${value}`);
  return value;
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
  private readonly snapshotTimeoutMs: number;
  private readonly snapshotSource: PeerTransportOptions["snapshotSource"];
  private readonly backoffMinMs: number;
  private readonly backoffMaxMs: number;
  /** gRPC's per-message limit, both directions; well above a frame so one oversized message still fits. */
  private readonly grpcMessageBytesMax: number;
  private readonly channelOptions: grpc.ChannelOptions;
  private readonly auth: PeerAuthenticator | undefined;
  private readonly receiver: PeerReceiver;
  private readonly snapshotSendContext: SnapshotSendContext;

  private readonly links = new Map<NodeId, PeerLink>();
  private server: grpc.Server | undefined;
  private port = 0;
  private started = false;
  private closed = false;
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
    const maxSnapshotBytes = positiveInteger(options.maxSnapshotBytes ?? 1024 * MIB, "maxSnapshotBytes");
    const maxInboundSnapshots = positiveInteger(options.maxInboundSnapshots ?? 4, "maxInboundSnapshots");
    this.snapshotTimeoutMs = positiveInteger(options.snapshotTimeoutMs ?? 120_000, "snapshotTimeoutMs");
    this.snapshotSource = options.snapshotSource;
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
    this.receiver = new PeerReceiver({
      nodeId: this.nodeId,
      tls: options.tls,
      auth: this.auth,
      stats: this.stats,
      logger: this.logger,
      maxSnapshotBytes,
      maxInboundSnapshots,
      isPeer: (id) => this.links.has(id),
      peerIsBack: (id) => this.peerIsBack(id),
      onMessages: options.onMessages,
      onSnapshot: options.onSnapshot,
    });
    this.snapshotSendContext = {
      nodeId: this.nodeId,
      fromNode: this.fromNode,
      auth: this.auth,
      snapshotChunkBytes: this.snapshotChunkBytes,
      snapshotTimeoutMs: this.snapshotTimeoutMs,
      stats: this.stats,
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
      Raft: (call: grpc.ServerDuplexStream<RaftFrameWire, RaftFrameWire>) => this.receiver.handleRaftStream(call),
      Snapshot: (call: grpc.ServerReadableStream<SnapshotChunkWire, SnapshotAckWire>, callback: grpc.sendUnaryData<SnapshotAckWire>) =>
        this.receiver.handleSnapshotCall(call, callback),
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
      // Nothing queued (a restarted follower has nothing to say until a leader speaks): an empty
      // frame, so the peer learns we are up and drops its reconnect backoff towards us (peerIsBack).
      if (link.queue.length === 0) this.writeFrame(link, stream, []);
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
    if (this.auth !== undefined && link.frameMac === undefined) return; // the handshake is not done
    while (link.queue.length > 0 && !link.blocked) {
      let count = 0;
      let bytes = 0;
      while (count < link.queue.length) {
        const messageBytes = estimateMessageBytes(link.queue[count]![1]);
        if (count > 0 && bytes + messageBytes > this.maxFrameBytes) break;
        bytes += messageBytes;
        count += 1;
      }
      this.writeFrame(link, stream, link.queue.splice(0, count));
    }
  }

  /** One frame of `items` on the link's stream (signed when the cluster secret is in use). */
  private writeFrame(
    link: PeerLink,
    stream: grpc.ClientDuplexStream<RaftFrameWire, RaftFrameWire>,
    items: ReadonlyArray<readonly [number, Message]>,
  ): void {
    const frame = encodeFrame(items);
    if (frame.payload.length > this.grpcMessageBytesMax) {
      // Only a single message can get here (frames are cut far below the limit). Sending it
      // would fail the stream over and over; drop it and let Raft pick smaller batches.
      this.stats.dropped += items.length;
      this.logger.error({ peer: link.id, bytes: frame.payload.length }, "message larger than the gRPC limit dropped");
      return;
    }
    const wire: RaftFrameWire = { fromNode: this.fromNode, payload: frame.payload, crc32c: frame.crc32c };
    if (link.frameMac !== undefined) wire.mac = link.frameMac.sign(frame.payload);
    const accepted = stream.write(wire);
    this.stats.framesSent += 1;
    this.stats.messagesSent += items.length;
    if (!accepted) link.blocked = true;
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
        const source = this.snapshotSource?.(job.groupId, job.message) ?? inMemorySource(job.message.snapshot!.data);
        const error = await sendSnapshot(this.snapshotSendContext, this.clientFor(link), link, job, source);
        if (this.closed) return;
        const bytes = await source.open().catch(() => 0);
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
}
