/**
 * Scale and cost (issue 7): what a counter costs as their number grows, how long a big node takes
 * to come back, and what clients see when a leader dies. Three real `tallyd` processes (fsync on,
 * 8 shards, every node a replica of every shard, temporary data dirs, every process killed by PID
 * on every exit path including Ctrl-C):
 *
 *   - fill with AddBatch (10,000 increments per request, 4 in flight, keys
 *     `user:0000123456:likes`) in steps; at each step: the fill rate, each node's RSS (VmRSS) and
 *     data dir size (sum of file sizes), bytes per counter for both (whole process / whole dir, and
 *     the growth since the empty cluster), and AddBatch throughput on the existing counters;
 *   - leader kill, after the first step (each trial restarts the killed node, which takes longer
 *     the more counters it holds; an election does not): a closed loop of single adds through the
 *     client library (32 in flight, 4 per shard, auto-batching on); the leader of one shard is
 *     SIGKILLed, and the longest gap between acknowledged adds to that shard's keys (and to any
 *     shard the dead node led) and the time to its first acknowledged add started after the kill
 *     are measured; 3 times, the killed node restarted in between; then the counters must hold
 *     every acknowledged add and at most the ambiguous ones besides;
 *   - at the largest size: one node SIGKILLed and restarted alone, timed until its /readyz says
 *     200 and a STALE read through it returns the right value; then every node stopped (SIGTERM)
 *     and started again, timed until each node's /readyz says 200 and a linearizable get of a
 *     known key of every shard returns its value (a restart that fails is recorded, not fatal);
 *   - then, still at the largest size: a 4th node joins the cluster and takes a replica of one shard
 *     (ShardMove from one of its followers, as `tallyctl shard move` does), timed from its start until
 *     a STALE read through it of a known key of that shard is right (the issue's bound: 30 s for a
 *     1.25 M-counter shard, the largest size's shards at 10 M counters);
 *   - every node stopped, its LevelDB opened here, compacted (compactRange over all keys), and its
 *     size split by key kind (log, snapshots, counters, ...).
 *
 * Throughout, each node's longest event-loop stall (tally_event_loop_delay_* on its /metrics,
 * src/server/ops/event-loop.ts): this run is the nodes' only scraper, so the max since the previous
 * scrape of every scrape it makes (at the end of each fill step and phase, and just before it kills
 * or stops a node) belongs to the phase it ends. The issue's bound: no checkpoint, compaction,
 * snapshot send or install stalls the loop for more than 20 ms at 10 M counters. The metric samples
 * every 2 ms, so a stall reads up to 2 ms long.
 *
 *   npx tsx bench/scale.ts [--counters 1000000,2000000,5000000,10000000] [--quick]
 *       [--seconds 5] [--trials 3] [--fill-inflight 4]
 *
 * `--stall-probe DIR` finds what held a node's loop: every tallyd runs with --cpu-prof into DIR and
 * bench/stall-probe.mjs preloaded, which keeps each span of more than 12 ms on a CPU; at the end
 * bench/stall-spans.ts prints, per span, what the profile sampled inside it (a node stopped with
 * SIGKILL leaves neither file: its restart's files are there). Profiling slows the nodes a little.
 *
 * `--quick` is --counters 100000,200000 --seconds 3. Results: a markdown table on stdout,
 * bench/results/scale-<stamp>.json and bench/results/scale-latest.md.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { getHeapStatistics } from "node:v8";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Level } from "level";
import { TallyClient } from "../src/client/index.js";
import { slotOf } from "../src/meta/slots.js";
import { KeyPrefix } from "../src/storage/keys.js";
import { ensureBundles } from "../bin/bundle.js";
import { TestCluster } from "../test/support/cluster.js";
import { stallSpans } from "./stall-spans.js";
import { RawNodeClient, leaderClient } from "../test/support/raw-client.js";
import {
  closedLoop,
  directoryBytes,
  loadAverage,
  longestGapMs,
  mallocDescription,
  parseArgs,
  procCpuSeconds,
  processRssBytes,
  type LoadResult,
} from "./lib.js";

const args = parseArgs(process.argv.slice(2));
const quick = args.flag("quick");
const steps = args
  .option("counters", quick ? "100000,200000" : "1000000,2000000,5000000,10000000")
  .split(",")
  .map((text) => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`--counters: ${JSON.stringify(text)} is not a positive integer`);
    return n;
  });
for (let i = 1; i < steps.length; i++) if (steps[i]! <= steps[i - 1]!) throw new Error("--counters must be increasing");
const measureSeconds = Number(args.option("seconds", quick ? "3" : "5"));
const trials = Number(args.option("trials", "3"));
const fillInflight = Number(args.option("fill-inflight", "4"));
/** Extra tallyd flags, space-separated (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"), for diagnosis. */
const stallProbeDir = args.option("stall-probe", "");
const nodeArgs = [
  ...args
    .option("node-args", "")
    .split(" ")
    .filter((a) => a !== ""),
  ...(stallProbeDir === ""
    ? []
    : [
        `--import=${join(dirname(fileURLToPath(import.meta.url)), "stall-probe.mjs")}`,
        "--cpu-prof",
        `--cpu-prof-dir=${resolve(stallProbeDir)}`,
      ]),
];
const SHARDS = 8;
const NODES = [1, 2, 3];
const BATCH_OPS = 10_000;
const KILL_LOOP_WORKERS_PER_SHARD = 4;
const KILL_LOOP_KEYS_PER_SHARD = 16;
/** Bounds on every wait: a run that cannot proceed stops and says where. */
const SERVE_TIMEOUT_MS = 300_000;
/** A restart with millions of counters reads them all from LevelDB first. */
const RESTART_TIMEOUT_MS = 480_000;
const STOP_TIMEOUT_MS = 120_000;

const counterKey = (i: number) => `user:${String(i).padStart(10, "0")}:likes`;
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length % 2 === 1 ? sorted[sorted.length >> 1]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
};
const round = (x: number, digits = 1) => Number(x.toFixed(digits));

/**
 * Each node's longest event-loop stall, in ms: per phase (since the last take()) and over the whole
 * run. Every scrape of a node's /metrics feeds it (nodeMetrics()). Beside each, the longest time the
 * loop's thread ran on a CPU between two 2 ms ticks (tally_event_loop_on_cpu_max_seconds): a stall
 * much longer than that was the thread waiting for a core, not work holding the loop.
 */
class StallTracker {
  private phase = new Map<number, number>();
  private phaseOnCpu = new Map<number, number>();
  private readonly run = new Map<number, number>();
  private readonly runOnCpu = new Map<number, number>();
  /** The on-CPU record of each record take() returned (stallCells shows both). */
  readonly onCpuOf = new WeakMap<Record<number, number>, Record<number, number>>();

  /** One scrape's tally_event_loop_delay_* and tally_event_loop_on_cpu_* of node `id`, in seconds. */
  note(
    id: number,
    recentMaxSeconds: number | undefined,
    sinceStartMaxSeconds: number | undefined,
    onCpu: { recent?: number; start?: number } = {},
  ): void {
    raise(this.phase, id, recentMaxSeconds);
    // The since-start max may come from an earlier phase of the same process: the whole run only.
    raise(this.run, id, Math.max(recentMaxSeconds ?? 0, sinceStartMaxSeconds ?? 0));
    raise(this.phaseOnCpu, id, onCpu.recent);
    raise(this.runOnCpu, id, Math.max(onCpu.recent ?? 0, onCpu.start ?? 0) || undefined);
  }

