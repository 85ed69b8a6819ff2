import { describe, expect, it } from "vitest";
import { RouteTable } from "../../src/client/routing.js";
import type { RoutesResponseMessage } from "../../src/api/proto.js";
import { ShardSession } from "../../src/client/session.js";
import { AssertionError } from "../../src/util/assert.js";

function routes(
  shards: Array<{ id: number; start: number; end: number; epoch: number; leader?: string; term?: number }>,
): RoutesResponseMessage {
  return {
    slotCount: 16384,
    shards: shards.map((shard) => ({
      shardId: shard.id,
      slotStart: shard.start,
      slotEnd: shard.end,
      epoch: String(shard.epoch),
      replicas: ["1", "2", "3"].map((nodeId) => ({ nodeId, address: `127.0.0.1:700${nodeId}`, role: "" })),
      leaderId: shard.leader ?? "",
      term: String(shard.term ?? 1),
    })),
    hot: [],
    mapVersion: "0",
    eventualPrefixes: [],
  };
}

describe("RouteTable", () => {
  it("looks slots up by binary search over sorted ranges, edges included", () => {
    const table = new RouteTable();
    expect(
      table.update(
        routes([
          { id: 3, start: 10_000, end: 16384, epoch: 1 },
          { id: 1, start: 0, end: 5_000, epoch: 1, leader: "2" },
          { id: 2, start: 5_000, end: 10_000, epoch: 1 },
        ]),
      ),
    ).toBe(true);
    expect(table.lookup(0)?.shardId).toBe(1);
    expect(table.lookup(4_999)?.shardId).toBe(1);
    expect(table.lookup(5_000)?.shardId).toBe(2);
    expect(table.lookup(9_999)?.shardId).toBe(2);
    expect(table.lookup(10_000)?.shardId).toBe(3);
    expect(table.lookup(16_383)?.shardId).toBe(3);
    expect(table.lookup(0)?.leaderAddress).toBe("127.0.0.1:7002");
    expect(() => table.lookup(16_384)).toThrow(AssertionError);
  });

  it("leaves holes unrouted and rejects overlapping or empty maps", () => {
    const table = new RouteTable();
    expect(table.update(routes([{ id: 1, start: 0, end: 100, epoch: 1 }]))).toBe(true);
    expect(table.lookup(100)).toBeUndefined();
    expect(
      table.update(
        routes([
          { id: 1, start: 0, end: 100, epoch: 1 },
          { id: 2, start: 50, end: 200, epoch: 1 },
        ]),
      ),
    ).toBe(false);
    expect(table.update(routes([]))).toBe(false);
    expect(table.lookup(10)?.shardId).toBe(1);
  });

  it("never goes back to an older epoch, including one learned from WRONG_SHARD", () => {
    const table = new RouteTable();
    table.update(routes([{ id: 1, start: 0, end: 16384, epoch: 5 }]));
    expect(table.update(routes([{ id: 1, start: 0, end: 16384, epoch: 4 }]))).toBe(false);
    expect(table.byShardId(1)?.epoch).toBe(5n);
    table.noteEpoch(1, 6n);
    expect(table.isStale(1)).toBe(true);
    expect(table.update(routes([{ id: 1, start: 0, end: 16384, epoch: 5 }]))).toBe(false);
    expect(
      table.update(
        routes([
          { id: 1, start: 0, end: 8192, epoch: 6 },
          { id: 2, start: 8192, end: 16384, epoch: 1 },
        ]),
      ),
    ).toBe(true);
    expect(table.isStale(1)).toBe(false);
    expect(table.lookup(9000)?.shardId).toBe(2);
  });

  it("prefers a leader hint to a map of the same term, and a newer term to a hint", () => {
    const table = new RouteTable();
    table.update(routes([{ id: 1, start: 0, end: 16384, epoch: 1, leader: "1", term: 3 }]));
    expect(table.noteLeaderHint(1, "2", undefined)).toBe(true);
    expect(table.byShardId(1)).toMatchObject({ leaderId: "2", leaderAddress: "127.0.0.1:7002", leaderFromHint: true });
    table.update(routes([{ id: 1, start: 0, end: 16384, epoch: 1, leader: "1", term: 3 }]));
    expect(table.byShardId(1)?.leaderId).toBe("2");
    table.update(routes([{ id: 1, start: 0, end: 16384, epoch: 1, leader: "3", term: 4 }]));
    expect(table.byShardId(1)).toMatchObject({ leaderId: "3", term: 4n, leaderFromHint: false });
    // A hint may name an address the map does not know yet (a node just added).
    expect(table.noteLeaderHint(1, "9", "127.0.0.1:7009")).toBe(true);
    expect(table.addresses()).toContain("127.0.0.1:7009");
    table.forgetLeader(1, "127.0.0.1:7009");
    expect(table.byShardId(1)?.leaderAddress).toBeUndefined();
    expect(table.noteLeaderHint(1, undefined, undefined)).toBe(false);
  });

  it("hands out copies, not its own state", () => {
    const table = new RouteTable();
    table.update(routes([{ id: 1, start: 0, end: 16384, epoch: 1 }]));
    const snapshot = table.snapshot();
    snapshot.shards[0]!.replicas[0]!.address = "mutated";
    expect(table.byShardId(1)?.replicas[0]?.address).toBe("127.0.0.1:7001");
  });
});

describe("ShardSession (Raft thesis 6.3)", () => {
  it("firstUnackedSeq is the lowest seq not completed, whatever the completion order", () => {
    const session = new ShardSession(1, 10n, 0);
    const seqs = [session.allocate(), session.allocate(), session.allocate(), session.allocate()];
    expect(seqs).toEqual([1n, 2n, 3n, 4n]);
    expect(session.firstUnackedSeq()).toBe(1n);
    session.complete(3n);
    expect(session.firstUnackedSeq()).toBe(1n);
    session.complete(1n);
    expect(session.firstUnackedSeq()).toBe(2n);
    session.complete(2n);
    expect(session.firstUnackedSeq()).toBe(4n);
    expect(session.outstandingCount).toBe(1);
    session.complete(4n);
    session.complete(4n); // idempotent
    expect(session.firstUnackedSeq()).toBe(5n);
    expect(session.outstandingCount).toBe(0);
  });

  it("refuses seqs it never handed out and use after expiry", () => {
    const session = new ShardSession(1, 10n, 0);
    expect(() => session.complete(1n)).toThrow(AssertionError);
    session.expired = true;
    expect(() => session.allocate()).toThrow(AssertionError);
    expect(() => new ShardSession(1, 0n, 0)).toThrow(AssertionError);
  });
});
