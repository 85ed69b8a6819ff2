/**
 * Per-shard sessions (Raft thesis 6.3): one registered client id per shard, shared by every
 * mutation to it; concurrent callers share one RegisterSession. A session idle for
 * keepAliveIntervalMs gets a KeepAlive so the server does not expire it.
 */
import type {
  KeepAliveRequestInput,
  KeepAliveResponseMessage,
  RegisterSessionRequestInput,
  RegisterSessionResponseMessage,
} from "../api/proto.js";
import { monotonicMs } from "../util/clock.js";
import { NotLeaderError, TallyError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import type { Cancellation } from "./cancellation.js";
import type { ConnectionPool } from "./connection-pool.js";
import type { Lifecycle } from "./lifecycle.js";
import type { ResolvedOptions } from "./options.js";
import { AttemptError } from "./retry.js";
import type { Router } from "./router.js";
import type { ShardRoute } from "./routing.js";
import { ShardSession } from "./session.js";
import { wireBigInt } from "./values.js";

export class SessionRegistry {
  private readonly sessions = new Map<number, ShardSession>();
  private readonly registrations = new Map<number, Promise<ShardSession>>();
  private readonly keepAliveTimer: NodeJS.Timeout;
  private readonly keepAlivesInFlight = new Set<number>();

  constructor(
    private readonly options: ResolvedOptions,
    private readonly life: Lifecycle,
    private readonly router: Router,
    private readonly pool: ConnectionPool,
    private readonly logger: Logger,
  ) {
    this.keepAliveTimer = setInterval(() => this.keepAliveTick(), this.options.keepAliveIntervalMs);
    // The timer must not keep a process alive on its own; open channels do that while in use.
    this.keepAliveTimer.unref();
  }

  stop(): void {
    clearInterval(this.keepAliveTimer);
  }

  async sessionFor(route: ShardRoute, deadlineAtMs: number, cancellation: Cancellation): Promise<ShardSession> {
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
    const address = this.router.leaderAddress(route);
    const request: RegisterSessionRequestInput = { shardId: route.shardId, epoch: String(route.epoch) };
    const outcome = await this.pool
      .connection(address)
      .unary<RegisterSessionRequestInput, RegisterSessionResponseMessage>(
        "counter",
        "RegisterSession",
        request,
        Math.min(deadlineAtMs, monotonicMs() + this.options.attemptTimeoutMs),
      );
    if (outcome.kind === "error") throw new AttemptError(outcome.error, address);
    const clientId = wireBigInt(outcome.response.clientId);
    if (clientId <= 0n) throw new AttemptError(new TallyError("INTERNAL", "RegisterSession returned client id 0"), address);
    const session = new ShardSession(route.shardId, clientId, monotonicMs());
    if (!this.life.closed) this.sessions.set(route.shardId, session);
    this.logger.debug({ shardId: route.shardId, clientId: String(clientId) }, "session registered");
    return session;
  }

  dropSession(session: ShardSession): void {
    session.expired = true;
    if (this.sessions.get(session.shardId) === session) this.sessions.delete(session.shardId);
  }

  private keepAliveTick(): void {
    if (this.life.closed) return;
    const now = monotonicMs();
    for (const session of this.sessions.values()) {
      if (session.expired || now - session.lastUsedAtMs < this.options.keepAliveIntervalMs) continue;
      if (this.keepAlivesInFlight.has(session.shardId)) continue;
      const route = this.router.routeTable.byShardId(session.shardId);
      if (route === undefined) continue;
      this.keepAlivesInFlight.add(session.shardId);
      const loop = this.keepAlive(session, route)
        .catch((error: unknown) => this.logger.debug({ err: error, shardId: session.shardId }, "keepalive failed"))
        .finally(() => {
          this.keepAlivesInFlight.delete(session.shardId);
          this.life.loops.delete(loop);
        });
      this.life.loops.add(loop);
    }
  }

  private async keepAlive(session: ShardSession, route: ShardRoute): Promise<void> {
    if (this.life.closed) return;
    const address = this.router.leaderAddress(route);
    const request: KeepAliveRequestInput = {
      header: {
        shardId: route.shardId,
        epoch: String(route.epoch),
        clientId: String(session.clientId),
        seq: "0",
        firstUnackedSeq: String(session.firstUnackedSeq()),
      },
    };
    const outcome = await this.pool
      .connection(address)
      .unary<KeepAliveRequestInput, KeepAliveResponseMessage>(
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
      this.router.routeTable.noteLeaderHint(route.shardId, outcome.error.leaderId, outcome.error.leaderAddress);
    }
    // Anything else: the next tick tries again.
  }
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
