/**
 * Eventual counters from the client (docs/eventual.md): CounterService.EventualAdd and EventualGet.
 *
 * An eventual add goes to one node, the client's home node (the first configured endpoint that
 * answers), which makes it durable in its buffer and flushes it into the shard exactly once. The
 * hop to that node is exactly once too: each call carries a random request id, and a retry after
 * an unknown outcome goes to the same node, which answers a request id it already buffered
 * without buffering it again. Only an add refused before buffering moves to the next node (a node
 * cut off from a shard's leader refuses, and is then tried last for a second; once every node
 * refused, the add asks to be buffered anyway: accept_unflushable). Reads go to the home node
 * first, so `includePending` shows the caller's own adds (those the home node took).
 *
 * Which adds are eventual: `mode: "eventual"` on the call, or (no mode given) a key under one of
 * the cluster's eventual.prefixes (RoutesResponse.eventual_prefixes, fetched once per minute) or
 * the client's own `eventualPrefixes` option.
 */
import type {
  EventualAddRequestInput,
  EventualAddResponseMessage,
  EventualGetRequestInput,
  EventualGetResponseMessage,
  RoutesResponseMessage,
} from "../api/proto.js";
import { randomBytes } from "node:crypto";
import { encodePackedAdds, type PackedAdd } from "../util/packed-adds.js";
import { monotonicMs } from "../util/clock.js";
import { AmbiguousError, InvalidArgumentError, TallyError } from "../util/errors.js";
import type { ConnectionPool } from "./connection-pool.js";
import { ClusterUnreachableError } from "./errors.js";
import type { Lifecycle } from "./lifecycle.js";
import type { RetryPolicy } from "./retry.js";
import type { Router } from "./router.js";
import type { CallOptions, Consistency } from "./types.js";
import { BATCH_OPS_MAX, encodeKey, fenceFromMessage, toInt64, wireBigInt, type Int64Input, type Key } from "./values.js";
import type { Fence } from "./types.js";

/** How long the cluster's eventual prefixes are trusted before they are fetched again. */
const PREFIXES_REFRESH_MS = 60_000;
/** One attempt's bound: an eventual add waits for a group fsync, an eventual read may wait for a flush. */
const ATTEMPT_TIMEOUT_MS_MAX = 5_000;
/**
 * Requests of add() calls on their way at once, per client; adds made meanwhile wait for one to
 * answer and then share a request. Two, so that one slow answer does not hold every add.
 */
const ADD_REQUESTS_IN_FLIGHT_MAX = 2;
/**
 * A node that refused an eventual add (UNAVAILABLE before buffering: cut off from a shard's leader,
 * or stopping) is tried after the others for this long, so later adds skip the refused round trip.
 */
const REFUSED_NODE_LAST_MS = 1_000;
/** grpc-js's message when the call failed to connect: the request never left the client. */
const NOT_CONNECTED = /No connection established|ECONNREFUSED/;

/** exact (default): a replicated, fsynced Raft commit; eventual: a node's buffer; auto: eventual for the cluster's eventual.prefixes. */
export type AddMode = "exact" | "eventual" | "auto";

export interface EventualAddResult {
  /** Adds the node buffered (durably). */
  accepted: number;
  /** The node that holds them until they are flushed. */
  nodeId: number;
}

export interface EventualReadOptions extends CallOptions {
  /** stale (default): that node's replica as it is; linearizable: after that node's pending flush of the key. */
  consistency?: Consistency;
  /** Adds the node's unflushed delta of the key to `value`. */
  includePending?: boolean;
}

export interface EventualReadResult {
  /** committed (+ pendingDelta when includePending). */
  value: bigint;
  committed: bigint;
  /** The answering node's unflushed delta of the key. */
  pendingDelta: bigint;
  /** Age of that node's oldest unflushed add of the key, in ms (0: none). */
  stalenessMs: number;
  version: bigint;
  appliedIndex: bigint;
  fence: Fence;
  nodeId: number;
}

interface QueuedAdd {
  add: PackedAdd;
  resolve: (result: EventualAddResult) => void;
  reject: (error: unknown) => void;
}

