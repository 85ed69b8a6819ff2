/**
 * tally side by side with its peers (issue 7), in one run on this machine:
 *   - Redis 7 (appendonly yes) with appendfsync always, and another with appendfsync everysec
 *   - a 3-member etcd 3.4 cluster
 * each on loopback with a private data dir, against a 3-node tally cluster (fsync on).
 *
 *   npx tsx bench/peers.ts [--seconds 4] [--json out.json]      (npm run bench:peers)
 *
 * Every comparison runs at the same concurrency on both sides; the load generator runs in this
 * process (its CPU is printed; a scenario where it is near one core is flagged "gen-bound").
 * Writes bench/results/peers-<stamp>.json, peers-latest.md (the table) and peers-latest.svg.
 * Needs the Debian packages from scripts/peers.sh; without them it says so and exits 1.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Etcd3 } from "etcd3";
import { TallyClient } from "../src/client/index.js";
import { ensureBundles } from "../bin/bundle.js";
import { TestCluster } from "../test/support/cluster.js";
import { connectUnaryAdd } from "./counter-api.js";
import { closedLoop, openLoop, parseArgs, type LoadResult } from "./lib.js";
import { writePeersSvg } from "./peers-report.js";
import { killChildren, missingBinaries, startEtcd, startRedis, version } from "./redis-peer.js";

const here = dirname(fileURLToPath(import.meta.url));
const args = parseArgs(process.argv.slice(2));
const seconds = Number(args.option("seconds", "4"));
const warmupSeconds = seconds >= 5 ? 2 : 1;
/** A whole run may not take longer than this; then every server is killed and we exit 1. */
const runDeadlineMs = Number(args.option("deadline-seconds", "900")) * 1000;
/** Above this share of one core the generator, not the system under test, may be the limit. */
const generatorBoundPercent = 90;

// ---- processes: every one tracked by PID, killed on every way out (bench/redis-peer.ts) --------

let cluster: TestCluster | undefined;

process.on("exit", () => {
  for (const node of cluster?.processes.values() ?? []) if (node.pid !== undefined && node.exitCode === null) node.kill("SIGKILL");
});

function requireBinaries(): void {
  const missing = missingBinaries(["redis-server", "etcd"]);
  if (missing.length > 0) {
    console.error(
      `peers: ${missing.join(", ")} not installed; run scripts/peers.sh (Debian: redis-server, etcd-server). No numbers without them.`,
    );
    process.exit(1);
  }
}

// ---- scenarios --------------------------------------------------------------------------------

type Measured = LoadResult & {
  name: string;
  system: "tally" | "redis" | "etcd";
  setting: string;
  conflicts?: number;
  eventLoopDelayMsMax: number;
};
const measured: Measured[] = [];
/** The generator's event loop: a long stall means the generator, not the server, set the pace. */
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

function record(name: string, system: Measured["system"], setting: string, result: LoadResult, conflicts?: number): Measured {
  const row: Measured = {
    name,
    system,
    setting,
    ...result,
    ...(conflicts !== undefined ? { conflicts } : {}),
    eventLoopDelayMsMax: Math.round(loopDelay.max / 1e6),
  };
  loopDelay.reset();
  measured.push(row);
  const bound = result.generatorCpuPercent >= generatorBoundPercent ? " gen-bound" : "";
  console.log(
    `${system.padEnd(5)} ${name}: ${result.unitsPerSecond}/s p50 ${result.p50Ms.toFixed(2)} p99 ${result.p99Ms.toFixed(2)} p99.9 ${result.p999Ms.toFixed(2)} ms, errors ${result.errors}, generator CPU ${result.generatorCpuPercent}%${bound}, its event loop stalled up to ${row.eventLoopDelayMsMax} ms${conflicts !== undefined ? `, txn conflicts ${conflicts}` : ""}${result.firstError ? ` (first error: ${result.firstError})` : ""}`,
  );
  return row;
}

