/**
 * Reads: get and getMany (a turn's plain gets to one shard coalesced into one GetMany), the read
 * state every read runs under (one deadline, cancellation and in-flight slot), a hot counter's
 * sum over its sub-counters, and one read attempt on a shard. The retry loop is
 * RetryPolicy.untilAnswered (retry.ts), shared by readGroup and shardRead.
 */
import { errorInfoToError } from "../api/error-details.js";
import type {
  FenceMessage,
  GetResponseMessage,
  PipelineOpInputs,
  PipelineOpName,
  PipelineResponseMessage,
  ReadFieldsInput,
} from "../api/proto.js";
import { HOT_READ_REFUSED } from "../meta/hot.js";
import { slotOf } from "../meta/slots.js";
import { monotonicMs } from "../util/clock.js";
import { InvalidArgumentError, TallyError, UnavailableError } from "../util/errors.js";
import { Cancellation } from "./cancellation.js";
import type { ConnectionPool } from "./connection-pool.js";
import { ClientClosedError, TimeoutError } from "./errors.js";
import { combineHotRead, planHotRead } from "./hot.js";
import type { Lifecycle } from "./lifecycle.js";
import { describeKey } from "./mutation-ops.js";
import type { ResolvedOptions } from "./options.js";
import { AttemptError, DEADLINE_SLACK_MS, deadlineError, isRetryable, sleep, type RetryPolicy, type RetryState } from "./retry.js";
import type { Router } from "./router.js";
import type { ShardRoute } from "./routing.js";
import type { Consistency, ReadOptions, ReadResult } from "./types.js";
import { encodeKey, fenceFromMessage, int64Wire, toUint64, wireBigInt, type Fence, type Key } from "./values.js";

/** A read of a hot key refused for naming an older sub-counter count refreshes the routes at most this often. */
const HOT_REFRESHES_MAX = 5;
export const HOT_REFRESH_DELAY_MS = 100;

export interface ReadState extends RetryState {
  consistency: Consistency;
  minIndex: bigint;
  kind: "get" | "getMany" | "windowRange" | "windowAt" | "uniqueCount" | "topK" | "aggregate";
  timeouts: number;
}

/** Builds one read attempt's request from the fields every read carries. */
export type ReadRequestBuilder = (common: ReadFieldsInput) => [PipelineOpName, PipelineOpInputs[PipelineOpName]];

/** Gets of one turn to one shard, sent together as a GetMany. */
interface PendingGets {
  consistency: Consistency;
  keys: Buffer[];
  waiters: Array<{ resolve(result: ReadResult): void; reject(error: unknown): void }>;
  /** Sent already (it filled up before the end of the turn). */
  flushed: boolean;
}

export class Reads {
  /** Gets waiting for the end of this turn, by consistency, then shard. */
  private readonly pendingGets: Record<Consistency, Map<number, PendingGets>> = { linearizable: new Map(), stale: new Map() };

  constructor(
    private readonly options: ResolvedOptions,
    private readonly life: Lifecycle,
    private readonly router: Router,
    private readonly pool: ConnectionPool,
    private readonly policy: RetryPolicy,
  ) {}

  /** Queues a get for this turn's GetMany to its shard; undefined when the route is not known yet. */
  coalesceGet(key: Key, consistency: Consistency): Promise<ReadResult> | undefined {
    const encoded = encodeKey(key); // a bad key fails its own caller only
    const route = this.router.routeTable.isEmpty ? undefined : this.router.routeTable.lookup(slotOf(encoded));
    if (route === undefined) return undefined;
    this.life.admit(1, undefined);
    const groups = this.pendingGets[consistency];
    const shardId = route.shardId;
    let pending = groups.get(shardId);
    if (pending !== undefined && pending.keys.length >= this.options.maxBatchOps) {
      // Full (a GetMany reads at most 10,000 keys): it goes now, and this get starts the next one.
      groups.delete(shardId);
      void this.flushGets(pending);
      pending = undefined;
    }
    if (pending === undefined) {
      const created: PendingGets = { consistency, keys: [], waiters: [], flushed: false };
      pending = created;
      groups.set(shardId, created);
      setImmediate(() => {
        if (groups.get(shardId) === created) groups.delete(shardId);
        if (!created.flushed) void this.flushGets(created);
      });
    }
    const queued = pending;
    // Counted in flight until flushGets settles it (the one place a queued get settles).
    this.life.inflightOps++;
    return new Promise<ReadResult>((resolve, reject) => {
      queued.keys.push(encoded);
      queued.waiters.push({ resolve, reject });
    });
  }

  private async flushGets(pending: PendingGets): Promise<void> {
    pending.flushed = true;
    const { keys, waiters } = pending;
    try {
      // Admitted per caller already; the group read is not counted again.
      const results = await this.read(keys, { consistency: pending.consistency }, keys.length === 1 ? "get" : "getMany", true);
      this.life.inflightOps -= waiters.length;
      for (let i = 0; i < waiters.length; i++) waiters[i]!.resolve(results[i]!);
    } catch (error) {
      this.life.inflightOps -= waiters.length;
      for (const waiter of waiters) waiter.reject(error);
    }
  }

