/**
 * Synced write throughput of the node's log store, and the speed of its checkpoint files.
 *
 *   npx tsx bench/storage-sync.ts [--seconds 3] [--dir /path/on/the/disk/to/test] [--checkpoint-mib 64]
 *
 * Log store (LevelDB, NodeStore): how many fsynced batches per second this disk gives, which bounds
 * the driver loop's iterations per second (one synced batch per iteration). Cases: (a) one batch of
 * 100 entries + hard state per write, (b) one entry + hard state per write, (c) case (a) without
 * sync, for reference. Entries carry 64 bytes of data.
 *
 * Checkpoint files (FileCheckpointStore; a shard's state lives there since format 2, not in the log
 * store): (d) writing one checkpoint of --checkpoint-mib MiB in 1 MiB blocks until it is durable
 * (temporary name, fsync, rename, directory fsync), (e) reading it back whole, as a restart does
 * before decoding it, (f) reading it in 1 MiB chunks, as a snapshot is streamed to a follower. The
 * reads come from the page cache right after the write (this bench cannot drop caches), so they
 * show the store's own cost rather than the disk's; decoding is bench/shard-image.ts.
 *
 * The disk under a synced write (no LevelDB): (g) append 4 KiB to a file and fdatasync it, as
 * LevelDB's log does for each synced batch (the file grows, so each sync also commits the
 * file system's journal for its new size), against (h) overwriting 4 KiB in place in a
 * preallocated file opened O_DSYNC (no size change, so only the data goes to the disk), the
 * floor a log in preallocated segments would pay; p50 / p99 per write.
 */
import { closeSync, constants, fdatasyncSync, openSync, writeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Entry, EntryType } from "../src/raft/types.js";
import { FileCheckpointStore } from "../src/storage/checkpoint-store.js";
import { NodeStore } from "../src/storage/node-store.js";

const { values } = parseArgs({
  options: { seconds: { type: "string", default: "3" }, dir: { type: "string" }, "checkpoint-mib": { type: "string", default: "64" } },
});
const seconds = Number(values.seconds);
const dataBytes = 64;

interface Result {
  name: string;
  batches: number;
  entries: number;
  seconds: number;
  bytes: number;
}

async function run(store: NodeStore, name: string, groupId: number, entriesPerBatch: number, sync: boolean): Promise<Result> {
  const data = new Uint8Array(dataBytes).fill(7);
  let index = 0;
  const bytesBefore = store.stats.bytesWritten;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let batches = 0;
  while (performance.now() < deadline) {
    const batch = store.batch();
    const entries: Entry[] = [];
    for (let i = 0; i < entriesPerBatch; i++) entries.push({ index: ++index, term: 1, type: EntryType.Normal, data });
    batch.appendEntries(groupId, entries);
    batch.setHardState(groupId, { term: 1, vote: 1, commit: index });
    await store.write(batch, { sync });
    batches += 1;
  }
  const elapsed = (performance.now() - start) / 1000;
  return { name, batches, entries: index, seconds: elapsed, bytes: store.stats.bytesWritten - bytesBefore };
}

const MIB = 1024 * 1024;

async function checkpointCases(checkpoints: FileCheckpointStore, mib: number): Promise<void> {
  if (!Number.isInteger(mib) || mib < 1) throw new Error(`--checkpoint-mib must be a positive integer, got ${mib}`);
  const blocks = Array.from({ length: mib }, (_, i) => new Uint8Array(MIB).fill(i & 0xff));
  const bytes = mib * MIB;
  const rate = (ms: number) => `${(bytes / MIB / (ms / 1000)).toFixed(0).padStart(6)} MiB/s`;
  const line = (name: string, ms: number, cpuMicros: number) =>
    console.log(`${name.padEnd(42)} ${ms.toFixed(0).padStart(6)} ms  ${rate(ms)}  ${(cpuMicros / 1000).toFixed(0).padStart(5)} ms CPU`);
  console.log(`checkpoint files, one checkpoint of ${mib} MiB`);

  let start = performance.now();
  let cpu = process.cpuUsage();
  await checkpoints.write(9, 1000, blocks);
  let used = process.cpuUsage(cpu);
  line("(d) write, durable", performance.now() - start, used.user + used.system);

  start = performance.now();
  cpu = process.cpuUsage();
  const whole = await checkpoints.read(9, 1000);
  used = process.cpuUsage(cpu);
  if (whole.length !== bytes || whole[bytes - 1] !== (mib - 1) % 256) throw new Error("checkpoint read back wrong");
  line("(e) read whole (restart)", performance.now() - start, used.user + used.system);

  start = performance.now();
  cpu = process.cpuUsage();
  let read = 0;
  for (let offset = 0; offset < bytes; offset += MIB) read += (await checkpoints.readChunk(9, 1000, offset, MIB)).length;
  used = process.cpuUsage(cpu);
  if (read !== bytes) throw new Error("checkpoint chunks read back wrong");
  line("(f) read in 1 MiB chunks (snapshot stream)", performance.now() - start, used.user + used.system);
}