/** Deterministic uniform key indexes (xorshift32), so every system sees the same key sequence. */
function keyStream(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const loop = (concurrency: number, operation: (worker: number, i: number) => Promise<number>, atLeastSeconds = 0) =>
  closedLoop({ concurrency, seconds: Math.max(seconds, atLeastSeconds), warmupSeconds, operation });
/** A 10,000-op batch can take seconds on a loaded box: its window must hold several of them. */
const batchSecondsMin = 8;
const open = (rate: number, operation: (i: number) => Promise<unknown>) =>
  openLoop({ rate, seconds, warmupSeconds, maxOutstanding: 20_000, operation });

interface Pair {
  scenario: string;
  unit: string;
  tally: Measured;
  peer: Measured;
}

async function runScenarios(
  endpoints: string[],
  redisAlways: Awaited<ReturnType<typeof startRedis>>,
  redisEverysec: Awaited<ReturnType<typeof startRedis>>,
  etcdHosts: string[],
): Promise<{ pairs: Pair[]; latency: Measured[] }> {
  const pairs: Pair[] = [];
  const latency: Measured[] = [];
  const smallKeys = 16;
  const manyKeys = 100_000;

  // 1. Single increments, one per round trip.
  const pipelineClient = new TallyClient({ endpoints, autoBatch: false, deadlineMs: 30_000 });
  await pipelineClient.connect();
  const tallyPipeline = record(
    "single adds, 256 in flight (Pipeline stream, client batching off)",
    "tally",
    "3 replicas, fsync",
    await loop(256, async (w, i) => (await pipelineClient.add(`k${(w * 100_003 + i) % manyKeys}`, 1n), 1)),
  );
  await pipelineClient.close();
  for (const connections of [50, 256]) {
    const clients = Array.from({ length: connections }, () => redisAlways.client());
    const result = await loop(connections, async (w, i) => (await clients[w]!.incrby(`k${(w * 100_003 + i) % manyKeys}`, 1), 1));
    for (const c of clients) c.disconnect();
    const peer = record(`INCRBY unpipelined, ${connections} clients`, "redis", "appendfsync always", result);
    pairs.push({
      scenario: `single increments: tally Pipeline 256 in flight vs Redis ${connections} clients`,
      unit: "increments/s",
      tally: tallyPipeline,
      peer,
    });
  }

  // 2. Batches of 10,000 increments, 4 in flight, keys uniform over 1M counters.
  {
    const million = 1_000_000;
    const client = new TallyClient({ endpoints, deadlineMs: 60_000 });
    await client.connect();
    const next = keyStream(7);
    const tally = record(
      "AddBatch 10,000 increments/request, 4 in flight, 1M keys",
      "tally",
      "3 replicas, fsync",
      await loop(
        4,
        async () => {
          const ops = Array.from({ length: 10_000 }, () => ({ key: `m${next() % million}`, delta: 1n }));
          await client.addBatch(ops);
          return ops.length;
        },
        batchSecondsMin,
      ),
    );
    await client.close();
    const redis = redisEverysec.client();
    const nextRedis = keyStream(7);
    const peer = record(
      "INCRBY pipelined 10,000/batch, 4 in flight, 1M keys",
      "redis",
      "appendfsync everysec, one node",
      await loop(
        4,
        async () => {
          const pipeline = redis.pipeline();
          for (let j = 0; j < 10_000; j++) pipeline.incrby(`m${nextRedis() % million}`, 1);
          const replies = await pipeline.exec();
          if (!replies || replies.some(([error]) => error)) throw new Error("pipeline reply with an error");
          return 10_000;
        },
        batchSecondsMin,
      ),
    );
    redis.disconnect();
    pairs.push({ scenario: "batched increments (10,000 per request, 4 in flight, 1M keys)", unit: "increments/s", tally, peer });
  }

  // 3. Unary replicated writes at concurrency 64.
  {
    const unary = await connectUnaryAdd(endpoints);
    const tally = record(
      "unary Add, 64 in flight",
      "tally",
      "3 replicas, fsync",
      await loop(64, async (w, i) => (await unary.add(w, `k${(w * 100_003 + i) % manyKeys}`), 1)),
    );
    unary.close();
    const etcd = new Etcd3({ hosts: etcdHosts });
    const peer = record(
      "put, 64 in flight",
      "etcd",
      "3 members",
      await loop(
        64,
        async (w, i) => (
          await etcd
            .put(`k${(w * 100_003 + i) % manyKeys}`)
            .value("1")
            .exec(),
          1
        ),
      ),
    );
    etcd.close();
    pairs.push({ scenario: "replicated unary writes, 64 in flight (tally Add vs etcd put)", unit: "writes/s", tally, peer });
  }

  // 4. Exact increments at concurrency 64: etcd needs read, then a transaction conditional on the
  // key's mod_revision, retried on conflict. The read is serializable (member-local): the compare
  // makes the increment exact anyway, and it is the cheaper read.
  for (const keys of [smallKeys, manyKeys]) {
    const client = new TallyClient({ endpoints, deadlineMs: 30_000 });
    await client.connect();
    const tally = record(
      `exact increments, 64 in flight, ${keys} keys (client library defaults)`,
      "tally",
      "3 replicas, fsync",
      await loop(64, async (w, i) => (await client.add(`x${keys}:${(w * 100_003 + i) % keys}`, 1n), 1)),
    );
    await client.close();
    const etcd = new Etcd3({ hosts: etcdHosts });
    let conflicts = 0;
    const result = await loop(64, async (w, i) => {
      const key = `x${keys}:${(w * 100_003 + i) % keys}`;
      for (let attempt = 0; attempt < 10_000; attempt++) {
        const read = await etcd.get(key).serializable(true).exec();
        const kv = read.kvs[0];
        const value = kv ? BigInt(kv.value.toString()) : 0n;
        const txn = await etcd
          .if(key, "Mod", "==", kv ? kv.mod_revision : 0)
          .then(etcd.put(key).value(String(value + 1n)))
          .commit();
        if (txn.succeeded) return 1;
        conflicts++;
      }
      throw new Error(`increment of ${key} still conflicting after 10,000 attempts`);
    });
    etcd.close();
    const peer = record(`get + txn(mod_revision) increments, 64 in flight, ${keys} keys`, "etcd", "3 members", result, conflicts);
    pairs.push({ scenario: `exact increments, 64 in flight, ${keys.toLocaleString("en-US")} keys`, unit: "increments/s", tally, peer });
  }

  // 5. Latency at fixed offered rates (open loop, from intended start). The client library as a
  // user runs it (adds within 1 ms to one shard share a request); a 5 s deadline so an overloaded
  // system shows up as errors instead of a backlog that outlives the run.
  {
    const client = new TallyClient({ endpoints, deadlineMs: 5000 });
    await client.connect();
    const redis = redisAlways.client();
    for (const rate of [1000, 10_000]) {
      const label = `${rate.toLocaleString("en-US")}/s offered`;
      const add = record(`Add at ${label}`, "tally", "3 replicas, fsync", await open(rate, (i) => client.add(`l${i % manyKeys}`, 1n)));
      const get = record(
        `linearizable Get at ${label}`,
        "tally",
        "3 replicas, lease read",
        await open(rate, (i) => client.get(`l${i % manyKeys}`)),
      );
      const incr = record(
        `INCRBY at ${label}`,
        "redis",
        "appendfsync always",
        await open(rate, (i) => redis.incrby(`l${i % manyKeys}`, 1)),
      );
      latency.push(add, get, incr);
      pairs.push({ scenario: `Add at ${label} (vs Redis INCRBY)`, unit: "completed/s", tally: add, peer: incr });
    }
    redis.disconnect();
    await client.close();
  }
  return { pairs, latency };
}

// ---- report -----------------------------------------------------------------------------------

const ms = (r: LoadResult) => `${r.p50Ms.toFixed(2)} / ${r.p99Ms.toFixed(2)} / ${r.p999Ms.toFixed(2)}`;
const gen = (r: LoadResult) => `${r.generatorCpuPercent}%${r.generatorCpuPercent >= generatorBoundPercent ? " (gen-bound)" : ""}`;
const ratio = (pair: Pair) =>
  pair.peer.unitsPerSecond > 0 ? pair.tally.unitsPerSecond / pair.peer.unitsPerSecond : Number.POSITIVE_INFINITY;
const fmtRatio = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

function markdown(pairs: Pair[], latency: Measured[], meta: Record<string, string>): string {
  const lines = [
    `# tally vs Redis and etcd (${meta.date})`,
    "",
    `load average ${meta.loadStart} at start, ${meta.loadEnd} at end; ${meta.seconds} s per scenario after ${warmupSeconds} s warm-up; ${meta.versions}`,
    "",
    "| scenario | tally | peer | tally / peer | tally p50 / p99 / p99.9 ms | peer p50 / p99 / p99.9 ms | generator CPU tally / peer |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const pair of pairs) {
    lines.push(
      `| ${pair.scenario} | ${pair.tally.unitsPerSecond.toLocaleString("en-US")} ${pair.unit} | ${pair.peer.unitsPerSecond.toLocaleString("en-US")} (${pair.peer.system}, ${pair.peer.setting}) | ${fmtRatio(ratio(pair))}x | ${ms(pair.tally)} | ${ms(pair.peer)} | ${gen(pair.tally)} / ${gen(pair.peer)} |`,
    );
  }
  lines.push(
    "",
    "Latency at fixed offered rates (open loop, measured from each operation's intended start):",
    "",
    "| operation | completed/s | errors | p50 ms | p99 ms | p99.9 ms | generator CPU |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const r of latency)
    lines.push(
      `| ${r.system} ${r.name} | ${r.unitsPerSecond.toLocaleString("en-US")} | ${r.errors} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.p999Ms.toFixed(2)} | ${gen(r)} |`,
    );
  const conflicts = measured.filter((r) => r.conflicts !== undefined);
  if (conflicts.length)
    lines.push(
      "",
      `etcd transaction conflicts (each one a retried get + txn): ${conflicts.map((r) => `${r.name}: ${r.conflicts}`).join("; ")}`,
    );
  const errors = measured.filter((r) => r.errors > 0);
  if (errors.length)
    lines.push(
      "",
      `errors: ${errors.map((r) => `${r.system} ${r.name}: ${r.errors}${r.firstError ? ` (${r.firstError})` : ""}`).join("; ")}`,
    );
  return `${lines.join("\n")}\n`;
}

async function main(): Promise<void> {
  requireBinaries();
  const watchdog = setTimeout(() => {
    console.error(`peers: still running after ${runDeadlineMs / 1000} s; killing every server`);
    process.exit(1);
  }, runDeadlineMs);
  watchdog.unref();
  const loadStart = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  const versions = `${version("redis-server")}; ${version("etcd")}`;
  console.log(`peers: ${versions}; load average ${loadStart}`);
  const redisAlways = await startRedis("always");
  const redisEverysec = await startRedis("everysec");
  const etcdHosts = await startEtcd();
  ensureBundles(); // the nodes run dist/tallyd.mjs (bin/tallyd.js never builds): rebuild it if src/ is newer
  cluster = await TestCluster.start({ nodes: 3, shards: 8 });
  let outcome: Awaited<ReturnType<typeof runScenarios>>;
  loopDelay.reset();
  try {
    outcome = await runScenarios(cluster.endpoints(), redisAlways, redisEverysec, etcdHosts);
  } finally {
    await cluster.destroy();
    cluster = undefined;
    killChildren();
  }
  const meta = {
    date: new Date().toISOString(),
    loadStart,
    loadEnd: loadavg()
      .map((l) => l.toFixed(2))
      .join(" "),
    seconds: String(seconds),
    versions,
  };
  const dir = join(here, "results");
  mkdirSync(dir, { recursive: true });
  const stamp = meta.date.replace(/[:.]/g, "-");
  const json = {
    ...meta,
    warmupSeconds,
    peers: {
      redisAlways: "redis-server, appendonly yes, appendfsync always, RDB off, one node",
      redisEverysec: "redis-server, appendonly yes, appendfsync everysec, RDB off, one node",
      etcd: "3 etcd members, default settings (fsync on)",
      tally: "3 tallyd, 8 shards, 3 replicas, fsync on",
    },
    pairs: outcome.pairs.map((p) => ({ scenario: p.scenario, unit: p.unit, ratio: ratio(p), tally: p.tally, peer: p.peer })),
    measured,
  };
  writeFileSync(join(dir, `peers-${stamp}.json`), JSON.stringify(json, null, 2));
  const jsonOut = args.option("json", "");
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify(json, null, 2));
  const table = markdown(outcome.pairs, outcome.latency, meta);
  writeFileSync(join(dir, "peers-latest.md"), table);
  writePeersSvg(
    join(dir, "peers-latest.svg"),
    outcome.pairs
      .filter((p) => !p.scenario.includes("offered"))
      .map((p) => ({
        label: p.scenario,
        note: `tally ${fmtRatio(ratio(p))}x`,
        tally: p.tally.unitsPerSecond,
        peer: p.peer.unitsPerSecond,
        peerName: `${p.peer.system} (${p.peer.setting})`,
      })),
    outcome.latency.map((r) => ({
      label: `${r.system} ${r.name}`,
      note: r.errors ? `${r.errors.toLocaleString("en-US")} errors` : "",
      p50: r.p50Ms,
      p99: r.p99Ms,
      p999: r.p999Ms,
    })),
  );
  console.log(`\n${table}`);
  console.log(`results: bench/results/peers-${stamp}.json, peers-latest.md, peers-latest.svg`);
}

try {
  await main();
} finally {
  killChildren();
}
process.exit(0);
