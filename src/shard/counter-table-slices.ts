/**
 * The pieces of CounterTable's work done in slices (exportBlocksInSlices, growAhead: see
 * counter-table.ts and docs/architecture.md, "Holding a shard's apply"): how much one event-loop
 * turn copies, when growth is due ahead of need, and the loops themselves.
 */
/** At most this many bytes copied (or index bytes re-placed) per event-loop turn by the sliced export and growth. */
export const SLICE_BYTES = 4 * 1024 * 1024;
/**
 * What one slice of a copy or a touch aims to take. A byte bound alone assumed fast memory: on a VM
 * whose first touch of a page costs ~10 us (measured December 2026: 64 MiB written into fresh
 * memory in 170-220 ms, into touched memory in 3 ms), a 4 MiB slice into a new buffer took 11-37 ms,
 * once 122 ms. So each slice is sized from the time the last ones took (SliceSizer).
 */
export const SLICE_TARGET_MS = 4;
/** The smallest slice a slow machine shrinks to (bytes). */
export const SLICE_BYTES_MIN = 64 * 1024;

/**
 * Sizes the slices of one sliced job from the time they take: each next slice is the last one's
 * size scaled to SLICE_TARGET_MS (at most doubling), within [min, max]. It starts at a quarter of
 * max, so the first slice on a slow machine is not the largest.
 */
export class SliceSizer {
  private size: number;

  constructor(
    private readonly max: number,
    private readonly min = Math.min(max, SLICE_BYTES_MIN),
    private readonly targetMs = SLICE_TARGET_MS,
  ) {
    this.size = Math.max(this.min, Math.floor(max / 4));
  }

  /** The next slice's size (units of the caller's choice: bytes, elements). */
  next(): number {
    return this.size;
  }

  /** A slice of `units` took `ms`; a short one (the job's last) says little about the next and is ignored. */
  took(units: number, ms: number): void {
    if (units < this.size) return;
    const scaled = ms > 0 ? Math.floor((units * this.targetMs) / ms) : this.max;
    this.size = Math.min(this.max, this.size * 2, Math.max(this.min, scaled));
  }
}
/** growthDue() says yes once a limit is this close (a fraction of it). */
export const GROW_AHEAD = 0.95;
/** Below this many slots (or index entries, or 8x this many arena bytes) growth is cheap enough to do at once. */
export const GROW_AHEAD_MIN_SLOTS = 64 * 1024;

/** Places the occupied (slot + 1, hash) pairs of old[from, to) (pair-aligned) into `index` (linear probing, `mask`); returns how many. */
export function placeEntries(old: Int32Array, from: number, to: number, index: Int32Array, mask: number): number {
  let placed = 0;
  for (let i = from; i < to; i += 2) {
    const entry = old[i]!;
    if (entry === 0) continue;
    const hash = old[i + 1]!;
    let position = hash & mask;
    while (index[position * 2] !== 0) position = (position + 1) & mask;
    index[position * 2] = entry;
    index[position * 2 + 1] = hash;
    placed++;
  }
  return placed;
}

/**
 * Yields to the event loop between slices of sliced work. Where it also carries `now` (a monotonic
 * clock in ms: the server's SlicePacer), copies and touches size their slices by the time they
 * take (SliceSizer); without it (the simulator's virtual time) slices have their fixed maximum size,
 * so a seeded run stays the same run.
 */
export type SlicePause = (() => Promise<void>) & { readonly now?: () => number };

/** Runs work(from, to) over [0, total) in slices of at most `max`, sized by their time where `pause` has a clock. */
async function inSlices(
  total: number,
  max: number,
  min: number,
  pause: SlicePause,
  work: (from: number, to: number) => void,
): Promise<void> {
  const now = pause.now;
  const sizer = now === undefined ? undefined : new SliceSizer(max, Math.min(max, min));
  for (let from = 0; from < total;) {
    await pause();
    const to = Math.min(total, from + (sizer?.next() ?? max));
    if (sizer === undefined) work(from, to);
    else {
      const startedMs = now!();
      work(from, to);
      sizer.took(to - from, now!() - startedMs);
    }
    from = to;
  }
}

/**
 * target.set(source) in slices of at most `sliceBytes` (fewer where they take longer than
 * SLICE_TARGET_MS), with `await pause()` BEFORE each: the caller's own turn (the driver loop's,
 * where a growth or a capture starts) copies nothing, so several shards starting at once do not
 * add their first slices up in one turn.
 */
export function copyInSlices(source: Uint8Array, target: Uint8Array, pause: SlicePause, sliceBytes: number): Promise<void> {
  return inSlices(source.length, sliceBytes, SLICE_BYTES_MIN, pause, (from, to) => target.set(source.subarray(from, to), from));
}

/**
 * Writes zeros over a new buffer in slices (a pause before each), so its pages are faulted in
 * sequentially, a slice per turn: random writes into a fresh buffer (an index being re-placed) would fault in every page of
 * it within the first few thousand writes, tens of milliseconds in one turn.
 */
export function touchInSlices(buffer: Int32Array, pause: SlicePause, sliceBytes: number): Promise<void> {
  return inSlices(buffer.length, Math.max(1, sliceBytes >>> 2), Math.max(1, SLICE_BYTES_MIN >>> 2), pause, (from, to) =>
    buffer.fill(0, from, to),
  );
}
