/**
 * The tally client: a small facade. TallyClient's methods check their arguments and hand the work
 * to modules with one job each:
 *
 * - options.ts: defaults and validation; types.ts: the public types; lifecycle.ts: open/closed,
 *   admission (maxInflightOps), deadlines;
 * - submit.ts: a caller's mutation to a unit (hot keys, waiters); batcher.ts: auto-batching;
 *   packed-group.ts: an addBatch of plain adds packed per shard, no object per op;
 *   mutations.ts: the exactly-once loop and the ambiguity rule (docs/errors.md);
 * - reads.ts: get/getMany and the read attempt; kinds.ts: the counter kinds' reads and merges;
 *   watch.ts: change streams; admin.ts: operator calls;
 * - router.ts: the routing map and node choice; connection-pool.ts: one connection per node;
 *   session-registry.ts: sessions and keep-alive; retry.ts: backoff, retry policy, the read loop.
 */
import * as grpc from "@grpc/grpc-js";
import { HOT_SUB_COUNTERS_MAX, hotSubKey } from "../meta/hot.js";
import { assert } from "../util/assert.js";
import { monotonicMs } from "../util/clock.js";
import { FailedPreconditionError, InvalidArgumentError, TallyError } from "../util/errors.js";
import { componentLogger } from "../util/log.js";
import { AdminCalls } from "./admin.js";
import { AutoBatcher } from "./batcher.js";
import { ConnectionPool } from "./connection-pool.js";
import type { HotKeyRoute } from "./hot.js";
import { KindReads } from "./kinds.js";
import { Lifecycle } from "./lifecycle.js";
import { itemsOf, makeOp, optionalUint64 } from "./mutation-ops.js";
import { MutationEngine } from "./mutations.js";
import { validateAddressMap, validateOptions, validateToken, type ResolvedOptions } from "./options.js";
import { HOT_REFRESH_DELAY_MS, Reads } from "./reads.js";
import { RetryPolicy } from "./retry.js";
import { Router } from "./router.js";
import type { RoutesSnapshot } from "./routing.js";
import { SessionRegistry } from "./session-registry.js";
import { Submitter } from "./submit.js";
import { clientTlsCredentials } from "./tls-credentials.js";
import type {
  AcquireResult,
  AddModeOptions,
  AddOptions,
  AggregateResult,
  BatchOp,
  CallOptions,
  ClusterStatus,
  MutationResult,
  PrefixReadOptions,
  ReadOptions,
  ReadResult,
  SetOptions,
  TallyClientOptions,
  TopKResult,
  UniqueCountResult,
  WatchBatch,
  WatchOptions,
  WindowAddOptions,
  WindowAddResult,
  WindowAggregate,
  WindowAtResult,
  WindowRangeResult,
} from "./types.js";
import { BATCH_OPS_MAX, encodeKey, toInt64, toUint64, type Int64Input, type Key } from "./values.js";
import { Watcher } from "./watch.js";
import { EventualCalls, type EventualAddResult, type EventualReadOptions, type EventualReadResult } from "./eventual.js";
import { Aggregator, type AggregatorOptions } from "./aggregator.js";

/**
 * The tally client. Routes each key to its shard (hash slots, src/meta/slots.ts) and that shard's
 * leader, multiplexes operations over one Pipeline stream per node, and makes every mutation
 * exactly-once through per-shard sessions: a mutation is retried with the same (clientId, seq)
 * until the cluster gives a definite answer or the deadline passes, and then it is reported as
 * AmbiguousError, never as failed.
 */
export class TallyClient {
  private readonly options: ResolvedOptions;
  private readonly life: Lifecycle;
  private readonly pool: ConnectionPool;
  private readonly router: Router;
  private readonly sessions: SessionRegistry;
  private readonly mutations: MutationEngine;
  private readonly batcher: AutoBatcher;
  private readonly submitter: Submitter;
  private readonly reads: Reads;
  private readonly kindReads: KindReads;
  private readonly watcher: Watcher;
  private readonly adminCalls: AdminCalls;
  private readonly eventual: EventualCalls;

