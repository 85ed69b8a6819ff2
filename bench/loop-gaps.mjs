// A diagnosis aid (docs/benchmarks.md, "7 December 2026 (sixth session)"): preloaded into tallyd
// with --import, it ticks every 2 ms and, for every gap between two ticks longer than 20 ms of wall
// time, appends to $LOOP_GAPS_DIR/gaps-<pid>.jsonl (default: the OS temp dir's tally-loop-gaps/)
// how the gap splits, from the loop thread's /proc/thread-self/schedstat: time on a CPU, time
// runnable but waiting for one (the run queue), and the rest (asleep: a lock, a system call, a
// garbage collection waiting for its helper threads). It also appends each GC pause above 4 ms,
// on the same clock (performance.now()), so bench/loop-gaps.ts can show which gaps held one.
// Written as they happen, so a SIGKILLed node keeps its record. Linux only; elsewhere a no-op.
import { appendFileSync, mkdirSync, openSync, readSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PerformanceObserver, performance } from "node:perf_hooks";

const GAP_MS = 20;
const GC_MS = 4;
let fd = -1;
try {
  fd = openSync("/proc/thread-self/schedstat", "r");
} catch {
  // Not Linux: nothing to record.
}
if (fd >= 0) {
  const dir = process.env.LOOP_GAPS_DIR || join(tmpdir(), "tally-loop-gaps");
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `gaps-${process.pid}.jsonl`);
  const buffer = Buffer.alloc(96);
  // schedstat: ns on a CPU, ns waiting on a run queue, timeslices.
  const read = () =>
    buffer
      .toString("latin1", 0, readSync(fd, buffer, 0, buffer.length, 0))
      .split(" ")
      .map(Number);
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries())
      if (entry.duration > GC_MS)
        appendFileSync(
          out,
          JSON.stringify({ gc: entry.detail?.kind, start: +entry.startTime.toFixed(1), ms: +entry.duration.toFixed(1) }) + "\n",
        );
  }).observe({ entryTypes: ["gc"] });
  let [lastCpu, lastQueue] = read();
  let lastWall = performance.now();
  setInterval(() => {
    const [cpu, queue] = read();
    const wall = performance.now();
    const gap = wall - lastWall;
    if (gap > GAP_MS) {
      const onCpu = (cpu - lastCpu) / 1e6;
      const runQueue = (queue - lastQueue) / 1e6;
      const record = { start: +lastWall.toFixed(1), wall: +gap.toFixed(1), cpu: +onCpu.toFixed(1), runq: +runQueue.toFixed(1) };
      appendFileSync(out, JSON.stringify({ ...record, asleep: +(gap - onCpu - runQueue).toFixed(1) }) + "\n");
    }
    lastCpu = cpu;
    lastQueue = queue;
    lastWall = wall;
  }, 2).unref();
}