/** (g) and (h): the disk's own cost of a synced 4 KiB write, appended or in place. */
function rawSyncCases(dir: string): void {
  const block = new Uint8Array(4096).fill(7);
  const writes = 500;
  const percentiles = (label: string, micros: number[]) => {
    micros.sort((a, b) => a - b);
    const at = (q: number) => micros[Math.min(micros.length - 1, Math.floor(q * micros.length))]!.toFixed(0);
    console.log(`${label.padEnd(52)} p50 ${at(0.5).padStart(5)} µs  p99 ${at(0.99).padStart(6)} µs`);
  };
  const timed = (write: (i: number) => void) =>
    Array.from({ length: writes }, (_, i) => {
      const start = process.hrtime.bigint();
      write(i);
      return Number(process.hrtime.bigint() - start) / 1000;
    });
  console.log(`the disk under one synced 4 KiB write (${writes} writes each)`);
  const appended = openSync(join(dir, "append.log"), "w");
  try {
    percentiles(
      "(g) append + fdatasync (a growing file, like LevelDB's log)",
      timed(() => (writeSync(appended, block), fdatasyncSync(appended))),
    );
  } finally {
    closeSync(appended);
  }
  const path = join(dir, "preallocated.log");
  const filler = openSync(path, "w");
  try {
    for (let i = 0; i < writes; i++) writeSync(filler, block);
    fdatasyncSync(filler);
  } finally {
    closeSync(filler);
  }
  const inPlace = openSync(path, constants.O_RDWR | constants.O_DSYNC);
  try {
    percentiles(
      "(h) overwrite in a preallocated file, O_DSYNC",
      timed((i) => writeSync(inPlace, block, 0, block.length, i * block.length)),
    );
  } finally {
    closeSync(inPlace);
  }
}

const baseDir = values.dir ?? tmpdir();
const dir = await mkdtemp(join(baseDir, "tally-bench-storage-"));
const store = await NodeStore.open(dir);
try {
  const results = [
    await run(store, "(a) 100 entries/batch, sync", 1, 100, true),
    await run(store, "(b) 1 entry/batch, sync", 2, 1, true),
    await run(store, "(c) 100 entries/batch, no sync", 3, 100, false),
  ];
  console.log(`node store synced writes, ${dataBytes}-byte entries, ${seconds}s per case, dir ${baseDir}`);
  for (const r of results) {
    const batchesPerSecond = r.batches / r.seconds;
    console.log(
      `${r.name.padEnd(34)} ${batchesPerSecond.toFixed(0).padStart(7)} batches/s ` +
        `${(r.entries / r.seconds).toFixed(0).padStart(9)} entries/s ` +
        `${(r.bytes / r.seconds / 1e6).toFixed(1).padStart(6)} MB/s  ` +
        `mean ${((r.seconds * 1000) / r.batches).toFixed(2)} ms/batch`,
    );
  }
  await checkpointCases(new FileCheckpointStore(join(dir, "checkpoints")), Number(values["checkpoint-mib"]));
  rawSyncCases(dir);
} finally {
  await store.close();
  await rm(dir, { recursive: true, force: true });
}
