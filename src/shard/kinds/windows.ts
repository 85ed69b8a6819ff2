/**
 * Time-windowed counters: one logical counter kept as bucket sums at several resolutions (tiers),
 * e.g. per second for an hour, per minute for a day, per hour for a year.
 *
 * Writes. `add(eventTimeMs, delta, nowMs)` adds `delta` to the bucket holding `eventTimeMs` in
 * EVERY tier (the roll-up is done at write time, so tiers never disagree and no background job
 * exists). `nowMs` is the leader-stamped time of the log entry; the structure's clock is
 * max(every nowMs seen), so a leader change with a slightly slower clock never moves it back.
 * An event older than now - latenessMs or newer than now + futureMs is rejected
 * (InvalidArgumentError). Retention is enforced on every mutation (`add`, `expire`): tier i keeps
 * the bucket holding `now` and the retentionMs/resolutionMs - 1 before it, plus buckets up to
 * now + futureMs.
 *
 * Reads (pure, answered from the state as of the last mutation's clock, so every replica answers
 * alike). Bucket i of a tier covers [i * resolutionMs, (i + 1) * resolutionMs). Ranges are
 * half-open [fromMs, toMs).
 * - `at(timeMs)`: the finest tier still holding timeMs: that bucket's sum and number of adds.
 * - `range(fromMs, toMs, stepMs, agg)`: one point per step [s, s + stepMs), from the finest tier
 *   whose resolution divides stepMs and fromMs and that still holds fromMs. In each step:
 *     sum   = the sum of all deltas added in the step (exact, int64 or OutOfRangeError)
 *     count = the number of add() calls whose event time falls in the step
 *     min, max = the smallest / largest per-bucket sum over ALL of the tier's buckets in the
 *                step, an empty bucket counting as 0 (so "max per second in this minute")
 *     avg   = sum / (buckets per step): the mean per-bucket sum, exact as value / divisor
 *   Every point is {startMs, value, divisor}; divisor is 1n except for avg.
 *
 * Bounds. Tier i holds at most retentionMs/resolutionMs + floor(futureMs/resolutionMs) + 1 buckets
 * (BUCKETS_PER_TIER_MAX caps the configured ratio); only non-empty buckets are stored, at 24 bytes
 * each in typed arrays that grow by doubling (so at most 48 bytes of capacity per live bucket).
 * With the defaults: at most 13,808 buckets (331 KB live, 662 KB capacity), reached by a counter
 * touched every second for a year; one touched every second for a day holds ~5,100.
 * A range answers at most RANGE_STEPS_MAX points.
 * Encoded: ~30 bytes of header plus ~4-12 bytes per non-empty bucket.
 *
 * Determinism: integer arithmetic only (bigint sums, safe-integer times); the state is a function
 * of the sequence of (eventTimeMs, delta, nowMs) applied. Errors change nothing: every check,
 * including int64 overflow of any tier's bucket, happens before the first write.
 *
 * Complexity: add O(tiers * log buckets) (O(tiers) for in-order events, which append), plus the
 * buckets expired; range O(log buckets + buckets in range + steps); at O(tiers * log buckets).
 */
import { InvalidArgumentError, OutOfRangeError } from "../../util/errors.js";
import { assert } from "../../util/assert.js";
import { ByteReader, ByteWriter } from "../binary.js";
import { INT64_MAX, INT64_MIN } from "../../util/int64.js";
import {
  KIND_MAGIC,
  beginEnvelope,
  checkedAdd64,
  lowerBound,
  openEnvelope,
  readAscending,
  readSvarint64,
  readUvarint,
  requireInt64,
  requireInteger,
  sealEnvelope,
  writeAscending,
  writeSvarint64,
  writeUvarint,
} from "../../kinds/codec.js";

export interface WindowTier {
  readonly resolutionMs: number;
  readonly retentionMs: number;
}

