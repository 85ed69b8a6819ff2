/**
 * proto/peer.proto loaded once, with the wire shapes the transport reads and writes. proto-loader
 * maps snake_case fields to camelCase and bytes to Buffer (a Uint8Array); uint64 becomes a number
 * (offsets stay far below 2^53).
 */
import { protoFile } from "../util/paths.js";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

export interface RaftFrameWire {
  fromNode: string;
  payload: Uint8Array;
  crc32c: number;
  /** Peer authentication (peer-auth.ts); absent or empty without a cluster secret. */
  mac?: Uint8Array;
}

export interface SnapshotChunkWire {
  fromNode: string;
  groupId: number;
  header: Uint8Array;
  data: Uint8Array;
  offset: number;
  last: boolean;
  crc32c: number;
  /** Peer authentication (peer-auth.ts); absent or empty without a cluster secret. */
  mac?: Uint8Array;
}

export interface SnapshotAckWire {
  ok: boolean;
  error: string;
}

export interface PeerClient extends grpc.Client {
  Raft(metadata: grpc.Metadata, options: grpc.CallOptions): grpc.ClientDuplexStream<RaftFrameWire, RaftFrameWire>;
  Snapshot(
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, ack?: SnapshotAckWire) => void,
  ): grpc.ClientWritableStream<SnapshotChunkWire>;
}

export interface PeerServiceBinding {
  service: grpc.ServiceDefinition;
  Client: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => PeerClient;
}

let cached: PeerServiceBinding | undefined;

export function peerService(): PeerServiceBinding {
  if (cached !== undefined) return cached;
  const protoPath = protoFile("peer.proto");
  const definition = protoLoader.loadSync(protoPath, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    tally: { peer: { v1: { Peer: grpc.ServiceClientConstructor } } };
  };
  const constructor = loaded.tally.peer.v1.Peer;
  cached = { service: constructor.service, Client: constructor as unknown as PeerServiceBinding["Client"] };
  return cached;
}
