// A diagnosis aid for bench/scale.ts --stall-probe (docs/benchmarks.md): preloaded into tallyd with
// --import, it reads the main thread's schedstat every 2 ms and keeps each span in which the thread
// ran more than 12 ms on a CPU between two reads, as [end (CLOCK_MONOTONIC, us), on-CPU ms, wall ms].
// At exit (not on SIGKILL) it writes them to $STALL_DIR/probe-<pid>.json, beside the node's
// --cpu-prof profile of the same pid, so bench/stall-spans.ts can name what ran in each.
import { closeSync, openSync, readSync, writeFileSync } from "node:fs";

const MIN_ON_CPU_MS = 12;
const dir = process.env.STALL_DIR;
let fd = -1;
try {
  fd = openSync("/proc/thread-self/schedstat", "r");
} catch {
  // Not Linux: nothing to record.
}
if (fd >= 0 && dir) {
  const buffer = Buffer.alloc(64);
  const onCpuNs = () => Number(buffer.toString("latin1", 0, readSync(fd, buffer, 0, 64, 0)).split(" ")[0]);
  const spans = [];
  let lastCpu = onCpuNs();
  let lastWall = process.hrtime.bigint();
  setInterval(() => {
    const cpu = onCpuNs();
    const wall = process.hrtime.bigint();
    const onCpuMs = (cpu - lastCpu) / 1e6;
    if (onCpuMs > MIN_ON_CPU_MS) spans.push([Number(wall / 1000n), onCpuMs, Number(wall - lastWall) / 1e6]);
    lastCpu = cpu;
    lastWall = wall;
  }, 2).unref();
  process.on("exit", () => {
    closeSync(fd);
    writeFileSync(`${dir}/probe-${process.pid}.json`, JSON.stringify(spans));
  });
}
