import { describe, expect, it, vi } from "vitest";
import { CounterTable, ROW_BYTES } from "../../src/shard/counter-table.js";
import { createPrng, type Prng } from "../../src/util/prng.js";

function randomKey(prng: Prng, keySpace: number, longKeys: boolean): Uint8Array {
  const id = prng.nextInt(keySpace);
  const length = longKeys ? 100 + (id % 150) : 1 + (id % 12);
  const bytes = new Uint8Array(length);
  // Deterministic bytes per id, including 0x00 and 0xff, so equal ids give equal keys.
  for (let i = 0; i < length; i++) bytes[i] = (id * 31 + i * 7 + (id >> 3)) & 0xff;
  bytes[0] = id & 0xff;
  if (length > 1) bytes[1] = (id >> 8) & 0xff;
  return bytes;
}

const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/**
 * Random inserts, writes and removals checked against a Map (seeded): membership after every step,
 * every key's value, version and bytes plus the sorted order every 1,000 steps. Mismatches are
 * collected with plain comparisons and asserted once, to keep the test fast.
 */
function modelCheck(seed: number, steps: number, keySpace: number, longKeys: boolean): void {
  const prng = createPrng(seed);
  const table = new CounterTable(seed);
  const model = new Map<string, { key: Uint8Array; value: bigint; version: number }>();
  const problems: string[] = [];
  for (let step = 1; step <= steps && problems.length === 0; step++) {
    const key = randomKey(prng, keySpace, longKeys);
    const name = hex(key);
    if (prng.nextInt(10) < 6) {
      const slot = table.findOrInsert(key);
      const value = BigInt(prng.nextU32()) - 2n ** 31n;
      table.write(slot, value, step);
      model.set(name, { key, value, version: step });
    } else {
      const slot = table.find(key);
      if (slot >= 0 !== model.has(name)) problems.push(`step ${step}: find(${name}) = ${slot}`);
      if (slot >= 0) {
        table.remove(slot);
        model.delete(name);
      }
    }
    if (table.size !== model.size) problems.push(`step ${step}: size ${table.size} != ${model.size}`);
    if (step % 1000 === 0 || step === steps) {
      for (const [modelKey, expected] of model) {
        const slot = table.find(expected.key);
        if (
          slot < 0 ||
          table.value(slot) !== expected.value ||
          table.version(slot) !== expected.version ||
          hex(table.keyBytes(slot)) !== modelKey
        ) {
          problems.push(`step ${step}: key ${modelKey} lost or wrong (slot ${slot})`);
        }
      }
      const sorted = Array.from(table.sortedSlots(), (slot) => hex(table.keyBytes(slot)));
      // Hex keeps byte order and a prefix sorts first, so string order is byte order.
      const expectedOrder = [...model.keys()].sort();
      if (sorted.join() !== expectedOrder.join()) problems.push(`step ${step}: sorted order differs`);
    }
  }
  expect(problems).toEqual([]);
}

describe("CounterTable", () => {
  it("matches a Map model under random inserts, writes and removals (index growth, backward-shift deletion)", () => {
    modelCheck(1, 20_000, 3_000, false);
    modelCheck(2, 20_000, 300, false);
  });

  it("survives arena compaction with long keys", () => {
    modelCheck(3, 6_000, 800, true);
  });

  it("find on a missing key returns -1 and findOrInsert creates a not-existing (version 0) slot", () => {
    const table = new CounterTable();
    const key = new Uint8Array([0, 0xff]);
    expect(table.find(key)).toBe(-1);
    const slot = table.findOrInsert(key);
    expect(table.version(slot)).toBe(0);
    expect(table.value(slot)).toBe(0n);
    expect(table.findOrInsert(new Uint8Array([0, 0xff]))).toBe(slot);
    expect(table.find(new Uint8Array([0]))).toBe(-1);
    expect(table.find(new Uint8Array([0, 0xff, 0]))).toBe(-1);
  });

  it("reuses freed slots and keeps keys already handed out intact", () => {
    const table = new CounterTable();
    const a = table.findOrInsert(new Uint8Array([1, 2, 3]));
    table.write(a, 5n, 1);
    const handedOut = table.keyBytes(a);
    table.remove(a);
    const b = table.findOrInsert(new Uint8Array([9]));
    expect(b).toBe(a);
    expect(Array.from(handedOut)).toEqual([1, 2, 3]);
    expect(table.find(new Uint8Array([1, 2, 3]))).toBe(-1);
  });

  it("rejects a value outside int64 (typed arrays would wrap silently)", () => {
    const table = new CounterTable();
    const slot = table.findOrInsert(new Uint8Array([1]));
    expect(() => table.write(slot, 2n ** 63n, 1)).toThrow(/outside int64/);
  });
});

