import { describe, expect, it } from "vitest";
import { INT64_MAX, INT64_MIN } from "../../src/util/int64.js";
import { KIND_MAGIC, beginEnvelope, sealEnvelope, writeSvarint64, writeUvarint } from "../../src/kinds/codec.js";
import {
  DEFAULT_WINDOW_OPTIONS,
  rangePlan,
  WindowedCounter,
  type WindowAggregate,
  type WindowOptions,
} from "../../src/shard/kinds/windows.js";
import { CorruptionError, InvalidArgumentError, OutOfRangeError } from "../../src/util/errors.js";
import { createPrng } from "../../src/util/prng.js";
import { expectDamageDetected, hex } from "./kinds-support.js";

const HOUR = 3_600_000;
/** An hour boundary in late 2023. */
const BASE = 472_222 * HOUR;
/** Small tiers so that random tests cross retention boundaries quickly. */
const SMALL: WindowOptions = {
  tiers: [
    { resolutionMs: 10, retentionMs: 1_000 },
    { resolutionMs: 100, retentionMs: 5_000 },
    { resolutionMs: 1_000, retentionMs: 20_000 },
  ],
  latenessMs: 300,
  futureMs: 50,
};

interface Event {
  timeMs: number;
  delta: bigint;
}

/** The brute-force answer for one step: all events in [start, start + step) at resolution res. */
function expected(
  events: Event[],
  startMs: number,
  stepMs: number,
  resolutionMs: number,
  agg: WindowAggregate,
): { value: bigint; divisor: bigint } {
  const inStep = events.filter((e) => e.timeMs >= startMs && e.timeMs < startMs + stepMs);
  const bucketSums = new Map<number, bigint>();
  for (const e of inStep)
    bucketSums.set(Math.floor(e.timeMs / resolutionMs), (bucketSums.get(Math.floor(e.timeMs / resolutionMs)) ?? 0n) + e.delta);
  const perBucket: bigint[] = [];
  for (let b = startMs / resolutionMs; b < (startMs + stepMs) / resolutionMs; b++) perBucket.push(bucketSums.get(b) ?? 0n);
  const sum = inStep.reduce((s, e) => s + e.delta, 0n);
  switch (agg) {
    case "sum":
      return { value: sum, divisor: 1n };
    case "count":
      return { value: BigInt(inStep.length), divisor: 1n };
    case "avg":
      return { value: sum, divisor: BigInt(perBucket.length) };
    case "min":
      return { value: perBucket.reduce((a, b) => (b < a ? b : a)), divisor: 1n };
    case "max":
      return { value: perBucket.reduce((a, b) => (b > a ? b : a)), divisor: 1n };
  }
}

