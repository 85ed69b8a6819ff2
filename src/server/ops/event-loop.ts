/**
 * How long the event loop stalls: a perf_hooks.monitorEventLoopDelay histogram, read at scrape time
 * (src/server/ops/metrics.ts exports it). The bound is that no checkpoint, compaction,
 * snapshot send or install holds the loop for more than 20 ms at 10 M counters; bench/scale.ts
 * reads these series to check it.
 *
 * The histogram samples with a timer of RESOLUTION_MS: each value is the time between two of its
 * ticks, so it is the stall it saw plus up to one resolution (an idle loop reads ~RESOLUTION_MS).
 * That errs on the long side, which is the safe side for a bound.
 *
 * Two windows: the longest delay since the process started (`maxSeconds`), and the p50, p99 and max
 * since the previous read (`recent`; each read starts a new window, as prom-client's own
 * nodejs_eventloop_lag_* series do). With two scrapers, each sees the delays since either's last scrape;
 * the since-start max does not depend on who scrapes.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";

/** The histogram's sampling interval. */
export const RESOLUTION_MS = 2;

/** What is read of a perf_hooks IntervalHistogram (nanoseconds), so tests can pass a fake one. */
export interface DelayHistogram {
  readonly count: number;
  readonly max: number;
  percentile(percentile: number): number;
  reset(): void;
}

/** One read of the event-loop delay, in seconds. */
export interface EventLoopDelaySample {
  /** The longest delay since the process started (since the monitor was created). */
  maxSeconds: number;
  /** Since the previous read: p50, p99 and max; zeros when the window saw no sample. */
  recent: { p50Seconds: number; p99Seconds: number; maxSeconds: number };
  /**
   * The longest time the loop's thread ran on a CPU between two ticks of RESOLUTION_MS (OnCpuSpans):
   * since start, and since the previous read. Undefined where the kernel does not say (not Linux).
   */
  onCpu?: { maxSeconds: number; recentMaxSeconds: number };
}

const NS_PER_SECOND = 1e9;

/**
 * Reads the delays the histogram recorded since the last read, folds their max into the since-start
 * max, and resets the histogram for the next window. The collector's whole logic, so a test can give
 * it a histogram with a stall in it.
 */
export class EventLoopDelay {
  private maxNs = 0;

  constructor(
    private readonly histogram: DelayHistogram,
    private spans?: OnCpuSpans,
  ) {}

  private starter: (() => void) | undefined;

  /** A monitor on this process's event loop, sampling every RESOLUTION_MS. */
  static monitor(): EventLoopDelay {
    return EventLoopDelay.prepare().start();
  }

  /**
   * A monitor that samples nothing until start(): tallyd builds what reads it (its metrics) first,
   * then starts it, so that its own synchronous set-up is not counted as a stall of the node.
   */
  static prepare(): EventLoopDelay {
    const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    const delay = new EventLoopDelay(histogram);
    delay.starter = () => {
      histogram.enable();
      delay.spans = OnCpuSpans.start();
    };
    return delay;
  }

  /** Starts a prepare()d monitor; a no-op on one already started. */
  start(): this {
    this.starter?.();
    this.starter = undefined;
    return this;
  }

  read(): EventLoopDelaySample {
    const h = this.histogram;
    const empty = h.count === 0;
    const recentMaxNs = empty ? 0 : h.max;
    const p50Ns = empty ? 0 : h.percentile(50);
    const p99Ns = empty ? 0 : h.percentile(99);
    h.reset();
    this.maxNs = Math.max(this.maxNs, recentMaxNs);
    const sample: EventLoopDelaySample = {
      maxSeconds: this.maxNs / NS_PER_SECOND,
      recent: { p50Seconds: p50Ns / NS_PER_SECOND, p99Seconds: p99Ns / NS_PER_SECOND, maxSeconds: recentMaxNs / NS_PER_SECOND },
    };
    if (this.spans !== undefined) sample.onCpu = this.spans.read();
    return sample;
  }
}

/**
 * Splits a stall into what held the loop and what kept it off a CPU. A delay is wall time: on a
 * machine with more runnable threads than cores it includes the time the loop's thread waited for
 * a core (the kernel's run queue), which no code in the node can shorten. So every RESOLUTION_MS
 * the loop's thread reads its own schedstat (Linux: time on a CPU, time waiting for one) and keeps
 * the longest time it ran between two ticks: a checkpoint slice, an apply, a GC pause on the main
 * thread. One pread of a procfs file per tick, no allocation.
 */
export class OnCpuSpans {
  private readonly buffer = new Uint8Array(64);
  private lastOnCpuNs = -1;
  private maxNs = 0;
  private recentMaxNs = 0;

  private constructor(private readonly fd: number) {}

  /** Started on this thread (the event loop's), or undefined where /proc/thread-self/schedstat is missing. */
  static start(): OnCpuSpans | undefined {
    let fd: number;
    try {
      fd = openSync("/proc/thread-self/schedstat", "r");
    } catch {
      return undefined;
    }
    const spans = new OnCpuSpans(fd);
    if (spans.onCpuNs() < 0) {
      closeSync(fd);
      return undefined;
    }
    setInterval(() => spans.tick(), RESOLUTION_MS).unref();
    return spans;
  }

  read(): { maxSeconds: number; recentMaxSeconds: number } {
    const recent = this.recentMaxNs;
    this.recentMaxNs = 0;
    return { maxSeconds: this.maxNs / NS_PER_SECOND, recentMaxSeconds: recent / NS_PER_SECOND };
  }

  private tick(): void {
    const now = this.onCpuNs();
    if (now < 0) return;
    if (this.lastOnCpuNs >= 0) {
      const span = now - this.lastOnCpuNs;
      if (span > this.recentMaxNs) this.recentMaxNs = span;
      if (span > this.maxNs) this.maxNs = span;
    }
    this.lastOnCpuNs = now;
  }

  /** The thread's time on a CPU (the first field of schedstat), in ns; -1 when it cannot be read. */
  private onCpuNs(): number {
    let length: number;
    try {
      length = readSync(this.fd, this.buffer, 0, this.buffer.length, 0);
    } catch {
      return -1;
    }
    let value = 0;
    let digits = 0;
    for (let i = 0; i < length; i++) {
      const byte = this.buffer[i]!;
      if (byte < 48 || byte > 57) break;
      value = value * 10 + (byte - 48);
      digits++;
    }
    return digits === 0 ? -1 : value;
  }
}
