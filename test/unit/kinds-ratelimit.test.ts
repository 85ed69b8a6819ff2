import { describe, expect, it } from "vitest";
import { KIND_MAGIC, beginEnvelope, sealEnvelope, writeUvarint } from "../../src/kinds/codec.js";
import { ENTRIES_MAX, SlidingWindowLimiter } from "../../src/shard/kinds/ratelimit.js";
import { CorruptionError, InvalidArgumentError } from "../../src/util/errors.js";
import { createPrng } from "../../src/util/prng.js";
import { expectDamageDetected, hex } from "./kinds-support.js";

describe("sliding-window rate limiter", () => {
  it("grants up to the limit in any window and says exactly when to retry", () => {
    const limiter = new SlidingWindowLimiter();
    expect(limiter.tryAcquire(3, 5, 1_000, 10_000)).toEqual({ allowed: true, remaining: 2, retryAfterMs: 0 });
    expect(limiter.tryAcquire(2, 5, 1_000, 10_400)).toEqual({ allowed: true, remaining: 0, retryAfterMs: 0 });
    // 1 more fits once the 3 granted at 10,000 leave the window (10,000, 11,000]: at 11,000.
    expect(limiter.tryAcquire(1, 5, 1_000, 10_500)).toEqual({ allowed: false, remaining: 0, retryAfterMs: 500 });
    expect(limiter.tryAcquire(1, 5, 1_000, 10_999)).toEqual({ allowed: false, remaining: 0, retryAfterMs: 1 });
    expect(limiter.tryAcquire(4, 5, 1_000, 10_999)).toEqual({ allowed: false, remaining: 0, retryAfterMs: 401 });
    expect(limiter.tryAcquire(4, 5, 1_000, 11_000)).toEqual({ allowed: false, remaining: 3, retryAfterMs: 400 });
    expect(limiter.tryAcquire(3, 5, 1_000, 11_000)).toEqual({ allowed: true, remaining: 0, retryAfterMs: 0 });
    expect(limiter.entries()).toEqual([
      [10_400, 2],
      [11_000, 3],
    ]);
  });

  it("coalesces grants in one millisecond and peeks with n = 0", () => {
    const limiter = new SlidingWindowLimiter();
    for (let i = 0; i < 10; i++) limiter.tryAcquire(1, 100, 1_000, 5_000);
    expect(limiter.entries()).toEqual([[5_000, 10]]);
    const before = hex(limiter.encode());
    expect(limiter.tryAcquire(0, 100, 1_000, 5_500)).toEqual({ allowed: true, remaining: 90, retryAfterMs: 0 });
    // Also when the grants have left the window, and when a lowered limit is already exceeded.
    expect(limiter.tryAcquire(0, 100, 1_000, 6_000)).toEqual({ allowed: true, remaining: 100, retryAfterMs: 0 });
    expect(limiter.tryAcquire(0, 5, 1_000, 5_500)).toEqual({ allowed: true, remaining: 0, retryAfterMs: 0 });
    expect(hex(limiter.encode())).toBe(before);
  });

  it("denials and bad arguments change nothing", () => {
    const limiter = new SlidingWindowLimiter();
    limiter.tryAcquire(5, 10, 2_000, 0);
    limiter.tryAcquire(5, 10, 2_000, 1_500);
    const before = hex(limiter.encode());
    // Under a 1,000 ms window the grant at 0 has expired by 2,100, but a denial keeps the bytes.
    expect(limiter.tryAcquire(2, 6, 1_000, 2_100)).toEqual({ allowed: false, remaining: 1, retryAfterMs: 400 });
    expect(limiter.entries()).toEqual([
      [0, 5],
      [1_500, 5],
    ]);
    expect(() => limiter.tryAcquire(6, 5, 1_000, 2_000)).toThrow(/never be granted/);
    expect(() => limiter.tryAcquire(1, 0, 1_000, 2_000)).toThrow(InvalidArgumentError);
    expect(() => limiter.tryAcquire(1, 5, 0, 2_000)).toThrow(InvalidArgumentError);
    expect(() => limiter.tryAcquire(-1, 5, 1_000, 2_000)).toThrow(InvalidArgumentError);
    expect(() => limiter.tryAcquire(1.5, 5, 1_000, 2_000)).toThrow(InvalidArgumentError);
    expect(() => limiter.tryAcquire(1, 5, 1_000, Number.NaN)).toThrow(InvalidArgumentError);
    expect(() => limiter.tryAcquire(1, ENTRIES_MAX + 1, ENTRIES_MAX + 1, 0)).toThrow(/entry bound/);
    expect(hex(limiter.encode())).toBe(before);
  });

  it("never lets the clock go back: an earlier nowMs is judged at the newest grant", () => {
    const limiter = new SlidingWindowLimiter();
    limiter.tryAcquire(5, 5, 1_000, 10_000);
    expect(limiter.tryAcquire(1, 5, 1_000, 9_000)).toEqual({ allowed: false, remaining: 0, retryAfterMs: 1_000 });
    expect(limiter.tryAcquire(1, 10, 1_000, 9_000).allowed).toBe(true);
    expect(limiter.entries()).toEqual([[10_000, 6]]);
  });

  for (const seed of [11, 12, 13, 14, 15]) {
    it(`matches a brute-force model of all grants (seed ${seed})`, () => {
      const prng = createPrng(seed);
      const limit = 1 + prng.nextInt(40);
      const windowMs = 1 + prng.nextInt(60);
      const limiter = new SlidingWindowLimiter();
      // A replica restored from a snapshot at step 1,500 that applies the same calls after it.
      let replica = new SlidingWindowLimiter();
      const grants: Array<[number, number]> = [];
      const usedAt = (t: number): number => grants.filter(([g]) => g > t - windowMs && g <= t).reduce((s, [, a]) => s + a, 0);
      let now = 1_000;
      let granted = 0;
      for (let i = 0; i < 3_000; i++) {
        now += prng.nextInt(4);
        const n = prng.nextInt(Math.min(limit, 8) + 1);
        const used = usedAt(now);
        const result = limiter.tryAcquire(n, limit, windowMs, now);
        expect(replica.tryAcquire(n, limit, windowMs, now)).toEqual(result);
        if (i === 1_500) replica = SlidingWindowLimiter.decode(replica.encode());
        if (used + n <= limit) {
          expect(result).toEqual({ allowed: true, remaining: limit - used - n, retryAfterMs: 0 });
          if (n > 0) grants.push([now, n]);
          granted++;
        } else {
          let wait = 1;
          while (usedAt(now + wait) + n > limit) wait++;
          expect(result).toEqual({ allowed: false, remaining: limit - used, retryAfterMs: wait });
        }
        expect(limiter.size).toBeLessThanOrEqual(Math.min(limit, windowMs));
      }
      // The promise itself: no window of windowMs ever held more than limit.
      for (const [t] of grants) expect(usedAt(t)).toBeLessThanOrEqual(limit);
      expect(granted).toBeGreaterThan(100);
      expect(hex(SlidingWindowLimiter.decode(limiter.encode()).encode())).toBe(hex(limiter.encode()));
      expect(hex(replica.encode())).toBe(hex(limiter.encode()));
    });
  }

  it("round-trips and detects damage", () => {
    const limiter = new SlidingWindowLimiter();
    for (let t = 0; t < 300; t += 3) limiter.tryAcquire(1 + (t % 7), 1_000, 1_000, 1_700_000_000_000 + t);
    const bytes = limiter.encode();
    expect(bytes.length).toBeLessThan(10 + 7 + 100 * 2 + 4);
    const decoded = SlidingWindowLimiter.decode(bytes);
    expect(decoded.entries()).toEqual(limiter.entries());
    expect(decoded.tryAcquire(5, 1_000, 1_000, 1_700_000_000_300)).toEqual(limiter.tryAcquire(5, 1_000, 1_000, 1_700_000_000_300));
    expectDamageDetected(bytes, (b) => SlidingWindowLimiter.decode(b));
    const craft = (pairs: Array<[number, number]>): Uint8Array => {
      const writer = beginEnvelope(KIND_MAGIC.rateLimit, 1);
      writeUvarint(writer, pairs.length);
      for (const [gap, amount] of pairs) {
        writeUvarint(writer, gap);
        writeUvarint(writer, amount);
      }
      return sealEnvelope(writer);
    };
    expect(
      SlidingWindowLimiter.decode(
        craft([
          [5, 1],
          [0, 2],
        ]),
      ).entries(),
    ).toEqual([
      [5, 1],
      [6, 2],
    ]);
    expect(() => SlidingWindowLimiter.decode(craft([[5, 0]]))).toThrow(/grant of 0/);
    expect(() =>
      SlidingWindowLimiter.decode(
        craft([
          [5, 2 ** 53 - 1],
          [0, 1],
        ]),
      ),
    ).toThrow(CorruptionError);
  });
});
