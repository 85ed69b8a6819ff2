/**
 * The counter kinds through a real 3-node cluster with fsync on (issue 8), one scenario per kind,
 * each named with the Redis command a user would otherwise run (Redis itself is not started):
 *   - windowed add            ~ Redis: INCRBY on per-second keys (or TS.ADD/TS.INCRBY, RedisTimeSeries)
 *   - windowed range 60 s     ~ Redis: TS.RANGE key from to AGGREGATION sum 1000
 *   - tryAcquire              ~ Redis: a Lua sliding-window limiter (ZREMRANGEBYSCORE + ZCARD + ZADD)
 *   - uniqueAdd 10 items      ~ Redis: PFADD key item...
 *   - uniqueCount, 3 shards   ~ Redis: PFCOUNT k1 k2 k3
 *   - add with ttlMs          ~ Redis: INCRBY + PEXPIRE (SET key v PX ttl)
 *   - topK over 10,000 keys   ~ Redis: ZREVRANGE zset 0 9 WITHSCORES (a sorted set kept beside the counters)
 *   - aggregate over 10,000   ~ Redis: no single command (SCAN + MGET, or a Lua script)
 *
 *   npx tsx bench/kinds-api.ts [--seconds 5] [--endpoints a,b,c]
 *
 * Without --endpoints it starts its own cluster (temp data dirs).
 */
import { TallyClient } from "../src/client/index.js";
import { closedLoop, parseArgs, runBenchTable, type LoadResult } from "./lib.js";

const args = parseArgs(process.argv.slice(2));
const seconds = Number(args.option("seconds", "5"));

async function run(endpoints: string[]): Promise<Array<{ scenario: string; redis: string } & LoadResult>> {
  const results: Array<{ scenario: string; redis: string } & LoadResult> = [];
  const client = new TallyClient({ endpoints, deadlineMs: 30_000 });
  await client.connect();
  const report = (scenario: string, redis: string, result: LoadResult): void => {
    results.push({ scenario, redis, ...result });
    console.log(JSON.stringify({ scenario, redis, ...result }));
  };
  const loop = (concurrency: number, operation: (worker: number, i: number) => Promise<number>) => closedLoop({ concurrency, seconds, operation });

  report("windowed add, 1,000 keys, 256 in flight", "INCRBY per-second key / TS.INCRBY", await loop(256, async (w, i) => (await client.addWindowed(`w${(w * 7919 + i) % 1000}`, 1n), 1)));
  const now = Date.now();
  const toMs = Math.ceil(now / 1000) * 1000;
  report("windowed range, last 60 s at 1 s steps, 16 in flight", "TS.RANGE ... AGGREGATION sum 1000", await loop(16, async (w, i) => (await client.windowRange(`w${(w + i) % 1000}`, toMs - 60_000, toMs, 1000), 1)));
  report("tryAcquire n=1, 1,000 keys, 256 in flight", "Lua sliding window (ZREMRANGEBYSCORE+ZCARD+ZADD)", await loop(256, async (w, i) => (await client.tryAcquire(`r${(w * 7919 + i) % 1000}`, 1, 1_000_000, 60_000), 1)));
  report(
    "uniqueAdd 10 items, 1,000 keys, 64 in flight (items/s in units)",
    "PFADD key 10 items",
    await loop(64, async (w, i) => (await client.uniqueAdd(`u${(w * 7919 + i) % 1000}`, Array.from({ length: 10 }, (_, j) => `item-${w}-${i}-${j}`)), 10)),
  );
  report("uniqueCount of 3 keys (merged across shards), 16 in flight", "PFCOUNT k1 k2 k3", await loop(16, async (w, i) => (await client.uniqueCount([`u${i % 1000}`, `u${(i + 1) % 1000}`, `u${(i + 2) % 1000}`]), 1)));
  report("add with ttlMs 60 s, 256 in flight", "INCRBY + PEXPIRE", await loop(256, async (w, i) => (await client.add(`t${(w * 7919 + i) % 10_000}`, 1n, { ttlMs: 60_000 }), 1)));
  for (let start = 0; start < 10_000; start += 5_000) {
    await client.addBatch(Array.from({ length: 5_000 }, (_, j) => ({ key: `top:${start + j}`, delta: BigInt((start + j) * 7919 % 100_003) })));
  }
  report("topK k=10 over 10,000 counters (8 shards), 4 in flight", "ZREVRANGE zset 0 9 WITHSCORES", await loop(4, async () => (await client.topK("top:", 10), 1)));
  report("aggregate over 10,000 counters (8 shards), 4 in flight", "SCAN + MGET (no single command)", await loop(4, async () => (await client.aggregate("top:"), 1)));
  await client.close();
  return results;
}

await runBenchTable(args.option("endpoints", ""), 8, run, ["scenario", "Redis equivalent", "ops/s", "units/s", "p50 ms", "p99 ms", "errors"], (r) => [
  r.scenario,
  r.redis,
  r.perSecond,
  r.unitsPerSecond,
  r.p50Ms.toFixed(2),
  r.p99Ms.toFixed(2),
  r.errors,
]);