  /** Scrapes the running nodes of `ids` (a node that no longer answers is skipped). */
  async scrape(ids: number[]): Promise<void> {
    const scraped = ids.filter((id) => cluster!.processes.has(id));
    if (scraped.length < ids.length)
      console.error(`stalls: not scraping node(s) ${ids.filter((id) => !scraped.includes(id)).join(", ")}: not running`);
    await Promise.all(
      scraped.map((id) =>
        nodeMetrics(id).catch((error: unknown) => console.error(`stalls: scrape of node ${id} failed: ${(error as Error).message}`)),
      ),
    );
  }

  /** Scrapes `ids`, then returns and forgets the phase's longest stall per node (ms). */
  async take(ids: number[]): Promise<Record<number, number>> {
    await this.scrape(ids);
    const out = sorted(this.phase);
    this.onCpuOf.set(out, sorted(this.phaseOnCpu));
    this.phase = new Map();
    this.phaseOnCpu = new Map();
    return out;
  }

  /** Scrapes node `id`, then returns and forgets its phase's longest stall (ms); the other nodes' phase goes on. */
  async takeOne(id: number): Promise<number | undefined> {
    await this.scrape([id]);
    const ms = this.phase.get(id);
    this.phase.delete(id);
    this.phaseOnCpu.delete(id);
    return ms;
  }

  /** The longest stall per node over the whole run (ms). */
  wholeRun(): Record<number, number> {
    const out = sorted(this.run);
    this.onCpuOf.set(out, sorted(this.runOnCpu));
    return out;
  }

  /** The longest on-CPU span per node over the whole run (ms). */
  wholeRunOnCpu(): Record<number, number> {
    return sorted(this.runOnCpu);
  }
}

function raise(map: Map<number, number>, id: number, seconds: number | undefined): void {
  if (seconds !== undefined && Number.isFinite(seconds)) map.set(id, Math.max(map.get(id) ?? 0, round(seconds * 1000)));
}

function sorted(map: Map<number, number>): Record<number, number> {
  return Object.fromEntries([...map].sort(([a], [b]) => a - b));
}

const stalls = new StallTracker();

/**
 * "n1 / n2 / n3" of a per-node stall record (a node without a scrape in the phase shows "-"), each
 * with its longest on-CPU span in parentheses when the nodes export it.
 */
const stallCells = (byNode: Record<number, number> | undefined, nodes: number[]) => {
  const onCpu = byNode === undefined ? undefined : stalls.onCpuOf.get(byNode);
  const cell = (id: number) => {
    if (byNode?.[id] === undefined) return "-";
    return onCpu?.[id] === undefined ? String(byNode[id]) : `${byNode[id]} (cpu ${onCpu[id]})`;
  };
  return nodes.map(cell).join(" / ");
};

interface NodeCost {
  node: number;
  rssBytes: number;
  diskBytes: number;
  /** From the node's /metrics (prom-client's default Node.js metrics): where the RSS is. */
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
}

interface StepResult {
  counters: number;
  fillSeconds: number;
  fillIncrementsPerSecond: number;
  fillErrors: number;
  existing: LoadResult;
  nodes: NodeCost[];
  rssBytesPerCounterMedian: number;
  rssGrowthBytesPerCounterMedian: number;
  diskBytesPerCounterMedian: number;
  diskGrowthBytesPerCounterMedian: number;
  logLastIndexSum: number;
  loadAverage: string;
  /** Per node: the longest event-loop stall during this step's fill and AddBatch measurement (ms). */
  longestStallMs: Record<number, number>;
}

interface KillTrial {
  shard: number;
  killedNode: number;
  shardsLedByKilledNode: number[];
  firstSuccessMs: number;
  maxGapMs: number;
  worstGapOtherShardsLedMs: number;
  maxGapUnaffectedShardsMs: number;
  restartReadyMs: number;
  /**
   * From the restart until the node applied, on every shard, what the others had committed when it
   * became ready: the next trial kills another node only then, so it measures one failure, not a
   * second one while the first node still catches up (two of three down is no quorum).
   */
  restartCaughtUpMs: number;
  /** Per shard the dead node led: ms from the kill until a live node reported itself its leader. */
  newLeaderMsByShard: Record<number, number>;
  /** Per node: the longest event-loop stall from the trial's start until the restarted node caught up (ms). */
  longestStallMs: Record<number, number>;
}

let cluster: TestCluster | undefined;
let interrupted = false;
process.once("SIGINT", () => {
  interrupted = true;
  console.error("SIGINT: killing the cluster");
  void (cluster?.destroy() ?? Promise.resolve()).finally(() => process.exit(130));
});

function checkNotInterrupted(): void {
  if (interrupted) throw new Error("interrupted");
}

/** A node this run started has exited: no point waiting for it. */
class NodeExitedError extends Error {}

/** How each node last exited (code or signal), for the error when one dies by itself. */
const exits = new Map<number, string>();

function startNode(id: number): void {
  exits.delete(id);
  cluster!.startNode(id).once("exit", (code, signal) => exits.set(id, signal ?? `code ${code}`));
}

/** A phase that failed, recorded in the results instead of ending the run. */
function failedPhase(error: unknown): { error: string } {
  console.error(`phase failed: ${(error as Error).message}`);
  return { error: (error as Error).message };
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, pollMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    checkNotInterrupted();
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof NodeExitedError) throw error;
      lastError = error;
    }
    await sleep(pollMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ""}`);
}

function pidOf(id: number): number {
  const pid = cluster!.processes.get(id)?.pid;
  if (pid === undefined) throw new Error(`node ${id} is not running`);
  return pid;
}

async function nodeCosts(): Promise<NodeCost[]> {
  return Promise.all(
    NODES.map(async (node) => {
      const metrics = await nodeMetrics(node);
      return {
        node,
        rssBytes: processRssBytes(pidOf(node)),
        diskBytes: directoryBytes(dataDir(node)),
        heapUsedBytes: metrics.get("nodejs_heap_size_used_bytes") ?? Number.NaN,
        heapTotalBytes: metrics.get("nodejs_heap_size_total_bytes") ?? Number.NaN,
        externalBytes: metrics.get("nodejs_external_memory_bytes") ?? Number.NaN,
      };
    }),
  );
}

/**
 * A node's /metrics samples by name (labels dropped: every sample used here has only the node label),
 * and the event-loop stall series noted in `stalls`.
 */
async function nodeMetrics(id: number): Promise<Map<string, number>> {
  const response = await fetch(`${cluster!.opsUrl(id)}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const samples = new Map<string, number>();
  let recentMax: number | undefined;
  const onCpu: { recent?: number; start?: number } = {};
  for (const match of (await response.text()).matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/gm)) {
    samples.set(match[1]!, Number(match[3]));
    if (match[1] === "tally_event_loop_delay_recent_seconds" && match[2]?.includes('quantile="1"')) recentMax = Number(match[3]);
    if (match[1] === "tally_event_loop_on_cpu_max_seconds")
      onCpu[match[2]?.includes('window="recent"') ? "recent" : "start"] = Number(match[3]);
  }
  stalls.note(id, recentMax, samples.get("tally_event_loop_delay_max_seconds"), onCpu);
  return samples;
}