  read(keys: Key[], options: ReadOptions, kind: "get" | "getMany", admitted = false): Promise<ReadResult[]> {
    const encoded = keys.map((key) => encodeKey(key));
    return this.withReadState(options, kind, admitted, async (state) => {
      for (let refreshes = 0; ; refreshes++) {
        const plan = planHotRead(this.router.routeTable.hot, encoded);
        try {
          if (plan === undefined)
            return await this.readGroup(
              encoded,
              encoded.map((key) => slotOf(key)),
              state,
            );
          if (state.minIndex > 0n)
            throw new InvalidArgumentError(
              "minIndex names one shard's log index; it has no meaning for a hot counter's sum over several shards",
            );
          return combineHotRead(plan, await this.readGroup(plan.keys, plan.slots, state, plan.claims), (index) =>
            describeKey(keys[index]!),
          );
        } catch (error) {
          // A node whose map has another sub-counter count refused the read: learn the newer list and read again.
          const refused = error instanceof TallyError && error.code === "FAILED_PRECONDITION" && error.message.includes(HOT_READ_REFUSED);
          if (!refused || refreshes >= HOT_REFRESHES_MAX) throw error;
          const before = this.router.routeTable.hot.signature(encoded);
          await this.router.refreshRoutes();
          // Unchanged: the node that answered the routes has not applied the declaration yet.
          if (this.router.routeTable.hot.signature(encoded) === before) await sleep(HOT_REFRESH_DELAY_MS, state.cancellation);
        }
      }
    });
  }

  /**
   * Runs a read under one deadline, cancellation and in-flight slot; errors after a deadline,
   * abort or close become the matching error.
   */
  async withReadState<T>(
    options: ReadOptions,
    kind: ReadState["kind"],
    admitted: boolean,
    run: (state: ReadState) => Promise<T>,
  ): Promise<T> {
    this.life.checkOpen();
    const consistency = options.consistency ?? "linearizable";
    if (consistency !== "linearizable" && consistency !== "stale") {
      throw new InvalidArgumentError(`consistency must be "linearizable" or "stale", got ${JSON.stringify(consistency)}`);
    }
    const minIndex = options.minIndex === undefined ? 0n : toUint64(options.minIndex, "minIndex");
    const deadlineAtMs = this.life.deadlineFor(options);
    if (!admitted) this.life.admit(1, options.signal);
    if (!admitted) this.life.inflightOps++;
    const cancellation = new Cancellation();
    const timer = setTimeout(() => cancellation.cancel(), Math.max(0, deadlineAtMs - monotonicMs()));
    const onAbort = (): void => cancellation.cancel();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    this.life.activeReads.add(cancellation);
    const state: ReadState = { deadlineAtMs, cancellation, consistency, minIndex, lastError: undefined, kind, timeouts: 0 };
    try {
      await this.router.ensureRoutes();
      return await run(state);
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (this.life.closed) throw new ClientClosedError();
      if (cancellation.cancelled) throw deadlineError(state.lastError);
      throw error;
    } finally {
      // Stops sibling sub-reads of a failed getMany; a no-op after success.
      cancellation.cancel();
      if (!admitted) this.life.inflightOps--;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      this.life.activeReads.delete(cancellation);
    }
  }

  private async readGroup(keys: Buffer[], slots: number[], state: ReadState, claims?: number[]): Promise<ReadResult[]> {
    return this.policy.untilAnswered(
      slots,
      state,
      (route, failures) =>
        this.readAttempt(route, state, failures, (common) =>
          state.kind === "get" && keys.length === 1
            ? ["get", { key: keys[0]!, ...common, hotSubCounters: claims?.[0] ?? 0 }]
            : ["getMany", { keys, ...common, hotSubCounters: claims ?? [] }],
        ),
      (attempt) => {
        const values: GetResponseMessage[] | undefined =
          attempt.result === "get" && attempt.get ? [attempt.get] : attempt.result === "getMany" ? attempt.getMany?.values : undefined;
        if (values === undefined || values.length !== keys.length) {
          throw new TallyError("INTERNAL", `malformed read reply (${attempt.result ?? "empty"}) for ${keys.length} keys`);
        }
        return readResultsFromMessages(values);
      },
      async (groups) => {
        // The keys now live on several shards (a split): one read per shard, results in order.
        const results: ReadResult[] = new Array(keys.length);
        await Promise.all(
          [...groups.values()].map(async (indexes) => {
            const part = await this.readGroup(
              indexes.map((i) => keys[i]!),
              indexes.map((i) => slots[i]!),
              state,
              claims && indexes.map((i) => claims[i]!),
            );
            indexes.forEach((keyIndex, partIndex) => (results[keyIndex] = part[partIndex]!));
          }),
        );
        return results;
      },
    );
  }

