/**
 * The client library's public types: options, call options and results. Plain data, no behaviour;
 * src/client/index.ts re-exports them. Counter values are bigint (exact at the int64 edges).
 */
import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "../util/log.js";
import type { ClientTlsOptions } from "../util/tls.js";
import type { RoutesSnapshot, ShardRoute } from "./routing.js";
import type { Fence, Int64Input, Key } from "./values.js";

export interface TallyClientOptions {
  /** host:port of any nodes; the client discovers the rest through Routes. */
  endpoints: string[];
  /** Default overall deadline of one operation, retries included. */
  deadlineMs?: number;
  /** Deadline of one attempt; after it a mutation is retried with the same (clientId, seq). */
  attemptTimeoutMs?: number;
  /** How long to wait for a TCP/HTTP2 connection before trying another node. */
  connectTimeoutMs?: number;
  /**
   * Auto-batching (default on): add() calls to one shard that are waiting to be sent together become
   * one request (packed adds, one session seq), each caller still getting its own result. Off, every
   * add() is a request of its own (one Pipeline message each).
   */
  autoBatch?: boolean;
  /**
   * How long an auto-batch waits for more adds. 0 (default): none -- the adds made in the same
   * event-loop turn go together, sent as soon as the turn ends (ioredis's auto-pipelining does the
   * same). Above 0: a timer of that many ms, which makes bigger batches at the cost of that latency.
   * Either way, while two of a shard's auto-batches await their answers, its next one waits too and
   * leaves when one answers (group commit).
   */
  batchWindowMs?: number;
  /** Flush an auto-batch early at this many ops (<= 10,000). */
  maxBatchOps?: number;
  /** Bound on operations in progress; beyond it calls fail fast with OverloadedError. */
  maxInflightOps?: number;
  /** A session idle this long gets a KeepAlive. Keep well below the server's session timeout. */
  keepAliveIntervalMs?: number;
  /** First retry delay; doubles per failed attempt up to retryBackoffMaxMs (with jitter). */
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
  /** Default: insecure (the cluster speaks plaintext on 127.0.0.1 in development). */
  credentials?: grpc.ChannelCredentials;
  /** TLS to a cluster with a tls section: its CA, and a client certificate when it requires one. */
  tls?: ClientTlsOptions;
  /**
   * A bearer token for a cluster with an auth section, sent as `authorization: Bearer <token>`
   * on every call and stream. Without TLS it crosses the network in the clear.
   */
  token?: string;
  logger?: Logger;
  /**
   * Advertised node address -> address to dial (a cluster reached through a tunnel, NAT or proxy:
   * its routes name the addresses its nodes advertise). Unlisted addresses are dialed as they are.
   */
  addressMap?: Record<string, string>;
}

export interface CallOptions {
  /** Overall deadline, retries included (default: the client's deadlineMs). */
  deadlineMs?: number;
  /** Cancels waiting. A cancelled mutation that was already sent rejects with AmbiguousError. */
  signal?: AbortSignal;
}

export interface AddOptions extends CallOptions {
  /** The add fails with FailedPreconditionError if the result would be below this. */
  floor?: Int64Input;
  /** The counter expires (is deleted) at the leader's time + ttlMs; absent keeps its expiry. */
  ttlMs?: number;
}

/**
 * add()'s options with its mode: exact (default), eventual (a node's durable buffer,
 * docs/eventual.md), or auto (eventual under cluster.yaml eventual.prefixes). Not part of
 * AddOptions, so that an add given an AddOptions value keeps returning a MutationResult.
 */
export interface AddModeOptions extends AddOptions {
  mode?: "exact" | "eventual" | "auto";
}

export interface SetOptions extends CallOptions {
  ttlMs?: number;
}

export interface WindowAddOptions extends CallOptions {
  /** Event time (ms since the epoch); default: the leader's timestamp of the log entry. */
  eventTimeMs?: number;
  ttlMs?: number;
}

export interface WindowAddResult extends MutationResult {
  /** The event time the add used. */
  eventTimeMs: number;
}

export interface AcquireResult {
  allowed: boolean;
  /** What could still be taken now (after this grant, if granted). */
  remaining: bigint;
  /** 0 when allowed; else the exact wait until n would fit (absent other grants). */
  retryAfterMs: number;
  /** Log index of the limiter's last grant (0: never granted). */
  version: bigint;
  fence: Fence;
}

export type WindowAggregate = "sum" | "count" | "min" | "max" | "avg";

export interface WindowPoint {
  startMs: number;
  /** The aggregate is exactly value / divisor (divisor 1n except for avg). */
  value: bigint;
  divisor: bigint;
}

export interface WindowRangeResult {
  points: WindowPoint[];
  /** The tier that answered. */
  resolutionMs: number;
  /** 0n when the key does not exist. */
  version: bigint;
  fence: Fence;
  appliedIndex: bigint;
}

export interface WindowAtResult {
  startMs: number;
  resolutionMs: number;
  sum: bigint;
  count: number;
  version: bigint;
  fence: Fence;
  appliedIndex: bigint;
}

