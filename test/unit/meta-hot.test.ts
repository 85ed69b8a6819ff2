import { describe, expect, it } from "vitest";
import { encodeMetaEntry, hotRecordOf, MetaStateMachine, shardOfSlotIn, type MetaCommand, type ShardRecord } from "../../src/meta/map.js";
import { chooseHotTags, HOT_SUB_COUNTERS_MAX, HotIndex, hotSubKey, isHotSubKey } from "../../src/meta/hot.js";
import { evenSlotRanges, slotOf } from "../../src/meta/slots.js";

const node = (id: number) => ({ id, client: `127.0.0.1:${7000 + id}`, peer: `127.0.0.1:${7100 + id}`, zone: "z" });
const shards = (count: number): ShardRecord[] =>
  evenSlotRanges(count).map((range, i) => ({
    id: i + 1,
    slotStart: range.start,
    slotEnd: range.end,
    epoch: 1,
    voters: [1, 2, 3],
    learners: [],
    votersOutgoing: [],
  }));
const init = (shardCount: number): MetaCommand => ({
  type: "init",
  clusterName: "t",
  replicationFactor: 3,
  nodes: [node(1), node(2), node(3)],
  shards: shards(shardCount),
  metaVoters: [1, 2, 3],
});
const key = (text: string) => Buffer.from(text);

function machineWith(shardCount: number, ...entries: MetaCommand[][]) {
  const machine = new MetaStateMachine();
  machine.applyEntry(1, encodeMetaEntry(1000, [init(shardCount)]));
  const results = entries.map((commands, i) => machine.applyEntry(i + 2, encodeMetaEntry(1000 + i, commands)));
  return { machine, results };
}

describe("hot counter declarations in the partition map", () => {
  it("declares S sub-counters on distinct shards when there are enough shards; sub-counter 0 is the key", () => {
    const { machine, results } = machineWith(8, [{ type: "hot-declare", key: key("likes:post-1"), subCounters: 4 }]);
    expect(results[0]).toEqual([{ ok: true, changed: true }]);
    const record = hotRecordOf(machine.map, key("likes:post-1"))!;
    expect(record.tags).toHaveLength(4);
    expect(record.tags[0]).toBe(0);
    expect(record.writable).toBe(1);
    expect(Buffer.from(hotSubKey(record.key, 0)).toString()).toBe("likes:post-1");
    const shardsUsed = record.tags.map((tag) => shardOfSlotIn(machine.map, slotOf(hotSubKey(record.key, tag))));
    expect(new Set(shardsUsed).size).toBe(4);
    expect(new Set(record.tags.map((tag) => Buffer.from(hotSubKey(record.key, tag)).toString("hex"))).size).toBe(4);
  });

  it("S only grows: raising keeps the old tags, an equal S is a no-op, a smaller S is refused and changes nothing", () => {
    const { machine, results } = machineWith(
      4,
      [{ type: "hot-declare", key: key("k"), subCounters: 2 }],
      [{ type: "hot-declare", key: key("k"), subCounters: 5 }],
      [{ type: "hot-declare", key: key("k"), subCounters: 5 }],
      [{ type: "hot-declare", key: key("k"), subCounters: 3 }],
    );
    expect(results.map((r) => r[0]!.ok)).toEqual([true, true, true, false]);
    expect(results[2]![0]).toEqual({ ok: true, changed: false });
    expect(results[3]![0]).toMatchObject({ code: "FAILED_PRECONDITION", message: expect.stringMatching(/only grows/) });
    const record = hotRecordOf(machine.map, key("k"))!;
    expect(record.tags).toHaveLength(5);
    expect(record.declaredVersion).toBe(3);
    // With 4 shards and 5 sub-counters, one shard holds two; none holds three.
    const perShard = new Map<number, number>();
    for (const tag of record.tags) {
      const shard = shardOfSlotIn(machine.map, slotOf(hotSubKey(record.key, tag)));
      perShard.set(shard, (perShard.get(shard) ?? 0) + 1);
    }
    expect(perShard.size).toBe(4);
    expect(Math.max(...perShard.values())).toBe(2);
  });

  it("refuses bad input with INVALID_ARGUMENT and changes nothing", () => {
    const bad: MetaCommand[] = [
      { type: "hot-declare", key: key("k"), subCounters: 1 },
      { type: "hot-declare", key: key("k"), subCounters: HOT_SUB_COUNTERS_MAX + 1 },
      { type: "hot-declare", key: key("k"), subCounters: 2.5 },
      { type: "hot-declare", key: new Uint8Array(0), subCounters: 2 },
      { type: "hot-declare", key: new Uint8Array(241), subCounters: 2 },
      { type: "hot-declare", key: hotSubKey(key("k"), 3), subCounters: 2 },
      { type: "hot-declare", key: "k" as unknown as Uint8Array, subCounters: 2 },
      { type: "hot-activate", key: key("k"), writable: 0 },
    ];
    const { machine, results } = machineWith(4, [{ type: "hot-declare", key: key("k"), subCounters: 2 }], bad);
    expect(results[1]!.map((r) => (r.ok ? "ok" : r.code))).toEqual(bad.map(() => "INVALID_ARGUMENT"));
    expect(machine.map.hot).toHaveLength(1);
    expect(hotRecordOf(machine.map, key("k"))!.tags).toHaveLength(2);
  });

  it("activation lets writers use new sub-counters, never more than declared, never fewer than before", () => {
    const { machine, results } = machineWith(
      4,
      [{ type: "hot-declare", key: key("k"), subCounters: 3 }],
      [{ type: "hot-activate", key: key("k"), writable: 9 }],
      [{ type: "hot-activate", key: key("k"), writable: 2 }],
      [{ type: "hot-activate", key: key("other"), writable: 2 }],
    );
    expect(results[1]![0]).toEqual({ ok: true, changed: true });
    expect(results[2]![0]).toEqual({ ok: true, changed: false });
    expect(results[3]![0]).toMatchObject({ ok: false, code: "NOT_FOUND" });
    expect(hotRecordOf(machine.map, key("k"))!.writable).toBe(3);
  });

  it("survives a snapshot and restores a map from before hot counters existed", () => {
    const { machine } = machineWith(4, [{ type: "hot-declare", key: key("k"), subCounters: 3 }]);
    const copy = MetaStateMachine.restore(machine.snapshot());
    expect(hotRecordOf(copy.map, key("k"))!.tags).toEqual(hotRecordOf(machine.map, key("k"))!.tags);
    const old = new MetaStateMachine();
    old.applyEntry(1, encodeMetaEntry(1000, [init(2)]));
    delete (old.map as { hot?: unknown }).hot;
    const restored = MetaStateMachine.restore(old.snapshot());
    expect(hotRecordOf(restored.map, key("k"))).toBeUndefined();
    expect(restored.applyEntry(2, encodeMetaEntry(2000, [{ type: "hot-declare", key: key("k"), subCounters: 2 }]))).toEqual([
      { ok: true, changed: true },
    ]);
  });
});