/** MemAvailable from /proc/meminfo, in bytes. */
function availableMemoryBytes(): number {
  const match = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"));
  if (match === null) throw new Error("no MemAvailable in /proc/meminfo");
  return Number(match[1]) * 1024;
}

/**
 * Why the run should stop before filling to `target`, if it should: the three nodes' RSS,
 * extrapolated linearly from their growth per counter so far, would not fit in 85% of the memory
 * they have plus what is still available.
 */
function memoryCap(costs: NodeCost[], baseline: NodeCost[], counters: number, target: number): string | undefined {
  const used = costs.reduce((sum, c) => sum + c.rssBytes, 0);
  const projected = costs.reduce(
    (sum, c, i) => sum + baseline[i]!.rssBytes + ((c.rssBytes - baseline[i]!.rssBytes) / counters) * target,
    0,
  );
  const budget = 0.85 * (used + availableMemoryBytes());
  // tallyd runs with node's default heap limit, the same as this process's on this machine.
  const heapLimit = getHeapStatistics().heap_size_limit;
  const heapProjected = Math.max(
    ...costs.map((c, i) => baseline[i]!.heapUsedBytes + ((c.heapUsedBytes - baseline[i]!.heapUsedBytes) / counters) * target),
  );
  if (heapProjected > 0.9 * heapLimit) {
    return `capped at ${counters.toLocaleString("en-US")} counters: a node's V8 heap in use, extrapolated to ${target.toLocaleString("en-US")}, would be ${mb(heapProjected)} MB, over 90% of node's default heap limit (${mb(heapLimit)} MB), where tallyd would die`;
  }
  if (projected <= budget) return undefined;
  return `capped at ${counters.toLocaleString("en-US")} counters: the nodes' RSS, extrapolated to ${target.toLocaleString("en-US")}, would be ${mb(projected)} MB, over 85% of the ${mb(used + availableMemoryBytes())} MB they could have`;
}

/** Throws, naming the node and its last output, when a tallyd this run started has exited. */
function checkNodesAlive(expected: number[]): void {
  for (const id of expected) {
    if (!cluster!.processes.has(id)) throw new Error(`node ${id} exited by itself; its last output:\n${cluster!.logs(id).slice(-3000)}`);
  }
}

function dataDir(id: number): string {
  return cluster!.config.nodes.find((n) => n.id === id)!.dataDir;
}

async function ready(id: number): Promise<boolean> {
  if (!cluster!.processes.has(id))
    throw new NodeExitedError(`node ${id} exited (${exits.get(id) ?? "?"}); its last output:\n${cluster!.logs(id).slice(-3000)}`);
  const response = await fetch(`${cluster!.opsUrl(id)}/readyz`, { signal: AbortSignal.timeout(1000) });
  await response.text();
  return response.status === 200;
}

async function logLastIndexSum(client: TallyClient): Promise<number> {
  const status = await client.status({ deadlineMs: 10_000 });
  return status.nodes[0]!.groups.reduce((sum, g) => sum + Number(g.lastIndex), 0);
}

/** Adds 1 to counters [from, to) with AddBatch, `fillInflight` requests in flight. */
async function fill(client: TallyClient, from: number, to: number): Promise<{ seconds: number; errors: number }> {
  let next = from;
  let errors = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: fillInflight }, async () => {
      while (next < to) {
        checkNotInterrupted();
        const first = next;
        next = Math.min(to, next + BATCH_OPS);
        const ops = [];
        for (let i = first; i < next; i++) ops.push({ key: counterKey(i), delta: 1n });
        // A failed or ambiguous batch is sent again as a new request: the counters must exist; an
        // ambiguous first attempt may leave some of them at 2, which this benchmark does not read.
        for (let attempt = 1; ; attempt++) {
          try {
            await client.addBatch(ops, { deadlineMs: 60_000 });
            break;
          } catch (error) {
            errors++;
            if (attempt >= 5) throw new Error(`fill of counters ${first}..${next - 1} failed 5 times: ${(error as Error).message}`);
          }
        }
      }
    }),
  );
  return { seconds: (performance.now() - start) / 1000, errors };
}

/** AddBatch of existing counters (a stride over [0, counters) that visits each once per cycle). */
async function existingThroughput(client: TallyClient, counters: number): Promise<LoadResult> {
  let cursor = 0;
  const stride = 1_000_003; // prime, and above every count here, so i * stride mod counters permutes
  const pids = NODES.map(pidOf);
  return closedLoop({
    concurrency: fillInflight,
    seconds: measureSeconds,
    cpuProbe: () => procCpuSeconds(pids),
    operation: async () => {
      const ops = [];
      for (let i = 0; i < BATCH_OPS; i++) ops.push({ key: counterKey((cursor++ * stride) % counters), delta: 1n });
      await client.addBatch(ops, { deadlineMs: 60_000 });
      return ops.length;
    },
  });
}

/** `perShard` keys `prefix:<n>` in each shard's slot range, from the client's routing map. */
async function keysPerShard(client: TallyClient, prefix: string, perShard: number): Promise<Map<number, string[]>> {
  const routes = await client.routes();
  const keys = new Map<number, string[]>(routes.shards.map((s) => [s.shardId, []]));
  const encoder = new TextEncoder();
  for (let n = 0; [...keys.values()].some((list) => list.length < perShard); n++) {
    const key = `${prefix}:${n}`;
    const slot = slotOf(encoder.encode(key));
    const shard = routes.shards.find((s) => slot >= s.slotStart && slot < s.slotEnd)!;
    const list = keys.get(shard.shardId)!;
    if (list.length < perShard) list.push(key);
  }
  return keys;
}

async function shardLeaders(): Promise<Map<number, number>> {
  const leaders = new Map<number, number>();
  const live = cluster!.config.nodes.filter((n) => cluster!.processes.has(n.id));
  for (let shard = 1; shard <= SHARDS; shard++) {
    const leader = await leaderClient(
      live.map((n) => n.client),
      shard,
    );
    leaders.set(shard, live.find((n) => n.client === leader.address)!.id);
    leader.close();
  }
  return leaders;
}

/**
 * The full restart: SIGTERM every node, start them all, and time until each node's /readyz is 200
 * and a linearizable get of `probes` (one known key per shard) returns its value on every shard.
 */
async function fullRestart(probes: Map<number, { key: string; value: bigint }>) {
  await stalls.take(NODES); // the stalls before the stop belong to the phase before
  const stopStart = performance.now();
  const exitCodes = await Promise.all(NODES.map((id) => cluster!.stop(id, STOP_TIMEOUT_MS)));
  const stopSeconds = (performance.now() - stopStart) / 1000;
  const diskAfterStop = NODES.map((id) => directoryBytes(dataDir(id)));
  const start = performance.now();
  for (const id of NODES) startNode(id);
  const readyMs = await Promise.all(
    NODES.map((id) =>
      until(`node ${id} /readyz`, RESTART_TIMEOUT_MS, async () => ((await ready(id)) ? performance.now() - start : undefined)),
    ),
  );
  const client = new TallyClient({ endpoints: cluster!.endpoints(), deadlineMs: 2000, attemptTimeoutMs: 1000 });
  try {
    const servingMs = await until("every shard serving its known key", RESTART_TIMEOUT_MS, async () => {
      const reads = await Promise.all([...probes.values()].map((p) => client.get(p.key, { deadlineMs: 2000 })));
      [...probes.values()].forEach((p, i) => {
        if (reads[i]!.value !== p.value) throw new Error(`after restart ${p.key} reads ${reads[i]!.value}, expected ${p.value}`);
      });
      return performance.now() - start;
    });
    return {
      stopSeconds: round(stopSeconds, 2),
      exitCodes,
      diskAfterStop,
      readyMs: readyMs.map((ms) => round(ms, 0)),
      servingMs: round(servingMs, 0),
      rssAfterRestart: NODES.map((id) => processRssBytes(pidOf(id))),
      longestStallMs: await stalls.take(NODES),
    };
  } finally {
    await client.close();
  }
}

