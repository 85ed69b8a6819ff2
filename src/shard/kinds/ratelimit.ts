/**
 * An exact sliding-window rate limiter: at any time t, the amounts granted in (t - windowMs, t]
 * never exceed `limit`. No approximation (not a token bucket, not two-window interpolation).
 *
 * State: the grants still inside the window, as a deque of (timeMs, amount), coalesced per
 * millisecond (grants in the same ms add to one entry), oldest first, plus their total.
 *
 * `tryAcquire(n, limit, windowMs, nowMs)`:
 * - the clock is max(nowMs, the newest grant's time), so a new leader whose stamped time is a
 *   little behind never reorders the deque;
 * - used = the total granted in (clock - windowMs, clock];
 * - used + n <= limit: granted; entries at or before clock - windowMs are dropped, n is recorded;
 *   remaining = limit - used - n, retryAfterMs = 0;
 * - otherwise denied and NOTHING changes (the bytes stay identical): remaining =
 *   max(0, limit - used), retryAfterMs = the exact wait until enough grants leave the window
 *   that n fits: the smallest d > 0 such that used(clock + d) + n <= limit (> 0 always).
 * n = 0 is a peek: allowed, remaining = max(0, limit - used), and changes nothing. n > limit can never be granted and is
 * InvalidArgumentError. limit and windowMs are per call (a config change applies from then on;
 * grants dropped under a shorter window are not remembered if the window later grows).
 *
 * Bounds: after a grant every live entry has a distinct ms in the window and an amount >= 1 whose
 * total is <= limit, so entries <= min(limit, windowMs); calls must keep min(limit, windowMs) <=
 * ENTRIES_MAX (2^20), so a limiter holds at most 2^20 entries, 16 bytes each in typed arrays that
 * grow by doubling (16 MiB live, 32 MiB capacity in the worst case, reached only by a grant in
 * every ms of a 17-minute window). Encoded: ~8 bytes + ~2-4 per entry.
 *
 * Determinism: integers only; the state is a function of the granted calls in order.
 * Complexity: tryAcquire O(1) amortized for grants (O(expired) drops); a denial scans the live
 * entries up to the one whose expiry frees enough, O(entries) worst case.
 */
import { InvalidArgumentError } from "../../util/errors.js";
import { assert } from "../../util/assert.js";
import {
  KIND_MAGIC,
  beginEnvelope,
  openEnvelope,
  readAscending,
  readUvarint,
  requireInteger,
  sealEnvelope,
  writeAscending,
  writeUvarint,
} from "../../kinds/codec.js";

export const ENTRIES_MAX = 1 << 20;
/** 31 days. */
export const WINDOW_MS_MAX = 31 * 24 * 3_600_000;
const TIME_MS_MAX = Number.MAX_SAFE_INTEGER - WINDOW_MS_MAX;
const FORMAT_VERSION = 1;

export interface AcquireResult {
  readonly allowed: boolean;
  /** What a caller could still take now (after this grant, if granted). */
  readonly remaining: number;
  /** 0 when allowed; else the exact wait in ms until n would be granted (absent other grants). */
  readonly retryAfterMs: number;
}

export class SlidingWindowLimiter {
  private times = new Float64Array(4);
  private amounts = new Float64Array(4);
  private head = 0;
  private tail = 0;
  /** Invariant: total = sum of amounts[head..tail). */
  private total = 0;

  /** Live entries (distinct grant milliseconds still held). */
  get size(): number {
    return this.tail - this.head;
  }

