/**
 * The counter API through a real 3-node cluster with fsync on (issues 4 and 7), each scenario
 * beside a peer in the same run when asked (--peers: Redis 7 and a 3-member etcd 3.4, started
 * here on loopback, see bench/redis-peer.ts):
 *   batch        AddBatch, 10,000 increments per request, 4 in flight, keys uniform over --keys
 *                (vs Redis `everysec`, INCRBY pipelined 10,000 per batch)
 *   singles      single adds through the client library with its defaults, 256 in flight (the adds
 *                made in one event-loop turn to one shard share a request; vs the same Redis row)
 *   pipeline     single adds on the Pipeline stream, client auto-batching off, 256 in flight
 *                (vs Redis `always`, INCRBY unpipelined, 256 connections)
 *   unary        unary Add to each shard's leader, 64 in flight (vs etcd put)
 *   hot          one key receiving everything, client auto-batching on, 256 in flight (vs Redis)
 *   zipf         single adds, auto-batching on, 256 in flight, keys Zipf(0.99) over --keys (vs Redis)
 *   stale        STALE reads (any replica), 64 in flight (vs Redis GET)
 *   lease-reads  linearizable reads (the leader's lease), 64 in flight (vs etcd linearizable get)
 *   mix          90% linearizable gets / 10% adds, 64 in flight (vs Redis GET / INCRBY)
 *   latency      Add and linearizable Get at 1,000/s and 10,000/s offered, open loop, latency
 *                from each operation's intended start (vs Redis INCRBY / GET)
 * Reads go to --read-keys counters filled before the first scenario; a read that finds no value
 * counts as an error. Closed-loop rows compare throughput, open-loop rows p99.
 *
 *   npx tsx bench/counter-api.ts [--seconds 5] [--warmup 1] [--endpoints a,b,c] [--json out.json]
 *       [--only batch,pipeline,...] [--keys 1000000] [--read-keys 100000] [--cpu-prof DIR]
 *       [--node-args "--perf-basic-prof ..."] [--peers [--no-etcd]] [--report]
 *
 * Without --endpoints it starts its own cluster (cluster.yaml's timing, temp data dirs).
 * `--report` writes bench/results/latest.json, latest.md (the table, with the machine and the
 * settings) and latest.svg (throughput bars beside the peer, latency percentiles per scenario),
 * plus counter-<stamp>.json. A missing peer binary leaves the tally columns and says so.
 * `--cpu-prof DIR` starts every tallyd with --cpu-prof and stops them with SIGTERM at the end so
 * each writes its .cpuprofile into DIR (profile the generator itself with
 * NODE_OPTIONS="--cpu-prof --cpu-prof-dir=DIR"). `--node-args` adds Node flags to every tallyd it
 * starts (for `perf record`: "--perf-basic-prof").
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Etcd3 } from "etcd3";
import type { Redis } from "ioredis";
import { TallyClient, type TallyClientOptions } from "../src/client/index.js";
import { slotOf } from "../src/meta/slots.js";
import { createPrng } from "../src/util/prng.js";
import { ensureBundles } from "../bin/bundle.js";
import { TestCluster } from "../test/support/cluster.js";
import { RawNodeClient, leaderClient } from "../test/support/raw-client.js";
import { ZipfSampler, closedLoop, loadAverage, machineDescription, openLoop, parseArgs, procCpuSeconds, type LoadResult } from "./lib.js";
import { writePeersSvg } from "./peers-report.js";
import {
  killChildren,
  missingBinaries,
  redisClosedLoop,
  startEtcd,
  startRedis,
  version,
  type RedisFsync,
  type RedisPeer,
} from "./redis-peer.js";

const here = dirname(fileURLToPath(import.meta.url));
export const SCENARIOS = ["batch", "singles", "pipeline", "unary", "hot", "zipf", "stale", "lease-reads", "mix", "latency"] as const;
type ScenarioId = (typeof SCENARIOS)[number];
/** Above this share of one core the generator, not the system under test, may be the limit. */
const generatorBoundPercent = 90;
const fmt = (n: number) => n.toLocaleString("en-US");