describe("sub-counter keys", () => {
  it("are deterministic, distinct and recognisable; the same inputs give the same tags", () => {
    const base = key("page:home");
    expect(hotSubKey(base, 0)).toBe(base);
    expect(Buffer.from(hotSubKey(base, 7)).toString("latin1")).toBe("page:home\0hot:7");
    expect(isHotSubKey(hotSubKey(base, 7))).toBe(true);
    expect(isHotSubKey(base)).toBe(false);
    const ranges = evenSlotRanges(3);
    const shardOf = (slot: number) => ranges.findIndex((range) => slot >= range.start && slot < range.end) + 1;
    const tags = chooseHotTags(base, [], 6, shardOf);
    expect(chooseHotTags(base, [], 6, shardOf)).toEqual(tags);
    expect(chooseHotTags(base, tags.slice(0, 2), 6, shardOf).slice(0, 2)).toEqual(tags.slice(0, 2));
    const counts = [0, 0, 0];
    for (const tag of tags) counts[shardOf(slotOf(hotSubKey(base, tag))) - 1]!++;
    expect(counts).toEqual([2, 2, 2]);
  });

  it("one shard: every sub-counter on it (nothing better exists)", () => {
    expect(chooseHotTags(key("x"), [], 4, () => 1)).toEqual([0, 1, 2, 3]);
  });

  it("HotIndex looks keys up and follows changes of the list", () => {
    const index = new HotIndex();
    const records = [{ key: key("a"), tags: [0, 3], writable: 1, declaredVersion: 2, updatedMs: 0 }];
    index.refresh(records, 2);
    expect(index.lookup(key("a"))?.tags).toEqual([0, 3]);
    expect(index.lookup(key("b"))).toBeUndefined();
    index.refresh([], 3);
    expect(index.lookup(key("a"))).toBeUndefined();
  });
});
