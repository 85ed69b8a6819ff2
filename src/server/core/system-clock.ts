/** The real clock and yield of a node: what TallyNode binds the driver loop's Clock port and the checkpoint work's pauses to. */
import { monotonicMs, wallClockMs } from "../../util/clock.js";
import type { SlicePause } from "../../shard/counter-table-slices.js";
import type { Clock } from "./ports.js";

/** Yields to the event loop (between back-to-back loop iterations). */
export const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The pause between slices of a node's background work (checkpoint captures and encodes, table
 * growth ahead of need, checkpoint and snapshot decodes): every job waits in one queue and ONE
 * job runs its next slice per event-loop turn. With a plain setImmediate per job, eight shards
 * growing or capturing at once ran eight slices in the same turn, the sum of them one stall.
 */
export class SlicePacer {
  private readonly waiting: Array<() => void> = [];
  private scheduled = false;

  /**
   * Resolves when it is this job's turn: at most one waiter is released per event-loop turn. It
   * carries the monotonic clock, so sliced copies size their slices by their time (SlicePause).
   */
  readonly pause: SlicePause = Object.assign(
    (): Promise<void> =>
      new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        this.schedule();
      }),
    { now: monotonicMs },
  );

  /** Jobs waiting for their next slice. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // An immediate queued from inside an immediate runs in the NEXT turn: timers and I/O run between.
    setImmediate(this.release);
  }

  private readonly release = (): void => {
    this.scheduled = false;
    const next = this.waiting.shift();
    if (this.waiting.length > 0) this.schedule();
    next?.();
  };
}

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
