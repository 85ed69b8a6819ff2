/**
 * The counter service's checks of hot keys (docs/kinds.md, src/meta/hot.ts): reads must sum every
 * sub-counter, and only adds (and resets) apply to a sum.
 */
import type { HotRouteInput } from "../../api/proto.js";
import { HOT_READ_REFUSED, type HotIndex, type HotRecord } from "../../meta/hot.js";
import type { CounterOp } from "../../shard/commands.js";
import { describeKey } from "../../shard/keys.js";
import { FailedPreconditionError } from "../../util/errors.js";

export function hotRouteMessage(record: HotRecord): HotRouteInput {
  return { key: Buffer.from(record.key), tags: record.tags, writable: record.writable };
}

/**
 * A plain read of a hot key would see one sub-counter and pass it off as the counter. So a read of
 * a hot key must name the sub-counter count it sums (hot_sub_counters), and the count must be the
 * one this node's map has: a client with an older count refreshes its routes and reads again. A
 * count this node does not know (its map is older than the client's) is accepted: the client knows
 * better.
 */
export function checkHotReads(hot: HotIndex, keys: Uint8Array[], claims: number[]): void {
  if (hot.size === 0) return;
  for (const [i, k] of keys.entries()) {
    const record = hot.lookup(k);
    if (record === undefined) continue;
    const claim = claims[i] ?? 0;
    if (claim === record.tags.length || claim > record.tags.length) continue;
    throw new FailedPreconditionError(
      `key ${describeKey(k)} ${HOT_READ_REFUSED} ${record.tags.length} sub-counters` +
        (claim === 0
          ? "; a plain read sees only one of them: read it with the tally client or tallyctl, which sum them"
          : ` (the request sums ${claim}): refresh the routes and read again`),
    );
  }
}

/** Writes other than add (and floors, TTLs) have no meaning spread over sub-counters. */
export function refuseHotMutations(hot: HotIndex, ops: CounterOp[]): void {
  for (const op of ops) {
    const record = hot.lookup(op.key);
    if (record === undefined || op.kind === "reset") continue;
    if (op.kind === "add" && op.floor === undefined && op.ttlMs === undefined) continue;
    const what = op.kind === "add" ? "an add with a floor or TTL" : `a ${op.kind}`;
    throw new FailedPreconditionError(
      `key ${describeKey(op.key)} is a hot counter over ${record.tags.length} sub-counters: ${what} cannot apply to a sum (only add, get and reset)`,
    );
  }
}