export interface WindowOptions {
  /** Finest first; each resolution divides the next; retentions non-decreasing. */
  readonly tiers: readonly WindowTier[];
  /** How far behind the clock an event may be. At most every tier's retentionMs - resolutionMs. */
  readonly latenessMs: number;
  /** How far ahead of the clock an event may be (clock skew between services). */
  readonly futureMs: number;
}

const SECOND_MS = 1_000;
const MINUTE_MS = 60 * SECOND_MS;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/**
 * 1 s kept 1 h, 1 min kept 1 day, 1 h kept 365 days. Lateness 1 min: long enough for a client's
 * retries and batching, short enough that a second-resolution graph is final a minute later.
 */
export const DEFAULT_WINDOW_OPTIONS: WindowOptions = Object.freeze({
  tiers: Object.freeze([
    Object.freeze({ resolutionMs: SECOND_MS, retentionMs: HOUR_MS }),
    Object.freeze({ resolutionMs: MINUTE_MS, retentionMs: DAY_MS }),
    Object.freeze({ resolutionMs: HOUR_MS, retentionMs: 365 * DAY_MS }),
  ]),
  latenessMs: MINUTE_MS,
  futureMs: 5 * SECOND_MS,
});

export const TIERS_MAX = 8;
export const BUCKETS_PER_TIER_MAX = 100_000;
export const RANGE_STEPS_MAX = 10_000;
/** Resolutions and retentions are at most ~10 years, so bucket arithmetic stays far from 2^53. */
const DURATION_MS_MAX = 10 * 366 * DAY_MS;
const FUTURE_MS_MAX = HOUR_MS;
const TIME_MS_MAX = Number.MAX_SAFE_INTEGER - DURATION_MS_MAX;
const FORMAT_VERSION = 1;

export type WindowAggregate = "sum" | "min" | "max" | "avg" | "count";
const AGGREGATES: readonly WindowAggregate[] = ["sum", "min", "max", "avg", "count"];

export interface WindowPoint {
  readonly startMs: number;
  /** The aggregate is exactly value / divisor. */
  readonly value: bigint;
  readonly divisor: bigint;
}

export interface WindowRange {
  readonly resolutionMs: number;
  readonly points: WindowPoint[];
}

export interface WindowBucket {
  readonly startMs: number;
  readonly resolutionMs: number;
  readonly sum: bigint;
  readonly count: number;
}

/** Checks a configuration; throws InvalidArgumentError naming the first problem. */
export function validateWindowOptions(options: WindowOptions): WindowOptions {
  const { tiers } = options;
  if (!Array.isArray(tiers) || tiers.length < 1 || tiers.length > TIERS_MAX) {
    throw new InvalidArgumentError(`tiers must be an array of 1..${TIERS_MAX} tiers`);
  }
  const copied: WindowTier[] = [];
  for (let i = 0; i < tiers.length; i++) {
    const tier = tiers[i]!;
    const resolutionMs = requireInteger(tier.resolutionMs, `tiers[${i}].resolutionMs`, 1, DURATION_MS_MAX);
    const retentionMs = requireInteger(tier.retentionMs, `tiers[${i}].retentionMs`, resolutionMs, DURATION_MS_MAX);
    if (retentionMs % resolutionMs !== 0)
      throw new InvalidArgumentError(`tiers[${i}]: retentionMs ${retentionMs} is not a multiple of resolutionMs ${resolutionMs}`);
    if (retentionMs / resolutionMs > BUCKETS_PER_TIER_MAX) {
      throw new InvalidArgumentError(`tiers[${i}]: ${retentionMs / resolutionMs} buckets exceed ${BUCKETS_PER_TIER_MAX}`);
    }
    const previous = copied[i - 1];
    if (previous !== undefined) {
      if (resolutionMs <= previous.resolutionMs || resolutionMs % previous.resolutionMs !== 0) {
        throw new InvalidArgumentError(
          `tiers[${i}].resolutionMs ${resolutionMs} must be a larger multiple of tiers[${i - 1}].resolutionMs ${previous.resolutionMs}`,
        );
      }
      if (retentionMs < previous.retentionMs)
        throw new InvalidArgumentError(`tiers[${i}].retentionMs must not be shorter than tiers[${i - 1}]'s`);
    }
    copied.push(Object.freeze({ resolutionMs, retentionMs }));
  }
  const latenessMs = requireInteger(options.latenessMs, "latenessMs", 0, DURATION_MS_MAX);
  for (const [i, tier] of copied.entries()) {
    // An accepted event must land in a bucket that every tier still holds.
    if (latenessMs > tier.retentionMs - tier.resolutionMs) {
      throw new InvalidArgumentError(
        `latenessMs ${latenessMs} exceeds tiers[${i}] retentionMs - resolutionMs (${tier.retentionMs - tier.resolutionMs})`,
      );
    }
  }
  const futureMs = requireInteger(options.futureMs, "futureMs", 0, FUTURE_MS_MAX);
  return Object.freeze({ tiers: Object.freeze(copied), latenessMs, futureMs });
}

