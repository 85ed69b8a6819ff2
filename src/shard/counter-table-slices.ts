/**
 * The pieces of CounterTable's work done in slices (exportBlocksInSlices, growAhead: see
 * counter-table.ts and docs/architecture.md, "Holding a shard's apply"): how much one event-loop
 * turn copies, when growth is due ahead of need, and the loops themselves.
 */
/** Bytes copied (or index bytes re-placed) per event-loop turn by the sliced export and growth. */
export const SLICE_BYTES = 4 * 1024 * 1024;
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
 * target.set(source) in slices of at most `sliceBytes`, with `await pause()` BEFORE each: the
 * caller's own turn (the driver loop's, where a growth or a capture starts) copies nothing, so
 * several shards starting at once do not add their first slices up in one turn.
 */
export async function copyInSlices(source: Uint8Array, target: Uint8Array, pause: () => Promise<void>, sliceBytes: number): Promise<void> {
  for (let from = 0; from < source.length; from += sliceBytes) {
    await pause();
    const to = Math.min(source.length, from + sliceBytes);
    target.set(source.subarray(from, to), from);
  }
}

/**
 * Writes zeros over a new buffer in slices (a pause before each), so its pages are faulted in
 * sequentially, a slice per turn: random writes into a fresh buffer (an index being re-placed) would fault in every page of
 * it within the first few thousand writes, tens of milliseconds in one turn.
 */
export async function touchInSlices(buffer: Int32Array, pause: () => Promise<void>, sliceBytes: number): Promise<void> {
  const step = Math.max(1, sliceBytes >>> 2);
  for (let from = 0; from < buffer.length; from += step) {
    await pause();
    buffer.fill(0, from, Math.min(buffer.length, from + step));
  }
}