/**
 * Unary Add calls straight to each shard's leader, as a plain gRPC user would make them (no
 * client library, no stream): 8 sessions per shard, a worker uses session `worker % 8`.
 */
export async function connectUnaryAdd(
  endpoints: string[],
  shards = 8,
): Promise<{ add(worker: number, key: string): Promise<void>; close(): void }> {
  const leaders = new Map<number, RawNodeClient>();
  const sessions = new Map<number, { clientId: string; seq: number }[]>();
  await Promise.all(
    Array.from({ length: shards }, async (_, index) => {
      const shard = index + 1;
      const leader = await leaderClient(endpoints, shard);
      leaders.set(shard, leader);
      sessions.set(
        shard,
        await Promise.all(
          Array.from({ length: 8 }, async () => ({
            clientId: (await leader.call("registerSession", { shardId: shard })).clientId as string,
            seq: 0,
          })),
        ),
      );
    }),
  );
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

// ---- settings and peers -----------------------------------------------------------------------

export interface BenchSettings {
  endpoints: string[];
  seconds: number;
  warmupSeconds: number;
  /** A 10,000-op batch can take a second on a loaded box: its window must hold several. */
  batchSeconds: number;
  /** Write scenarios spread over this many counters. */
  keys: number;
  /** Reads (and the mix) go to this many counters, filled first. */
  readKeys: number;
  only: readonly ScenarioId[];
  /** With a cluster of our own: CPU seconds its processes used so far. */
  cpuProbe?: () => number;
}

/** The peers of this run; each one absent says why. */
export interface Peers {
  redis: Partial<Record<RedisFsync, RedisPeer>>;
  etcdHosts?: string[];
  missing: { redis?: string; etcd?: string };
}

type PeerSpec =
  | { system: "redis"; fsync: RedisFsync; name: string; run: (redis: RedisPeer) => Promise<LoadResult> }
  | { system: "etcd"; name: string; run: (etcd: Etcd3) => Promise<LoadResult> };

interface ScenarioInfo {
  id: ScenarioId;
  name: string;
  /** Concurrency or offered rate. */
  load: string;
  unit: string;
  /** Open loop: the offered rate is fixed, so the comparison is p99, not throughput. */
  open: boolean;
}

interface ScenarioSpec extends ScenarioInfo {
  tally: () => Promise<LoadResult>;
  peer?: PeerSpec;
}

export interface Row extends ScenarioInfo {
  tally: LoadResult;
  peer?: { system: string; name: string; setting: string; result: LoadResult };
  /** Why the row has no peer. */
  peerMissing?: string;
  /** Both sides with warm-up and drain (what the row cost the run). */
  wallSeconds: number;
}

const peerSetting = (peer: PeerSpec) => (peer.system === "redis" ? `appendfsync ${peer.fsync}, one node` : "3 members");

export async function startPeers(withEtcd: boolean): Promise<Peers> {
  const peers: Peers = { redis: {}, missing: {} };
  if (missingBinaries(["redis-server"]).length > 0) peers.missing.redis = "peer missing: redis-server not installed (scripts/peers.sh)";
  else for (const fsync of ["always", "everysec"] as const) peers.redis[fsync] = await startRedis(fsync);
  if (!withEtcd) peers.missing.etcd = "etcd not run (--no-etcd)";
  else if (missingBinaries(["etcd"]).length > 0) peers.missing.etcd = "peer missing: etcd not installed (scripts/peers.sh)";
  else peers.etcdHosts = await startEtcd();
  return peers;
}

// ---- scenarios --------------------------------------------------------------------------------

async function withClient<T>(
  endpoints: string[],
  options: Partial<TallyClientOptions>,
  use: (client: TallyClient) => Promise<T>,
): Promise<T> {
  const client = new TallyClient({ endpoints, ...options });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.close();
  }
}