/**
 * The non-empty buckets of one tier, sorted by bucket number, in a deque of typed arrays:
 * live entries are [head, tail). Expiry advances head; in-order adds append at tail.
 * Invariant: numbers strictly increase over [head, tail); counts >= 1.
 */
class TierBuckets {
  numbers = new Float64Array(8);
  sums = new BigInt64Array(8);
  counts = new Float64Array(8);
  head = 0;
  tail = 0;

  constructor(
    readonly resolutionMs: number,
    readonly keptBuckets: number,
  ) {}

  get size(): number {
    return this.tail - this.head;
  }

  /** First position in [head, tail) whose number is >= bucket (tail if none). */
  lowerBound(bucket: number): number {
    // In-order writes and recent reads hit the end: check it before bisecting.
    if (this.tail > this.head && this.numbers[this.tail - 1]! < bucket) return this.tail;
    return lowerBound(this.numbers, this.head, this.tail, bucket);
  }

  /** The oldest bucket number this tier keeps when the clock reads nowMs. */
  oldestKept(nowMs: number): number {
    return Math.floor(nowMs / this.resolutionMs) - this.keptBuckets + 1;
  }

  expire(nowMs: number): void {
    const oldest = this.oldestKept(nowMs);
    while (this.head < this.tail && this.numbers[this.head]! < oldest) this.head++;
    if (this.head === this.tail) this.head = this.tail = 0;
  }

  /** Adds into bucket at `position` (from lowerBound) which may or may not exist yet. */
  addAt(position: number, bucket: number, sum: bigint): void {
    if (position < this.tail && this.numbers[position] === bucket) {
      this.sums[position] = sum;
      this.counts[position] = this.counts[position]! + 1;
      return;
    }
    this.makeRoom();
    // makeRoom may have moved the live entries down by the old head.
    const shifted = position - this.shiftedBy;
    this.numbers.copyWithin(shifted + 1, shifted, this.tail);
    this.sums.copyWithin(shifted + 1, shifted, this.tail);
    this.counts.copyWithin(shifted + 1, shifted, this.tail);
    this.numbers[shifted] = bucket;
    this.sums[shifted] = sum;
    this.counts[shifted] = 1;
    this.tail++;
  }

  private shiftedBy = 0;

  /** Ensures a free slot at tail, compacting to index 0 or growing; records the shift applied. */
  private makeRoom(): void {
    this.shiftedBy = 0;
    if (this.tail < this.numbers.length) return;
    const live = this.size;
    const capacity = live + 1 <= this.numbers.length / 2 ? this.numbers.length : this.numbers.length * 2;
    const numbers = new Float64Array(capacity);
    const sums = new BigInt64Array(capacity);
    const counts = new Float64Array(capacity);
    numbers.set(this.numbers.subarray(this.head, this.tail));
    sums.set(this.sums.subarray(this.head, this.tail));
    counts.set(this.counts.subarray(this.head, this.tail));
    this.numbers = numbers;
    this.sums = sums;
    this.counts = counts;
    this.shiftedBy = this.head;
    this.head = 0;
    this.tail = live;
  }