export class EventualCalls {
  private clusterPrefixes: Uint8Array[] | undefined;
  private prefixesFetchedAtMs = 0;
  private readonly ownPrefixes: Uint8Array[];
  /** Adds waiting for a request (add() without options), with when the first of them was made. */
  private queued: QueuedAdd[] = [];
  private queuedSinceDeadlineAtMs = 0;
  private sendScheduled = false;
  /** Requests of queued adds on their way (at most ADD_REQUESTS_IN_FLIGHT_MAX). */
  private inFlight = 0;
  /** Nodes that refused an eventual add, until when they go last in the order of addAddresses(). */
  private readonly refusedUntilMs = new Map<string, number>();

  constructor(
    private readonly life: Lifecycle,
    private readonly router: Router,
    private readonly pool: ConnectionPool,
    private readonly policy: RetryPolicy,
    private readonly endpoints: readonly string[],
    eventualPrefixes: readonly string[] = [],
  ) {
    this.ownPrefixes = eventualPrefixes.map((prefix) => encodeKey(prefix));
  }

  /** Whether an add in `mode` to `key` is eventual ("auto" fetches the cluster's prefixes once a minute). */
  async isEventual(key: Key, mode: AddMode, options: { floor?: unknown; ttlMs?: unknown }): Promise<boolean> {
    if (mode !== "exact" && mode !== "eventual" && mode !== "auto")
      throw new InvalidArgumentError(`mode must be "exact", "eventual" or "auto", got ${String(mode)}`);
    let eventual = mode === "eventual";
    if (mode === "auto") {
      const bytes = encodeKey(key);
      if (this.clusterPrefixes === undefined) await this.fetchPrefixes();
      else if (monotonicMs() - this.prefixesFetchedAtMs > PREFIXES_REFRESH_MS) void this.fetchPrefixes();
      eventual = matches(this.ownPrefixes, bytes) || matches(this.clusterPrefixes ?? [], bytes);
    }
    if (eventual && (options.floor !== undefined || options.ttlMs !== undefined))
      throw new InvalidArgumentError("an eventual add takes no floor and no ttlMs (they need the counter's current value)");
    return eventual;
  }

  /**
   * One eventual add. Adds made while ADD_REQUESTS_IN_FLIGHT_MAX requests of such adds are on
   * their way, or in one event-loop turn, travel as one request (up to 10,000), sent as soon as a
   * request answers: at a low rate each add leaves at once, at a high rate adds share requests
   * (a unary call costs more CPU than the add, and queueing behind one's own calls is what made
   * the tail). Each caller still gets its own answer or error, within its own deadline from now.
   */
  async add(key: Key, delta: Int64Input, options: CallOptions = {}): Promise<EventualAddResult> {
    if (options.deadlineMs !== undefined || options.signal !== undefined) return this.addMany([{ key, delta }], options);
    const add = { key: encodeKey(key), delta: toInt64(delta, "delta") };
    return new Promise<EventualAddResult>((resolve, reject) => {
      if (this.queued.length === 0) this.queuedSinceDeadlineAtMs = this.life.deadlineFor({});
      this.queued.push({ add, resolve, reject });
      this.pump();
    });
  }

  /** Schedules a send of the queued adds if a request may leave; a full request leaves at once. */
  private pump(): void {
    if (this.queued.length === 0 || this.inFlight >= ADD_REQUESTS_IN_FLIGHT_MAX) return;
    if (this.queued.length >= BATCH_OPS_MAX) this.sendQueued();
    else if (!this.sendScheduled) {
      this.sendScheduled = true;
      setImmediate(() => this.sendQueued());
    }
  }

