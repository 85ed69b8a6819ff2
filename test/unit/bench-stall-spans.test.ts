/** bench/stall-spans.ts: the profile samples inside a probe's span are what it reports, and only those. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { stallSpans } from "../../bench/stall-spans.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const frame = (id: number, functionName: string, children: number[] = []) => ({
  id,
  callFrame: { functionName, url: functionName === "(root)" ? "" : "file:///x/tallyd.mjs", lineNumber: id },
  children,
});

describe("stall spans", () => {
  it("names what the profile sampled inside each span, longest first, and nothing outside it", () => {
    const dir = mkdtempSync(join(tmpdir(), "stall-spans-"));
    dirs.push(dir);
    // Samples 1 ms apart from t = 1,000,000 us: 10 in copyInSlices (under iterate), then 10 in applyEntry.
    const profile = {
      nodes: [frame(1, "(root)", [2]), frame(2, "iterate", [3, 4]), frame(3, "copyInSlices"), frame(4, "applyEntry")],
      samples: [...new Array(10).fill(3), ...new Array(10).fill(4)],
      timeDeltas: [1_000_000, ...new Array(19).fill(1000)],
      startTime: 0,
      endTime: 1_020_000,
    };
    writeFileSync(join(dir, "CPU.20261207.000000.4242.0.001.cpuprofile"), JSON.stringify(profile));
    // Two spans: [1,010,000 .. 1,019,000] (applyEntry's samples, 30 ms on a CPU) and [1,000,000 .. 1,009,000] (copyInSlices', 20 ms).
    writeFileSync(
      join(dir, "probe-4242.json"),
      JSON.stringify([
        [1_009_000, 20, 9],
        [1_019_000, 30, 9],
      ]),
    );
    const lines = stallSpans(dir);
    expect(lines[0]).toMatch(/^pid 4242: 2 spans/);
    expect(lines[1]).toMatch(/^ {2}30\.0 ms on a CPU \(9\.0 ms wall\) at \+1\.01 s, 10 samples/);
    expect(lines[2]).toContain("10 applyEntry");
    expect(lines[2]).not.toContain("copyInSlices");
    expect(lines[3]).toContain("10 iterate");
    expect(lines[4]).toMatch(/20\.0 ms on a CPU/);
    expect(lines[5]).toContain("10 copyInSlices");
    expect(lines[5]).not.toContain("applyEntry");
  });

  it("says when a pid has no profile", () => {
    const dir = mkdtempSync(join(tmpdir(), "stall-spans-"));
    dirs.push(dir);
    writeFileSync(join(dir, "probe-7.json"), JSON.stringify([[1, 15, 15]]));
    expect(stallSpans(dir)).toEqual(["pid 7: 1 spans above 12 ms on a CPU; profile none (run tallyd with --cpu-prof)"]);
  });
});
