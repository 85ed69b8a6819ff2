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

/** target.set(source) in slices of at most `sliceBytes`, with `await pause()` after each. */
export async function copyInSlices(source: Uint8Array, target: Uint8Array, pause: () => Promise<void>, sliceBytes: number): Promise<void> {
  for (let from = 0; from < source.length; from += sliceBytes) {
    const to = Math.min(source.length, from + sliceBytes);
    target.set(source.subarray(from, to), from);
    await pause();
  }
}
