/**
 * Eventual counters (docs/eventual.md) on 3 tallyd processes, beside Redis in the same run:
 *   1. eventual add latency at an offered rate (open loop, default 10,000/s, one add per call,
 *      random keys; the client coalesces the calls made in one event-loop turn into one request,
 *      and the row says how many requests the nodes got), p50/p99; Redis INCR at the same offered
 *      rate (appendfsync everysec);
 *   2. throughput with batched requests: EventualAdd of 10,000 adds per request through every
 *      node at once, against `redis-benchmark -t incr -P 16` (appendfsync everysec, its default 50
 *      connections, 10,000 random keys) on the same box in the same run; also Redis INCR pipelined
 *      16 deep from this Node process (ioredis: bounded by the client, not by Redis);
 *   3. convergence: ack of an eventual add -> visible in a linearizable read from another node,
 *      measured on probe keys while (1) runs, p50/p99 (each probe polls every --poll-ms).
 * Every tally row also gives the nodes' CPU per add (user + system of the 3 tallyd processes over
 * the row's window, /proc): it moves far less with the other load of a shared box than latency.
 *
 *   npx tsx bench/eventual.ts [--seconds 5] [--rate 10000] [--poll-ms 10] [--no-redis] [--node-args "--cpu-prof ..."]
 *     [--only latency,batched] [--nodes 3] [--no-probes]
 * --only runs those rows (a profile of one row); --nodes 1 puts every client on one node (how much
 * of the latency is three tallyd sharing two cores); --no-probes leaves out the convergence probes.
 *
 * Never asserts: the machine is shared (figures go to docs/benchmarks.md).
 */
import { spawnSync } from "node:child_process";
import { TallyClient } from "../src/client/index.js";
import { ensureBundles } from "../bin/bundle.js";
import { TestCluster } from "../test/support/cluster.js";
import { closedLoop, loadAverage, machineDescription, openLoop, parseArgs, procCpuSeconds } from "./lib.js";
import { killChildren, missingBinaries, startRedis, type RedisPeer } from "./redis-peer.js";

const args = parseArgs(process.argv.slice(2));
const seconds = Number(args.option("seconds", "5"));
const rate = Number(args.option("rate", "10000"));
const pollMs = Number(args.option("poll-ms", "10"));
/** Extra node flags for every tallyd, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p". */
const nodeArgs = args
  .option("node-args", "")
  .split(" ")
  .filter((a) => a !== "");
const withRedis = !args.flag("no-redis") && missingBinaries(["redis-server"]).length === 0;
const only = new Set(args.option("only", "latency,batched").split(","));
const nodeCount = Number(args.option("nodes", "3"));
const withProbes = !args.flag("no-probes") && nodeCount > 1;
const KEYS = 10_000;
const BATCH = 10_000;

const ms = (value: number) => value.toFixed(2);

/** `probers` loops at once: an eventual add of a fresh key, then linearizable reads from another node until it shows. */
async function convergence(clients: TallyClient[], stopAt: number, probers = 8): Promise<number[]> {
  const samples: number[] = [];
  const probe = async (first: number) => {
    for (let i = first; Date.now() < stopAt; i += probers) {
      const key = `bench:probe:${process.pid}:${i}`;
      await clients[i % clients.length]!.add(key, 1n, { mode: "eventual" });
      const ackedAt = performance.now();
      const reader = clients[(i + 1) % clients.length]!;
      while ((await reader.get(key, { consistency: "linearizable" })).value !== 1n && performance.now() - ackedAt < 10_000)
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      samples.push(performance.now() - ackedAt);
    }
  };
  await Promise.all(Array.from({ length: probers }, (_, first) => probe(first)));
  return samples.sort((a, b) => a - b);
}

function quantile(sorted: number[], q: number): string {
  return sorted.length === 0 ? "n/a" : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!.toFixed(1);
}

/** `redis-benchmark -t incr -P 16` against the peer: INCR requests/s (each one increment). */
function redisBenchmark(peer: RedisPeer): { perSecond: number; command: string } | undefined {
  if (missingBinaries(["redis-benchmark"]).length > 0) return undefined;
  const argv = ["-h", "127.0.0.1", "-p", String(peer.port), "-t", "incr", "-P", "16", "-r", String(KEYS), "-n", "4000000", "--csv"];
  const run = spawnSync("redis-benchmark", argv, { encoding: "utf8", timeout: 120_000 });
  const row = (run.stdout ?? "").split("\n").find((line) => line.startsWith('"INCR"'));
  if (row === undefined) return undefined;
  return {
    perSecond: Number(row.split(",")[1]!.replaceAll('"', "")),
    command: `redis-benchmark ${argv.join(" ").replace(String(peer.port), "<port>")}`,
  };
}

