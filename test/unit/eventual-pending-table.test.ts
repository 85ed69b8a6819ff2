/**
 * The eventual buffer's pending table (src/server/eventual/pending-table.ts) against a plain Map
 * model, seeded: packed folds, single adds, sets (what a flush does), removals at zero, deltas past
 * 2^53 and int64, arena compaction and index growth; and the buffer's packed-record replay.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EventualBuffer } from "../../src/server/eventual/buffer.js";
import { PendingTable } from "../../src/server/eventual/pending-table.js";
import { encodePackedAdds, type PackedAdd } from "../../src/util/packed-adds.js";

interface ModelRow {
  delta: bigint;
  adds: number;
  oldestMs: number;
}

/** mulberry32: a small seeded generator, so a failure replays. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const latin1 = (key: Uint8Array) => Buffer.from(key).toString("latin1");

function expectSame(table: PendingTable, model: Map<string, ModelRow>): void {
  expect(table.size).toBe(model.size);
  const seen = new Map<string, ModelRow>();
  for (const row of table.rows())
    seen.set(latin1(table.key(row)), { delta: table.delta(row), adds: table.adds(row), oldestMs: table.oldestMs(row) });
  expect(seen).toEqual(model);
  for (const [id, entry] of model) {
    const row = table.find(Buffer.from(id, "latin1"));
    expect(row).toBeGreaterThanOrEqual(0);
    expect(table.delta(row)).toBe(entry.delta);
  }
}

function modelAdd(model: Map<string, ModelRow>, key: Uint8Array, delta: bigint, atMs: number): void {
  if (delta === 0n) return;
  const id = latin1(key);
  const entry = model.get(id) ?? { delta: 0n, adds: 0, oldestMs: atMs };
  entry.delta += delta;
  entry.adds++;
  entry.oldestMs = Math.min(entry.oldestMs, atMs);
  if (entry.delta === 0n) model.delete(id);
  else model.set(id, entry);
}

describe("eventual pending table", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`matches a Map model under random folds, sets and removals (seed ${seed})`, () => {
      const next = random(seed);
      const table = new PendingTable();
      const model = new Map<string, ModelRow>();
      // Few keys of varied lengths (some sharing prefixes): many hits, removals at zero, reuse of rows.
      const keys = Array.from({ length: 300 }, (_, i) => {
        const length = 1 + Math.floor(next() * 40);
        return Uint8Array.from({ length }, (_, j) => (j === 0 ? i & 0xff : (i * 31 + j) & 0xff));
      });
      const delta = (): bigint => {
        const pick = next();
        if (pick < 0.6) return BigInt(Math.floor(next() * 7) - 3); // often cancels to zero
        if (pick < 0.8) return BigInt(Math.floor((next() - 0.5) * 2 ** 40));
        if (pick < 0.9) return (next() < 0.5 ? 1n : -1n) * (2n ** 62n + BigInt(Math.floor(next() * 1000))); // past 2^53
        return next() < 0.5 ? 2n ** 63n - 1n : -(2n ** 63n);
      };
      for (let step = 0; step < 3000; step++) {
        const atMs = 1000 + Math.floor(next() * 1000);
        const action = next();
        if (action < 0.5) {
          const adds: PackedAdd[] = Array.from({ length: 1 + Math.floor(next() * 20) }, () => ({
            key: keys[Math.floor(next() * keys.length)]!,
            delta: delta(),
          }));
          table.addPacked(encodePackedAdds(adds), atMs);
          for (const add of adds) modelAdd(model, add.key, add.delta, atMs);
        } else if (action < 0.8) {
          const key = keys[Math.floor(next() * keys.length)]!;
          const d = delta();
          table.add(key, d, atMs);
          modelAdd(model, key, d, atMs);
        } else {
          // A flush subtracts what it carries: set (or insert) the rest, as BufferState.applyFlush does.
          const key = keys[Math.floor(next() * keys.length)]!;
          const carried = delta();
          const row = table.find(key);
          const id = latin1(key);
          const left = (model.get(id)?.delta ?? 0n) - carried;
          if (row < 0) table.insert(key, left, 1, atMs);
          else table.set(row, left, 1, Math.max(table.oldestMs(row), atMs));
          if (left === 0n) model.delete(id);
          else model.set(id, { delta: left, adds: 1, oldestMs: Math.max(model.get(id)?.oldestMs ?? atMs, atMs) });
        }
        if (step % 250 === 0) expectSame(table, model);
      }
      expectSame(table, model);
    });
  }

  it("grows past many distinct keys, and drains to empty (arena compaction, index growth)", () => {
    const table = new PendingTable();
    const model = new Map<string, ModelRow>();
    for (let round = 0; round < 3; round++) {
      const adds: PackedAdd[] = Array.from({ length: 20_000 }, (_, i) => ({
        key: Buffer.from(`r${round}:key:${i}`),
        delta: BigInt(i + 1),
      }));
      table.addPacked(encodePackedAdds(adds), round);
      for (const add of adds) modelAdd(model, add.key, add.delta, round);
      expectSame(table, model);
      for (const add of adds) {
        table.add(add.key, -add.delta, round);
        modelAdd(model, add.key, -add.delta, round);
      }
      expect(table.size).toBe(0);
      expect([...table.rows()]).toEqual([]);
    }
  });
});

describe("eventual buffer with packed records", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("replays packed adds (with request ids) to the same sums, seeded against a model", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tally-eventual-packed-"));
    dirs.push(dir);
    const next = random(42);
    const buffer = await EventualBuffer.open({ dataDir: dir, fsync: true, compactBytes: 1 << 30, nowMs: () => 5 });
    const model = new Map<string, bigint>();
    const writes: Promise<boolean>[] = [];
    for (let request = 0; request < 40; request++) {
      const adds: PackedAdd[] = Array.from({ length: 1 + Math.floor(next() * 3000) }, () => ({
        key: Buffer.from(`k${Math.floor(next() * 500)}`),
        delta: BigInt(Math.floor(next() * 11) - 5),
      }));
      // Large requests go out as writev parts, small ones as one write: both kinds interleave.
      writes.push(buffer.addPacked(encodePackedAdds(adds), `req-${request}`));
      for (const add of adds) model.set(latin1(add.key), (model.get(latin1(add.key)) ?? 0n) + add.delta);
    }
    expect(await Promise.all(writes)).toEqual(writes.map(() => true));
    expect(await buffer.addPacked(encodePackedAdds([{ key: Buffer.from("k1"), delta: 9n }]), "req-3")).toBe(false); // a retry
    const sums = (b: EventualBuffer) => new Map([...b.pendingKeys()].map((entry) => [latin1(entry.key), entry.delta]));
    const expected = new Map([...model].filter(([, delta]) => delta !== 0n));
    expect(sums(buffer)).toEqual(expected);
    await buffer.close();
    const again = await EventualBuffer.open({ dataDir: dir, fsync: true, compactBytes: 1 << 30, nowMs: () => 6 });
    expect(sums(again)).toEqual(expected);
    expect(again.state.requestIds.size).toBe(40);
    await again.close();
  });
});