  append(bucket: number, sum: bigint, count: number): void {
    this.addAt(this.tail, bucket, sum);
    this.counts[this.tail - 1] = count;
  }
}

/**
 * How `range(fromMs, toMs, stepMs)` is answered by a counter whose clock is clockMs: from the tier
 * (index into options.tiers) with the finest resolution dividing fromMs and stepMs that still keeps
 * the bucket holding fromMs, in `steps` points. Throws InvalidArgumentError for a range no tier
 * answers. It depends on its arguments only, so a server can check a request before it reads any
 * counter: a range planned at some clock is planned at every earlier clock too (a tier that keeps
 * fromMs kept it before; a finer one may answer then), and a counter's clock is its last write.
 */
export function rangePlan(
  options: WindowOptions,
  fromMs: number,
  toMs: number,
  stepMs: number,
  clockMs: number,
): { tierIndex: number; steps: number } {
  requireInteger(fromMs, "fromMs", 0, TIME_MS_MAX);
  requireInteger(toMs, "toMs", fromMs + 1, TIME_MS_MAX);
  requireInteger(stepMs, "stepMs", 1, DURATION_MS_MAX);
  if ((toMs - fromMs) % stepMs !== 0)
    throw new InvalidArgumentError(`toMs - fromMs (${toMs - fromMs}) is not a multiple of stepMs ${stepMs}`);
  const steps = (toMs - fromMs) / stepMs;
  if (steps > RANGE_STEPS_MAX) throw new InvalidArgumentError(`${steps} steps exceed ${RANGE_STEPS_MAX}`);
  const tierIndex = options.tiers.findIndex(
    (t) =>
      stepMs % t.resolutionMs === 0 &&
      fromMs % t.resolutionMs === 0 &&
      Math.floor(fromMs / t.resolutionMs) >= Math.floor(clockMs / t.resolutionMs) - t.retentionMs / t.resolutionMs + 1,
  );
  if (tierIndex < 0) {
    throw new InvalidArgumentError(
      `no tier holds ${fromMs} with a resolution dividing both fromMs and stepMs ${stepMs} (now ${clockMs}; resolutions ${options.tiers.map((t) => t.resolutionMs).join(", ")})`,
    );
  }
  return { tierIndex, steps };
}

export class WindowedCounter {
  readonly options: WindowOptions;
  private readonly tiers: TierBuckets[];
  private clockMs = 0;

  constructor(options: WindowOptions = DEFAULT_WINDOW_OPTIONS) {
    this.options = validateWindowOptions(options);
    this.tiers = this.options.tiers.map((tier) => new TierBuckets(tier.resolutionMs, tier.retentionMs / tier.resolutionMs));
  }

  /** The structure's clock: the largest nowMs any mutation carried. */
  get nowMs(): number {
    return this.clockMs;
  }

  /** Non-empty buckets over all tiers (the memory bound is on this). */
  get bucketCount(): number {
    let total = 0;
    for (const tier of this.tiers) total += tier.size;
    return total;
  }

  add(eventTimeMs: number, delta: bigint, nowMs: number): void {
    requireInteger(eventTimeMs, "eventTimeMs", 0, TIME_MS_MAX);
    requireInt64(delta, "delta");
    requireInteger(nowMs, "nowMs", 0, TIME_MS_MAX);
    const clockMs = Math.max(this.clockMs, nowMs);
    if (eventTimeMs < clockMs - this.options.latenessMs) {
      throw new InvalidArgumentError(`event time ${eventTimeMs} is more than latenessMs ${this.options.latenessMs} behind now ${clockMs}`);
    }
    if (eventTimeMs > clockMs + this.options.futureMs) {
      throw new InvalidArgumentError(`event time ${eventTimeMs} is more than futureMs ${this.options.futureMs} ahead of now ${clockMs}`);
    }
    // Validate every tier before writing any, so an overflow changes nothing.
    const sums: bigint[] = [];
    for (const tier of this.tiers) {
      const bucket = Math.floor(eventTimeMs / tier.resolutionMs);
      const position = tier.lowerBound(bucket);
      const existing = position < tier.tail && tier.numbers[position] === bucket;
      if (existing && tier.counts[position]! >= Number.MAX_SAFE_INTEGER) throw new OutOfRangeError("window bucket add count overflows");
      sums.push(checkedAdd64(existing ? tier.sums[position]! : 0n, delta, `window bucket at ${bucket * tier.resolutionMs}`));
    }
    this.clockMs = clockMs;
    for (const [i, tier] of this.tiers.entries()) {
      tier.expire(clockMs);
      const bucket = Math.floor(eventTimeMs / tier.resolutionMs);
      assert(bucket >= tier.oldestKept(clockMs), "an accepted event lands in a kept bucket");
      tier.addAt(tier.lowerBound(bucket), bucket, sums[i]!);
    }
  }