  /**
   * One read attempt on a route: the reply, or the delay before the next attempt. Errors that a
   * retry cannot fix are thrown.
   */
  private async readAttempt(
    route: ShardRoute,
    state: ReadState,
    failures: number,
    build: ReadRequestBuilder,
  ): Promise<PipelineResponseMessage | number> {
    let address: string;
    try {
      address = state.consistency === "stale" ? this.router.replicaAddress(route) : this.router.leaderAddress(route);
    } catch (error) {
      state.lastError = error;
      this.router.refreshRoutesSoon();
      return this.policy.backoffMs(failures);
    }
    const common: ReadFieldsInput = {
      consistency: state.consistency === "stale" ? "STALE" : "LINEARIZABLE",
      minIndex: int64Wire(state.minIndex),
      shardId: route.shardId,
      epoch: int64Wire(route.epoch),
    };
    const timeoutMs = this.policy.attemptTimeoutMs(state.timeouts, state.deadlineAtMs);
    const [opName, request] = build(common);
    const outcome = await this.pool.connection(address).send(opName, request, timeoutMs, state.deadlineAtMs, state.cancellation);
    switch (outcome.kind) {
      case "reply":
        return outcome.response;
      case "aborted":
        // The read's own deadline ended it while the node held it (a caller's signal ends it
        // earlier): no reply in the whole deadline, so as after an attempt timeout, the next read
        // asks another replica first.
        if (outcome.sent && monotonicMs() >= state.deadlineAtMs - DEADLINE_SLACK_MS) this.policy.avoidNode(route, address);
        return 0;
      case "unsent":
        state.lastError = new UnavailableError(`cannot connect to ${address}`, { cause: outcome.cause });
        this.router.onNodeFailure(route, address);
        return this.policy.backoffMs(failures);
      case "lost":
        state.lastError = new UnavailableError(`connection to ${address} lost`, { cause: outcome.cause });
        this.router.onNodeFailure(route, address);
        return this.policy.backoffMs(failures);
      case "timeout":
        state.timeouts++;
        state.lastError = new TimeoutError(`no reply from ${address} within the attempt timeout`);
        // A replica that stops answering (a paused or cut-off leader) goes last for a while and
        // the shard's leader is forgotten: the next attempt asks another replica, which serves the
        // read or names the leader (one that was only slow is named again and tried again). A read
        // may be repeated anywhere; every attempt after a timeout gets a longer one.
        this.policy.avoidNode(route, address);
        return this.policy.backoffMs(failures);
      case "error": {
        const error = errorInfoToError(outcome.info);
        state.lastError = error;
        if (!isRetryable(error.code)) throw error;
        const delayMs = await this.policy.onAttemptError(new AttemptError(error, address), route, failures);
        if (state.consistency === "stale" && (error.code === "UNAVAILABLE" || error.code === "TIMEOUT")) this.pool.markFailed(address);
        return delayMs;
      }
    }
  }

  /** A read answered by the one shard that holds `slot`, retried until the deadline. */
  async shardRead<T>(
    slot: number,
    state: ReadState,
    build: ReadRequestBuilder,
    parse: (response: PipelineResponseMessage) => T | null | undefined,
  ): Promise<T> {
    return this.policy.untilAnswered(
      [slot],
      state,
      (route, failures) => this.readAttempt(route, state, failures, build),
      (attempt) => {
        const parsed = parse(attempt);
        if (parsed === undefined || parsed === null)
          throw new TallyError("INTERNAL", `malformed ${state.kind} reply (${attempt.result ?? "empty"})`);
        return parsed;
      },
    );
  }
}

/**
 * The values of one reply. Every value of a GetMany carries the same fence and applied index (one
 * read of one applied state), so those decimals are parsed once per reply, not once per key.
 */
function readResultsFromMessages(messages: GetResponseMessage[]): ReadResult[] {
  const results: ReadResult[] = new Array(messages.length);
  let fenceMessage: FenceMessage | null | undefined;
  let fence: Fence | undefined;
  let fenceHandedOut = false;
  let appliedText: string | undefined;
  let applied = 0n;
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i]!;
    const next = message.fence;
    if (fence === undefined || next?.term !== fenceMessage?.term || next?.index !== fenceMessage?.index) {
      fence = fenceFromMessage(next);
      fenceMessage = next;
      fenceHandedOut = false;
    }
    if (appliedText === undefined || message.appliedIndex !== appliedText) {
      applied = wireBigInt(message.appliedIndex);
      appliedText = message.appliedIndex;
    }
    results[i] = {
      value: wireBigInt(message.value),
      version: wireBigInt(message.version),
      exists: message.exists,
      // Each result its own Fence object (a caller may keep or change it), the parsed bigints shared.
      fence: fenceHandedOut ? { term: fence.term, index: fence.index } : fence,
      appliedIndex: applied,
    };
    fenceHandedOut = true;
  }
  return results;
}
