/**
 * Clocks for the I/O layers (server, transport). The deterministic layers never read a clock:
 * raft/ gets ticks, shard/ gets the leader's stamped timestamp inside entries.
 *
 * TALLY_TEST_CLOCK_OFFSET_MS shifts this process's clocks (the chaos harness's clock-skew nemesis);
 * it is read once at start-up so a node's clock never runs backwards within a process.
 */
const offsetMs = Number(process.env.TALLY_TEST_CLOCK_OFFSET_MS ?? "0") || 0;

/** Monotonic milliseconds (for ticks, leases, deadlines). Never goes backwards. */
export function monotonicMs(): number {
  return performance.now() + offsetMs;
}

/** Wall-clock milliseconds since the epoch (for leader-stamped entry timestamps, session expiry). */
export function wallClockMs(): number {
  return Date.now() + offsetMs;
}