  /** Advances the clock and drops what retention no longer keeps (the state machine may call it on any entry). */
  expire(nowMs: number): void {
    requireInteger(nowMs, "nowMs", 0, TIME_MS_MAX);
    this.clockMs = Math.max(this.clockMs, nowMs);
    for (const tier of this.tiers) tier.expire(this.clockMs);
  }

  at(timeMs: number): WindowBucket {
    requireInteger(timeMs, "timeMs", 0, TIME_MS_MAX);
    for (const tier of this.tiers) {
      const bucket = Math.floor(timeMs / tier.resolutionMs);
      if (bucket < tier.oldestKept(this.clockMs)) continue;
      const position = tier.lowerBound(bucket);
      const found = position < tier.tail && tier.numbers[position] === bucket;
      return {
        startMs: bucket * tier.resolutionMs,
        resolutionMs: tier.resolutionMs,
        sum: found ? tier.sums[position]! : 0n,
        count: found ? tier.counts[position]! : 0,
      };
    }
    throw new InvalidArgumentError(`time ${timeMs} is older than every tier keeps (now ${this.clockMs})`);
  }

  range(fromMs: number, toMs: number, stepMs: number, agg: WindowAggregate): WindowRange {
    const { tierIndex, steps } = rangePlan(this.options, fromMs, toMs, stepMs, this.clockMs);
    if (!AGGREGATES.includes(agg)) throw new InvalidArgumentError(`agg must be one of ${AGGREGATES.join(", ")}, got ${String(agg)}`);
    const tier = this.tiers[tierIndex]!;
    const bucketsPerStep = stepMs / tier.resolutionMs;
    const points: WindowPoint[] = [];
    let position = tier.lowerBound(fromMs / tier.resolutionMs);
    for (let step = 0; step < steps; step++) {
      const startMs = fromMs + step * stepMs;
      const endBucket = (startMs + stepMs) / tier.resolutionMs;
      let sum = 0n;
      let count = 0;
      let nonEmpty = 0;
      let min = INT64_MAX;
      let max = INT64_MIN;
      for (; position < tier.tail && tier.numbers[position]! < endBucket; position++) {
        const bucketSum = tier.sums[position]!;
        sum += bucketSum;
        count += tier.counts[position]!;
        nonEmpty++;
        if (bucketSum < min) min = bucketSum;
        if (bucketSum > max) max = bucketSum;
      }
      if (nonEmpty < bucketsPerStep) {
        // Empty buckets in the step count as 0.
        if (min > 0n) min = 0n;
        if (max < 0n) max = 0n;
      }
      if ((agg === "sum" || agg === "avg") && (sum < INT64_MIN || sum > INT64_MAX)) {
        throw new OutOfRangeError(`the sum of the step at ${startMs} overflows signed 64-bit`);
      }
      let value: bigint;
      if (agg === "sum" || agg === "avg") value = sum;
      else if (agg === "count") value = BigInt(count);
      else if (agg === "min") value = min;
      else value = max;
      points.push({ startMs, value, divisor: agg === "avg" ? BigInt(bucketsPerStep) : 1n });
    }
    return { resolutionMs: tier.resolutionMs, points };
  }

