/**
 * Hot counters on the client side (src/meta/hot.ts has the scheme): the hot list from the routes,
 * the choice of a sub-counter for each add, and the plan and sum of a read.
 *
 * What a hot read guarantees: each sub-counter is read with the requested consistency (each
 * LINEARIZABLE sub-read reflects every add acknowledged before it started); the sub-reads run
 * concurrently within the call, so for a counter that only grows the sum lies between the true
 * value when the call started and the true value when it returned. It is not one atomic snapshot
 * across shards: with concurrent decrements the sum can show a value the counter never held at a
 * single instant.
 */
import { hotSubKey } from "../meta/hot.js";
import { slotOf } from "../meta/slots.js";
import type { HotRouteMessage } from "../api/proto.js";
import { OutOfRangeError } from "../util/errors.js";
import { INT64_MAX, INT64_MIN } from "../util/int64.js";
import { wireBigInt } from "./values.js";

export interface HotKeyRoute {
  key: Buffer;
  /** Sub-counter i is hotSubKey(key, tags[i]); reads sum all of them. */
  tags: number[];
  /** Adds use the first `writable` sub-counters. */
  writable: number;
}

/** The hot keys of the newest map the client has seen (never replaced by an older map's list). */
export class HotTable {
  private version = -1n;
  private readonly byKey = new Map<string, HotKeyRoute>();
  private cursor = Math.floor(Math.random() * 1024);

  /** Adopts the list of a Routes reply unless it comes from an older map. */
  update(hot: HotRouteMessage[] | undefined, mapVersion: string | undefined): void {
    const version = wireBigInt(mapVersion ?? "0");
    if (hot === undefined || version < this.version) return;
    this.version = version;
    this.byKey.clear();
    for (const route of hot) {
      const key = Buffer.from(route.key);
      if (route.tags.length === 0) continue;
      this.byKey.set(key.toString("latin1"), {
        key,
        tags: [...route.tags],
        writable: Math.max(1, Math.min(route.writable, route.tags.length)),
      });
    }
  }

  get size(): number {
    return this.byKey.size;
  }

  lookup(key: Buffer): HotKeyRoute | undefined {
    return this.byKey.size === 0 ? undefined : this.byKey.get(key.toString("latin1"));
  }

  list(): HotKeyRoute[] {
    return [...this.byKey.values()].map((route) => ({ ...route, tags: [...route.tags] })).sort((a, b) => Buffer.compare(a.key, b.key));
  }

  /** What the client believes about these keys: changes when a refresh taught it something new. */
  signature(keys: Buffer[]): string {
    return keys.map((key) => this.lookup(key)?.tags.length ?? 0).join(",");
  }

  /**
   * The sub-counter key for the next add: round robin over the writable ones (from a random start,
   * so that many clients do not march in step). A retry reuses the op, hence the same sub-counter
   * and the same sequence number: exactly once holds per add.
   */
  nextSubKey(route: HotKeyRoute): Buffer {
    const tag = route.tags[this.cursor++ % route.writable]!;
    return Buffer.from(hotSubKey(route.key, tag));
  }
}

/** The physical reads behind a read of some keys: each hot key expands to its sub-counters. */
export interface HotReadPlan {
  keys: Buffer[];
  slots: number[];
  /** Per physical key: the sub-counter count it is read for (for sub-counter 0; 0 elsewhere). */
  claims: number[];
  /** Per requested key: where its physical keys start and how many there are. */
  spans: Array<{ start: number; count: number }>;
}

/** Undefined when none of the keys is hot (the read goes out unchanged). */
export function planHotRead(table: HotTable, keys: Buffer[]): HotReadPlan | undefined {
  if (table.size === 0 || !keys.some((key) => table.lookup(key) !== undefined)) return undefined;
  const plan: HotReadPlan = { keys: [], slots: [], claims: [], spans: [] };
  for (const key of keys) {
    const route = table.lookup(key);
    const start = plan.keys.length;
    if (route === undefined) {
      plan.keys.push(key);
      plan.claims.push(0);
    } else {
      for (const tag of route.tags) {
        plan.keys.push(Buffer.from(hotSubKey(route.key, tag)));
        plan.claims.push(tag === 0 ? route.tags.length : 0);
      }
    }
    plan.spans.push({ start, count: plan.keys.length - start });
  }
  plan.slots = plan.keys.map((key) => slotOf(key));
  return plan;
}

interface SubRead {
  value: bigint;
  version: bigint;
  exists: boolean;
}

/**
 * One result per requested key: a hot key's value is the sum of its sub-counters, exists if any
 * exists; the other fields (version, fence, applied index) are sub-counter 0's, since indexes of
 * different shards' logs cannot be combined. A sum outside int64 is OUT_OF_RANGE, never wrapped.
 */
export function combineHotRead<R extends SubRead>(
  plan: HotReadPlan,
  results: R[],
  describe: (index: number) => string,
): Array<R & { subCounters?: number }> {
  return plan.spans.map(({ start, count }, index) => {
    const first = results[start]!;
    if (count === 1 && plan.claims[start] === 0) return first;
    let value = 0n;
    let exists = false;
    for (let i = start; i < start + count; i++) {
      value += results[i]!.value;
      exists ||= results[i]!.exists;
    }
    if (value < INT64_MIN || value > INT64_MAX)
      throw new OutOfRangeError(`the sub-counters of hot counter ${describe(index)} sum to ${value}, outside the signed 64-bit range`);
    return { ...first, value, exists, subCounters: count };
  });
}
