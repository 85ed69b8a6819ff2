/**
 * Backup and restore with real processes: a 3-node cluster with a split shard, thousands of
 * counters, counter kinds and a TTL; a backup taken through tallyctl while a writer keeps adding
 * (each shard's copy must be one point in that shard's history and include every add acknowledged
 * before the backup started); a second backup once writes stop, restored offline into a new
 * cluster on new ports, which must serve every counter with the same value and version, the same
 * kinds, and take new writes. A damaged backup and an occupied target are refused.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import type { ClusterMapReply } from "../../src/cli/format-map.js";
import { slotOf } from "../../src/meta/slots.js";
import { loadShard, parseManifest, shardFileName, type BackupManifest } from "../../src/server/backup/backup-format.js";
import { shardOptionsOf } from "../../src/server/config/config.js";
import { AmbiguousError } from "../../src/util/errors.js";
import { eventually, TestCluster } from "../support/cluster.js";
import { tallyctl } from "../support/tallyctl.js";

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);
const COUNTERS = 3000;
const LIVE_KEYS = 40;

let source: TestCluster | undefined;
let target: TestCluster | undefined;
const clients: TallyClient[] = [];
const scratch = mkdtempSync(join(tmpdir(), "tally-backup-it-"));
afterAll(async () => {
  for (const client of clients) await client.close().catch(() => undefined);
  await source?.destroy();
  await target?.destroy();
  rmSync(scratch, { recursive: true, force: true });
});

const encoder = new TextEncoder();
const counterKeys = Array.from({ length: COUNTERS }, (_, i) => `c-${i}`);
const liveKeys = Array.from({ length: LIVE_KEYS }, (_, i) => `live-${i}`);
const plainKeys = [...counterKeys, ...liveKeys, "ttl:long"];

function expectedValue(i: number): bigint {
  if (i === 0) return INT64_MAX;
  if (i === 1) return INT64_MIN;
  return BigInt(i * 13 - 500);
}

test("a backup under load is consistent per shard; a restored cluster serves every counter exactly", { timeout: 240_000 }, async () => {
  source = await TestCluster.start({ nodes: 3, shards: 2, snapshotEveryEntries: 2000 });
  const endpoints = source.endpoints();
  const client = new TallyClient({ endpoints, deadlineMs: 20_000 });
  clients.push(client);

  // A split shard: shard 1 [0, 8192) splits at 4096, so the layout is no longer the initial one.
  const split = await tallyctl(endpoints, "shard", "split", "1", "--at", "4096");
  expect(split.code, split.output).toBe(0);
  await eventually(
    async () => {
      const map = await client.admin<ClusterMapReply>("ClusterMap", {}, { deadlineMs: 3000 });
      return map.shards.length === 3 && map.operations.every((op) => op.state !== "running") ? map : undefined;
    },
    30_000,
    "the split",
  );

  for (let start = 0; start < COUNTERS; start += 1000) {
    await client.addBatch(
      counterKeys.slice(start, start + 1000).map((key, j) => ({ op: "set" as const, key, value: expectedValue(start + j) })),
    );
  }
  const eventTimeMs = Date.now();
  const minute = Math.floor(eventTimeMs / 60_000) * 60_000;
  await client.addWindowed("win:a", 5n, { eventTimeMs });
  await client.addWindowed("win:a", 7n, { eventTimeMs: eventTimeMs - 30_000 });
  await client.uniqueAdd("uniq:a", ["x", "y", "z", "y"]);
  await client.add("ttl:long", 9n, { ttlMs: 3_600_000 });
  expect((await client.tryAcquire("limit:a", 2, 10, 600_000)).allowed).toBe(true);
  const shardsOf = new Set(plainKeys.map((key) => (slotOf(encoder.encode(key)) < 4096 ? 1 : slotOf(encoder.encode(key)) < 8192 ? 3 : 2)));
  expect([...shardsOf].sort()).toEqual([1, 2, 3]);

  // A sequential writer, round-robin over the live keys: at any log index of any shard, the live
  // keys of that shard (in key order) hold c+1 for a prefix and c for the rest.
  const acked = new Array<number>(LIVE_KEYS).fill(0);
  let ambiguous = 0;
  let running = true;
  const writer = (async () => {
    for (let j = 0; running; j++) {
      try {
        await client.add(liveKeys[j % LIVE_KEYS]!, 1n);
        acked[j % LIVE_KEYS]!++;
      } catch (error) {
        if (!(error instanceof AmbiguousError)) throw error;
        ambiguous++;
        running = false;
      }
    }
  })();
  await eventually(() => acked.reduce((a, b) => a + b, 0) >= 200 || undefined, 20_000, "the writer getting going");

  const duringDir = join(scratch, "during");
  const ackedBefore = [...acked];
  const during = await tallyctl(endpoints, "--json", "backup", duringDir);
  const ackedAfter = [...acked];
  await eventually(
    () => acked.reduce((a, b) => a + b, 0) >= ackedAfter.reduce((a, b) => a + b, 0) + 100 || undefined,
    20_000,
    "writes after the backup",
  );
  running = false;
  await writer;
  expect(ambiguous).toBe(0);
  expect(during.code, during.output).toBe(0);
  const manifest = JSON.parse(during.output.slice(during.output.indexOf("{"))) as BackupManifest;
  expect(parseManifest(readFileSync(join(duringDir, "manifest.json"), "utf8"))).toEqual(manifest);
  expect(manifest.clusterName).toBe("test");
  expect(manifest.shards.map((s) => [s.id, s.slotStart, s.slotEnd])).toEqual([
    [1, 0, 4096],
    [3, 4096, 8192],
    [2, 8192, 16384],
  ]);
  expect(manifest.shards.reduce((sum, s) => sum + s.counters, 0)).toBe(plainKeys.length);
  expect(existsSync(join(duringDir, "map.json"))).toBe(true);

  // Each shard as backed up: one point in its history, with every add acknowledged before.
  const options = shardOptionsOf(source.config);
  for (const shard of manifest.shards) {
    const { machine } = await loadShard(duringDir, shard, options);
    expect(machine.appliedIndex).toBe(shard.appliedIndex);
    const mine = liveKeys
      .map((key, k) => ({ k, slot: slotOf(encoder.encode(key)) }))
      .filter(({ slot }) => slot >= shard.slotStart && slot < shard.slotEnd);
    const values = mine.map(({ k }) => Number(machine.get(encoder.encode(liveKeys[k]!))?.value ?? 0n));
    mine.forEach(({ k }, i) => {
      expect(values[i]).toBeGreaterThanOrEqual(ackedBefore[k]!);
      expect(values[i]).toBeLessThanOrEqual(ackedAfter[k]! + 1);
    });
    for (let i = 1; i < values.length; i++) expect(values[i]).toBeLessThanOrEqual(values[i - 1]!);
    expect(Math.max(...values) - Math.min(...values)).toBeLessThanOrEqual(1);
    for (const key of counterKeys) {
      const slot = slotOf(encoder.encode(key));
      if (slot >= shard.slotStart && slot < shard.slotEnd)
        expect(machine.get(encoder.encode(key))?.value).toBe(expectedValue(Number(key.slice(2))));
    }
  }

  // Writes stopped: the state to carry over.
  const before = await client.getMany(plainKeys);
  const liveBefore = before.slice(COUNTERS, COUNTERS + LIVE_KEYS).map((r) => Number(r.value));
  expect(liveBefore.reduce((a, b) => a + b, 0)).toBe(acked.reduce((a, b) => a + b, 0));
  const windowBefore = await client.windowRange("win:a", minute - 120_000, minute + 60_000, 60_000);
  const uniqueBefore = await client.uniqueCount(["uniq:a"]);
  expect(windowBefore.points.reduce((sum, point) => sum + point.value, 0n)).toBe(12n);
  expect(uniqueBefore.count).toBe(3);

  // Only a shard's leader takes its snapshot; a follower names it, and bad requests are refused.
  const route = (await client.routes()).shards.find((s) => s.shardId === 2)!;
  const follower = route.replicas.find((r) => r.address !== route.leaderAddress)!.address;
  const fromFollower = async () => {
    for await (const _chunk of client.adminStream("ShardBackup", { shardId: 2 }, follower)) return "answered";
    return "empty";
  };
  await expect(fromFollower()).rejects.toMatchObject({ code: "NOT_LEADER", leaderAddress: route.leaderAddress });
  const badRequest = async (shardId: number) => {
    for await (const _chunk of client.adminStream("ShardBackup", { shardId }, route.leaderAddress!)) return "answered";
    return "empty";
  };
  await expect(badRequest(0)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  await expect(badRequest(99)).rejects.toMatchObject({ code: "WRONG_SHARD" });
  // A hot counter over 3 sub-counters (nine adds, round robin: every sub-counter exists).
  await client.declareHot("hot:likes", 3);
  for (let i = 0; i < 9; i++) await client.add("hot:likes", 2n);
  expect((await client.get("hot:likes")).value).toBe(18n);
  const counterCount = plainKeys.length + 3;
  // The final backup races a split of shard 2: whether it captures the parent before or after the
  // split (or catches the split between reading the map and the parent), the layout it records
  // must cover every slot exactly once and hold every counter.
  const racingSplit = await tallyctl(endpoints, "shard", "split", "2", "--at", "12288");
  expect(racingSplit.code, racingSplit.output).toBe(0);
  const finalDir = join(scratch, "final");
  const final = await tallyctl(endpoints, "--json", "backup", finalDir);
  expect(final.code, final.output).toBe(0);
  const finalManifest = JSON.parse(final.output.slice(final.output.indexOf("{"))) as BackupManifest;
  expect(finalManifest.shards.reduce((sum, s) => sum + s.counters, 0)).toBe(counterCount);
  expect(finalManifest.hot?.map((h) => [Buffer.from(h.key, "base64").toString(), h.tags.length])).toEqual([["hot:likes", 3]]);
  expect([3, 4]).toContain(finalManifest.shards.length);
  const text = await tallyctl(endpoints, "backup", join(scratch, "text"));
  expect(text.code, text.output).toBe(0);
  expect(text.output).toMatch(new RegExp(`backup of cluster test in .*text: [34] shards, ${counterCount} counters`));
  expect(text.output).toContain("each shard is consistent at its own applied index");

  // Refusals: an occupied backup target; a damaged backup (nothing written for the new cluster).
  const occupied = join(scratch, "occupied");
  mkdirSync(occupied);
  writeFileSync(join(occupied, "x"), "");
  const refused = await tallyctl(endpoints, "backup", occupied);
  expect(refused.code).toBe(2);
  expect(refused.output).toContain("is not empty");
  target = await TestCluster.prepare({ nodes: 3, shards: 3 });
  const damagedDir = join(scratch, "damaged");
  cpSync(finalDir, damagedDir, { recursive: true });
  const file = join(damagedDir, shardFileName(3));
  const bytes = readFileSync(file);
  bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
  writeFileSync(file, bytes);
  const damaged = await tallyctl(target.endpoints(), "restore", damagedDir, "--config", target.configPath);
  expect(damaged.code, damaged.output).toBe(1);
  expect(damaged.output).toMatch(/CORRUPTION: shard 3 .*SHA-256 .* does not match/);
  for (const node of target.config.nodes) expect(existsSync(node.dataDir)).toBe(false);

  // The old cluster goes away; the new one is built from the backup and started.
  for (const node of source.config.nodes) await source.stop(node.id);
  const restored = await tallyctl(target.endpoints(), "restore", finalDir, "--config", target.configPath);
  expect(restored.code, restored.output).toBe(0);
  expect(restored.output).toContain(
    `restored ${finalManifest.shards.length} shards, ${counterCount} counters of cluster test as cluster test`,
  );
  await target.startAll();
  const again = new TallyClient({ endpoints: target.endpoints(), deadlineMs: 20_000 });
  clients.push(again);

  const after = await again.getMany(plainKeys);
  after.forEach((read, i) => {
    expect({ key: plainKeys[i], value: read.value, version: read.version, exists: read.exists }).toEqual({
      key: plainKeys[i],
      value: before[i]!.value,
      version: before[i]!.version,
      exists: true,
    });
  });
  expect((await again.windowRange("win:a", minute - 120_000, minute + 60_000, 60_000)).points).toEqual(windowBefore.points);
  expect((await again.uniqueCount(["uniq:a"])).count).toBe(uniqueBefore.count);
  // The hot counter is still hot: reads sum the same sub-counters.
  expect((await again.get("hot:likes")).value).toBe(18n);
  // The rate limit's window carried over: 2 of 10 were taken.
  expect((await again.tryAcquire("limit:a", 8, 10, 600_000)).allowed).toBe(true);
  expect((await again.tryAcquire("limit:a", 1, 10, 600_000)).allowed).toBe(false);

  // The layout is the backed-up one, and the new cluster takes writes with versions above it.
  const routes = await again.routes();
  expect(routes.shards.map((s) => [s.shardId, s.slotStart, s.slotEnd, Number(s.epoch)])).toEqual(
    finalManifest.shards.map((s) => [s.id, s.slotStart, s.slotEnd, s.epoch]),
  );
  const write = await again.add("c-5", 1n);
  expect(write.value).toBe(expectedValue(5) + 1n);
  const shardOfKey = finalManifest.shards.find(
    (s) => slotOf(encoder.encode("c-5")) >= s.slotStart && slotOf(encoder.encode("c-5")) < s.slotEnd,
  )!;
  expect(write.version).toBeGreaterThan(BigInt(shardOfKey.appliedIndex));
});
