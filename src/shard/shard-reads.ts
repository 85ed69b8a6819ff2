/**
 * Reads of a shard's applied state (the server picks the replica that answers): counters, the
 * kind of a key, windowed counters, unique counts, and the top k and aggregates over a key prefix.
 * Reads change nothing. A key whose TTL is due reads as absent by the reader's clock `readNowMs`,
 * although no entry has deleted it yet (the state's clock only moves with entries).
 */
import { assert } from "../util/assert.js";
import { FailedPreconditionError } from "../util/errors.js";
import type { OpResult } from "./commands.js";
import { describeKey, listedUnder } from "./keys.js";
import { KIND_NAMES, KindTag, type KindEntry } from "./kind-table.js";
import { HyperLogLog } from "../kinds/hll.js";
import { requireInteger } from "../kinds/codec.js";
import { aggregate, topK, TOP_K_MAX, type Aggregate, type KeyValue } from "../kinds/topk.js";
import { TopKIndex } from "./kinds/topk-index.js";
import { WindowedCounter, type WindowAggregate, type WindowBucket, type WindowRange } from "./kinds/windows.js";
import type { ShardState } from "./shard-state.js";

/** [fromMs, toMs) in ms since the epoch. */
export interface TimeRange {
  fromMs: number;
  toMs: number;
}

/** Answers reads of a windowed key that does not exist (never written: reads do not mutate). */
const EMPTY_WINDOW = new WindowedCounter();

/** The reads of one shard, for its CounterStateMachine (which documents each). */
export class ShardReads {
  /** Top-K of plain counters per prefix, kept from the change log (kinds/topk-index.ts): exactly what a scan gives. */
  private readonly topIndex: TopKIndex;

  constructor(private readonly state: ShardState) {
    this.topIndex = new TopKIndex(state);
  }

  get(key: Uint8Array, readNowMs: number): OpResult | undefined {
    const { counters, kinds, clockMs } = this.state;
    if (kinds.isDue(key, Math.max(clockMs, readNowMs))) return undefined;
    const slot = counters.find(key);
    if (slot < 0) return undefined;
    const version = counters.version(slot);
    assert(version >= 1, "a transient counter slot outlived its mutate");
    return { value: counters.value(slot), version };
  }

  kindOf(key: Uint8Array, readNowMs: number): string | undefined {
    const kinds = this.state.kinds;
    const entry = kinds.get(key);
    if (entry === undefined || entry.tag === KindTag.Ttl) return undefined;
    if (kinds.isDue(key, Math.max(this.state.clockMs, readNowMs))) return undefined;
    return KIND_NAMES[entry.tag];
  }

  /** The key's structure of that kind; undefined if absent or expired; FailedPreconditionError if another kind. */
  private structureOf(key: Uint8Array, tag: KindTag, readNowMs: number): KindEntry | undefined {
    if (this.state.kinds.isDue(key, Math.max(this.state.clockMs, readNowMs))) return undefined;
    const entry = this.state.kinds.get(key);
    const holder = entry?.tag ?? (this.state.counterExists(key) ? KindTag.Ttl : undefined);
    if (holder === undefined) return undefined;
    if (holder !== tag)
      throw new FailedPreconditionError(`key ${describeKey(key)} holds a ${KIND_NAMES[holder]}, not a ${KIND_NAMES[tag]}`);
    return entry;
  }

  windowAt(key: Uint8Array, timeMs: number, readNowMs: number): WindowBucket & { version: number } {
    const entry = this.structureOf(key, KindTag.Window, readNowMs);
    const window = (entry?.structure as WindowedCounter | undefined) ?? EMPTY_WINDOW;
    return { ...window.at(timeMs), version: entry?.version ?? 0 };
  }

  windowRange(
    key: Uint8Array,
    fromMs: number,
    toMs: number,
    stepMs: number,
    agg: WindowAggregate,
    readNowMs: number,
  ): WindowRange & { version: number } {
    const entry = this.structureOf(key, KindTag.Window, readNowMs);
    const window = (entry?.structure as WindowedCounter | undefined) ?? EMPTY_WINDOW;
    return { ...window.range(fromMs, toMs, stepMs, agg), version: entry?.version ?? 0 };
  }

  /** The union of the keys' sketches, a copy (the first one found is cloned, not merged into an empty sketch). */
  uniqueSketch(keys: Uint8Array[], readNowMs: number): HyperLogLog {
    let union: HyperLogLog | undefined;
    for (const key of keys) {
      const entry = this.structureOf(key, KindTag.Unique, readNowMs);
      if (entry === undefined) continue;
      const sketch = entry.structure as HyperLogLog;
      if (union === undefined) union = sketch.clone();
      else union.merge(sketch);
    }
    return union ?? new HyperLogLog();
  }

  topK(prefix: Uint8Array, k: number, readNowMs: number, window: TimeRange | undefined): KeyValue[] {
    if (window !== undefined) return topK(this.prefixedWindows(prefix, readNowMs, window), k);
    requireInteger(k, "k", 1, TOP_K_MAX);
    const kinds = this.state.kinds;
    const nowMs = Math.max(this.state.clockMs, readNowMs);
    return this.topIndex.topK(prefix, k, (key) => kinds.isDue(key, nowMs));
  }

  aggregate(prefix: Uint8Array, readNowMs: number, window: TimeRange | undefined): Aggregate {
    return aggregate(window === undefined ? this.prefixed(prefix, readNowMs) : this.prefixedWindows(prefix, readNowMs, window), prefix);
  }

  /**
   * Windowed counters with the prefix and an add in the range, each valued at its sum over it (the same range on
   * every shard, chosen by the caller, so the merged answer is over one period). A range no tier
   * holds for some key is INVALID_ARGUMENT for the whole read, never a silent 0.
   */
  private *prefixedWindows(prefix: Uint8Array, readNowMs: number, window: TimeRange): Iterable<KeyValue> {
    const kinds = this.state.kinds;
    const nowMs = Math.max(this.state.clockMs, readNowMs);
    for (const entry of kinds.values()) {
      if (entry.tag !== KindTag.Window || !listedUnder(entry.key, prefix) || kinds.isDue(entry.key, nowMs)) continue;
      const structure = entry.structure as WindowedCounter;
      const sum = structure.range(window.fromMs, window.toMs, window.toMs - window.fromMs, "sum").points[0]!.value;
      // Only counters with an add in the range take part (a sum of 0 may still be +5 and -5).
      if (sum === 0n && structure.range(window.fromMs, window.toMs, window.toMs - window.fromMs, "count").points[0]!.value === 0n) continue;
      yield { key: entry.key, value: sum };
    }
  }

  private *prefixed(prefix: Uint8Array, readNowMs: number): Iterable<KeyValue> {
    const table = this.state.counters;
    const kinds = this.state.kinds;
    const nowMs = Math.max(this.state.clockMs, readNowMs);
    for (const slot of table.occupiedSlots()) {
      const key = table.keyView(slot);
      if (!listedUnder(key, prefix) || kinds.isDue(key, nowMs)) continue;
      yield { key, value: table.value(slot) };
    }
  }
}
