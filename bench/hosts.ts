/**
 * Several tallyd per host (issue 18, ADR 0013): the same cluster as 3 tallyd (3 hosts x 1) and as
 * 6 tallyd (3 hosts x 2 processes, `nodes[].host`), same shard count, fsync on, every process
 * killed by PID on every exit path. Per layout and scenario, medians over rounds (layouts
 * interleaved in pairs, so drift on a shared machine hits both):
 *   - AddBatch: 10,000 increments per request over uniform keys, 4 in flight;
 *   - single adds through the client library (its per-turn batching on), 256 in flight;
 * with throughput, latency, tallyd CPU per increment (all tallyd, /proc; and beyond what they use
 * idle, measured for 3 s before the load) and fsyncs per 1,000 increments. On a 2-core machine
 * the 6-process layout cannot gain (3 processes already share 2 cores with the generator): what it
 * shows is the cost of more processes.
 *
 * Then a PROJECTION, not a measurement: what k processes per host would give on hosts with N cores,
 * from the saturated runs at k = 1 and k = 2: the CPU per increment beyond idle, and the idle cores.
 * Each process beyond the first is assumed to add what the second added (more, smaller batches,
 * fsyncs and Raft messages; never less than nothing), one tallyd uses at most one core (one event
 * loop), and k is at most shards / 3 (a process that leads no shard only follows). Measured on 2
 * oversubscribed cores, c(2) - c(1) also holds contention (context switches, caches) that hosts with
 * a core per process do not have, so the projection leans pessimistic.
 *
 *   npx tsx bench/hosts.ts [--seconds 5] [--pairs 2] [--shards 16] [--keys 100000] [--single-inflight 256]
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureBundles } from "../bin/bundle.js";
import type { ClusterMapReply } from "../src/cli/format-map.js";
import { TallyClient } from "../src/client/index.js";
import { eventually, TestCluster } from "../test/support/cluster.js";
import { RawNodeClient } from "../test/support/raw-client.js";
import { closedLoop, loadAverage, machineDescription, parseArgs, procCpuSeconds, type LoadResult } from "./lib.js";

const args = parseArgs(process.argv.slice(2));
const seconds = Number(args.option("seconds", "5"));
const pairs = Number(args.option("pairs", "2"));
const shards = Number(args.option("shards", "16"));
const keyCount = Number(args.option("keys", "100000"));
const singleInflight = Number(args.option("single-inflight", "256"));
const BATCH = 10_000;
const IDLE_SECONDS = 3;

interface Sample {
  layout: number;
  scenario: string;
  result: LoadResult;
  syncsPer1k: number;
  leaderSpread: string;
  /** Cores the cluster's tallyd use with no load (ticks, heartbeats, the controller). */
  idleCores: number;
}

/** CPU seconds of tallyd per increment beyond what they use idle over the same window. */
const marginal = (s: Sample) =>
  Math.max(0, (s.result.serverCpuSeconds ?? 0) - s.idleCores * s.result.seconds) / Math.max(1, s.result.units);

/** k processes per host on 3 hosts: node ids 1..3k, host h holds ids hk+1..hk+k; a zone per host. */
async function startLayout(perHost: number): Promise<TestCluster> {
  const host = (id: number) => `host-${Math.floor((id - 1) / perHost)}`;
  return TestCluster.start({
    nodes: 3 * perHost,
    shards,
    nodeLayout: perHost === 1 ? undefined : (id) => ({ host: host(id), zone: `zone-${host(id)}` }),
    placement: { autoRebalance: true, heartbeatMs: 200, leaderTransferCooldownMs: 1000 },
  });
}

/** Waits (at most 40 s) until leader counts per node differ by at most one; returns them. */
async function balancedLeaders(client: TallyClient): Promise<string> {
  let last = "";
  const read = async () => {
    let map = await client.admin<ClusterMapReply>("ClusterMap", {}, { deadlineMs: 5000 });
    const leader = map.nodes.find((n) => n.nodeId === map.metaLeaderId);
    if (!map.fromMetaLeader && leader !== undefined)
      map = await client.admin<ClusterMapReply>("ClusterMap", {}, { deadlineMs: 5000, address: leader.clientAddress });
    const counts = map.nodes.map((n) => n.leaders);
    last = counts.join("/");
    return map.fromMetaLeader && counts.reduce((a, b) => a + b, 0) === shards && Math.max(...counts) - Math.min(...counts) <= 1;
  };
  await eventually(read, 40_000, "balanced leaders").catch(() => undefined);
  return last;
}

