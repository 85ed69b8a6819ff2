/**
 * The counter kinds through a real 3-node cluster with fsync on (issue 8), one scenario per kind,
 * each side by side with its Redis equivalent run in the same process at the same concurrency
 * against one Redis 7 (appendonly yes, appendfsync everysec by default, RDB off; one connection per
 * operation in flight, so every Redis operation is one unpipelined round trip):
 *   - windowed add            ~ Redis: MULTI INCRBY key:<second> + EXPIRE 3600 (RedisTimeSeries'
 *                               TS.INCRBY is not in Debian's redis: per-second keys instead)
 *   - windowed range 60 s     ~ Redis: MGET of the 60 per-second keys, summed client-side
 *   - tryAcquire              ~ Redis: a Lua sliding-window limiter (EVALSHA: ZREMRANGEBYSCORE +
 *                               ZCARD + ZADD + PEXPIRE)
 *   - uniqueAdd 10 items      ~ Redis: PFADD key item...
 *   - uniqueCount, 3 shards   ~ Redis: PFCOUNT k1 k2 k3
 *   - add with ttlMs          ~ Redis: MULTI INCRBY + PEXPIRE
 *   - topK over 10,000 keys   ~ Redis: ZREVRANGE zset 0 9 WITHSCORES on a sorted set kept by
 *                               ZINCRBY beside the counters (write side: MULTI INCRBY + ZINCRBY)
 *   - aggregate over 10,000   ~ Redis: none (no single command; SCAN + MGET or a Lua script)
 *
 *   npx tsx bench/kinds-api.ts [--seconds 5] [--endpoints a,b,c] [--redis-fsync everysec[,always]] [--no-redis]
 *                              [--only windowed-add,windowed-range,acquire,unique-add,unique-count,ttl,topk,aggregate]
 *                              [--cpu-prof DIR]
 *
 * Without --endpoints it starts its own cluster (temp data dirs); then each tally row also reports
 * the CPU per operation of the 3 nodes plus this process (cpuUsPerUnit: it moves far less with
 * other load on a shared machine than throughput does). `--only` runs the named rows (the top-K
 * prefill runs for topk or aggregate; unique-count reads the keys unique-add wrote, so run both).
 * `--cpu-prof DIR` starts every tallyd with --cpu-prof and stops them with SIGTERM at the end so
 * the profiles are written (bench/profile-summary.ts reads them). Redis needs scripts/peers.sh
 * (Debian's redis-server); --no-redis measures tally alone. Writes bench/results/kinds-api-<stamp>.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Redis } from "ioredis";
import { ensureBundles } from "../bin/bundle.js";
import { TallyClient } from "../src/client/index.js";
import { TestCluster } from "../test/support/cluster.js";
import { closedLoop, parseArgs, procCpuSeconds, runBenchTable, type LoadResult } from "./lib.js";
import {
  killChildren,
  parseRedisFsyncs,
  redisClosedLoop,
  redisSetting,
  requireRedis,
  startRedis,
  version,
  type RedisFsync,
  type RedisPeer,
} from "./redis-peer.js";

const args = parseArgs(process.argv.slice(2));
const seconds = Number(args.option("seconds", "5"));
const withRedis = !args.flag("no-redis");
const redisFsyncs = parseRedisFsyncs("kinds-api", args.option("redis-fsync", "everysec"));
if (withRedis) requireRedis("kinds-api");
const SCENARIOS = ["windowed-add", "windowed-range", "acquire", "unique-add", "unique-count", "ttl", "topk", "aggregate"] as const;
type ScenarioId = (typeof SCENARIOS)[number];
const only = new Set(args.option("only", SCENARIOS.join(",")).split(","));
for (const name of only)
  if (!(SCENARIOS as readonly string[]).includes(name))
    throw new Error(`--only: unknown scenario ${JSON.stringify(name)} (known: ${SCENARIOS.join(", ")})`);
const selected = (id: ScenarioId) => only.has(id);
const profileDir = args.option("cpu-prof", "");

/** The sliding-window limiter a Redis user would run: the grants of the last window are a sorted set scored by time. */
const slidingWindowLua = `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count + n > limit then return 0 end
for j = 1, n do redis.call('ZADD', KEYS[1], now, ARGV[5] .. ':' .. j) end
redis.call('PEXPIRE', KEYS[1], window)
return 1
`;

