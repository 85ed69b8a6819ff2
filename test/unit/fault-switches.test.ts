/**
 * The chaos harness's test-only switches (src/server/testing/fault-switches.ts): read in one place
 * and handed to the production modules as plain options; no other module of src/ reads them.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { anyFaultSwitch, readFaultSwitches } from "../../src/server/testing/fault-switches.js";
import { jumpTestClock, monotonicMs, setClockStartOffset, wallClockMs } from "../../src/util/clock.js";

const root = resolve(import.meta.dirname, "..", "..");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : [],
  );
}

describe("test-only fault switches", () => {
  afterEach(() => setClockStartOffset(0));

  it("are all off without the variables", () => {
    const switches = readFaultSwitches({});
    expect(switches).toEqual({ node: { ackBeforeCommit: false, notLeaderAfterPropose: false }, clockOffsetMs: 0, controlFile: undefined });
    expect(anyFaultSwitch(switches)).toBe(false);
    // An empty or unparsable value is off too.
    expect(anyFaultSwitch(readFaultSwitches({ TALLY_TEST_CLOCK_OFFSET_MS: "soon", TALLY_TEST_CONTROL_FILE: "" }))).toBe(false);
  });

  it("turn TALLY_TEST_* into the node's planted bugs, a clock offset and a control file", () => {
    const switches = readFaultSwitches({
      TALLY_TEST_ACK_BEFORE_COMMIT: "1",
      TALLY_TEST_NOT_LEADER_AFTER_PROPOSE: "1",
      TALLY_TEST_CLOCK_OFFSET_MS: "-2500",
      TALLY_TEST_CONTROL_FILE: "/control/n1.json",
    });
    expect(switches).toEqual({
      node: { ackBeforeCommit: true, notLeaderAfterPropose: true },
      clockOffsetMs: -2500,
      controlFile: "/control/n1.json",
    });
    expect(anyFaultSwitch(switches)).toBe(true);
    expect(readFaultSwitches({ TALLY_TEST_ACK_BEFORE_COMMIT: "0" }).node.ackBeforeCommit).toBe(false);
  });

  it("the start offset shifts both clocks, and live jumps are taken from it", () => {
    setClockStartOffset(-60_000);
    expect(wallClockMs() - Date.now()).toBeLessThan(-59_000);
    expect(monotonicMs() - performance.now()).toBeLessThan(-59_000);
    expect(jumpTestClock(1000, 0)).toEqual({ wallOffsetMs: -59_000, monotonicOffsetMs: -60_000 });
    expect(() => setClockStartOffset(Number.POSITIVE_INFINITY)).toThrow(/finite/);
    setClockStartOffset(0);
    expect(Math.abs(wallClockMs() - Date.now())).toBeLessThan(1000);
  });

  it("are read from the environment by src/server/testing/fault-switches.ts only", () => {
    const readers = sourceFiles(join(root, "src"))
      .filter((file) => /env(\.|\[["'`])TALLY_TEST_/.test(readFileSync(file, "utf8")))
      .map((file) => relative(root, file));
    expect(readers).toEqual(["src/server/testing/fault-switches.ts"]);
  });
});
