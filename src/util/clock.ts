/**
 * Clocks for the I/O layers (server, transport). The deterministic layers never read a clock:
 * raft/ gets ticks, shard/ gets the leader's stamped timestamp inside entries.
 *
 * Test-only offsets (the chaos harness's clock nemeses); this module reads no environment, tallyd's
 * main sets them from the test switches (src/server/testing/fault-switches.ts):
 * - setClockStartOffset() shifts both clocks from start-up (a node started skewed);
 * - jumpTestClock() moves them while the process runs (the harness's control file drives it). The
 *   wall clock may jump either way; the monotonic clock only jumps forward (a suspended VM
 *   resuming), so it never runs backwards within a process.
 */
let startOffsetMs = 0;
let wallOffsetMs = 0;
let monotonicOffsetMs = 0;

/** Monotonic milliseconds (for ticks, leases, deadlines). Never goes backwards. */
export function monotonicMs(): number {
  return performance.now() + monotonicOffsetMs;
}

/** Wall-clock milliseconds since the epoch (for leader-stamped entry timestamps, session expiry). */
export function wallClockMs(): number {
  return Date.now() + wallOffsetMs;
}

/**
 * Test only. Sets the wall clock to start offset + `wallJumpMs` (either sign) and moves the
 * monotonic clock forward to start offset + `monotonicJumpMs` if that is ahead of where it is
 * (a smaller value is ignored: the monotonic clock never goes back). Returns the offsets in force.
 */
export function jumpTestClock(wallJumpMs: number, monotonicJumpMs: number): { wallOffsetMs: number; monotonicOffsetMs: number } {
  if (!Number.isFinite(wallJumpMs) || !Number.isFinite(monotonicJumpMs)) throw new RangeError("clock jumps must be finite numbers");
  wallOffsetMs = startOffsetMs + wallJumpMs;
  monotonicOffsetMs = Math.max(monotonicOffsetMs, startOffsetMs + monotonicJumpMs);
  return { wallOffsetMs, monotonicOffsetMs };
}

/**
 * Test only. Shifts both clocks by `offsetMs` (either sign) from here on, and makes it the offset
 * jumpTestClock() jumps from. Call it once at start-up, before anything reads the clocks: a negative
 * offset set later would move the monotonic clock back.
 */
export function setClockStartOffset(offsetMs: number): void {
  if (!Number.isFinite(offsetMs)) throw new RangeError("the clock offset must be a finite number");
  startOffsetMs = offsetMs;
  wallOffsetMs = offsetMs;
  monotonicOffsetMs = offsetMs;
}
