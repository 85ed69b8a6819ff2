import { describe, expect, it } from "vitest";
import { INT64_MAX, INT64_MIN } from "../../src/util/int64.js";
import { aggregate, averageOf, compareRank, mergeAggregates, mergeTopK, topK, type KeyValue } from "../../src/kinds/topk.js";
import { InvalidArgumentError, OutOfRangeError } from "../../src/util/errors.js";
import { createPrng, type Prng } from "../../src/util/prng.js";
import { hex, utf8 } from "./kinds-support.js";

/** Distinct random keys (some sharing prefixes "a:" / "b:"), values with many ties. */
function randomEntries(prng: Prng, n: number): KeyValue[] {
  const byKey = new Map<string, KeyValue>();
  while (byKey.size < n) {
    const prefix = ["a:", "b:", "", "a:x"][prng.nextInt(4)]!;
    const key = Uint8Array.from([...utf8(prefix), ...Array.from({ length: prng.nextInt(4) }, () => prng.nextInt(256))]);
    const value = prng.chance(0.05) ? (prng.chance(0.5) ? INT64_MAX : INT64_MIN) : BigInt(prng.nextInt(20)) - 10n;
    byKey.set(hex(key), { key, value });
  }
  return [...byKey.values()];
}

const bruteRank = (entries: KeyValue[]): KeyValue[] =>
  entries
    .slice()
    .sort((a, b) => (a.value !== b.value ? (a.value > b.value ? -1 : 1) : hex(a.key) < hex(b.key) ? -1 : hex(a.key) > hex(b.key) ? 1 : 0));

const show = (entries: KeyValue[]): string[] => entries.map((e) => `${hex(e.key)}=${e.value}`);

describe("top-K", () => {
  it("ranks by value desc then key bytes asc (unsigned, shorter prefix first)", () => {
    const entries: KeyValue[] = [
      { key: utf8("b"), value: 5n },
      { key: Uint8Array.of(0xff), value: 5n },
      { key: utf8("a"), value: 5n },
      { key: utf8("ab"), value: 5n },
      { key: utf8("z"), value: 9n },
      { key: utf8("y"), value: -1n },
    ];
    expect(topK(entries, 4).map((e) => hex(e.key))).toEqual([hex(utf8("z")), hex(utf8("a")), hex(utf8("ab")), hex(utf8("b"))]);
    expect(topK(entries, 100)).toHaveLength(6);
    expect(compareRank(entries[0]!, entries[0]!)).toBe(0);
  });

  it("copies keys, so a reused iterator buffer cannot corrupt the result", () => {
    const buffer = new Uint8Array(1);
    function* reuse(): Generator<KeyValue> {
      for (let i = 0; i < 10; i++) {
        buffer[0] = i;
        yield { key: buffer, value: BigInt(i) };
      }
    }
    expect(topK(reuse(), 3).map((e) => e.key[0])).toEqual([9, 8, 7]);
  });

  for (const seed of [21, 22, 23, 24, 25, 26]) {
    it(`per-shard topK then mergeTopK equals brute force (seed ${seed})`, () => {
      const prng = createPrng(seed);
      const entries = randomEntries(prng, 1 + prng.nextInt(2_000));
      const shards: KeyValue[][] = Array.from({ length: 1 + prng.nextInt(8) }, () => []);
      for (const entry of entries) shards[prng.nextInt(shards.length)]!.push(entry);
      const ranked = show(bruteRank(entries));
      const shardsRanked = shards.map((shard) => show(bruteRank(shard)));
      for (const k of [1, 2, 7, 50, 500, 5_000]) {
        const expected = ranked.slice(0, k);
        const perShard = shards.map((shard) => topK(shard, k));
        for (const [s, list] of perShard.entries()) expect(show(list)).toEqual(shardsRanked[s]!.slice(0, k));
        expect(show(mergeTopK(perShard, k))).toEqual(expected);
        expect(show(mergeTopK(perShard.slice().reverse(), k))).toEqual(expected);
      }
    });
  }

  it("refuses overlapping partitions, unranked lists and bad arguments", () => {
    const a = [{ key: utf8("x"), value: 3n }];
    const b = [
      { key: utf8("y"), value: 4n },
      { key: utf8("x"), value: 3n },
    ];
    expect(() => mergeTopK([a, b], 5)).toThrow(/partitions overlap/);
    expect(mergeTopK([a, b.slice(0, 1)], 5)).toHaveLength(2);
    expect(() => mergeTopK([b.slice().reverse()], 5)).toThrow(/not ranked/);
    expect(() => mergeTopK([a], 0)).toThrow(InvalidArgumentError);
    expect(() => topK(a, 10_001)).toThrow(InvalidArgumentError);
    expect(() => topK([{ key: "x" as unknown as Uint8Array, value: 1n }], 1)).toThrow(InvalidArgumentError);
    expect(() => topK([{ key: utf8("x"), value: INT64_MAX + 1n }], 1)).toThrow(OutOfRangeError);
    expect(() => topK([{ key: utf8("x"), value: 1 as unknown as bigint }], 1)).toThrow(InvalidArgumentError);
    expect(mergeTopK([], 3)).toEqual([]);
  });
});

