/**
 * `npm run bench`: every benchmark in sequence, each in its own process (so one's heap and timers
 * never disturb the next), on this machine. Results: bench/results/<timestamp>.log and latest.log;
 * the counter API suite beside Redis and etcd (bench/counter-api.ts --peers --report) also writes
 * bench/results/latest.json, latest.md (the table with the machine and settings) and latest.svg.
 * `npm run bench -- --quick` (under a minute) runs only that suite, about 1.5 s per scenario.
 *
 * Benchmarks never assert: speed targets live here, not in tests (the machine is shared and noisy).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadAverage, machineDescription } from "./lib.js";

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes("--quick");
const only = process.argv.find((a) => a.startsWith("--only="))?.slice(7);
const seconds = quick ? "2" : "5";

const suites: Array<{ name: string; file: string; args: string[]; env?: Record<string, string> }> = [
  { name: "raft core (3 in-memory nodes, no I/O)", file: "raft-core.ts", args: [], env: { BENCH_SECONDS: seconds } },
  { name: "shard state machine apply", file: "shard-apply.ts", args: [] },
  { name: "storage: LevelDB batches with fsync", file: "storage-sync.ts", args: [] },
  { name: "peer transport", file: "transport.ts", args: [] },
  {
    name: "node: commit through 3 tallyd processes",
    file: "node-commit.ts",
    args: ["--seconds", seconds, "--concurrency", quick ? "1,64" : "1,64,256"],
  },
  {
    name: "counter API through 3 tallyd processes, each scenario beside Redis 7 or etcd 3.4 (peers need scripts/peers.sh)",
    file: "counter-api.ts",
    args: quick ? ["--seconds", "1", "--warmup", "0.4", "--peers", "--report"] : ["--seconds", seconds, "--peers", "--report"],
  },
  { name: "wire codecs: CPU per 10,000 ops (old vs new encodings, same bytes)", file: "wire-codec.ts", args: [] },
  {
    name: "placement: shard move, unavailability during a leader transfer and a move, routes refresh",
    file: "placement.ts",
    args: ["--counters", quick ? "100000" : "1000000"],
  },
  {
    // 10 M counters take about 20 minutes (most of it restarts): `npx tsx bench/scale.ts` alone.
    name: "scale and cost: bytes per counter in memory and on disk, restart-to-serving, leader-kill unavailability",
    file: "scale.ts",
    args: ["--counters", quick ? "100000,200000" : "1000000,2000000"],
  },
  {
    name: "tally vs Redis 7 and etcd 3.4, same concurrency (needs scripts/peers.sh)",
    file: "peers.ts",
    args: ["--seconds", quick ? "3" : "10"],
  },
  {
    name: "counter kinds: windowed counters, rate limiter, HyperLogLog, top-K, expiry index",
    file: "kinds.ts",
    args: [],
    env: { SCALE: quick ? "0.2" : "1" },
  },
  {
    name: "counter kinds through 3 tallyd processes, each beside its Redis 7 equivalent (appendfsync everysec, needs scripts/peers.sh)",
    file: "kinds-api.ts",
    args: ["--seconds", seconds],
  },
  {
    name: "hot counters: one plain key vs one key spread over 8 shards, and the summed read; Redis INCRBY/GET on one key beside them",
    file: "hot.ts",
    args: ["--seconds", seconds],
  },
];

const header = [
  `# tally benchmarks ${new Date().toISOString()}`,
  `machine: ${machineDescription()}, load average at start ${loadAverage()}`,
  `settings: ${quick ? "quick: the counter API suite only" : "full"} (${quick ? 1 : seconds} s per scenario), fsync on, 3 replicas`,
  "",
];
const out: string[] = [...header];
const ran: string[] = [];
console.log(header.join("\n"));
for (const suite of suites) {
  if (only && !suite.file.includes(only)) continue;
  if (quick && !only && suite.file !== "counter-api.ts") continue;
  ran.push(suite.file);
  const title = `## ${suite.name} (bench/${suite.file})`;
  console.log(title);
  const started = Date.now();
  const result = spawnSync(
    process.execPath,
    [join(here, "..", "node_modules", "tsx", "dist", "cli.mjs"), join(here, suite.file), ...suite.args],
    {
      encoding: "utf8",
      env: { ...process.env, TALLY_LOG_LEVEL: "error", ...suite.env },
      timeout: 10 * 60_000,
    },
  );
  const text = `${result.stdout ?? ""}${result.status === 0 ? "" : `\n(exit ${result.status ?? result.signal}) ${result.stderr ?? ""}`}`;
  console.log(text.trim());
  console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  out.push(title, "", text.trim(), "");
}
const dir = join(here, "results");
mkdirSync(dir, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
writeFileSync(join(dir, `${stamp}.log`), out.join("\n"));
writeFileSync(join(dir, "latest.log"), out.join("\n"));
console.log(`load average at end ${loadAverage()}`);
console.log(`results: bench/results/latest.log${ran.includes("counter-api.ts") ? ", latest.md, latest.svg, latest.json" : ""}`);