const readKey = (i: number) => `r${i}`;
const found = (value: unknown) => {
  if (value === null || value === undefined || value === false) throw new Error("a read found no value (the read keys are filled first)");
};

/** A key stream factory: each side of a row draws a fresh stream, so tally and its peer see the same keys. */
type Keys = () => () => string;

/** Every scenario of `settings.only`, in order; the latency scenario gives four rows. */
function scenarios(settings: BenchSettings): ScenarioSpec[] {
  const { endpoints, seconds, warmupSeconds, cpuProbe, keys, readKeys } = settings;
  const window = (atLeastSeconds: number) => ({ seconds: Math.max(seconds, atLeastSeconds), warmupSeconds });
  const uniform =
    (prefix: string, seed: number, bound: number): Keys =>
    () => {
      const prng = createPrng(seed);
      return () => `${prefix}${prng.nextInt(bound)}`;
    };
  const zipf =
    (prefix: string, seed: number): Keys =>
    () => {
      const prng = createPrng(seed);
      const sampler = new ZipfSampler(keys, 0.99, () => prng.nextFloat());
      return () => `${prefix}${sampler.next()}`;
    };
  const one =
    (key: string): Keys =>
    () =>
    () =>
      key;
  const reads = uniform("r", 19, readKeys);

  // Closed loops: `operation` draws its key(s) from `next` and carries `units` (increments or ops).
  type Op<C> = (client: C, next: () => string) => Promise<unknown>;
  const tallyLoop =
    (concurrency: number, options: Partial<TallyClientOptions>, keysOf: Keys, operation: Op<TallyClient>, units = 1, atLeastSeconds = 0) =>
    () => {
      const next = keysOf();
      return withClient(endpoints, { deadlineMs: 30_000, ...options }, (client) =>
        closedLoop({ concurrency, ...window(atLeastSeconds), cpuProbe, operation: async () => (await operation(client, next), units) }),
      );
    };
  const redisLoop =
    (concurrency: number, keysOf: Keys, operation: Op<Redis>, units = 1, atLeastSeconds = 0) =>
    (peer: RedisPeer) => {
      const next = keysOf();
      return redisClosedLoop(peer, {
        concurrency,
        ...window(atLeastSeconds),
        operation: async (redis) => (await operation(redis, next), units),
      });
    };
  const etcdLoop = (concurrency: number, keysOf: Keys, operation: Op<Etcd3>) => (etcd: Etcd3) => {
    const next = keysOf();
    return closedLoop({ concurrency, ...window(0), operation: async () => (await operation(etcd, next), 1) });
  };
  /** 90% reads: a fresh coin per side, so both sides see the same sequence of reads and writes. */
  const mixed = <C>(read: Op<C>, write: Op<C>): Op<C> => {
    const coin = createPrng(31);
    return (client, next) => (coin.chance(0.9) ? read(client, next) : write(client, next));
  };

  const keysLabel = `${fmt(keys)} keys`;
  const readsLabel = `${fmt(readKeys)} keys`;
  const batch = 10_000;
  const specs: ScenarioSpec[] = [];
  const add = (spec: ScenarioSpec) => {
    if (settings.only.includes(spec.id)) specs.push(spec);
  };
  const closed = (id: ScenarioId, name: string, concurrency: number, unit: string, tally: () => Promise<LoadResult>, peer: PeerSpec) =>
    add({ id, name, load: `${concurrency} in flight`, unit, open: false, tally, peer });

  const batchKeys = uniform("m", 7, keys);
  closed(
    "batch",
    `AddBatch, ${fmt(batch)} increments per request, uniform over ${keysLabel}`,
    4,
    "increments/s",
    tallyLoop(
      4,
      { deadlineMs: 60_000 },
      batchKeys,
      (client, next) => client.addBatch(Array.from({ length: batch }, () => ({ key: next(), delta: 1n }))),
      batch,
      settings.batchSeconds,
    ),
    {
      system: "redis",
      fsync: "everysec",
      name: `INCRBY pipelined, ${fmt(batch)} per batch`,
      run: redisLoop(
        4,
        batchKeys,
        async (redis, next) => {
          const pipeline = redis.pipeline();
          for (let j = 0; j < batch; j++) pipeline.incrby(next(), 1);
          const replies = await pipeline.exec();
          if (!replies || replies.some(([error]) => error)) throw new Error("pipeline reply with an error");
        },
        batch,
        settings.batchSeconds,
      ),
    },
  );

  const singleKeys = uniform("k", 11, keys);
  closed(
    "singles",
    `single adds through the client library (default: the adds of one event-loop turn share a request), ${keysLabel}`,
    256,
    "adds/s",
    tallyLoop(256, {}, singleKeys, (client, next) => client.add(next(), 1n)),
    {
      system: "redis",
      fsync: "always",
      name: "INCRBY unpipelined, 256 connections",
      run: redisLoop(256, singleKeys, (redis, next) => redis.incrby(next(), 1)),
    },
  );

  closed(
    "pipeline",
    `single adds, Pipeline stream, client auto-batching off (one op per message), ${keysLabel}`,
    256,
    "adds/s",
    tallyLoop(256, { autoBatch: false }, singleKeys, (client, next) => client.add(next(), 1n)),
    {
      system: "redis",
      fsync: "always",
      name: "INCRBY unpipelined, 256 connections",
      run: redisLoop(256, singleKeys, (redis, next) => redis.incrby(next(), 1)),
    },
  );

  closed(
    "unary",
    `unary Add to the shard leader, ${keysLabel}`,
    64,
    "adds/s",
    async () => {
      const next = singleKeys();
      const unary = await connectUnaryAdd(endpoints);
      try {
        return await closedLoop({ concurrency: 64, ...window(0), cpuProbe, operation: async (w) => (await unary.add(w, next()), 1) });
      } finally {
        unary.close();
      }
    },
    { system: "etcd", name: "put", run: etcdLoop(64, singleKeys, (etcd, next) => etcd.put(next()).value("1").exec()) },
  );

  closed(
    "hot",
    "one hot key, client auto-batching on",
    256,
    "adds/s",
    tallyLoop(256, {}, one("hot"), (client, next) => client.add(next(), 1n)),
    {
      system: "redis",
      fsync: "always",
      name: "INCRBY one key, 256 connections",
      run: redisLoop(256, one("hot"), (redis, next) => redis.incrby(next(), 1)),
    },
  );

  const zipfKeys = zipf("z", 17);
  closed(
    "zipf",
    `single adds, keys Zipf(0.99) over ${keysLabel}, auto-batching on`,
    256,
    "adds/s",
    tallyLoop(256, {}, zipfKeys, (client, next) => client.add(next(), 1n)),
    {
      system: "redis",
      fsync: "always",
      name: "INCRBY Zipf keys, 256 connections",
      run: redisLoop(256, zipfKeys, (redis, next) => redis.incrby(next(), 1)),
    },
  );

  closed(
    "stale",
    `STALE reads (any replica), ${readsLabel}`,
    64,
    "reads/s",
    tallyLoop(64, {}, reads, async (client, next) => found((await client.get(next(), { consistency: "stale" })).exists)),
    {
      system: "redis",
      fsync: "always",
      name: "GET, 64 connections",
      run: redisLoop(64, reads, async (redis, next) => found(await redis.get(next()))),
    },
  );

  closed(
    "lease-reads",
    `linearizable reads (leader lease), ${readsLabel}`,
    64,
    "reads/s",
    tallyLoop(64, {}, reads, async (client, next) => found((await client.get(next())).exists)),
    { system: "etcd", name: "linearizable get", run: etcdLoop(64, reads, async (etcd, next) => found(await etcd.get(next()).string())) },
  );

  closed(
    "mix",
    `90% linearizable gets / 10% adds, ${readsLabel}`,
    64,
    "ops/s",
    tallyLoop(
      64,
      {},
      reads,
      mixed(
        async (client, next) => found((await client.get(next())).exists),
        (client, next) => client.add(next(), 1n),
      ),
    ),
    {
      system: "redis",
      fsync: "always",
      name: "90% GET / 10% INCRBY, 64 connections",
      run: redisLoop(
        64,
        reads,
        mixed(
          async (redis, next) => found(await redis.get(next())),
          (redis, next) => redis.incrby(next(), 1),
        ),
      ),
    },
  );

  // Open loop, the client library as a user runs it (adds of one event-loop turn to one shard share a request);
  // a 5 s deadline so an overloaded system shows up as errors, not a backlog outliving the run.
  const open = (rate: number, operation: (i: number) => Promise<unknown>) =>
    openLoop({ rate, seconds, warmupSeconds, maxOutstanding: 20_000, operation });
  for (const rate of [1000, 10_000]) {
    const redisOpen = (operation: (redis: Redis, i: number) => Promise<unknown>) => async (peer: RedisPeer) => {
      const redis = peer.client();
      try {
        return await open(rate, (i) => operation(redis, i));
      } finally {
        redis.disconnect();
      }
    };
    const load = `${fmt(rate)}/s offered`;
    add({
      id: "latency",
      name: `Add, open loop, auto-batching on, ${keysLabel}`,
      load,
      unit: "adds/s",
      open: true,
      tally: () => withClient(endpoints, { deadlineMs: 5000 }, (client) => open(rate, (i) => client.add(`l${i % keys}`, 1n))),
      peer: {
        system: "redis",
        fsync: "always",
        name: "INCRBY, one connection",
        run: redisOpen((redis, i) => redis.incrby(`l${i % keys}`, 1)),
      },
    });
    add({
      id: "latency",
      name: `linearizable Get, open loop, ${readsLabel}`,
      load,
      unit: "reads/s",
      open: true,
      tally: () =>
        withClient(endpoints, { deadlineMs: 5000 }, (client) =>
          open(rate, async (i) => found((await client.get(readKey(i % readKeys))).exists)),
        ),
      peer: {
        system: "redis",
        fsync: "always",
        name: "GET, one connection",
        run: redisOpen(async (redis, i) => found(await redis.get(readKey(i % readKeys)))),
      },
    });
  }
  return specs;
}

