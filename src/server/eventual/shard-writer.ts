/**
 * The flusher's way into the shards: CounterService calls to a shard's leader, as any client makes
 * them (RegisterSession, then AddBatch in packed form under (client_id, seq)), so the shard's
 * exactly-once sessions (Raft thesis 6.3) dedupe a re-sent flush exactly as they dedupe a client's
 * retry. The leader is the one this node's replica believes in, else the last NOT_LEADER hint,
 * else a voter from the map (which answers NOT_LEADER naming the leader).
 */
import * as grpc from "@grpc/grpc-js";
import { decodeServiceError } from "../../api/error-details.js";
import { encodePackedAddsField } from "../../api/packed-batch.js";
import { tallyProto, type GetResponseMessage, type RegisterSessionResponseMessage } from "../../api/proto.js";
import { NotLeaderError, UnavailableError } from "../../util/errors.js";
import type { PackedAdd } from "../../util/packed-adds.js";
import { internalCallMetadata } from "../config/auth.js";
import { nodeClientCredentials } from "../config/tls.js";
import type { TallyNode } from "../node.js";

type CounterClient = grpc.Client & Record<string, any>;

/**
 * Reconnect like the client library (src/client/node-connection.ts): gRPC's default backoff (1 s,
 * x1.6 per failure, up to 120 s) kept a flusher off a leader that was back for seconds to minutes
 * after a restart or a partition (the eventual chaos run, test/chaos/eventual-reconnect.test.ts).
 * The flusher's own retry loop paces the attempts.
 */
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1_000,
  "grpc.enable_retries": 0,
};

/**
 * How often a call in flight checks whether this node's replica of its shard has learned of
 * another leader since it started: a call to a leader that is paused or cut off would otherwise
 * wait for its whole deadline (limits.requestTimeoutMs) while a new leader took over in about an
 * election timeout. Abandoning it is as safe as its timeout: the flusher re-sends the same seq.
 */
const LEADER_CHECK_MS = 50;

export class ShardWriter {
  private readonly clients = new Map<string, CounterClient>();
  /** shard -> the leader address a NOT_LEADER answer named. */
  private readonly hints = new Map<number, string>();
  private voterTurn = 0;

  constructor(private readonly node: TallyNode) {}

  /** Registers a new session on the shard; its client id. */
  async registerSession(shardId: number, timeoutMs: number): Promise<number> {
    const reply = await this.call<RegisterSessionResponseMessage>(shardId, "registerSession", { shardId, epoch: 0 }, timeoutMs);
    const clientId = Number(reply.clientId);
    if (!Number.isSafeInteger(clientId) || clientId <= 0)
      throw new UnavailableError(`shard ${shardId} answered client id ${reply.clientId}`);
    return clientId;
  }

  /** Applies `adds` on the shard under (clientId, seq): at most once per (clientId, seq), whatever the retries. */
  async addBatch(shardId: number, clientId: number, seq: number, adds: PackedAdd[], timeoutMs: number): Promise<void> {
    const header = { shardId, epoch: 0, clientId: String(clientId), seq: String(seq), firstUnackedSeq: String(seq) };
    await this.call(shardId, "addBatch", { header, packedAdds: encodePackedAddsField(adds) }, timeoutMs);
  }

  /** A linearizable read of `key` at its shard's leader (for a node without a replica of it). */
  get(shardId: number, key: Uint8Array, timeoutMs: number): Promise<GetResponseMessage> {
    return this.call<GetResponseMessage>(shardId, "get", { key, shardId, consistency: "LINEARIZABLE" }, timeoutMs);
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private async call<T>(shardId: number, method: string, request: unknown, timeoutMs: number): Promise<T> {
    const address = this.leaderAddress(shardId);
    if (address === undefined) throw new UnavailableError(`shard ${shardId} has no known leader or voter address`);
    const leaderAtStart = this.node.replicas.get(shardId)?.leader ?? 0;
    const moved = (): string | undefined => {
      const leader = this.node.replicas.get(shardId)?.leader ?? 0;
      if (leader === 0 || leader === leaderAtStart || this.node.clientAddressOf(leader) === address) return undefined;
      return `shard ${shardId}'s leader is node ${leader} now`;
    };
    try {
      const reply = await this.unary<T>(address, method, request, timeoutMs, moved);
      this.hints.delete(shardId);
      return reply;
    } catch (error) {
      if (error instanceof NotLeaderError && error.leaderAddress !== undefined && error.leaderAddress !== "")
        this.hints.set(shardId, error.leaderAddress);
      else this.hints.delete(shardId);
      throw error;
    }
  }

  private leaderAddress(shardId: number): string | undefined {
    const hint = this.hints.get(shardId);
    if (hint !== undefined) return hint;
    const leader = this.node.replicas.get(shardId)?.leader ?? 0;
    if (leader !== 0) return this.node.clientAddressOf(leader);
    const voters = this.node.map.shards.find((shard) => shard.id === shardId)?.voters ?? [];
    if (voters.length === 0) return undefined;
    return this.node.clientAddressOf(voters[this.voterTurn++ % voters.length]!);
  }

  /** One call; `abandon` is asked every LEADER_CHECK_MS while it waits, and a reason it gives cancels the call (UNAVAILABLE). */
  private unary<T>(address: string, method: string, request: unknown, timeoutMs: number, abandon?: () => string | undefined): Promise<T> {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new (tallyProto().CounterService)(
        address,
        nodeClientCredentials(this.node.config, this.node.self),
        CHANNEL_OPTIONS,
      ) as CounterClient;
      this.clients.set(address, client);
    }
    const metadata = internalCallMetadata(this.node.config) ?? new grpc.Metadata();
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let check: NodeJS.Timeout | undefined;
      // grpc-js measures deadlines against the system clock.
      const call = client[method](request, metadata, { deadline: Date.now() + timeoutMs }, (error: grpc.ServiceError | null, reply: T) => {
        if (check !== undefined) clearInterval(check);
        if (settled) return;
        settled = true;
        if (error === null) resolve(reply);
        else reject(decodeServiceError(error).error);
      }) as grpc.ClientUnaryCall;
      if (abandon === undefined) return;
      check = setInterval(() => {
        const reason = abandon();
        if (reason === undefined || settled) return;
        settled = true;
        clearInterval(check);
        call.cancel();
        reject(new UnavailableError(`${method} to ${address} abandoned (its outcome unknown): ${reason}`));
      }, LEADER_CHECK_MS);
      check.unref();
    });
  }
}
