/**
 * Test-only fault control: when TALLY_TEST_CONTROL_FILE names a file, tallyd polls it and applies
 * what it says. The chaos harness writes it to jump a running node's clocks (its clock-jump
 * nemesis); nothing reads it in production, where the variable is unset.
 *
 * The file is JSON: { "wallJumpMs": n, "monotonicJumpMs": n } (see jumpTestClock). A missing file
 * means no jump; a malformed one is logged and ignored (the harness writes it atomically).
 */
import { readFile } from "node:fs/promises";
import type { Logger } from "../../util/log.js";
import { jumpTestClock } from "../../util/clock.js";

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

/** Starts polling; returns a function that stops it. Does nothing without the variable. */
export function watchTestControl(log: Logger, path = process.env.TALLY_TEST_CONTROL_FILE): () => void {
  if (path === undefined || path === "") return () => undefined;
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