/** Adds 1 to each of the read keys on tally and on every peer, so reads find values. */
async function fillReadKeys(settings: BenchSettings, peers: Peers | undefined): Promise<void> {
  const { readKeys } = settings;
  const chunks: string[][] = [];
  for (let start = 0; start < readKeys; start += 10_000)
    chunks.push(Array.from({ length: Math.min(10_000, readKeys - start) }, (_, j) => readKey(start + j)));
  const tally = withClient(settings.endpoints, { deadlineMs: 60_000 }, async (client) => {
    for (const chunk of chunks) await client.addBatch(chunk.map((key) => ({ key, delta: 1n })));
    found((await client.get(readKey(readKeys - 1))).exists);
  });
  // The reads' peers: Redis `always` and etcd.
  const redisAlways = peers?.redis.always;
  const redis = redisAlways
    ? (async () => {
        const connection = redisAlways.client();
        try {
          for (const chunk of chunks) {
            const pipeline = connection.pipeline();
            for (const key of chunk) pipeline.incrby(key, 1);
            await pipeline.exec();
          }
        } finally {
          connection.disconnect();
        }
      })()
    : undefined;
  const etcdHosts = peers?.etcdHosts;
  const etcd = etcdHosts
    ? (async () => {
        const client = new Etcd3({ hosts: etcdHosts });
        try {
          // etcd takes at most 128 operations per transaction by default.
          const keys = chunks.flat();
          const txns = [];
          for (let start = 0; start < keys.length; start += 100) txns.push(keys.slice(start, start + 100));
          for (let t = 0; t < txns.length; t += 16) {
            await Promise.all(
              txns
                .slice(t, t + 16)
                .map((txn) =>
                  client.kv.txn({ success: txn.map((key) => ({ request_put: { key: Buffer.from(key), value: Buffer.from("1") } })) }),
                ),
            );
          }
        } finally {
          client.close();
        }
      })()
    : undefined;
  await Promise.all([tally, redis, etcd]);
}

