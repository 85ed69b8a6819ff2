/**
 * Load-generation helpers shared by the benchmarks: closed loop (N in flight) and open loop (a
 * fixed offered rate, latency measured from each operation's INTENDED start so a stall cannot hide
 * behind coordinated omission), HDR histograms, and the generator's own CPU use.
 */
import hdr from "hdr-histogram-js";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { ensureBundles } from "../bin/bundle.js";
import { TestCluster } from "../test/support/cluster.js";
import { withMallocTunables } from "../src/util/malloc-tunables.js";

export type Histogram = ReturnType<typeof hdr.build>;

export function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
}

export interface LoadResult {
  operations: number;
  units: number;
  errors: number;
  seconds: number;
  perSecond: number;
  unitsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  generatorCpuPercent: number;
  /** With a cpuProbe: CPU seconds the processes under test used in the window. */
  serverCpuSeconds?: number;
  /**
   * With a cpuProbe: CPU microseconds per unit, servers plus generator. On a shared machine this
   * moves far less with other load than throughput does, so it is what an A/B should compare.
   */
  cpuUsPerUnit?: number;
  /** Open loop: how late the generator started operations (p99, ms); already inside the latencies. */
  latenessP99Ms?: number;
  firstError?: string;
}

/** CPU seconds (user + system) the processes used so far, from /proc/<pid>/stat (Linux; 100 ticks/s). */
export function procCpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / 100;
}

function summarize(
  histogram: Histogram,
  operations: number,
  units: number,
  errors: number,
  seconds: number,
  cpuMicros: number,
  firstError?: string,
): LoadResult {
  return {
    operations,
    units,
    errors,
    seconds: Number(seconds.toFixed(2)),
    perSecond: Math.round(operations / seconds),
    unitsPerSecond: Math.round(units / seconds),
    p50Ms: histogram.getValueAtPercentile(50) / 1000,
    p99Ms: histogram.getValueAtPercentile(99) / 1000,
    p999Ms: histogram.getValueAtPercentile(99.9) / 1000,
    maxMs: histogram.maxValue / 1000,
    generatorCpuPercent: Math.round((cpuMicros / 1e6 / seconds) * 100),
    ...(firstError ? { firstError } : {}),
  };
}

/**
 * Closed loop: `concurrency` workers each run `operation` back to back for `seconds` (after a
 * warm-up). `operation` returns how many units (e.g. increments) it carried.
 */
export async function closedLoop(options: {
  concurrency: number;
  seconds: number;
  warmupSeconds?: number;
  operation: (worker: number, i: number) => Promise<number>;
  /** CPU seconds used so far by the processes under test (procCpuSeconds), sampled with the window. */
  cpuProbe?: () => number;
}): Promise<LoadResult> {
  const { concurrency, seconds, operation } = options;
  const warmupSeconds = options.warmupSeconds ?? 1;
  const histogram = newHistogram();
  let operations = 0;
  let units = 0;
  let errors = 0;
  let firstError: string | undefined;
  let measuring = false;
  const warmupEnd = Date.now() + warmupSeconds * 1000;
  let measureStart = 0;
  let cpuStart = process.cpuUsage();
  const end = warmupEnd + seconds * 1000;
  // A timer, not the workers, opens the window: with operations longer than the warm-up (10,000-op
  // batches on a loaded box) no worker might start a new one in time, and nothing would count.
  // A completion past the warm-up opens it too, should the timer be late (a blocked event loop).
  const openWindow = () => {
    if (measuring) return;
    measuring = true;
    measureStart = Date.now();
    cpuStart = process.cpuUsage();
    probeStart = options.cpuProbe?.() ?? 0;
  };
  let probeStart = 0;
  const warmupTimer = setTimeout(openWindow, warmupSeconds * 1000);
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (let i = 0; Date.now() < end; i++) {
        const t0 = process.hrtime.bigint();
        try {
          const carried = await operation(worker, i);
          if (Date.now() >= warmupEnd) openWindow();
          if (measuring) {
            histogram.recordValue(Number(process.hrtime.bigint() - t0) / 1000);
            operations++;
            units += carried;
          }
        } catch (error) {
          if (measuring) errors++;
          firstError ??= (error as Error).message;
        }
      }
    }),
  );
  clearTimeout(warmupTimer);
  const elapsed = (Date.now() - (measureStart || warmupEnd)) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const result = summarize(histogram, operations, units, errors, elapsed, cpu.user + cpu.system, firstError);
  if (options.cpuProbe !== undefined && units > 0) {
    result.serverCpuSeconds = Number((options.cpuProbe() - probeStart).toFixed(2));
    result.cpuUsPerUnit = Number((((result.serverCpuSeconds + (cpu.user + cpu.system) / 1e6) / units) * 1e6).toFixed(2));
  }
  return result;
}