type RedisOperation = (redis: Redis, worker: number, i: number) => Promise<number>;
interface Row {
  scenario: string;
  redisCommand: string;
  tally: LoadResult;
  /** Absent where Redis has no equivalent, or with --no-redis. */
  redis?: LoadResult & { fsync: RedisFsync };
}

/** The write side of top-K, timed (not part of the table): the same 10,000 counters with the same
 * deltas, as 2 batches of 5,000 (tally AddBatch; Redis one MULTI of INCRBY + ZINCRBY per counter). */
async function prefillTop(client: TallyClient, peers: RedisPeer[], notes: Record<string, number>): Promise<void> {
  let started = Date.now();
  for (let start = 0; start < 10_000; start += 5_000) {
    await client.addBatch(
      Array.from({ length: 5_000 }, (_, j) => ({ key: `top:${start + j}`, delta: BigInt(((start + j) * 7919) % 100_003) })),
    );
  }
  notes["tally topK write side: 10,000 counters as 2 AddBatch of 5,000, ms"] = Date.now() - started;
  for (const peer of peers) {
    const redis = peer.client();
    try {
      started = Date.now();
      for (let start = 0; start < 10_000; start += 5_000) {
        const multi = redis.multi();
        for (let j = start; j < start + 5_000; j++)
          multi.incrby(`top:${j}`, (j * 7919) % 100_003).zincrby("top:zset", (j * 7919) % 100_003, `top:${j}`);
        const replies = await multi.exec();
        if (!replies || replies.some(([error]) => error)) throw new Error("topK prefill: a MULTI reply with an error");
      }
      notes[`redis (${peer.fsync}) topK write side: 10,000 counters as 2 MULTI of 5,000 x (INCRBY + ZINCRBY), ms`] = Date.now() - started;
    } finally {
      redis.disconnect();
    }
  }
}