export async function runCounterApiBench(settings: BenchSettings, peers?: Peers): Promise<Row[]> {
  const specs = scenarios(settings);
  if (specs.some((s) => s.id === "stale" || s.id === "lease-reads" || s.id === "mix" || s.id === "latency")) {
    const started = Date.now();
    await fillReadKeys(settings, peers);
    console.log(`filled ${fmt(settings.readKeys)} read keys (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }
  const rows: Row[] = [];
  for (const spec of specs) {
    const started = Date.now();
    const { tally, peer, ...info } = spec;
    const row: Row = { ...info, tally: await tally(), wallSeconds: 0 };
    if (peers && peer) {
      let result: LoadResult | undefined;
      if (peer.system === "redis") {
        const server = peers.redis[peer.fsync];
        if (server) result = await peer.run(server);
        else row.peerMissing = peers.missing.redis;
      } else if (peers.etcdHosts) {
        const etcd = new Etcd3({ hosts: peers.etcdHosts });
        try {
          result = await peer.run(etcd);
        } finally {
          etcd.close();
        }
      } else row.peerMissing = peers.missing.etcd;
      if (result) row.peer = { system: peer.system, name: peer.name, setting: peerSetting(peer), result };
    }
    row.wallSeconds = (Date.now() - started) / 1000;
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  return rows;
}

// ---- report: one table and one plot -----------------------------------------------------------

const percentiles = (r: LoadResult) =>
  r.operations === 0 ? "- (none completed)" : `${r.p50Ms.toFixed(2)} / ${r.p99Ms.toFixed(2)} / ${r.p999Ms.toFixed(2)}`;
const generator = (r: LoadResult) => `${r.generatorCpuPercent}%${r.generatorCpuPercent >= generatorBoundPercent ? " (gen-bound)" : ""}`;
const fmtRatio = (x: number) => (!Number.isFinite(x) ? "-" : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** tally / peer: throughput for a closed loop, p99 for an open loop (there lower is better). */
export function ratio(row: Row): string {
  if (!row.peer) return "-";
  const peer = row.peer.result;
  // With nothing completed on a side there are no percentiles to compare (and 0/s says it already).
  if (row.open && (row.tally.operations === 0 || peer.operations === 0)) return "-";
  if (row.open) return `p99 ${fmtRatio(peer.p99Ms > 0 ? row.tally.p99Ms / peer.p99Ms : Number.NaN)}x`;
  return `${fmtRatio(peer.unitsPerSecond > 0 ? row.tally.unitsPerSecond / peer.unitsPerSecond : Number.NaN)}x`;
}

export interface ReportMeta {
  date: string;
  machine: string;
  loadStart: string;
  loadEnd: string;
  settings: string;
  peers: string;
}

export function markdownTable(rows: Row[], meta: ReportMeta): string {
  const lines = [
    `# tally counter API benchmark (${meta.date})`,
    "",
    `- machine: ${meta.machine}; load average ${meta.loadStart} at start, ${meta.loadEnd} at end`,
    `- settings: ${meta.settings}`,
    `- peers: ${meta.peers}`,
    "",
    "| scenario | load | tally | tally p50 / p99 / p99.9 ms | errors | generator CPU | CPU µs/op (nodes + generator) | peer | peer /s | peer p50 / p99 / p99.9 ms | tally / peer |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const row of rows) {
    const t = row.tally;
    const peer = row.peer
      ? [
          `${row.peer.system} ${row.peer.name} (${row.peer.setting})`,
          `${fmt(row.peer.result.unitsPerSecond)}${row.peer.result.errors ? ` (${fmt(row.peer.result.errors)} errors)` : ""}`,
          percentiles(row.peer.result),
        ]
      : [row.peerMissing ?? "-", "-", "-"];
    lines.push(
      `| ${row.name} | ${row.load} | ${fmt(t.unitsPerSecond)} ${row.unit} | ${percentiles(t)} | ${fmt(t.errors)} | ${generator(t)} | ${t.cpuUsPerUnit ?? "-"} | ${peer.join(" | ")} | ${ratio(row)} |`,
    );
  }
  lines.push(
    "",
    "tally / peer: throughput for closed loops (higher is better for tally); for open loops (fixed offered rate) tally's p99 over the peer's (lower is better for tally). An open loop's completed/s is over its window plus the drain of the last operations, so it falls below the offered rate when latency is long against the window.",
  );
  const errors = rows.flatMap((row) => [
    ...(row.tally.firstError ? [`tally ${row.name} (${row.load}): ${row.tally.firstError}`] : []),
    ...(row.peer?.result.firstError ? [`${row.peer.system} ${row.peer.name}: ${row.peer.result.firstError}`] : []),
  ]);
  if (errors.length) lines.push("", `first errors: ${errors.join("; ")}`);
  return `${lines.join("\n")}\n`;
}

export function writeReport(rows: Row[], meta: ReportMeta): string {
  const dir = join(here, "results");
  mkdirSync(dir, { recursive: true });
  const json = JSON.stringify({ ...meta, rows: rows.map((row) => ({ ...row, ratio: ratio(row) })) }, null, 2);
  writeFileSync(join(dir, `counter-${meta.date.replace(/[:.]/g, "-")}.json`), json);
  writeFileSync(join(dir, "latest.json"), json);
  const table = markdownTable(rows, meta);
  writeFileSync(join(dir, "latest.md"), table);
  const label = (row: Row) => `${row.name}, ${row.load}`;
  writePeersSvg(
    join(dir, "latest.svg"),
    rows
      .filter((row) => !row.open)
      .map((row) => ({
        label: label(row),
        note: row.peer ? `${ratio(row)} vs ${row.peer.system}` : "no peer",
        tally: row.tally.unitsPerSecond,
        peer: row.peer?.result.unitsPerSecond ?? 0,
        peerName: row.peer ? `${row.peer.system} ${row.peer.name}` : (row.peerMissing ?? ""),
      })),
    rows.map((row) => ({
      label: label(row),
      note: row.tally.errors ? `${fmt(row.tally.errors)} errors` : "",
      p50: row.tally.p50Ms,
      p99: row.tally.p99Ms,
      p999: row.tally.p999Ms,
    })),
    {
      throughput: "Throughput per scenario (closed loop): tally vs its peer in the same run",
      latency: "tally latency per scenario (closed loop: per operation; open loop: from intended start)",
      peer: "peer (Redis or etcd; hover a bar)",
    },
  );
  return table;
}

// ---- command line -----------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const seconds = Number(args.option("seconds", "5"));
  const warmupSeconds = Number(args.option("warmup", seconds >= 5 ? "1" : "0.5"));
  const only = args.option("only", SCENARIOS.join(",")).split(",");
  for (const name of only)
    if (!(SCENARIOS as readonly string[]).includes(name))
      throw new Error(`--only: unknown scenario ${JSON.stringify(name)} (known: ${SCENARIOS.join(", ")})`);
  const keys = Number(args.option("keys", "1000000"));
  const readKeys = Number(args.option("read-keys", seconds >= 5 ? "100000" : "10000"));
  for (const [name, value] of Object.entries({ seconds, warmup: warmupSeconds, keys, "read-keys": readKeys })) {
    if (!(value > 0) || (name.includes("keys") && !Number.isInteger(value)))
      throw new Error(`--${name} must be a positive ${name.includes("keys") ? "integer" : "number"}`);
  }
  const loadStart = loadAverage();
  const given = args.option("endpoints", "");
  const profileDir = args.option("cpu-prof", "");
  const nodeArgs = [
    ...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []),
    ...args
      .option("node-args", "")
      .split(" ")
      .filter((arg) => arg !== ""),
  ];
  let cluster: TestCluster | undefined;
  process.on("exit", () => {
    for (const node of cluster?.processes.values() ?? []) if (node.pid !== undefined && node.exitCode === null) node.kill("SIGKILL");
  });
  let peers: Peers | undefined;
  try {
    const started = Date.now();
    const since = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
    const startingPeers = args.flag("peers") ? startPeers(!args.flag("no-etcd")) : undefined;
    if (!given) ensureBundles(); // the nodes run dist/tallyd.mjs (bin/tallyd.js never builds): rebuild it if src/ is newer
    const startingCluster = given ? undefined : TestCluster.start({ nodes: 3, shards: 8, nodeArgs });
    // Both settle before either failure is thrown, so whatever did start is torn down below.
    const [peersStarted, clusterStarted] = await Promise.allSettled([startingPeers, startingCluster]);
    if (clusterStarted.status === "fulfilled") cluster = clusterStarted.value;
    if (peersStarted.status === "fulfilled") peers = peersStarted.value;
    for (const outcome of [peersStarted, clusterStarted]) if (outcome.status === "rejected") throw outcome.reason;
    const endpoints = cluster ? cluster.endpoints() : given.split(",");
    console.log(`${cluster ? "cluster" : ""}${cluster && peers ? " and " : ""}${peers ? "peers" : ""} started (${since()})`);
    // With its own cluster, the closed-loop scenarios also report CPU per op (nodes + generator).
    const pids = cluster ? [...cluster.processes.values()].map((child) => child.pid!) : [];
    const settings: BenchSettings = {
      endpoints,
      seconds,
      warmupSeconds,
      batchSeconds: seconds >= 5 ? 8 : seconds,
      keys,
      readKeys,
      only: only as ScenarioId[],
      cpuProbe: cluster ? () => procCpuSeconds(pids) : undefined,
    };
    const rows = await runCounterApiBench(settings, peers);
    const meta: ReportMeta = {
      date: new Date().toISOString(),
      machine: machineDescription(),
      loadStart,
      loadEnd: loadAverage(),
      settings: `${cluster ? "3 tallyd started here" : `cluster at ${given}`}, 8 shards, 3 replicas, fsync on; ${seconds} s per scenario after ${warmupSeconds} s warm-up (AddBatch ${settings.batchSeconds} s); concurrency or offered rate per row; generator in one process`,
      peers: peers
        ? [
            peers.redis.always
              ? `Redis ${/v=(\S+)/.exec(version("redis-server"))?.[1] ?? "?"}, appendonly yes, RDB off, one node, one connection per operation in flight`
              : peers.missing.redis,
            peers.etcdHosts
              ? `etcd ${/([\d.]+)\s*$/.exec(version("etcd"))?.[1] ?? "?"}, 3 members, default settings (WAL fsync per commit)`
              : peers.missing.etcd,
          ].join("; ")
        : "none (run with --peers)",
    };
    const table = args.flag("report") ? writeReport(rows, meta) : markdownTable(rows, meta);
    console.log(`\n${table}`);
    if (args.flag("report")) console.log("results: bench/results/latest.json, latest.md, latest.svg");
    const out = args.option("json", "");
    if (out) writeFileSync(out, JSON.stringify({ ...meta, rows }, null, 2));
  } finally {
    // A node writes its CPU profile only when it exits by itself, so stop (SIGTERM) before destroy.
    if (cluster && profileDir) for (const id of [1, 2, 3]) await cluster.stop(id).catch((error: unknown) => console.error(String(error)));
    await cluster?.destroy();
    killChildren();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main();
  process.exit(0);
}
