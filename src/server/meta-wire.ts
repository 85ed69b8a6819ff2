/**
 * Node-to-node documents of the metadata protocol, carried as msgpack in InternalRequest bodies:
 * the heartbeat a node sends the metadata leader every placement.heartbeatMs, the reply that hands
 * back the partition map when it changed, and the membership changes the leader asks a shard leader
 * to make. One small client pool reaches other nodes' AdminService.
 */
import * as grpc from "@grpc/grpc-js";
import { Packr } from "msgpackr";
import { tallyProto } from "../api/proto.js";
import { decodeServiceError } from "../api/error-details.js";
import type { ClusterMap } from "../meta/map.js";
import { InvalidArgumentError } from "../util/errors.js";

const packr = new Packr({ useRecords: false, moreTypes: false });

export interface ShardReport {
  id: number;
  epoch: number;
  slotStart: number;
  slotEnd: number;
  voters: number[];
  learners: number[];
  votersOutgoing: number[];
  leader: number;
  term: number;
  commit: number;
  applied: number;
  isLeader: boolean;
  /** Leaders only: match index of every peer. */
  progress: Array<[number, number]>;
  /** Leaders only: mutations applied per second since the previous report. */
  opsPerSecond: number;
  counters: number;
  /** Leaders only: the slot that halves recent load (where a split would go); 0 = none. */
  splitSlot: number;
}

export interface NodeReport {
  node: { id: number; client: string; peer: string; zone: string };
  mapVersion: number;
  shards: ShardReport[];
}

export interface HeartbeatReply {
  metaLeader: number;
  /** Present when the sender's map is older. */
  map?: ClusterMap;
}

export type ShardChangeAction =
  | { action: "add-learner"; nodeId: number }
  | { action: "promote-and-remove"; nodeId: number; removeId: number }
  | { action: "promote"; nodeId: number }
  | { action: "remove"; nodeId: number }
  | { action: "transfer-leader"; nodeId: number }
  | { action: "split"; splitSlot: number; newShardId: number };

export type ShardChangeRequest = ShardChangeAction & { shardId: number; expectedEpoch: number };

export function encodeBody(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decodeBody<T>(raw: unknown, what: string): T {
  if (!(raw instanceof Uint8Array) || raw.length === 0) throw new InvalidArgumentError(`${what}: body is required`);
  try {
    return packr.unpack(raw) as T;
  } catch (error) {
    throw new InvalidArgumentError(`${what}: body does not decode: ${(error as Error).message}`);
  }
}

type AdminClient = grpc.Client & Record<string, any>;

/**
 * gRPC clients of other nodes' AdminService, one per address, closed with the node. They present
 * the node's own credentials: its certificate when TLS is on, the internal token when auth is on
 * (both given lazily, as functions, so they are read when the first call is made).
 */
export class AdminClients {
  private readonly clients = new Map<string, AdminClient>();

  constructor(
    private readonly credentials: () => grpc.ChannelCredentials = () => grpc.credentials.createInsecure(),
    private readonly metadata: () => grpc.Metadata | undefined = () => undefined,
  ) {}

  private client(address: string): AdminClient {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new (tallyProto().AdminService)(address, this.credentials()) as AdminClient;
      this.clients.set(address, client);
    }
    return client;
  }

  /** Calls method with the request; rejects with the server's typed error, or UNAVAILABLE. */
  call<T>(address: string, method: string, request: unknown, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      // grpc-js measures a deadline against the system clock, so it is Date.now(), not util/clock.
      this.client(address)[method](
        request,
        this.metadata() ?? new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (error: grpc.ServiceError | null, response: T) => {
          if (error === null) resolve(response);
          else reject(decodeServiceError(error).error);
        },
      );
    });
  }

  async internal<T>(address: string, method: "heartbeat" | "shardChange", body: unknown, timeoutMs: number): Promise<T> {
    const response = await this.call<{ body: Uint8Array }>(address, method, { body: encodeBody(body) }, timeoutMs);
    return decodeBody<T>(response.body, method);
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
