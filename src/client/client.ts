import * as grpc from "@grpc/grpc-js";
import { slotOf } from "../meta/slots.js";
import { assert } from "../util/assert.js";
import { monotonicMs } from "../util/clock.js";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotLeaderError,
  OverloadedError,
  TallyError,
  UnavailableError,
  WrongShardError,
  type ErrorCode,
} from "../util/errors.js";
import { componentLogger, type Logger } from "../util/log.js";
import { Cancellation } from "./cancellation.js";
import { decodeServiceError, errorInfoToError, type ErrorInfo } from "../api/error-details.js";
import {
  AmbiguousOperationError,
  BatchError,
  ClientClosedError,
  ClusterUnreachableError,
  TimeoutError,
  type BatchOutcome,
  type MutationKind,
} from "./errors.js";
import { NodeConnection, type PipelineOutcome } from "./node-connection.js";
import type {
  BatchOpMessage,
  GetResponseMessage,
  KeepAliveRequestMessage,
  KeepAliveResponseMessage,
  PipelineOpName,
  PipelineOps,
  PipelineResponseMessage,
  ReadFieldsMessage,
  RegisterSessionRequestMessage,
  ShardAnswerMessage,
  WatchBatchMessage,
  WatchRequestMessage,
  RegisterSessionResponseMessage,
  RequestHeaderMessage,
  RoutesResponseMessage,
  StatusResponseMessage,
} from "../api/proto.js";
import { RouteTable, type RoutesSnapshot, type ShardRoute } from "./routing.js";
import { combineHotRead, planHotRead, type HotKeyRoute } from "./hot.js";
import { HOT_READ_REFUSED, HOT_SUB_COUNTERS_MAX, hotSubKey } from "../meta/hot.js";
import { HyperLogLog } from "../shard/kinds/hll.js";
import { mergeAggregates, mergeTopK, TOP_K_MAX } from "../shard/kinds/topk.js";
import { ShardSession } from "./session.js";
import { decodePackedResults, encodePackedAddsField, type PackedResult } from "../api/packed-batch.js";
import { clientTlsCredentials, type ClientTlsOptions } from "../util/tls.js";
import {
  BATCH_OPS_MAX,
  encodeKey,
  fenceFromMessage,
  int64Wire,
  KEY_BYTES_MAX,
  toInt64,
  toUint64,
  wireBigInt,
  type Fence,
  type Int64Input,
  type Key,
} from "./values.js";

// ---- Public types -------------------------------------------------------------------------------

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

