import { describe, expect, it } from "vitest";
import { CounterTable } from "../../src/shard/counter-table.js";
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
