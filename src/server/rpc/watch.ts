/**
 * CounterService.Watch: a stream of the changes of one key, or of every key with a prefix on one
 * shard. Polls the replica's change log every coalesce_ms and sends the latest change per key
 * since the cursor. Ends with an error status when the shard leaves this node or changes epoch
 * (re-route and resume), or when the cursor fell out of the change log (OUT_OF_RANGE).
 */
import type * as grpc from "@grpc/grpc-js";
import type { WatchBatchInput, WatchRequestMessage } from "../../api/proto.js";
import { keyHasPrefix } from "../../kinds/topk.js";
import { monotonicMs } from "../../util/clock.js";
import { InvalidArgumentError, OutOfRangeError, OverloadedError, UnavailableError, WrongShardError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import type { TallyNode } from "../node.js";
import type { ShardReplica } from "../shard-replica.js";
import { failStream } from "./errors.js";
import { boundedKey, int64Wire, prefixOf, u32, u64 } from "./fields.js";

const WATCH_COALESCE_DEFAULT_MS = 50;
/** Changes read per poll; a backlog is sent over several polls. */
const WATCH_BATCH_MAX = 10_000;
/** An idle watch still sends its progress (the index) this often, so a resume starts near now. */
const WATCH_PROGRESS_MS = 1_000;

type KeyChangeLike = { key: Uint8Array; value: bigint; version: number; kind: string; index: number };

export type WatchCall = grpc.ServerWritableStream<WatchRequestMessage, WatchBatchInput>;

/** A watch's request, checked: what it matches, on which replica, from which index. */
interface WatchStart {
  matches: (key: Uint8Array) => boolean;
  replica: ShardReplica;
  coalesceMs: number;
  cursor: number;
}

function startOf(node: TallyNode, request: WatchRequestMessage): WatchStart {
  const maxKeyBytes = node.config.limits.maxKeyBytes;
  const prefix = request.prefix === true;
  const target = prefix ? prefixOf(request.key, maxKeyBytes) : boundedKey(request.key, "key", maxKeyBytes);
  const coalesceMs = u32(request.coalesceMs, "coalesce_ms") || WATCH_COALESCE_DEFAULT_MS;
  if (coalesceMs < 10 || coalesceMs > 10_000) throw new InvalidArgumentError(`coalesce_ms: must be 10..10000, got ${coalesceMs}`);
  const shardId = u32(request.shardId, "shard_id");
  if (prefix && shardId === 0) throw new InvalidArgumentError("shard_id is required for a prefix watch (one stream per shard)");
  const replica = node.route(shardId, u64(request.epoch, "epoch"), prefix ? [] : [target]);
  const fromIndex = u64(request.fromIndex, "from_index");
  const matches = prefix ? (key: Uint8Array) => keyHasPrefix(key, target) : (key: Uint8Array) => Buffer.compare(key, target) === 0;
  return { matches, replica, coalesceMs, cursor: fromIndex === 0 ? replica.machine.appliedIndex : fromIndex };
}

/** `onOverloaded`: told when a stalled consumer's stream is ended (metrics). */
export function serveWatch(node: TallyNode, call: WatchCall, log: Logger, onOverloaded: (reason: string) => void): void {
  let start: WatchStart;
  try {
    start = startOf(node, call.request);
  } catch (error) {
    failStream(call, error, log);
    return;
  }
  const { matches, coalesceMs } = start;
  let cursor = start.cursor;
  const shardId = start.replica.shardId;
  const epoch = start.replica.descriptor.epoch;
  const timeoutMs = node.config.limits.requestTimeoutMs;
  let sentAtMs = monotonicMs();
  let done = false;
  // Backpressure: at most one batch is on its way to the consumer. While it has not been taken
  // (HTTP/2 flow control), polls send nothing -- the cursor stays, so changes coalesce instead of
  // piling up -- and a consumer stuck past the request timeout is ended with OVERLOADED. A
  // watcher that never reads costs one batch (<= WATCH_BATCH_MAX events), not a growing buffer.
  let blockedSinceMs: number | undefined;
  const stop = (error?: unknown): void => {
    if (done) return;
    done = true;
    clearInterval(timer);
    if (error === undefined) call.end();
    else failStream(call, error, log);
  };
  const poll = (): void => {
    if (done || call.cancelled || call.destroyed) return stop();
    if (blockedSinceMs !== undefined) {
      if (monotonicMs() - blockedSinceMs <= timeoutMs) return;
      onOverloaded("watch_stalled");
      return stop(new OverloadedError(`watch consumer has not read for ${timeoutMs} ms; resume from index ${cursor}`, timeoutMs));
    }
    const current = node.replicas.get(shardId) as ShardReplica | undefined;
    if (current === undefined)
      return stop(new UnavailableError(`shard ${shardId} left node ${node.nodeId}; resume from index ${cursor} elsewhere`));
    if (current.descriptor.epoch !== epoch)
      return stop(
        new WrongShardError(
          `shard ${shardId} moved to epoch ${current.descriptor.epoch}; re-route and resume from index ${cursor}`,
          shardId,
          current.descriptor.epoch,
        ),
      );
    const changes = current.machine.changesSince(cursor, matches, WATCH_BATCH_MAX);
    if (changes === undefined) {
      return stop(
        new OutOfRangeError(
          `from_index ${cursor} is compacted: this replica keeps changes after index ${current.machine.changesRetainedAfter}; re-read and watch from now`,
        ),
      );
    }
    const latest = latestPerKey(changes);
    const last = changes[changes.length - 1];
    const index = changes.length >= WATCH_BATCH_MAX && last !== undefined ? last.index : current.machine.appliedIndex;
    const now = monotonicMs();
    cursor = Math.max(cursor, index);
    if (latest.length === 0 && now - sentAtMs < WATCH_PROGRESS_MS) return;
    sentAtMs = now;
    blockedSinceMs = now;
    const events = latest.map((change) => ({
      key: Buffer.from(change.key),
      value: int64Wire(change.value),
      version: change.version,
      kind: change.kind,
      index: change.index,
    }));
    call.write({ events, index: cursor, shardId }, () => {
      blockedSinceMs = undefined;
    });
  };
  const timer = setInterval(poll, coalesceMs);
  call.on("cancelled", () => stop());
  call.on("error", () => stop());
  poll();
}

/** Coalesces: the latest change per key, in the order of those latest changes. */
function latestPerKey(changes: readonly KeyChangeLike[]): KeyChangeLike[] {
  const latest = new Map<string, KeyChangeLike>();
  for (const change of changes) {
    const name = Buffer.from(change.key).toString("latin1");
    latest.delete(name);
    latest.set(name, change);
  }
  return [...latest.values()];
}