describe("aggregations", () => {
  it("floor average: quotient * count + remainder = sum, 0 <= remainder < count", () => {
    expect(averageOf(-7n, 2)).toEqual({ quotient: -4n, remainder: 1n, divisor: 2n });
    expect(averageOf(7n, 2)).toEqual({ quotient: 3n, remainder: 1n, divisor: 2n });
    expect(averageOf(-6n, 3)).toEqual({ quotient: -2n, remainder: 0n, divisor: 3n });
    expect(averageOf(5n, 0)).toBeUndefined();
  });

  it("is exact beyond int64 and empty-safe", () => {
    const entries = [
      { key: utf8("p:1"), value: INT64_MAX },
      { key: utf8("p:2"), value: INT64_MAX },
      { key: utf8("q:1"), value: INT64_MIN },
    ];
    const result = aggregate(entries, utf8("p:"));
    expect(result).toEqual({
      count: 2,
      sum: 2n * INT64_MAX,
      min: INT64_MAX,
      max: INT64_MAX,
      avg: { quotient: INT64_MAX, remainder: 0n, divisor: 2n },
    });
    expect(aggregate(entries, utf8("none"))).toEqual({ count: 0, sum: 0n, min: undefined, max: undefined, avg: undefined });
    expect(aggregate(entries).count).toBe(3);
    expect(() => mergeAggregates([{ count: 0, sum: 1n, min: undefined, max: undefined, avg: undefined }])).toThrow(InvalidArgumentError);
    expect(() => mergeAggregates([{ count: 1, sum: 1n, min: 2n, max: 1n, avg: undefined }])).toThrow(InvalidArgumentError);
  });

  for (const seed of [31, 32, 33, 34]) {
    it(`per-shard aggregates merged equal brute force over all entries (seed ${seed})`, () => {
      const prng = createPrng(seed);
      const entries = randomEntries(prng, 1 + prng.nextInt(1_500));
      const shards: KeyValue[][] = Array.from({ length: 1 + prng.nextInt(6) }, () => []);
      for (const entry of entries) shards[prng.nextInt(shards.length)]!.push(entry);
      for (const prefix of ["", "a:", "a:x", "b:", "zz"]) {
        const matching = entries.filter((e) => hex(e.key).startsWith(hex(utf8(prefix)))).map((e) => e.value);
        const sum = matching.reduce((s, v) => s + v, 0n);
        const expected = {
          count: matching.length,
          sum,
          min: matching.length ? matching.reduce((a, b) => (b < a ? b : a)) : undefined,
          max: matching.length ? matching.reduce((a, b) => (b > a ? b : a)) : undefined,
        };
        const merged = mergeAggregates(shards.map((shard) => aggregate(shard, utf8(prefix))));
        expect({ count: merged.count, sum: merged.sum, min: merged.min, max: merged.max }).toEqual(expected);
        expect(merged).toEqual(aggregate(entries, utf8(prefix)));
        if (merged.avg) expect(merged.avg.quotient * merged.avg.divisor + merged.avg.remainder).toBe(sum);
      }
    });
  }
});