  private sendQueued(): void {
    this.sendScheduled = false;
    if (this.inFlight >= ADD_REQUESTS_IN_FLIGHT_MAX || this.queued.length === 0) return;
    const batch = this.queued.splice(0, BATCH_OPS_MAX);
    const deadlineAtMs = this.queuedSinceDeadlineAtMs;
    if (this.queued.length > 0) this.queuedSinceDeadlineAtMs = this.life.deadlineFor({});
    const request: EventualAddRequestInput = { packedAdds: encodePackedAdds(batch.map((entry) => entry.add)), requestId: newRequestId() };
    this.inFlight++;
    this.addCall(request, deadlineAtMs, undefined)
      .then(
        (reply) => {
          for (const entry of batch) entry.resolve({ accepted: 1, nodeId: reply.nodeId });
        },
        (error: unknown) => {
          for (const entry of batch) entry.reject(error);
        },
      )
      .finally(() => {
        this.inFlight--;
        this.pump();
      });
    this.pump();
  }

  /** Buffers many adds on one node as one packed request (up to 10,000). */
  async addMany(adds: ReadonlyArray<{ key: Key; delta?: Int64Input }>, options: CallOptions = {}): Promise<EventualAddResult> {
    if (!Array.isArray(adds) || adds.length === 0) throw new InvalidArgumentError("adds: at least one add is required");
    if (adds.length > BATCH_OPS_MAX) throw new InvalidArgumentError(`adds: at most ${BATCH_OPS_MAX} per call, got ${adds.length}`);
    const packed = encodePackedAdds(
      adds.map((add, i) => ({ key: encodeKey(add.key), delta: toInt64(add.delta ?? 1n, `adds[${i}].delta`) })),
    );
    const request: EventualAddRequestInput = { packedAdds: packed, requestId: newRequestId() };
    const reply = await this.addCall(request, this.life.deadlineFor(options), options.signal);
    return { accepted: reply.accepted, nodeId: reply.nodeId };
  }

  async get(key: Key, options: EventualReadOptions = {}): Promise<EventualReadResult> {
    const consistency = options.consistency ?? "stale";
    if (consistency !== "stale" && consistency !== "linearizable")
      throw new InvalidArgumentError(`consistency must be "linearizable" or "stale", got ${String(consistency)}`);
    const request: EventualGetRequestInput = {
      key: encodeKey(key),
      consistency: consistency === "stale" ? "STALE" : "LINEARIZABLE",
      includePending: options.includePending === true,
    };
    const reply = await this.call<EventualGetResponseMessage>("EventualGet", request, options);
    return {
      value: wireBigInt(reply.value),
      committed: wireBigInt(reply.committed),
      pendingDelta: wireBigInt(reply.pendingDelta),
      stalenessMs: Number(reply.stalenessMs),
      version: wireBigInt(reply.version),
      appliedIndex: wireBigInt(reply.appliedIndex),
      fence: fenceFromMessage(reply.fence),
      nodeId: reply.nodeId,
    };
  }

  /** The home node (the first configured endpoint) first, then the others. */
  private addresses(): string[] {
    return [...new Set([...this.endpoints, ...this.router.discoveryAddresses()])];
  }

  /** addresses(), with the nodes that refused an add in the last REFUSED_NODE_LAST_MS last. */
  private addAddresses(): string[] {
    const addresses = this.addresses();
    if (this.refusedUntilMs.size === 0) return addresses;
    const now = monotonicMs();
    for (const [address, untilMs] of this.refusedUntilMs) if (untilMs <= now) this.refusedUntilMs.delete(address);
    const refused = (address: string): boolean => this.refusedUntilMs.has(address);
    return [...addresses.filter((address) => !refused(address)), ...addresses.filter(refused)];
  }

  /** A read: any failure moves on to the next node. */
  private async call<Response>(method: string, request: object, options: CallOptions): Promise<Response> {
    this.life.checkOpen();
    const deadlineAtMs = this.life.deadlineFor(options);
    const addresses = this.addresses();
    let lastError: unknown;
    for (const address of addresses) {
      if (options.signal?.aborted) throw options.signal.reason;
      const remainingMs = deadlineAtMs - monotonicMs();
      if (remainingMs <= 0) break;
      const outcome = await this.pool
        .connection(address)
        .unary<object, Response>("counter", method, request, monotonicMs() + Math.min(remainingMs, ATTEMPT_TIMEOUT_MS_MAX));
      if (outcome.kind === "reply") return outcome.response;
      lastError = outcome.error;
    }
    if (lastError instanceof TallyError && lastError.code !== "UNAVAILABLE" && lastError.code !== "TIMEOUT") throw lastError;
    throw new ClusterUnreachableError(addresses, { cause: lastError });
  }

