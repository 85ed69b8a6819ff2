/**
 * Summarises V8 .cpuprofile files (node --cpu-prof) without a GUI: the top functions by self time
 * and by inclusive time (a function's samples counted once per sample even when it recurses).
 *
 *   npx tsx bench/profile-summary.ts file.cpuprofile [more...] [--top 30] [--from SECONDS]
 *
 * `--from` skips the samples of the first SECONDS of each profile (start-up, cluster formation).
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
export interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url ? basename(url.replace(/^file:\/\//, "")) : "";
  return `${functionName || "(anonymous)"}${file ? ` ${file}:${lineNumber + 1}` : ""}`;
}

export function summarize(profile: Profile, top: number, fromSeconds = 0): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfUs = new Map<string, number>();
  const totalUs = new Map<string, number>();
  let allUs = 0;
  let idleUs = 0;
  let atUs = 0;
  profile.samples.forEach((id, index) => {
    const us = profile.timeDeltas[index + 1] ?? profile.timeDeltas[index] ?? 0;
    atUs += profile.timeDeltas[index] ?? 0;
    if (atUs < fromSeconds * 1e6) return;
    const node = byId.get(id)!;
    const name = frameName(node);
    allUs += us;
    if (node.callFrame.functionName === "(idle)") idleUs += us;
    selfUs.set(name, (selfUs.get(name) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = frameName(byId.get(at)!);
      if (seen.has(frame)) continue;
      seen.add(frame);
      totalUs.set(frame, (totalUs.get(frame) ?? 0) + us);
    }
  });
  const busyUs = allUs - idleUs;
  const table = (map: Map<string, number>) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => `${(us / 1000).toFixed(0).padStart(8)} ms ${((us / busyUs) * 100).toFixed(1).padStart(5)}%  ${name}`)
      .join("\n");
  return [
    `wall ${(allUs / 1e6).toFixed(2)} s, busy ${(busyUs / 1e6).toFixed(2)} s (${((busyUs / allUs) * 100).toFixed(0)}%)`,
    "-- self --",
    table(selfUs),
    "-- inclusive --",
    table(totalUs),
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const argv = process.argv.slice(2);
  const topAt = argv.indexOf("--top");
  const top = topAt >= 0 ? Number(argv.splice(topAt, 2)[1]) : 30;
  const fromAt = argv.indexOf("--from");
  const fromSeconds = fromAt >= 0 ? Number(argv.splice(fromAt, 2)[1]) : 0;
  for (const file of argv) {
    console.log(`\n===== ${file}`);
    console.log(summarize(JSON.parse(readFileSync(file, "utf8")) as Profile, top, fromSeconds));
  }
}
