/**
 * Synced write throughput of the node store: how many fsynced LevelDB batches per second this disk
 * gives, which bounds the driver loop's iterations per second (one synced batch per iteration).
 *
 *   npx tsx bench/storage-sync.ts [--seconds 3] [--dir /path/on/the/disk/to/test]
 *
 * Cases: (a) one batch of 100 entries + hard state per write, (b) one entry + hard state per write,
 * (c) case (a) without sync, for reference. Entries carry 64 bytes of data. Then (d): reading back
 * --scan-records counter records (21-byte keys, 16-byte records) with scanCounterBatches, as a
 * restart does: CPU per record, the floor of restart-to-serving.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Entry, EntryType } from "../src/raft/types.js";
import { NodeStore } from "../src/storage/node-store.js";

const { values } = parseArgs({
  options: { seconds: { type: "string", default: "3" }, dir: { type: "string" }, "scan-records": { type: "string", default: "200000" } },
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
  const records = Number(values["scan-records"]);
  for (let start = 0; start < records; start += 10_000) {
    const batch = store.batch();
    for (let i = start; i < Math.min(records, start + 10_000); i++)
      batch.putCounter(9, new TextEncoder().encode(`user:${String(i).padStart(10, "0")}:likes`), new Uint8Array(16));
    await store.write(batch, { sync: false });
  }
  const scanStart = performance.now();
  const cpuStart = process.cpuUsage();
  let scanned = 0;
  for await (const batch of store.scanCounterBatches(9)) scanned += batch.length;
  const cpu = process.cpuUsage(cpuStart);
  const scanMs = performance.now() - scanStart;
  console.log(
    `(d) scan ${scanned} counter records: ${scanMs.toFixed(0)} ms wall, ${((cpu.user + cpu.system) / scanned).toFixed(2)} µs CPU per record`,
  );
} finally {
  await store.close();
  await rm(dir, { recursive: true, force: true });
}
