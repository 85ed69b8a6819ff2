/**
 * What ran in each long on-CPU span of a tallyd (a diagnosis aid; docs/benchmarks.md): reads the
 * spans bench/stall-probe.mjs wrote (probe-<pid>.json) and the --cpu-prof profile of the same pid
 * in one directory, and prints, per span from the longest, the profile's samples inside it: the
 * functions they stopped in (self) and the frames on their stacks (inclusive). A long span with few
 * samples is time the profiler could not sample: the kernel (page faults, a big read), not JS.
 *
 *   npx tsx bench/stall-spans.ts DIR [--top 8]
 *
 * bench/scale.ts --stall-probe DIR runs it at the end of its run.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { frameName, type Profile } from "./profile-summary.js";

/** [end (monotonic us), on-CPU ms, wall ms] */
type Span = [number, number, number];

function top(counts: Map<string, number>, n: number): string {
  return [...counts]
    .filter(([name]) => !/^\((root|idle)\)/.test(name))
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, count]) => `${count} ${name}`)
    .join(" | ");
}

/** The report for one directory, as lines. */
export function stallSpans(dir: string, topSpans = 8): string[] {
  const files = readdirSync(dir);
  const lines: string[] = [];
  for (const probeFile of files.filter((f) => /^probe-\d+\.json$/.test(f))) {
    const pid = probeFile.match(/\d+/)![0];
    const spans = (JSON.parse(readFileSync(join(dir, probeFile), "utf8")) as Span[]).sort((a, b) => b[1] - a[1]);
    const profileFile = files.find((f) => f.endsWith(".cpuprofile") && f.includes(`.${pid}.`));
    lines.push(`pid ${pid}: ${spans.length} spans above 12 ms on a CPU; profile ${profileFile ?? "none (run tallyd with --cpu-prof)"}`);
    if (profileFile === undefined) continue;
    const profile = JSON.parse(readFileSync(join(dir, profileFile), "utf8")) as Profile;
    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    const parent = new Map<number, number>();
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
    const times: number[] = [];
    let t = profile.startTime;
    for (const delta of profile.timeDeltas) times.push((t += delta));
    for (const [end, onCpuMs, wallMs] of spans.slice(0, topSpans)) {
      const start = end - wallMs * 1000;
      const self = new Map<string, number>();
      const inclusive = new Map<string, number>();
      let samples = 0;
      for (let i = 0; i < times.length; i++) {
        if (times[i]! < start || times[i]! > end) continue;
        samples++;
        const leaf = frameName(byId.get(profile.samples[i]!)!);
        self.set(leaf, (self.get(leaf) ?? 0) + 1);
        const seen = new Set<string>();
        for (let id: number | undefined = profile.samples[i]; id !== undefined; id = parent.get(id)) {
          const name = frameName(byId.get(id)!);
          if (!seen.has(name)) inclusive.set(name, (inclusive.get(name) ?? 0) + 1);
          seen.add(name);
        }
      }
      const at = ((start - profile.startTime) / 1e6).toFixed(2);
      lines.push(`  ${onCpuMs.toFixed(1)} ms on a CPU (${wallMs.toFixed(1)} ms wall) at +${at} s, ${samples} samples`);
      lines.push(`    self: ${top(self, 6)}`);
      lines.push(`    inclusive: ${top(inclusive, 14)}`);
    }
  }
  return lines;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (dir === undefined) throw new Error("usage: npx tsx bench/stall-spans.ts DIR [--top 8]");
  const at = process.argv.indexOf("--top");
  console.log(stallSpans(dir, at > 0 ? Number(process.argv[at + 1]) : 8).join("\n"));
}
