/**
 * The counter API through a real 3-node cluster with fsync on (issue 4's benchmark):
 *   - AddBatch throughput (10,000 increments per request, uniform keys)
 *   - Pipeline single adds, 256 in flight (client auto-batching off: one op per stream message)
 *   - unary Add, 64 in flight
 *   - p50/p99 of a single Add and of a linearizable Get at 1,000/s offered (open loop)
 *   - one hot key receiving everything (256 in flight through the client)
 *
 *   npx tsx bench/counter-api.ts [--seconds 5] [--endpoints a,b,c] [--json out.json]
 *       [--only batch,pipeline,unary,latency,hot] [--keys 100000] [--cpu-prof DIR]
 *
 * Without --endpoints it starts its own cluster (cluster.yaml's timing, temp data dirs).
 * `--only` runs a subset of the scenarios; `--cpu-prof DIR` starts every tallyd with --cpu-prof
 * and stops them with SIGTERM at the end so each writes its .cpuprofile into DIR (profile the
 * generator itself with NODE_OPTIONS="--cpu-prof --cpu-prof-dir=DIR").
 */
import { writeFileSync } from "node:fs";
import { TallyClient } from "../src/client/index.js";
import { slotOf } from "../src/meta/slots.js";
import { TestCluster } from "../test/support/cluster.js";
import { RawNodeClient, leaderClient } from "../test/support/raw-client.js";
import { closedLoop, openLoop, parseArgs, procCpuSeconds, type LoadResult } from "./lib.js";

const args = parseArgs(process.argv.slice(2));
const seconds = Number(args.option("seconds", "5"));
const keyCount = Number(args.option("keys", "100000"));
const SCENARIOS = ["batch", "pipeline", "unary", "latency", "hot"] as const;
const only = args.option("only", SCENARIOS.join(",")).split(",");
for (const name of only) if (!(SCENARIOS as readonly string[]).includes(name)) throw new Error(`--only: unknown scenario ${JSON.stringify(name)} (known: ${SCENARIOS.join(", ")})`);
const runs = (name: (typeof SCENARIOS)[number]) => only.includes(name);

/**
 * Unary Add calls straight to each shard's leader, as a plain gRPC user would make them (no
 * client library, no stream): 8 sessions per shard, a worker uses session `worker % 8`.
 */
export async function connectUnaryAdd(endpoints: string[], shards = 8): Promise<{ add(worker: number, key: string): Promise<void>; close(): void }> {
  const leaders = new Map<number, RawNodeClient>();
  const sessions = new Map<number, { clientId: string; seq: number }[]>();
  for (let shard = 1; shard <= shards; shard++) {
    const leader = await leaderClient(endpoints, shard);
    leaders.set(shard, leader);
    const list = [];
    for (let w = 0; w < 8; w++) list.push({ clientId: (await leader.call("registerSession", { shardId: shard })).clientId as string, seq: 0 });
    sessions.set(shard, list);
  }
  const slotsPerShard = 16_384 / shards;
  const shardOf = (k: string) => Math.floor(slotOf(Buffer.from(k)) / slotsPerShard) + 1;
  return {
    add: async (worker, k) => {
      const shard = shardOf(k);
      const session = sessions.get(shard)![worker % 8]!;
      const seq = ++session.seq;
      await leaders.get(shard)!.call("add", {
        header: { shardId: shard, clientId: session.clientId, seq: String(seq), firstUnackedSeq: String(seq) },
        key: Buffer.from(k),
        delta: "1",
      });
    },
    close: () => {
      for (const leader of leaders.values()) leader.close();
    },
  };
}

export async function runCounterApiBench(endpoints: string[], seconds: number, cpuProbe?: () => number): Promise<Array<{ scenario: string } & LoadResult>> {
  const results: Array<{ scenario: string } & LoadResult> = [];
  const report = (scenario: string, result: LoadResult) => {
    results.push({ scenario, ...result });
    console.log(JSON.stringify({ scenario, ...result }));
  };
  const key = (i: number) => `k${i % keyCount}`;

  if (runs("batch")) {
    const client = new TallyClient({ endpoints, deadlineMs: 30_000 });
    await client.connect();
    let next = 0;
    report(
      "AddBatch 10,000 increments/request, 4 in flight",
      await closedLoop({
        concurrency: 4,
        seconds,
        cpuProbe,
        operation: async () => {
          const ops = Array.from({ length: 10_000 }, () => ({ key: key(next++ * 7919), delta: 1n }));
          await client.addBatch(ops);
          return ops.length;
        },
      }),
    );
    await client.close();
  }

  if (runs("pipeline")) {
    const client = new TallyClient({ endpoints, autoBatch: false, deadlineMs: 30_000 });
    await client.connect();
    report(
      "Pipeline single adds, 256 in flight",
      await closedLoop({ concurrency: 256, seconds, cpuProbe, operation: async (w, i) => (await client.add(key(w * 100_003 + i), 1n), 1) }),
    );
    await client.close();
  }

  if (runs("unary")) {
    const unary = await connectUnaryAdd(endpoints);
    report(
      "unary Add, 64 in flight",
      await closedLoop({ concurrency: 64, seconds, operation: async (w, i) => (await unary.add(w, key(w * 100_003 + i)), 1) }),
    );
    unary.close();
  }

  if (runs("latency")) {
    const client = new TallyClient({ endpoints, autoBatch: false });
    await client.connect();
    report("single Add at 1,000/s offered (open loop)", await openLoop({ rate: 1000, seconds, operation: (i) => client.add(key(i), 1n) }));
    report("linearizable Get at 1,000/s offered (open loop)", await openLoop({ rate: 1000, seconds, operation: (i) => client.get(key(i)) }));
    await client.close();
  }

  if (runs("hot")) {
    const client = new TallyClient({ endpoints, deadlineMs: 30_000 });
    await client.connect();
    report("one hot key, 256 in flight (client auto-batching on)", await closedLoop({ concurrency: 256, seconds, cpuProbe, operation: async () => (await client.add("hot", 1n), 1) }));
    await client.close();
  }
  return results;
}

async function main(): Promise<void> {
  const given = args.option("endpoints", "");
  let cluster: TestCluster | undefined;
  const profileDir = args.option("cpu-prof", "");
  const nodeArgs = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  const endpoints = given ? given.split(",") : (cluster = await TestCluster.start({ nodes: 3, shards: 8, nodeArgs })).endpoints();
  try {
    // With its own cluster, the closed-loop scenarios also report CPU per increment (nodes + generator).
    const pids = cluster ? [...cluster.processes.values()].map((child) => child.pid!) : [];
    const results = await runCounterApiBench(endpoints, seconds, cluster ? () => procCpuSeconds(pids) : undefined);
    console.log("\n| scenario | ops/s | increments/s | p50 ms | p99 ms | p99.9 ms | errors | generator CPU | CPU µs per increment |");
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const r of results) {
      console.log(`| ${r.scenario} | ${r.perSecond} | ${r.unitsPerSecond} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.p999Ms.toFixed(2)} | ${r.errors} | ${r.generatorCpuPercent}% | ${r.cpuUsPerUnit ?? "-"} |`);
    }
    const out = args.option("json", "");
    if (out) writeFileSync(out, JSON.stringify(results, null, 2));
  } finally {
    // A node writes its CPU profile only when it exits by itself, so stop (SIGTERM) before destroy.
    if (cluster && profileDir) for (const id of [1, 2, 3]) await cluster.stop(id).catch((error: unknown) => console.error(String(error)));
    await cluster?.destroy();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
