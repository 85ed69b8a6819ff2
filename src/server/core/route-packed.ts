/**
 * routeRequest (requests.ts) of a packed add batch (src/util/packed-adds.ts, already checked by
 * scanPackedAdds): the same replica, epoch check, slot load and WRONG_SHARD verdicts, with each
 * key's slot read from the bytes, so the leader makes no key view per op.
 */
import { slotOfRange } from "../../meta/slots.js";
import type { ShardReplica } from "../shard-replica.js";
import { admitSlot, routeRequest, type RoutingView } from "./requests.js";

export function routePackedRequest(view: RoutingView, shardId: number, epoch: number, packed: Uint8Array): ShardReplica {
  // With no shard named, the first key picks it and is checked by routeRequest (a view of that key only).
  const firstEnd = 2 + ((packed[0]! << 8) | packed[1]!);
  const replica = shardId === 0 ? routeRequest(view, 0, epoch, [packed.subarray(2, firstEnd)]) : routeRequest(view, shardId, epoch, []);
  for (let at = shardId === 0 ? firstEnd + 8 : 0; at < packed.length;) {
    const start = at + 2;
    const end = start + ((packed[at]! << 8) | packed[at + 1]!);
    admitSlot(replica, slotOfRange(packed, start, end));
    at = end + 8;
  }
  return replica;
}
