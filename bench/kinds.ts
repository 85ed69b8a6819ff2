/**
 * Micro-benchmarks of the counter-kind structures (src/shard/kinds): operations per second of CPU
 * time (this process's user + system; on a shared box the CPU figure is the one to trust) and
 * encoded bytes. Also prints the HyperLogLog's measured error at 10^3..10^6 distinct items.
 *
 *   npx tsx bench/kinds.ts            (SCALE=0.2 for a quick run)
 */
import { cpuUsage } from "node:process";
import { ExpiryIndex } from "../src/shard/kinds/ttl.js";
import { HyperLogLog, HLL_STANDARD_ERROR } from "../src/kinds/hll.js";
import { SlidingWindowLimiter } from "../src/shard/kinds/ratelimit.js";
import { aggregate, mergeTopK, topK, type KeyValue } from "../src/kinds/topk.js";
import { WindowedCounter } from "../src/shard/kinds/windows.js";
import { xxhash64Into } from "../src/kinds/xxhash64.js";
import { createPrng } from "../src/util/prng.js";
import { encodeEntry, type CounterOp } from "../src/shard/commands.js";
import { CounterStateMachine } from "../src/shard/state-machine.js";

const SCALE = Number(process.env.SCALE ?? 1);
const encoder = new TextEncoder();

/** Runs `work` (which performs `operations` operations) and prints ops/s of CPU time. */
function measure(label: string, operations: number, work: () => void): void {
  const start = cpuUsage();
  work();
  const used = cpuUsage(start);
  const seconds = (used.user + used.system) / 1e6;
  const perSecond = operations / Math.max(seconds, 1e-9);
  const rate =
    perSecond >= 1e6 ? `${(perSecond / 1e6).toFixed(2)} M` : perSecond >= 1e3 ? `${(perSecond / 1e3).toFixed(1)} k` : perSecond.toFixed(1);
  console.log(`${label.padEnd(64)} ${rate.padStart(9)} ops/s  (${operations} ops, ${(seconds * 1000).toFixed(0)} ms cpu)`);
}

const n = (count: number): number => Math.max(1, Math.round(count * SCALE));
const HOUR = 3_600_000;
const BASE = 472_222 * HOUR;

console.log("### windowed counter (default tiers 1 s/1 h, 1 min/1 day, 1 h/1 year)");
{
  const counter = new WindowedCounter();
  const adds = n(1_000_000);
  // 1,000 adds per simulated second for adds/1000 seconds, in order.
  measure("add, in order (1,000 per second of event time)", adds, () => {
    for (let i = 0; i < adds; i++) counter.add(BASE + i, 1n, BASE + i);
  });
  const late = new WindowedCounter();
  for (let s = 0; s < 3_600; s++) late.add(BASE + s * 1_000, 1n, BASE + s * 1_000);
  const lateAdds = n(300_000);
  const prng = createPrng(1);
  const now = BASE + 3_599_000;
  measure("add, random event time within the 60 s lateness", lateAdds, () => {
    for (let i = 0; i < lateAdds; i++) late.add(now - prng.nextInt(60_000), 1n, now);
  });
  const full = new WindowedCounter();
  for (let s = 0; s < 3_600; s++) full.add(BASE + s * 1_000, BigInt(s), BASE + s * 1_000);
  const queries = n(2_000);
  measure("range: last hour, 60 steps of 1 min, max (3,600 buckets read)", queries, () => {
    for (let i = 0; i < queries; i++) full.range(BASE, BASE + HOUR, 60_000, "max");
  });
  measure("range: last hour, 1 step, sum", queries, () => {
    for (let i = 0; i < queries; i++) full.range(BASE, BASE + HOUR, HOUR, "sum");
  });
  measure("at(time)", n(500_000), () => {
    for (let i = 0; i < n(500_000); i++) full.at(BASE + (i % 3_600) * 1_000);
  });
  const bytes = full.encode();
  console.log(
    `after 1 h of one add per second: ${full.bucketCount} buckets, encoded ${bytes.length} bytes, typed arrays ~${full.bucketCount * 24} bytes`,
  );
  measure("encode (that counter)", n(2_000), () => {
    for (let i = 0; i < n(2_000); i++) full.encode();
  });
  measure("decode (that counter)", n(2_000), () => {
    for (let i = 0; i < n(2_000); i++) WindowedCounter.decode(bytes);
  });
}

