import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { directoryBytes, loadAverage, longestGapMs, processRssBytes } from "../../bench/lib.js";

describe("bench helpers of the scale benchmark", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  test("longestGapMs counts the window's edges, ignores events outside it and needs no order", () => {
    expect(longestGapMs([30, 10, 20], 0, 100)).toBe(70); // 30 -> 100
    expect(longestGapMs([50, 5, 95], 0, 100)).toBe(45); // 5 -> 50 and 50 -> 95
    expect(longestGapMs([], 10, 40)).toBe(30);
    expect(longestGapMs([-5, 200, 60], 0, 100)).toBe(60); // only 60 is inside
  });

  test("directoryBytes sums the file sizes below a directory, nested ones included", () => {
    const dir = mkdtempSync(join(tmpdir(), "bench-lib-"));
    dirs.push(dir);
    expect(directoryBytes(dir)).toBe(0);
    writeFileSync(join(dir, "a"), Buffer.alloc(1000));
    mkdirSync(join(dir, "sub", "deeper"), { recursive: true });
    writeFileSync(join(dir, "sub", "deeper", "b"), Buffer.alloc(234));
    expect(directoryBytes(dir)).toBe(1234);
  });

  test("processRssBytes reads this process's resident set, and names a pid that is gone", () => {
    const rss = processRssBytes(process.pid);
    // VmRSS and memoryUsage().rss are sampled at different moments; they agree to within a few MB.
    expect(Math.abs(rss - process.memoryUsage().rss)).toBeLessThan(64 * 2 ** 20);
    expect(() => processRssBytes(2 ** 22 + 1)).toThrow(/4194305/);
  });

  test("loadAverage gives three numbers", () => {
    expect(loadAverage()).toMatch(/^\d+\.\d\d \d+\.\d\d \d+\.\d\d$/);
  });
});