/**
 * Open loop: starts one operation every 1/rate seconds regardless of completions; latency is
 * measured from the intended start time. Bounded: at most `maxOutstanding` in flight (beyond that
 * an intended operation counts as an error: the system is not keeping up).
 */
export async function openLoop(options: {
  rate: number;
  seconds: number;
  warmupSeconds?: number;
  maxOutstanding?: number;
  operation: (i: number) => Promise<unknown>;
}): Promise<LoadResult> {
  const { rate, seconds, operation } = options;
  const maxOutstanding = options.maxOutstanding ?? 10_000;
  const warmupSeconds = options.warmupSeconds ?? 1;
  const histogram = newHistogram();
  const lateness = newHistogram();
  const intervalNs = 1e9 / rate;
  const total = Math.round(rate * (seconds + warmupSeconds));
  const warmupOps = Math.round(rate * warmupSeconds);
  let outstanding = 0;
  let operations = 0;
  let errors = 0;
  let firstError: string | undefined;
  const inflight = new Set<Promise<void>>();
  const start = process.hrtime.bigint();
  let cpuStart = process.cpuUsage();
  let measureStart = start;
  for (let i = 0; i < total; i++) {
    const intended = start + BigInt(Math.round(i * intervalNs));
    if (i === warmupOps) {
      cpuStart = process.cpuUsage();
      measureStart = intended;
    }
    // Sleep on timers, never spin: a spinning generator takes a core from the servers it measures.
    // A timer fires late, not early, and latency counts from the intended start, so the
    // generator's lateness is charged to the system under test (it is reported as `lateness`).
    let now = process.hrtime.bigint();
    while (intended > now) {
      await new Promise((r) => setTimeout(r, Math.max(1, Math.ceil(Number(intended - now) / 1e6))));
      now = process.hrtime.bigint();
    }
    if (i >= warmupOps) lateness.recordValue(Number(now - intended) / 1000);
    const measured = i >= warmupOps;
    if (outstanding >= maxOutstanding) {
      if (measured) errors++;
      continue;
    }
    outstanding++;
    const p = operation(i).then(
      () => {
        if (measured) {
          histogram.recordValue(Number(process.hrtime.bigint() - intended) / 1000);
          operations++;
        }
      },
      (error) => {
        if (measured) errors++;
        firstError ??= (error as Error).message;
      },
    );
    const tracked = p.finally(() => {
      outstanding--;
      inflight.delete(tracked);
    });
    inflight.add(tracked);
  }
  await Promise.all(inflight);
  const elapsed = Number(process.hrtime.bigint() - measureStart) / 1e9;
  const cpu = process.cpuUsage(cpuStart);
  return {
    ...summarize(histogram, operations, operations, errors, elapsed, cpu.user + cpu.system, firstError),
    latenessP99Ms: lateness.getValueAtPercentile(99) / 1000,
  };
}

export function parseArgs(argv: string[]): { flag(name: string): boolean; option(name: string, fallback: string): string } {
  return {
    flag: (name) => argv.includes(`--${name}`),
    option: (name, fallback) => {
      const i = argv.indexOf(`--${name}`);
      return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
    },
  };
}

/**
 * Runs a benchmark against `endpoints` (comma-separated), or when empty against a fresh 3-node
 * cluster with `shards` shards (temp data dirs, destroyed after), and prints its rows as a
 * markdown table.
 */
export async function runBenchTable<Row>(
  endpoints: string,
  shards: number,
  run: (endpoints: string[]) => Promise<Row[]>,
  headers: string[],
  cells: (row: Row) => Array<string | number>,
): Promise<void> {
  let cluster: TestCluster | undefined;
  if (!endpoints) ensureBundles(); // the nodes run dist/tallyd.mjs (bin/tallyd.js never builds): rebuild it if src/ is newer
  const addresses = endpoints ? endpoints.split(",") : (cluster = await TestCluster.start({ nodes: 3, shards })).endpoints();
  try {
    const rows = await run(addresses);
    console.log(`\n| ${headers.join(" | ")} |`);
    console.log(`| ${headers.map(() => "---").join(" | ")} |`);
    for (const row of rows) console.log(`| ${cells(row).join(" | ")} |`);
  } finally {
    await cluster?.destroy();
  }
}

/** Median CPU ms of `before` and of `after` over `rounds` interleaved rounds, after a warm-up (in-process A/B). */
export function interleavedCpuMedians(before: () => unknown, after: () => unknown, rounds: number): { beforeMs: number; afterMs: number } {
  const cpuMs = (run: () => unknown) => {
    const start = process.cpuUsage();
    run();
    const used = process.cpuUsage(start);
    return (used.user + used.system) / 1000;
  };
  const timesBefore: number[] = [];
  const timesAfter: number[] = [];
  for (let r = 0; r < warmupRounds(rounds); r++) (before(), after());
  for (let r = 0; r < rounds; r++) {
    timesBefore.push(cpuMs(before));
    timesAfter.push(cpuMs(after));
  }
  const median = (xs: number[]) => xs.sort((x, y) => x - y)[xs.length >> 1]!;
  return { beforeMs: median(timesBefore), afterMs: median(timesAfter) };
}