/** SIGKILL one node, start it alone, time until its /readyz is 200 and a STALE read through it is right. */
async function singleNodeRestart(id: number, probe: { key: string; value: bigint; shard: number }) {
  await stalls.take(NODES); // before the phase: its own stalls start here
  await cluster!.kill(id);
  const start = performance.now();
  startNode(id);
  const readyMs = await until(`node ${id} /readyz`, RESTART_TIMEOUT_MS, async () =>
    (await ready(id)) ? performance.now() - start : undefined,
  );
  const node = new RawNodeClient(cluster!.config.nodes.find((n) => n.id === id)!.client);
  try {
    const readMs = await until(`a STALE read through node ${id}`, SERVE_TIMEOUT_MS, async () => {
      const read = await node.call("get", { key: Buffer.from(probe.key), consistency: "STALE", shardId: probe.shard }, 1000);
      if (BigInt(read.value) !== probe.value)
        throw new Error(`STALE read of ${probe.key} through node ${id} gave ${read.value}, expected ${probe.value}`);
      return performance.now() - start;
    });
    return { node: id, readyMs: round(readyMs, 0), staleReadMs: round(readMs, 0), longestStallMs: await stalls.take(NODES) };
  } finally {
    node.close();
  }
}

/**
 * A new replica: a 4th node joins the cluster (added to cluster.yaml and started; it joins the map
 * with its first heartbeat) and a replica of `probe.shard` moves to it from one of the shard's
 * followers (ShardMove, what `tallyctl shard move` sends). Timed from the node's start until a STALE
 * read through it of the shard's known key is right, and from the move's acceptance; the longest
 * event-loop stall of every node meanwhile (the leader builds and sends a snapshot, the new node
 * installs it).
 */
async function newReplicaJoin(probe: { key: string; value: bigint; shard: number }, filled: number) {
  await stalls.take(NODES); // the stalls before the join belong to the phase before
  const id = await cluster!.addNode("z4");
  joinedNode = id;
  const client = new TallyClient({
    endpoints: NODES.map((n) => cluster!.config.nodes.find((c) => c.id === n)!.client),
    deadlineMs: 10_000,
  });
  const node = new RawNodeClient(cluster!.config.nodes.find((n) => n.id === id)!.client);
  try {
    const leader = (await client.routes()).shards.find((s) => s.shardId === probe.shard)!.leaderId;
    const from = NODES.map(String).find((n) => n !== leader)!;
    const start = performance.now();
    startNode(id);
    // Accepted once the metadata leader has the node in its map (its first heartbeat).
    await until(
      `node ${id} accepted as the target of a move of shard ${probe.shard}`,
      SERVE_TIMEOUT_MS,
      async () => {
        await client.admin("ShardMove", { shardId: probe.shard, fromNode: from, toNode: String(id) }, { deadlineMs: 5000 });
        return true;
      },
      250,
    );
    const moveAcceptedMs = performance.now() - start;
    // The new node's start-up (opening its store, joining the map) apart from receiving the shard.
    const newNodeStartupStallMs = await stalls.takeOne(id);
    const staleReadMs = await until(`a STALE read of shard ${probe.shard} through the new node ${id}`, SERVE_TIMEOUT_MS, async () => {
      if (!cluster!.processes.has(id))
        throw new NodeExitedError(`node ${id} exited (${exits.get(id) ?? "?"}); its last output:\n${cluster!.logs(id).slice(-3000)}`);
      const read = await node.call("get", { key: Buffer.from(probe.key), consistency: "STALE", shardId: probe.shard }, 1000);
      if (BigInt(read.value) !== probe.value)
        throw new Error(`STALE read of ${probe.key} through node ${id} gave ${read.value}, expected ${probe.value}`);
      return performance.now() - start;
    });
    // Scraped before counting: the count holds this process for seconds, long enough for the nodes
    // to close the idle keep-alive connections the scrape would then reuse ("fetch failed").
    const longestStallMs = await stalls.take([...NODES, id]);
    const counters = await shardCounters(client, probe.shard, filled);
    return {
      node: id,
      shard: probe.shard,
      movedFrom: Number(from),
      shardCounters: counters,
      moveAcceptedMs: round(moveAcceptedMs, 0),
      staleReadMs: round(staleReadMs, 0),
      staleReadAfterMoveMs: round(staleReadMs - moveAcceptedMs, 0),
      newNodeStartupStallMs,
      longestStallMs,
    };
  } finally {
    node.close();
    await client.close();
  }
}

/** How many of the filled counters (keys [0, filled)) live in `shard`, by the client's routing map. */
async function shardCounters(client: TallyClient, shard: number, filled: number): Promise<number> {
  const route = (await client.routes()).shards.find((s) => s.shardId === shard)!;
  const encoder = new TextEncoder();
  let n = 0;
  for (let i = 0; i < filled; i++) {
    const slot = slotOf(encoder.encode(counterKey(i)));
    if (slot >= route.slotStart && slot < route.slotEnd) n++;
  }
  return n;
}

/** The 4th node newReplicaJoin() started, if it did. */
let joinedNode: number | undefined;

/** The closed loop of single adds the leader-kill trials run under, with per-key accounting. */
class AddLoop {
  /** Per shard: start and acknowledgement times (performance.now()) of acknowledged adds. */
  readonly acks = new Map<number, Array<[number, number]>>();
  readonly acked = new Map<string, number>();
  readonly ambiguous = new Map<string, number>();
  failed = 0;
  firstFailure: string | undefined;
  private running = true;
  private readonly workers: Promise<void>[] = [];

  constructor(client: TallyClient, keys: Map<number, string[]>) {
    for (const [shard, list] of keys) {
      this.acks.set(shard, []);
      for (let w = 0; w < KILL_LOOP_WORKERS_PER_SHARD; w++) {
        this.workers.push(
          (async () => {
            for (let i = w; this.running; i++) {
              const key = list[i % list.length]!;
              const started = performance.now();
              try {
                await client.add(key, 1n, { deadlineMs: 30_000 });
                this.acks.get(shard)!.push([started, performance.now()]);
                this.acked.set(key, (this.acked.get(key) ?? 0) + 1);
              } catch (error) {
                if ((error as { code?: string }).code === "AMBIGUOUS") this.ambiguous.set(key, (this.ambiguous.get(key) ?? 0) + 1);
                else {
                  this.failed++;
                  this.firstFailure ??= (error as Error).message;
                  await sleep(10);
                }
              }
            }
          })(),
        );
      }
    }
  }

  /** Longest time in [from, to] without an acknowledgement on `shard` (the window's edges count). */
  maxGapMs(shard: number, from: number, to: number): number {
    return longestGapMs(
      this.acks.get(shard)!.map(([, acked]) => acked),
      from,
      to,
    );
  }

