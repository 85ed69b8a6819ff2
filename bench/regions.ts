/**
 * Cross-region convergence (docs/regions.md): how long from an add acknowledged in region A until
 * region B's global read shows it, with a one-way latency injected on every region link by the
 * userspace proxy (test/support/proxy.ts), and the replicator of B pulling from A in this process
 * (the code `tallyctl regions replicate` runs). Regions are fresh 1-node (or --nodes N) clusters on
 * loopback; every process is killed by PID at the end.
 *
 *   npx tsx bench/regions.ts [--latency-ms 50] [--jitter-ms 0] [--samples 200] [--rate 20] [--nodes 1] [--coalesce-ms 20]
 *
 * Each sample: one add of +1 to a fresh key in A; from its acknowledgement until B's component of
 * the key from A (the part a global read in B adds) shows it, polled by one linearizable GetMany of
 * every outstanding key every --poll-ms (default 5). Adds go at --rate per second, each on its own
 * key, so samples overlap when convergence is slower than 1/rate.
 * Target: p99 < 1,000 ms + the one-way latency.
 */
import { ensureBundles } from "../bin/bundle.js";
import { globalGet } from "../src/client/index.js";
import { componentKey } from "../src/client/region-keys.js";
import { RegionMesh } from "../test/support/regions.js";
import { parseArgs } from "./lib.js";

const args = parseArgs(process.argv.slice(2));
const latencyMs = Number(args.option("latency-ms", "50"));
const jitterMs = Number(args.option("jitter-ms", "0"));
const samples = Number(args.option("samples", "200"));
const rate = Number(args.option("rate", "20"));
const nodes = Number(args.option("nodes", "1"));
const coalesceMs = Number(args.option("coalesce-ms", "20"));
const pollMs = Number(args.option("poll-ms", "5"));
const sampleDeadlineMs = 30_000;

let mesh: RegionMesh | undefined;
process.on("exit", () => {
  for (const region of mesh?.regions ?? [])
    for (const node of region.cluster.processes.values()) if (node.pid !== undefined && node.exitCode === null) node.kill("SIGKILL");
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Samples waiting to show in B: key -> the value acknowledged in A and when. */
const outstanding = new Map<string, { value: bigint; ackedAt: number; done: (ms: number) => void }>();

/**
 * One poller for every outstanding sample: every --poll-ms, one linearizable GetMany in B of their
 * components from A (what a global read of each key adds to B's own part), so the measurement
 * itself does not load B with a read loop per sample.
 */
async function pollB(stop: () => boolean): Promise<void> {
  const b = mesh!.region("b").client;
  while (!stop()) {
    const keys = [...outstanding.keys()];
    if (keys.length > 0) {
      const read = await b.getMany(keys.map((key) => componentKey("a", Buffer.from(key))));
      const now = performance.now();
      keys.forEach((key, i) => {
        const waiting = outstanding.get(key)!;
        if (read[i]!.value < waiting.value) return;
        outstanding.delete(key);
        waiting.done(now - waiting.ackedAt);
      });
    }
    await sleep(pollMs);
  }
}

async function sample(key: string): Promise<number> {
  const { value } = await mesh!.region("a").client.add(key, 1n);
  const ackedAt = performance.now();
  return await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${key}: not visible in b after ${sampleDeadlineMs} ms`)), sampleDeadlineMs);
    outstanding.set(key, {
      value,
      ackedAt,
      done: (ms) => {
        clearTimeout(timer);
        resolve(ms);
      },
    });
  });
}

async function main(): Promise<void> {
  ensureBundles();
  mesh = await RegionMesh.start(["a", "b"], { nodes, shards: 2 });
  mesh.shapeAll({ latencyMs, jitterMs });
  mesh.startReplicator("a", "b", { coalesceMs });
  let stopped = false;
  const poller = pollB(() => stopped);
  // Warm-up: the first full read and connections.
  await sample("warmup:0");
  const runId = Date.now().toString(36);
  const pending: Array<Promise<number>> = [];
  const startedAt = performance.now();
  for (let i = 0; i < samples; i++) {
    pending.push(sample(`conv:${runId}:${i}`));
    await sleep(Math.max(0, startedAt + ((i + 1) * 1000) / rate - performance.now()));
  }
  const times = (await Promise.all(pending)).sort((x, y) => x - y);
  stopped = true;
  await poller;
  const check = await globalGet(mesh.region("b").client, `conv:${runId}:0`, { regions: ["a"] });
  if (check.value !== 1n) throw new Error(`b's global read of conv:${runId}:0 is ${check.value}, not 1`);
  const status = mesh.replicators.get("a>b")!.replicator.status();
  const fmt = (ms: number) => ms.toFixed(1);
  console.log(
    `regions convergence: ${samples} adds at ${rate}/s, one-way latency ${latencyMs} ms (+${jitterMs} jitter), ${nodes}-node regions, coalesce ${coalesceMs} ms`,
  );
  console.log(`| p50 | p90 | p99 | max | target p99 |`);
  console.log(`| --- | --- | --- | --- | --- |`);
  console.log(
    `| ${fmt(percentile(times, 50))} ms | ${fmt(percentile(times, 90))} ms | ${fmt(percentile(times, 99))} ms | ${fmt(times[times.length - 1]!)} ms | < ${1000 + latencyMs} ms |`,
  );
  console.log(`replicator: ${status.applied} updates applied, ${status.errors} errors, ${status.fullReads} full reads`);
}

try {
  await main();
} finally {
  await mesh?.destroy();
}