  /** The tier's non-empty buckets as {startMs, sum, count}, oldest first (for tests and tools). */
  buckets(tierIndex: number): WindowBucket[] {
    requireInteger(tierIndex, "tierIndex", 0, this.tiers.length - 1);
    const tier = this.tiers[tierIndex]!;
    const out: WindowBucket[] = [];
    for (let p = tier.head; p < tier.tail; p++) {
      out.push({
        startMs: tier.numbers[p]! * tier.resolutionMs,
        resolutionMs: tier.resolutionMs,
        sum: tier.sums[p]!,
        count: tier.counts[p]!,
      });
    }
    return out;
  }

  encode(): Uint8Array {
    const writer = beginEnvelope(KIND_MAGIC.window, FORMAT_VERSION, 64 + this.bucketCount * 8);
    writer.u8(this.tiers.length);
    for (const tier of this.options.tiers) {
      writeUvarint(writer, tier.resolutionMs);
      writeUvarint(writer, tier.retentionMs);
    }
    writeUvarint(writer, this.options.latenessMs);
    writeUvarint(writer, this.options.futureMs);
    writeUvarint(writer, this.clockMs);
    for (const tier of this.tiers) encodeTier(writer, tier);
    return sealEnvelope(writer);
  }

  static decode(bytes: Uint8Array): WindowedCounter {
    const reader = openEnvelope(bytes, KIND_MAGIC.window, FORMAT_VERSION, "windowed counter");
    const tierCount = reader.u8();
    if (tierCount < 1 || tierCount > TIERS_MAX) reader.fail(`tier count ${tierCount} outside 1..${TIERS_MAX}`);
    const tiers: WindowTier[] = [];
    for (let i = 0; i < tierCount; i++) tiers.push({ resolutionMs: readUvarint(reader), retentionMs: readUvarint(reader) });
    const latenessMs = readUvarint(reader);
    const futureMs = readUvarint(reader);
    let counter: WindowedCounter;
    try {
      counter = new WindowedCounter({ tiers, latenessMs, futureMs });
    } catch (error) {
      return reader.fail(`invalid options: ${(error as Error).message}`);
    }
    const clockMs = readUvarint(reader);
    if (clockMs > TIME_MS_MAX) reader.fail(`clock ${clockMs} out of range`);
    counter.clockMs = clockMs;
    for (const tier of counter.tiers) decodeTier(reader, tier, clockMs, futureMs);
    reader.expectEnd(4);
    return counter;
  }
}

// Per tier: bucket count, then each bucket as its number (ascending, gap-coded), zigzag sum, add count.
function encodeTier(writer: ByteWriter, tier: TierBuckets): void {
  writeUvarint(writer, tier.size);
  let previous = -1;
  for (let p = tier.head; p < tier.tail; p++) {
    previous = writeAscending(writer, previous, tier.numbers[p]!);
    writeSvarint64(writer, tier.sums[p]!);
    writeUvarint(writer, tier.counts[p]!);
  }
}

function decodeTier(reader: ByteReader, tier: TierBuckets, clockMs: number, futureMs: number): void {
  const size = readUvarint(reader);
  const newest = Math.floor((clockMs + futureMs) / tier.resolutionMs);
  const oldest = tier.oldestKept(clockMs);
  if (size > newest - oldest + 1) reader.fail(`tier ${tier.resolutionMs} ms holds ${size} buckets, more than its ${newest - oldest + 1}`);
  let previous = -1;
  for (let i = 0; i < size; i++) {
    const bucket = readAscending(reader, previous);
    if (bucket < oldest || bucket > newest)
      reader.fail(`bucket ${bucket} of tier ${tier.resolutionMs} ms is outside the kept ${oldest}..${newest}`);
    const sum = readSvarint64(reader);
    const count = readUvarint(reader);
    if (count < 1) reader.fail("a stored bucket has no adds");
    tier.append(bucket, sum, count);
    previous = bucket;
  }
}