async function syncs(endpoints: string[]): Promise<number> {
  let total = 0;
  for (const endpoint of endpoints) {
    const raw = new RawNodeClient(endpoint);
    try {
      total += Number((await raw.call("status", { localOnly: true })).nodes[0].stats.syncs);
    } finally {
      raw.close();
    }
  }
  return total;
}

async function runLayout(perHost: number): Promise<Sample[]> {
  const cluster = await startLayout(perHost);
  const client = new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 60_000 });
  try {
    await client.connect();
    const leaderSpread = await balancedLeaders(client);
    const pids = [...cluster.processes.values()].map((child) => child.pid!);
    const cpuProbe = () => procCpuSeconds(pids);
    const idleStart = cpuProbe();
    await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
    const idleCores = (cpuProbe() - idleStart) / IDLE_SECONDS;
    const key = (i: number) => `hosts:${i % keyCount}`;
    const batch = async (worker: number, i: number) => {
      const base = (worker * 7919 + i) * BATCH;
      await client.addBatch(Array.from({ length: BATCH }, (_, j) => ({ key: key(base + j * 31), delta: 1n })));
      return BATCH;
    };
    const single = async (worker: number, i: number) => (await client.add(key(worker * 104_729 + i * 13), 1n), 1);
    const scenarios: Array<[string, () => Promise<LoadResult>]> = [
      [
        `AddBatch ${BATCH} x 4 in flight`,
        () =>
          closedLoop({
            concurrency: 4,
            seconds,
            cpuProbe,
            operation: batch,
          }),
      ],
      [
        `single adds x ${singleInflight} in flight`,
        () =>
          closedLoop({
            concurrency: singleInflight,
            seconds,
            cpuProbe,
            operation: single,
          }),
      ],
    ];
    const samples: Sample[] = [];
    for (const [scenario, run] of scenarios) {
      const before = await syncs(cluster.endpoints());
      const result = await run();
      const after = await syncs(cluster.endpoints());
      const syncsPer1k = ((after - before) / Math.max(1, result.units)) * 1000;
      samples.push({ layout: perHost, scenario, result, syncsPer1k, leaderSpread, idleCores });
    }
    return samples;
  } finally {
    await client.close();
    await cluster.destroy();
  }
}

/** Processes per host that each can lead a shard: shards / 3 (3 hosts). */
const maxPerHost = () => Math.max(1, Math.floor(shards / 3));

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

function measuredTable(samples: Sample[]): string[] {
  const lines = [
    "| layout | scenario | increments/s | p50 ms | p99 ms | tallyd CPU us / increment | of it beyond idle | idle cores | fsyncs / 1k increments | errors | leaders per node |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const layout of [1, 2]) {
    for (const scenario of [...new Set(samples.map((s) => s.scenario))]) {
      const runs = samples.filter((s) => s.layout === layout && s.scenario === scenario);
      if (runs.length === 0) continue;
      const m = (pick: (s: Sample) => number) => median(runs.map(pick));
      lines.push(
        `| ${3 * layout} tallyd (3 hosts x ${layout}) | ${scenario} | ${Math.round(m((s) => s.result.unitsPerSecond))} | ` +
          `${m((s) => s.result.p50Ms).toFixed(1)} | ${m((s) => s.result.p99Ms).toFixed(1)} | ` +
          `${m((s) => ((s.result.serverCpuSeconds ?? 0) / Math.max(1, s.result.units)) * 1e6).toFixed(2)} | ` +
          `${m((s) => marginal(s) * 1e6).toFixed(2)} | ${m((s) => s.idleCores).toFixed(2)} | ` +
          `${m((s) => s.syncsPer1k).toFixed(2)} | ${runs.reduce((a, s) => a + s.result.errors, 0)} | ${runs.map((s) => s.leaderSpread).join(", ")} |`,
      );
    }
  }
  return lines;
}

