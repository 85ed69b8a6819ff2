import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Level } from "level";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ConfState, type Entry, EntryType, type Snapshot } from "../../src/raft/types.js";
import {
  groupIdOfKey,
  groupStateKey,
  hardStateKey,
  identityKey,
  KeyPrefix,
  logKey,
  snapshotChunkKey,
  tombstoneKey,
} from "../../src/storage/keys.js";
import { NodeStore } from "../../src/storage/node-store.js";
import { decodeIdentity, encodeIdentity, STORE_FORMAT_VERSION } from "../../src/storage/records.js";
import { AssertionError } from "../../src/util/assert.js";
import { CorruptionError, UnavailableError } from "../../src/util/errors.js";

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

function entry(index: number, term: number, data = `cmd-${index}`, type = EntryType.Normal): Entry {
  return { index, term, type, data: bytes(data) };
}

function entries(from: number, to: number, term: number): Entry[] {
  const result: Entry[] = [];
  for (let i = from; i <= to; i++) result.push(entry(i, term));
  return result;
}

const confState: ConfState = { voters: [1, 2, 3], learners: [4], votersOutgoing: [], learnersNext: [], autoLeave: false };

function snapshotOf(index: number, term: number, dataBytes: number, seed = 1): Snapshot {
  const data = new Uint8Array(dataBytes);
  for (let i = 0; i < dataBytes; i++) data[i] = (i * 131 + seed * 17) & 0xff;
  return { metadata: { index, term, confState }, data };
}

/** Rewrites one raw value through a separate LevelDB handle (the store must be closed). */
async function tamper(dir: string, key: Uint8Array, change: (value: Uint8Array) => Uint8Array): Promise<void> {
  const raw = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
  await raw.open();
  try {
    const value = await raw.get(key);
    expect(value).toBeDefined();
    await raw.put(key, change(Uint8Array.from(value!)));
  } finally {
    await raw.close();
  }
}

const flipByte =
  (offset: number) =>
  (value: Uint8Array): Uint8Array => {
    const copy = value.slice();
    copy[offset < 0 ? copy.length + offset : offset]! ^= 0x20;
    return copy;
  };