async function run(
  endpoints: string[],
  peers: RedisPeer[],
  cpuProbe: (() => number) | undefined,
): Promise<{ rows: Row[]; notes: Record<string, number> }> {
  const rows: Row[] = [];
  const notes: Record<string, number> = {};
  const client = new TallyClient({ endpoints, deadlineMs: 30_000 });
  await client.connect();
  const loop = (concurrency: number, operation: (worker: number, i: number) => Promise<number>) =>
    closedLoop({ concurrency, seconds, operation, ...(cpuProbe ? { cpuProbe } : {}) });
  /** Runs the operation on one connection per worker against each Redis in turn. */
  const onRedis = async (concurrency: number, operation: RedisOperation): Promise<Array<LoadResult & { fsync: RedisFsync }>> => {
    const results = [];
    for (const peer of peers) results.push(await redisClosedLoop(peer, { concurrency, seconds, operation }));
    return results;
  };
  /** Measures tally's side (as before), then the Redis equivalent at the same concurrency. */
  const pair = async (
    id: ScenarioId,
    scenario: string,
    redisCommand: string,
    concurrency: number,
    tallyOperation: (worker: number, i: number) => Promise<number>,
    redisOperation?: RedisOperation,
  ): Promise<void> => {
    if (!selected(id)) return;
    const tally = await loop(concurrency, tallyOperation);
    console.log(JSON.stringify({ system: "tally", scenario, ...tally }));
    const redis = redisOperation ? await onRedis(concurrency, redisOperation) : [];
    for (const r of redis) console.log(JSON.stringify({ system: "redis", scenario, redisCommand, ...r }));
    if (redis.length === 0) rows.push({ scenario, redisCommand, tally });
    for (const r of redis) rows.push({ scenario, redisCommand, tally, redis: r });
  };
  const each = async (operation: (redis: Redis) => Promise<unknown>) => {
    for (const peer of peers) {
      const redis = peer.client();
      try {
        await operation(redis);
      } finally {
        redis.disconnect();
      }
    }
  };

  const second = () => Math.floor(Date.now() / 1000);
  await pair(
    "windowed-add",
    "windowed add, 1,000 keys, 256 in flight",
    "MULTI INCRBY key:<second> + EXPIRE 3600",
    256,
    async (w, i) => (await client.addWindowed(`w${(w * 7919 + i) % 1000}`, 1n), 1),
    async (redis, w, i) => {
      const key = `w${(w * 7919 + i) % 1000}:${second()}`;
      await redis.multi().incrby(key, 1).expire(key, 3600).exec();
      return 1;
    },
  );
  const now = Date.now();
  const toMs = Math.ceil(now / 1000) * 1000;
  const lastMinute = Array.from({ length: 60 }, (_, j) => (toMs - 60_000) / 1000 + j);
  await pair(
    "windowed-range",
    "windowed range, last 60 s at 1 s steps, 16 in flight",
    "MGET of 60 per-second keys, summed client-side",
    16,
    async (w, i) => (await client.windowRange(`w${(w + i) % 1000}`, toMs - 60_000, toMs, 1000), 1),
    async (redis, w, i) => {
      const values = await redis.mget(lastMinute.map((s) => `w${(w + i) % 1000}:${s}`));
      const sum = values.reduce((total, v) => total + (v === null ? 0n : BigInt(v)), 0n);
      if (sum < 0n) throw new Error(`negative window sum ${sum}`);
      return 1;
    },
  );
  const sha: Record<number, string> = {};
  if (selected("acquire")) await each(async (redis) => (sha[redis.options.port!] = String(await redis.script("LOAD", slidingWindowLua))));
  await pair(
    "acquire",
    "tryAcquire n=1, 1,000 keys, 256 in flight",
    "EVALSHA sliding window (ZREMRANGEBYSCORE+ZCARD+ZADD+PEXPIRE)",
    256,
    async (w, i) => (await client.tryAcquire(`r${(w * 7919 + i) % 1000}`, 1, 1_000_000, 60_000), 1),
    async (redis, w, i) => {
      await redis.evalsha(sha[redis.options.port!]!, 1, `r${(w * 7919 + i) % 1000}`, Date.now(), 60_000, 1_000_000, 1, `${w}-${i}`);
      return 1;
    },
  );
  await pair(
    "unique-add",
    "uniqueAdd 10 items, 1,000 keys, 64 in flight (items/s in units)",
    "PFADD key 10 items",
    64,
    async (w, i) => (
      await client.uniqueAdd(
        `u${(w * 7919 + i) % 1000}`,
        Array.from({ length: 10 }, (_, j) => `item-${w}-${i}-${j}`),
      ),
      10
    ),
    async (redis, w, i) => (
      await redis.pfadd(`u${(w * 7919 + i) % 1000}`, ...Array.from({ length: 10 }, (_, j) => `item-${w}-${i}-${j}`)),
      10
    ),
  );
  await pair(
    "unique-count",
    "uniqueCount of 3 keys (merged across shards), 16 in flight",
    "PFCOUNT k1 k2 k3",
    16,
    async (w, i) => (await client.uniqueCount([`u${i % 1000}`, `u${(i + 1) % 1000}`, `u${(i + 2) % 1000}`]), 1),
    async (redis, w, i) => (await redis.pfcount(`u${i % 1000}`, `u${(i + 1) % 1000}`, `u${(i + 2) % 1000}`), 1),
  );
  await pair(
    "ttl",
    "add with ttlMs 60 s, 256 in flight",
    "MULTI INCRBY + PEXPIRE 60000",
    256,
    async (w, i) => (await client.add(`t${(w * 7919 + i) % 10_000}`, 1n, { ttlMs: 60_000 }), 1),
    async (redis, w, i) => {
      const key = `t${(w * 7919 + i) % 10_000}`;
      await redis.multi().incrby(key, 1).pexpire(key, 60_000).exec();
      return 1;
    },
  );
  if (selected("topk") || selected("aggregate")) await prefillTop(client, peers, notes);
  await pair(
    "topk",
    "topK k=10 over 10,000 counters (8 shards), 4 in flight",
    "ZREVRANGE zset 0 9 WITHSCORES (zset kept by ZINCRBY)",
    4,
    async () => (await client.topK("top:", 10), 1),
    async (redis) => (await redis.zrevrange("top:zset", 0, 9, "WITHSCORES"), 1),
  );
  await pair(
    "aggregate",
    "aggregate over 10,000 counters (8 shards), 4 in flight",
    "none (no single command; SCAN + MGET or Lua)",
    4,
    async () => (await client.aggregate("top:"), 1),
  );
  await client.close();
  return { rows, notes };
}

