/**
 * Retries, in one place: the backoff, the attempt timeout, the reaction to the errors every
 * request kind retries (onAttemptError: follow a leader hint, learn an epoch, wait out an
 * overload), and the one retry loop that every read runs (untilAnswered). The mutation loop
 * (mutations.ts) uses the same pieces; its loop differs because of sessions and ambiguity.
 */
import type { PipelineResponseMessage } from "../api/proto.js";
import { assert } from "../util/assert.js";
import { monotonicMs } from "../util/clock.js";
import { NotLeaderError, OverloadedError, TallyError, WrongShardError, type ErrorCode } from "../util/errors.js";
import type { Cancellation } from "./cancellation.js";
import type { ConnectionPool } from "./connection-pool.js";
import { ClusterUnreachableError, TimeoutError } from "./errors.js";
import type { ResolvedOptions } from "./options.js";
import type { Router, SlotRouting } from "./router.js";
import type { ShardRoute } from "./routing.js";

/** A failed attempt and the node it was sent to. */
export class AttemptError extends Error {
  constructor(
    readonly error: TallyError,
    readonly address: string,
  ) {
    super(error.message);
  }
}

/** What a retry loop carries between attempts. */
export interface RetryState {
  deadlineAtMs: number;
  cancellation: Cancellation;
  lastError: unknown;
}

/**
 * The error when the cluster refused the caller's credentials (UNAUTHENTICATED) or role
 * (PERMISSION_DENIED): definite, and the same on every node, so never retried.
 */
