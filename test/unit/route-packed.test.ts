/**
 * routePackedRequest (src/server/core/route-packed.ts) against routeRequest over the same keys:
 * the same replica or the same error, and the same slot load recorded, for every way a request
 * names its shard (by id, by its first key) and its epoch (none, current, stale).
 */
import { describe, expect, it } from "vitest";
import { routePackedRequest } from "../../src/server/core/route-packed.js";
import { routeRequest, type RoutingView } from "../../src/server/core/requests.js";
import type { ShardReplica } from "../../src/server/shard-replica.js";
import { encodePackedAdds } from "../../src/util/packed-adds.js";
import { createPrng } from "../../src/util/prng.js";

function view(): RoutingView {
  const replica = (shardId: number, slotStart: number, slotEnd: number) =>
    ({ shardId, descriptor: { epoch: 3, slotStart, slotEnd }, slotLoad: new Float64Array(64) }) as unknown as ShardReplica;
  const replicas = new Map([
    [1, replica(1, 0, 8192)],
    [2, replica(2, 8192, 16384)],
  ]);
  return {
    nodeId: 1,
    replicas,
    map: { shards: [] } as unknown as RoutingView["map"],
    stats: { staleEpochRejected: 0 },
    leaderAddress: () => undefined,
  };
}

function outcome(route: () => ShardReplica): string {
  try {
    return `shard ${route().shardId}`;
  } catch (error) {
    return `${(error as Error).constructor.name}: ${(error as Error).message}`;
  }
}

const loads = (v: RoutingView) => [...v.replicas.values()].map((replica) => [...replica.slotLoad].join(","));

describe("routing packed adds from their bytes", () => {
  it("gives routeRequest's replica or error, and records the same slot load", () => {
    const prng = createPrng(7);
    const text = new TextEncoder();
    const seen = new Set<string>();
    for (let round = 0; round < 300; round++) {
      const tagged = prng.chance(0.5); // hash tags: every key of the batch in one slot
      const adds = Array.from({ length: 1 + prng.nextInt(6) }, () => ({
        key: text.encode(tagged ? `{t${round}}:${prng.nextInt(1000)}` : `k:${prng.nextInt(1_000_000)}`),
        delta: 1n,
      }));
      const packed = encodePackedAdds(adds);
      const shardId = prng.nextInt(3);
      const epoch = [0, 3, 2][prng.nextInt(3)]!;
      const [byKeys, byBytes] = [view(), view()];
      const expected = outcome(() =>
        routeRequest(
          byKeys,
          shardId,
          epoch,
          adds.map((add) => add.key),
        ),
      );
      expect(
        outcome(() => routePackedRequest(byBytes, shardId, epoch, packed)),
        `round ${round}`,
      ).toBe(expected);
      expect(loads(byBytes), `round ${round}`).toEqual(loads(byKeys));
      expect(byBytes.stats).toEqual(byKeys.stats);
      seen.add(expected.split(":")[0]!);
    }
    // Both verdicts were reached: routed, refused as another shard's keys, refused for a stale epoch.
    expect(seen).toEqual(new Set(["shard 1", "shard 2", "WrongShardError"]));
  });
});
