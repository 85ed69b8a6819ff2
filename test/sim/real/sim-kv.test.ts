/** The simulated disks' crash semantics (sim-kv.ts, sim-checkpoints.ts), and NodeStore over the simulated engine. */
import { describe, expect, it } from "vitest";
import { EntryType } from "../../../src/raft/types.js";
import { NodeStore } from "../../../src/storage/node-store.js";
import { createPrng } from "../../../src/util/prng.js";
import { EventQueue } from "../event-queue.js";
import { silentLogger } from "./cluster.js";
import { SimCheckpointDisk } from "./sim-checkpoints.js";
import { SimDisk } from "./sim-kv.js";

/** A tiny virtual-time driver: runs queued events in time order, letting promises settle between them. */
class Clock {
  now = 0;
  readonly queue = new EventQueue(100_000);
  schedule = (delayMs: number, run: () => void): void => this.queue.push(this.now + delayMs, run);
  async runUntilIdle(): Promise<void> {
    for (;;) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const event = this.queue.pop();
      if (event === undefined) return;
      this.now = event.timeMs;
      event.run();
    }
  }
  /** Runs events strictly before `timeMs`. */
  async runBefore(timeMs: number): Promise<void> {
    for (;;) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const next = this.queue.peekTimeMs();
      if (next === undefined || next >= timeMs) return;
      const event = this.queue.pop()!;
      this.now = event.timeMs;
      event.run();
    }
  }
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const put = (key: string, value: string) => ({ type: "put" as const, key: bytes(key), value: bytes(value) });

describe("SimDisk", () => {
  it("keeps synced batches, and a prefix of the unsynced ones, never a torn batch", async () => {
    const outcomes = new Set<string>();
    for (let seed = 1; seed <= 40; seed++) {
      const clock = new Clock();
      const disk = new SimDisk(createPrng(seed), clock.schedule, () => clock.now);
      const engine = disk.open();
      const writes = Promise.all([
        engine.write([put("a", "1")], { sync: true }),
        engine.write([put("b", "1"), put("c", "1")], { sync: false }),
        engine.write([put("d", "1"), put("e", "1")], { sync: false }),
      ]);
      await clock.runUntilIdle();
      await writes;
      disk.crash();
      const after = disk.open();
      const present = await Promise.all(
        ["a", "b", "c", "d", "e"].map(async (key) => ((await after.get(bytes(key))) === undefined ? "-" : key)),
      );
      const state = present.join("");
      outcomes.add(state);
      // The synced batch survives; a batch survives whole; never a later batch without the earlier one.
      expect(["abcde", "abc--", "a----"]).toContain(state);
    }
    expect(outcomes.size).toBeGreaterThan(1);
  });

  it("decides the fate of a write in flight at the crash; the old handle hangs", async () => {
    const seen = new Set<boolean>();
    for (let seed = 1; seed <= 30; seed++) {
      const clock = new Clock();
      const disk = new SimDisk(createPrng(seed), clock.schedule, () => clock.now);
      const engine = disk.open();
      let resolved = false;
      void engine.write([put("x", "1")], { sync: true }).then(() => (resolved = true));
      expect(disk.writesInFlight).toBe(1);
      disk.crash();
      await clock.runUntilIdle();
      expect(resolved).toBe(false);
      seen.add((await disk.open().get(bytes("x"))) !== undefined);
    }
    expect([...seen].sort()).toEqual([false, true]);
  });

  it("runs NodeStore: what a synced write stored is there after a crash and a reopen", async () => {
    const clock = new Clock();
    const disk = new SimDisk(createPrng(7), clock.schedule, () => clock.now);
    const opening = NodeStore.openWith(disk.open(), "sim", { logger: silentLogger });
    await clock.runUntilIdle();
    const store = await opening;
    const batch = store.batch();
    batch.appendEntries(3, [
      { index: 1, term: 1, type: EntryType.Normal, data: bytes("one") },
      { index: 2, term: 1, type: EntryType.Normal, data: bytes("two") },
    ]);
    batch.setHardState(3, { term: 1, vote: 1, commit: 2 });
    const written = store.write(batch, { sync: true });
    await clock.runUntilIdle();
    await written;
    const unsynced = store.batch();
    unsynced.appendEntries(3, [{ index: 3, term: 1, type: EntryType.Normal, data: bytes("three") }]);
    void store.write(unsynced, { sync: false });
    disk.crash();
    const reopening = NodeStore.openWith(disk.open(), "sim", { logger: silentLogger });
    await clock.runUntilIdle();
    const reopened = await reopening;
    const loading = reopened.loadGroup(3);
    await clock.runUntilIdle();
    const group = await loading;
    expect(group.hardState).toEqual({ term: 1, vote: 1, commit: 2 });
    expect(group.entries.map((entry) => entry.index).slice(0, 2)).toEqual([1, 2]);
    expect(group.entries.length).toBeLessThanOrEqual(3);
    expect(await reopened.listGroups()).toEqual([3]);
  });
});