console.log("\n### sliding-window rate limiter");
{
  const calls = n(2_000_000);
  const limiter = new SlidingWindowLimiter();
  let allowed = 0;
  measure("tryAcquire(1), limit 1,000 / 1 s, one call per ms (all granted)", calls, () => {
    for (let i = 0; i < calls; i++) if (limiter.tryAcquire(1, 1_000, 1_000, i).allowed) allowed++;
  });
  console.log(`granted ${allowed}, entries held ${limiter.size}, encoded ${limiter.encode().length} bytes`);
  const busy = new SlidingWindowLimiter();
  let denied = 0;
  measure("tryAcquire(1), limit 1,000 / 1 s, 4 calls per ms (3/4 denied)", calls, () => {
    for (let i = 0; i < calls; i++) if (!busy.tryAcquire(1, 1_000, 1_000, i >> 2).allowed) denied++;
  });
  console.log(`denied ${denied}, entries held ${busy.size}, encoded ${busy.encode().length} bytes`);
  const big = new SlidingWindowLimiter();
  for (let t = 0; t < 60_000; t++) big.tryAcquire(1, 100_000, 60_000, t);
  const denials = n(2_000);
  measure("denial with a full 60,000-entry window (worst-case retryAfter scan)", denials, () => {
    for (let i = 0; i < denials; i++) big.tryAcquire(100_000, 100_000, 60_000, 59_999);
  });
  console.log(`60,000 entries: encoded ${big.encode().length} bytes`);
}

console.log("\n### HyperLogLog (p = 14) and xxHash64");
{
  const item = new Uint8Array(16);
  const view = new DataView(item.buffer);
  const hashes = n(2_000_000);
  measure("xxHash64 of 16 bytes", hashes, () => {
    for (let i = 0; i < hashes; i++) {
      view.setUint32(0, i);
      xxhash64Into(item);
    }
  });
  const long = encoder.encode("x".repeat(256));
  measure("xxHash64 of 256 bytes", n(300_000), () => {
    for (let i = 0; i < n(300_000); i++) xxhash64Into(long);
  });
  const sketch = new HyperLogLog();
  const adds = n(2_000_000);
  measure("add (16-byte items, dense after ~5,000)", adds, () => {
    for (let i = 0; i < adds; i++) {
      view.setUint32(0, i);
      sketch.add(item);
    }
  });
  const sparse = new HyperLogLog();
  measure("add (first 3,000 items: sparse)", 3_000, () => {
    for (let i = 0; i < 3_000; i++) {
      view.setUint32(4, i);
      sparse.add(item);
    }
  });
  measure("count, dense", n(20_000), () => {
    for (let i = 0; i < n(20_000); i++) sketch.count();
  });
  measure("count, sparse (3,000 registers)", n(20_000), () => {
    for (let i = 0; i < n(20_000); i++) sparse.count();
  });
  measure("merge dense into dense", n(20_000), () => {
    const target = sketch.clone();
    for (let i = 0; i < n(20_000); i++) target.merge(sketch);
  });
  const denseBytes = sketch.encode();
  console.log(
    `encoded: sparse with ${sparse.nonZeroRegisters} registers ${sparse.encode().length} bytes, dense ${denseBytes.length} bytes`,
  );
  measure("decode dense", n(20_000), () => {
    for (let i = 0; i < n(20_000); i++) HyperLogLog.decode(denseBytes);
  });
  const error: string[] = [];
  for (const size of [1_000, 10_000, 100_000, 1_000_000]) {
    const measured = new HyperLogLog();
    for (let i = 0; i < size; i++) {
      view.setUint32(0, 0xbe7c4);
      view.setUint32(4, i);
      measured.add(item);
    }
    error.push(`${size}: ${(((measured.count() - size) / size) * 100).toFixed(2)}%`);
  }
  console.log(`measured error (standard error ${(HLL_STANDARD_ERROR * 100).toFixed(2)}%): ${error.join(", ")}`);
}

