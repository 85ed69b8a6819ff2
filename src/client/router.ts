/**
 * Where a request goes: the routing map (RouteTable, refreshed through the Routes RPC), the shard
 * of each slot, and which node of a shard to ask (the believed leader, or a healthy replica).
 * Concurrent refreshes share one Routes round; background refreshes are rate-limited.
 */
import type { RoutesRequestInput, RoutesResponseMessage } from "../api/proto.js";
import { assert } from "../util/assert.js";
import { monotonicMs } from "../util/clock.js";
import { TallyError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { nodeAnswered, NODE_AVOID_MS, type ConnectionPool } from "./connection-pool.js";
import { ClientClosedError, ClusterUnreachableError } from "./errors.js";
import type { Lifecycle } from "./lifecycle.js";
import type { ResolvedOptions } from "./options.js";
import { RouteTable, type ShardRoute } from "./routing.js";

/** Background map refreshes (after NOT_LEADER, connection loss) at most this often. */
const ROUTES_REFRESH_MIN_INTERVAL_MS = 100;

export type SlotRouting = { kind: "single"; route: ShardRoute } | { kind: "split"; groups: Map<number, number[]> };

export class Router {
  readonly routeTable = new RouteTable();
  private refreshing: Promise<void> | undefined;
  private lastRefreshAtMs = Number.NEGATIVE_INFINITY;
  private rotation = 0;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly pool: ConnectionPool,
    private readonly life: Lifecycle,
    private readonly logger: Logger,
  ) {}

  /** When the last refresh ended (a hot key's writer refreshes routes older than a bound). */
  get lastRefreshedAtMs(): number {
    return this.lastRefreshAtMs;
  }

  async ensureRoutes(): Promise<void> {
    if (!this.routeTable.isEmpty) return;
    try {
      await this.refreshRoutes();
    } catch {
      // The operation's retry loop keeps trying until its deadline.
    }
  }

  async routeForSlots(slots: ArrayLike<number>): Promise<SlotRouting> {
    assert(slots.length > 0, "routing no keys");
    if (this.routeTable.isEmpty) await this.refreshRoutes();
    for (let pass = 0; ; pass++) {
      // The common case first, without a list of indexes: every slot on one shard.
      const single = this.singleRoute(slots);
      if (single !== undefined && !this.routeTable.isStale(single.shardId)) return { kind: "single", route: single };
      const groups = new Map<number, number[]>();
      let first: ShardRoute | undefined;
      let missing = false;
      for (let index = 0; index < slots.length; index++) {
        const route = this.routeTable.lookup(slots[index]!);
        if (route === undefined) {
          missing = true;
          continue;
        }
        first ??= route;
        const group = groups.get(route.shardId) ?? [];
        group.push(index);
        groups.set(route.shardId, group);
      }
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

  /** The route of every slot when they all have the same one. */
  private singleRoute(slots: ArrayLike<number>): ShardRoute | undefined {
    const first = this.routeTable.lookup(slots[0]!);
    if (first === undefined) return undefined;
    // A route is a slot range: comparisons, not a lookup per slot.
    for (let index = 1; index < slots.length; index++) {
      const slot = slots[index]!;
      if (slot < first.slotStart || slot >= first.slotEnd) return undefined;
    }
    return first;
  }

  /** Addresses to ask for Routes/Status: the map's nodes then the configured endpoints, healthy first. */
  discoveryAddresses(): string[] {
    const all = [...new Set([...this.routeTable.addresses(), ...this.options.endpoints])];
    const start = this.rotation++ % all.length;
    const rotated = [...all.slice(start), ...all.slice(0, start)];
    const now = monotonicMs();
    const healthy = rotated.filter((address) => now - this.pool.markedFailedAtMs(address) >= NODE_AVOID_MS);
    const failing = rotated.filter((address) => !healthy.includes(address));
    return [...healthy, ...failing];
  }

  /** Refreshes the map; concurrent callers share one refresh. Throws ClusterUnreachableError. */
  refreshRoutes(force = true): Promise<void> {
    if (this.refreshing !== undefined) return this.refreshing;
    if (!force && monotonicMs() - this.lastRefreshAtMs < ROUTES_REFRESH_MIN_INTERVAL_MS) return Promise.resolve();
    this.refreshing = this.fetchRoutes().finally(() => {
      this.refreshing = undefined;
      this.lastRefreshAtMs = monotonicMs();
    });
    return this.refreshing;
  }

  refreshRoutesSoon(): void {
    if (this.life.closed || this.refreshing !== undefined) return;
    if (monotonicMs() - this.lastRefreshAtMs < ROUTES_REFRESH_MIN_INTERVAL_MS) return;
    const loop = this.refreshRoutes(false)
      .catch(() => undefined)
      .finally(() => this.life.loops.delete(loop));
    this.life.loops.add(loop);
  }

  /** Asks the known nodes in turn, within one operation deadline in total. */
  private async fetchRoutes(): Promise<void> {
    const addresses = this.discoveryAddresses();
    const deadlineAtMs = monotonicMs() + this.options.deadlineMs;
    let lastError: unknown;
    let answered = false;
    for (const address of addresses) {
      if (this.life.closed) throw new ClientClosedError();
      const now = monotonicMs();
      if (now >= deadlineAtMs) break;
      const outcome = await this.pool
        .connection(address)
        .unary<RoutesRequestInput, RoutesResponseMessage>(
          "counter",
          "Routes",
          {},
          Math.min(deadlineAtMs, now + Math.min(this.options.attemptTimeoutMs, this.options.connectTimeoutMs * 2)),
        );
      if (outcome.kind === "error") {
        lastError = outcome.error;
        if (nodeAnswered(outcome.error, outcome.info)) answered = true;
        else this.pool.markFailed(address);
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

  /** The believed leader if it looks healthy, else the next healthy replica (which will redirect). */
  leaderAddress(route: ShardRoute): string {
    const now = monotonicMs();
    if (route.leaderAddress !== undefined && this.pool.isHealthy(route.leaderAddress, now)) return route.leaderAddress;
    return this.replicaAddress(route);
  }

  replicaAddress(route: ShardRoute): string {
    const addresses = route.replicas.map((replica) => replica.address).filter((address) => address !== "");
    if (addresses.length === 0) {
      if (route.leaderAddress !== undefined) return route.leaderAddress;
      throw new TallyError("UNAVAILABLE", `shard ${route.shardId} has no replica with an address`);
    }
    const now = monotonicMs();
    const start = this.rotation++;
    for (let i = 0; i < addresses.length; i++) {
      const address = addresses[(start + i) % addresses.length]!;
      if (this.pool.isHealthy(address, now)) return address;
    }
    return addresses[start % addresses.length]!;
  }

  /** A connection to the node failed or dropped: re-learn the map, and steer away if it is down. */
  onNodeFailure(route: ShardRoute, address: string): void {
    if (!this.pool.isHealthy(address, monotonicMs())) this.routeTable.forgetLeader(route.shardId, address);
    this.refreshRoutesSoon();
  }
}
