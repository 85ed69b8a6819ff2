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
 */
import { TallyClient } from "../src/client/index.js";
import { closedLoop, parseArgs, runBenchTable, type LoadResult } from "./lib.js";

const args = parseArgs(process.argv.slice(2));
const seconds = Number(args.option("seconds", "5"));
const subCounters = Number(args.option("sub-counters", "8"));

async function run(endpoints: string[]): Promise<Array<{ scenario: string } & LoadResult>> {
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
  return results;
}

await runBenchTable(args.option("endpoints", ""), 8, run, ["scenario", "ops/s", "p50 ms", "p99 ms", "errors"], (r) => [r.scenario, r.perSecond, r.p50Ms.toFixed(2), r.p99Ms.toFixed(2), r.errors]);
