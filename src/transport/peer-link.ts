/** The sending side towards one peer: its Raft stream, its message queue, its snapshot queue. */
import type * as grpc from "@grpc/grpc-js";
import type { Message, NodeId } from "../raft/types.js";
import type { GroupMessage } from "./codec.js";
import type { FrameMac } from "./peer-auth.js";
import type { PeerClient, RaftFrameWire, SnapshotChunkWire } from "./peer-proto.js";

export type LinkState = "idle" | "connecting" | "connected" | "backoff" | "closed";

export interface SnapshotJob {
  groupId: number;
  message: Message;
}

/** The sending side towards one peer. */
export class PeerLink {
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