  /** The first acknowledgement on `shard` of an add started at or after `at`. */
  firstAckStartedAfter(shard: number, at: number): number | undefined {
    let first: number | undefined;
    for (const [started, acked] of this.acks.get(shard)!) if (started >= at && (first === undefined || acked < first)) first = acked;
    return first;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }
}

async function leaderKillTrial(loop: AddLoop, shard: number): Promise<KillTrial> {
  const leaders = await shardLeaders();
  const killedNode = leaders.get(shard)!;
  const shardsLed = [...leaders].filter(([, node]) => node === killedNode).map(([s]) => s);
  // Its last stalls before it dies (the phase's for the others are taken at the trial's end).
  await stalls.scrape([killedNode]);
  const killedAt = performance.now();
  await cluster!.kill(killedNode);
  const elected = await electionTimes(shardsLed, killedAt);
  const firstAck = await until(`an add acknowledged on shard ${shard} after its leader died`, SERVE_TIMEOUT_MS, async () =>
    loop.firstAckStartedAfter(shard, killedAt),
  );
  // Every shard the dead node led must be back too before the window closes.
  for (const s of shardsLed)
    await until(`an add acknowledged on shard ${s}`, SERVE_TIMEOUT_MS, async () => loop.firstAckStartedAfter(s, killedAt));
  await sleep(1000);
  const windowEnd = performance.now();
  const from = killedAt - 1000;
  const otherLed = shardsLed.filter((s) => s !== shard);
  const unaffected = [...leaders.keys()].filter((s) => !shardsLed.includes(s));
  const restartStart = performance.now();
  startNode(killedNode);
  const restartReadyMs = await until(`node ${killedNode} /readyz after restart`, RESTART_TIMEOUT_MS, async () =>
    (await ready(killedNode)) ? performance.now() - restartStart : undefined,
  );
  const targets = await groupIndexes(
    cluster!.config.nodes.filter((n) => n.id !== killedNode).map((n) => n.id),
    "commit",
  );
  const restartCaughtUpMs = await until(
    `node ${killedNode} caught up after restart`,
    RESTART_TIMEOUT_MS,
    async () => {
      const applied = await groupIndexes([killedNode], "applied");
      return [...targets].every(([group, commit]) => (applied.get(group) ?? 0) >= commit) ? performance.now() - restartStart : undefined;
    },
    250,
  );
  await sleep(1000);
  return {
    shard,
    killedNode,
    shardsLedByKilledNode: shardsLed,
    firstSuccessMs: round(firstAck - killedAt),
    maxGapMs: round(loop.maxGapMs(shard, from, windowEnd)),
    worstGapOtherShardsLedMs: round(Math.max(0, ...otherLed.map((s) => loop.maxGapMs(s, from, windowEnd)))),
    maxGapUnaffectedShardsMs: round(Math.max(0, ...unaffected.map((s) => loop.maxGapMs(s, from, windowEnd)))),
    restartReadyMs: round(restartReadyMs, 0),
    restartCaughtUpMs: round(restartCaughtUpMs, 0),
    newLeaderMsByShard: Object.fromEntries([...elected].map(([s, ms]) => [s, round(ms)])),
    longestStallMs: await stalls.take(NODES),
  };
}

/** Per group (shards and the metadata group), the highest commit or applied index the given nodes report. */
async function groupIndexes(nodeIds: number[], field: "commit" | "applied"): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const id of nodeIds) {
    const node = new RawNodeClient(cluster!.config.nodes.find((n) => n.id === id)!.client);
    try {
      const status = await node.call("status", { localOnly: true }, 5000).catch(() => undefined);
      for (const group of status?.nodes?.[0]?.groups ?? [])
        out.set(group.groupId, Math.max(out.get(group.groupId) ?? 0, Number(group[field])));
    } finally {
      node.close();
    }
  }
  return out;
}

/** Time from `since` until a live node reports itself leader of each of `shards` (status polled every 20 ms). */
async function electionTimes(shards: number[], since: number): Promise<Map<number, number>> {
  const live = cluster!.config.nodes.filter((n) => cluster!.processes.has(n.id)).map((n) => new RawNodeClient(n.client));
  const elected = new Map<number, number>();
  try {
    await until(
      `new leaders for shards ${shards.join(", ")}`,
      SERVE_TIMEOUT_MS,
      async () => {
        const statuses = await Promise.all(live.map((node) => node.call("status", { localOnly: true }, 1000).catch(() => undefined)));
        const now = performance.now();
        for (const status of statuses) {
          for (const group of status?.nodes[0]?.groups ?? []) {
            if (shards.includes(group.groupId) && group.role === "leader" && !elected.has(group.groupId))
              elected.set(group.groupId, now - since);
          }
        }
        return elected.size === shards.length ? true : undefined;
      },
      20,
    );
  } finally {
    for (const node of live) node.close();
  }
  return elected;
}

/** Opens each stopped node's LevelDB, compacts it, and splits its size by key kind. */
async function inspectStores() {
  const kinds: Array<[string, number]> = [
    ["log", KeyPrefix.log],
    ["snapshot chunks", KeyPrefix.snapshotChunk],
    ["counters", KeyPrefix.counter],
    ["sessions", KeyPrefix.session],
    ["kinds", KeyPrefix.kind],
    ["meta group state", KeyPrefix.meta],
  ];
  const results = [];
  for (const id of NODES) {
    const dir = dataDir(id);
    const before = directoryBytes(dir);
    const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
    // In Node, `level` is classic-level, which has these two (its browser twin does not, so the
    // type of Level leaves them out).
    const native = db as unknown as {
      compactRange(start: Uint8Array, end: Uint8Array): Promise<void>;
      approximateSize(start: Uint8Array, end: Uint8Array): Promise<number>;
    };
    await db.open({ createIfMissing: false });
    try {
      let logEntries = 0;
      for await (const _ of db.keys({ gte: Uint8Array.of(KeyPrefix.log), lt: Uint8Array.of(KeyPrefix.log + 1) })) logEntries++;
      let snapshotChunkBytes = 0;
      for await (const value of db.values({ gte: Uint8Array.of(KeyPrefix.snapshotChunk), lt: Uint8Array.of(KeyPrefix.snapshotChunk + 1) }))
        snapshotChunkBytes += value.length;
      let snapshots = 0;
      for await (const _ of db.keys({ gte: Uint8Array.of(KeyPrefix.snapshotMeta), lt: Uint8Array.of(KeyPrefix.snapshotMeta + 1) }))
        snapshots++;
      const compactStart = performance.now();
      await native.compactRange(Uint8Array.of(0), Uint8Array.of(0xff));
      const compactSeconds = (performance.now() - compactStart) / 1000;
      const split: Record<string, number> = {};
      for (const [name, prefix] of kinds) split[name] = await native.approximateSize(Uint8Array.of(prefix), Uint8Array.of(prefix + 1));
      await db.close();
      results.push({
        node: id,
        diskBytesBefore: before,
        diskBytesAfterCompaction: directoryBytes(dir),
        compactSeconds: round(compactSeconds, 1),
        logEntries,
        snapshots,
        snapshotDataBytes: snapshotChunkBytes,
        compactedBytesByKind: split,
      });
    } finally {
      if (db.status === "open") await db.close();
    }
  }
  return results;
}

