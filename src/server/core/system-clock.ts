/** The real clock and yield of a node: what TallyNode binds the driver loop's Clock port and the checkpoint work's pauses to. */
import { monotonicMs, wallClockMs } from "../../util/clock.js";
import type { Clock } from "./ports.js";

/** Yields to the event loop (between slices of checkpoint work, between back-to-back loop iterations). */
export const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The driver loop's clock: the process's (src/util/clock.ts) and real timers. */
export const systemClock: Clock = {
  monotonicMs,
  wallClockMs,
  setTimer(ms, callback) {
    const timer = setTimeout(callback, ms);
    return () => clearTimeout(timer);
  },
  yieldNow: () => yieldToEventLoop(),
};
