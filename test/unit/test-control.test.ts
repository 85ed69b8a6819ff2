/**
 * The chaos harness's live clock jumps (src/server/testing/fault-switches.ts + jumpTestClock): the wall clock
 * moves either way and back; the monotonic clock only ever moves forward.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { watchTestControl } from "../../src/server/testing/fault-switches.js";
import { jumpTestClock, monotonicMs, wallClockMs } from "../../src/util/clock.js";
import { eventually } from "../support/cluster.js";

const log = pino({ level: "silent" });

describe("test clock control", () => {
  afterEach(() => jumpTestClock(0, 0));

  it("jumps the wall clock both ways and the monotonic clock only forward", () => {
    const wall0 = wallClockMs() - Date.now();
    jumpTestClock(-60_000, 0);
    expect(wallClockMs() - Date.now()).toBeLessThan(wall0 - 59_000);
    const before = monotonicMs();
    jumpTestClock(0, 5_000);
    expect(monotonicMs() - before).toBeGreaterThanOrEqual(5_000);
    const after = monotonicMs();
    jumpTestClock(0, 0);
    expect(monotonicMs()).toBeGreaterThanOrEqual(after);
    expect(() => jumpTestClock(Number.NaN, 0)).toThrow(/finite/);
  });

  it("follows the control file and ignores a malformed one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tally-control-"));
    const file = join(dir, "control.json");
    const stop = watchTestControl(log, file);
    try {
      writeFileSync(file, JSON.stringify({ wallJumpMs: 3_600_000, monotonicJumpMs: 0 }));
      await eventually(async () => (wallClockMs() - Date.now() > 3_500_000 ? true : undefined), 3000, "the wall clock jumped an hour");
      writeFileSync(file, "{ not json");
      await new Promise((r) => setTimeout(r, 300));
      expect(wallClockMs() - Date.now()).toBeGreaterThan(3_500_000);
      writeFileSync(file, JSON.stringify({ wallJumpMs: 0, monotonicJumpMs: 0 }));
      await eventually(async () => (Math.abs(wallClockMs() - Date.now()) < 1000 ? true : undefined), 3000, "the wall clock came back");
    } finally {
      stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
