/**
 * Clocks for the I/O layers (server, transport). The deterministic layers never read a clock:
 * raft/ gets ticks, shard/ gets the leader's stamped timestamp inside entries.
 *
 * Test-only offsets (the chaos harness's clock nemeses):
 * - TALLY_TEST_CLOCK_OFFSET_MS shifts both clocks from start-up (a node started skewed);
 * - jumpTestClock() moves them while the process runs (src/server/ops/test-control.ts drives it from a
 *   file the harness writes). The wall clock may jump either way; the monotonic clock only jumps
 *   forward (a suspended VM resuming), so it never runs backwards within a process.
 */
const startOffsetMs = Number(process.env.TALLY_TEST_CLOCK_OFFSET_MS ?? "0") || 0;
let wallOffsetMs = startOffsetMs;
let monotonicOffsetMs = startOffsetMs;

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
