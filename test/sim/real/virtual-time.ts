/**
 * The process clocks under the real-parts simulator. The driver loop reads time only through its
 * Clock port, but code on the request path reads the process clock directly (src/util/clock.ts
 * monotonicMs() for request deadlines in core/requests.ts and for ShardStorage's built-snapshot
 * reuse, wallClockMs() for the Raft PRNG seed in core/groups.ts, Date.now() for TTL reads in
 * shard-replica.ts readCounter()). Until those take a clock (see README: "Seams"), the simulator
 * points performance.now() and Date.now() at the virtual clock while a run is in progress, so
 * the run stays deterministic and deadlines agree with the loop's clock.
 */
import { assert } from "../../../src/util/assert.js";

let installed = false;

/** The real clock, for measuring how long a run took (captured before any override). */
export const realNowMs: () => number = performance.now.bind(performance);

/** Runs `body` with performance.now() = monotonic() and Date.now() = wall(); restores both after. */
export async function withVirtualTime<T>(monotonic: () => number, wall: () => number, body: () => Promise<T>): Promise<T> {
  assert(!installed, "virtual time is already installed (one simulation at a time per process)");
  installed = true;
  const realDateNow = Date.now;
  Object.defineProperty(performance, "now", { value: monotonic, configurable: true, writable: true });
  Date.now = () => Math.floor(wall());
  try {
    return await body();
  } finally {
    Date.now = realDateNow;
    delete (performance as { now?: unknown }).now;
    installed = false;
  }
}