export function warmupRounds(rounds: number): number {
  return Math.max(5, rounds >> 2);
}

/**
 * Zipf(s) over ranks 0..n-1 (rank r drawn with probability proportional to 1/(r+1)^s), by
 * rejection-inversion (Hörmann and Derflinger 1996, as in Apache Commons RNG): O(1) memory and
 * time per sample, no table over the n ranks. `random` yields uniforms in [0, 1).
 */
export class ZipfSampler {
  private readonly hIntegralX1: number;
  private readonly hIntegralN: number;
  private readonly squeeze: number;

  constructor(
    readonly n: number,
    readonly s: number,
    private readonly random: () => number,
  ) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`ZipfSampler: n must be a positive integer, got ${n}`);
    if (!(s > 0) || !Number.isFinite(s)) throw new Error(`ZipfSampler: s must be a positive number, got ${s}`);
    this.hIntegralX1 = this.hIntegral(1.5) - 1;
    this.hIntegralN = this.hIntegral(n + 0.5);
    this.squeeze = 2 - this.hIntegralInverse(this.hIntegral(2.5) - this.h(2));
  }

  /** One rank in [0, n). */
  next(): number {
    for (;;) {
      const u = this.hIntegralN + this.random() * (this.hIntegralX1 - this.hIntegralN);
      const x = this.hIntegralInverse(u);
      const k = Math.min(this.n, Math.max(1, Math.floor(x + 0.5)));
      if (k - x <= this.squeeze || u >= this.hIntegral(k + 0.5) - this.h(k)) return k - 1;
    }
  }

  /** H(x) = ((x^(1-s)) - 1) / (1 - s), continuous through s = 1 (where it is log x). */
  private hIntegral(x: number): number {
    const logX = Math.log(x);
    return expm1OverX((1 - this.s) * logX) * logX;
  }

  private h(x: number): number {
    return Math.exp(-this.s * Math.log(x));
  }

  private hIntegralInverse(x: number): number {
    const t = Math.max(-1, x * (1 - this.s));
    return Math.exp(log1pOverX(t) * x);
  }
}

/** log(1 + x) / x, accurate near 0. */
function log1pOverX(x: number): number {
  return Math.abs(x) > 1e-8 ? Math.log1p(x) / x : 1 - x * (0.5 - x * (1 / 3 - 0.25 * x));
}

/** (e^x - 1) / x, accurate near 0. */
function expm1OverX(x: number): number {
  return Math.abs(x) > 1e-8 ? Math.expm1(x) / x : 1 + x * 0.5 * (1 + (x / 3) * (1 + 0.25 * x));
}

/** The machine, for a benchmark report's header: cores, CPU model, RAM, Node version. */
export function machineDescription(): string {
  return `${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, ${mallocDescription()}`;
}

/** What the nodes' malloc runs with (src/util/malloc-tunables.ts) and the kernel's THP mode. */
export function mallocDescription(): string {
  let thp = "unknown";
  try {
    thp = /\[(\w+)\]/.exec(readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8"))?.[1] ?? thp;
  } catch {
    // not Linux, or no THP
  }
  return `tallyd GLIBC_TUNABLES ${withMallocTunables(process.env).GLIBC_TUNABLES ?? "(none)"}, THP ${thp}`;
}

export const loadAverage = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

/** Resident set size of a process in bytes, from /proc/<pid>/status VmRSS (Linux). */
export function processRssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match === null) throw new Error(`no VmRSS in /proc/${pid}/status (has the process exited?)`);
  return Number(match[1]) * 1024;
}

/** Sum of the sizes of the regular files under `dir` (recursively); files that vanish meanwhile count 0. */
export function directoryBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    try {
      if (entry.isDirectory()) total += directoryBytes(path);
      else if (entry.isFile()) total += statSync(path).size;
    } catch (error) {
      // LevelDB deletes obsolete tables and logs while it compacts.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
  return total;
}

/**
 * The longest time in [fromMs, toMs] without an event of `times` (unsorted; those outside the
 * window are ignored); the window's edges count, so no event at all gives the whole window.
 */
export function longestGapMs(times: readonly number[], fromMs: number, toMs: number): number {
  const inside = times.filter((t) => t >= fromMs && t <= toMs).sort((a, b) => a - b);
  let gap = 0;
  let previous = fromMs;
  for (const t of inside) {
    gap = Math.max(gap, t - previous);
    previous = t;
  }
  return Math.max(gap, toMs - previous);
}
