import { describe, expect, it } from "vitest";
import { combineHotRead, HotTable, planHotRead } from "../../src/client/hot.js";
import { hotSubKey } from "../../src/meta/hot.js";
import { slotOf } from "../../src/meta/slots.js";
import { OutOfRangeError } from "../../src/util/errors.js";

const key = (text: string) => Buffer.from(text);
const route = (text: string, tags: number[], writable: number) => ({ key: key(text), tags, writable });
const read = (value: bigint, exists = true) => ({ value, version: 7n, exists });

describe("the client's hot table", () => {
  it("takes the list of a newer map only, and spreads adds round robin over the writable sub-counters", () => {
    const table = new HotTable();
    table.update([route("h", [0, 5, 9], 2)], "10");
    table.update([], "9"); // an older map (a lagging node): ignored
    const hot = table.lookup(key("h"))!;
    expect(hot.tags).toEqual([0, 5, 9]);
    const picked = Array.from({ length: 6 }, () => table.nextSubKey(hot).toString("latin1"));
    expect(new Set(picked)).toEqual(new Set(["h", "h\0hot:5"]));
    expect(picked.filter((k) => k === "h")).toHaveLength(3);
    table.update([route("h", [0, 5, 9], 3)], "12");
    expect(new Set(Array.from({ length: 3 }, () => table.nextSubKey(table.lookup(key("h"))!).toString("latin1")))).toEqual(
      new Set(["h", "h\0hot:5", "h\0hot:9"]),
    );
    table.update([], "13");
    expect(table.lookup(key("h"))).toBeUndefined();
  });

  it("plans a read: hot keys expand to every sub-counter (sub-counter 0 names the count), others pass through", () => {
    const table = new HotTable();
    expect(planHotRead(table, [key("a")])).toBeUndefined();
    table.update([route("h", [0, 5, 9], 1)], "3");
    expect(planHotRead(table, [key("a"), key("b")])).toBeUndefined();
    const plan = planHotRead(table, [key("a"), key("h")])!;
    expect(plan.keys.map((k) => k.toString("latin1"))).toEqual(["a", "h", "h\0hot:5", "h\0hot:9"]);
    expect(plan.claims).toEqual([0, 3, 0, 0]);
    expect(plan.slots).toEqual(plan.keys.map((k) => slotOf(k)));
    expect(plan.spans).toEqual([
      { start: 0, count: 1 },
      { start: 1, count: 3 },
    ]);
    const combined = combineHotRead(plan, [read(4n), read(1n), read(0n, false), read(6n)], () => "h");
    expect(combined).toEqual([read(4n), { ...read(7n), subCounters: 3 }]);
    const absent = combineHotRead(plan, [read(4n), read(0n, false), read(0n, false), read(0n, false)], () => "h");
    expect(absent[1]).toMatchObject({ value: 0n, exists: false, subCounters: 3 });
    expect(Buffer.from(hotSubKey(key("h"), 9)).toString("latin1")).toBe("h\0hot:9");
  });

  it("a sum outside int64 is OUT_OF_RANGE, never wrapped", () => {
    const table = new HotTable();
    table.update([route("h", [0, 1], 2)], "1");
    const plan = planHotRead(table, [key("h")])!;
    const max = 2n ** 63n - 1n;
    expect(() => combineHotRead(plan, [read(max), read(1n)], () => "h")).toThrow(OutOfRangeError);
    expect(combineHotRead(plan, [read(max), read(-1n)], () => "h")[0]!.value).toBe(max - 1n);
  });
});
