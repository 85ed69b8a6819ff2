/**
 * The two counter hot paths alone, for profiling and for CPU cost per operation: AddBatch (10,000
 * increments per request, 4 in flight) and pipelined single adds (256 in flight, client
 * auto-batching off).
 *
 *   npx tsx bench/counter-hot.ts [--seconds 4] [--scenario batch|pipeline|both] [--cpu-prof-dir /tmp/dir]
 *
 * Besides throughput it prints the CPU time (user + system, from /proc) the three tallyd
 * processes and this client spent per 1,000 increments: on a shared box whose other tenants
 * steal cores, that number moves much less than throughput does. With --cpu-prof-dir every
 * tallyd writes a V8 CPU profile there on exit.
 */
import { readFileSync } from "node:fs";
import { TallyClient } from "../src/client/index.js";
import { ensureBundles } from "../bin/bundle.js";
import { TestCluster } from "../test/support/cluster.js";
import { closedLoop, parseArgs, type LoadResult } from "./lib.js";

const args = parseArgs(process.argv.slice(2));
const seconds = Number(args.option("seconds", "4"));
const scenario = args.option("scenario", "both");
const profileDir = args.option("cpu-prof-dir", "");
const keyCount = 100_000;
const key = (i: number) => `k${i % keyCount}`;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat (utime, stime), counted after the command name; clock ticks of 1/100 s.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function measured(cluster: TestCluster, name: string, run: (count: (units: number) => void) => Promise<LoadResult>): Promise<void> {
  const pids = [...cluster.processes.values()].map((child) => child.pid!);
  let units = 0;
  const serverCpu0 = pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
  const clientCpu0 = process.cpuUsage();
  const result = await run((n) => (units += n));
  const serverCpuSeconds = pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0) - serverCpu0;
  const client = process.cpuUsage(clientCpu0);
  const clientCpuSeconds = (client.user + client.system) / 1e6;
  console.log(
    JSON.stringify({
      scenario: name,
      ...result,
      incrementsAll: units,
      serverCpuMsPer1000: Number(((serverCpuSeconds * 1e6) / units).toFixed(2)),
      clientCpuMsPer1000: Number(((clientCpuSeconds * 1e6) / units).toFixed(2)),
    }),
  );
}

ensureBundles(); // the nodes run dist/tallyd.mjs (bin/tallyd.js never builds): rebuild it if src/ is newer
const cluster = await TestCluster.start({
  nodes: 3,
  shards: 8,
  ...(profileDir ? { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] } : {}),
});
try {
  const endpoints = cluster.endpoints();
  if (scenario !== "pipeline") {
    const client = new TallyClient({ endpoints, deadlineMs: 30_000 });
    await client.connect();
    let next = 0;
    await measured(cluster, "AddBatch 10,000/request, 4 in flight", (count) =>
      closedLoop({
        concurrency: 4,
        seconds,
        operation: async () => {
          const ops = Array.from({ length: 10_000 }, () => ({ key: key(next++ * 7919), delta: 1n }));
          await client.addBatch(ops);
          count(ops.length);
          return ops.length;
        },
      }),
    );
    await client.close();
  }
  if (scenario !== "batch") {
    const client = new TallyClient({ endpoints, autoBatch: false, deadlineMs: 30_000 });
    await client.connect();
    await measured(cluster, "Pipeline single adds, 256 in flight", (count) =>
      closedLoop({ concurrency: 256, seconds, operation: async (w, i) => (await client.add(key(w * 100_003 + i), 1n), count(1), 1) }),
    );
    await client.close();
  }
} finally {
  // SIGTERM first so each tallyd exits cleanly and writes its CPU profile.
  if (profileDir) for (let id = 1; id <= 3; id++) await cluster.stop(id).catch(() => undefined);
  await cluster.destroy();
}