  constructor(options: TallyClientOptions) {
    this.options = validateOptions(options);
    const credentials = options.credentials ?? (options.tls ? clientTlsCredentials(options.tls) : grpc.credentials.createInsecure());
    const token = validateToken(options.token);
    const logger = options.logger ?? componentLogger("client");
    this.life = new Lifecycle(this.options);
    const addressMap = validateAddressMap(options.addressMap);
    this.pool = new ConnectionPool({ credentials, token, connectTimeoutMs: this.options.connectTimeoutMs, logger, addressMap }, this.life);
    this.router = new Router(this.options, this.pool, this.life, logger);
    const policy = new RetryPolicy(this.options, this.router, this.pool);
    this.sessions = new SessionRegistry(this.options, this.life, this.router, this.pool, logger);
    this.mutations = new MutationEngine(this.life, this.router, this.sessions, this.pool, policy, logger);
    this.batcher = new AutoBatcher(this.options, (entries, atomic, answered) => this.mutations.startUnit(entries, atomic, answered));
    this.submitter = new Submitter(this.options, this.life, this.router, this.batcher, this.mutations);
    this.reads = new Reads(this.options, this.life, this.router, this.pool, policy);
    this.kindReads = new KindReads(this.reads, this.router);
    this.watcher = new Watcher(this.life, this.router, this.pool, policy);
    this.adminCalls = new AdminCalls(this.options, this.life, this.router, this.pool);
    this.eventual = new EventualCalls(this.life, this.router, this.pool, policy, this.options.endpoints);
  }

  // ---- Public API -------------------------------------------------------------------------------

  /** Fetches the routing map now (one pass over the known nodes). Optional: operations do it lazily. */
  async connect(): Promise<void> {
    this.life.checkOpen();
    await this.router.refreshRoutes();
  }

  /**
   * Adds delta (default 1) to the counter and returns its new value. `mode: "eventual"` buffers it
   * on a node instead (docs/eventual.md) and returns where; `"auto"` does so for the cluster's
   * eventual.prefixes.
   */
  async add(key: Key, delta?: Int64Input, options?: AddOptions & { mode?: "exact" }): Promise<MutationResult>;
  async add(key: Key, delta: Int64Input, options: AddOptions & { mode: "eventual" }): Promise<EventualAddResult>;
  async add(key: Key, delta: Int64Input, options: AddModeOptions): Promise<MutationResult | EventualAddResult>;
  async add(key: Key, delta: Int64Input = 1n, options: AddModeOptions = {}): Promise<MutationResult | EventualAddResult> {
    if (options.mode !== undefined && options.mode !== "exact" && (await this.eventual.isEventual(key, options.mode, options)))
      return this.eventual.add(key, delta, options);
    const op = makeOp("add", key, {
      delta: toInt64(delta, "delta"),
      floor: options.floor === undefined ? undefined : toInt64(options.floor, "floor"),
      ttlMs: optionalUint64(options.ttlMs, "ttlMs"),
    });
    const result = await this.submitter.submit(op, options, true);
    const hot = this.router.routeTable.hot.lookup(op.key);
    return hot === undefined ? result : { ...result, subCounters: hot.tags.length };
  }

  /** Eventual adds (up to 10,000) buffered on one node as one request (docs/eventual.md). */
  async addEventual(adds: ReadonlyArray<{ key: Key; delta?: Int64Input }>, options: CallOptions = {}): Promise<EventualAddResult> {
    return this.eventual.addMany(adds, options);
  }

  /**
   * Client-side aggregation (StatsD style): `aggregator().add(key, delta)` sums in this process and
   * flushes every flushIntervalMs as one exactly-once write. An application crash loses the
   * unflushed window (docs/eventual.md). Close it before the client.
   */
  aggregator(options: AggregatorOptions = {}): Aggregator {
    this.life.checkOpen();
    return new Aggregator({ addBatch: (ops, o) => this.addBatch(ops, o), addEventual: (adds, o) => this.addEventual(adds, o) }, options);
  }