  tryAcquire(n: number, limit: number, windowMs: number, nowMs: number): AcquireResult {
    requireInteger(limit, "limit", 1, Number.MAX_SAFE_INTEGER);
    requireInteger(windowMs, "windowMs", 1, WINDOW_MS_MAX);
    requireInteger(n, "n", 0, Number.MAX_SAFE_INTEGER);
    requireInteger(nowMs, "nowMs", 0, TIME_MS_MAX);
    if (Math.min(limit, windowMs) > ENTRIES_MAX) {
      throw new InvalidArgumentError(
        `min(limit, windowMs) = ${Math.min(limit, windowMs)} exceeds ${ENTRIES_MAX} (the limiter's entry bound)`,
      );
    }
    if (n > limit) throw new InvalidArgumentError(`n ${n} exceeds limit ${limit}: it can never be granted`);
    const clockMs = this.tail > this.head ? Math.max(nowMs, this.times[this.tail - 1]!) : nowMs;
    const horizonMs = clockMs - windowMs;
    let firstLive = this.head;
    let expired = 0;
    while (firstLive < this.tail && this.times[firstLive]! <= horizonMs) expired += this.amounts[firstLive++]!;
    const used = this.total - expired;
    // A peek: answers without dropping expired grants, so the bytes stay as they were.
    if (n === 0) return { allowed: true, remaining: Math.max(0, limit - used), retryAfterMs: 0 };
    if (used + n <= limit) {
      this.head = firstLive;
      this.total = used;
      this.record(clockMs, n);
      assert(this.total <= limit && this.size <= Math.min(limit, windowMs), "limiter bound after a grant");
      return { allowed: true, remaining: limit - this.total, retryAfterMs: 0 };
    }
    // Denied: find the grant whose expiry (time + windowMs) frees enough; change nothing.
    const excess = used + n - limit;
    let freed = 0;
    let position = firstLive;
    for (; position < this.tail; position++) {
      freed += this.amounts[position]!;
      if (freed >= excess) break;
    }
    assert(position < this.tail, "n <= limit, so freeing every live grant always suffices");
    const retryAfterMs = this.times[position]! + windowMs - clockMs;
    assert(retryAfterMs > 0, "a live grant expires in the future");
    return { allowed: false, remaining: Math.max(0, limit - used), retryAfterMs };
  }

  private record(timeMs: number, amount: number): void {
    if (this.tail > this.head && this.times[this.tail - 1] === timeMs) {
      this.amounts[this.tail - 1] = this.amounts[this.tail - 1]! + amount;
    } else {
      if (this.tail === this.times.length) this.makeRoom();
      this.times[this.tail] = timeMs;
      this.amounts[this.tail] = amount;
      this.tail++;
    }
    this.total += amount;
  }

  /** Compacts the live entries to the front, doubling capacity when more than half full. */
  private makeRoom(): void {
    const live = this.size;
    const capacity = live * 2 < this.times.length ? this.times.length : this.times.length * 2;
    const times = new Float64Array(capacity);
    const amounts = new Float64Array(capacity);
    times.set(this.times.subarray(this.head, this.tail));
    amounts.set(this.amounts.subarray(this.head, this.tail));
    this.times = times;
    this.amounts = amounts;
    this.head = 0;
    this.tail = live;
  }

  /** Live entries as [timeMs, amount], oldest first (for tests and tools). */
  entries(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let p = this.head; p < this.tail; p++) out.push([this.times[p]!, this.amounts[p]!]);
    return out;
  }

  encode(): Uint8Array {
    const writer = beginEnvelope(KIND_MAGIC.rateLimit, FORMAT_VERSION, 16 + this.size * 6);
    writeUvarint(writer, this.size);
    let previous = -1;
    for (let p = this.head; p < this.tail; p++) {
      previous = writeAscending(writer, previous, this.times[p]!);
      writeUvarint(writer, this.amounts[p]!);
    }
    return sealEnvelope(writer);
  }

  static decode(bytes: Uint8Array): SlidingWindowLimiter {
    const reader = openEnvelope(bytes, KIND_MAGIC.rateLimit, FORMAT_VERSION, "rate limiter");
    const size = readUvarint(reader);
    if (size > ENTRIES_MAX) reader.fail(`${size} entries exceed ${ENTRIES_MAX}`);
    const limiter = new SlidingWindowLimiter();
    let previous = -1;
    for (let i = 0; i < size; i++) {
      const timeMs = readAscending(reader, previous);
      if (timeMs > TIME_MS_MAX) reader.fail(`grant time ${timeMs} out of range`);
      const amount = readUvarint(reader);
      if (amount < 1) reader.fail("a grant of 0");
      if (limiter.total + amount > Number.MAX_SAFE_INTEGER) reader.fail("grant total above 2^53");
      limiter.record(timeMs, amount);
      previous = timeMs;
    }
    reader.expectEnd(4);
    return limiter;
  }
}