describe("windowed counter", () => {
  it("rolls every add up into every tier, and answers at() from the finest tier", () => {
    const counter = new WindowedCounter();
    counter.add(BASE + 1_500, 3n, BASE + 2_000);
    counter.add(BASE + 1_999, 4n, BASE + 2_000);
    counter.add(BASE + 61_000, -2n, BASE + 61_000);
    expect(counter.at(BASE + 1_000)).toEqual({ startMs: BASE + 1_000, resolutionMs: 1_000, sum: 7n, count: 2 });
    expect(counter.buckets(1)).toEqual([
      { startMs: BASE, resolutionMs: 60_000, sum: 7n, count: 2 },
      { startMs: BASE + 60_000, resolutionMs: 60_000, sum: -2n, count: 1 },
    ]);
    expect(counter.buckets(2)).toEqual([{ startMs: BASE, resolutionMs: HOUR, sum: 5n, count: 3 }]);
    expect(counter.at(BASE + 5_000).sum).toBe(0n);
  });

  it("drops buckets by retention on every mutation and falls back to coarser tiers", () => {
    const counter = new WindowedCounter();
    counter.add(BASE + 1_000, 10n, BASE + 1_000);
    counter.expire(BASE + HOUR + 1_000); // the 1 s bucket at BASE+1000 is now 1 h + 1 bucket old
    expect(counter.buckets(0)).toEqual([]);
    expect(counter.at(BASE + 1_000)).toEqual({ startMs: BASE, resolutionMs: 60_000, sum: 10n, count: 1 });
    counter.expire(BASE + 24 * HOUR + 60_000);
    expect(counter.at(BASE + 1_000)).toEqual({ startMs: BASE, resolutionMs: HOUR, sum: 10n, count: 1 });
    counter.expire(BASE + 365 * 24 * HOUR + HOUR);
    expect(counter.bucketCount).toBe(0);
    expect(() => counter.at(BASE)).toThrow(InvalidArgumentError);
  });

  it("keeps exactly retention/resolution buckets at the edge", () => {
    const counter = new WindowedCounter(SMALL);
    for (let t = 0; t < 1_000; t += 10) counter.add(t, 1n, t);
    expect(counter.buckets(0)).toHaveLength(100);
    counter.add(1_000, 1n, 1_000);
    expect(counter.buckets(0)).toHaveLength(100);
    expect(counter.buckets(0)[0]!.startMs).toBe(10);
  });

  it("rejects late and future events, bad arguments and overflow, changing nothing", () => {
    const counter = new WindowedCounter();
    counter.add(BASE, INT64_MAX, BASE);
    const before = hex(counter.encode());
    expect(() => counter.add(BASE - 60_001, 1n, BASE)).toThrow(/latenessMs/);
    expect(() => counter.add(BASE + 5_001, 1n, BASE)).toThrow(/futureMs/);
    // The 1 s buckets differ but the minute and hour buckets would overflow.
    expect(() => counter.add(BASE + 1_000, 1n, BASE + 1_000)).toThrow(OutOfRangeError);
    expect(() => counter.add(BASE, 1 as unknown as bigint, BASE)).toThrow(InvalidArgumentError);
    expect(() => counter.add(BASE, INT64_MAX + 1n, BASE)).toThrow(OutOfRangeError);
    expect(() => counter.add(1.5, 1n, BASE)).toThrow(InvalidArgumentError);
    expect(() => counter.add(BASE, 1n, -1)).toThrow(InvalidArgumentError);
    expect(hex(counter.encode())).toBe(before);
    counter.add(BASE, INT64_MIN, BASE);
    expect(counter.at(BASE).sum).toBe(-1n);
  });

  it("never moves its clock back: a smaller nowMs from a new leader is ignored", () => {
    const counter = new WindowedCounter(SMALL);
    counter.add(5_000, 1n, 5_000);
    counter.add(4_800, 1n, 4_000); // judged against 5000, not 4000
    expect(counter.nowMs).toBe(5_000);
    expect(() => counter.add(4_600, 1n, 4_000)).toThrow(/latenessMs/);
  });

  it("validates options", () => {
    const bad: Array<[string, WindowOptions]> = [
      ["no tiers", { ...SMALL, tiers: [] }],
      [
        "non-divisible resolutions",
        {
          ...SMALL,
          tiers: [
            { resolutionMs: 10, retentionMs: 1_000 },
            { resolutionMs: 15, retentionMs: 1_500 },
          ],
        },
      ],
      ["retention not a multiple", { ...SMALL, tiers: [{ resolutionMs: 10, retentionMs: 1_005 }] }],
      [
        "shrinking retention",
        {
          ...SMALL,
          tiers: [
            { resolutionMs: 10, retentionMs: 1_000 },
            { resolutionMs: 100, retentionMs: 500 },
          ],
        },
      ],
      ["lateness beyond retention", { ...SMALL, latenessMs: 991 }],
      ["too many buckets", { ...SMALL, tiers: [{ resolutionMs: 1, retentionMs: 1_000_000 }] }],
      ["negative future", { ...SMALL, futureMs: -1 }],
    ];
    for (const [name, options] of bad) expect(() => new WindowedCounter(options), name).toThrow(InvalidArgumentError);
    expect(new WindowedCounter({ ...SMALL, latenessMs: 990 }).options.latenessMs).toBe(990);
  });

  it("range picks the finest tier that holds from and divides the step", () => {
    const counter = new WindowedCounter();
    const now = BASE + 2 * HOUR;
    counter.add(now - 30_000, 5n, now);
    expect(counter.range(now - 60_000, now, 1_000, "sum").resolutionMs).toBe(1_000);
    expect(counter.range(now - 60_000, now, 60_000, "sum").resolutionMs).toBe(1_000);
    expect(counter.range(now - 2 * HOUR, now, 60_000, "sum").resolutionMs).toBe(60_000);
    expect(counter.range(now - 2 * HOUR, now, HOUR, "sum")).toEqual({
      resolutionMs: 60_000,
      points: [
        { startMs: now - 2 * HOUR, value: 0n, divisor: 1n },
        { startMs: now - HOUR, value: 5n, divisor: 1n },
      ],
    });
    expect(counter.range(now - 48 * HOUR, now, HOUR, "sum").resolutionMs).toBe(HOUR);
    expect(() => counter.range(now - 2 * HOUR, now, 1_000, "sum")).toThrow(/no tier holds/);
    expect(() => counter.range(now, now, 1_000, "sum")).toThrow(InvalidArgumentError);
    expect(() => counter.range(now - 1_500, now, 1_000, "sum")).toThrow(/multiple of stepMs/);
    expect(() => counter.range(now - 20_000, now, 1, "sum")).toThrow(/steps exceed/);
    expect(() => counter.range(now - 1_000, now, 1_000, "median" as WindowAggregate)).toThrow(/agg must be/);
  });

  it("min and max count empty buckets as 0; avg is sum over buckets per step", () => {
    const counter = new WindowedCounter(SMALL);
    counter.add(100, 7n, 100);
    counter.add(110, -3n, 110);
    counter.add(120, 2n, 120);
    const query = (agg: WindowAggregate): unknown => counter.range(100, 200, 100, agg).points[0];
    expect(query("sum")).toEqual({ startMs: 100, value: 6n, divisor: 1n });
    expect(query("count")).toEqual({ startMs: 100, value: 3n, divisor: 1n });
    expect(query("min")).toEqual({ startMs: 100, value: -3n, divisor: 1n });
    expect(query("max")).toEqual({ startMs: 100, value: 7n, divisor: 1n });
    expect(query("avg")).toEqual({ startMs: 100, value: 6n, divisor: 10n });
    expect(counter.range(100, 130, 30, "min").points[0]!.value).toBe(-3n);
    expect(counter.range(100, 110, 10, "min").points[0]!.value).toBe(7n); // one full bucket, no zero
  });

  it("range sums beyond int64 are OutOfRangeError, while count still answers", () => {
    const counter = new WindowedCounter(SMALL);
    counter.add(100, INT64_MAX, 100); // different 1 s buckets, so no tier's bucket overflows
    counter.add(1_100, INT64_MAX, 1_100);
    expect(() => counter.range(0, 2_000, 2_000, "sum")).toThrow(OutOfRangeError);
    expect(() => counter.range(0, 2_000, 2_000, "avg")).toThrow(OutOfRangeError);
    expect(counter.range(0, 2_000, 1_000, "sum").points.map((p) => p.value)).toEqual([INT64_MAX, INT64_MAX]);
    expect(counter.range(0, 2_000, 2_000, "count").points[0]!.value).toBe(2n);
  });

  for (const seed of [1, 2, 3, 4]) {
    it(`matches brute force on random in-window events (seed ${seed})`, () => {
      const prng = createPrng(seed);
      const counter = new WindowedCounter(SMALL);
      // A replica that restored a snapshot taken at step 1,500 and applied the same log after it.
      let replica = new WindowedCounter(SMALL);
      const events: Event[] = [];
      let now = 50_000;
      for (let i = 0; i < 3_000; i++) {
        now += prng.nextInt(15);
        const timeMs = now - prng.nextInt(SMALL.latenessMs + SMALL.futureMs + 1) + SMALL.futureMs;
        const delta = BigInt(prng.nextInt(2_001)) - 1_000n;
        counter.add(timeMs, delta, now);
        replica.add(timeMs, delta, now);
        if (i === 1_500) replica = WindowedCounter.decode(replica.encode());
        events.push({ timeMs, delta });
        if (i % 100 !== 99) continue;
        for (const [tierIndex, tier] of SMALL.tiers.entries()) {
          // Everything kept equals brute force over the events in kept buckets.
          const oldest = (Math.floor(now / tier.resolutionMs) - tier.retentionMs / tier.resolutionMs + 1) * tier.resolutionMs;
          const model = new Map<number, { sum: bigint; count: number }>();
          for (const e of events.filter((e) => e.timeMs >= oldest)) {
            const start = Math.floor(e.timeMs / tier.resolutionMs) * tier.resolutionMs;
            const entry = model.get(start) ?? { sum: 0n, count: 0 };
            model.set(start, { sum: entry.sum + e.delta, count: entry.count + 1 });
          }
          const kept = counter.buckets(tierIndex).map((b) => [b.startMs, { sum: b.sum, count: b.count }]);
          expect(kept).toEqual([...model.entries()].sort((a, b) => a[0] - b[0]));
        }
        for (const agg of ["sum", "min", "max", "avg", "count"] as const) {
          for (const [stepMs, spanMs] of [
            [10, 500],
            [50, 900],
            [100, 4_000],
            [1_000, 15_000],
          ] as const) {
            const toMs = Math.floor(now / stepMs) * stepMs + stepMs;
            const fromMs = toMs - spanMs;
            const answer = counter.range(fromMs, toMs, stepMs, agg);
            const points = answer.points.map((p) => ({ value: p.value, divisor: p.divisor }));
            const model = answer.points.map((p) => expected(events, p.startMs, stepMs, answer.resolutionMs, agg));
            expect(points, `${agg} step ${stepMs}`).toEqual(model);
          }
        }
      }
      expect(hex(replica.encode())).toBe(hex(counter.encode()));
    });
  }

  it("matches brute force with the default tiers over 30 hours, falling back tier by tier", () => {
    const prng = createPrng(99);
    const counter = new WindowedCounter();
    const events: Event[] = [];
    let now = BASE;
    const check = (fromMs: number, toMs: number, stepMs: number, resolutionMs: number): void => {
      for (const agg of ["sum", "max", "count"] as const) {
        const answer = counter.range(fromMs, toMs, stepMs, agg);
        expect(answer.resolutionMs).toBe(resolutionMs);
        const inRange = events.filter((e) => e.timeMs >= fromMs && e.timeMs < toMs);
        expect(answer.points.map((p) => p.value)).toEqual(
          answer.points.map((p) => expected(inRange, p.startMs, stepMs, resolutionMs, agg).value),
        );
      }
    };
    for (let i = 1; i <= 12_000; i++) {
      now += prng.nextInt(18_000);
      const timeMs = now - prng.nextInt(60_001);
      const delta = BigInt(prng.nextInt(100));
      counter.add(timeMs, delta, now);
      events.push({ timeMs, delta });
      if (i % 3_000 !== 0) continue;
      const second = Math.floor(now / 1_000) * 1_000;
      const minute = Math.floor(now / 60_000) * 60_000;
      const hour = Math.floor(now / HOUR) * HOUR;
      check(second - 50 * 60_000, second - 45 * 60_000, 1_000, 1_000); // 1 s tier: the last hour
      check(minute - 20 * HOUR, minute, 10 * 60_000, 60_000); // 1 min tier: the last day
      check(hour - 30 * HOUR, hour, HOUR, HOUR); // beyond the minute tier's day: the hour tier
    }
    expect(now - BASE).toBeGreaterThan(30 * HOUR);
  });

  it("encodes compactly and deterministically, and decodes to the same state", () => {
    const build = (): WindowedCounter => {
      const counter = new WindowedCounter();
      for (let i = 0; i < 600; i++) counter.add(BASE + i * 1_000, BigInt(i - 300), BASE + i * 1_000);
      return counter;
    };
    const bytes = build().encode();
    expect(hex(build().encode())).toBe(hex(bytes));
    expect(bytes.length).toBeLessThan(600 * 6 + 200);
    const decoded = WindowedCounter.decode(bytes);
    expect(hex(decoded.encode())).toBe(hex(bytes));
    expect(decoded.range(BASE, BASE + 600_000, 60_000, "sum")).toEqual(build().range(BASE, BASE + 600_000, 60_000, "sum"));
    decoded.add(BASE + 600_000, 1n, BASE + 600_000);
    expect(decoded.at(BASE + 600_000).sum).toBe(1n);
    expect(WindowedCounter.decode(new WindowedCounter().encode()).options).toEqual(DEFAULT_WINDOW_OPTIONS);
  });

  it("detects truncation, bit flips and invariant violations on decode", () => {
    const counter = new WindowedCounter(SMALL);
    for (let t = 0; t < 2_000; t += 7) counter.add(t, BigInt(t), t);
    expectDamageDetected(counter.encode(), (bytes) => WindowedCounter.decode(bytes));
    // A valid CRC around bad content: a bucket with zero adds, then buckets out of order.
    const craft = (buckets: Array<[number, bigint, number]>): Uint8Array => {
      const writer = beginEnvelope(KIND_MAGIC.window, 1);
      writer.u8(1);
      writeUvarint(writer, 10);
      writeUvarint(writer, 1_000);
      writeUvarint(writer, 0);
      writeUvarint(writer, 0);
      writeUvarint(writer, 5_000);
      writeUvarint(writer, buckets.length);
      for (const [gap, sum, count] of buckets) {
        writeUvarint(writer, gap);
        writeSvarint64(writer, sum);
        writeUvarint(writer, count);
      }
      return sealEnvelope(writer);
    };
    expect(WindowedCounter.decode(craft([[450, 1n, 1]])).at(4_500).sum).toBe(1n);
    expect(() => WindowedCounter.decode(craft([[450, 1n, 0]]))).toThrow(/no adds/);
    expect(() => WindowedCounter.decode(craft([[100, 1n, 1]]))).toThrow(CorruptionError); // expired
    expect(() =>
      WindowedCounter.decode(
        craft([
          [450, 1n, 1],
          [200, 1n, 1],
        ]),
      ),
    ).toThrow(/outside the kept/);
    expect(() => WindowedCounter.decode(new Uint8Array([KIND_MAGIC.hyperLogLog, 1, 0, 0, 0, 0]))).toThrow(CorruptionError);
  });
});

