/**
 * Checkpoints: the file store (temporary name, fsync, rename; list, chunks, removal) and the
 * checkpoint format (header + shard image), including damage to either part.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { wrapShardSnapshot } from "../../src/server/descriptor.js";
import {
  decodeCheckpoint,
  decodeCheckpointHeader,
  decodeShardSnapshotData,
  encodeCheckpoint,
  isCheckpoint,
  joined,
  type CheckpointHeader,
} from "../../src/server/checkpoint-format.js";
import { FileCheckpointStore } from "../../src/storage/checkpoint-store.js";
import { CorruptionError } from "../../src/util/errors.js";
import { add, defaultOptions, ShardDriver } from "./shard-harness.js";

const pause = () => Promise.resolve();
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tally-ckpt-"));
  dirs.push(dir);
  return dir;
}

function machineWithCounters(count: number): ShardDriver {
  const driver = new ShardDriver();
  const client = driver.register();
  for (let i = 0; i < count; i += 50) {
    const ops = [];
    for (let k = i; k < Math.min(count, i + 50); k++) ops.push(add(`user:${k}:likes`, BigInt(k + 1)));
    driver.mutate(client, i / 50 + 1, ops);
  }
  return driver;
}

const header = (index: number): CheckpointHeader => ({
  shardId: 3,
  index,
  term: 7,
  confState: { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
  descriptor: { epoch: 2, slotStart: 100, slotEnd: 200 },
});

describe("FileCheckpointStore", () => {
  it("writes blocks under a final name, lists, reads whole and by chunk, removes", async () => {
    const store = new FileCheckpointStore(tempDir());
    expect(await store.list(1)).toEqual([]);
    await store.write(1, 20, [Uint8Array.of(1, 2, 3), Uint8Array.of(4, 5)]);
    await store.write(1, 9, [Uint8Array.of(9)]);
    expect(await store.list(1)).toEqual([9, 20]);
    expect([...(await store.read(1, 20))]).toEqual([1, 2, 3, 4, 5]);
    expect([...(await store.readChunk(1, 20, 2, 2))]).toEqual([3, 4]);
    expect(await store.size(1, 20)).toBe(5);
    await store.remove(1, 9);
    await store.remove(1, 9); // idempotent
    expect(await store.list(1)).toEqual([20]);
    await store.removeGroup(1);
    expect(await store.list(1)).toEqual([]);
  });

  it("never lists a temporary file a crash left, and removes it", async () => {
    const dir = tempDir();
    const store = new FileCheckpointStore(dir);
    await store.write(4, 10, [Uint8Array.of(1)]);
    writeFileSync(join(dir, "g4", ".11.123.0.tmp"), "torn");
    expect(await store.list(4)).toEqual([10]);
    expect(readdirSync(join(dir, "g4"))).toEqual(["10.ckpt"]);
  });

  it("a missing checkpoint is a CorruptionError naming it", async () => {
    const store = new FileCheckpointStore(tempDir());
    await expect(store.read(2, 5)).rejects.toThrow(CorruptionError);
    await expect(store.size(2, 5)).rejects.toThrow(/checkpoint 5 of group 2 is missing/);
  });
});

describe("checkpoint format", () => {
  it("round-trips header and state; the machine after it equals the original", async () => {
    const driver = machineWithCounters(500);
    const index = driver.machine.appliedIndex;
    const blocks = await encodeCheckpoint(header(index), driver.machine.captureImage(), pause);
    const data = Buffer.concat(blocks);
    expect(isCheckpoint(data)).toBe(true);
    const decoded = await decodeCheckpoint(data, defaultOptions, pause, "test");
    expect(decoded.header).toEqual(header(index));
    expect(decoded.descriptor).toEqual(header(index).descriptor);
    expect(Buffer.from(decoded.machine.snapshot()).equals(Buffer.from(driver.machine.snapshot()))).toBe(true);
    const sync = decodeShardSnapshotData(data, defaultOptions, "test");
    expect(Buffer.from(sync.machine.snapshot()).equals(Buffer.from(driver.machine.snapshot()))).toBe(true);
  });

  it("a checkpoint whose compressed image spans many zlib writes inflates into one buffer, whole", async () => {
    const driver = machineWithCounters(150_000);
    const index = driver.machine.appliedIndex;
    const data = Buffer.concat(await encodeCheckpoint(header(index), driver.machine.captureImage(), pause));
    const { body } = decodeCheckpointHeader(data, "test");
    expect(body.length).toBeGreaterThan(1 << 20); // more than one input slice, so several output chunks
    const decoded = await decodeCheckpoint(data, defaultOptions, pause, "test");
    expect(Buffer.from(decoded.machine.snapshot()).equals(Buffer.from(driver.machine.snapshot()))).toBe(true);
  });

  it("joined() adopts chunks that lie in order in one buffer and copies any others", () => {
    const buffer = Uint8Array.from({ length: 100 }, (_, i) => i);
    const inOrder = [buffer.subarray(10, 30), buffer.subarray(30, 31), buffer.subarray(31, 60)];
    const view = joined(inOrder, 50);
    expect(view.buffer).toBe(buffer.buffer); // no copy
    expect([...view]).toEqual([...buffer.subarray(10, 60)]);
    const gap = [buffer.subarray(10, 30), buffer.subarray(31, 61)];
    const elsewhere = [buffer.subarray(0, 20), Uint8Array.from({ length: 30 }, () => 7)];
    for (const chunks of [gap, elsewhere]) {
      const copy = joined(chunks, 50);
      expect(copy.buffer).not.toBe(buffer.buffer);
      expect([...copy]).toEqual(chunks.flatMap((chunk) => [...chunk]));
    }
    expect(joined([], 0).length).toBe(0);
  });

  it("an uncompressed checkpoint (the simulator's) round-trips too, and damage to it is found", async () => {
    const driver = machineWithCounters(300);
    const index = driver.machine.appliedIndex;
    const data = Buffer.concat(await encodeCheckpoint(header(index), driver.machine.captureImage(), pause, false));
    const decoded = await decodeCheckpoint(data, defaultOptions, pause, "test");
    expect(Buffer.from(decoded.machine.snapshot()).equals(Buffer.from(driver.machine.snapshot()))).toBe(true);
    const damaged = Buffer.from(data);
    damaged[data.length - 5]! ^= 0x10;
    await expect(decodeCheckpoint(damaged, defaultOptions, pause, "flip")).rejects.toThrow(CorruptionError);
  });

  it("the image is the state at capture: applying afterwards does not change it", async () => {
    const driver = machineWithCounters(100);
    const before = driver.machine.snapshot();
    const image = driver.machine.captureImage();
    const index = driver.machine.appliedIndex;
    driver.mutate(driver.register(), 1, [add("user:1:likes", 1000n), add("new", 1n)]);
    const decoded = await decodeCheckpoint(Buffer.concat(await encodeCheckpoint(header(index), image, pause)), defaultOptions, pause, "t");
    expect(Buffer.from(decoded.machine.snapshot()).equals(Buffer.from(before))).toBe(true);
  });

  it("damage anywhere (header, image, truncation) is a CorruptionError, never a wrong state", async () => {
    const driver = machineWithCounters(200);
    const data = Buffer.concat(await encodeCheckpoint(header(driver.machine.appliedIndex), driver.machine.captureImage(), pause));
    const headerBytes = decodeCheckpointHeader(data, "t").body.byteOffset - data.byteOffset;
    for (const at of [0, 5, 12, 20, headerBytes - 2, headerBytes + 3, Math.floor(data.length / 2), data.length - 1]) {
      const damaged = Buffer.from(data);
      damaged[at]! ^= 0x40;
      await expect(decodeCheckpoint(damaged, defaultOptions, pause, `flip at ${at}`)).rejects.toThrow(CorruptionError);
    }
    await expect(decodeCheckpoint(data.subarray(0, data.length - 7), defaultOptions, pause, "truncated")).rejects.toThrow(CorruptionError);
    await expect(decodeCheckpoint(data.subarray(0, 30), defaultOptions, pause, "header only")).rejects.toThrow(CorruptionError);
  });

  it("shard snapshot data may also be a wrapped snapshot() (bootstrap, split, backups)", () => {
    const driver = machineWithCounters(60);
    const data = wrapShardSnapshot({ epoch: 3, slotStart: 0, slotEnd: 10 }, driver.machine.snapshot());
    expect(isCheckpoint(data)).toBe(false);
    const decoded = decodeShardSnapshotData(data, defaultOptions, "t");
    expect(decoded.header).toBeUndefined();
    expect(decoded.descriptor).toEqual({ epoch: 3, slotStart: 0, slotEnd: 10 });
    expect(decoded.machine.appliedIndex).toBe(driver.machine.appliedIndex);
  });
});
