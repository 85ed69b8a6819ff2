/**
 * The HTML report of a chaos run: verdict, problems, per-key final values, availability, and an
 * inline SVG of latency over time (log scale) with fault windows shaded. Self-contained: no
 * scripts, no external assets.
 */
import type { ChaosOptions, ChaosRun } from "./run.js";

const WIDTH = 1100;
const HEIGHT = 360;
const MARGIN = { left: 60, right: 20, top: 20, bottom: 40 };
const POINTS_MAX = 20_000;

function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

export function renderLatencySvg(run: Pick<ChaosRun, "history" | "faults">): string {
  const ops = run.history.filter((op) => op.kind !== "final-read");
  const endMs = Math.max(1, ...ops.map((op) => op.completedAt ?? op.invokedAt), ...run.faults.map((f) => f.endMs));
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const latencyMinMs = 0.5;
  const latencyMaxMs = 20_000;
  const x = (ms: number): number => MARGIN.left + (ms / endMs) * plotWidth;
  const y = (latencyMs: number): number => {
    const clamped = Math.min(latencyMaxMs, Math.max(latencyMinMs, latencyMs));
    const t = Math.log10(clamped / latencyMinMs) / Math.log10(latencyMaxMs / latencyMinMs);
    return MARGIN.top + (1 - t) * plotHeight;
  };
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="11">`);
  for (const fault of run.faults) {
    const left = x(fault.startMs);
    parts.push(
      `<rect x="${left.toFixed(1)}" y="${MARGIN.top}" width="${Math.max(1, x(fault.endMs) - left).toFixed(1)}" height="${plotHeight}" fill="#f5c6cb" opacity="0.5"><title>${escapeHtml(`${fault.name}: ${fault.detail ?? ""}`)}</title></rect>`,
    );
    parts.push(`<text x="${(left + 2).toFixed(1)}" y="${MARGIN.top + 12}" fill="#842029">${escapeHtml(fault.name)}</text>`);
  }
  for (const latency of [1, 10, 100, 1000, 10_000]) {
    parts.push(
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(latency).toFixed(1)}" y2="${y(latency).toFixed(1)}" stroke="#ddd"/>`,
    );
    parts.push(`<text x="${MARGIN.left - 6}" y="${(y(latency) + 4).toFixed(1)}" text-anchor="end">${latency} ms</text>`);
  }
  const stepS = Math.max(1, Math.ceil(endMs / 1000 / 12));
  for (let s = 0; s * 1000 <= endMs; s += stepS) {
    parts.push(`<text x="${x(s * 1000).toFixed(1)}" y="${HEIGHT - MARGIN.bottom + 16}" text-anchor="middle">${s}s</text>`);
  }
  const stride = Math.max(1, Math.ceil(ops.length / POINTS_MAX));
  const colors = { ok: "#198754", fail: "#dc3545", ambiguous: "#fd7e14" } as const;
  for (let i = 0; i < ops.length; i += stride) {
    const op = ops[i]!;
    // Ambiguous operations have no completion: drawn at the top edge.
    const latency = op.completedAt === undefined ? latencyMaxMs : op.completedAt - op.invokedAt;
    const shape = op.kind === "add" ? "circle" : "rect";
    const cx = x(op.invokedAt).toFixed(1);
    const cy = y(latency).toFixed(1);
    if (shape === "circle") parts.push(`<circle cx="${cx}" cy="${cy}" r="1.6" fill="${colors[op.status]}"/>`);
    else parts.push(`<rect x="${cx}" y="${cy}" width="2.4" height="2.4" fill="${colors[op.status]}"/>`);
  }
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#333"/>`);
  parts.push(`</svg>`);
  return parts.join("\n");
}

export function renderHtmlReport(run: ChaosRun, options: ChaosOptions): string {
  const { result } = run;
  const verdict = result.valid === true ? "VALID" : result.valid === false ? "INVALID" : "UNKNOWN";
  const color = result.valid === true ? "#198754" : result.valid === false ? "#dc3545" : "#fd7e14";
  const percent = (share: number | null): string => (share === null ? "n/a" : `${(share * 100).toFixed(1)}%`);
  const rows = result.finalValues
    .map(
      (k) =>
        `<tr><td>${escapeHtml(k.key)}</td><td>${k.final ?? "-"}</td><td>${k.acknowledgedSum}</td><td>${k.ambiguousAdds} (${k.ambiguousSum})</td><td>${k.ok ? "ok" : escapeHtml(k.problem ?? "")}</td></tr>`,
    )
    .join("\n");
  const faults = run.faults
    .map(
      (f) =>
        `<tr><td>${(f.startMs / 1000).toFixed(1)}s</td><td>${(f.endMs / 1000).toFixed(1)}s</td><td>${escapeHtml(f.name)}</td><td>${escapeHtml(f.detail ?? "")}</td></tr>`,
    )
    .join("\n");
  const shownOptions = { ...options, log: undefined, nodeEnv: options.nodeEnv };
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>tally chaos seed ${run.seed}: ${verdict}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px}pre{background:#f6f6f6;padding:1em;white-space:pre-wrap}</style>
</head><body>
<h1 style="color:${color}">${verdict}</h1>
<p>seed ${run.seed} &middot; ${result.opsChecked} operations (${result.counts.ok} ok, ${result.counts.fail} failed, ${result.counts.ambiguous} ambiguous) &middot;
linearizability: ${String(result.linearizability.ok)} (${result.linearizability.statesExplored} configurations) &middot;
stale reads checked: ${result.staleReads.checked}</p>
<p>availability during faults: ${percent(result.availability.duringFaults)} of ${result.availability.opsDuringFaults} ops; outside faults: ${percent(result.availability.outsideFaults)} of ${result.availability.opsOutsideFaults} ops</p>
${result.problems.length > 0 ? `<h2>Problems</h2><pre>${escapeHtml(result.problems.join("\n\n"))}</pre>` : ""}
<h2>Latency over time</h2>
<p>circles: adds, squares: reads; green ok, red failed, orange ambiguous (top edge); shaded: fault windows.</p>
${renderLatencySvg(run)}
<h2>Faults</h2><table><tr><th>start</th><th>end</th><th>nemesis</th><th>detail</th></tr>${faults}</table>
<h2>Final values</h2><table><tr><th>key</th><th>final</th><th>acknowledged sum</th><th>ambiguous adds (sum)</th><th>verdict</th></tr>${rows}</table>
<h2>Options</h2><pre>${escapeHtml(JSON.stringify(shownOptions, null, 2))}</pre>
</body></html>
`;
}