  /** A key's committed value from a node, with that node's unflushed delta and its age (docs/eventual.md). */
  async getEventual(key: Key, options: EventualReadOptions = {}): Promise<EventualReadResult> {
    return this.eventual.get(key, options);
  }

  async set(key: Key, value: Int64Input, options: SetOptions = {}): Promise<MutationResult> {
    return this.submitter.submit(
      makeOp("set", key, { value: toInt64(value, "value"), ttlMs: optionalUint64(options.ttlMs, "ttlMs") }),
      options,
      false,
    );
  }

  /**
   * Adds delta to a windowed counter (buckets of 1 s for 1 h, 1 min for 1 day, 1 h for 1 year) at
   * eventTimeMs (default: the leader's entry time). Exactly once like add, and batchable with it.
   */
  async addWindowed(key: Key, delta: Int64Input = 1n, options: WindowAddOptions = {}): Promise<WindowAddResult> {
    const op = makeOp("windowAdd", key, {
      delta: toInt64(delta, "delta"),
      eventTimeMs: optionalUint64(options.eventTimeMs, "eventTimeMs"),
      ttlMs: optionalUint64(options.ttlMs, "ttlMs"),
    });
    const result = await this.submitter.submit(op, options, true);
    return { ...result, eventTimeMs: result.eventTimeMs ?? 0 };
  }

  /**
   * Exact sliding-window rate limit: takes n if the grants in the last windowMs plus n stay within
   * limit. One replicated round trip; a retry returns the first outcome, never acquires twice.
   */
  async tryAcquire(key: Key, n: number, limit: number, windowMs: number, options: CallOptions = {}): Promise<AcquireResult> {
    const op = makeOp("tryAcquire", key, {
      n: toUint64(n, "n"),
      limit: toUint64(limit, "limit"),
      windowMs: toUint64(windowMs, "windowMs"),
    });
    if (op.limit < 1n) throw new InvalidArgumentError("limit must be >= 1");
    if (op.windowMs < 1n) throw new InvalidArgumentError("windowMs must be >= 1");
    if (op.n > op.limit) throw new InvalidArgumentError(`n ${op.n} exceeds limit ${op.limit}: it could never be granted`);
    const result = await this.submitter.submit(op, options, true);
    return {
      allowed: result.allowed ?? false,
      remaining: result.value,
      retryAfterMs: result.retryAfterMs ?? 0,
      version: result.version,
      fence: result.fence,
    };
  }

  /** Adds items to a HyperLogLog unique count; value 1n if the sketch changed. */
  async uniqueAdd(key: Key, items: Key[], options: SetOptions = {}): Promise<MutationResult> {
    return this.submitter.submit(
      makeOp("uniqueAdd", key, { items: itemsOf(items), ttlMs: optionalUint64(options.ttlMs, "ttlMs") }),
      options,
      true,
    );
  }

  /** Deletes the counter (a later get says exists: false). */
  async reset(key: Key, options: CallOptions = {}): Promise<MutationResult> {
    const op = makeOp("reset", key, {});
    await this.router.ensureRoutes();
    const hot = this.router.routeTable.hot.lookup(op.key);
    if (hot === undefined) return this.submitter.submit(op, options, false);
    // A hot counter: every sub-counter, each exactly once; not atomic across them.
    const results = await Promise.all(
      hot.tags.map((tag) => this.submitter.submit(makeOp("reset", hotSubKey(hot.key, tag), {}), options, false, true)),
    );
    return results[0]!;
  }