describe("SimCheckpointDisk", () => {
  it("a written checkpoint survives a crash; one in flight is never listed or read, but may leave torn debris", async () => {
    let debris = 0;
    let damages = new Set<string>();
    for (let seed = 1; seed <= 30; seed++) {
      const clock = new Clock();
      const disk = new SimCheckpointDisk(createPrng(seed), clock.schedule);
      const store = disk.open();
      const data = Uint8Array.from({ length: 64 }, (_, i) => i);
      const first = store.write(5, 10, [data.subarray(0, 20), data.subarray(20)]);
      await clock.runUntilIdle();
      await first;
      let second = false;
      void store.write(5, 20, [data]).then(() => (second = true));
      disk.crash();
      await clock.runUntilIdle();
      expect(second).toBe(false);
      const after = disk.open();
      expect(await after.list(5)).toEqual([10]);
      expect(await after.read(5, 10)).toEqual(data);
      expect(await after.size(5, 10)).toBe(64);
      expect(await after.readChunk(5, 10, 60, 10)).toEqual(data.subarray(60));
      await expect(after.read(5, 20)).rejects.toThrow(/does not exist/);
      debris += disk.leftovers().length;
      damages = new Set([...damages, ...disk.leftovers().map((l) => l.damage)]);
      for (const leftover of disk.leftovers()) expect(leftover.data).not.toEqual(data);
    }
    expect(debris).toBeGreaterThan(0);
    expect([...damages].sort()).toEqual(["flipped", "torn-prefix"]);
  });

  it("remove and removeGroup are durable once resolved; the planted defect tears files under their final names", async () => {
    const clock = new Clock();
    const disk = new SimCheckpointDisk(createPrng(3), clock.schedule);
    const store = disk.open();
    const writes = [store.write(1, 5, [bytes("five")]), store.write(1, 6, [bytes("six")]), store.write(2, 7, [bytes("seven")])];
    await clock.runUntilIdle();
    await Promise.all(writes);
    const removing = [store.remove(1, 5), store.remove(1, 99), store.removeGroup(2)];
    await clock.runUntilIdle();
    await Promise.all(removing);
    disk.crash();
    const after = disk.open();
    expect(await after.list(1)).toEqual([6]);
    expect(await after.list(2)).toEqual([]);

    let tornUnderFinalName = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const c = new Clock();
      const planted = new SimCheckpointDisk(createPrng(seed), c.schedule, {
        writeMsMin: 1,
        writeMsMax: 2,
        removeMsMax: 1,
        tearFinalNames: true,
      });
      void planted.open().write(1, 9, [Uint8Array.from({ length: 32 }, (_, i) => i + 1)]);
      planted.crash();
      const listed = await planted.open().list(1);
      if (listed.length > 0) {
        tornUnderFinalName++;
        expect(await planted.open().read(1, 9)).not.toEqual(Uint8Array.from({ length: 32 }, (_, i) => i + 1));
      }
    }
    expect(tornUnderFinalName).toBeGreaterThan(0);
  });
});