describe("NodeStore", () => {
  let dir: string;
  let store: NodeStore | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tally-store-"));
  });

  afterEach(async () => {
    await store?.close();
    store = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  const open = async (options = {}): Promise<NodeStore> => {
    store = await NodeStore.open(dir, options);
    return store;
  };

  const reopen = async (): Promise<NodeStore> => {
    await store?.close();
    store = undefined;
    return open();
  };

  it("starts empty", async () => {
    const s = await open();
    expect(await s.listGroups()).toEqual([]);
    const group = await s.loadGroup(1);
    expect(group).toEqual({
      hardState: { term: 0, vote: 0, commit: 0 },
      confState: undefined,
      snapshot: undefined,
      entries: [],
      applied: undefined,
    });
  });

  it("keeps a destroyed group's tombstone (its removal epoch) across a restart, and no group data", async () => {
    const s = await open();
    const batch = s.batch();
    batch.appendEntries(3, [{ term: 1, index: 1, type: 0, data: new Uint8Array([1]) }] as never);
    await s.write(batch, { sync: true });
    const destroy = s.batch();
    destroy.putTombstone(3, 17);
    destroy.destroyGroup(3);
    destroy.putTombstone(5, 2 ** 40);
    await s.write(destroy, { sync: true });
    const again = await reopen();
    expect(await again.listGroups()).toEqual([]);
    expect(await again.loadTombstones()).toEqual(
      new Map([
        [3, 17],
        [5, 2 ** 40],
      ]),
    );
    expect(() => again.batch().putTombstone(3, -1)).toThrow(/non-negative/);
  });

  it("round-trips entries, hard state, conf state and applied state of several groups", async () => {
    const s = await open();
    const batch = s.batch();
    batch.appendEntries(1, [entry(1, 1), entry(2, 1, "", EntryType.Normal), entry(3, 2, "cc", EntryType.ConfChange)]);
    batch.appendEntries(2, entries(1, 5, 3));
    batch.setHardState(1, { term: 2, vote: 3, commit: 2 });
    batch.setHardState(2, { term: 3, vote: 2, commit: 5 });
    batch.setConfState(1, confState);
    batch.setApplied(1, 2, 1_700_000_000_123);
    expect(batch.size).toBe(12);
    await s.write(batch, { sync: true });

    const one = await s.loadGroup(1);
    expect(one.entries).toEqual([entry(1, 1), entry(2, 1, ""), entry(3, 2, "cc", EntryType.ConfChange)]);
    expect(one.hardState).toEqual({ term: 2, vote: 3, commit: 2 });
    expect(one.confState).toEqual(confState);
    expect(one.applied).toEqual({ index: 2, clockMs: 1_700_000_000_123 });
    const two = await s.loadGroup(2);
    expect(two.entries).toEqual(entries(1, 5, 3));
    expect(two.confState).toBeUndefined();
    expect(two.applied).toBeUndefined();
    expect(await s.listGroups()).toEqual([1, 2]);
    expect(s.stats).toMatchObject({ batches: 1, syncs: 1 });
    expect(s.stats.bytesWritten).toBeGreaterThan(100);
  });

  it("keeps groups apart in key order: a group's log never leaks into its neighbour's", async () => {
    const s = await open();
    const batch = s.batch();
    // Group 256 shares the low byte with group 0; index 256 shares the low byte with index 0.
    batch.appendEntries(0, entries(1, 3, 1));
    batch.appendEntries(1, entries(1, 300, 1));
    batch.appendEntries(256, entries(1, 2, 7));
    batch.appendEntries(2 ** 32 - 1, entries(1, 1, 9));
    await s.write(batch, { sync: false });
    expect((await s.loadGroup(0)).entries.map((e) => e.index)).toEqual([1, 2, 3]);
    const one = (await s.loadGroup(1)).entries;
    expect(one.length).toBe(300);
    expect(one.every((e, i) => e.index === i + 1)).toBe(true);
    expect((await s.loadGroup(256)).entries.map((e) => e.term)).toEqual([7, 7]);
    expect((await s.loadGroup(2 ** 32 - 1)).entries.map((e) => e.term)).toEqual([9]);
    expect(await s.listGroups()).toEqual([0, 1, 256, 2 ** 32 - 1]);
  });

  it("truncates a conflicting suffix and appends the new tail (paper 5.3)", async () => {
    const s = await open();
    const first = s.batch();
    first.appendEntries(1, entries(1, 10, 1));
    await s.write(first, { sync: true });

    const second = s.batch();
    second.truncateAfter(1, 6, 10);
    second.appendEntries(1, entries(5, 6, 2));
    await s.write(second, { sync: true });

    const loaded = await s.loadGroup(1);
    expect(loaded.entries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 1],
      [5, 2],
      [6, 2],
    ]);
  });

  it("applies operations in call order within a batch", async () => {
    const s = await open();
    const setup = s.batch();
    setup.appendEntries(1, entries(1, 6, 1));
    await s.write(setup, { sync: false });
    // Truncating after the append would delete the new entries: later operations win.
    const batch = s.batch();
    batch.appendEntries(1, entries(4, 4, 2));
    batch.truncateAfter(1, 3, 6);
    await s.write(batch, { sync: false });
    expect((await s.loadGroup(1)).entries.map((e) => e.index)).toEqual([1, 2, 3]);
  });

  it("compacts the log behind a snapshot and loads snapshot + tail", async () => {
    const s = await open();
    const setup = s.batch();
    setup.appendEntries(1, entries(1, 20, 2));
    setup.setHardState(1, { term: 2, vote: 1, commit: 20 });
    await s.write(setup, { sync: true });

    const compact = s.batch();
    compact.putSnapshot(1, snapshotOf(15, 2, 100));
    compact.compactLog(1, 12, 1); // keep a tail below the snapshot, as the driver does
    await s.write(compact, { sync: true });

    const loaded = await s.loadGroup(1);
    expect(loaded.snapshot?.metadata).toEqual({ index: 15, term: 2, confState });
    expect(loaded.snapshot?.data).toEqual(snapshotOf(15, 2, 100).data);
    expect(loaded.entries.map((e) => e.index)).toEqual([16, 17, 18, 19, 20]);

    // A later compaction also removes what the earlier one kept below the snapshot (13..15).
    const again = s.batch();
    again.compactLog(1, 17, 16);
    await s.write(again, { sync: true });
    await s.close();
    store = undefined;
    const raw = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
    await raw.open();
    const remaining: Uint8Array[] = [];
    for await (const key of raw.keys({ gte: logKey(1, 0), lt: logKey(2, 0) })) remaining.push(Uint8Array.from(key));
    await raw.close();
    expect(remaining).toEqual([logKey(1, 18), logKey(1, 19), logKey(1, 20)]);
  });

  it("reports a log compacted past its snapshot as corruption, not as a silently shorter log", async () => {
    const s = await open();
    const batch = s.batch();
    batch.appendEntries(1, entries(1, 10, 1));
    batch.putSnapshot(1, snapshotOf(4, 1, 10));
    batch.compactLog(1, 6, 1);
    await s.write(batch, { sync: false });
    await expect(s.loadGroup(1)).rejects.toThrow(/gap: expected index 5, found 7/);
  });

  it("rejects a commit index beyond the stored log", async () => {
    const s = await open();
    const batch = s.batch();
    batch.appendEntries(1, entries(1, 3, 1));
    batch.setHardState(1, { term: 1, vote: 1, commit: 4 });
    await s.write(batch, { sync: false });
    await expect(s.loadGroup(1)).rejects.toBeInstanceOf(CorruptionError);
  });

  it("stores large snapshots in chunks and replaces a bigger one without leftovers", async () => {
    const s = await open({ snapshotChunkBytes: 1000 });
    const big = s.batch();
    big.putSnapshot(3, snapshotOf(50, 4, 4500, 1));
    await s.write(big, { sync: true });
    const loadedBig = await s.loadGroup(3);
    expect(loadedBig.snapshot?.data).toEqual(snapshotOf(50, 4, 4500, 1).data);

    const small = s.batch();
    small.putSnapshot(3, snapshotOf(80, 5, 1500, 2));
    await s.write(small, { sync: true });
    await s.close();
    store = undefined;

    const raw = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
    await raw.open();
    const chunkKeys: Uint8Array[] = [];
    for await (const key of raw.keys({ gte: snapshotChunkKey(3, 0), lt: snapshotChunkKey(4, 0) })) chunkKeys.push(Uint8Array.from(key));
    await raw.close();
    expect(chunkKeys).toEqual([snapshotChunkKey(3, 0), snapshotChunkKey(3, 1)]);

    const s2 = await open({ snapshotChunkBytes: 1000 });
    const loaded = await s2.loadGroup(3);
    expect(loaded.snapshot?.metadata.index).toBe(80);
    expect(loaded.snapshot?.data).toEqual(snapshotOf(80, 5, 1500, 2).data);
  });

  it("stores an empty snapshot", async () => {
    const s = await open();
    const batch = s.batch();
    batch.putSnapshot(1, snapshotOf(0, 0, 0));
    batch.appendEntries(1, entries(1, 2, 1));
    await s.write(batch, { sync: true });
    const loaded = await s.loadGroup(1);
    expect(loaded.snapshot?.data.length).toBe(0);
    expect(loaded.entries.length).toBe(2);
  });

  it("keeps everything across close and reopen", async () => {
    const s = await open();
    const batch = s.batch();
    batch.appendEntries(5, entries(11, 14, 3));
    batch.putSnapshot(5, snapshotOf(10, 3, 3000));
    batch.setHardState(5, { term: 3, vote: 5, commit: 13 });
    batch.setConfState(5, confState);
    batch.setApplied(5, 13, 42);
    batch.putGroupState(5, bytes("descriptor"));
    batch.putTombstone(6, 9);
    await s.write(batch, { sync: true });
    const before = await s.loadGroup(5);

    const s2 = await reopen();
    expect(await s2.loadGroup(5)).toEqual(before);
    expect(before.entries.map((e) => e.index)).toEqual([11, 12, 13, 14]);
    expect(before.applied).toEqual({ index: 13, clockMs: 42 });
    expect(await s2.getGroupState(5)).toEqual(bytes("descriptor"));
    expect(await s2.getGroupState(6)).toBeUndefined();
    expect(await s2.loadTombstones()).toEqual(new Map([[6, 9]]));
    expect(await s2.listGroups()).toEqual([5]);
  });

  it("keeps each group's state record apart and replaces it in place", async () => {
    const s = await open();
    const batch = s.batch();
    for (const group of [0, 1, 256, 2 ** 32 - 1]) batch.putGroupState(group, bytes(`state-${group}`));
    batch.putGroupState(1, bytes("replaced"));
    batch.putGroupState(256, new Uint8Array(0));
    await s.write(batch, { sync: false });
    expect(await s.getGroupState(0)).toEqual(bytes("state-0"));
    expect(await s.getGroupState(1)).toEqual(bytes("replaced"));
    expect(await s.getGroupState(256)).toEqual(new Uint8Array(0));
    expect(await s.getGroupState(2 ** 32 - 1)).toEqual(bytes(`state-${2 ** 32 - 1}`));
    expect(await s.getGroupState(2)).toBeUndefined();
    // A group state record alone does not make a group (listGroups names groups with Raft state).
    expect(await s.listGroups()).toEqual([]);
  });

  it("a range clear removes stored keys and keys put before it in the batch, but keeps puts that follow it", async () => {
    const s = await open();
    const setup = s.batch();
    setup.appendEntries(7, entries(1, 5, 1));
    setup.setHardState(7, { term: 1, vote: 1, commit: 5 });
    setup.putGroupState(7, bytes("old"));
    setup.appendEntries(8, entries(1, 2, 1));
    setup.putGroupState(8, bytes("neighbour"));
    await s.write(setup, { sync: false });

    const replace = s.batch();
    replace.appendEntries(7, entries(6, 6, 1)); // dropped: put before the clear
    replace.destroyGroup(7);
    replace.appendEntries(7, entries(1, 2, 4));
    replace.putGroupState(7, bytes("new"));
    await s.write(replace, { sync: true });

    expect((await s.loadGroup(7)).entries).toEqual(entries(1, 2, 4));
    expect((await s.loadGroup(7)).hardState).toEqual({ term: 0, vote: 0, commit: 0 });
    expect(await s.getGroupState(7)).toEqual(bytes("new"));
    expect((await s.loadGroup(8)).entries).toEqual(entries(1, 2, 1));
    expect(await s.getGroupState(8)).toEqual(bytes("neighbour"));
  });

  it("destroyGroup removes every key of the group, and only the tombstone stays", async () => {
    const s = await open({ snapshotChunkBytes: 100 });
    const batch = s.batch();
    for (const group of [1, 2]) {
      batch.appendEntries(group, entries(1, 3, 1));
      batch.setHardState(group, { term: 1, vote: 1, commit: 1 });
      batch.setApplied(group, 1, 1);
      batch.setConfState(group, confState);
      batch.putSnapshot(group, snapshotOf(0, 0, 350));
      batch.putGroupState(group, bytes(`state-${group}`));
    }
    await s.write(batch, { sync: false });
    const destroy = s.batch();
    destroy.putTombstone(1, 4);
    destroy.destroyGroup(1);
    await s.write(destroy, { sync: true });
    expect(await s.listGroups()).toEqual([2]);
    expect(await s.loadGroup(1)).toEqual({
      hardState: { term: 0, vote: 0, commit: 0 },
      confState: undefined,
      snapshot: undefined,
      entries: [],
      applied: undefined,
    });
    expect(await s.getGroupState(1)).toBeUndefined();
    expect(await s.loadTombstones()).toEqual(new Map([[1, 4]]));
    expect((await s.loadGroup(2)).entries.length).toBe(3);
    expect(await s.getGroupState(2)).toEqual(bytes("state-2"));

    // Nothing else of group 1 is left under any prefix.
    await s.close();
    store = undefined;
    const raw = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
    await raw.open();
    const left: number[] = [];
    for await (const key of raw.keys()) {
      if (key.length >= 5 && groupIdOfKey(key) === 1) left.push(key[0]!);
    }
    await raw.close();
    expect(left).toEqual([KeyPrefix.tombstone]);
  });

  it("serializes concurrent writes in call order", async () => {
    const s = await open();
    const first = s.batch();
    first.appendEntries(1, entries(1, 3, 1));
    first.putGroupState(1, bytes("first"));
    const second = s.batch();
    second.destroyGroup(1); // must see the first write's puts
    second.appendEntries(1, entries(1, 1, 2));
    await Promise.all([s.write(first, { sync: false }), s.write(second, { sync: true })]);
    expect((await s.loadGroup(1)).entries).toEqual(entries(1, 1, 2));
    expect(await s.getGroupState(1)).toBeUndefined();
    // Both were queued before either started: joined into one batch, synced because one asked.
    expect(s.stats).toMatchObject({ batches: 1, syncs: 1 });
  });

  it("joins the writes queued behind the one in flight into one batch, in call order, synced if any asked", async () => {
    const s = await open();
    const inFlight = s.batch();
    inFlight.appendEntries(1, entries(1, 2, 1));
    const first = s.write(inFlight, { sync: false });
    await Promise.resolve(); // the first write has started: it takes no more batches
    const a = s.batch();
    a.appendEntries(1, entries(3, 4, 1));
    a.putGroupState(1, bytes("a"));
    const b = s.batch();
    b.destroyGroup(2); // a range clear after a's puts, of another group: a's keys stay
    b.putGroupState(1, bytes("b"));
    const c = s.batch();
    c.appendEntries(2, entries(1, 1, 1));
    const order: string[] = [];
    await Promise.all([
      first.then(() => order.push("first")),
      s.write(a, { sync: false }).then(() => order.push("a")),
      s.write(b, { sync: true }).then(() => order.push("b")),
      s.write(c, { sync: false }).then(() => order.push("c")),
    ]);
    expect(order).toEqual(["first", "a", "b", "c"]);
    expect((await s.loadGroup(1)).entries).toEqual(entries(1, 4, 1));
    expect(await s.getGroupState(1)).toEqual(bytes("b"));
    expect((await s.loadGroup(2)).entries).toEqual(entries(1, 1, 1));
    expect(s.stats).toMatchObject({ batches: 2, syncs: 1 });
  });

  it("refuses to reuse a written batch and bounds a batch's size", async () => {
    const s = await open({ batchOpsMax: 5 });
    const batch = s.batch();
    batch.appendEntries(1, entries(1, 1, 1));
    await s.write(batch, { sync: false });
    expect(() => batch.appendEntries(1, entries(2, 2, 1))).toThrow(AssertionError);
    const big = s.batch();
    expect(() => big.appendEntries(1, entries(1, 6, 1))).toThrow(/exceeds 5 operations/);
  });

  it("asserts that appended entries are contiguous", async () => {
    const s = await open();
    const batch = s.batch();
    expect(() => batch.appendEntries(1, [entry(1, 1), entry(3, 1)])).toThrow(AssertionError);
    expect(() => batch.appendEntries(1, [entry(1, 2), entry(2, 1)])).toThrow(AssertionError);
  });

  describe("corruption is detected on read", () => {
    it("a flipped byte in a log entry throws CorruptionError naming group, index and key", async () => {
      const s = await open();
      const batch = s.batch();
      batch.appendEntries(3, entries(1, 20, 1));
      await s.write(batch, { sync: true });
      await s.close();
      store = undefined;

      await tamper(dir, logKey(3, 17), flipByte(-2)); // inside the entry's data
      const s2 = await open();
      const error = await s2.loadGroup(3).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(CorruptionError);
      expect((error as Error).message).toContain("log entry");
      expect((error as Error).message).toContain("group=3");
      expect((error as Error).message).toContain("index=17");
      expect((error as Error).message).toContain("0x4c0000000300000000000000");
      expect((error as Error).message).toContain("checksum mismatch");
      // Other groups stay readable.
      expect((await s2.loadGroup(4)).entries).toEqual([]);
    });

    it("a flipped byte in the checksum itself is detected", async () => {
      const s = await open();
      const batch = s.batch();
      batch.appendEntries(3, entries(1, 2, 1));
      await s.write(batch, { sync: true });
      await s.close();
      store = undefined;
      await tamper(dir, logKey(3, 1), flipByte(0));
      const s2 = await open();
      await expect(s2.loadGroup(3)).rejects.toBeInstanceOf(CorruptionError);
    });

    it("a value copied under another key is detected (the checksum covers the key)", async () => {
      const s = await open();
      const batch = s.batch();
      batch.appendEntries(3, entries(1, 2, 1));
      batch.appendEntries(4, entries(1, 2, 1));
      await s.write(batch, { sync: true });
      await s.close();
      store = undefined;
      const raw = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
      await raw.open();
      await raw.put(logKey(4, 2), (await raw.get(logKey(3, 2)))!);
      await raw.close();
      const s2 = await open();
      expect((await s2.loadGroup(3)).entries.length).toBe(2);
      await expect(s2.loadGroup(4)).rejects.toThrow(/group=4\|index=2/);
    });

    it("a truncated hard state is detected", async () => {
      const s = await open();
      const batch = s.batch();
      batch.setHardState(2, { term: 9, vote: 1, commit: 0 });
      await s.write(batch, { sync: true });
      await s.close();
      store = undefined;
      await tamper(dir, hardStateKey(2), (value) => value.subarray(0, value.length - 1));
      const s2 = await open();
      await expect(s2.loadGroup(2)).rejects.toThrow(/hard state at H\|group=2/);
    });

    it("a flipped byte in a snapshot chunk is detected", async () => {
      const s = await open({ snapshotChunkBytes: 256 });
      const batch = s.batch();
      batch.putSnapshot(6, snapshotOf(30, 2, 1000));
      await s.write(batch, { sync: true });
      await s.close();
      store = undefined;
      await tamper(dir, snapshotChunkKey(6, 2), flipByte(100));
      const s2 = await open({ snapshotChunkBytes: 256 });
      await expect(s2.loadGroup(6)).rejects.toThrow(/snapshot chunk.*Q\|group=6\|chunk=2/);
    });

    it("a flipped byte in a group state record or a tombstone is detected, naming the key", async () => {
      const s = await open();
      const batch = s.batch();
      batch.putGroupState(1, bytes("descriptor"));
      batch.putTombstone(2, 7);
      await s.write(batch, { sync: true });
      await s.close();
      store = undefined;
      await tamper(dir, groupStateKey(1), flipByte(5));
      await tamper(dir, tombstoneKey(2), flipByte(-1));
      const s2 = await open();
      await expect(s2.getGroupState(1)).rejects.toThrow(/group state \(group 1\) at M\|group=1.*checksum mismatch/);
      await expect(s2.loadTombstones()).rejects.toThrow(/tombstone at T\|group=2/);
    });
  });

  describe("opening", () => {
    it("refuses a directory that another handle holds, saying so", async () => {
      await open();
      const error = await NodeStore.open(dir).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as Error).message).toMatch(/locked by another process/);
    });

    it("refuses a path that is a file", async () => {
      const file = join(dir, "not-a-dir");
      await writeFile(file, "x");
      await expect(NodeStore.open(file)).rejects.toThrow(/cannot (create|open) store/);
    });

    it("refuses a format-1 directory, saying what to do, and leaves it as it was", async () => {
      const raw = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
      await raw.open();
      await raw.put(identityKey(), encodeIdentity(identityKey(), 1));
      await raw.close();

      const error = await NodeStore.open(dir).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(STORE_FORMAT_VERSION).toBe(2);
      expect(error).toBeInstanceOf(UnavailableError);
      const message = (error as Error).message;
      expect(message).toContain(`cannot open store at ${dir}: on-disk format 1, this build reads format 2`);
      expect(message).toContain("Format 1 kept a record per counter");
      expect(message).toContain("checkpoint files");
      expect(message).toContain("empty data directory");
      expect(message).toContain("tallyctl backup");
      expect(message).toContain("tallyctl restore");

      // Nothing was written, and the store let go of the directory (no lock left behind).
      const after = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
      await after.open();
      try {
        expect(decodeIdentity(identityKey(), (await after.get(identityKey()))!)).toBe(1);
      } finally {
        await after.close();
      }
    });

    it("refuses a directory of a newer format, naming both versions", async () => {
      const raw = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
      await raw.open();
      await raw.put(identityKey(), encodeIdentity(identityKey(), STORE_FORMAT_VERSION + 1));
      await raw.close();
      await expect(NodeStore.open(dir)).rejects.toThrow(
        `on-disk format ${STORE_FORMAT_VERSION + 1}, this build reads format ${STORE_FORMAT_VERSION}: the directory was written by a newer build`,
      );
    });

    it("writes its format on a new directory and opens it again", async () => {
      const s = await open();
      await s.close();
      store = undefined;
      const raw = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
      await raw.open();
      try {
        expect(decodeIdentity(identityKey(), (await raw.get(identityKey()))!)).toBe(STORE_FORMAT_VERSION);
      } finally {
        await raw.close();
      }
      await open();
    });

    it("creates missing parent directories", async () => {
      const nested = join(dir, "a", "b", "c");
      const s = await NodeStore.open(nested);
      await s.close();
    });
  });

  it("a write that resolved with sync survives the writer being killed (SIGKILL)", async () => {
    const storeModule = fileURLToPath(new URL("../../src/storage/node-store.ts", import.meta.url));
    const child = join(dir, "writer.mts");
    const dbDir = join(dir, "db");
    await writeFile(
      child,
      `import { NodeStore } from ${JSON.stringify(storeModule)};
const store = await NodeStore.open(${JSON.stringify(dbDir)});
for (let i = 1; i <= 50; i++) {
  const batch = store.batch();
  batch.appendEntries(1, [{ index: i, term: 1, type: 0, data: new Uint8Array([i]) }]);
  batch.setHardState(1, { term: 1, vote: 1, commit: i });
  await store.write(batch, { sync: true });
}
process.stdout.write("written\\n");
setInterval(() => {}, 1000); // wait to be killed, never close
`,
    );
    const proc = spawn(process.execPath, ["--import", "tsx", child], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, TALLY_LOG_LEVEL: "silent" },
    });
    try {
      await new Promise<void>((resolve, reject) => {
        // Generous: a child tsx process starts slowly on a loaded two-core box.
        const deadline = setTimeout(() => reject(new Error("writer did not report within 45 s")), 45_000);
        let stderr = "";
        proc.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        proc.stdout.on("data", (chunk: Buffer) => {
          if (chunk.toString().includes("written")) {
            clearTimeout(deadline);
            resolve();
          }
        });
        proc.on("exit", (code) => {
          clearTimeout(deadline);
          reject(new Error(`writer exited early with ${code}: ${stderr}`));
        });
      });
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((resolve) => proc.once("exit", resolve));
        proc.kill("SIGKILL");
        await exited;
      }
    }
    const s = await NodeStore.open(dbDir);
    try {
      const loaded = await s.loadGroup(1);
      expect(loaded.entries.length).toBe(50);
      expect(loaded.hardState.commit).toBe(50);
    } finally {
      await s.close();
    }
  });
});
