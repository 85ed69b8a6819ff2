/**
 * Commit throughput and latency through a real 3-node cluster with fsync on (issue 3), measured
 * against this machine's raw fsync rate. Proposers are unary Add calls straight to the leader of
 * shard 1, so every operation is one command proposed, replicated to a quorum, fsynced, applied.
 *
 *   npx tsx bench/node-commit.ts [--seconds 8] [--concurrency 1,64,256]
 *
 * Prints a table and one JSON line per scenario. The figure to watch is fsyncs per committed
 * command: group commit (one fsynced LevelDB batch per loop iteration for every group and every
 * command that arrived meanwhile) should push it far below 1 under load.
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hdr from "hdr-histogram-js";
import { slotOf } from "../src/meta/slots.js";
import { ensureBundles } from "../bin/bundle.js";
import { TestCluster } from "../test/support/cluster.js";
import { RawNodeClient, leaderClient } from "../test/support/raw-client.js";

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const seconds = Number(option("seconds", "8"));
const concurrencies = option("concurrency", "1,64,256").split(",").map(Number);

function measureFsync(): { perSecond: number; medianUs: number } {
  const dir = mkdtempSync(join(tmpdir(), "tally-fsync-"));
  const fd = openSync(join(dir, "f"), "w");
  const samples: number[] = [];
  const buffer = Buffer.alloc(128, 1);
  const end = Date.now() + 2000;
  while (Date.now() < end) {
    writeSync(fd, buffer);
    const t0 = process.hrtime.bigint();
    fsyncSync(fd);
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
  samples.sort((a, b) => a - b);
  const total = samples.reduce((a, b) => a + b, 0);
  return { perSecond: Math.round(samples.length / (total / 1e6)), medianUs: Math.round(samples[Math.floor(samples.length / 2)]!) };
}

async function nodeStats(endpoints: string[]): Promise<{ syncs: number; entries: number; applied: number }> {
  let syncs = 0;
  let entries = 0;
  let applied = 0;
  for (const endpoint of endpoints) {
    const client = new RawNodeClient(endpoint);
    const status = await client.call("status", { localOnly: true });
    client.close();
    const stats = status.nodes[0].stats;
    syncs += Number(stats.syncs);
    entries += Number(stats.entriesWritten);
    applied += Number(stats.entriesApplied);
  }
  return { syncs, entries, applied };
}

function keysForShard1(count: number): Buffer[] {
  const keys: Buffer[] = [];
  for (let i = 0; keys.length < count; i++) {
    const key = Buffer.from(`bench-${i}`);
    if (slotOf(key) < 16384 / 8) keys.push(key);
  }
  return keys;
}

async function main(): Promise<void> {
  const fsync = measureFsync();
  console.log(`machine fsync: ${fsync.perSecond}/s, median ${fsync.medianUs} us`);
  ensureBundles(); // the nodes run dist/tallyd.mjs (bin/tallyd.js never builds): rebuild it if src/ is newer
  const cluster = await TestCluster.start({ nodes: 3, shards: 8, electionTicks: 25, heartbeatTicks: 5 });
  const rows: string[] = [];
  try {
    const keys = keysForShard1(1000);
    for (const concurrency of concurrencies) {
      const leader = await leaderClient(cluster.endpoints(), 1);
      const sessions = await Promise.all(
        Array.from({ length: concurrency }, async () => {
          const { clientId } = await leader.call("registerSession", { shardId: 1 });
          return { clientId, seq: 0 };
        }),
      );
      const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
      const before = await nodeStats(cluster.endpoints());
      const started = Date.now();
      const stopAt = started + seconds * 1000;
      let done = 0;
      let errors = 0;
      await Promise.all(
        sessions.map(async (session, worker) => {
          while (Date.now() < stopAt) {
            session.seq++;
            const t0 = process.hrtime.bigint();
            try {
              await leader.call("add", {
                header: { shardId: 1, clientId: session.clientId, seq: String(session.seq), firstUnackedSeq: String(session.seq) },
                key: keys[(worker * 7 + session.seq) % keys.length],
                delta: "1",
              });
              histogram.recordValue(Number(process.hrtime.bigint() - t0) / 1000);
              done++;
            } catch {
              errors++;
            }
          }
        }),
      );
      const elapsed = (Date.now() - started) / 1000;
      const after = await nodeStats(cluster.endpoints());
      const syncs = after.syncs - before.syncs;
      const entries = after.entries - before.entries;
      const result = {
        scenario: `unary Add, ${concurrency} concurrent proposer${concurrency > 1 ? "s" : ""}`,
        concurrency,
        committedPerSecond: Math.round(done / elapsed),
        p50Ms: histogram.getValueAtPercentile(50) / 1000,
        p99Ms: histogram.getValueAtPercentile(99) / 1000,
        errors,
        fsyncsPerCommand: Number((syncs / Math.max(1, done * 3)).toFixed(4)),
        commandsPerEntry: Number(((done * 3) / Math.max(1, entries)).toFixed(1)),
        clusterFsyncsPerSecond: Math.round(syncs / elapsed),
        machineFsyncsPerSecond: fsync.perSecond,
      };
      console.log(JSON.stringify(result));
      rows.push(
        `| ${result.scenario} | ${result.committedPerSecond} | ${result.p50Ms.toFixed(2)} | ${result.p99Ms.toFixed(2)} | ${result.fsyncsPerCommand} | ${result.commandsPerEntry} |`,
      );
      leader.close();
    }
  } finally {
    await cluster.destroy();
  }
  console.log("\n| scenario | commits/s | p50 ms | p99 ms | fsyncs per command (per replica) | commands per entry |");
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const row of rows) console.log(row);
}

await main();
