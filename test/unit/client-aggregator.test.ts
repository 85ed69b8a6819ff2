/**
 * Client-side aggregation (src/client/aggregator.ts): sums per key in memory, one write per flush,
 * a failed or unknown flush reported and never re-added, close() flushes what is left.
 */
import { describe, expect, it } from "vitest";
import { Aggregator, type AggregatorSink } from "../../src/client/aggregator.js";
import type { Key } from "../../src/client/values.js";
import { AmbiguousError } from "../../src/util/errors.js";

function sink(fail?: () => Error): AggregatorSink & { batches: Array<Map<string, bigint>>; modes: string[] } {
  const batches: Array<Map<string, bigint>> = [];
  const modes: string[] = [];
  const record = (mode: string, ops: ReadonlyArray<{ key: Key; delta?: unknown }>) => {
    modes.push(mode);
    batches.push(new Map(ops.map((op) => [Buffer.from(op.key as Uint8Array).toString(), op.delta as bigint])));
    if (fail !== undefined) throw fail();
  };
  return {
    batches,
    modes,
    addBatch: async (ops) => {
      record("exact", ops);
      return [];
    },
    addEventual: async (adds) => {
      record("eventual", adds);
      return {};
    },
  };
}

describe("client-side aggregation", () => {
  it("sums adds per key and sends one write per flush", async () => {
    const out = sink();
    const aggregator = new Aggregator(out, { flushIntervalMs: 60_000 });
    for (let i = 0; i < 1000; i++) aggregator.add(`page:${i % 3}`, 1n);
    aggregator.add("page:0", -10n);
    await aggregator.flush();
    expect(out.batches).toEqual([
      new Map([
        ["page:0", 324n],
        ["page:1", 333n],
        ["page:2", 333n],
      ]),
    ]);
    await aggregator.flush(); // nothing pending: nothing sent
    expect(out.batches.length).toBe(1);
    await aggregator.close();
    expect(aggregator.stats).toEqual({ adds: 1001, flushes: 1, lostAdds: 0 });
  });

  it("flushes on its interval, in eventual mode through EventualAdd, and close() sends the rest", async () => {
    const out = sink();
    const aggregator = new Aggregator(out, { flushIntervalMs: 10, mode: "eventual" });
    aggregator.add("a", 2n);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(out.batches[0]).toEqual(new Map([["a", 2n]]));
    aggregator.add("b");
    await aggregator.close();
    expect(out.batches.at(-1)).toEqual(new Map([["b", 1n]]));
    expect(new Set(out.modes)).toEqual(new Set(["eventual"]));
    expect(() => aggregator.add("c")).toThrow(/closed/);
  });

  it("reports a flush whose outcome is unknown and never sends its adds again", async () => {
    const errors: Array<{ keys: number; adds: number }> = [];
    const out = sink(() => new AmbiguousError("no answer"));
    const aggregator = new Aggregator(out, { flushIntervalMs: 60_000, onError: (_error, lost) => errors.push(lost) });
    aggregator.add("x", 1n);
    aggregator.add("x", 1n);
    await aggregator.flush();
    await aggregator.flush();
    expect(out.batches.length).toBe(1);
    expect(errors).toEqual([{ keys: 1, adds: 2 }]);
    expect(aggregator.stats.lostAdds).toBe(2);
    await aggregator.close();
  });

  it("refuses bad arguments and changes nothing", () => {
    expect(() => new Aggregator(sink(), { flushIntervalMs: 0 })).toThrow(/flushIntervalMs/);
    expect(() => new Aggregator(sink(), { mode: "later" as never })).toThrow(/mode/);
    const aggregator = new Aggregator(sink(), {});
    expect(() => aggregator.add("k", 2n ** 64n)).toThrow();
    expect(() => aggregator.add("", 1n)).toThrow();
    expect(aggregator.stats.adds).toBe(0);
    void aggregator.close();
  });
});
