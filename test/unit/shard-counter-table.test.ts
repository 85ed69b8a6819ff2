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

/** Random inserts, writes and removals checked against a Map after every step (seeded). */
function modelCheck(seed: number, steps: number, keySpace: number, longKeys: boolean): void {
  const prng = createPrng(seed);
  const table = new CounterTable(seed);
  const model = new Map<string, { value: bigint; version: number }>();
  for (let step = 1; step <= steps; step++) {
    const key = randomKey(prng, keySpace, longKeys);
    const name = hex(key);
    const roll = prng.nextInt(10);
    if (roll < 6) {
      const slot = table.findOrInsert(key);
      const value = BigInt(prng.nextU32()) - 2n ** 31n;
      table.write(slot, value, step);
      model.set(name, { value, version: step });
    } else {
      const slot = table.find(key);
      expect(slot >= 0).toBe(model.has(name));
      if (slot >= 0) {
        table.remove(slot);
        model.delete(name);
      }
    }
    expect(table.size).toBe(model.size);
    if (step % 97 === 0 || step === steps) {
      for (const [modelKey, expected] of model) {
        const bytes = Uint8Array.from(modelKey.match(/../g)!.map((h) => parseInt(h, 16)));
        const slot = table.find(bytes);
        expect(slot).toBeGreaterThanOrEqual(0);
        expect({ value: table.value(slot), version: table.version(slot) }).toEqual(expected);
        expect(hex(table.keyBytes(slot))).toBe(modelKey);
      }
      const sorted = table.sortedSlots().map((slot) => hex(table.keyBytes(slot)));
      expect(sorted).toEqual([...model.keys()].sort(compareHexBytes));
    }
  }
}

/** Bytewise order of two hex-encoded keys (a shorter prefix first). */
function compareHexBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0; // hex preserves byte order, and a prefix sorts first
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