export function accessDenied(error: unknown): TallyError | undefined {
  const cause = error instanceof AttemptError ? error.error : error;
  return cause instanceof TallyError && (cause.code === "UNAUTHENTICATED" || cause.code === "PERMISSION_DENIED") ? cause : undefined;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The error of an operation whose deadline passed without a definite answer. */
export function deadlineError(lastError: unknown): TallyError {
  if (lastError instanceof ClusterUnreachableError) return lastError;
  const suffix = lastError === undefined ? "" : `; last error: ${messageOf(lastError)}`;
  return new TimeoutError(`no answer within the deadline${suffix}`, { cause: lastError });
}

const RETRYABLE_READ_CODES: ReadonlySet<ErrorCode> = new Set([
  "NOT_LEADER",
  "WRONG_SHARD",
  "UNAVAILABLE",
  "OVERLOADED",
  "TIMEOUT",
  "AMBIGUOUS",
]);

/** Whether a read may be retried after this error code. */
export function isRetryable(code: ErrorCode): boolean {
  return RETRYABLE_READ_CODES.has(code);
}

/** Resolves after ms, or as soon as the cancellation fires. */
export function sleep(ms: number, cancellation: Cancellation): Promise<void> {
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

/**
 * An attempt ended by its operation's deadline (not by the caller's signal) while a node held it
 * counts as that node's timeout when the deadline is this close (timers may fire a little early).
 */
export const DEADLINE_SLACK_MS = 5;

export class RetryPolicy {
  constructor(
    private readonly options: ResolvedOptions,
    private readonly router: Router,
    private readonly pool: ConnectionPool,
  ) {}

  /** Shared retry policy for the errors every request kind retries. Returns the delay. */
  async onAttemptError(error: unknown, route: ShardRoute, failures: number): Promise<number> {
    if (!(error instanceof AttemptError)) return this.backoffMs(failures);
    const { error: cause, address } = error;
    if (cause instanceof NotLeaderError) {
      const hinted = this.router.routeTable.noteLeaderHint(route.shardId, cause.leaderId, cause.leaderAddress);
      const hintedAddress = this.router.routeTable.byShardId(route.shardId)?.leaderAddress;
      if (hinted && hintedAddress !== undefined && hintedAddress !== address) {
        // The hint is newer than any failure we saw at that node: try it (if it is really down,
        // the attempt fails fast and marks it again).
        this.pool.clearFailure(hintedAddress);
        // Raft section 5.2: a follower knows the leader; go straight there, once without delay.
        this.router.refreshRoutesSoon();
        return failures <= 1 ? 0 : this.backoffMs(failures - 1);
      }
      this.router.routeTable.forgetLeader(route.shardId, address);
      this.router.refreshRoutesSoon();
      return this.backoffMs(failures);
    }
    if (cause instanceof WrongShardError) {
      // The epoch belongs to the shard the replica named (0: the one we routed to).
      this.router.routeTable.noteEpoch(cause.shardId || route.shardId, BigInt(cause.currentEpoch));
      await this.router.refreshRoutes(true).catch(() => undefined);
      return failures <= 1 ? 0 : this.backoffMs(failures - 1);
    }
    if (cause instanceof OverloadedError) return Math.max(cause.retryAfterMs, this.backoffMs(failures));
    if (cause.code === "UNAVAILABLE") {
      this.router.onNodeFailure(route, address);
      return this.backoffMs(failures);
    }
    return this.backoffMs(failures);
  }

  /**
   * A node held an attempt without an answer for its whole timeout (paused, cut off, or only
   * slow): it goes last for a while and the shard's leader is forgotten, so the next attempt, or
   * the next operation, asks another replica, which answers or names the leader.
   */
  avoidNode(route: ShardRoute, address: string): void {
    this.pool.markFailed(address);
    this.router.onNodeFailure(route, address);
  }

  backoffMs(failures: number): number {
    const base = Math.min(this.options.retryBackoffMaxMs, this.options.retryBackoffMs * 2 ** Math.min(20, Math.max(0, failures - 1)));
    // Full jitter on the upper half: spread retries of many clients after a leader change.
    return base / 2 + (Math.random() * base) / 2;
  }

  /**
   * The attempt timeout doubles with each attempt that timed out (up to 8x): a node that is slow
   * rather than gone then gets time to answer instead of a growing pile of retries of the same
   * requests (a retry storm that keeps it slow).
   */
  attemptTimeoutMs(timeouts: number, deadlineAtMs: number): number {
    const grown = this.options.attemptTimeoutMs * 2 ** Math.min(3, timeouts);
    return Math.max(1, Math.min(grown, deadlineAtMs - monotonicMs()));
  }

  /**
   * The retry loop of every read (readGroup, shardRead): route the slots, make one attempt, back
   * off after a failure, until an answer, an error no retry fixes, or the deadline. `onSplit`
   * answers when the slots now span several shards (absent: a single slot, one shard).
   */
  async untilAnswered<T>(
    slots: number[],
    state: RetryState,
    attempt: (route: ShardRoute, failures: number) => Promise<PipelineResponseMessage | number>,
    parse: (response: PipelineResponseMessage) => T,
    onSplit?: (groups: Map<number, number[]>) => Promise<T>,
  ): Promise<T> {
    let failures = 0;
    let delayMs = 0;
    for (;;) {
      if (delayMs > 0) await sleep(Math.min(delayMs, state.deadlineAtMs - monotonicMs()), state.cancellation);
      delayMs = 0;
      if (state.cancellation.cancelled || monotonicMs() >= state.deadlineAtMs) throw deadlineError(state.lastError);
      let routing: SlotRouting;
      try {
        routing = await this.router.routeForSlots(slots);
      } catch (error) {
        const denied = accessDenied(error);
        if (denied !== undefined) throw denied;
        state.lastError = error;
        delayMs = this.backoffMs(++failures);
        continue;
      }
      if (routing.kind === "split") {
        assert(onSplit !== undefined, "one slot routes to one shard");
        return onSplit(routing.groups);
      }
      if (state.cancellation.cancelled) continue;
      const answer = await attempt(routing.route, ++failures);
      if (typeof answer === "number") {
        delayMs = answer;
        continue;
      }
      return parse(answer);
    }
  }
}
