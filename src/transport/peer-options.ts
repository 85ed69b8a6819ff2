/** The options and the counters of a PeerTransport (peer-transport.ts, which re-exports them). */
import type { Message, NodeId } from "../raft/types.js";
import type { Logger } from "../util/log.js";
import type { ReloadingCertificateProvider } from "./reloading-credentials.js";

/** An outgoing snapshot's data, read chunk by chunk (peer-options.ts snapshotSource). */
export interface SnapshotSource {
  /** Resolves the data's length (may be called again: the same answer); rejects when it cannot be read (the send fails and Raft retries). */
  open(): Promise<number>;
  /** `length` bytes from `offset` (the whole range: the length is known). */
  read(offset: number, length: number): Promise<Uint8Array>;
}

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
  /**
   * Where an outgoing snapshot's data comes from when the Snap message carries none (a shard's
   * snapshot is its newest checkpoint, streamed from disk in chunks); undefined: the message's data.
   */
  snapshotSource?: (groupId: number, message: Message) => SnapshotSource | undefined;
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
