/**
 * The chaos harness's test-only switches, the one place that reads them. tallyd's main
 * (src/server/main.ts) calls readFaultSwitches() once at start-up and hands what it finds to the
 * production modules as plain options, so none of them reads the environment for a test switch:
 *
 * | variable | becomes |
 * | --- | --- |
 * | `TALLY_TEST_ACK_BEFORE_COMMIT=1` | `TallyNode` option `faults.ackBeforeCommit` (planted bug) |
 * | `TALLY_TEST_NOT_LEADER_AFTER_PROPOSE=1` | `TallyNode` option `faults.notLeaderAfterPropose` (planted bug) |
 * | `TALLY_TEST_CLOCK_OFFSET_MS=n` | `setClockStartOffset(n)` (src/util/clock.ts), before the node starts |
 * | `TALLY_TEST_CONTROL_FILE=path` | watchTestControl(path): polled every 100 ms for live clock jumps |
 *
 * Every one is unset in production, where this module changes nothing. docs/testing.md ("Planted
 * bugs and test-only switches") lists who sets them and what must catch each.
 *
 * The control file is JSON: { "wallJumpMs": n, "monotonicJumpMs": n } (see jumpTestClock). A
 * missing file means no jump; a malformed one is logged and ignored (the harness writes it atomically).
 */
import { readFile } from "node:fs/promises";
import type { Logger } from "../../util/log.js";
import { jumpTestClock, setClockStartOffset } from "../../util/clock.js";
import type { NodeFaults } from "../node.js";

/** What the test-only environment asks for; all off in production. */
export interface FaultSwitches {
  /** Planted bugs for TallyNode (its `faults` option). */
  node: Required<NodeFaults>;
  /** Both clocks shifted by this from start-up (0: not shifted). */
  clockOffsetMs: number;
  /** The control file to poll for live clock jumps, if any. */
  controlFile: string | undefined;
}

/** Reads the TALLY_TEST_* switches; the only reader of them in src/. */
export function readFaultSwitches(env: NodeJS.ProcessEnv = process.env): FaultSwitches {
  const controlFile = env.TALLY_TEST_CONTROL_FILE;
  return {
    node: {
      ackBeforeCommit: env.TALLY_TEST_ACK_BEFORE_COMMIT === "1",
      notLeaderAfterPropose: env.TALLY_TEST_NOT_LEADER_AFTER_PROPOSE === "1",
    },
    clockOffsetMs: Number(env.TALLY_TEST_CLOCK_OFFSET_MS ?? "0") || 0,
    controlFile: controlFile === undefined || controlFile === "" ? undefined : controlFile,
  };
}

/** Whether any switch is on (tallyd logs a warning then: the node runs with test-only faults). */
export function anyFaultSwitch(switches: FaultSwitches): boolean {
  return (
    switches.node.ackBeforeCommit ||
    switches.node.notLeaderAfterPropose ||
    switches.clockOffsetMs !== 0 ||
    switches.controlFile !== undefined
  );
}

/**
 * Applies the process-wide switches (the clock offset, the control file) before the node starts;
 * returns a function that stops polling the control file. The node's planted bugs are passed to
 * TallyNode by the caller (`faults: switches.node`).
 */
export function applyFaultSwitches(switches: FaultSwitches, log: Logger): () => void {
  if (!anyFaultSwitch(switches)) return () => undefined;
  log.warn(
    { ...switches.node, clockOffsetMs: switches.clockOffsetMs, controlFile: switches.controlFile },
    "test-only fault switches are set",
  );
  if (switches.clockOffsetMs !== 0) setClockStartOffset(switches.clockOffsetMs);
  return switches.controlFile === undefined ? () => undefined : watchTestControl(log, switches.controlFile);
}

const POLL_MS = 100;

interface TestControl {
  wallJumpMs: number;
  monotonicJumpMs: number;
}

function parseControl(text: string): TestControl {
  const raw = JSON.parse(text) as Partial<TestControl>;
  const wallJumpMs = raw.wallJumpMs ?? 0;
  const monotonicJumpMs = raw.monotonicJumpMs ?? 0;
  if (typeof wallJumpMs !== "number" || typeof monotonicJumpMs !== "number")
    throw new Error("wallJumpMs and monotonicJumpMs must be numbers");
  return { wallJumpMs, monotonicJumpMs };
}

/** Polls the control file at `path` and jumps the clocks as it says; returns a function that stops it. */
export function watchTestControl(log: Logger, path: string): () => void {
  // A missing file reads as "{}": no jump, nothing to apply or log.
  let last = "{}";
  let stopped = false;
  const poll = async (): Promise<void> => {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch {
      text = "{}";
    }
    if (stopped || text === last) return;
    last = text;
    try {
      const control = parseControl(text);
      const offsets = jumpTestClock(control.wallJumpMs, control.monotonicJumpMs);
      log.warn({ ...control, ...offsets }, "test control: clocks jumped");
    } catch (error) {
      log.error({ err: error, path }, "test control: ignoring a malformed control file");
    }
  };
  const timer = setInterval(() => void poll(), POLL_MS);
  timer.unref();
  void poll();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
