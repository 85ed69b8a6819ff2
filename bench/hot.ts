/**
 * Hot counters (issue 8): one key taking every add, plain (one shard leader does all the work) and
 * declared hot over S sub-counters (adds spread over S shards), through a real 3-node cluster with
 * fsync on; then the cost of reading the sum (S sub-reads, one per shard, in parallel).
 *   - adds to one plain key        ~ Redis: INCR key (one key, one thread)
 *   - adds to one hot key, S = 8   ~ Redis Cluster: INCR key:{0..7} chosen by the client, summed with MGET
 *   - get of the hot key           ~ Redis Cluster: MGET across slots (one per node) and a client-side sum
 *
 *   npx tsx bench/hot.ts [--seconds 5] [--sub-counters 8] [--endpoints a,b,c]
 *
 * Without --endpoints it starts its own cluster (8 shards, temp data dirs). At the end it checks
 * that the hot key's sum equals the adds acknowledged to it.
 *
 * Redis side by side (unless --no-redis; needs scripts/peers.sh): one Redis 7, appendonly yes,
 * appendfsync everysec (--redis-fsync everysec[,always]), one connection per operation in flight:
 * INCRBY on one key at 256 in flight (the single-node equivalent of both adds), GET of it at 16.
 */
import { TallyClient } from "../src/client/index.js";
import { closedLoop, parseArgs, runBenchTable, type LoadResult } from "./lib.js";
import { killChildren, parseRedisFsyncs, redisClosedLoop, requireRedis, startRedis, type RedisPeer } from "./redis-peer.js";

const args = parseArgs(process.argv.slice(2));
const seconds = Number(args.option("seconds", "5"));
const subCounters = Number(args.option("sub-counters", "8"));
const redisFsyncs = args.flag("no-redis") ? [] : parseRedisFsyncs("hot", args.option("redis-fsync", "everysec"));
if (redisFsyncs.length > 0) requireRedis("hot");

async function run(endpoints: string[], peers: RedisPeer[]): Promise<Array<{ scenario: string } & LoadResult>> {
  const results: Array<{ scenario: string } & LoadResult> = [];
  const client = new TallyClient({ endpoints, deadlineMs: 30_000 });
  await client.connect();
  const report = (scenario: string, result: LoadResult): void => {
    results.push({ scenario, ...result });
    console.log(JSON.stringify({ scenario, ...result }));
  };
  const loop = (concurrency: number, operation: () => Promise<number>) => closedLoop({ concurrency, seconds, operation });
  const stamp = `${Date.now()}`;
  const plainKey = `bench:plain:${stamp}`;
  const hotKey = `bench:hot:${stamp}`;
  report("add to one plain key, 256 in flight", await loop(256, async () => (await client.add(plainKey, 1n), 1)));
  await client.declareHot(hotKey, subCounters);
  let acked = 0n;
  report(`add to one hot key (S = ${subCounters}), 256 in flight`, await loop(256, async () => (await client.add(hotKey, 1n), acked++, 1)));
  report(`get of the hot key (S = ${subCounters} sub-reads), 16 in flight`, await loop(16, async () => (await client.get(hotKey), 1)));
  const sum = (await client.get(hotKey)).value;
  // The closed loop may stop counting replies that still arrive after its end: the sum is at least the count.
  console.log(JSON.stringify({ check: "hot sum >= acknowledged adds", sum: String(sum), acked: String(acked), ok: sum >= acked }));
  await client.close();
  for (const peer of peers) {
    const setting = `Redis, appendfsync ${peer.fsync}`;
    report(
      `${setting}: INCRBY on one key, 256 in flight`,
      await redisClosedLoop(peer, { concurrency: 256, seconds, operation: async (redis) => (await redis.incrby(plainKey, 1), 1) }),
    );
    report(
      `${setting}: GET of that key, 16 in flight`,
      await redisClosedLoop(peer, { concurrency: 16, seconds, operation: async (redis) => (await redis.get(plainKey), 1) }),
    );
  }
  return results;
}

const peers: RedisPeer[] = [];
try {
  for (const fsync of redisFsyncs) peers.push(await startRedis(fsync));
  await runBenchTable(
    args.option("endpoints", ""),
    8,
    (endpoints) => run(endpoints, peers),
    ["scenario", "ops/s", "p50 ms", "p99 ms", "errors"],
    (r) => [r.scenario, r.perSecond, r.p50Ms.toFixed(2), r.p99Ms.toFixed(2), r.errors],
  );
} finally {
  killChildren();
}
process.exit(0);
