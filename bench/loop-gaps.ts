/**
 * Summarizes what bench/loop-gaps.mjs recorded (a diagnosis aid; docs/benchmarks.md): per tallyd
 * process, the event-loop gaps above 20 and 40 ms after its first 1.5 s (module loading, before the
 * node's own stall metric starts), and the longest gaps split into time on a CPU, waiting for one
 * (run queue) and asleep, with the GC pauses that overlapped each.
 *
 *   npx tsx bench/scale.ts --counters 10000000 --trials 1 --node-args "--import=$PWD/bench/loop-gaps.mjs"
 *   npx tsx bench/loop-gaps.ts [DIR] [--top 6]      (DIR: $LOOP_GAPS_DIR or the temp dir's tally-loop-gaps)
 */
import { readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

interface Gap {
  start: number;
  wall: number;
  cpu: number;
  runq: number;
  asleep: number;
}
interface Pause {
  gc: number;
  start: number;
  ms: number;
}

/** Node's PerformanceGC kinds. */
const GC_KINDS: Record<number, string> = { 1: "minor", 4: "major", 8: "incremental", 16: "weakcb" };
const STARTUP_MS = 1_500;

/** The summary of one directory, as lines. */
export function loopGaps(dir: string, top = 6): string[] {
  const lines: string[] = [];
  for (const file of readdirSync(dir).filter((f) => /^gaps-\d+\.jsonl$/.test(f))) {
    const records = readFileSync(join(dir, file), "utf8")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as Gap | Pause);
    const gaps = records.filter((r): r is Gap => "wall" in r && r.start > STARTUP_MS).sort((a, b) => b.wall - a.wall);
    const pauses = records.filter((r): r is Pause => "gc" in r);
    lines.push(`${file}: ${gaps.length} gaps above 20 ms, ${gaps.filter((g) => g.wall > 40).length} above 40 ms`);
    for (const gap of gaps.slice(0, top)) {
      const inside = pauses
        .filter((p) => p.start < gap.start + gap.wall && p.start + p.ms > gap.start)
        .map((p) => `${GC_KINDS[p.gc] ?? p.gc} ${p.ms}`)
        .join(", ");
      lines.push(
        `  ${gap.wall} ms at +${(gap.start / 1000).toFixed(1)} s: cpu ${gap.cpu}, run queue ${gap.runq}, asleep ${gap.asleep}${inside ? `; gc: ${inside}` : ""}`,
      );
    }
  }
  return lines;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = args.indexOf("--top");
  const topGaps = at >= 0 ? Number(args[at + 1]) : 6;
  const dir =
    args.find((arg, i) => !arg.startsWith("--") && args[i - 1] !== "--top") ??
    process.env.LOOP_GAPS_DIR ??
    join(tmpdir(), "tally-loop-gaps");
  console.log(loopGaps(dir, topGaps).join("\n"));
}