/** The leader-kill trials under a closed loop of single adds, and the accounting of those adds after them. */
async function leaderKills() {
  console.log("leader kills under a closed loop of single adds...");
  const loopClient = new TallyClient({ endpoints: cluster!.endpoints(), deadlineMs: 30_000 });
  await loopClient.connect();
  const loopKeys = await keysPerShard(loopClient, "kill", KILL_LOOP_KEYS_PER_SHARD);
  const loop = new AddLoop(loopClient, loopKeys);
  const kills: KillTrial[] = [];
  let accounting;
  try {
    await sleep(2000);
    await stalls.take(NODES); // the loop's start belongs to no trial
    for (let t = 0; t < trials; t++) {
      const trial = await leaderKillTrial(loop, (t % SHARDS) + 1);
      kills.push(trial);
      console.log(JSON.stringify(trial));
    }
  } finally {
    await loop.stop();
    const keys = [...loopKeys.values()].flat();
    const reads = await loopClient.getMany(keys, { deadlineMs: 30_000 });
    const sum = reads.reduce((s, r) => s + r.value, 0n);
    const acked = [...loop.acked.values()].reduce((s, n) => s + n, 0);
    const ambiguous = [...loop.ambiguous.values()].reduce((s, n) => s + n, 0);
    const badKeys = keys.filter((key, i) => {
      const value = Number(reads[i]!.value);
      const low = loop.acked.get(key) ?? 0;
      return value < low || value > low + (loop.ambiguous.get(key) ?? 0);
    });
    accounting = {
      sum: Number(sum),
      acked,
      ambiguous,
      failed: loop.failed,
      firstFailure: loop.firstFailure,
      badKeys,
      ok: badKeys.length === 0,
    };
    console.log(JSON.stringify(accounting));
    await loopClient.close();
  }
  return { kills, accounting };
}

async function main(): Promise<void> {
  const started = new Date();
  const loadStart = loadAverage();
  console.log(
    `scale: steps ${steps.join(", ")}; ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; load average ${loadStart}`,
  );
  ensureBundles(); // the nodes run dist/tallyd.mjs (bin/tallyd.js never builds): rebuild it if src/ is newer
  if (stallProbeDir !== "") mkdirSync(stallProbeDir, { recursive: true });
  const extraEnv = stallProbeDir === "" ? undefined : { STALL_DIR: resolve(stallProbeDir) };
  cluster = await TestCluster.start({ nodes: 3, shards: SHARDS, metrics: true, nodeArgs, extraEnv });
  for (const [id, child] of cluster.processes) child.once("exit", (code, signal) => exits.set(id, signal ?? `code ${code}`));
  const client = new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 60_000 });
  await client.connect();
  await sleep(1000);
  const baseline = await nodeCosts();
  // The nodes' start-up and the empty cluster's first second belong to no step.
  const startupStallMs = await stalls.take(NODES);
  console.log(
    `empty cluster: RSS ${baseline.map((c) => mb(c.rssBytes)).join(" / ")} MB, disk ${baseline.map((c) => mb(c.diskBytes)).join(" / ")} MB, longest stall since start ${stallCells(startupStallMs, NODES)} ms`,
  );

  const results: StepResult[] = [];
  const notes: string[] = [];
  partial = { date: started.toISOString(), loadAverageStart: loadStart, baseline, startupStallMs, steps: results, notes };
  let filled = 0;
  let killed: ({ counters: number } & Awaited<ReturnType<typeof leaderKills>>) | undefined;
  for (const target of steps) {
    const last = results.at(-1);
    const cap = last && memoryCap(last.nodes, baseline, last.counters, target);
    if (cap) {
      notes.push(cap);
      console.log(cap);
      break;
    }
    const stepLoadStart = loadAverage();
    const { seconds, errors } = await fill(client, filled, target);
    checkNodesAlive(NODES);
    filled = target;
    const costs = await nodeCosts();
    const existing = await existingThroughput(client, target);
    checkNodesAlive(NODES);
    const longestStallMs = await stalls.take(NODES);
    const perCounter = (f: (c: NodeCost, b: NodeCost) => number) => round(median(costs.map((c, i) => f(c, baseline[i]!) / target)));
    const step: StepResult = {
      counters: target,
      fillSeconds: round(seconds),
      fillIncrementsPerSecond: Math.round((target - (results.at(-1)?.counters ?? 0)) / seconds),
      fillErrors: errors,
      existing,
      nodes: costs,
      rssBytesPerCounterMedian: perCounter((c) => c.rssBytes),
      rssGrowthBytesPerCounterMedian: perCounter((c, b) => c.rssBytes - b.rssBytes),
      diskBytesPerCounterMedian: perCounter((c) => c.diskBytes),
      diskGrowthBytesPerCounterMedian: perCounter((c, b) => c.diskBytes - b.diskBytes),
      logLastIndexSum: await logLastIndexSum(client),
      loadAverage: `${stepLoadStart} -> ${loadAverage()}`,
      longestStallMs,
    };
    results.push(step);
    console.log(
      JSON.stringify({
        ...step,
        existing: { unitsPerSecond: existing.unitsPerSecond, p50Ms: existing.p50Ms, p99Ms: existing.p99Ms, errors: existing.errors },
      }),
    );
    // At the first size: each trial restarts the killed node, and a restart takes longer the more
    // counters there are (minutes at 10 M on a loaded box), while an election does not depend on them.
    if (killed === undefined) {
      killed = { counters: target, ...(await leaderKills()) };
      partial.killed = killed;
    }
  }
  const { kills, accounting } = killed!;

  // Known values, one key per shard, for the restart checks.
  const probeKeys = await keysPerShard(client, "probe", 1);
  const probes = new Map<number, { key: string; value: bigint }>();
  for (const [shard, [key]] of probeKeys) {
    const value = 1_000_000n + BigInt(shard);
    await client.set(key!, value);
    probes.set(shard, { key: key!, value });
  }
  const statusBeforeRestart = await client.status({ deadlineMs: 10_000 });
  await client.close();
  const logBeforeRestart = statusBeforeRestart.nodes.map((n) => ({
    node: n.nodeId,
    lastIndexByShard: Object.fromEntries(n.groups.map((g) => [g.groupId, Number(g.lastIndex)])),
  }));

  console.log("one node SIGKILLed and restarted alone...");
  const probeShard = 1;
  const singleRestart = await singleNodeRestart(3, { ...probes.get(probeShard)!, shard: probeShard }).catch(failedPhase);
  console.log(JSON.stringify(singleRestart));
  partial.singleRestart = singleRestart;
  console.log("full restart (SIGTERM every node, start them all)...");
  const restart =
    "error" in singleRestart ? { error: "not run: the single-node restart failed" } : await fullRestart(probes).catch(failedPhase);
  console.log(JSON.stringify(restart));
  partial.restart = restart;
  console.log(`a 4th node joins and takes a replica of shard ${probeShard}...`);
  const newReplica = await newReplicaJoin({ ...probes.get(probeShard)!, shard: probeShard }, filled).catch(failedPhase);
  console.log(JSON.stringify(newReplica));
  partial.newReplica = newReplica;
  if (!("error" in newReplica))
    notes.push(
      `the store inspection at the end finds node ${newReplica.movedFrom} without shard ${newReplica.shard}: its replica moved to node ${newReplica.node}`,
    );

  console.log("stopping every node to compact and inspect its LevelDB...");
  const allNodes = joinedNode === undefined ? NODES : [...NODES, joinedNode];
  await stalls.scrape(allNodes);
  const longestStallMsByNode = stalls.wholeRun();
  const longestOnCpuMsByNode = stalls.wholeRunOnCpu();
  console.log(JSON.stringify({ longestStallMsByNode, longestOnCpuMsByNode }));
  await Promise.all(allNodes.map((id) => cluster!.stop(id, STOP_TIMEOUT_MS)));
  for (const id of allNodes) await cluster.kill(id); // a node that did not stop in time
  const stores = await inspectStores();
  for (const s of stores) console.log(JSON.stringify(s));

  const largest = filled;
  const summary = {
    date: started.toISOString(),
    command: `npx tsx bench/scale.ts ${process.argv.slice(2).join(" ")}`.trim(),
    machine: `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, ${mallocDescription()}`,
    loadAverageStart: loadStart,
    loadAverageEnd: loadAverage(),
    setup: {
      nodes: 3,
      shards: SHARDS,
      replicationFactor: 3,
      fsync: "on every group commit",
      snapshotEveryEntries: cluster.config.cluster.snapshotEveryEntries,
      batchOps: BATCH_OPS,
      fillInflight,
      measureSeconds,
    },
    baseline,
    startupStallMs,
    steps: results,
    logBeforeRestart,
    restart,
    singleRestart,
    newReplica,
    longestStallMsByNode,
    longestOnCpuMsByNode,
    killsAtCounters: killed!.counters,
    kills,
    killSummary: {
      firstSuccessMsMedian: median(kills.map((k) => k.firstSuccessMs)),
      firstSuccessMsMax: Math.max(...kills.map((k) => k.firstSuccessMs)),
      maxGapMsMedian: median(kills.map((k) => k.maxGapMs)),
      maxGapMsMax: Math.max(...kills.map((k) => k.maxGapMs)),
      worstLedShardGapMsMedian: median(kills.map(worstLedGap)),
      worstLedShardGapMsMax: Math.max(...kills.map(worstLedGap)),
      slowestElectionMsMedian: median(kills.map(slowestElection)),
      slowestElectionMsMax: Math.max(...kills.map(slowestElection)),
    },
    accounting,
    stores,
    notes,
  };
  const markdown = renderMarkdown(summary, largest);
  console.log(`\n${markdown}`);
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(resultPath(started), JSON.stringify(summary, null, 2));
  partial = undefined;
  writeFileSync(join(resultsDir, "scale-latest.md"), markdown);
  console.log(`wrote ${resultPath(started)} and bench/results/scale-latest.md`);
  if (stallProbeDir !== "") {
    // The nodes write their profiles and spans as they exit: the inspection above stopped them.
    console.log(`\nwhat ran in the longest spans on a CPU (${stallProbeDir}):\n${stallSpans(stallProbeDir).join("\n")}`);
  }
  if (!accounting.ok) throw new Error(`accounting failed: ${accounting.badKeys.length} keys outside [acked, acked + ambiguous]`);
}

