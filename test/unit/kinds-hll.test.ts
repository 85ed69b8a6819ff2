import { describe, expect, it } from "vitest";
import { KIND_MAGIC, beginEnvelope, sealEnvelope, writeUvarint } from "../../src/kinds/codec.js";
import { HLL_REGISTERS, HLL_STANDARD_ERROR, HyperLogLog, SPARSE_MAX, estimateFromHistogram } from "../../src/kinds/hll.js";
import { xxhash64 } from "../../src/kinds/xxhash64.js";
import { CorruptionError, InvalidArgumentError } from "../../src/util/errors.js";
import { createPrng } from "../../src/util/prng.js";
import { expectDamageDetected, hex, utf8 } from "./kinds-support.js";

/** The spec (doc/xxhash_spec.md) transcribed with BigInt, as an independent oracle. */
function referenceXxhash64(input: Uint8Array, seed: bigint): bigint {
  const MASK = (1n << 64n) - 1n;
  const P1 = 0x9e3779b185ebca87n;
  const P2 = 0xc2b2ae3d27d4eb4fn;
  const P3 = 0x165667b19e3779f9n;
  const P4 = 0x85ebca77c2b2ae63n;
  const P5 = 0x27d4eb2f165667c5n;
  const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & MASK;
  const read = (at: number, bytes: number): bigint => {
    let v = 0n;
    for (let i = bytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(input[at + i]!);
    return v;
  };
  const round = (acc: bigint, lane: bigint): bigint => (rotl((acc + lane * P2) & MASK, 31n) * P1) & MASK;
  let p = 0;
  let h: bigint;
  if (input.length >= 32) {
    const v = [(seed + P1 + P2) & MASK, (seed + P2) & MASK, seed, (seed - P1) & MASK];
    for (; p + 32 <= input.length; p += 32) for (let i = 0; i < 4; i++) v[i] = round(v[i]!, read(p + 8 * i, 8));
    h = (rotl(v[0]!, 1n) + rotl(v[1]!, 7n) + rotl(v[2]!, 12n) + rotl(v[3]!, 18n)) & MASK;
    for (const lane of v) h = ((h ^ round(0n, lane)) * P1 + P4) & MASK;
  } else {
    h = (seed + P5) & MASK;
  }
  h = (h + BigInt(input.length)) & MASK;
  for (; p + 8 <= input.length; p += 8) h = (rotl(h ^ round(0n, read(p, 8)), 27n) * P1 + P4) & MASK;
  if (p + 4 <= input.length) {
    h = (rotl(h ^ ((read(p, 4) * P1) & MASK), 23n) * P2 + P3) & MASK;
    p += 4;
  }
  for (; p < input.length; p++) h = (rotl(h ^ ((BigInt(input[p]!) * P5) & MASK), 11n) * P1) & MASK;
  h ^= h >> 33n;
  h = (h * P2) & MASK;
  h ^= h >> 29n;
  h = (h * P3) & MASK;
  return h ^ (h >> 32n);
}

/** Distinct items: 12 bytes from (set tag, i). */
function fill(sketch: HyperLogLog, tag: number, from: number, to: number): void {
  const item = new Uint8Array(12);
  const view = new DataView(item.buffer);
  for (let i = from; i < to; i++) {
    view.setUint32(0, tag);
    view.setUint32(4, i);
    view.setUint32(8, Math.floor(i / 0x1_0000_0000));
    sketch.add(item);
  }
}

describe("xxHash64", () => {
  it("matches the published vectors", () => {
    const vectors: Array<[Uint8Array, bigint, bigint]> = [
      [utf8(""), 0n, 0xef46db3751d8e999n],
      [utf8("a"), 0n, 0xd24ec4f1a98c6e5bn],
      [utf8("abc"), 0n, 0x44bc2cf5ad770999n],
      [utf8("message digest"), 0n, 0x066ed728fceeb3ben],
      [utf8("Nobody inspects the spammish repetition"), 0n, 0xfbcea83c8a378bf1n],
      [utf8("Nobody inspects the spammish repetition"), 1234n, 0x55e30cd248a5419fn],
      [utf8("abc"), 12345n, 0x01700e64f6f23509n],
      [utf8("The quick brown fox jumps over the lazy dog"), 0n, 0x0b242d361fda71bcn],
      [utf8("a".repeat(32)), 0n, 0x856e843298f99ad7n],
      [utf8("b".repeat(64)), 0n, 0xecbaf4bdf26b6349n],
      [Uint8Array.from({ length: 100 }, (_, i) => i), 0n, 0x6ac1e58032166597n],
    ];
    for (const [input, seed, digest] of vectors) expect(xxhash64(input, seed).toString(16), hex(input)).toBe(digest.toString(16));
  });

  it("matches a BigInt transcription of the spec on random inputs and seeds", () => {
    const prng = createPrng(77);
    for (let i = 0; i < 600; i++) {
      const input = Uint8Array.from({ length: prng.nextInt(i < 300 ? 80 : 300) }, () => prng.nextInt(256));
      const seed = i % 3 === 0 ? 0n : (BigInt(prng.nextU32()) << 32n) | BigInt(prng.nextU32());
      expect(xxhash64(input, seed)).toBe(referenceXxhash64(input, seed));
    }
  });
});

describe("HyperLogLog", () => {
  it("is exact-ish at tiny cardinalities and counts repeats once", () => {
    const sketch = new HyperLogLog();
    expect(sketch.count()).toBe(0);
    for (let round = 0; round < 3; round++) for (let i = 0; i < 20; i++) sketch.add(utf8(`user-${i}`));
    expect(sketch.count()).toBe(20);
    expect(sketch.add(utf8("user-3"))).toBe(false);
    expect(() => sketch.add("user-3" as unknown as Uint8Array)).toThrow(InvalidArgumentError);
    expect(() => sketch.add(new Uint8Array(64 * 1024 + 1))).toThrow(InvalidArgumentError);
  });

  for (const n of [1_000, 10_000, 100_000, 1_000_000]) {
    it(`estimates ${n} distinct items within 3 standard errors`, () => {
      const sketch = new HyperLogLog();
      fill(sketch, 0xc0ffee, 0, n);
      const error = (sketch.count() - n) / n;
      expect(Math.abs(error), `relative error ${(error * 100).toFixed(3)}%`).toBeLessThan(3 * HLL_STANDARD_ERROR);
    });
  }

  it("keeps its error within 3 standard errors over many independent sets (seeded)", () => {
    // 30 sets of 20,000: the mean absolute error should be near sqrt(2/pi) * 0.81% = 0.65%.
    let sumAbsolute = 0;
    for (let tag = 1; tag <= 30; tag++) {
      const sketch = new HyperLogLog();
      fill(sketch, tag, 0, 20_000);
      const error = (sketch.count() - 20_000) / 20_000;
      expect(Math.abs(error)).toBeLessThan(3 * HLL_STANDARD_ERROR);
      sumAbsolute += Math.abs(error);
    }
    expect(sumAbsolute / 30).toBeLessThan(1.5 * HLL_STANDARD_ERROR);
  });

  it("merge equals the sketch of the union, and is commutative, associative and idempotent", () => {
    const make = (from: number, to: number): HyperLogLog => {
      const sketch = new HyperLogLog();
      fill(sketch, 9, from, to);
      return sketch;
    };
    const cases: Array<[number, number, number, number]> = [
      [0, 100, 50, 300], // sparse + sparse -> sparse
      [0, 3_000, 2_000, 5_000], // sparse + sparse -> dense
      [0, 50_000, 40_000, 40_100], // dense + sparse
      [0, 100, 0, 60_000], // sparse + dense
    ];
    for (const [aFrom, aTo, bFrom, bTo] of cases) {
      const union = make(Math.min(aFrom, bFrom), Math.max(aTo, bTo));
      const ab = make(aFrom, aTo);
      ab.merge(make(bFrom, bTo));
      const ba = make(bFrom, bTo);
      ba.merge(make(aFrom, aTo));
      expect(hex(ab.encode())).toBe(hex(union.encode()));
      expect(hex(ba.encode())).toBe(hex(union.encode()));
      expect(ab.merge(ab.clone())).toBe(false);
      expect(ab.merge(make(aFrom, aTo))).toBe(false);
      expect(hex(ab.encode())).toBe(hex(union.encode()));
    }
    const [a, b, c] = [make(0, 1_000), make(500, 9_000), make(8_000, 20_000)];
    const left = a.clone();
    left.merge(b);
    left.merge(c);
    const right = b.clone();
    right.merge(c);
    const leftFirst = a.clone();
    leftFirst.merge(right);
    expect(hex(left.encode())).toBe(hex(leftFirst.encode()));
    expect(() => a.merge({} as HyperLogLog)).toThrow(InvalidArgumentError);
  });

  it("goes dense exactly past SPARSE_MAX registers, with the same estimate in both forms", () => {
    const sketch = new HyperLogLog();
    const item = new Uint8Array(4);
    const view = new DataView(item.buffer);
    let i = 0;
    while (sketch.nonZeroRegisters < SPARSE_MAX) {
      view.setUint32(0, i++);
      sketch.add(item);
      expect(sketch.isSparse).toBe(true);
    }
    // The sparse histogram and a dense register dump give the same estimate.
    const registers = Array.from({ length: HLL_REGISTERS }, (_, r) => sketch.register(r));
    const denseHistogram = new Array<number>(52).fill(0);
    for (const value of registers) denseHistogram[value]!++;
    expect(sketch.histogram()).toEqual(denseHistogram);
    const before = sketch.count();
    expect(estimateFromHistogram(denseHistogram)).toBe(before);
    while (sketch.nonZeroRegisters === SPARSE_MAX) {
      view.setUint32(0, i++);
      sketch.add(item);
    }
    expect(sketch.isSparse).toBe(false);
    expect(sketch.nonZeroRegisters).toBe(SPARSE_MAX + 1);
    for (let r = 0; r < HLL_REGISTERS; r++) if (registers[r] !== 0) expect(sketch.register(r)).toBeGreaterThanOrEqual(registers[r]!);
    expect(Math.abs(sketch.count() - before)).toBeLessThan(10);
  });

  it("has one encoding per register set, whatever the order of adds", () => {
    const prng = createPrng(5);
    for (const n of [10, 5_000]) {
      const items = Array.from({ length: n }, (_, i) => utf8(`k${i}`));
      const forward = new HyperLogLog();
      for (const item of items) forward.add(item);
      const shuffled = items.slice();
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = prng.nextInt(i + 1);
        [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
      }
      const backward = new HyperLogLog();
      for (const item of shuffled) backward.add(item);
      expect(hex(backward.encode())).toBe(hex(forward.encode()));
    }
  });

  it("round-trips both forms and detects damage", () => {
    for (const n of [0, 300, 30_000]) {
      const sketch = new HyperLogLog();
      fill(sketch, 3, 0, n);
      const bytes = sketch.encode();
      const decoded = HyperLogLog.decode(bytes);
      expect(hex(decoded.encode())).toBe(hex(bytes));
      expect(decoded.count()).toBe(sketch.count());
      expect(decoded.isSparse).toBe(sketch.isSparse);
      if (n > 0) expectDamageDetected(bytes, (b) => HyperLogLog.decode(b), 200);
    }
    const craftSparse = (entries: Array<[number, number]>): Uint8Array => {
      const writer = beginEnvelope(KIND_MAGIC.hyperLogLog, 1);
      writer.u8(14);
      writer.u8(0);
      writeUvarint(writer, entries.length);
      for (const [index, rho] of entries) {
        writer.u16(index);
        writer.u8(rho);
      }
      return sealEnvelope(writer);
    };
    expect(
      HyperLogLog.decode(
        craftSparse([
          [1, 3],
          [7, 51],
        ]),
      ).register(7),
    ).toBe(51);
    expect(() =>
      HyperLogLog.decode(
        craftSparse([
          [7, 3],
          [1, 3],
        ]),
      ),
    ).toThrow(/out of order/);
    expect(() => HyperLogLog.decode(craftSparse([[1, 52]]))).toThrow(/outside 1..51/);
    expect(() => HyperLogLog.decode(craftSparse([[HLL_REGISTERS, 1]]))).toThrow(CorruptionError);
    // A dense buffer whose registers would fit the sparse form is not canonical.
    const writer = beginEnvelope(KIND_MAGIC.hyperLogLog, 1);
    writer.u8(14);
    writer.u8(1);
    writer.raw(new Uint8Array((HLL_REGISTERS * 6) / 8).fill(0x04, 0, 100));
    expect(() => HyperLogLog.decode(sealEnvelope(writer))).toThrow(/dense form with only/);
  });
});

describe("HyperLogLog count cache", () => {
  it("count() after any interleaving of adds, merges and clones equals a fresh sketch's estimate", () => {
    const prng = createPrng(4242);
    const sketches = [new HyperLogLog(), new HyperLogLog(), new HyperLogLog()];
    const fresh = (sketch: HyperLogLog) => HyperLogLog.decode(sketch.encode()).count();
    for (let step = 0; step < 3_000; step++) {
      const target = prng.nextInt(sketches.length);
      const roll = prng.nextInt(10);
      if (roll < 7) {
        for (let i = 0; i < 1 + prng.nextInt(40); i++) sketches[target]!.add(new TextEncoder().encode(`i${prng.nextInt(200_000)}`));
      } else if (roll < 9) {
        sketches[target]!.merge(sketches[prng.nextInt(sketches.length)]!);
      } else {
        sketches[target] = sketches[prng.nextInt(sketches.length)]!.clone();
      }
      const sketch = sketches[prng.nextInt(sketches.length)]!;
      expect(sketch.count()).toBe(fresh(sketch));
    }
    expect(sketches.some((sketch) => !sketch.isSparse)).toBe(true);
  });
});
