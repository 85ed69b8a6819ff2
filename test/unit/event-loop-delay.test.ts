/**
 * The event-loop delay series (src/server/ops/event-loop.ts, exported by src/server/ops/metrics.ts):
 * a stall in the histogram shows as the since-start max and in the window of the scrape that follows;
 * the next window forgets it, the since-start max keeps it.
 */
import { describe, expect, it } from "vitest";
import { EventLoopDelay, OnCpuSpans, type DelayHistogram } from "../../src/server/ops/event-loop.js";
import { NodeMetrics, type NodeSample } from "../../src/server/ops/metrics.js";

const MS = 1e6; // nanoseconds

/** A histogram that holds exactly the delays a test records (nearest-rank percentiles). */
class FakeHistogram implements DelayHistogram {
  values: number[] = [];
  resets = 0;
  record(...ms: number[]): void {
    this.values.push(...ms.map((m) => m * MS));
  }
  get count(): number {
    return this.values.length;
  }
  get max(): number {
    return Math.max(0, ...this.values);
  }
  percentile(p: number): number {
    const sorted = [...this.values].sort((a, b) => a - b);
    return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
  }
  reset(): void {
    this.values = [];
    this.resets++;
  }
}

const sample: NodeSample = {
  groups: [],
  counters: {
    loopIterations: 0,
    entriesWritten: 0,
    entriesApplied: 0,
    leaderChanges: 0,
    snapshotsTaken: 0,
    snapshotsBuilt: 0,
    snapshotsInstalled: 0,
  },
  peerQueues: new Map(),
  peerMessagesDropped: 0,
  peerFramesSent: 0,
  peerMessagesSent: 0,
  peerUnauthenticated: 0,
  inboundDropped: 0,
  appliedBytesPerIterationMax: 0,
  ready: true,
};

function value(text: string, series: string): number | undefined {
  const row = text.split("\n").find((line) => line.startsWith(`${series} `));
  return row === undefined ? undefined : Number(row.slice(series.length + 1));
}

describe("EventLoopDelay", () => {
  it("reads p50, p99 and max of the window, keeps the since-start max, and starts a new window", () => {
    const histogram = new FakeHistogram();
    const delay = new EventLoopDelay(histogram);
    histogram.record(...Array.from({ length: 98 }, () => 2), 3, 45);
    const first = delay.read();
    expect(first.recent.p50Seconds).toBeCloseTo(0.002, 9);
    expect(first.recent.p99Seconds).toBeCloseTo(0.003, 9);
    expect(first.recent.maxSeconds).toBeCloseTo(0.045, 9);
    expect(first.maxSeconds).toBeCloseTo(0.045, 9);
    expect(histogram.resets).toBe(1);
    histogram.record(2, 2, 7);
    const second = delay.read();
    expect(second.recent.maxSeconds).toBeCloseTo(0.007, 9);
    expect(second.maxSeconds).toBeCloseTo(0.045, 9);
    // A window without a sample (two reads within one resolution) reads zeros, not the histogram's sentinels.
    histogram.reset();
    expect(delay.read()).toEqual({ maxSeconds: 0.045, recent: { p50Seconds: 0, p99Seconds: 0, maxSeconds: 0 } });
  });

  it("a real monitor sees a stall of the loop", async () => {
    const delay = EventLoopDelay.monitor();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const start = performance.now();
    while (performance.now() - start < 60) {
      // Hold the loop for 60 ms.
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    const read = delay.read();
    expect(read.recent.maxSeconds).toBeGreaterThanOrEqual(0.055);
    expect(read.maxSeconds).toBe(read.recent.maxSeconds);
    expect(read.recent.p50Seconds).toBeLessThan(0.055);
  });
});

describe("tally_event_loop_delay_* on /metrics", () => {
  it("exports the since-start max and the window since the previous scrape", async () => {
    const histogram = new FakeHistogram();
    const metrics = new NodeMetrics(() => sample, { nodeId: 1, defaultMetrics: false, eventLoopDelay: new EventLoopDelay(histogram) });
    histogram.record(2, 2, 2, 25);
    const text = await metrics.scrape();
    expect(text).toContain("# TYPE tally_event_loop_delay_max_seconds gauge");
    expect(value(text, 'tally_event_loop_delay_max_seconds{node="1"}')).toBeCloseTo(0.025, 9);
    expect(value(text, 'tally_event_loop_delay_recent_seconds{quantile="1",node="1"}')).toBeCloseTo(0.025, 9);
    expect(value(text, 'tally_event_loop_delay_recent_seconds{quantile="0.5",node="1"}')).toBeCloseTo(0.002, 9);
    expect(value(text, 'tally_event_loop_delay_recent_seconds{quantile="0.99",node="1"}')).toBeCloseTo(0.025, 9);
    // One read per scrape: the next scrape's window holds only what came after.
    expect(histogram.resets).toBe(1);
    histogram.record(3);
    const next = await metrics.scrape();
    expect(value(next, 'tally_event_loop_delay_max_seconds{node="1"}')).toBeCloseTo(0.025, 9);
    expect(value(next, 'tally_event_loop_delay_recent_seconds{quantile="1",node="1"}')).toBeCloseTo(0.003, 9);
  });

  it("is on by default and can be left out", async () => {
    expect(await new NodeMetrics(() => sample, { nodeId: 1, defaultMetrics: false }).scrape()).toContain(
      "tally_event_loop_delay_max_seconds",
    );
    expect(await new NodeMetrics(() => sample, { nodeId: 1, defaultMetrics: false, eventLoopDelay: false }).scrape()).not.toContain(
      "tally_event_loop_delay",
    );
  });
});

describe("the on-CPU part of stalls (Linux schedstat)", () => {
  it.runIf(process.platform === "linux")("sees a loop held by work, and exports it beside the delay", async () => {
    const spans = OnCpuSpans.start();
    expect(spans).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 20));
    spans!.read(); // a window that starts now
    const until = performance.now() + 40;
    let sink = 0;
    while (performance.now() < until) sink += Math.sqrt(sink + 1); // 40 ms holding the loop, most of it on a CPU
    expect(sink).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 10));
    const held = spans!.read();
    // The busy loop ran on a CPU for up to 40 ms between two ticks; on a loaded box some of it waits for a core.
    expect(held.recentMaxSeconds).toBeGreaterThan(0.005);
    expect(held.maxSeconds).toBeGreaterThanOrEqual(held.recentMaxSeconds);
    const metrics = new NodeMetrics(() => sample, { nodeId: 1, defaultMetrics: false });
    const text = await metrics.scrape();
    expect(text).toContain('tally_event_loop_on_cpu_max_seconds{window="start",node="1"}');
    expect(text).toContain('tally_event_loop_on_cpu_max_seconds{window="recent",node="1"}');
  });
});