/** The longest gap on any shard the killed node led: what the unluckiest client of that node saw. */
const worstLedGap = (k: KillTrial) => Math.max(k.maxGapMs, k.worstGapOtherShardsLedMs);
const slowestElection = (k: KillTrial) => Math.max(...Object.values(k.newLeaderMsByShard));

function renderMarkdown(s: any, largest: number): string {
  const lines: string[] = [];
  lines.push(
    `Scale and cost (\`${s.command}\`, ${s.date.slice(0, 10)}; ${s.machine}; load average ${s.loadAverageStart} at start, ${s.loadAverageEnd} at end; 3 tallyd, 8 shards, fsync on)`,
  );
  lines.push("");
  lines.push(
    "| counters | fill increments/s | AddBatch on existing: increments/s (p50 / p99 ms) | RSS MB n1 / n2 / n3 | RSS bytes/counter (growth) | V8 heap used / external MB (median node) | disk MB n1 / n2 / n3 | disk bytes/counter (growth) | longest stall (ms) n1 / n2 / n3 | load average |",
  );
  lines.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of s.steps as StepResult[]) {
    lines.push(
      `| ${r.counters.toLocaleString("en-US")} | ${r.fillIncrementsPerSecond.toLocaleString("en-US")} | ${r.existing.unitsPerSecond.toLocaleString("en-US")} (${r.existing.p50Ms.toFixed(0)} / ${r.existing.p99Ms.toFixed(0)}) | ${r.nodes.map((n) => mb(n.rssBytes)).join(" / ")} | ${r.rssBytesPerCounterMedian} (${r.rssGrowthBytesPerCounterMedian}) | ${mb(median(r.nodes.map((n) => n.heapUsedBytes)))} / ${mb(median(r.nodes.map((n) => n.externalBytes)))} | ${r.nodes.map((n) => mb(n.diskBytes)).join(" / ")} | ${r.diskBytesPerCounterMedian} (${r.diskGrowthBytesPerCounterMedian}) | ${stallCells(r.longestStallMs, NODES)} | ${r.loadAverage} |`,
    );
  }
  lines.push("");
  lines.push(
    `Per counter: the median node's whole RSS (or data dir) divided by the counters; in parentheses the growth since the empty cluster (RSS ${s.baseline.map((c: NodeCost) => mb(c.rssBytes)).join(" / ")} MB, disk ${s.baseline.map((c: NodeCost) => mb(c.diskBytes)).join(" / ")} MB) divided by the counters. Every node holds a replica of every shard. Longest stall: the longest event-loop delay a node's /metrics reported during the step's fill and AddBatch measurement (tally_event_loop_delay_*, sampled every 2 ms, so up to 2 ms above the stall; the bound is 20 ms at 10 M counters).`,
  );
  for (const note of s.notes as string[]) lines.push("", `Note: ${note}.`);
  lines.push(
    "",
    `Compaction: tallyd has no command to compact; the bench stops every node at the end, opens its LevelDB and runs compactRange over all keys, then measures again. A shard checkpoints (and then truncates its Raft log below the checkpoint) every ${s.setup.snapshotEveryEntries.toLocaleString("en-US")} entries or max(4 MiB, a quarter of its last checkpoint's size) of applied entries, whichever comes first, or 30 s after its last one if it applied anything, keeping a tail of at most 1,000 entries and 2 MiB (an entry of a 10,000-op AddBatch holds ~1,250 ops per shard).`,
  );
  lines.push("");
  const stores = s.stores as Awaited<ReturnType<typeof inspectStores>>;
  const storeMedian = (f: (x: (typeof stores)[number]) => number) => median(stores.map(f));
  lines.push(`| at ${largest.toLocaleString("en-US")} counters | result |`);
  lines.push("| --- | --- |");
  const failed = (phase: { error?: string }) => `FAILED: ${phase.error!.split("\n")[0]}`;
  if ("error" in s.singleRestart) lines.push(`| one node SIGKILLed and restarted alone | ${failed(s.singleRestart)} |`);
  else
    lines.push(
      `| one node SIGKILLed and restarted alone, until its /readyz is 200 / a STALE read through it is right; longest stall (ms) n1 / n2 / n3 | ${(s.singleRestart.readyMs / 1000).toFixed(2)} s / ${(s.singleRestart.staleReadMs / 1000).toFixed(2)} s; ${stallCells(s.singleRestart.longestStallMs, NODES)} |`,
    );
  if ("error" in s.restart) lines.push(`| restart of all 3 nodes (SIGTERM, then start) | ${failed(s.restart)} |`);
  else {
    lines.push(
      `| restart of all 3 nodes (SIGTERM, ${s.restart.stopSeconds} s to stop) until every /readyz is 200 | ${s.restart.readyMs.map((ms: number) => (ms / 1000).toFixed(2)).join(" / ")} s |`,
    );
    lines.push(
      `| the same, until a linearizable get of a known key is right on every shard | ${(s.restart.servingMs / 1000).toFixed(2)} s |`,
    );
    lines.push(
      `| the same: longest stall (ms) n1 / n2 / n3, from the start until serving | ${stallCells(s.restart.longestStallMs, NODES)} |`,
    );
    lines.push(
      `| RSS right after that restart, n1 / n2 / n3 | ${s.restart.rssAfterRestart.map(mb).join(" / ")} MB (${round(median(s.restart.rssAfterRestart) / largest)} bytes/counter) |`,
    );
  }
  if ("error" in s.newReplica) lines.push(`| a 4th node joins and takes a replica of one shard | ${failed(s.newReplica)} |`);
  else {
    const r = s.newReplica;
    lines.push(
      `| a 4th node joins and takes a replica of shard ${r.shard} (${r.shardCounters.toLocaleString("en-US")} counters, moved from n${r.movedFrom}): from its start until a STALE read through it is right (of which after the move was accepted) | ${(r.staleReadMs / 1000).toFixed(2)} s (${(r.staleReadAfterMoveMs / 1000).toFixed(2)} s) |`,
    );
    lines.push(
      `| the same: longest stall (ms) n1 / n2 / n3 / n${r.node} (the new node, after the move was accepted; its start-up before: ${r.newNodeStartupStallMs ?? "-"} ms) | ${stallCells(r.longestStallMs, [...NODES, r.node])} |`,
    );
  }
  const wholeRunNodes = Object.keys(s.longestStallMsByNode).map(Number);
  lines.push(
    `| longest event-loop stall over the whole run (ms) ${wholeRunNodes.map((id) => `n${id}`).join(" / ")} | ${stallCells(s.longestStallMsByNode, wholeRunNodes)} |`,
  );
  lines.push(
    `| Raft log at restart: last index summed over the 8 shards (node 1) | ${Object.values(
      s.logBeforeRestart[0].lastIndexByShard as Record<string, number>,
    )
      .reduce((a: number, b: number) => a + b, 0)
      .toLocaleString("en-US")} |`,
  );
  lines.push(
    `| log entries / snapshots / snapshot data stored (median node, at the end) | ${storeMedian((x) => x.logEntries).toLocaleString("en-US")} / ${storeMedian((x) => x.snapshots)} / ${mb(storeMedian((x) => x.snapshotDataBytes))} MB |`,
  );
  lines.push(
    `| data dir before / after a forced LevelDB compaction (median node) | ${mb(storeMedian((x) => x.diskBytesBefore))} MB / ${mb(storeMedian((x) => x.diskBytesAfterCompaction))} MB (${round(storeMedian((x) => x.diskBytesAfterCompaction) / largest)} bytes/counter) |`,
  );
  const kinds = Object.keys(stores[0]!.compactedBytesByKind);
  lines.push(
    `| compacted size by key kind (median node) | ${kinds.map((k) => `${k} ${mb(storeMedian((x) => x.compactedBytesByKind[k]!))} MB`).join(", ")} |`,
  );
  lines.push(
    "",
    `| at ${s.killsAtCounters.toLocaleString("en-US")} counters (the first step: every trial restarts the killed node) | result |`,
    "| --- | --- |",
  );
  lines.push(
    `| leader SIGKILLed (${s.kills.length} trials, 32 single adds in flight): longest gap between acknowledged adds on its shard, median / max | ${s.killSummary.maxGapMsMedian} / ${s.killSummary.maxGapMsMax} ms |`,
  );
  lines.push(
    `| the same: first acknowledged add started after the kill, median / max | ${s.killSummary.firstSuccessMsMedian} / ${s.killSummary.firstSuccessMsMax} ms |`,
  );
  lines.push(
    `| the same, on any shard the dead node led (${s.kills.map((k: KillTrial) => k.shardsLedByKilledNode.length).join(", ")} shards): longest gap, median / max | ${s.killSummary.worstLedShardGapMsMedian} / ${s.killSummary.worstLedShardGapMsMax} ms |`,
  );
  lines.push(
    `| until a new leader reported itself for every shard the dead node led, median / max | ${s.killSummary.slowestElectionMsMedian} / ${s.killSummary.slowestElectionMsMax} ms |`,
  );
  lines.push(
    `| the same: longest gap on shards the dead node did not lead (max over trials) | ${Math.max(...s.kills.map((k: KillTrial) => k.maxGapUnaffectedShardsMs))} ms |`,
  );
  lines.push(
    `| the killed node restarted under load, until its /readyz is 200 (median of trials) | ${(median(s.kills.map((k: KillTrial) => k.restartReadyMs)) / 1000).toFixed(2)} s |`,
  );
  const caughtUp = s.kills.map((k: KillTrial) => k.restartCaughtUpMs).filter((ms: number | undefined) => ms !== undefined);
  if (caughtUp.length > 0)
    lines.push(
      `| the same, until it applied what the others had committed when it was ready (median of trials; the next trial waits for it) | ${(median(caughtUp) / 1000).toFixed(2)} s |`,
    );
  lines.push(
    `| longest stall per trial (ms) n1 / n2 / n3, from the trial's start until the restarted node caught up (the killed node's: before the kill, then after its restart) | ${s.kills.map((k: KillTrial) => stallCells(k.longestStallMs, NODES)).join("; ")} |`,
  );
  lines.push(
    `| adds acknowledged / ambiguous / failed; counters' sum | ${s.accounting.acked.toLocaleString("en-US")} / ${s.accounting.ambiguous} / ${s.accounting.failed}; ${s.accounting.sum.toLocaleString("en-US")} (${s.accounting.ok ? "every key within [acked, acked + ambiguous]" : `${s.accounting.badKeys.length} keys OUTSIDE [acked, acked + ambiguous]`}) |`,
  );
  return `${lines.join("\n")}\n`;
}

const resultsDir = join(import.meta.dirname, "results");

function resultPath(started: Date): string {
  return join(resultsDir, `scale-${started.toISOString().replace(/[:.]/g, "-")}.json`);
}

/** What a run that fails part way has measured so far; written beside the results with the error. */
let partial: ({ date: string; steps: StepResult[]; notes: string[] } & Record<string, unknown>) | undefined;

try {
  await main();
} catch (error) {
  if (partial !== undefined) {
    mkdirSync(resultsDir, { recursive: true });
    const path = resultPath(new Date(partial.date)).replace(/\.json$/, "-failed.json");
    writeFileSync(
      path,
      JSON.stringify(
        { ...partial, longestStallMsByNode: stalls.wholeRun(), error: (error as Error).message, loadAverageEnd: loadAverage() },
        null,
        2,
      ),
    );
    console.error(`failed; what was measured is in ${path}`);
  }
  throw error;
} finally {
  await cluster?.destroy();
}
