/**
 * Best-effort client-side aggregation (the StatsD pattern, issue 21): `add()` sums deltas per key
 * in this process, synchronously and without I/O, and every `flushIntervalMs` the sums go out as
 * one write: an exact AddBatch (exactly once through the client's sessions, split per shard) or,
 * with `mode: "eventual"`, an EventualAdd (exactly once through its request id). A flush is never
 * re-sent with other contents, so it counts once or, if its answer stays unknown past the
 * deadline, is reported through `onError` and not re-added (re-adding could count it twice).
 *
 * What it risks: the sums not yet flushed live only in this process's memory. An application
 * crash loses at most the last `flushIntervalMs` of adds, plus a flush in flight whose answer is
 * unknown; close() flushes what is left. Invariant: a key's delta is in exactly one of pending,
 * a flush in flight, or answered.
 */
import { InvalidArgumentError } from "../util/errors.js";
import type { CallOptions, MutationResult } from "./types.js";
import { BATCH_OPS_MAX, encodeKey, toInt64, type Int64Input, type Key } from "./values.js";

export interface AggregatorOptions {
  /** How often the sums are sent (default 100 ms). */
  flushIntervalMs?: number;
  /** exact (default): replicated commits through AddBatch; eventual: a node's buffer (docs/eventual.md). */
  mode?: "exact" | "eventual";
  /**
   * A flush that failed or whose outcome is unknown; its adds are not re-added. `lost` counts all
   * of the flush (an upper bound: an exact flush across shards may have applied on some of them,
   * its BatchError says which).
   */
  onError?: (error: unknown, lost: { keys: number; adds: number }) => void;
  /** Per flush request (default: the client's deadline). */
  deadlineMs?: number;
}

/** What an aggregator needs of the client. */
export interface AggregatorSink {
  addBatch(ops: Array<{ key: Key; delta: bigint }>, options: CallOptions): Promise<MutationResult[]>;
  addEventual(adds: ReadonlyArray<{ key: Key; delta?: Int64Input }>, options: CallOptions): Promise<unknown>;
}

const FLUSH_INTERVAL_MS_DEFAULT = 100;

export class Aggregator {
  private pending = new Map<string, { key: Uint8Array; delta: bigint; adds: number }>();
  private readonly timer: NodeJS.Timeout;
  private readonly inflight = new Set<Promise<void>>();
  private closed = false;
  private readonly mode: "exact" | "eventual";
  /** Adds summed so far, flushes answered, adds lost (failed or unknown flushes). */
  readonly stats = { adds: 0, flushes: 0, lostAdds: 0 };

  constructor(
    private readonly sink: AggregatorSink,
    private readonly options: AggregatorOptions = {},
  ) {
    const intervalMs = options.flushIntervalMs ?? FLUSH_INTERVAL_MS_DEFAULT;
    if (!Number.isSafeInteger(intervalMs) || intervalMs < 1 || intervalMs > 60_000)
      throw new InvalidArgumentError(`flushIntervalMs must be an integer from 1 to 60000, got ${String(intervalMs)}`);
    this.mode = options.mode ?? "exact";
    if (this.mode !== "exact" && this.mode !== "eventual")
      throw new InvalidArgumentError(`mode must be "exact" or "eventual", got ${String(options.mode)}`);
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  /** Sums delta (default 1) into the key's pending delta; checks its arguments, sends nothing. */
  add(key: Key, delta: Int64Input = 1n): void {
    if (this.closed) throw new InvalidArgumentError("the aggregator is closed");
    const bytes = encodeKey(key);
    const value = toInt64(delta, "delta");
    const id = bytes.toString("latin1");
    const entry = this.pending.get(id);
    if (entry === undefined) this.pending.set(id, { key: bytes, delta: value, adds: 1 });
    else {
      entry.delta += value;
      entry.adds++;
    }
    this.stats.adds++;
  }

  /** Sends every pending sum now; resolves when this flush is answered (errors go to onError). */
  flush(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    const entries = [...this.pending.values()].filter((entry) => entry.delta !== 0n);
    this.pending = new Map();
    const sends: Promise<void>[] = [];
    for (let i = 0; i < entries.length; i += BATCH_OPS_MAX) sends.push(this.send(entries.slice(i, i + BATCH_OPS_MAX)));
    return Promise.all(sends).then(() => undefined);
  }

  /** Stops the timer, flushes what is pending and waits for every flush in flight. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.flush();
    await Promise.allSettled([...this.inflight]);
  }

  private send(entries: Array<{ key: Uint8Array; delta: bigint; adds: number }>): Promise<void> {
    const ops = entries.map((entry) => ({ key: entry.key, delta: entry.delta }));
    const options: CallOptions = this.options.deadlineMs === undefined ? {} : { deadlineMs: this.options.deadlineMs };
    const request = this.mode === "exact" ? this.sink.addBatch(ops, options) : this.sink.addEventual(ops, options);
    const done = request.then(
      () => {
        this.stats.flushes++;
      },
      (error: unknown) => {
        const adds = entries.reduce((sum, entry) => sum + entry.adds, 0);
        this.stats.lostAdds += adds;
        this.options.onError?.(error, { keys: entries.length, adds });
      },
    );
    this.inflight.add(done);
    void done.finally(() => this.inflight.delete(done));
    return done;
  }
}