export interface ShardAnswer {
  shardId: number;
  slotStart: number;
  slotEnd: number;
  epoch: bigint;
  /** The shard's applied index the answer reflects (one consistent state per shard). */
  appliedIndex: bigint;
  fence: Fence;
}

export interface WatchOptions {
  /** Watch every key starting with the given bytes (on every shard) instead of one key. */
  prefix?: boolean;
  /** Changes after this log index (per shard; from a previous batch's index). Default: from now. */
  fromIndex?: bigint | number;
  /** The server coalesces changes over this long (latest per key); 10..10,000 ms, default 50. */
  coalesceMs?: number;
  /** Stops the watch (the iterator then ends). */
  signal?: AbortSignal;
  /** With prefix: follow only the shard holding this hash slot (one stream; fromIndex is that shard's). */
  slot?: number;
}

export interface WatchEvent {
  key: Buffer;
  value: bigint;
  version: bigint;
  kind: "counter" | "window" | "limit" | "unique" | "deleted";
  index: bigint;
}

export interface WatchBatch {
  shardId: number;
  /** Every change of the watched keys on this shard up to this index is delivered: resume from it. */
  index: bigint;
  events: WatchEvent[];
}

export interface UniqueCountResult {
  /** The HyperLogLog estimate of the union (standard error 0.81%). */
  count: number;
  /** The answering shards, one per shard the keys live on, with the applied index each answered at. */
  shards: Array<{ shardId: number; appliedIndex: bigint; fence: Fence }>;
}

export interface PrefixReadOptions extends ReadOptions {
  /**
   * Rank / aggregate windowed counters by their sum over [fromMs, toMs) (one WindowRange step; the
   * bounds must align with a tier, e.g. whole seconds within the last hour) instead of plain counters.
   */
  window?: { fromMs: number; toMs: number };
}

export interface TopKResult {
  entries: Array<{ key: Buffer; value: bigint }>;
  shards: ShardAnswer[];
}

export interface AggregateResult {
  count: number;
  /** Exact; may exceed int64. */
  sum: bigint;
  min: bigint | undefined;
  max: bigint | undefined;
  /** Floor average: sum = quotient * count + remainder, 0 <= remainder < count. */
  avg: { quotient: bigint; remainder: bigint; divisor: bigint } | undefined;
  shards: ShardAnswer[];
}

export type Consistency = "linearizable" | "stale";

export interface ReadOptions extends CallOptions {
  /** linearizable (default): the shard leader answers. stale: any replica, possibly behind. */
  consistency?: Consistency;
  /** The replica must have applied at least this index (monotonic reads with a fence's index). */
  minIndex?: bigint | number;
}

export interface MutationResult {
  /** The counter's value after the mutation. */
  value: bigint;
  /** Log index of the counter's last change. */
  version: bigint;
  fence: Fence;
  /** windowAdd: the event time used. */
  eventTimeMs?: number;
  /** tryAcquire: whether granted (value = remaining) and the wait when denied. */
  allowed?: boolean;
  retryAfterMs?: number;
  /** add on a hot key: value and version are the sub-counter's the add went to, not the sum. */
  subCounters?: number;
}

export interface ReadResult {
  /** 0n when the counter does not exist. */
  value: bigint;
  /** 0n when the counter does not exist. */
  version: bigint;
  exists: boolean;
  fence: Fence;
  /** The replica's applied index this answer reflects. */
  appliedIndex: bigint;
  /** A hot counter: how many sub-counters were summed (version, fence, appliedIndex are sub-counter 0's). */
  subCounters?: number;
}

export type BatchOp =
  | { op?: "add"; key: Key; delta?: Int64Input; floor?: Int64Input }
  | { op: "set"; key: Key; value: Int64Input }
  | { op: "reset"; key: Key }
  | { op: "compareAndSet"; key: Key; expectedVersion: bigint | number; value: Int64Input }
  | { op: "windowAdd"; key: Key; delta?: Int64Input; eventTimeMs?: number; ttlMs?: number }
  | { op: "tryAcquire"; key: Key; n: number; limit: number; windowMs: number }
  | { op: "uniqueAdd"; key: Key; items: Key[]; ttlMs?: number };

export interface PeerLag {
  nodeId: string;
  match: bigint;
  lag: bigint;
  state: string;
}

export interface GroupStatus {
  groupId: number;
  role: string;
  term: bigint;
  leaderId: string;
  commit: bigint;
  applied: bigint;
  lastIndex: bigint;
  leaseValid: boolean;
  epoch: bigint;
  peers: PeerLag[];
}

export interface NodeStatus {
  nodeId: string;
  clientAddress: string;
  zone: string;
  /** The machine it runs on: its id unless cluster.yaml names one (older nodes report none). */
  host: string;
  reachable: boolean;
  groups: GroupStatus[];
  error: string;
}

export interface ClusterStatus {
  /** The node that answered. */
  answeredBy: string;
  nodes: NodeStatus[];
}

export type { Fence, Int64Input, Key, RoutesSnapshot, ShardRoute };