async function redisRuns(peer: RedisPeer, batchedPerSecond: number): Promise<void> {
  const single = peer.client();
  const latency = await openLoop({ rate, seconds, operation: (i) => single.incr(`k${i % KEYS}`) });
  single.disconnect();
  console.log(
    `redis INCR at ${rate}/s offered (everysec): p50 ${ms(latency.p50Ms)} ms, p99 ${ms(latency.p99Ms)} ms, errors ${latency.errors}; ` +
      `generator lateness p99 ${ms(latency.latenessP99Ms ?? 0)} ms`,
  );
  const benchmark = redisBenchmark(peer);
  if (benchmark === undefined) console.log("redis-benchmark: not measured (missing or no INCR row)");
  else
    console.log(
      `redis INCR -P 16 (${benchmark.command}, everysec): ${Math.round(benchmark.perSecond)} increments/s; ` +
        `tally batched eventual adds per node / this: ${(batchedPerSecond / nodeCount / benchmark.perSecond).toFixed(2)}x, all ${nodeCount} nodes / this: ${(batchedPerSecond / benchmark.perSecond).toFixed(2)}x`,
    );
  const connections = Array.from({ length: 16 }, () => peer.client());
  const piped = await closedLoop({
    concurrency: connections.length,
    seconds,
    operation: async (worker, i) => {
      const pipeline = connections[worker]!.pipeline();
      for (let j = 0; j < 16; j++) pipeline.incr(`k${(i * 16 + j) % KEYS}`);
      await pipeline.exec();
      return 16;
    },
  });
  for (const c of connections) c.disconnect();
  console.log(
    `redis INCR pipelined 16 deep from this process (ioredis, 16 connections; client-bound), everysec: ${Math.round(piped.unitsPerSecond)} increments/s`,
  );
}

ensureBundles();
console.log(`machine: ${machineDescription()}; load ${loadAverage()}`);
const cluster = await TestCluster.start({ nodes: nodeCount, shards: 8, metrics: true, nodeArgs });
const clients = cluster.config.nodes.map((node) => new TallyClient({ endpoints: [node.client], deadlineMs: 30_000 }));
const nodeCpu = () => procCpuSeconds([...cluster.processes.values()].map((child) => child.pid!));
/** EventualAdd requests the nodes answered so far (NaN: a build without the series). */
const requests = async () => {
  let total = 0;
  for (const node of cluster.config.nodes)
    total += await cluster.metric(node.id, "tally_eventual_add_duration_seconds_count").catch(() => Number.NaN);
  return total;
};
/** Row 1 (and 3 meanwhile): one add per call at the offered rate, open loop. */
async function latencyRow(): Promise<void> {
  const probes = withProbes ? convergence(clients, Date.now() + (seconds + 1) * 1000) : Promise.resolve([]);
  const [cpuBefore, requestsBefore] = [nodeCpu(), await requests()];
  const latency = await openLoop({
    rate,
    seconds,
    operation: (i) => clients[i % clients.length]!.add(`bench:k${(i * 7919) % KEYS}`, 1n, { mode: "eventual" }),
  });
  const visible = await probes;
  const [cpu, requestCount] = [nodeCpu() - cpuBefore, (await requests()) - requestsBefore];
  const offered = rate * (seconds + 1);
  console.log(
    `tally eventual add at ${rate}/s offered (${nodeCount} nodes, one add per call; ${requestCount} requests for ${offered} adds${withProbes ? " + probes" : ""}): p50 ${ms(latency.p50Ms)} ms, p99 ${ms(latency.p99Ms)} ms, ` +
      `max ${ms(latency.maxMs)} ms, errors ${latency.errors}${latency.firstError ? ` (${latency.firstError})` : ""}; ` +
      `generator lateness p99 ${ms(latency.latenessP99Ms ?? 0)} ms (inside those latencies: the box's CPU contention); ` +
      `nodes' CPU ${((cpu / offered) * 1e6).toFixed(1)} us per add`,
  );
  if (withProbes)
    console.log(
      `convergence ack -> visible (linearizable read, another node, polled every ${pollMs} ms, ${visible.length} probes): p50 ${quantile(visible, 0.5)} ms, p90 ${quantile(visible, 0.9)} ms, p99 ${quantile(visible, 0.99)} ms, max ${quantile(visible, 1)} ms`,
    );
}

/** Row 2: batched throughput through every node at once; returns adds per second. */
async function batchedRow(): Promise<number> {
  let next = 0;
  const batched = await closedLoop({
    concurrency: 6,
    seconds,
    cpuProbe: nodeCpu,
    operation: async (worker) => {
      const adds = Array.from({ length: BATCH }, () => ({ key: `bench:b${(next++ * 7919) % KEYS}`, delta: 1n }));
      await clients[worker % clients.length]!.addEventual(adds);
      return BATCH;
    },
  });
  console.log(
    `tally eventual adds, ${BATCH}/request, 6 requests in flight over ${nodeCount} nodes: ${Math.round(batched.unitsPerSecond)} increments/s ` +
      `(${Math.round(batched.unitsPerSecond / nodeCount)} per node), request p50 ${ms(batched.p50Ms)} ms, p99 ${ms(batched.p99Ms)} ms; ` +
      `CPU per add ${batched.cpuUsPerUnit} us (nodes + this process)`,
  );
  const lag = await Promise.all(cluster.config.nodes.map((node) => cluster.metric(node.id, "tally_eventual_flush_lag_seconds")));
  console.log(`flush lag right after the batched run (s, per node): ${lag.map((s) => s.toFixed(3)).join(", ")}`);
  return batched.unitsPerSecond;
}

try {
  for (const client of clients) await client.connect();
  if (only.has("latency")) await latencyRow();
  const batchedPerSecond = only.has("batched") ? await batchedRow() : Number.NaN;
  if (withRedis) await redisRuns(await startRedis("everysec"), batchedPerSecond);
  else console.log("redis: not measured (redis-server missing or --no-redis)");
  console.log(`load at the end: ${loadAverage()}`);
} finally {
  for (const client of clients) await client.close();
  // SIGTERM first, so that a node run with --cpu-prof writes its profile.
  for (const node of cluster.config.nodes) await cluster.stop(node.id).catch(() => undefined);
  await cluster.destroy();
  killChildren();
}
