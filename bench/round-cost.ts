/**
 * What a replicated write costs when writes are few: the nodes' CPU (user + system from /proc,
 * every thread) with no load, then at a low offered rate of single adds, and what node 1 did per
 * second meanwhile (driver-loop iterations, store writes, Raft entries, requests: its /metrics
 * counters over the window). At a low rate nothing batches, so the difference over idle divided
 * by the rate is the CPU of one lone write over the whole cluster: the fixed cost of a Raft round
 * (docs/benchmarks.md, "7 December 2026 (fifth session)").
 *
 *   npx tsx bench/round-cost.ts [--mode exact|eventual] [--rate 100] [--seconds 10] [--nodes 3] [--shards 8]
 *
 * Keys are spread over 10,000 per call from a closed set; `eventual` adds go through each node in
 * turn (their flushes are the Raft writes). Never asserts (docs/benchmarks.md has the figures).
 */
import { TallyClient } from "../src/client/index.js";
import { ensureBundles } from "../bin/bundle.js";
import { TestCluster } from "../test/support/cluster.js";
import { loadAverage, machineDescription, parseArgs, procCpuSeconds } from "./lib.js";

const args = parseArgs(process.argv.slice(2));
const mode = args.option("mode", "exact");
if (mode !== "exact" && mode !== "eventual") throw new Error(`--mode: exact or eventual, got ${mode}`);
const rate = Number(args.option("rate", "100"));
const seconds = Number(args.option("seconds", "10"));
const nodes = Number(args.option("nodes", "3"));
const shards = Number(args.option("shards", "8"));
const WARMUP_MS = 3_000;
const KEYS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Node 1's /metrics as series -> value. */
async function scrape(cluster: TestCluster): Promise<Map<string, number>> {
  const address = (cluster.config.nodes[0] as { metrics?: string }).metrics;
  const text = await (await fetch(`http://${address}/metrics`)).text();
  const series = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    series.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return series;
}

/** CPU seconds per second of the nodes over `ms`, and node 1's counters per second over it. */
async function window(cluster: TestCluster, pids: number[], ms: number): Promise<{ cpu: number; perSecond: Map<string, number> }> {
  const [before, cpuBefore] = [await scrape(cluster), procCpuSeconds(pids)];
  await sleep(ms);
  const cpu = (procCpuSeconds(pids) - cpuBefore) / (ms / 1000);
  const after = await scrape(cluster);
  const perSecond = new Map<string, number>();
  for (const [name, value] of after) {
    if (!/_total(\{|$)|_count(\{|$)/.test(name) || name.startsWith("process_") || name.startsWith("nodejs_")) continue;
    const delta = value - (before.get(name) ?? 0);
    if (delta > 0) perSecond.set(name, delta / (ms / 1000));
  }
  return { cpu, perSecond };
}

ensureBundles();
console.log(`machine: ${machineDescription()}; load ${loadAverage()}`);
const cluster = await TestCluster.start({ nodes, shards, metrics: true });
const pids = [...cluster.processes.values()].map((child) => child.pid!);
const clients = cluster.config.nodes.map((node) => new TallyClient({ endpoints: [node.client], deadlineMs: 30_000 }));
let errors = 0;
let timer: NodeJS.Timeout | undefined;
try {
  for (const client of clients) await client.connect();
  await sleep(WARMUP_MS);
  const idle = await window(cluster, pids, seconds * 1000);
  let next = 0;
  // 100 sends a second, rate / 100 adds each (a rate under 100/s sends every 100 / rate ticks).
  let tick = 0;
  timer = setInterval(() => {
    tick++;
    const adds = rate >= 100 ? Math.round(rate / 100) : tick % Math.round(100 / rate) === 0 ? 1 : 0;
    for (let i = 0; i < adds; i++) {
      const n = next++;
      clients[n % clients.length]!.add(`round:${(n * 7919) % KEYS}`, 1n, { mode }).catch(() => errors++);
    }
  }, 10);
  await sleep(WARMUP_MS);
  const loaded = await window(cluster, pids, seconds * 1000);
  clearInterval(timer);
  timer = undefined;
  const perWrite = ((loaded.cpu - idle.cpu) / rate) * 1000;
  console.log(
    `${nodes} nodes, ${shards} shards: idle ${idle.cpu.toFixed(3)} CPU s/s; ${mode} adds at ${rate}/s ${loaded.cpu.toFixed(3)} CPU s/s; ` +
      `${perWrite.toFixed(2)} ms of the nodes' CPU per add over idle; errors ${errors}`,
  );
  for (const [label, { perSecond }] of [
    ["idle", idle],
    ["loaded", loaded],
  ] as const) {
    const rows = [...perSecond].filter(([name]) =>
      /loop_iterations|storage_write_seconds_count|raft_entries_written|requests_total|eventual_flushes/.test(name),
    );
    console.log(
      `node 1 per second, ${label}: ${rows.map(([name, value]) => `${name.replace(/node="1",?|,?node="1"/, "").replace("{}", "")} ${value.toFixed(1)}`).join("; ")}`,
    );
  }
  console.log(`load at the end: ${loadAverage()}`);
} finally {
  if (timer !== undefined) clearInterval(timer);
  for (const client of clients) await client.close();
  await cluster.destroy();
}