const here = dirname(fileURLToPath(import.meta.url));
const peers: RedisPeer[] = [];
let cluster: TestCluster | undefined;
process.on("exit", () => {
  for (const node of cluster?.processes.values() ?? []) if (node.pid !== undefined && node.exitCode === null) node.kill("SIGKILL");
});
try {
  for (const fsync of withRedis ? redisFsyncs : []) peers.push(await startRedis(fsync));
  const given = args.option("endpoints", "");
  if (!given) {
    ensureBundles(); // the nodes run dist/tallyd.mjs (bin/tallyd.js never builds): rebuild it if src/ is newer
    const nodeArgs = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
    cluster = await TestCluster.start({ nodes: 3, shards: 8, nodeArgs });
  }
  const pids = cluster ? [...cluster.processes.values()].map((child) => child.pid!) : [];
  const cpuProbe = cluster ? () => procCpuSeconds(pids) : undefined;
  const loadStart = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  if (withRedis) {
    console.log(
      `kinds-api: ${version("redis-server")}; ${redisFsyncs.map((f) => redisSetting(f)).join("; ")}; no RedisTimeSeries module (Debian), so windowed counters are INCRBY on per-second keys`,
    );
  }
  const ms = (r?: LoadResult) => (r ? `${r.p50Ms.toFixed(2)} / ${r.p99Ms.toFixed(2)}` : "-");
  await runBenchTable(
    cluster ? cluster.endpoints().join(",") : given,
    8,
    async (endpoints) => {
      const { rows, notes } = await run(endpoints, peers, cpuProbe);
      const date = new Date().toISOString();
      const json = {
        date,
        seconds,
        loadStart,
        loadEnd: loadavg()
          .map((l) => l.toFixed(2))
          .join(" "),
        tally: "3 tallyd, 8 shards, 3 replicas, fsync on",
        redis: withRedis
          ? { version: version("redis-server"), settings: redisFsyncs.map((f) => redisSetting(f)), timeSeriesModule: false }
          : null,
        rows: rows.map((r) => ({ ...r, ratio: r.redis && r.redis.perSecond > 0 ? r.tally.perSecond / r.redis.perSecond : null })),
        notes,
      };
      mkdirSync(join(here, "results"), { recursive: true });
      const file = `kinds-api-${date.replace(/[:.]/g, "-")}.json`;
      writeFileSync(join(here, "results", file), JSON.stringify(json, null, 2));
      for (const [note, value] of Object.entries(notes)) console.log(`${note}: ${value}`);
      console.log(`results: bench/results/${file}`);
      return rows;
    },
    [
      "scenario",
      "tally ops/s",
      "tally p50 / p99 ms",
      "tally CPU us/op",
      "Redis command",
      "Redis ops/s",
      "Redis p50 / p99 ms",
      "tally / Redis",
      "errors tally / Redis",
    ],
    (r) => [
      r.scenario,
      r.tally.perSecond,
      ms(r.tally),
      r.tally.cpuUsPerUnit === undefined ? "-" : (r.tally.cpuUsPerUnit * (r.tally.units / Math.max(1, r.tally.operations))).toFixed(0),
      r.redis ? `${r.redisCommand} (appendfsync ${r.redis.fsync})` : r.redisCommand,
      r.redis ? r.redis.perSecond : "-",
      ms(r.redis),
      r.redis && r.redis.perSecond > 0 ? `${(r.tally.perSecond / r.redis.perSecond).toFixed(2)}x` : "-",
      `${r.tally.errors} / ${r.redis ? r.redis.errors : "-"}`,
    ],
  );
} finally {
  if (cluster && profileDir) {
    // SIGTERM, so each node writes its profile; then the usual teardown.
    for (const id of [...cluster.processes.keys()]) await cluster.stop(id, 30_000).catch(() => undefined);
    console.log(`profiles: ${profileDir}`);
  }
  await cluster?.destroy();
  killChildren();
}
process.exit(0);
