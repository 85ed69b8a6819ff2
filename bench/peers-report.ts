/**
 * The SVG of bench/peers.ts, written by hand (no plotting dependency): grouped bars of throughput
 * per scenario (tally next to its peer), then latency percentiles of the open-loop runs. Both
 * charts use a log scale: the values span four orders of magnitude.
 */
import { writeFileSync } from "node:fs";

export interface ThroughputBar {
  label: string;
  /** Printed above the group (the ratio). */
  note: string;
  tally: number;
  peer: number;
  peerName: string;
}

export interface LatencyBars {
  label: string;
  /** Printed above the group (e.g. how many operations failed). */
  note: string;
  p50: number;
  p99: number;
  p999: number;
}

const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const minWidth = 960;
/** Wide enough for every group's wrapped label (about 22 characters a line). */
const minGroupWidth = 120;
const left = 90;
const right = 20;
const plotHeight = 260;
const labelHeight = 110;

/** A log10 axis from the decade below `min` to the decade above `max`. */
function logAxis(values: number[]): { low: number; high: number; y: (v: number) => number; ticks: number[] } {
  const positive = values.filter((v) => v > 0);
  const low = Math.floor(Math.log10(Math.min(...positive, 1)));
  const high = Math.max(low + 1, Math.ceil(Math.log10(Math.max(...positive, 10))));
  const y = (v: number) => plotHeight - ((Math.log10(Math.max(v, 10 ** low)) - low) / (high - low)) * plotHeight;
  const ticks = [];
  for (let e = low; e <= high; e++) ticks.push(10 ** e);
  return { low, high, y, ticks };
}

function tickLabel(v: number): string {
  if (v >= 1e6) return `${v / 1e6}M`;
  if (v >= 1e3) return `${v / 1e3}k`;
  return String(v);
}

function chart(
  width: number,
  title: string,
  top: number,
  groups: Array<{ label: string; note: string; bars: Array<{ value: number; series: number }> }>,
  seriesNames: string[],
  colors: string[],
  unit: string,
): string[] {
  const axis = logAxis(groups.flatMap((g) => g.bars.map((b) => b.value)));
  const out: string[] = [
    `<g transform="translate(0,${top})">`,
    `<text x="${left}" y="-12" font-size="15" font-weight="bold">${escape(title)}</text>`,
  ];
  for (const tick of axis.ticks) {
    const y = axis.y(tick).toFixed(1);
    out.push(
      `<line x1="${left}" x2="${width - right}" y1="${y}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${y}" font-size="11" text-anchor="end" dominant-baseline="middle">${tickLabel(tick)}</text>`,
    );
  }
  out.push(
    `<text transform="translate(16,${plotHeight / 2}) rotate(-90)" font-size="12" text-anchor="middle">${escape(unit)} (log)</text>`,
  );
  const groupWidth = (width - left - right) / Math.max(groups.length, 1);
  const barWidth = Math.min(36, (groupWidth * 0.8) / seriesNames.length);
  groups.forEach((group, g) => {
    const x0 = left + g * groupWidth + (groupWidth - barWidth * seriesNames.length) / 2;
    for (const bar of group.bars) {
      const x = x0 + bar.series * barWidth;
      const y = axis.y(bar.value);
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${(plotHeight - y).toFixed(1)}" fill="${colors[bar.series]}"><title>${escape(`${group.label}: ${seriesNames[bar.series]} ${bar.value}`)}</title></rect>`,
      );
    }
    const top = Math.min(...group.bars.map((b) => axis.y(b.value)));
    if (group.note)
      out.push(
        `<text x="${(left + g * groupWidth + groupWidth / 2).toFixed(1)}" y="${(top - 5).toFixed(1)}" font-size="11" font-weight="bold" text-anchor="middle">${escape(group.note)}</text>`,
      );
    // Labels wrap onto lines of about 22 characters under their group.
    const words = group.label.split(" ");
    const lines: string[] = [""];
    for (const word of words) {
      if ((lines[lines.length - 1]! + " " + word).length > 22 && lines[lines.length - 1] !== "") lines.push(word);
      else lines[lines.length - 1] = `${lines[lines.length - 1]} ${word}`.trim();
    }
    const cx = left + g * groupWidth + groupWidth / 2;
    lines
      .slice(0, 7)
      .forEach((line, i) =>
        out.push(`<text x="${cx.toFixed(1)}" y="${plotHeight + 16 + i * 13}" font-size="10.5" text-anchor="middle">${escape(line)}</text>`),
      );
  });
  out.push(`<line x1="${left}" x2="${width - right}" y1="${plotHeight}" y2="${plotHeight}" stroke="#333"/>`);
  seriesNames.forEach((name, i) => {
    const x = left + 10 + i * 200;
    out.push(
      `<rect x="${x}" y="${plotHeight + labelHeight - 4}" width="12" height="12" fill="${colors[i]}"/>`,
      `<text x="${x + 18}" y="${plotHeight + labelHeight + 6}" font-size="12">${escape(name)}</text>`,
    );
  });
  out.push("</g>");
  return out;
}

export interface SvgTitles {
  throughput: string;
  latency: string;
  /** The legend of the second throughput bar. */
  peer: string;
}

const peersTitles: SvgTitles = {
  throughput: "Throughput: tally vs its peer, same concurrency (hover a bar for the peer)",
  latency: "Latency at fixed offered rates (open loop, from intended start)",
  peer: "peer (Redis or etcd)",
};

export function writePeersSvg(path: string, throughput: ThroughputBar[], latency: LatencyBars[], titles: SvgTitles = peersTitles): void {
  const chartHeight = plotHeight + labelHeight + 60;
  const height = 40 + chartHeight * 2;
  const width = Math.max(minWidth, left + right + Math.max(throughput.length, latency.length) * minGroupWidth);
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...chart(
      width,
      titles.throughput,
      40,
      throughput.map((t) => ({
        label: t.label,
        note: t.note,
        bars: [
          { value: t.tally, series: 0 },
          { value: t.peer, series: 1 },
        ],
      })),
      ["tally", titles.peer],
      ["#2b6cb0", "#dd6b20"],
      "ops/s",
    ),
    ...chart(
      width,
      titles.latency,
      40 + chartHeight,
      latency.map((l) => ({
        label: l.label,
        note: l.note,
        bars: [
          { value: l.p50, series: 0 },
          { value: l.p99, series: 1 },
          { value: l.p999, series: 2 },
        ],
      })),
      ["p50", "p99", "p99.9"],
      ["#68d391", "#ecc94b", "#e53e3e"],
      "ms",
    ),
    "</svg>",
  ];
  writeFileSync(path, `${svg.join("\n")}\n`);
}
