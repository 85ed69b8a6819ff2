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
}

const NS_PER_SECOND = 1e9;

/**
 * Reads the delays the histogram recorded since the last read, folds their max into the since-start
 * max, and resets the histogram for the next window. The collector's whole logic, so a test can give
 * it a histogram with a stall in it.
 */
export class EventLoopDelay {
  private maxNs = 0;

  constructor(private readonly histogram: DelayHistogram) {}

  /** A monitor on this process's event loop, sampling every RESOLUTION_MS. */
  static monitor(): EventLoopDelay {
    const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    histogram.enable();
    return new EventLoopDelay(histogram);
  }

  read(): EventLoopDelaySample {
    const h = this.histogram;
    const empty = h.count === 0;
    const recentMaxNs = empty ? 0 : h.max;
    const p50Ns = empty ? 0 : h.percentile(50);
    const p99Ns = empty ? 0 : h.percentile(99);
    h.reset();
    this.maxNs = Math.max(this.maxNs, recentMaxNs);
    return {
      maxSeconds: this.maxNs / NS_PER_SECOND,
      recent: { p50Seconds: p50Ns / NS_PER_SECOND, p99Seconds: p99Ns / NS_PER_SECOND, maxSeconds: recentMaxNs / NS_PER_SECOND },
    };
  }
}
