/**
 * The Zipf sampler of the benchmarks (bench/lib.ts): every sample a rank in range, and the
 * frequencies of the first ranks near 1/(r^s * H(n, s)) over 200,000 seeded samples.
 */
import { describe, expect, it } from "vitest";
import { ZipfSampler } from "../../bench/lib.js";
import { createPrng } from "../../src/util/prng.js";

function harmonic(n: number, s: number): number {
  let sum = 0;
  for (let k = n; k >= 1; k--) sum += 1 / k ** s;
  return sum;
}

describe("ZipfSampler", () => {
  it("draws ranks in [0, n) with the first ranks' frequencies near the theoretical ones (s = 0.99, n = 1M)", () => {
    const n = 1_000_000;
    const s = 0.99;
    const prng = createPrng(7);
    const zipf = new ZipfSampler(n, s, () => prng.nextFloat());
    const samples = 200_000;
    const counts = new Map<number, number>();
    let beyondTen = 0;
    let outOfRange = 0;
    for (let i = 0; i < samples; i++) {
      const rank = zipf.next();
      if (!Number.isInteger(rank) || rank < 0 || rank >= n) outOfRange++;
      if (rank < 10) counts.set(rank, (counts.get(rank) ?? 0) + 1);
      else beyondTen++;
    }
    expect(outOfRange).toBe(0);
    const h = harmonic(n, s);
    for (const rank of [0, 1, 2, 9]) {
      const expected = 1 / ((rank + 1) ** s * h);
      const observed = (counts.get(rank) ?? 0) / samples;
      // Five binomial standard deviations, and no looser than 3% of the expectation.
      const sigma = Math.sqrt((expected * (1 - expected)) / samples);
      expect(Math.abs(observed - expected)).toBeLessThan(Math.max(5 * sigma, 0.03 * expected));
    }
    // The tail carries most of the mass at s = 0.99 over a million ranks.
    let headExpected = 0;
    for (let k = 1; k <= 10; k++) headExpected += 1 / (k ** s * h);
    expect(Math.abs(beyondTen / samples - (1 - headExpected))).toBeLessThan(0.01);
  });

  it("always draws rank 0 when n = 1, and refuses bad parameters", () => {
    const one = new ZipfSampler(1, 1.2, Math.random);
    for (let i = 0; i < 100; i++) expect(one.next()).toBe(0);
    expect(() => new ZipfSampler(0, 0.99, Math.random)).toThrow(/positive integer/);
    expect(() => new ZipfSampler(10, 0, Math.random)).toThrow(/positive number/);
    expect(() => new ZipfSampler(10, Number.NaN, Math.random)).toThrow(/positive number/);
  });

  it("matches the exact distribution over a small range, where the rejection step matters (s = 1, n = 5)", () => {
    const prng = createPrng(11);
    const zipf = new ZipfSampler(5, 1, () => prng.nextFloat());
    const counts = [0, 0, 0, 0, 0];
    const samples = 1_000_000;
    for (let i = 0; i < samples; i++) counts[zipf.next()]!++;
    const h = harmonic(5, 1);
    counts.forEach((count, rank) => {
      const expected = 1 / ((rank + 1) * h);
      // Four standard deviations (about 0.002 for rank 0): inversion without the rejection step
      // is off by 0.003 on ranks 0 and 1.
      expect(Math.abs(count / samples - expected)).toBeLessThan(4 * Math.sqrt((expected * (1 - expected)) / samples));
    });
  });
});