  /**
   * An EventualAdd under one request id. A node that refused it before buffering (its ErrorInfo
   * says UNAVAILABLE or OVERLOADED, or no connection was made) passes it to the next node; once it
   * may have reached a node's buffer, only that node is retried (its dedupe is per node) until the
   * deadline, which then reports AmbiguousError. A node cut off from one of the adds' shard
   * leaders refuses them (UNAVAILABLE): once every node has refused, the request carries
   * accept_unflushable, so the adds are buffered somewhere (and flushed once that node can).
   */
  private async addCall(
    request: EventualAddRequestInput,
    deadlineAtMs: number,
    signal: AbortSignal | undefined,
  ): Promise<EventualAddResponseMessage> {
    this.life.checkOpen();
    const addresses = this.addAddresses();
    let index = 0;
    let reachedAddress: string | undefined;
    let lastError: TallyError | undefined;
    let failures = 0;
    while (monotonicMs() < deadlineAtMs) {
      if (signal?.aborted) break;
      const address = reachedAddress ?? addresses[index % addresses.length]!;
      const attemptMs = Math.min(deadlineAtMs - monotonicMs(), ATTEMPT_TIMEOUT_MS_MAX);
      const outcome = await this.pool
        .connection(address)
        .unary<object, EventualAddResponseMessage>("counter", "EventualAdd", request, monotonicMs() + attemptMs);
      if (outcome.kind === "reply") return outcome.response;
      lastError = outcome.error;
      const code = outcome.error.code;
      const refused =
        outcome.info !== undefined ? code === "UNAVAILABLE" || code === "OVERLOADED" : NOT_CONNECTED.test(outcome.error.message);
      if (outcome.info !== undefined && !refused && code !== "AMBIGUOUS" && code !== "TIMEOUT") throw outcome.error;
      if (refused && reachedAddress === undefined) {
        if (outcome.info !== undefined && code === "UNAVAILABLE") this.refusedUntilMs.set(address, monotonicMs() + REFUSED_NODE_LAST_MS);
        index++;
        // Every node refused once (a node that cannot reach one of the adds' shard leaders
        // refuses before buffering): the next attempts ask to be buffered anyway.
        if (index >= addresses.length) request.acceptUnflushable = true;
      } else reachedAddress = address;
      const backoffMs = this.policy.backoffMs(++failures);
      await new Promise((resolve) => setTimeout(resolve, Math.min(backoffMs, Math.max(0, deadlineAtMs - monotonicMs()))));
    }
    if (reachedAddress !== undefined)
      throw new AmbiguousError(
        `eventual add to ${reachedAddress}: no answer before the deadline (${lastError?.message ?? "cancelled"}); it may have been buffered there: retry with the same request id to that node`,
        { cause: lastError },
      );
    if (signal?.aborted) throw signal.reason;
    throw new ClusterUnreachableError(addresses, { cause: lastError });
  }

  private async fetchPrefixes(): Promise<void> {
    this.prefixesFetchedAtMs = monotonicMs();
    try {
      const reply = await this.call<RoutesResponseMessage>("Routes", {}, { deadlineMs: ATTEMPT_TIMEOUT_MS_MAX });
      this.clusterPrefixes = (reply.eventualPrefixes ?? []).map((prefix) => encodeKey(prefix));
    } catch {
      this.clusterPrefixes ??= [];
    }
  }
}

/** A request id for EventualAdd: 96 random bits (the node dedupes a retry by it). */
function newRequestId(): string {
  return randomBytes(12).toString("base64url");
}

function matches(prefixes: readonly Uint8Array[], key: Uint8Array): boolean {
  return prefixes.some((prefix) => prefix.length <= key.length && Buffer.compare(key.subarray(0, prefix.length), prefix) === 0);
}