describe("rangePlan: a range checked without any counter", () => {
  const HOUR = 3_600_000;
  const now = 1_800_000_000_000;

  it("answers exactly when a counter at that clock answers, and at every earlier clock", () => {
    const prng = createPrng(1234);
    const resolutions = [1_000, 60_000, HOUR];
    const outcomes = { planned: 0, refused: 0 };
    for (let i = 0; i < 2_000; i++) {
      const resolution = resolutions[prng.nextInt(3)]!;
      const fromMs =
        now - prng.nextInt(400 * 24) * HOUR + prng.nextInt(HOUR / resolution) * resolution + (prng.chance(0.2) ? 1 + prng.nextInt(999) : 0);
      const stepMs = resolution * (1 + prng.nextInt(5));
      const toMs = fromMs + stepMs;
      const counter = new WindowedCounter();
      counter.expire(now);
      let planned = true;
      try {
        rangePlan(DEFAULT_WINDOW_OPTIONS, fromMs, toMs, stepMs, now);
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidArgumentError);
        planned = false;
      }
      outcomes[planned ? "planned" : "refused"]++;
      if (!planned) {
        expect(() => counter.range(fromMs, toMs, stepMs, "sum")).toThrow(InvalidArgumentError);
        continue;
      }
      expect(counter.range(fromMs, toMs, stepMs, "sum").points).toHaveLength(1);
      // A counter last written earlier (a smaller clock) answers too.
      const earlier = new WindowedCounter();
      earlier.expire(now - prng.nextInt(30 * 24) * HOUR);
      expect(() => rangePlan(DEFAULT_WINDOW_OPTIONS, fromMs, toMs, stepMs, earlier.nowMs)).not.toThrow();
      expect(earlier.range(fromMs, toMs, stepMs, "sum").points).toHaveLength(1);
    }
    expect(outcomes.planned).toBeGreaterThan(100);
    expect(outcomes.refused).toBeGreaterThan(100);
  });
});
