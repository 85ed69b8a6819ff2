/**
 * Load-generation helpers shared by the benchmarks: closed loop (N in flight) and open loop (a
 * fixed offered rate, latency measured from each operation's INTENDED start so a stall cannot hide
 * behind coordinated omission), HDR histograms, and the generator's own CPU use.
 */
import hdr from "hdr-histogram-js";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { TestCluster } from "../test/support/cluster.js";

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

function summarize(histogram: Histogram, operations: number, units: number, errors: number, seconds: number, cpuMicros: number, firstError?: string): LoadResult {
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
export async function openLoop(options: { rate: number; seconds: number; warmupSeconds?: number; maxOutstanding?: number; operation: (i: number) => Promise<unknown> }): Promise<LoadResult> {
  const { rate, seconds, operation } = options;
  const maxOutstanding = options.maxOutstanding ?? 10_000;
  const warmupSeconds = options.warmupSeconds ?? 1;
  const histogram = newHistogram();
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
    const now = process.hrtime.bigint();
    if (intended > now) {
      const waitMs = Number(intended - now) / 1e6;
      if (waitMs >= 1) await new Promise((r) => setTimeout(r, Math.floor(waitMs)));
      while (process.hrtime.bigint() < intended) await new Promise((r) => setImmediate(r));
    }
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
  return summarize(histogram, operations, operations, errors, elapsed, cpu.user + cpu.system, firstError);
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
export async function runBenchTable<Row>(endpoints: string, shards: number, run: (endpoints: string[]) => Promise<Row[]>, headers: string[], cells: (row: Row) => Array<string | number>): Promise<void> {
  let cluster: TestCluster | undefined;
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

/** The 1, 5 and 15 minute load averages, as "a b c" (benchmarks on a shared machine report them). */
export function loadAverageText(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
}

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