function windowFields(options: PrefixReadOptions): { windowFromMs?: string; windowToMs?: string } {
  if (options.window === undefined) return {};
  const fromMs = toUint64(options.window.fromMs, "window.fromMs");
  const toMs = toUint64(options.window.toMs, "window.toMs");
  if (toMs <= fromMs) throw new InvalidArgumentError(`window.toMs ${toMs} must be above window.fromMs ${fromMs}`);
  return { windowFromMs: int64Wire(fromMs), windowToMs: int64Wire(toMs) };
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

// ---- Internals ----------------------------------------------------------------------------------

const DEFAULTS = {
  deadlineMs: 10_000,
  attemptTimeoutMs: 2_000,
  connectTimeoutMs: 1_000,
  autoBatch: true,
  batchWindowMs: 0,
  maxBatchOps: 1_000,
  maxInflightOps: 65_536,
  keepAliveIntervalMs: 10_000,
  retryBackoffMs: 10,
  retryBackoffMaxMs: 1_000,
} as const;

/** After a connection failure, prefer other replicas for this long. */
const NODE_AVOID_MS = 1_000;
/** Background map refreshes (after NOT_LEADER, connection loss) at most this often. */
const ROUTES_REFRESH_MIN_INTERVAL_MS = 100;

interface MutationOp {
  kind: MutationKind;
  keyInput: Key;
  key: Buffer;
  slot: number;
  delta: bigint;
  floor: bigint | undefined;
  value: bigint;
  expectedVersion: bigint;
  /** The kinds' fields (0n / empty = unset). */
  ttlMs: bigint;
  eventTimeMs: bigint;
  n: bigint;
  limit: bigint;
  windowMs: bigint;
  items: Buffer[];
}

type KindFields = Partial<Pick<MutationOp, "ttlMs" | "eventTimeMs" | "n" | "limit" | "windowMs" | "items">>;

const SLOT_COUNT = 16_384;
/** A read of a hot key refused for naming an older sub-counter count refreshes the routes at most this often. */
const HOT_REFRESHES_MAX = 5;
const HOT_REFRESH_DELAY_MS = 100;
/** Routes older than this are refreshed (in the background) when a hot key is written. */
const HOT_ROUTES_MAX_AGE_MS = 2_000;

function optionalUint64(value: unknown, what: string): bigint {
  return value === undefined ? 0n : toUint64(value, what);
}

type LeaveReason = "deadline" | "abort";

/** One caller waiting for one mutation. Settles exactly once. */
class Waiter {
  settled = false;
  /** The current owner's handler for an early exit (deadline or abort). */
  leave: ((waiter: Waiter, reason: LeaveReason) => void) | undefined;
  /** The server named this op as the cause of its batch's failure. */
  blamed = false;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly onAbort: (() => void) | undefined;

  constructor(
    readonly op: MutationOp,
    readonly deadlineAtMs: number,
    readonly signal: AbortSignal | undefined,
    private readonly resolveFn: (result: MutationResult) => void,
    private readonly rejectFn: (error: unknown) => void,
    private readonly onSettled: () => void,
    /** False when the owner runs one shared deadline timer for many waiters (addBatch). */
    ownTimer = true,
  ) {
    this.timer = ownTimer ? setTimeout(() => this.leave?.(this, "deadline"), Math.max(0, deadlineAtMs - monotonicMs())) : undefined;
    if (signal !== undefined) {
      this.onAbort = () => this.leave?.(this, "abort");
      signal.addEventListener("abort", this.onAbort, { once: true });
    }
  }

  resolve(result: MutationResult): void {
    if (this.finish()) this.resolveFn(result);
  }

  reject(error: unknown): void {
    if (this.finish()) this.rejectFn(error);
  }

  private finish(): boolean {
    if (this.settled) return false;
    this.settled = true;
    clearTimeout(this.timer);
    if (this.onAbort !== undefined) this.signal?.removeEventListener("abort", this.onAbort);
    this.onSettled();
    return true;
  }
}

interface UnitEntry {
  op: MutationOp;
  waiter: Waiter;
}

/**
 * One mutation request: one or more ops sent under one (clientId, seq), retried with that same
 * seq until a definite answer. `atomic` units are a caller's addBatch group (they fail together);
 * the others are auto-batches, whose callers are independent.
 *
 * Invariant: the entries (the request's content) change only while the outcome is known not to be
 * applied (`!outcomeUnknown`), and then the seq is released and a new one taken, so one seq always
 * names one request.
 */
class MutationUnit {
  shardId: number | undefined;
  session: ShardSession | undefined;
  seq: bigint | undefined;
  /** An attempt is on the wire. */
  inFlight = false;
  /** Some attempt ended without a definite answer: it may have been applied. */
  unresolved = false;
  lastError: unknown;
  /** Attempts that timed out so far: each next attempt waits twice as long (see attemptTimeout). */
  timeouts = 0;
  /** Cancelled when every caller has left or the client closes. */
  readonly cancellation = new Cancellation();

  constructor(
    public entries: UnitEntry[],
    readonly atomic: boolean,
  ) {
    assert(entries.length >= 1 && entries.length <= BATCH_OPS_MAX, `unit size out of range: ${entries.length}`);
    assert(entries.every((entry) => !entry.waiter.settled), "a unit starts with live callers only");
    this.liveCount = entries.length;
  }

  get outcomeUnknown(): boolean {
    return this.inFlight || this.unresolved;
  }

  /**
   * Callers still waiting. Invariant: equals the number of unsettled waiters while the unit runs;
   * only onWaiterLeave settles a waiter before the unit finishes, and it decrements this.
   */
  liveCount: number;

  get deadlineAtMs(): number {
    let deadline = Number.NEGATIVE_INFINITY;
    for (const entry of this.entries) if (!entry.waiter.settled) deadline = Math.max(deadline, entry.waiter.deadlineAtMs);
    return deadline;
  }
}

/** Gets of one turn to one shard, sent together as a GetMany. */
interface PendingGets {
  consistency: Consistency;
  keys: Buffer[];
  waiters: Array<{ resolve(result: ReadResult): void; reject(error: unknown): void }>;
  /** Sent already (it filled up before the end of the turn). */
  flushed: boolean;
}

interface PendingBatch {
  entries: UnitEntry[];
  /** Ends the wait (the end of the event-loop turn, or the window's timer). */
  cancelFlush(): void;
}

type SlotRouting = { kind: "single"; route: ShardRoute } | { kind: "split"; groups: Map<number, number[]> };

class AttemptError extends Error {
  constructor(
    readonly error: TallyError,
    readonly address: string,
  ) {
    super(error.message);
  }
}

/**
 * The error when the cluster refused the caller's credentials (UNAUTHENTICATED) or role
 * (PERMISSION_DENIED): definite, and the same on every node, so never retried.
 */
function accessDenied(error: unknown): TallyError | undefined {
  const cause = error instanceof AttemptError ? error.error : error;
  return cause instanceof TallyError && (cause.code === "UNAUTHENTICATED" || cause.code === "PERMISSION_DENIED") ? cause : undefined;
}

function describeKey(key: Key): string {
  return typeof key === "string" ? JSON.stringify(key) : `0x${Buffer.from(key).toString("hex")}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

type ResolvedOptions = Required<Omit<TallyClientOptions, "credentials" | "logger" | "tls" | "token">>;

/** Checks options and their relationships once, at construction (etcd Config.validate style). */
function validateOptions(options: TallyClientOptions): ResolvedOptions {
  if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) {
    throw new InvalidArgumentError("endpoints must be a non-empty array of host:port");
  }
  for (const endpoint of options.endpoints) {
    if (typeof endpoint !== "string" || !/^[^\s,]+:\d{1,5}$/.test(endpoint)) {
      throw new InvalidArgumentError(`endpoint must be host:port, got ${JSON.stringify(endpoint)}`);
    }
  }
  const resolved: ResolvedOptions = {
    endpoints: [...options.endpoints],
    deadlineMs: options.deadlineMs ?? DEFAULTS.deadlineMs,
    attemptTimeoutMs: options.attemptTimeoutMs ?? DEFAULTS.attemptTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    autoBatch: options.autoBatch ?? DEFAULTS.autoBatch,
    batchWindowMs: options.batchWindowMs ?? DEFAULTS.batchWindowMs,
    maxBatchOps: options.maxBatchOps ?? DEFAULTS.maxBatchOps,
    maxInflightOps: options.maxInflightOps ?? DEFAULTS.maxInflightOps,
    keepAliveIntervalMs: options.keepAliveIntervalMs ?? DEFAULTS.keepAliveIntervalMs,
    retryBackoffMs: options.retryBackoffMs ?? DEFAULTS.retryBackoffMs,
    retryBackoffMaxMs: options.retryBackoffMaxMs ?? DEFAULTS.retryBackoffMaxMs,
  };
  const positive = [
    "deadlineMs",
    "attemptTimeoutMs",
    "connectTimeoutMs",
    "maxBatchOps",
    "maxInflightOps",
    "keepAliveIntervalMs",
    "retryBackoffMs",
    "retryBackoffMaxMs",
  ] as const;
  for (const name of positive) {
    const value = resolved[name];
    if (!(typeof value === "number" && Number.isFinite(value) && value > 0)) {
      throw new InvalidArgumentError(`${name} must be a positive number, got ${String(value)}`);
    }
  }
  if (typeof resolved.autoBatch !== "boolean") throw new InvalidArgumentError(`autoBatch must be a boolean, got ${String(resolved.autoBatch)}`);
  if (!(typeof resolved.batchWindowMs === "number" && Number.isFinite(resolved.batchWindowMs) && resolved.batchWindowMs >= 0)) {
    throw new InvalidArgumentError(`batchWindowMs must be >= 0, got ${String(resolved.batchWindowMs)}`);
  }
  if (!(Number.isInteger(resolved.maxBatchOps) && resolved.maxBatchOps <= BATCH_OPS_MAX)) {
    throw new InvalidArgumentError(`maxBatchOps must be an integer in 1..${BATCH_OPS_MAX}`);
  }
  if (!Number.isInteger(resolved.maxInflightOps)) throw new InvalidArgumentError("maxInflightOps must be an integer");
  if (resolved.retryBackoffMaxMs < resolved.retryBackoffMs) {
    throw new InvalidArgumentError("retryBackoffMaxMs must be >= retryBackoffMs");
  }
  return resolved;
}

/**
 * The tally client. Routes each key to its shard (hash slots, src/meta/slots.ts) and that shard's
 * leader, multiplexes operations over one Pipeline stream per node, and makes every mutation
 * exactly-once through per-shard sessions: a mutation is retried with the same (clientId, seq)
 * until the cluster gives a definite answer or the deadline passes, and then it is reported as
 * AmbiguousError, never as failed.
 */
export class TallyClient {
  private readonly options: ResolvedOptions;
  private readonly credentials: grpc.ChannelCredentials;
  private readonly token: string | undefined;
  private readonly logger: Logger;
  private readonly routeTable = new RouteTable();
  private readonly connections = new Map<string, NodeConnection>();
  private readonly failedAtMs = new Map<string, number>();
  private readonly sessions = new Map<number, ShardSession>();
  private readonly registrations = new Map<number, Promise<ShardSession>>();
  private readonly batches = new Map<number, PendingBatch>();
  /** Gets waiting for the end of this turn, by consistency and shard. */
  private readonly pendingGets = new Map<string, PendingGets>();
  private readonly activeUnits = new Set<MutationUnit>();
  private readonly activeReads = new Set<Cancellation>();
  private readonly loops = new Set<Promise<void>>();
  private readonly keepAliveTimer: NodeJS.Timeout;
  private readonly keepAlivesInFlight = new Set<number>();
  private refreshing: Promise<void> | undefined;
  private lastRefreshAtMs = Number.NEGATIVE_INFINITY;
  private rotation = 0;
  private inflightOps = 0;
  private closed = false;

  constructor(options: TallyClientOptions) {
    this.options = validateOptions(options);
    this.credentials = options.credentials ?? (options.tls ? clientTlsCredentials(options.tls) : grpc.credentials.createInsecure());
    if (options.token !== undefined && (typeof options.token !== "string" || !/^[\x21-\x7e]+$/.test(options.token))) {
      // The message never repeats the token.
      throw new InvalidArgumentError("token must be a non-empty string of printable ASCII without spaces");
    }
    this.token = options.token;
    this.logger = options.logger ?? componentLogger("client");
    this.keepAliveTimer = setInterval(() => this.keepAliveTick(), this.options.keepAliveIntervalMs);
    // The timer must not keep a process alive on its own; open channels do that while in use.
    this.keepAliveTimer.unref();
  }

  // ---- Public API -------------------------------------------------------------------------------

  /** Fetches the routing map now (one pass over the known nodes). Optional: operations do it lazily. */
  async connect(): Promise<void> {
    this.checkOpen();
    await this.refreshRoutes();
  }

  /** Adds delta (default 1) to the counter and returns its new value. */
  async add(key: Key, delta: Int64Input = 1n, options: AddOptions = {}): Promise<MutationResult> {
    const op = this.makeOp("add", key, {
      delta: toInt64(delta, "delta"),
      floor: options.floor === undefined ? undefined : toInt64(options.floor, "floor"),
      ttlMs: optionalUint64(options.ttlMs, "ttlMs"),
    });
    const result = await this.submit(op, options, true);
    const hot = this.routeTable.hot.lookup(op.key);
    return hot === undefined ? result : { ...result, subCounters: hot.tags.length };
  }

  async set(key: Key, value: Int64Input, options: SetOptions = {}): Promise<MutationResult> {
    return this.submit(this.makeOp("set", key, { value: toInt64(value, "value"), ttlMs: optionalUint64(options.ttlMs, "ttlMs") }), options, false);
  }

  /**
   * Adds delta to a windowed counter (buckets of 1 s for 1 h, 1 min for 1 day, 1 h for 1 year) at
   * eventTimeMs (default: the leader's entry time). Exactly once like add, and batchable with it.
   */
  async addWindowed(key: Key, delta: Int64Input = 1n, options: WindowAddOptions = {}): Promise<WindowAddResult> {
    const op = this.makeOp("windowAdd", key, {
      delta: toInt64(delta, "delta"),
      eventTimeMs: optionalUint64(options.eventTimeMs, "eventTimeMs"),
      ttlMs: optionalUint64(options.ttlMs, "ttlMs"),
    });
    const result = await this.submit(op, options, true);
    return { ...result, eventTimeMs: result.eventTimeMs ?? 0 };
  }

  /**
   * Exact sliding-window rate limit: takes n if the grants in the last windowMs plus n stay within
   * limit. One replicated round trip; a retry returns the first outcome, never acquires twice.
   */
  async tryAcquire(key: Key, n: number, limit: number, windowMs: number, options: CallOptions = {}): Promise<AcquireResult> {
    const op = this.makeOp("tryAcquire", key, {
      n: toUint64(n, "n"),
      limit: toUint64(limit, "limit"),
      windowMs: toUint64(windowMs, "windowMs"),
    });
    if (op.limit < 1n) throw new InvalidArgumentError("limit must be >= 1");
    if (op.windowMs < 1n) throw new InvalidArgumentError("windowMs must be >= 1");
    if (op.n > op.limit) throw new InvalidArgumentError(`n ${op.n} exceeds limit ${op.limit}: it could never be granted`);
    const result = await this.submit(op, options, true);
    return { allowed: result.allowed ?? false, remaining: result.value, retryAfterMs: result.retryAfterMs ?? 0, version: result.version, fence: result.fence };
  }

  /** Adds items to a HyperLogLog unique count; value 1n if the sketch changed. */
  async uniqueAdd(key: Key, items: Key[], options: SetOptions = {}): Promise<MutationResult> {
    return this.submit(this.makeOp("uniqueAdd", key, { items: itemsOf(items), ttlMs: optionalUint64(options.ttlMs, "ttlMs") }), options, true);
  }

  /** Deletes the counter (a later get says exists: false). */
  async reset(key: Key, options: CallOptions = {}): Promise<MutationResult> {
    const op = this.makeOp("reset", key, {});
    await this.ensureRoutes();
    const hot = this.routeTable.hot.lookup(op.key);
    if (hot === undefined) return this.submit(op, options, false);
    // A hot counter: every sub-counter, each exactly once; not atomic across them.
    const results = await Promise.all(hot.tags.map((tag) => this.submit(this.makeOp("reset", hotSubKey(hot.key, tag), {}), options, false, true)));
    return results[0]!;
  }

  /** Sets value if the counter's version is expectedVersion (0 = the counter must not exist). */
  async compareAndSet(
    key: Key,
    expectedVersion: bigint | number,
    value: Int64Input,
    options: CallOptions = {},
  ): Promise<MutationResult> {
    const op = this.makeOp("compareAndSet", key, {
      expectedVersion: toUint64(expectedVersion, "expectedVersion"),
      value: toInt64(value, "value"),
    });
    return this.submit(op, options, false);
  }

  /**
   * Many mutations, results in the given order. Ops are grouped by shard, one request per shard;
   * each shard's group is applied atomically (all or none), but a batch spanning shards is NOT
   * atomic across them: on failure the BatchError says op by op what happened.
   */
  async addBatch(ops: BatchOp[], options: CallOptions = {}): Promise<MutationResult[]> {
    this.checkOpen();
    if (!Array.isArray(ops)) throw new InvalidArgumentError("ops must be an array");
    if (ops.length > BATCH_OPS_MAX) throw new InvalidArgumentError(`a batch holds at most ${BATCH_OPS_MAX} ops, got ${ops.length}`);
    if (ops.length === 0) return [];
    const parsed = ops.map((op, index) => this.parseBatchOp(op, index));
    const deadlineAtMs = this.deadlineFor(options);
    this.admit(parsed.length, options.signal);
    await this.ensureRoutes();
    if (this.routeTable.hot.size > 0) parsed.forEach((op, index) => (parsed[index] = this.spreadHot(op, false, index)));
    const outcomes: BatchOutcome<MutationResult>[] = new Array(parsed.length);
    // One counter and one promise for the whole batch, not one promise per op: at 10,000 ops a
    // request the per-op promises and timers were a visible share of the client's CPU.
    let unsettled = parsed.length;
    let resolveAll!: () => void;
    const allSettled = new Promise<void>((resolve) => (resolveAll = resolve));
    const onOutcome = () => {
      unsettled--;
      assert(unsettled >= 0, "a batch op settled twice");
      if (unsettled === 0) resolveAll();
    };
    const waiters: Waiter[] = parsed.map(
      (op, index) =>
        new Waiter(
          op,
          deadlineAtMs,
          options.signal,
          (result) => {
            outcomes[index] = { ok: true, result };
            onOutcome();
          },
          (error) => {
            outcomes[index] = { ok: false, error: error instanceof TallyError ? error : new TallyError("INTERNAL", messageOf(error), { cause: error }) };
            onOutcome();
          },
          () => this.inflightOps--,
          false,
        ),
    );
    this.inflightOps += parsed.length;
    // Every op of the batch shares one deadline, so one timer serves them all.
    const deadlineTimer = setTimeout(
      () => {
        for (const waiter of waiters) if (!waiter.settled) waiter.leave?.(waiter, "deadline");
      },
      Math.max(0, deadlineAtMs - monotonicMs()),
    );
    const groups = new Map<number, UnitEntry[]>();
    for (const waiter of waiters) {
      const shardId = this.routeTable.lookup(waiter.op.slot)?.shardId ?? -1;
      let group = groups.get(shardId);
      if (group === undefined) {
        group = [];
        groups.set(shardId, group);
      }
      group.push({ op: waiter.op, waiter });
    }
    for (const entries of groups.values()) this.startUnit(entries, true);
    try {
      await allSettled;
    } finally {
      clearTimeout(deadlineTimer);
    }
    if (outcomes.every((outcome) => outcome.ok)) return outcomes.map((outcome) => (outcome as { result: MutationResult }).result);
    const failures = outcomes.filter((outcome): outcome is { ok: false; error: TallyError } => !outcome.ok);
    const ambiguous = failures.find((outcome) => outcome.error.code === "AMBIGUOUS");
    const first = ambiguous ?? failures[0]!;
    const blamedIndex = waiters.findIndex((waiter) => waiter.blamed);
    throw new BatchError(
      first.error.code,
      `batch failed for ${failures.length} of ${outcomes.length} ops: ${first.error.message}`,
      outcomes,
      blamedIndex >= 0 ? blamedIndex : undefined,
      first.error,
    );
  }

  async get(key: Key, options: ReadOptions = {}): Promise<ReadResult> {
    // Plain gets (no deadline, signal or minIndex of their own) made in one event-loop turn to one
    // shard go as one GetMany, like auto-batched adds: one message and one lease check for many.
    if (this.options.autoBatch && options.deadlineMs === undefined && options.signal === undefined && options.minIndex === undefined) {
      const consistency = options.consistency ?? "linearizable";
      if (consistency === "linearizable" || consistency === "stale") {
        const coalesced = this.coalesceGet(key, consistency);
        if (coalesced !== undefined) return coalesced;
      }
    }
    const results = await this.read([key], options, "get");
    assert(results.length === 1, "get returned a wrong number of results");
    return results[0]!;
  }

  /** Reads many keys (grouped by shard, one request per shard); results in the given order. */
  async getMany(keys: Key[], options: ReadOptions = {}): Promise<ReadResult[]> {
    if (!Array.isArray(keys)) throw new InvalidArgumentError("keys must be an array");
    if (keys.length > BATCH_OPS_MAX) throw new InvalidArgumentError(`getMany reads at most ${BATCH_OPS_MAX} keys, got ${keys.length}`);
    if (keys.length === 0) return [];
    return this.read(keys, options, "getMany");
  }

  /** The routing map, freshly fetched: shards, slot ranges, epochs, replicas, believed leaders. */
  async routes(): Promise<RoutesSnapshot> {
    this.checkOpen();
    await this.refreshRoutes(true);
    return this.routeTable.snapshot();
  }

  /** AdminService.Status from the first node that answers. */
  async status(options: CallOptions = {}): Promise<ClusterStatus> {
    this.checkOpen();
    const deadlineAtMs = this.deadlineFor(options);
    let lastError: unknown;
    let answered = false;
    for (const address of this.discoveryAddresses()) {
      if (options.signal?.aborted) throw options.signal.reason;
      const remainingMs = deadlineAtMs - monotonicMs();
      if (remainingMs <= 0) break;
      const outcome = await this.connection(address).unary<object, StatusResponseMessage>(
        "admin",
        "Status",
        {},
        monotonicMs() + Math.min(remainingMs, this.options.attemptTimeoutMs),
      );
      if (outcome.kind === "reply") return statusFromMessage(address, outcome.response);
      lastError = outcome.error;
      if (nodeAnswered(outcome.error, outcome.info)) answered = true;
    }
    if (answered) throw lastError;
    throw new ClusterUnreachableError(this.discoveryAddresses(), { cause: lastError });
  }

  /**
   * One AdminService call for operators (tallyctl): tries the nodes in turn and follows NOT_LEADER
   * hints, so membership and placement requests reach the metadata leader. `method` is the RPC name
   * ("ClusterMap", "NodeState", "ShardMove", ...); the reply is the decoded response message.
   */
  async admin<Response = Record<string, unknown>>(method: string, request: object, options: CallOptions & { address?: string } = {}): Promise<Response> {
    this.checkOpen();
    const deadlineAtMs = this.deadlineFor(options);
    const queue = options.address !== undefined ? [options.address] : [...this.discoveryAddresses()];
    // Each address at most twice: a NOT_LEADER hint may name a node asked before the election settled.
    const attempts = new Map<string, number>();
    let lastError: unknown;
    let answered = false;
    while (queue.length > 0) {
      const address = queue.shift()!;
      const attempt = (attempts.get(address) ?? 0) + 1;
      if (attempt > 2) continue;
      attempts.set(address, attempt);
      const remainingMs = deadlineAtMs - monotonicMs();
      if (remainingMs <= 0) break;
      const outcome = await this.connection(address).unary<object, Response>("admin", method, request, monotonicMs() + Math.min(remainingMs, this.options.attemptTimeoutMs));
      if (outcome.kind === "reply") return outcome.response;
      lastError = outcome.error;
      if (nodeAnswered(outcome.error, outcome.info)) answered = true;
      // A node that cannot be reached did not take the request: ask the next one (tallyctl failover,
      // rebalance, status run while a node is down). A timeout is thrown: the call may have arrived.
      else if (options.address === undefined && outcome.error.code === "UNAVAILABLE") continue;
      if (outcome.error.code !== "NOT_LEADER") throw outcome.error;
      const hint = outcome.info?.leaderAddress;
      if (hint && hint !== address) {
        queue.unshift(hint);
      } else if (options.address === undefined && queue.length === 0 && monotonicMs() < deadlineAtMs - 300) {
        // No leader known yet (an election): wait a little and go round again.
        await new Promise((resolve) => setTimeout(resolve, 250));
        queue.push(...this.discoveryAddresses());
      }
    }
    if (answered) throw lastError;
    throw new ClusterUnreachableError(this.discoveryAddresses(), { cause: lastError });
  }

  /**
   * A server-streaming AdminService call on one node (tallyctl backup: "ShardBackup"). Yields the
   * messages in order; a failure is thrown as the typed error the server sent (a NOT_LEADER names
   * the leader's address), or UNAVAILABLE when the node cannot be reached. Breaking out of the
   * loop cancels the call.
   */
  async *adminStream<Response>(method: string, request: object, address: string): AsyncGenerator<Response> {
    this.checkOpen();
    const stream = this.connection(address).serverStream<object, Response>(method, request, "admin");
    try {
      for await (const message of stream as AsyncIterable<Response>) yield message;
    } catch (error) {
      throw decodeServiceError(error).error;
    } finally {
      stream.cancel();
    }
  }

  /**
   * Closes streams, channels and timers. Operations still waiting are rejected: a mutation that
   * was sent with AmbiguousError, anything else with ClientClosedError. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepAliveTimer);
    for (const [shardId, batch] of this.batches) {
      batch.cancelFlush();
      this.batches.delete(shardId);
      for (const entry of batch.entries) entry.waiter.reject(new ClientClosedError());
    }
    for (const unit of this.activeUnits) unit.cancellation.cancel();
    for (const cancellation of this.activeReads) cancellation.cancel();
    for (const connection of this.connections.values()) connection.close();
    await Promise.allSettled([...this.loops]);
    this.connections.clear();
  }

  // ---- Mutations --------------------------------------------------------------------------------

  private makeOp(
    kind: MutationKind,
    keyInput: Key,
    fields: { delta?: bigint; floor?: bigint | undefined; value?: bigint; expectedVersion?: bigint } & KindFields,
  ): MutationOp {
    const key = encodeKey(keyInput);
    return {
      kind,
      keyInput,
      key,
      slot: slotOf(key),
      delta: fields.delta ?? 0n,
      floor: fields.floor,
      value: fields.value ?? 0n,
      expectedVersion: fields.expectedVersion ?? 0n,
      ttlMs: fields.ttlMs ?? 0n,
      eventTimeMs: fields.eventTimeMs ?? 0n,
      n: fields.n ?? 0n,
      limit: fields.limit ?? 0n,
      windowMs: fields.windowMs ?? 0n,
      items: fields.items ?? [],
    };
  }

  /**
   * An op on a hot key: an add goes to one sub-counter (a new op, so its retries keep that key);
   * ops that cannot apply to a sum are refused here, before anything is sent.
   */
  private spreadHot(op: MutationOp, hotReset: boolean, batchIndex?: number): MutationOp {
    const hot = this.routeTable.hot.lookup(op.key);
    if (hot === undefined || (op.kind === "reset" && hotReset)) return op;
    const where = batchIndex === undefined ? "" : `ops[${batchIndex}]: `;
    if (op.kind !== "add" || op.floor !== undefined || op.ttlMs !== 0n) {
      const what = op.kind !== "add" ? (op.kind === "reset" ? "a reset inside a batch (use reset())" : `a ${op.kind}`) : "an add with a floor or TTL";
      throw new FailedPreconditionError(`${where}key ${describeKey(op.keyInput)} is a hot counter over ${hot.tags.length} sub-counters: ${what} cannot apply to a sum (only add, get and reset)`);
    }
    // A raised count reaches a client that only writes through a periodic look at the routes.
    if (monotonicMs() - this.lastRefreshAtMs > HOT_ROUTES_MAX_AGE_MS) this.refreshRoutesSoon();
    const key = this.routeTable.hot.nextSubKey(hot);
    return { ...op, key, slot: slotOf(key) };
  }

  /**
   * Declares key a hot counter over subCounters sub-counters on different shards, or raises the
   * count (it never shrinks). Adds spread over the new sub-counters once every node has the map;
   * this waits for that (up to the deadline) and returns the state then.
   */
  async declareHot(key: Key, subCounters: number, options: CallOptions = {}): Promise<HotKeyRoute & { summary: string }> {
    const encoded = encodeKey(key);
    if (!(Number.isInteger(subCounters) && subCounters >= 2 && subCounters <= HOT_SUB_COUNTERS_MAX)) {
      throw new InvalidArgumentError(`subCounters must be an integer in 2..${HOT_SUB_COUNTERS_MAX}, got ${String(subCounters)}`);
    }
    const deadlineAtMs = this.deadlineFor(options);
    // Only a counter can be spread (a check, not a lock: a kind's first write racing it would win).
    await this.get(encoded, options).catch((error: unknown) => {
      if (error instanceof TallyError && error.code === "FAILED_PRECONDITION" && /holds a/.test(error.message)) {
        throw new FailedPreconditionError(`cannot declare it hot: ${error.message}`);
      }
      throw error;
    });
    const reply = await this.admin<{ summary: string }>("DeclareHot", { key: encoded, subCounters }, options);
    for (;;) {
      await this.refreshRoutes();
      const route = this.routeTable.hot.lookup(encoded);
      if ((route !== undefined && route.tags.length >= subCounters && route.writable >= route.tags.length) || monotonicMs() + HOT_REFRESH_DELAY_MS >= deadlineAtMs) {
        return { key: encoded, tags: route?.tags ?? [], writable: route?.writable ?? 0, summary: reply.summary };
      }
      await new Promise((resolve) => setTimeout(resolve, HOT_REFRESH_DELAY_MS));
    }
  }

  /** The hot counters in the routes (refreshed now). */
  async hotKeys(options: CallOptions = {}): Promise<HotKeyRoute[]> {
    this.checkOpen();
    this.deadlineFor(options);
    await this.refreshRoutes(true);
    return this.routeTable.hot.list();
  }

  private parseBatchOp(op: BatchOp, index: number): MutationOp {
    if (op === null || typeof op !== "object") throw new InvalidArgumentError(`ops[${index}] must be an object`);
    try {
      switch (op.op) {
        case undefined:
        case "add":
          return this.makeOp("add", op.key, {
            delta: toInt64(op.delta ?? 1n, "delta"),
            floor: op.floor === undefined ? undefined : toInt64(op.floor, "floor"),
          });
        case "windowAdd":
          return this.makeOp("windowAdd", op.key, {
            delta: toInt64(op.delta ?? 1n, "delta"),
            eventTimeMs: optionalUint64(op.eventTimeMs, "eventTimeMs"),
            ttlMs: optionalUint64(op.ttlMs, "ttlMs"),
          });
        case "tryAcquire":
          return this.makeOp("tryAcquire", op.key, { n: toUint64(op.n, "n"), limit: toUint64(op.limit, "limit"), windowMs: toUint64(op.windowMs, "windowMs") });
        case "uniqueAdd":
          return this.makeOp("uniqueAdd", op.key, { items: itemsOf(op.items), ttlMs: optionalUint64(op.ttlMs, "ttlMs") });
        case "set":
          return this.makeOp("set", op.key, { value: toInt64(op.value, "value") });
        case "reset":
          return this.makeOp("reset", op.key, {});
        case "compareAndSet":
          return this.makeOp("compareAndSet", op.key, {
            expectedVersion: toUint64(op.expectedVersion, "expectedVersion"),
            value: toInt64(op.value, "value"),
          });
        default:
          throw new InvalidArgumentError(`unknown op ${JSON.stringify((op as { op: unknown }).op)}`);
      }
    } catch (error) {
      if (error instanceof InvalidArgumentError) throw new InvalidArgumentError(`ops[${index}]: ${error.message}`);
      throw error;
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new ClientClosedError();
  }

  private deadlineFor(options: CallOptions): number {
    const deadlineMs = options.deadlineMs ?? this.options.deadlineMs;
    if (!(typeof deadlineMs === "number" && deadlineMs > 0)) throw new InvalidArgumentError(`deadlineMs must be positive, got ${String(deadlineMs)}`);
    return monotonicMs() + deadlineMs;
  }

  private admit(count: number, signal: AbortSignal | undefined): void {
    this.checkOpen();
    if (signal?.aborted) throw signal.reason;
    if (this.inflightOps + count > this.options.maxInflightOps) {
      throw new OverloadedError(`client has ${this.inflightOps} operations in flight (maxInflightOps ${this.options.maxInflightOps})`);
    }
  }

  private async ensureRoutes(): Promise<void> {
    if (!this.routeTable.isEmpty) return;
    try {
      await this.refreshRoutes();
    } catch {
      // The operation's retry loop keeps trying until its deadline.
    }
  }

  private async submit(op: MutationOp, options: CallOptions, batchable: boolean, hotReset = false): Promise<MutationResult> {
    const deadlineAtMs = this.deadlineFor(options);
    this.admit(1, options.signal);
    await this.ensureRoutes();
    this.admit(1, options.signal);
    if (this.routeTable.hot.size > 0) op = this.spreadHot(op, hotReset);
    return new Promise<MutationResult>((resolve, reject) => {
      const waiter = new Waiter(op, deadlineAtMs, options.signal, resolve, reject, () => this.inflightOps--);
      this.inflightOps++;
      const entry: UnitEntry = { op, waiter };
      const route = this.routeTable.isEmpty ? undefined : this.routeTable.lookup(op.slot);
      if (batchable && this.options.autoBatch && route !== undefined) {
        this.enqueueBatch(route.shardId, entry);
      } else {
        this.startUnit([entry], false);
      }
    });
  }

  private enqueueBatch(shardId: number, entry: UnitEntry): void {
    let batch = this.batches.get(shardId);
    if (batch === undefined) {
      batch = { entries: [], cancelFlush: this.scheduleFlush(shardId) };
      this.batches.set(shardId, batch);
    }
    const pending = batch;
    pending.entries.push(entry);
    entry.waiter.leave = (waiter, reason) => {
      // Still queued: nothing was sent, so leaving is a plain failure.
      const index = pending.entries.indexOf(entry);
      if (index >= 0) pending.entries.splice(index, 1);
      waiter.reject(reason === "abort" ? waiter.signal?.reason : new TimeoutError("deadline passed before the request was sent"));
    };
    if (pending.entries.length >= this.options.maxBatchOps) this.flushBatch(shardId);
  }

  /** Schedules an auto-batch's send; returns how to cancel it. */
  private scheduleFlush(shardId: number): () => void {
    if (this.options.batchWindowMs === 0) {
      const immediate = setImmediate(() => this.flushBatch(shardId));
      return () => clearImmediate(immediate);
    }
    const timer = setTimeout(() => this.flushBatch(shardId), this.options.batchWindowMs);
    return () => clearTimeout(timer);
  }

  private flushBatch(shardId: number): void {
    const batch = this.batches.get(shardId);
    if (batch === undefined) return;
    this.batches.delete(shardId);
    batch.cancelFlush();
    const live = batch.entries.filter((entry) => !entry.waiter.settled);
    if (live.length > 0) this.startUnit(live, false);
  }

  private startUnit(entries: UnitEntry[], atomic: boolean): void {
    const live = entries.filter((entry) => !entry.waiter.settled);
    if (live.length === 0) return;
    const unit = new MutationUnit(live, atomic);
    for (const entry of live) entry.waiter.leave = (waiter, reason) => this.onWaiterLeave(unit, waiter, reason);
    if (this.closed) {
      this.failUnit(unit, new ClientClosedError());
      return;
    }
    this.activeUnits.add(unit);
    const loop = this.runUnit(unit)
      .catch((error: unknown) => {
        // A bug, not an expected failure: fail the callers loudly rather than hang them.
        this.logger.error({ err: error }, "mutation loop failed");
        this.failUnit(unit, error);
      })
      .finally(() => {
        this.activeUnits.delete(unit);
        this.loops.delete(loop);
      });
    this.loops.add(loop);
  }

  private onWaiterLeave(unit: MutationUnit, waiter: Waiter, reason: LeaveReason): void {
    if (waiter.settled) return;
    const cause = reason === "abort" ? waiter.signal?.reason : unit.lastError;
    if (unit.outcomeUnknown) {
      waiter.reject(this.ambiguous(waiter.op, unit, cause, reason === "abort" ? "cancelled" : "deadline passed"));
    } else {
      waiter.reject(reason === "abort" ? waiter.signal?.reason : this.deadlineError(unit.lastError));
    }
    unit.liveCount--;
    assert(unit.liveCount >= 0, "more callers left than the unit had");
    if (unit.liveCount === 0) unit.cancellation.cancel();
  }

  private ambiguous(op: MutationOp, unit: MutationUnit, cause: unknown, why: string): AmbiguousOperationError {
    const detail = op.kind === "add" ? ` (delta ${op.delta})` : op.kind === "reset" ? "" : ` (value ${op.value})`;
    const causeText = cause === undefined ? "" : `: ${messageOf(cause)}`;
    return new AmbiguousOperationError(
      `${op.kind} on ${describeKey(op.keyInput)}${detail} may or may not have been applied (${why}${causeText})`,
      {
        kind: op.kind,
        key: op.keyInput,
        ...(op.kind === "add" ? { delta: op.delta } : {}),
        ...(op.kind === "set" || op.kind === "compareAndSet" ? { value: op.value } : {}),
        ...(op.kind === "compareAndSet" ? { expectedVersion: op.expectedVersion } : {}),
        ...(unit.shardId !== undefined ? { shardId: unit.shardId } : {}),
        ...(unit.session !== undefined ? { clientId: unit.session.clientId } : {}),
        ...(unit.seq !== undefined ? { seq: unit.seq } : {}),
      },
      { cause },
    );
  }

  private deadlineError(lastError: unknown): TallyError {
    if (lastError instanceof ClusterUnreachableError) return lastError;
    const suffix = lastError === undefined ? "" : `; last error: ${messageOf(lastError)}`;
    return new TimeoutError(`no answer within the deadline${suffix}`, { cause: lastError });
  }

  /** The client gives up on the unit's seq: release it so the server may forget its result. */
  private releaseSeq(unit: MutationUnit): void {
    if (unit.seq !== undefined) {
      unit.session?.complete(unit.seq);
      unit.seq = undefined;
    }
  }

  /** Rejects every waiting caller: ambiguous if the unit may have been applied, else `error`. */
  private failUnit(unit: MutationUnit, error: unknown, forceAmbiguous = false): void {
    const ambiguous = forceAmbiguous || unit.outcomeUnknown;
    for (const entry of unit.entries) {
      if (entry.waiter.settled) continue;
      entry.waiter.reject(ambiguous ? this.ambiguous(entry.op, unit, error, "no definite answer") : error);
    }
    this.releaseSeq(unit);
  }

  private async runUnit(unit: MutationUnit): Promise<void> {
    let failures = 0;
    let delayMs = 0;
    for (;;) {
      if (delayMs > 0) await this.sleep(Math.min(delayMs, unit.deadlineAtMs - monotonicMs()), unit.cancellation);
      delayMs = 0;
      if (unit.liveCount === 0) {
        // Every caller has left. Never send this seq again; if it was applied, that stands.
        this.releaseSeq(unit);
        return;
      }
      if (this.closed) return this.failUnit(unit, new ClientClosedError());
      if (monotonicMs() >= unit.deadlineAtMs) return this.failUnit(unit, this.deadlineError(unit.lastError));
      if (!unit.outcomeUnknown && unit.entries.some((entry) => entry.waiter.settled)) {
        // Callers that left took their ops with them; the content changes, so does the seq.
        unit.entries = unit.entries.filter((entry) => !entry.waiter.settled);
        this.releaseSeq(unit);
      }

      let routing: SlotRouting;
      try {
        routing = await this.routeForSlots(unit.entries.map((entry) => entry.op.slot));
      } catch (error) {
        const denied = accessDenied(error);
        if (denied !== undefined) return this.failUnit(unit, denied);
        unit.lastError = error;
        delayMs = this.backoffMs(++failures);
        continue;
      }
      if (routing.kind === "split") {
        // The map changed under the unit (a shard split): its keys now live on several shards.
        if (unit.outcomeUnknown) return this.failUnit(unit, new TallyError("WRONG_SHARD", "the keys moved to another shard while the outcome was unknown"));
        this.releaseSeq(unit);
        for (const indexes of routing.groups.values()) this.startUnit(indexes.map((index) => unit.entries[index]!), unit.atomic);
        return;
      }
      const route = routing.route;
      if (unit.shardId !== route.shardId) {
        if (unit.shardId !== undefined && unit.outcomeUnknown) {
          return this.failUnit(unit, new TallyError("WRONG_SHARD", `the key moved from shard ${unit.shardId} to ${route.shardId} while the outcome was unknown`));
        }
        this.releaseSeq(unit);
        unit.shardId = route.shardId;
      }

      let session: ShardSession;
      try {
        session = await this.sessionFor(route, unit.deadlineAtMs, unit.cancellation);
      } catch (error) {
        if (unit.cancellation.cancelled) continue;
        const denied = accessDenied(error);
        if (denied !== undefined) return this.failUnit(unit, denied);
        unit.lastError = error instanceof AttemptError ? error.error : error;
        delayMs = await this.onAttemptError(error, route, ++failures);
        continue;
      }
      if (this.closed || unit.cancellation.cancelled) continue; // the loop's checks settle it
      if (unit.session !== session) {
        if (unit.seq !== undefined) {
          // The old session expired. Resending under a new session could apply twice.
          if (unit.outcomeUnknown) return this.failUnit(unit, unit.lastError ?? new TallyError("SESSION_EXPIRED", "session expired"));
          this.releaseSeq(unit);
        }
        unit.session = session;
      }
      if (unit.seq === undefined) unit.seq = session.allocate();

      let address: string;
      try {
        address = this.leaderAddress(route);
      } catch (error) {
        unit.lastError = error;
        this.refreshRoutesSoon();
        delayMs = this.backoffMs(++failures);
        continue;
      }
      const header: RequestHeaderMessage = {
        shardId: route.shardId,
        epoch: int64Wire(route.epoch),
        clientId: int64Wire(session.clientId),
        seq: int64Wire(unit.seq),
        firstUnackedSeq: int64Wire(session.firstUnackedSeq()),
      };
      assert(session.firstUnackedSeq() <= unit.seq, "firstUnackedSeq passed an outstanding seq");
      const [opName, op] = buildMutationRequest(unit.entries, header);
      unit.inFlight = true;
      session.lastUsedAtMs = monotonicMs();
      const outcome = await this.connection(address).send(
        opName,
        op,
        this.attemptTimeoutMs(unit.timeouts, unit.deadlineAtMs),
        unit.deadlineAtMs,
        unit.cancellation,
      );
      unit.inFlight = false;
      const verdict = await this.judgeMutationOutcome(unit, session, route, address, outcome, ++failures);
      if (verdict === "done") return;
      if (verdict === "retry-now") {
        delayMs = 0;
      } else {
        delayMs = verdict;
      }
    }
  }

  /** Acts on one attempt's outcome: "done" (callers settled) or the delay before the next attempt. */
  private async judgeMutationOutcome(
    unit: MutationUnit,
    session: ShardSession,
    route: ShardRoute,
    address: string,
    outcome: PipelineOutcome,
    failures: number,
  ): Promise<"done" | "retry-now" | number> {
    switch (outcome.kind) {
      case "reply":
        this.completeUnit(unit, outcome.response);
        return "done";
      case "aborted":
        if (outcome.sent) unit.unresolved = true;
        return "retry-now"; // the loop's checks settle it
      case "unsent":
        unit.lastError = new UnavailableError(`cannot connect to ${address}`, { cause: outcome.cause });
        this.onNodeFailure(route, address);
        return this.backoffMs(failures);
      case "lost":
        unit.unresolved = true;
        unit.lastError = new UnavailableError(`connection to ${address} lost`, { cause: outcome.cause });
        this.onNodeFailure(route, address);
        return this.backoffMs(failures);
      case "timeout":
        unit.unresolved = true;
        unit.timeouts++;
        unit.lastError = new TimeoutError(`no reply from ${address} within the attempt timeout`);
        return this.backoffMs(failures);
      case "error": {
        const error = errorInfoToError(outcome.info);
        unit.lastError = error;
        switch (error.code) {
          case "SESSION_EXPIRED":
            // Next iteration: a fresh unit re-registers; one that may have been applied is ambiguous.
            this.dropSession(session);
            return failures <= 1 ? "retry-now" : this.backoffMs(failures);
          case "NOT_LEADER":
          case "WRONG_SHARD":
          case "OVERLOADED":
            // Rejected before proposing (the server answers NOT_LEADER only for a write that never
            // entered the log; one proposed before leadership moved is AMBIGUOUS): this attempt
            // applied nothing. Earlier attempts of the unit may have: the same seq is retried.
            return this.onAttemptError(new AttemptError(error, address), route, failures);
          case "UNAVAILABLE":
          case "TIMEOUT":
          case "AMBIGUOUS":
            unit.unresolved = true;
            return this.onAttemptError(new AttemptError(error, address), route, failures);
          case "INTERNAL":
          case "CORRUPTION":
            // Not retried, and not known to have failed.
            this.failUnit(unit, error, true);
            return "done";
          default:
            this.failUnitDefinitely(unit, error, outcome.info);
            return "done";
        }
      }
    }
  }

  private completeUnit(unit: MutationUnit, response: PipelineResponseMessage): void {
    const { entries } = unit;
    if (response.result === "mutation" && entries.length === 1 && response.mutation !== undefined) {
      const mutation = response.mutation;
      this.releaseSeq(unit);
      entries[0]!.waiter.resolve({ value: wireBigInt(mutation.value), version: wireBigInt(mutation.version), fence: fenceFromMessage(mutation.fence) });
      return;
    }
    const packed = response.result === "batch" ? response.batch?.packedResults : undefined;
    if (packed !== undefined && packed.length > 0) {
      let results: PackedResult[];
      try {
        results = decodePackedResults(packed, entries.length);
      } catch (error) {
        return this.failUnit(unit, new TallyError("INTERNAL", `malformed reply for ${entries.length} ops: ${messageOf(error)}`), true);
      }
      const fence = fenceFromMessage(response.batch!.fence);
      this.releaseSeq(unit);
      // Every op of one request changes its counter at the same log index: one bigint serves them.
      let version = -1;
      let versionBig = 0n;
      for (let i = 0; i < results.length; i++) {
        const result = results[i]!;
        if (result.version !== version) versionBig = BigInt((version = result.version));
        entries[i]!.waiter.resolve({ value: result.value, version: versionBig, fence });
      }
      return;
    }
    if (response.result === "batch" && response.batch !== undefined && response.batch.results.length === entries.length) {
      const fence = fenceFromMessage(response.batch.fence);
      this.releaseSeq(unit);
      response.batch.results.forEach((result, index) => {
        const resolved: MutationResult = { value: wireBigInt(result.value), version: wireBigInt(result.version), fence };
        if (entries[index]!.op.kind === "windowAdd") resolved.eventTimeMs = Number(result.eventTimeMs ?? 0);
        if (result.hasAcquire) {
          resolved.allowed = result.allowed ?? false;
          resolved.retryAfterMs = Number(result.retryAfterMs ?? 0);
        }
        entries[index]!.waiter.resolve(resolved);
      });
      return;
    }
    this.failUnit(unit, new TallyError("INTERNAL", `malformed reply (${response.result ?? "empty"}) for ${entries.length} ops`), true);
  }

  /**
   * A definite error: the seq was not applied. In an auto-batch only the op the server blamed
   * fails; the others were not applied either (a batch is atomic) and go again under a new seq.
   */
  private failUnitDefinitely(unit: MutationUnit, error: TallyError, info: ErrorInfo): void {
    const { entries } = unit;
    this.releaseSeq(unit);
    const blamed = info.hasOpIndex && info.opIndex < entries.length ? entries[info.opIndex] : undefined;
    if (unit.atomic || entries.length === 1) {
      if (blamed !== undefined) blamed.waiter.blamed = true;
      for (const entry of entries) entry.waiter.reject(error);
      return;
    }
    if (blamed !== undefined) {
      blamed.waiter.reject(error);
      this.startUnit(entries.filter((entry) => entry !== blamed), false);
    } else {
      // The server did not say which op; let each op find out on its own.
      for (const entry of entries) this.startUnit([entry], false);
    }
  }

  // ---- Reads ------------------------------------------------------------------------------------

  /** Queues a get for this turn's GetMany to its shard; undefined when the route is not known yet. */
  private coalesceGet(key: Key, consistency: Consistency): Promise<ReadResult> | undefined {
    const encoded = encodeKey(key); // a bad key fails its own caller only
    const route = this.routeTable.isEmpty ? undefined : this.routeTable.lookup(slotOf(encoded));
    if (route === undefined) return undefined;
    this.admit(1, undefined);
    const group = `${consistency}:${route.shardId}`;
    let pending = this.pendingGets.get(group);
    if (pending !== undefined && pending.keys.length >= this.options.maxBatchOps) {
      // Full (a GetMany reads at most 10,000 keys): it goes now, and this get starts the next one.
      this.pendingGets.delete(group);
      void this.flushGets(pending);
      pending = undefined;
    }
    if (pending === undefined) {
      const created: PendingGets = { consistency, keys: [], waiters: [], flushed: false };
      pending = created;
      this.pendingGets.set(group, created);
      setImmediate(() => {
        if (this.pendingGets.get(group) === created) this.pendingGets.delete(group);
        if (!created.flushed) void this.flushGets(created);
      });
    }
    const queued = pending;
    this.inflightOps++;
    return new Promise<ReadResult>((resolve, reject) => {
      queued.keys.push(encoded);
      queued.waiters.push({ resolve, reject });
    }).finally(() => this.inflightOps--);
  }

  private async flushGets(pending: PendingGets): Promise<void> {
    pending.flushed = true;
    const { keys, waiters } = pending;
    try {
      // Admitted per caller already; the group read is not counted again.
      const results = await this.read(keys, { consistency: pending.consistency }, keys.length === 1 ? "get" : "getMany", true);
      waiters.forEach((waiter, i) => waiter.resolve(results[i]!));
    } catch (error) {
      for (const waiter of waiters) waiter.reject(error);
    }
  }

  private read(keys: Key[], options: ReadOptions, kind: "get" | "getMany", admitted = false): Promise<ReadResult[]> {
    const encoded = keys.map((key) => encodeKey(key));
    return this.withReadState(options, kind, admitted, async (state) => {
      for (let refreshes = 0; ; refreshes++) {
        const plan = planHotRead(this.routeTable.hot, encoded);
        try {
          if (plan === undefined) return await this.readGroup(encoded, encoded.map((key) => slotOf(key)), state);
          if (state.minIndex > 0n) throw new InvalidArgumentError("minIndex names one shard's log index; it has no meaning for a hot counter's sum over several shards");
          return combineHotRead(plan, await this.readGroup(plan.keys, plan.slots, state, plan.claims), (index) => describeKey(keys[index]!));
        } catch (error) {
          // A node whose map has another sub-counter count refused the read: learn the newer list and read again.
          const refused = error instanceof TallyError && error.code === "FAILED_PRECONDITION" && error.message.includes(HOT_READ_REFUSED);
          if (!refused || refreshes >= HOT_REFRESHES_MAX) throw error;
          const before = this.routeTable.hot.signature(encoded);
          await this.refreshRoutes();
          // Unchanged: the node that answered the routes has not applied the declaration yet.
          if (this.routeTable.hot.signature(encoded) === before) await this.sleep(HOT_REFRESH_DELAY_MS, state.cancellation);
        }
      }
    });
  }

  /**
   * Runs a read under one deadline, cancellation and in-flight slot; errors after a deadline,
   * abort or close become the matching error.
   */
  private async withReadState<T>(options: ReadOptions, kind: ReadState["kind"], admitted: boolean, run: (state: ReadState) => Promise<T>): Promise<T> {
    this.checkOpen();
    const consistency = options.consistency ?? "linearizable";
    if (consistency !== "linearizable" && consistency !== "stale") {
      throw new InvalidArgumentError(`consistency must be "linearizable" or "stale", got ${JSON.stringify(consistency)}`);
    }
    const minIndex = options.minIndex === undefined ? 0n : toUint64(options.minIndex, "minIndex");
    const deadlineAtMs = this.deadlineFor(options);
    if (!admitted) this.admit(1, options.signal);
    if (!admitted) this.inflightOps++;
    const cancellation = new Cancellation();
    const timer = setTimeout(() => cancellation.cancel(), Math.max(0, deadlineAtMs - monotonicMs()));
    const onAbort = (): void => cancellation.cancel();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    this.activeReads.add(cancellation);
    const state: ReadState = { deadlineAtMs, cancellation, consistency, minIndex, lastError: undefined, kind, timeouts: 0 };
    try {
      await this.ensureRoutes();
      return await run(state);
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (this.closed) throw new ClientClosedError();
      if (cancellation.cancelled) throw this.deadlineError(state.lastError);
      throw error;
    } finally {
      // Stops sibling sub-reads of a failed getMany; a no-op after success.
      cancellation.cancel();
      if (!admitted) this.inflightOps--;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      this.activeReads.delete(cancellation);
    }
  }

  private async readGroup(keys: Buffer[], slots: number[], state: ReadState, claims?: number[]): Promise<ReadResult[]> {
    let failures = 0;
    let delayMs = 0;
    for (;;) {
      if (delayMs > 0) await this.sleep(Math.min(delayMs, state.deadlineAtMs - monotonicMs()), state.cancellation);
      delayMs = 0;
      if (state.cancellation.cancelled || monotonicMs() >= state.deadlineAtMs) throw this.deadlineError(state.lastError);
      let routing: SlotRouting;
      try {
        routing = await this.routeForSlots(slots);
      } catch (error) {
        const denied = accessDenied(error);
        if (denied !== undefined) throw denied;
        state.lastError = error;
        delayMs = this.backoffMs(++failures);
        continue;
      }
      if (routing.kind === "split") {
        const results: ReadResult[] = new Array(keys.length);
        await Promise.all(
          [...routing.groups.values()].map(async (indexes) => {
            const part = await this.readGroup(indexes.map((i) => keys[i]!), indexes.map((i) => slots[i]!), state, claims && indexes.map((i) => claims[i]!));
            indexes.forEach((keyIndex, partIndex) => (results[keyIndex] = part[partIndex]!));
          }),
        );
        return results;
      }
      if (state.cancellation.cancelled) continue;
      const attempt = await this.readAttempt(routing.route, state, ++failures, (common) =>
        state.kind === "get" && keys.length === 1
          ? ["get", { key: keys[0]!, ...common, hotSubCounters: claims?.[0] ?? 0 }]
          : ["getMany", { keys, ...common, hotSubCounters: claims ?? [] }],
      );
      if (typeof attempt === "number") {
        delayMs = attempt;
        continue;
      }
      const values: GetResponseMessage[] | undefined =
        attempt.result === "get" && attempt.get !== undefined ? [attempt.get] : attempt.result === "getMany" ? attempt.getMany?.values : undefined;
      if (values === undefined || values.length !== keys.length) {
        throw new TallyError("INTERNAL", `malformed read reply (${attempt.result ?? "empty"}) for ${keys.length} keys`);
      }
      return values.map(readResultFromMessage);
    }
  }

  /**
   * One read attempt on a route: the reply, or the delay before the next attempt. Errors that a
   * retry cannot fix are thrown.
   */
  private async readAttempt(
    route: ShardRoute,
    state: ReadState,
    failures: number,
    build: (common: ReadFieldsMessage) => [PipelineOpName, PipelineOps[PipelineOpName]],
  ): Promise<PipelineResponseMessage | number> {
    let address: string;
    try {
      address = state.consistency === "stale" ? this.replicaAddress(route) : this.leaderAddress(route);
    } catch (error) {
      state.lastError = error;
      this.refreshRoutesSoon();
      return this.backoffMs(failures);
    }
    const common: ReadFieldsMessage = {
      consistency: state.consistency === "stale" ? "STALE" : "LINEARIZABLE",
      minIndex: int64Wire(state.minIndex),
      shardId: route.shardId,
      epoch: int64Wire(route.epoch),
    };
    const timeoutMs = this.attemptTimeoutMs(state.timeouts, state.deadlineAtMs);
    const [opName, request] = build(common);
    const outcome = await this.connection(address).send(opName, request, timeoutMs, state.deadlineAtMs, state.cancellation);
    switch (outcome.kind) {
      case "reply":
        return outcome.response;
      case "aborted":
        return 0;
      case "unsent":
        state.lastError = new UnavailableError(`cannot connect to ${address}`, { cause: outcome.cause });
        this.onNodeFailure(route, address);
        return this.backoffMs(failures);
      case "lost":
        state.lastError = new UnavailableError(`connection to ${address} lost`, { cause: outcome.cause });
        this.onNodeFailure(route, address);
        return this.backoffMs(failures);
      case "timeout":
        state.timeouts++;
        state.lastError = new TimeoutError(`no reply from ${address} within the attempt timeout`);
        if (state.consistency === "stale") this.markFailed(address);
        return this.backoffMs(failures);
      case "error": {
        const error = errorInfoToError(outcome.info);
        state.lastError = error;
        if (!isRetryable(error.code)) throw error;
        const delayMs = await this.onAttemptError(new AttemptError(error, address), route, failures);
        if (state.consistency === "stale" && (error.code === "UNAVAILABLE" || error.code === "TIMEOUT")) this.markFailed(address);
        return delayMs;
      }
    }
  }

  /** A read answered by the one shard that holds `slot`, retried until the deadline. */
  private async shardRead<T>(
    slot: number,
    state: ReadState,
    build: (common: ReadFieldsMessage) => [PipelineOpName, PipelineOps[PipelineOpName]],
    parse: (response: PipelineResponseMessage) => T | undefined,
  ): Promise<T> {
    let failures = 0;
    let delayMs = 0;
    for (;;) {
      if (delayMs > 0) await this.sleep(Math.min(delayMs, state.deadlineAtMs - monotonicMs()), state.cancellation);
      delayMs = 0;
      if (state.cancellation.cancelled || monotonicMs() >= state.deadlineAtMs) throw this.deadlineError(state.lastError);
      let routing: SlotRouting;
      try {
        routing = await this.routeForSlots([slot]);
      } catch (error) {
        const denied = accessDenied(error);
        if (denied !== undefined) throw denied;
        state.lastError = error;
        delayMs = this.backoffMs(++failures);
        continue;
      }
      assert(routing.kind === "single", "one slot routes to one shard");
      if (state.cancellation.cancelled) continue;
      const attempt = await this.readAttempt(routing.route, state, ++failures, build);
      if (typeof attempt === "number") {
        delayMs = attempt;
        continue;
      }
      const parsed = parse(attempt);
      if (parsed === undefined) throw new TallyError("INTERNAL", `malformed ${state.kind} reply (${attempt.result ?? "empty"})`);
      return parsed;
    }
  }

  // ---- Counter kinds: reads ---------------------------------------------------------------------

  /** A windowed counter's points in [fromMs, toMs), one per stepMs, aggregated by agg (default sum). */
  async windowRange(key: Key, fromMs: number, toMs: number, stepMs: number, agg: WindowAggregate = "sum", options: ReadOptions = {}): Promise<WindowRangeResult> {
    const encoded = encodeKey(key);
    const request = { key: encoded, fromMs: int64Wire(toUint64(fromMs, "fromMs")), toMs: int64Wire(toUint64(toMs, "toMs")), stepMs: int64Wire(toUint64(stepMs, "stepMs")), agg };
    return this.withReadState(options, "windowRange", false, (state) =>
      this.shardRead(slotOf(encoded), state, (common) => ["windowRange", { ...request, ...common }], (response) => {
        const message = response.windowRange;
        if (message === undefined) return undefined;
        return {
          points: message.points.map((point) => ({ startMs: Number(point.startMs), value: wireBigInt(point.value), divisor: wireBigInt(point.divisor) })),
          resolutionMs: Number(message.resolutionMs),
          version: wireBigInt(message.version),
          fence: fenceFromMessage(message.fence),
          appliedIndex: wireBigInt(message.appliedIndex),
        };
      }),
    );
  }

  /** The bucket of a windowed counter holding timeMs, from the finest tier that still keeps it. */
  async windowAt(key: Key, timeMs: number, options: ReadOptions = {}): Promise<WindowAtResult> {
    const encoded = encodeKey(key);
    const timeWire = int64Wire(toUint64(timeMs, "timeMs"));
    return this.withReadState(options, "windowAt", false, (state) =>
      this.shardRead(slotOf(encoded), state, (common) => ["windowAt", { key: encoded, timeMs: timeWire, ...common }], (response) => {
        const message = response.windowAt;
        if (message === undefined) return undefined;
        return {
          startMs: Number(message.startMs),
          resolutionMs: Number(message.resolutionMs),
          sum: wireBigInt(message.sum),
          count: Number(message.count),
          version: wireBigInt(message.version),
          fence: fenceFromMessage(message.fence),
          appliedIndex: wireBigInt(message.appliedIndex),
        };
      }),
    );
  }

  /**
   * The estimated number of distinct items over the union of the keys. Keys of one shard are
   * merged by the shard; across shards the client merges the shards' register arrays (max), so
   * the answer is the union's count, not a sum.
   */
  async uniqueCount(keys: Key[], options: ReadOptions = {}): Promise<UniqueCountResult> {
    if (!Array.isArray(keys) || keys.length === 0) throw new InvalidArgumentError("keys must be a non-empty array");
    if (keys.length > BATCH_OPS_MAX) throw new InvalidArgumentError(`uniqueCount reads at most ${BATCH_OPS_MAX} keys, got ${keys.length}`);
    const encoded = keys.map((key) => encodeKey(key));
    return this.withReadState(options, "uniqueCount", false, async (state) => {
      const groups = new Map<number, Buffer[]>();
      for (const key of encoded) {
        const shardId = this.routeTable.lookup(slotOf(key))?.shardId ?? -1;
        groups.set(shardId, [...(groups.get(shardId) ?? []), key]);
      }
      const withSketch = groups.size > 1;
      const parts = await Promise.all(
        [...groups.entries()].map(async ([shardId, group]) => {
          const part = await this.shardRead(slotOf(group[0]!), state, (common) => ["uniqueCount", { keys: group, withSketch, ...common }], (response) => response.uniqueCount);
          return { ...part, shardId };
        }),
      );
      const shards = parts.map((part) => ({ shardId: part.shardId, appliedIndex: wireBigInt(part.appliedIndex), fence: fenceFromMessage(part.fence) }));
      if (!withSketch) return { count: Number(parts[0]!.count), shards };
      const union = new HyperLogLog();
      for (const part of parts) union.merge(HyperLogLog.decode(part.sketch));
      return { count: Math.round(union.count()), shards };
    });
  }

  /**
   * The exact top k plain counters whose key starts with prefix, over every shard: each shard
   * answers its own top k at one applied index, the client merges (exact: a key lives in one
   * shard). The shards' answers must tile the slot space; after a split mid-way it asks again.
   */
  async topK(prefix: Key, k: number, options: PrefixReadOptions = {}): Promise<TopKResult> {
    const prefixBytes = encodePrefix(prefix);
    if (!Number.isInteger(k) || k < 1 || k > TOP_K_MAX) throw new InvalidArgumentError(`k must be 1..${TOP_K_MAX}, got ${k}`);
    const window = windowFields(options);
    const answers = await this.scatter(options, "topK", (common) => ["topK", { prefix: prefixBytes, k, ...window, ...common }], (response) => response.topK);
    const lists = answers.map(({ message }) => message.entries.map((entry) => ({ key: entry.key, value: wireBigInt(entry.value) })));
    return { entries: mergeTopK(lists, k).map((entry) => ({ key: Buffer.from(entry.key), value: entry.value })), shards: answers.map(({ shard }) => shard) };
  }

  /** Count, exact sum, min, max and floor average of the plain counters with the prefix, over every shard. */
  async aggregate(prefix: Key, options: PrefixReadOptions = {}): Promise<AggregateResult> {
    const prefixBytes = encodePrefix(prefix);
    const window = windowFields(options);
    const answers = await this.scatter(options, "aggregate", (common) => ["aggregate", { prefix: prefixBytes, ...window, ...common }], (response) => response.aggregate);
    const merged = mergeAggregates(
      answers.map(({ message }) => {
        const count = Number(message.count);
        return { count, sum: BigInt(message.sum), min: count > 0 ? wireBigInt(message.min) : undefined, max: count > 0 ? wireBigInt(message.max) : undefined, avg: undefined };
      }),
    );
    return { ...merged, shards: answers.map(({ shard }) => shard) };
  }

  /**
   * Changes of a key (or of every key with a prefix) as batches, until options.signal aborts or
   * close(). Reconnects by itself (any replica serves a watch) and resumes from the last batch's
   * index, so no change is skipped; a change may repeat after a reconnect (same index). Throws
   * OutOfRangeError when a replica no longer holds the changes after the resume index (re-read,
   * then watch again from now).
   */
  async *watch(keyOrPrefix: Key, options: WatchOptions = {}): AsyncGenerator<WatchBatch> {
    this.checkOpen();
    const prefix = options.prefix === true;
    const target = prefix ? encodePrefix(keyOrPrefix) : encodeKey(keyOrPrefix);
    const coalesceMs = options.coalesceMs ?? 50;
    const startIndex = options.fromIndex === undefined ? 0n : toUint64(options.fromIndex, "fromIndex");
    await this.ensureRoutes();
    const cancellation = new Cancellation();
    const onAbort = (): void => cancellation.cancel();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    this.activeReads.add(cancellation);
    const queue: Array<WatchBatch | { error: unknown }> = [];
    let wake: (() => void) | undefined;
    const push = (item: WatchBatch | { error: unknown }): void => {
      queue.push(item);
      wake?.();
    };
    const follow = async (slot: number): Promise<void> => {
      let cursor = startIndex;
      let failures = 0;
      while (!cancellation.cancelled && !this.closed) {
        let route: ShardRoute;
        let address: string;
        try {
          const routing = await this.routeForSlots([slot]);
          assert(routing.kind === "single", "one slot routes to one shard");
          route = routing.route;
          address = this.replicaAddress(route);
        } catch (error) {
          const denied = accessDenied(error);
          if (denied !== undefined) return push({ error: denied });
          await this.sleep(this.backoffMs(++failures), cancellation);
          continue;
        }
        const stream = this.connection(address).serverStream<WatchRequestMessage, WatchBatchMessage>("watch", {
          key: target,
          prefix,
          fromIndex: int64Wire(cursor),
          shardId: route.shardId,
          epoch: int64Wire(route.epoch),
          coalesceMs,
        });
        const unsubscribe = cancellation.onCancel(() => stream.cancel());
        const error = await new Promise<unknown>((resolve) => {
          stream.on("data", (message: WatchBatchMessage) => {
            failures = 0;
            cursor = wireBigInt(message.index);
            push({
              shardId: message.shardId,
              index: cursor,
              events: message.events.map((event) => ({
                key: event.key,
                value: wireBigInt(event.value),
                version: wireBigInt(event.version),
                kind: event.kind as WatchEvent["kind"],
                index: wireBigInt(event.index),
              })),
            });
          });
          stream.on("error", (streamError) => resolve(streamError));
          stream.on("end", () => resolve(undefined));
        });
        unsubscribe();
        if (cancellation.cancelled || this.closed) return;
        const decoded = error === undefined ? undefined : decodeServiceError(error as grpc.ServiceError);
        if (decoded !== undefined && (decoded.error.code === "OUT_OF_RANGE" || decoded.error.code === "INVALID_ARGUMENT" || accessDenied(decoded.error) !== undefined)) {
          push({ error: decoded.error });
          return;
        }
        if (decoded?.error.code === "WRONG_SHARD" || decoded?.error.code === "UNAVAILABLE") this.refreshRoutesSoon();
        this.markFailed(address);
        await this.sleep(this.backoffMs(++failures), cancellation);
      }
    };
    const slots = prefix ? this.routeTable.snapshot().shards.map((route) => route.slotStart) : [slotOf(target)];
    const followers = slots.map((slot) => follow(slot).catch((error: unknown) => push({ error })));
    try {
      while (!cancellation.cancelled && !this.closed) {
        const item = queue.shift();
        if (item === undefined) {
          let unsubscribe: (() => void) | undefined;
          await new Promise<void>((resolve) => {
            wake = resolve;
            unsubscribe = cancellation.onCancel(resolve);
          });
          unsubscribe?.();
          wake = undefined;
          continue;
        }
        if ("error" in item) throw item.error;
        yield item;
      }
    } finally {
      cancellation.cancel();
      options.signal?.removeEventListener("abort", onAbort);
      this.activeReads.delete(cancellation);
      await Promise.allSettled(followers);
    }
  }

  /** Asks every shard once; retries the whole round until the answers tile [0, SLOT_COUNT) exactly. */
  private scatter<M extends { shard: ShardAnswerMessage | null }>(
    options: ReadOptions,
    kind: ReadState["kind"],
    build: (common: ReadFieldsMessage) => [PipelineOpName, PipelineOps[PipelineOpName]],
    pick: (response: PipelineResponseMessage) => M | undefined,
  ): Promise<Array<{ message: M; shard: ShardAnswer }>> {
    return this.withReadState(options, kind, false, async (state) => {
      for (;;) {
        const shards = this.routeTable.snapshot().shards;
        const answers = await Promise.all(
          shards.map((route) =>
            this.shardRead(route.slotStart, state, build, (response) => {
              const message = pick(response);
              return message?.shard ? { message, shard: shardAnswerFrom(message.shard) } : undefined;
            }),
          ),
        );
        if (tilesSlots(answers.map(({ shard }) => shard))) return answers;
        // A split or merge happened between the map and the answers: ask again with a fresh map.
        state.lastError = new TallyError("WRONG_SHARD", "the shards' answers do not tile the slot space (the map changed)");
        await this.refreshRoutes(true);
        if (state.cancellation.cancelled || monotonicMs() >= state.deadlineAtMs) throw this.deadlineError(state.lastError);
      }
    });
  }

  // ---- Sessions ---------------------------------------------------------------------------------

  private async sessionFor(route: ShardRoute, deadlineAtMs: number, cancellation: Cancellation): Promise<ShardSession> {
    const current = this.sessions.get(route.shardId);
    if (current !== undefined && !current.expired) return current;
    let registration = this.registrations.get(route.shardId);
    if (registration === undefined) {
      const shardId = route.shardId;
      registration = this.registerSession(route, deadlineAtMs).finally(() => this.registrations.delete(shardId));
      this.registrations.set(shardId, registration);
    }
    return raceCancellation(registration, cancellation);
  }

  /** One RegisterSession attempt at the believed leader; the caller's loop retries. */
  private async registerSession(route: ShardRoute, deadlineAtMs: number): Promise<ShardSession> {
    const address = this.leaderAddress(route);
    const request: RegisterSessionRequestMessage = { shardId: route.shardId, epoch: String(route.epoch) };
    const outcome = await this.connection(address).unary<RegisterSessionRequestMessage, RegisterSessionResponseMessage>(
      "counter",
      "RegisterSession",
      request,
      Math.min(deadlineAtMs, monotonicMs() + this.options.attemptTimeoutMs),
    );
    if (outcome.kind === "error") throw new AttemptError(outcome.error, address);
    const clientId = wireBigInt(outcome.response.clientId);
    if (clientId <= 0n) throw new AttemptError(new TallyError("INTERNAL", "RegisterSession returned client id 0"), address);
    const session = new ShardSession(route.shardId, clientId, monotonicMs());
    if (!this.closed) this.sessions.set(route.shardId, session);
    this.logger.debug({ shardId: route.shardId, clientId: String(clientId) }, "session registered");
    return session;
  }

  private dropSession(session: ShardSession): void {
    session.expired = true;
    if (this.sessions.get(session.shardId) === session) this.sessions.delete(session.shardId);
  }

  private keepAliveTick(): void {
    if (this.closed) return;
    const now = monotonicMs();
    for (const session of this.sessions.values()) {
      if (session.expired || now - session.lastUsedAtMs < this.options.keepAliveIntervalMs) continue;
      if (this.keepAlivesInFlight.has(session.shardId)) continue;
      const route = this.routeTable.byShardId(session.shardId);
      if (route === undefined) continue;
      this.keepAlivesInFlight.add(session.shardId);
      const loop = this.keepAlive(session, route)
        .catch((error: unknown) => this.logger.debug({ err: error, shardId: session.shardId }, "keepalive failed"))
        .finally(() => {
          this.keepAlivesInFlight.delete(session.shardId);
          this.loops.delete(loop);
        });
      this.loops.add(loop);
    }
  }

  private async keepAlive(session: ShardSession, route: ShardRoute): Promise<void> {
    if (this.closed) return;
    const address = this.leaderAddress(route);
    const request: KeepAliveRequestMessage = {
      header: {
        shardId: route.shardId,
        epoch: String(route.epoch),
        clientId: String(session.clientId),
        seq: "0",
        firstUnackedSeq: String(session.firstUnackedSeq()),
      },
    };
    const outcome = await this.connection(address).unary<KeepAliveRequestMessage, KeepAliveResponseMessage>(
      "counter",
      "KeepAlive",
      request,
      monotonicMs() + this.options.attemptTimeoutMs,
    );
    if (outcome.kind === "reply") {
      session.lastUsedAtMs = Math.max(session.lastUsedAtMs, monotonicMs());
      return;
    }
    if (outcome.error.code === "SESSION_EXPIRED") {
      this.logger.warn({ shardId: session.shardId }, "session expired; the next mutation registers a new one");
      this.dropSession(session);
    } else if (outcome.error instanceof NotLeaderError) {
      this.routeTable.noteLeaderHint(route.shardId, outcome.error.leaderId, outcome.error.leaderAddress);
    }
    // Anything else: the next tick tries again.
  }

  // ---- Routing ----------------------------------------------------------------------------------

  private async routeForSlots(slots: number[]): Promise<SlotRouting> {
    assert(slots.length > 0, "routing no keys");
    if (this.routeTable.isEmpty) await this.refreshRoutes();
    for (let pass = 0; ; pass++) {
      const groups = new Map<number, number[]>();
      let first: ShardRoute | undefined;
      let missing = false;
      slots.forEach((slot, index) => {
        const route = this.routeTable.lookup(slot);
        if (route === undefined) {
          missing = true;
          return;
        }
        first ??= route;
        const group = groups.get(route.shardId) ?? [];
        group.push(index);
        groups.set(route.shardId, group);
      });
      const stale = [...groups.keys()].some((shardId) => this.routeTable.isStale(shardId));
      if ((missing || stale) && pass === 0) {
        // Rate-limited: if the map stays behind, the replica's WRONG_SHARD forces the next one.
        await this.refreshRoutes(false);
        continue;
      }
      if (missing || first === undefined) throw new TallyError("UNAVAILABLE", "the routing map does not cover every slot");
      return groups.size === 1 ? { kind: "single", route: first } : { kind: "split", groups };
    }
  }

  /** Addresses to ask for Routes/Status: the map's nodes then the configured endpoints, healthy first. */
  private discoveryAddresses(): string[] {
    const all = [...new Set([...this.routeTable.addresses(), ...this.options.endpoints])];
    const start = this.rotation++ % all.length;
    const rotated = [...all.slice(start), ...all.slice(0, start)];
    const now = monotonicMs();
    const healthy = rotated.filter((address) => now - (this.failedAtMs.get(address) ?? Number.NEGATIVE_INFINITY) >= NODE_AVOID_MS);
    const failing = rotated.filter((address) => !healthy.includes(address));
    return [...healthy, ...failing];
  }

  /** Refreshes the map; concurrent callers share one refresh. Throws ClusterUnreachableError. */
  private refreshRoutes(force = true): Promise<void> {
    if (this.refreshing !== undefined) return this.refreshing;
    if (!force && monotonicMs() - this.lastRefreshAtMs < ROUTES_REFRESH_MIN_INTERVAL_MS) return Promise.resolve();
    this.refreshing = this.fetchRoutes().finally(() => {
      this.refreshing = undefined;
      this.lastRefreshAtMs = monotonicMs();
    });
    return this.refreshing;
  }

  private refreshRoutesSoon(): void {
    if (this.closed || this.refreshing !== undefined) return;
    if (monotonicMs() - this.lastRefreshAtMs < ROUTES_REFRESH_MIN_INTERVAL_MS) return;
    const loop = this.refreshRoutes(false)
      .catch(() => undefined)
      .finally(() => this.loops.delete(loop));
    this.loops.add(loop);
  }

  /** Asks the known nodes in turn, within one operation deadline in total. */
  private async fetchRoutes(): Promise<void> {
    const addresses = this.discoveryAddresses();
    const deadlineAtMs = monotonicMs() + this.options.deadlineMs;
    let lastError: unknown;
    let answered = false;
    for (const address of addresses) {
      if (this.closed) throw new ClientClosedError();
      const now = monotonicMs();
      if (now >= deadlineAtMs) break;
      const outcome = await this.connection(address).unary<object, RoutesResponseMessage>(
        "counter",
        "Routes",
        {},
        Math.min(deadlineAtMs, now + Math.min(this.options.attemptTimeoutMs, this.options.connectTimeoutMs * 2)),
      );
      if (outcome.kind === "error") {
        lastError = outcome.error;
        if (nodeAnswered(outcome.error, outcome.info)) answered = true;
        else this.markFailed(address);
        continue;
      }
      answered = true;
      if (this.routeTable.update(outcome.response)) return;
      this.logger.debug({ address }, "ignored a stale routing map");
    }
    if (answered && !this.routeTable.isEmpty) return; // only stale maps: keep ours
    if (answered) throw lastError ?? new TallyError("UNAVAILABLE", "no node returned a usable routing map");
    throw new ClusterUnreachableError(addresses, { cause: lastError });
  }

  private connection(address: string): NodeConnection {
    if (this.closed) throw new ClientClosedError();
    let connection = this.connections.get(address);
    if (connection === undefined) {
      connection = new NodeConnection({
        address,
        credentials: this.credentials,
        connectTimeoutMs: this.options.connectTimeoutMs,
        logger: this.logger,
        ...(this.token === undefined ? {} : { token: this.token }),
      });
      this.connections.set(address, connection);
    }
    return connection;
  }

  private markFailed(address: string): void {
    this.failedAtMs.set(address, monotonicMs());
  }

  private isHealthy(address: string, now: number): boolean {
    const failedAt = Math.max(this.failedAtMs.get(address) ?? Number.NEGATIVE_INFINITY, this.connections.get(address)?.lastFailureAtMs ?? Number.NEGATIVE_INFINITY);
    return now - failedAt >= NODE_AVOID_MS;
  }

  /** The believed leader if it looks healthy, else the next healthy replica (which will redirect). */
  private leaderAddress(route: ShardRoute): string {
    const now = monotonicMs();
    if (route.leaderAddress !== undefined && this.isHealthy(route.leaderAddress, now)) return route.leaderAddress;
    return this.replicaAddress(route);
  }

  private replicaAddress(route: ShardRoute): string {
    const addresses = route.replicas.map((replica) => replica.address).filter((address) => address !== "");
    if (addresses.length === 0) {
      if (route.leaderAddress !== undefined) return route.leaderAddress;
      throw new TallyError("UNAVAILABLE", `shard ${route.shardId} has no replica with an address`);
    }
    const now = monotonicMs();
    const start = this.rotation++;
    for (let i = 0; i < addresses.length; i++) {
      const address = addresses[(start + i) % addresses.length]!;
      if (this.isHealthy(address, now)) return address;
    }
    return addresses[start % addresses.length]!;
  }

  /** A connection to the node failed or dropped: re-learn the map, and steer away if it is down. */
  private onNodeFailure(route: ShardRoute, address: string): void {
    if (!this.isHealthy(address, monotonicMs())) this.routeTable.forgetLeader(route.shardId, address);
    this.refreshRoutesSoon();
  }

  /** Shared retry policy for the errors every request kind retries. Returns the delay. */
  private async onAttemptError(error: unknown, route: ShardRoute, failures: number): Promise<number> {
    if (!(error instanceof AttemptError)) return this.backoffMs(failures);
    const { error: cause, address } = error;
    if (cause instanceof NotLeaderError) {
      const hinted = this.routeTable.noteLeaderHint(route.shardId, cause.leaderId, cause.leaderAddress);
      const hintedAddress = this.routeTable.byShardId(route.shardId)?.leaderAddress;
      if (hinted && hintedAddress !== undefined && hintedAddress !== address) {
        // The hint is newer than any failure we saw at that node: try it (if it is really down,
        // the attempt fails fast and marks it again).
        this.failedAtMs.delete(hintedAddress);
        this.connections.get(hintedAddress)?.clearFailure();
        // Raft section 5.2: a follower knows the leader; go straight there, once without delay.
        this.refreshRoutesSoon();
        return failures <= 1 ? 0 : this.backoffMs(failures - 1);
      }
      this.routeTable.forgetLeader(route.shardId, address);
      this.refreshRoutesSoon();
      return this.backoffMs(failures);
    }
    if (cause instanceof WrongShardError) {
      // The epoch belongs to the shard the replica named (0: the one we routed to).
      this.routeTable.noteEpoch(cause.shardId || route.shardId, BigInt(cause.currentEpoch));
      await this.refreshRoutes(true).catch(() => undefined);
      return failures <= 1 ? 0 : this.backoffMs(failures - 1);
    }
    if (cause instanceof OverloadedError) return Math.max(cause.retryAfterMs, this.backoffMs(failures));
    if (cause.code === "UNAVAILABLE") {
      this.onNodeFailure(route, address);
      return this.backoffMs(failures);
    }
    return this.backoffMs(failures);
  }

  private backoffMs(failures: number): number {
    const base = Math.min(this.options.retryBackoffMaxMs, this.options.retryBackoffMs * 2 ** Math.min(20, Math.max(0, failures - 1)));
    // Full jitter on the upper half: spread retries of many clients after a leader change.
    return base / 2 + (Math.random() * base) / 2;
  }

  /**
   * The attempt timeout doubles with each attempt that timed out (up to 8x): a node that is slow
   * rather than gone then gets time to answer instead of a growing pile of retries of the same
   * requests (a retry storm that keeps it slow).
   */
  private attemptTimeoutMs(timeouts: number, deadlineAtMs: number): number {
    const grown = this.options.attemptTimeoutMs * 2 ** Math.min(3, timeouts);
    return Math.max(1, Math.min(grown, deadlineAtMs - monotonicMs()));
  }

  private sleep(ms: number, cancellation: Cancellation): Promise<void> {
    if (ms <= 0 || cancellation.cancelled) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        unsubscribe();
        resolve();
      }, ms);
      const unsubscribe = cancellation.onCancel(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

interface ReadState {
  deadlineAtMs: number;
  cancellation: Cancellation;
  consistency: Consistency;
  minIndex: bigint;
  lastError: unknown;
  kind: "get" | "getMany" | "windowRange" | "windowAt" | "uniqueCount" | "topK" | "aggregate";
  timeouts: number;
}

function encodePrefix(prefix: Key): Buffer {
  const bytes = typeof prefix === "string" ? Buffer.from(prefix, "utf8") : prefix instanceof Uint8Array ? Buffer.from(prefix) : undefined;
  if (bytes === undefined) throw new InvalidArgumentError("prefix must be a string or bytes");
  if (bytes.length > KEY_BYTES_MAX) throw new InvalidArgumentError(`prefix of ${bytes.length} bytes exceeds ${KEY_BYTES_MAX}`);
  return bytes;
}

function shardAnswerFrom(message: ShardAnswerMessage): ShardAnswer {
  return {
    shardId: message.shardId,
    slotStart: message.slotStart,
    slotEnd: message.slotEnd,
    epoch: wireBigInt(message.epoch),
    appliedIndex: wireBigInt(message.appliedIndex),
    fence: fenceFromMessage(message.fence),
  };
}

/** True when the answers' slot ranges cover [0, SLOT_COUNT) with no gap and no overlap. */
function tilesSlots(answers: ShardAnswer[]): boolean {
  const sorted = [...answers].sort((a, b) => a.slotStart - b.slotStart);
  let next = 0;
  for (const answer of sorted) {
    if (answer.slotStart !== next) return false;
    next = answer.slotEnd;
  }
  return next === SLOT_COUNT;
}

const RETRYABLE_READ_CODES: ReadonlySet<ErrorCode> = new Set(["NOT_LEADER", "WRONG_SHARD", "UNAVAILABLE", "OVERLOADED", "TIMEOUT", "AMBIGUOUS"]);

/** Whether a failed call reached a node (it answered with an error) or not (down, unreachable). */
function nodeAnswered(error: TallyError, info: ErrorInfo | undefined): boolean {
  return info !== undefined || (error.code !== "UNAVAILABLE" && error.code !== "TIMEOUT");
}

function isRetryable(code: ErrorCode): boolean {
  return RETRYABLE_READ_CODES.has(code);
}

function raceCancellation<T>(promise: Promise<T>, cancellation: Cancellation): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const unsubscribe = cancellation.onCancel(() => reject(new Error("cancelled")));
    promise.then(
      (value) => {
        unsubscribe();
        resolve(value);
      },
      (error: unknown) => {
        unsubscribe();
        reject(error);
      },
    );
  });
}

function batchOpMessage(op: MutationOp): BatchOpMessage {
  switch (op.kind) {
    case "add":
      return { add: { key: op.key, delta: int64Wire(op.delta), hasFloor: op.floor !== undefined, floor: int64Wire(op.floor ?? 0n), ttlMs: int64Wire(op.ttlMs) } };
    case "set":
      return { set: { key: op.key, value: int64Wire(op.value), ttlMs: int64Wire(op.ttlMs) } };
    case "reset":
      return { reset: { key: op.key } };
    case "compareAndSet":
      return { compareAndSet: { key: op.key, expectedVersion: int64Wire(op.expectedVersion), value: int64Wire(op.value) } };
    case "windowAdd":
      return { windowAdd: { key: op.key, delta: int64Wire(op.delta), eventTimeMs: int64Wire(op.eventTimeMs), ttlMs: int64Wire(op.ttlMs) } };
    case "tryAcquire":
      return { tryAcquire: { key: op.key, n: int64Wire(op.n), limit: int64Wire(op.limit), windowMs: int64Wire(op.windowMs) } };
    case "uniqueAdd":
      return { uniqueAdd: { key: op.key, items: op.items, ttlMs: int64Wire(op.ttlMs) } };
  }
}

function itemsOf(items: Key[]): Buffer[] {
  if (!Array.isArray(items) || items.length === 0) throw new InvalidArgumentError("items must be a non-empty array");
  return items.map((item, i) => {
    if (typeof item === "string") return Buffer.from(item, "utf8");
    if (item instanceof Uint8Array) return Buffer.from(item.buffer, item.byteOffset, item.byteLength);
    throw new InvalidArgumentError(`items[${i}] must be a string or bytes`);
  });
}

/** One op travels as its own request kind; several as a BatchRequest. Same input, same request. */
function buildMutationRequest(entries: UnitEntry[], header: RequestHeaderMessage): [PipelineOpName, PipelineOps[PipelineOpName]] {
  // Plain adds (no floor, no TTL) travel packed: one bytes field instead of a message per op.
  if (entries.length > 1 && entries.every((entry) => entry.op.kind === "add" && entry.op.floor === undefined && entry.op.ttlMs === 0n)) {
    return ["batch", { header, ops: [], packedAdds: encodePackedAddsField(entries.map((entry) => entry.op)) }];
  }
  // The kinds' ops exist only as BatchOps: one of them alone is a batch of one.
  if (entries.length > 1 || !SINGLE_REQUEST_KINDS.has(entries[0]!.op.kind)) {
    return ["batch", { header, ops: entries.map((entry) => batchOpMessage(entry.op)) }];
  }
  const op = entries[0]!.op;
  switch (op.kind) {
    case "add":
      return ["add", { header, key: op.key, delta: int64Wire(op.delta), hasFloor: op.floor !== undefined, floor: int64Wire(op.floor ?? 0n), ttlMs: int64Wire(op.ttlMs) }];
    case "set":
      return ["set", { header, key: op.key, value: int64Wire(op.value), ttlMs: int64Wire(op.ttlMs) }];
    case "reset":
      return ["reset", { header, key: op.key }];
    case "compareAndSet":
      return ["compareAndSet", { header, key: op.key, expectedVersion: int64Wire(op.expectedVersion), value: int64Wire(op.value) }];
    default:
      return assert(false, `${op.kind} travels as a batch op`) as never;
  }
}

const SINGLE_REQUEST_KINDS: ReadonlySet<MutationKind> = new Set(["add", "set", "reset", "compareAndSet"]);

function readResultFromMessage(message: GetResponseMessage): ReadResult {
  return {
    value: wireBigInt(message.value),
    version: wireBigInt(message.version),
    exists: message.exists,
    fence: fenceFromMessage(message.fence),
    appliedIndex: wireBigInt(message.appliedIndex),
  };
}

function statusFromMessage(answeredBy: string, message: StatusResponseMessage): ClusterStatus {
  return {
    answeredBy,
    nodes: message.nodes.map((node) => ({
      nodeId: node.nodeId,
      clientAddress: node.clientAddress,
      zone: node.zone,
      reachable: node.reachable,
      error: node.error,
      groups: node.groups.map((group) => ({
        groupId: group.groupId,
        role: group.role,
        term: wireBigInt(group.term),
        leaderId: group.leaderId,
        commit: wireBigInt(group.commit),
        applied: wireBigInt(group.applied),
        lastIndex: wireBigInt(group.lastIndex),
        leaseValid: group.leaseValid,
        epoch: wireBigInt(group.epoch),
        peers: group.peers.map((peer) => ({ nodeId: peer.nodeId, match: wireBigInt(peer.match), lag: wireBigInt(peer.lag), state: peer.state })),
      })),
    })),
  };
}