/**
 * The projection: tallyd CPU per increment beyond idle c(k) = c1 + max(0, c2 - c1)(k - 1), idle
 * cores i(k) = i1 + max(0, i2 - i1)(k - 1) (both from the medians), 3 hosts of N cores, k tallyd
 * per host each using at most one core: increments/s = (3 min(k, N) - i(k)) / c(k), for k up to
 * shards / 3. Best k per N, and its gain over k = 1 on the same hosts.
 */
function projectionTable(samples: Sample[]): string[] {
  const lines: string[] = [];
  for (const scenario of [...new Set(samples.map((s) => s.scenario))]) {
    const of = (layout: number, pick: (s: Sample) => number) =>
      median(samples.filter((s) => s.layout === layout && s.scenario === scenario).map(pick));
    const [c1, c2] = [of(1, marginal), of(2, marginal)];
    const [i1, i2] = [of(1, (s) => s.idleCores), of(2, (s) => s.idleCores)];
    if (!(c1 > 0 && c2 > 0)) continue;
    const c = (k: number) => c1 + Math.max(0, c2 - c1) * (k - 1);
    const idle = (k: number) => i1 + Math.max(0, i2 - i1) * (k - 1);
    const rate = (k: number, cores: number) => Math.max(0, 3 * Math.min(k, cores) - idle(k)) / c(k);
    lines.push(
      "",
      `PROJECTION (a model, not a measurement) for ${scenario}: beyond idle, c(1) = ${(c1 * 1e6).toFixed(2)} us and c(2) = ${(c2 * 1e6).toFixed(2)} us ` +
        `of tallyd CPU per increment; idle ${i1.toFixed(2)} and ${i2.toFixed(2)} cores (3 hosts); each further process per host adds what the second did; ` +
        `one core per tallyd at most; k <= ${maxPerHost()} (shards / 3)`,
      "",
      "| cores per host N | k = 1 (one tallyd per host) | best k | increments/s at best k | gain over k = 1 |",
      "| ---: | ---: | ---: | ---: | ---: |",
    );
    for (const cores of [2, 4, 8, 16, 32, 64]) {
      let best = 1;
      for (let k = 2; k <= Math.min(cores, maxPerHost()); k++) if (rate(k, cores) > rate(best, cores)) best = k;
      lines.push(
        `| ${cores} | ${Math.round(rate(1, cores))} | ${best} | ${Math.round(rate(best, cores))} | ${(rate(best, cores) / rate(1, cores)).toFixed(2)}x |`,
      );
    }
  }
  return lines;
}

async function main(): Promise<void> {
  ensureBundles(); // the nodes run dist/tallyd.mjs: rebuild it if src/ is newer
  const loadStart = loadAverage();
  const samples: Sample[] = [];
  for (let pair = 0; pair < pairs; pair++) {
    // Alternate which layout goes first, so a trend in the machine's load favours neither.
    for (const layout of pair % 2 === 0 ? [1, 2] : [2, 1]) {
      console.error(`pair ${pair + 1}/${pairs}: ${3 * layout} tallyd`);
      samples.push(...(await runLayout(layout)));
    }
  }
  const report = [
    `# Several tallyd per host: 3 hosts x 1 vs 3 hosts x 2 (bench/hosts.ts)`,
    "",
    `${new Date().toISOString()}; ${machineDescription()}; load ${loadStart} -> ${loadAverage()}`,
    `${shards} shards, 3 replicas, fsync on, ${seconds} s per scenario after 1 s warm-up, medians of ${pairs} runs per layout; every process on this one machine`,
    "",
    ...measuredTable(samples),
    ...projectionTable(samples),
  ].join("\n");
  console.log(report);
  const dir = join(import.meta.dirname, "results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "hosts-latest.md"), `${report}\n`);
  writeFileSync(join(dir, `hosts-${Date.now()}.json`), JSON.stringify(samples, null, 2));
}

await main();