  /** Sets value if the counter's version is expectedVersion (0 = the counter must not exist). */
  async compareAndSet(key: Key, expectedVersion: bigint | number, value: Int64Input, options: CallOptions = {}): Promise<MutationResult> {
    const op = makeOp("compareAndSet", key, {
      expectedVersion: toUint64(expectedVersion, "expectedVersion"),
      value: toInt64(value, "value"),
    });
    return this.submitter.submit(op, options, false);
  }

  /**
   * Many mutations, results in the given order. Ops are grouped by shard, one request per shard;
   * each shard's group is applied atomically (all or none), but a batch spanning shards is NOT
   * atomic across them: on failure the BatchError says op by op what happened.
   */
  async addBatch(ops: BatchOp[], options: CallOptions = {}): Promise<MutationResult[]> {
    return this.submitter.addBatch(ops, options);
  }

  async get(key: Key, options: ReadOptions = {}): Promise<ReadResult> {
    // Plain gets (no deadline, signal or minIndex of their own) made in one event-loop turn to one
    // shard go as one GetMany, like auto-batched adds: one message and one lease check for many.
    if (this.options.autoBatch && options.deadlineMs === undefined && options.signal === undefined && options.minIndex === undefined) {
      const consistency = options.consistency ?? "linearizable";
      if (consistency === "linearizable" || consistency === "stale") {
        const coalesced = this.reads.coalesceGet(key, consistency);
        if (coalesced !== undefined) return coalesced;
      }
    }
    const results = await this.reads.read([key], options, "get");
    assert(results.length === 1, "get returned a wrong number of results");
    return results[0]!;
  }

  /** Reads many keys (grouped by shard, one request per shard); results in the given order. */
  async getMany(keys: Key[], options: ReadOptions = {}): Promise<ReadResult[]> {
    if (!Array.isArray(keys)) throw new InvalidArgumentError("keys must be an array");
    if (keys.length > BATCH_OPS_MAX) throw new InvalidArgumentError(`getMany reads at most ${BATCH_OPS_MAX} keys, got ${keys.length}`);
    if (keys.length === 0) return [];
    return this.reads.read(keys, options, "getMany");
  }

  /** The routing map, freshly fetched: shards, slot ranges, epochs, replicas, believed leaders. */
  async routes(): Promise<RoutesSnapshot> {
    this.life.checkOpen();
    await this.router.refreshRoutes(true);
    return this.router.routeTable.snapshot();
  }
  /** AdminService.Status from the first node that answers. */
  async status(options: CallOptions = {}): Promise<ClusterStatus> {
    return this.adminCalls.status(options);
  }

  /**
   * One AdminService call for operators (tallyctl): tries the nodes in turn and follows NOT_LEADER
   * hints, so membership and placement requests reach the metadata leader. `method` is the RPC name
   * ("ClusterMap", "NodeState", "ShardMove", ...); the reply is the decoded response message.
   */
  async admin<Response = Record<string, unknown>>(
    method: string,
    request: object,
    options: CallOptions & { address?: string } = {},
  ): Promise<Response> {
    return this.adminCalls.admin<Response>(method, request, options);
  }

  /**
   * A server-streaming AdminService call on one node (tallyctl backup: "ShardBackup"). Yields the
   * messages in order; a failure is thrown as the typed error the server sent (a NOT_LEADER names
   * the leader's address), or UNAVAILABLE when the node cannot be reached. Breaking out of the
   * loop cancels the call.
   */
  async *adminStream<Response>(method: string, request: object, address: string): AsyncGenerator<Response> {
    yield* this.adminCalls.adminStream<Response>(method, request, address);
  }

