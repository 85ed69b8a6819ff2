/**
 * watch(): a server stream per shard (any replica serves one), merged into one async iterator of
 * batches. Each shard's follower reconnects by itself and resumes from its last batch's index, so
 * no change is skipped (one may repeat, with its index, after a reconnect).
 */
import type * as grpc from "@grpc/grpc-js";
import { decodeServiceError } from "../api/error-details.js";
import type { WatchBatchMessage, WatchRequestInput } from "../api/proto.js";
import { SLOT_COUNT, slotOf } from "../meta/slots.js";
import { InvalidArgumentError } from "../util/errors.js";
import { assert } from "../util/assert.js";
import { Cancellation, followAbort } from "./cancellation.js";
import type { ConnectionPool } from "./connection-pool.js";
import { encodePrefix } from "./kinds.js";
import type { Lifecycle } from "./lifecycle.js";
import { accessDenied, sleep, type RetryPolicy } from "./retry.js";
import type { Router } from "./router.js";
import type { ShardRoute } from "./routing.js";
import type { WatchBatch, WatchEvent, WatchOptions } from "./types.js";
import { encodeKey, int64Wire, toUint64, wireBigInt, type Key } from "./values.js";

type WatchItem = WatchBatch | { error: unknown };

/** What one watch asks every shard for. */
interface WatchTarget {
  key: Buffer;
  prefix: boolean;
  startIndex: bigint;
  coalesceMs: number;
}

export class Watcher {
  constructor(
    private readonly life: Lifecycle,
    private readonly router: Router,
    private readonly pool: ConnectionPool,
    private readonly policy: RetryPolicy,
  ) {}

  /** See TallyClient.watch. */
  async *watch(keyOrPrefix: Key, options: WatchOptions = {}): AsyncGenerator<WatchBatch> {
    this.life.checkOpen();
    const prefix = options.prefix === true;
    const target = prefix ? encodePrefix(keyOrPrefix) : encodeKey(keyOrPrefix);
    const coalesceMs = options.coalesceMs ?? 50;
    if (options.slot !== undefined && !(Number.isInteger(options.slot) && options.slot >= 0 && options.slot < SLOT_COUNT))
      throw new InvalidArgumentError(`slot must be an integer in [0, ${SLOT_COUNT}), got ${String(options.slot)}`);
    const startIndex = options.fromIndex === undefined ? 0n : toUint64(options.fromIndex, "fromIndex");
    await this.router.ensureRoutes();
    const cancellation = new Cancellation();
    // An abort during the route lookup above counts too, or the watch would run on.
    const unfollow = followAbort(options.signal, () => cancellation.cancel());
    this.life.activeReads.add(cancellation);
    const queue: WatchItem[] = [];
    let wake: (() => void) | undefined;
    const push = (item: WatchItem): void => {
      queue.push(item);
      wake?.();
    };
    const watched: WatchTarget = { key: target, prefix, startIndex, coalesceMs };
    const slots =
      prefix && options.slot !== undefined
        ? [options.slot]
        : prefix
          ? this.router.routeTable.snapshot().shards.map((route) => route.slotStart)
          : [slotOf(target)];
    const followers = slots.map((slot) => this.follow(slot, watched, cancellation, push).catch((error: unknown) => push({ error })));
    try {
      while (!cancellation.cancelled && !this.life.closed) {
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
      unfollow();
      this.life.activeReads.delete(cancellation);
      await Promise.allSettled(followers);
    }
  }

  /** Follows the changes of the shard that holds `slot` until the watch stops; a definite error ends it. */
  private async follow(slot: number, watched: WatchTarget, cancellation: Cancellation, push: (item: WatchItem) => void): Promise<void> {
    let cursor = watched.startIndex;
    let failures = 0;
    while (!cancellation.cancelled && !this.life.closed) {
      let route: ShardRoute;
      let address: string;
      try {
        const routing = await this.router.routeForSlots([slot]);
        assert(routing.kind === "single", "one slot routes to one shard");
        route = routing.route;
        address = this.router.replicaAddress(route);
      } catch (error) {
        const denied = accessDenied(error);
        if (denied !== undefined) return push({ error: denied });
        await sleep(this.policy.backoffMs(++failures), cancellation);
        continue;
      }
      const stream = this.pool.connection(address).serverStream<WatchRequestInput, WatchBatchMessage>("watch", {
        key: watched.key,
        prefix: watched.prefix,
        fromIndex: int64Wire(cursor),
        shardId: route.shardId,
        epoch: int64Wire(route.epoch),
        coalesceMs: watched.coalesceMs,
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
      if (cancellation.cancelled || this.life.closed) return;
      const decoded = error === undefined ? undefined : decodeServiceError(error as grpc.ServiceError);
      if (
        decoded !== undefined &&
        (decoded.error.code === "OUT_OF_RANGE" || decoded.error.code === "INVALID_ARGUMENT" || accessDenied(decoded.error) !== undefined)
      ) {
        push({ error: decoded.error });
        return;
      }
      if (decoded?.error.code === "WRONG_SHARD" || decoded?.error.code === "UNAVAILABLE") this.router.refreshRoutesSoon();
      this.pool.markFailed(address);
      await sleep(this.policy.backoffMs(++failures), cancellation);
    }
  }
}