console.log("\n### top-K and aggregates");
{
  const prng = createPrng(7);
  const entries: KeyValue[] = Array.from({ length: n(1_000_000) }, (_, i) => ({
    key: encoder.encode(`user:${i}`),
    value: BigInt(prng.nextU32()),
  }));
  measure("topK(k = 100) over 1e6 entries (per entry)", entries.length, () => void topK(entries, 100));
  measure("topK(k = 10,000) over 1e6 entries (per entry)", entries.length, () => void topK(entries, 10_000));
  const lists = Array.from({ length: 16 }, (_, s) =>
    topK(
      entries.filter((_, i) => i % 16 === s),
      1_000,
    ),
  );
  measure("mergeTopK of 16 shards x 1,000 (k = 1,000), per merge", n(200), () => {
    for (let i = 0; i < n(200); i++) mergeTopK(lists, 1_000);
  });
  measure(
    "aggregate(prefix 'user:1') over 1e6 entries (per entry)",
    entries.length,
    () => void aggregate(entries, encoder.encode("user:1")),
  );
}

console.log("\n### top-K of one shard's counters: index (kept from the change log) vs scan");
{
  // A shard state machine with 100,000 counters under "top:"; queries of k = 10, with and without
  // adds between them. "scan" is the per-query scan the index replaced (kinds/topk.ts topK over
  // every counter with the prefix).
  const machine = new CounterStateMachine({ sessionTimeoutMs: 1e12, maxSessions: 10, maxRetainedResultsPerSession: 8 });
  let index = 0;
  const timestampMs = 1_700_000_000_000;
  const [registered] = machine.applyEntry(++index, encodeEntry({ timestampMs, commands: [{ type: "register" }] }));
  const clientId = registered?.ok && registered.type === "register" ? registered.clientId : 0;
  let seq = 0;
  const mutate = (ops: CounterOp[]) => {
    seq++;
    machine.applyEntry(++index, encodeEntry({ timestampMs, commands: [{ type: "mutate", clientId, seq, firstUnackedSeq: seq, ops }] }));
  };
  const counters = n(100_000);
  for (let start = 0; start < counters; start += 10_000) {
    mutate(
      Array.from({ length: Math.min(10_000, counters - start) }, (_, j) => ({
        kind: "add" as const,
        key: encoder.encode(`top:${start + j}`),
        delta: BigInt(((start + j) * 7919) % 100_003),
      })),
    );
  }
  const prefix = encoder.encode("top:");
  const rows = [...machine.exportRecords().counters].map(([key, { value }]) => ({ key, value }));
  const queries = n(20_000);
  machine.topK(prefix, 10); // builds the index (one scan)
  measure(`topK k = 10 over ${counters} counters, index, no writes between`, queries, () => {
    for (let i = 0; i < queries; i++) machine.topK(prefix, 10);
  });
  const prng = createPrng(11);
  const rounds = n(5_000);
  const adds = (): CounterOp[] =>
    Array.from({ length: 10 }, () => ({
      kind: "add" as const,
      key: encoder.encode(`top:${prng.nextInt(counters)}`),
      delta: BigInt(prng.nextInt(200) - 100),
    }));
  const batches = Array.from({ length: rounds }, adds);
  measure("  10 adds (+/-) then topK k = 10, per round (apply included)", rounds, () => {
    for (const batch of batches) (mutate(batch), machine.topK(prefix, 10));
  });
  const moreBatches = Array.from({ length: rounds }, adds);
  measure("  10 adds (+/-) alone, per round (the apply part of the line above)", rounds, () => {
    for (const batch of moreBatches) mutate(batch);
  });
  const scans = n(200);
  measure(`topK k = 10 over ${counters} counters, scan`, scans, () => {
    for (let i = 0; i < scans; i++) topK(rows, 10);
  });
}

console.log("\n### expiry index");
{
  const keys = Array.from({ length: n(200_000) }, (_, i) => encoder.encode(`session:${i}`));
  const index = new ExpiryIndex();
  const prng = createPrng(3);
  measure("set (random expiry, new keys)", keys.length, () => {
    for (const key of keys) index.set(key, 1_000_000 + prng.nextInt(1_000_000));
  });
  measure("set (move an existing key)", keys.length, () => {
    for (const key of keys) index.set(key, 1_000_000 + prng.nextInt(1_000_000));
  });
  measure("expired(now, 1,000) with many due (per call)", n(1_000), () => {
    for (let i = 0; i < n(1_000); i++) index.expired(1_500_000, 1_000);
  });
  const bytes = index.encode();
  console.log(`${index.size} keys (~13 bytes each): encoded ${bytes.length} bytes (${(bytes.length / index.size).toFixed(1)} per key)`);
  measure("clear", keys.length, () => {
    for (const key of keys) index.clear(key);
  });
}