  /**
   * Closes streams, channels and timers. Operations still waiting are rejected: a mutation that
   * was sent with AmbiguousError, anything else with ClientClosedError. Idempotent.
   */
  async close(): Promise<void> {
    if (this.life.closed) return;
    this.life.closed = true;
    this.sessions.stop();
    this.batcher.rejectAll();
    this.mutations.cancelAll();
    for (const cancellation of this.life.activeReads) cancellation.cancel();
    this.pool.closeAll();
    await Promise.allSettled([...this.life.loops]);
    this.pool.clear();
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
    const deadlineAtMs = this.life.deadlineFor(options);
    // Only a counter can be spread (a check, not a lock: a kind's first write racing it would win).
    await this.get(encoded, options).catch((error: unknown) => {
      if (error instanceof TallyError && error.code === "FAILED_PRECONDITION" && /holds a/.test(error.message)) {
        throw new FailedPreconditionError(`cannot declare it hot: ${error.message}`);
      }
      throw error;
    });
    const reply = await this.admin<{ summary: string }>("DeclareHot", { key: encoded, subCounters }, options);
    for (;;) {
      await this.router.refreshRoutes();
      const route = this.router.routeTable.hot.lookup(encoded);
      if (
        (route !== undefined && route.tags.length >= subCounters && route.writable >= route.tags.length) ||
        monotonicMs() + HOT_REFRESH_DELAY_MS >= deadlineAtMs
      ) {
        return { key: encoded, tags: route?.tags ?? [], writable: route?.writable ?? 0, summary: reply.summary };
      }
      await new Promise((resolve) => setTimeout(resolve, HOT_REFRESH_DELAY_MS));
    }
  }

  /** The hot counters in the routes (refreshed now). */
  async hotKeys(options: CallOptions = {}): Promise<HotKeyRoute[]> {
    this.life.checkOpen();
    this.life.deadlineFor(options);
    await this.router.refreshRoutes(true);
    return this.router.routeTable.hot.list();
  }

  // ---- Counter kinds: reads ---------------------------------------------------------------------

  /** A windowed counter's points in [fromMs, toMs), one per stepMs, aggregated by agg (default sum). */
  async windowRange(
    key: Key,
    fromMs: number,
    toMs: number,
    stepMs: number,
    agg: WindowAggregate = "sum",
    options: ReadOptions = {},
  ): Promise<WindowRangeResult> {
    return this.kindReads.windowRange(key, fromMs, toMs, stepMs, agg, options);
  }

  /** The bucket of a windowed counter holding timeMs, from the finest tier that still keeps it. */
  async windowAt(key: Key, timeMs: number, options: ReadOptions = {}): Promise<WindowAtResult> {
    return this.kindReads.windowAt(key, timeMs, options);
  }

  /**
   * The estimated number of distinct items over the union of the keys. Keys of one shard are
   * merged by the shard; across shards the client merges the shards' register arrays (max), so
   * the answer is the union's count, not a sum.
   */
  async uniqueCount(keys: Key[], options: ReadOptions = {}): Promise<UniqueCountResult> {
    return this.kindReads.uniqueCount(keys, options);
  }

  /**
   * The exact top k plain counters whose key starts with prefix, over every shard: each shard
   * answers its own top k at one applied index, the client merges (exact: a key lives in one
   * shard). The shards' answers must tile the slot space; after a split mid-way it asks again.
   */
  async topK(prefix: Key, k: number, options: PrefixReadOptions = {}): Promise<TopKResult> {
    return this.kindReads.topK(prefix, k, options);
  }

  /** Count, exact sum, min, max and floor average of the plain counters with the prefix, over every shard. */
  async aggregate(prefix: Key, options: PrefixReadOptions = {}): Promise<AggregateResult> {
    return this.kindReads.aggregate(prefix, options);
  }

  /**
   * Changes of a key (or of every key with a prefix) as batches, until options.signal aborts or
   * close(). Reconnects by itself (any replica serves a watch) and resumes from the last batch's
   * index, so no change is skipped; a change may repeat after a reconnect (same index). Throws
   * OutOfRangeError when a replica no longer holds the changes after the resume index (re-read,
   * then watch again from now).
   */
  async *watch(keyOrPrefix: Key, options: WatchOptions = {}): AsyncGenerator<WatchBatch> {
    yield* this.watcher.watch(keyOrPrefix, options);
  }
}