describe("sliced export and growth ahead of need", () => {
  const key = (i: number) => new TextEncoder().encode(`user:${String(i).padStart(10, "0")}:likes`);
  const pause = () => Promise.resolve();

  it("exportBlocksInSlices gives the same blocks as exportBlocks, in many slices", async () => {
    const table = new CounterTable(7);
    for (let i = 0; i < 20_000; i++) table.write(table.findOrInsert(key(i)), BigInt(i), i + 1);
    let pauses = 0;
    const sliced = await table.exportBlocksInSlices(async () => void pauses++, 4096);
    const whole = table.exportBlocks();
    expect(pauses).toBeGreaterThan(100);
    expect(sliced.count).toBe(whole.count);
    expect(Buffer.from(sliced.rows).equals(Buffer.from(whole.rows))).toBe(true);
    expect(Buffer.from(sliced.arena).equals(Buffer.from(whole.arena))).toBe(true);
    expect([...sliced.index]).toEqual([...whole.index]);
  });

  it("a table changed during a sliced export is refused, not exported half old, half new", async () => {
    const table = new CounterTable(7);
    for (let i = 0; i < 5_000; i++) table.write(table.findOrInsert(key(i)), 1n, i + 1);
    let inserted = false;
    const changing = async () => {
      if (!inserted) table.write(table.findOrInsert(key(99_999)), 1n, 99_999);
      inserted = true;
    };
    await expect(table.exportBlocksInSlices(changing, 4096)).rejects.toThrow(/changed during a sliced export/);
  });

  it("growAhead grows rows, index and arena before an insert needs it; every key keeps its value", async () => {
    const table = new CounterTable(11);
    let i = 0;
    let grown = 0;
    let pauses = 0;
    for (; i < 300_000; i++) {
      table.write(table.findOrInsert(key(i)), BigInt(i) * 3n, i + 1);
      if (table.growthDue()) {
        const before = table.blockBytes();
        await table.growAhead(async () => void pauses++, 64 * 1024);
        grown++;
        expect(table.growthDue()).toBe(false);
        const after = table.blockBytes();
        expect(after.rows).toBe(before.rows); // same rows in use, more capacity behind them
      }
    }
    expect(grown).toBeGreaterThanOrEqual(3);
    expect(pauses).toBeGreaterThan(grown);
    for (let k = 0; k < i; k += 997) {
      const slot = table.find(key(k));
      expect(slot).toBeGreaterThanOrEqual(0);
      expect(table.value(slot)).toBe(BigInt(k) * 3n);
    }
    expect(table.find(key(i + 1))).toBe(-1);
    await table.growAhead(pause); // nothing due: a no-op
    expect(table.size).toBe(i);
  });

  it("grown ahead whenever due, a large table never grows inside an insert", async () => {
    const table = new CounterTable(13);
    const inside: string[] = [];
    const proto = CounterTable.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
    const spied = ["resizeRows", "growIndex", "growArena"].map((name) => {
      const original = proto[name]!;
      const spy = vi.spyOn(proto, name as never).mockImplementation(function (this: CounterTable, ...args: unknown[]) {
        if (table.blockBytes().rows >= 64 * 1024 * ROW_BYTES) inside.push(`${name} at ${table.size}`);
        return original.apply(this, args);
      });
      return spy;
    });
    try {
      // Batches of 1,000 inserts (as one applied entry might hold), growAhead between them when due.
      for (let i = 0; i < 400_000; i++) {
        table.write(table.findOrInsert(key(i)), 1n, i + 1);
        if (i % 1000 === 999 && table.growthDue()) await table.growAhead(pause);
      }
    } finally {
      for (const spy of spied) spy.mockRestore();
    }
    expect(inside).toEqual([]);
  });
});
