import { slotOf } from "../../src/meta/slots.js";

/** The first key `${prefix}-${i}` whose hash slot lies in [start, end). */
export function keyInSlots(prefix: string, start: number, end: number): string {
  for (let i = 0; ; i++) {
    const key = `${prefix}-${i}`;
    const slot = slotOf(new TextEncoder().encode(key));
    if (slot >= start && slot < end) return key;
  }
}

/** A key that lands in shard `shardId` of a cluster with `shards` evenly split shards (1-based). */
export function keyInShard(prefix: string, shardId: number, shards = 4): string {
  const width = 16384 / shards;
  return keyInSlots(prefix, (shardId - 1) * width, shardId * width);
}
