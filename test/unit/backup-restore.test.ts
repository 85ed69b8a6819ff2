/**
 * The backup format and offline restore without a cluster: manifest checks, every kind of damage
 * refused before anything is written, and a restore whose stores load back into exactly the state
 * that was backed up (same snapshot bytes), with the map initialized to the backed-up layout.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { MetaStateMachine } from "../../src/meta/map.js";
import { encodeMetaEntry } from "../../src/meta/map.js";
import {
  BACKUP_FORMAT,
  BACKUP_FORMAT_VERSION,
  encodeManifest,
  MANIFEST_FILE,
  parseManifest,
  shardFileName,
  verifyBackup,
  type BackupManifest,
  type ManifestShard,
} from "../../src/server/backup/backup-format.js";
import { parseClusterConfig, shardOptionsOf, type ClusterConfig } from "../../src/server/config/config.js";
import { decodeDescriptor, wrapShardSnapshot } from "../../src/server/descriptor.js";
import { restoreCluster } from "../../src/server/backup/restore.js";
import { decodeShardSnapshotData } from "../../src/server/checkpoint-format.js";
import { CounterStateMachine } from "../../src/shard/state-machine.js";
import { NodeStore } from "../../src/storage/node-store.js";
import { slotOf } from "../../src/meta/slots.js";
import { add, expectOk, INT64_MAX, INT64_MIN, key, set, ShardDriver } from "./shard-harness.js";

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "tally-backup-unit-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function config(nodes: number, replicationFactor = 3, base = root): ClusterConfig {
  return parseClusterConfig({
    cluster: { name: "restored", replicationFactor, shards: 2 },
    nodes: Array.from({ length: nodes }, (_, i) => ({
      id: i + 1,
      client: `127.0.0.1:${7001 + i}`,
      peer: `127.0.0.1:${7101 + i}`,
      dataDir: join(base, "new", `n${i + 1}`),
    })),
  });
}

const options = shardOptionsOf(config(3, 3, tmpdir()));

/** A shard state: counters (int64 edges, a negative), a session with a retained result, a TTL. */
function shardMachine(keys: string[], indexBase: number): CounterStateMachine {
  const driver = new ShardDriver(new CounterStateMachine(options));
  driver.index = indexBase;
  const clientId = driver.register();
  keys.forEach((k, i) => expectOk(driver.mutate(clientId, i + 1, [add(k, BigInt(i * 7 + 1))])));
  if (keys.length > 2) {
    expectOk(driver.mutate(clientId, keys.length + 1, [set(keys[0]!, INT64_MAX), set(keys[1]!, INT64_MIN)]));
    expectOk(driver.mutate(clientId, keys.length + 2, [{ kind: "add", key: key(keys[2]!), delta: -5n, ttlMs: 3_600_000 }]));
  }
  return driver.machine;
}

/** Keys that hash into [slotStart, slotEnd). */
function keysIn(slotStart: number, slotEnd: number, count: number, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const slot = slotOf(key(`${prefix}-${i}`));
    if (slot >= slotStart && slot < slotEnd) out.push(`${prefix}-${i}`);
  }
  return out;
}

interface Layout {
  id: number;
  slotStart: number;
  slotEnd: number;
  epoch: number;
}

const LAYOUT: Layout[] = [
  { id: 1, slotStart: 0, slotEnd: 5000, epoch: 3 },
  { id: 2, slotStart: 8192, slotEnd: 16384, epoch: 1 },
  { id: 3, slotStart: 5000, slotEnd: 8192, epoch: 3 },
];

/** Writes a backup as tallyctl backup would; returns it with the machines it holds. */
function writeBackup(dir: string, layout = LAYOUT): { manifest: BackupManifest; machines: Map<number, CounterStateMachine> } {
  mkdirSync(dir, { recursive: true });
  const machines = new Map<number, CounterStateMachine>();
  const shards: ManifestShard[] = layout.map((range, i) => {
    const machine = shardMachine(keysIn(range.slotStart, range.slotEnd, 25 + i * 10, `k${range.id}`), 100 * range.id);
    machines.set(range.id, machine);
    const data = wrapShardSnapshot({ epoch: range.epoch, slotStart: range.slotStart, slotEnd: range.slotEnd }, machine.snapshot());
    writeFileSync(join(dir, shardFileName(range.id)), data);
    return {
      ...range,
      file: shardFileName(range.id),
      appliedIndex: machine.appliedIndex,
      term: 4,
      clockMs: machine.clockMs,
      leaderId: 2,
      capturedAt: new Date().toISOString(),
      bytes: data.length,
      counters: machine.counterCount(),
      sha256: createHash("sha256").update(data).digest("hex"),
    };
  });
  const now = new Date().toISOString();
  const manifest: BackupManifest = {
    format: BACKUP_FORMAT,
    version: BACKUP_FORMAT_VERSION,
    clusterName: "source",
    startedAt: now,
    finishedAt: now,
    mapVersion: 42,
    replicationFactor: 3,
    slotCount: 16384,
    shards,
  };
  writeFileSync(join(dir, MANIFEST_FILE), encodeManifest(manifest));
  return { manifest, machines };
}

function editManifest(dir: string, edit: (manifest: Record<string, any>) => void): void {
  const manifest = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), "utf8"));
  edit(manifest);
  writeFileSync(join(dir, MANIFEST_FILE), JSON.stringify(manifest));
}

describe("manifest", () => {
  test("round-trips and is sorted by slot", () => {
    const { manifest } = writeBackup(join(root, "b"));
    const parsed = parseManifest(encodeManifest(manifest));
    expect(parsed.shards.map((s) => s.id)).toEqual([1, 3, 2]);
    expect(parsed.clusterName).toBe("source");
    const withHot = parseManifest(encodeManifest({ ...manifest, hot: [{ key: "aG90", tags: [0, 7, 9] }] }));
    expect(withHot.hot).toEqual([{ key: "aG90", tags: [0, 7, 9] }]);
  });

  test.each([
    ["not JSON", (): string => "{", /not JSON/],
    ["another format", (m: any) => ((m.format = "other"), m), /format is "other"/],
    ["a newer version", (m: any) => ((m.version = 2), m), /version 2/],
    ["a gap in the slots", (m: any) => ((m.shards[0].slotEnd = 4000), m), /slots 4000-4999 belong to no shard/],
    ["overlapping shards", (m: any) => ((m.shards[2].slotStart = 4000), m), /overlaps/],
    ["a duplicate shard id", (m: any) => ((m.shards[1].id = 1), (m.shards[1].file = shardFileName(1)), m), /appears twice/],
    ["a missing field", (m: any) => (delete m.shards[0].appliedIndex, m), /shards\[0\]\.appliedIndex must be an integer/],
    ["a bad checksum field", (m: any) => ((m.shards[0].sha256 = "abc"), m), /not a hex SHA-256/],
    ["a file outside the backup", (m: any) => ((m.shards[0].file = "../../etc/passwd"), m), /file must be shard-0001\.snap/],
    [
      "hot tags not starting at 0",
      (m: any) => ((m.hot = [{ key: "aG90", tags: [1, 2] }]), m),
      /hot\[0\]\.tags must be 2\.\.64 tags starting with 0/,
    ],
    ["repeated hot tags", (m: any) => ((m.hot = [{ key: "aG90", tags: [0, 5, 5] }]), m), /distinct/],
    ["a hot key that is not base64", (m: any) => ((m.hot = [{ key: "!!", tags: [0, 1] }]), m), /base64/],
    [
      "a hot key twice",
      (m: any) => (
        (m.hot = [
          { key: "aG90", tags: [0, 1] },
          { key: "aG90", tags: [0, 2] },
        ]),
        m
      ),
      /appears twice/,
    ],
  ])("refuses %s", (_name, edit, message) => {
    const { manifest } = writeBackup(join(root, "b"));
    const copy = JSON.parse(encodeManifest(manifest));
    const edited = edit(copy);
    expect(() => parseManifest(typeof edited === "string" ? edited : JSON.stringify(edited))).toThrow(message);
  });
});

describe("verification", () => {
  test("a whole backup verifies", async () => {
    const dir = join(root, "b");
    const { manifest } = writeBackup(dir);
    expect((await verifyBackup(dir, options)).shards).toHaveLength(manifest.shards.length);
  });

  test.each([
    [
      "a flipped byte",
      (dir: string) => {
        const path = join(dir, shardFileName(3));
        const bytes = readFileSync(path);
        const middle = bytes.length >> 1;
        bytes[middle] = bytes[middle]! ^ 0x01;
        writeFileSync(path, bytes);
      },
      /shard 3 .*SHA-256 [0-9a-f]{64} does not match/,
    ],
    [
      "a truncated file",
      (dir: string) => {
        const path = join(dir, shardFileName(2));
        writeFileSync(path, readFileSync(path).subarray(0, 100));
      },
      /shard 2 .*100 bytes, the manifest says \d+ \(truncated/,
    ],
    ["a missing file", (dir: string) => rmSync(join(dir, shardFileName(1))), /shard 1 .*file missing/],
    ["a missing manifest", (dir: string) => rmSync(join(dir, MANIFEST_FILE)), /missing: not a tally backup/],
    [
      "a counter count that disagrees",
      (dir: string) => editManifest(dir, (m) => (m.shards[0].counters += 1)),
      /counter count is \d+, the manifest says \d+/,
    ],
    [
      "a slot range that disagrees with the snapshot",
      (dir: string) =>
        editManifest(dir, (m) => {
          m.shards[0].slotEnd = 4999; // shard 1 (stays tiled: shard 3 starts at 4999 too)
          m.shards[2].slotStart = 4999;
        }),
      /slot end is 5000, the manifest says 4999/,
    ],
    [
      "garbage with a matching checksum",
      (dir: string) => {
        const garbage = new Uint8Array(64).fill(7);
        writeFileSync(join(dir, shardFileName(1)), garbage);
        editManifest(dir, (m) => {
          m.shards[0].bytes = garbage.length;
          m.shards[0].sha256 = createHash("sha256").update(garbage).digest("hex");
        });
      },
      /shard 1 .*snapshot does not decode/,
    ],
  ])("refuses %s, and restore writes nothing", async (_name, damage, message) => {
    const dir = join(root, "b");
    writeBackup(dir);
    damage(dir);
    await expect(verifyBackup(dir, options)).rejects.toThrow(message);
    await expect(restoreCluster(dir, config(3))).rejects.toThrow(message);
    expect(existsSync(join(root, "new"))).toBe(false);
  });
});

describe("restore", () => {
  test("every node gets the metadata group and its shards; the stores load back into the backed-up state", async () => {
    const dir = join(root, "b");
    const { machines } = writeBackup(dir);
    const target = config(4);
    const summary = await restoreCluster(dir, target, { nowMs: 1_800_000_000_000 });
    expect(summary.shards).toBe(3);
    expect(summary.counters).toBe([...machines.values()].reduce((sum, m) => sum + m.counterCount(), 0));
    // Replicas dealt 3 per shard over 4 nodes; the metadata group on nodes 1-3.
    expect(summary.nodes.map((n) => [n.id, n.meta, n.shards])).toEqual([
      [1, true, [1, 2, 3]],
      [2, true, [1, 2]],
      [3, true, [1, 3]],
      [4, false, [2, 3]],
    ]);
    expect(readdirSync(join(root, "new")).sort()).toEqual(["n1", "n2", "n3", "n4"]); // no staging left

    for (const node of summary.nodes) {
      const store = await NodeStore.open(target.nodes.find((n) => n.id === node.id)!.dataDir);
      try {
        expect(await store.listGroups()).toEqual([...(node.meta ? [0] : []), ...node.shards]);
        if (node.meta) {
          const meta = MetaStateMachine.restore((await store.getGroupState(0))!);
          expect(meta.appliedIndex).toBe(1);
          expect(meta.map.initialized).toBe(true);
          expect(meta.map.clusterName).toBe("restored");
          expect(meta.map.nodes.map((n) => n.id)).toEqual([1, 2, 3, 4]);
          expect(meta.map.shards.map((s) => [s.id, s.slotStart, s.slotEnd, s.epoch, s.voters])).toEqual([
            [1, 0, 5000, 3, [1, 2, 3]],
            [3, 5000, 8192, 3, [1, 3, 4]],
            [2, 8192, 16384, 1, [1, 2, 4]],
          ]);
          const group = await store.loadGroup(0);
          expect(group.snapshot?.metadata.index).toBe(1);
          expect(group.snapshot?.metadata.confState.voters).toEqual([1, 2, 3]);
        }
        for (const shardId of node.shards) {
          const original = machines.get(shardId)!;
          const group = await store.loadGroup(shardId);
          expect(group.snapshot?.metadata.index).toBe(original.appliedIndex);
          expect(group.snapshot?.metadata.confState.voters).toEqual(
            summary.nodes.filter((n) => n.shards.includes(shardId)).map((n) => n.id),
          );
          expect(group.hardState).toEqual({ term: 1, vote: 0, commit: original.appliedIndex });
          const { epoch, slotStart, slotEnd } = LAYOUT.find((l) => l.id === shardId)!;
          expect(decodeDescriptor((await store.getGroupState(shardId))!, "test")).toEqual({ epoch, slotStart, slotEnd });
          // What the node loads at start-up is exactly the backed-up state (same snapshot bytes): the
          // log store holds it as the shard's snapshot, with its data, until the first checkpoint.
          const loaded = decodeShardSnapshotData(group.snapshot!.data, options, "test");
          expect(loaded.descriptor).toEqual({ epoch, slotStart, slotEnd });
          const machine = loaded.machine;
          expect(Buffer.from(machine.snapshot()).equals(Buffer.from(original.snapshot()))).toBe(true);
          expect(machine.sessionCount()).toBe(1);
        }
      } finally {
        await store.close();
      }
    }
  });

  test("refuses a data directory that is not empty, and writes nothing anywhere", async () => {
    const dir = join(root, "b");
    writeBackup(dir);
    const target = config(3);
    mkdirSync(target.nodes[1]!.dataDir, { recursive: true });
    writeFileSync(join(target.nodes[1]!.dataDir, "LOCK"), "");
    await expect(restoreCluster(dir, target)).rejects.toThrow(/node 2's data directory .*n2 is not empty/);
    expect(readdirSync(join(root, "new")).sort()).toEqual(["n2"]);
    expect(readdirSync(target.nodes[1]!.dataDir)).toEqual(["LOCK"]);
  });

  test("an empty data directory is fine; a leftover staging directory is refused", async () => {
    const dir = join(root, "b");
    writeBackup(dir);
    const target = config(3);
    mkdirSync(`${target.nodes[0]!.dataDir}.restoring`, { recursive: true });
    await expect(restoreCluster(dir, target)).rejects.toThrow(/staging directory .*n1\.restoring exists/);
    rmSync(`${target.nodes[0]!.dataDir}.restoring`, { recursive: true });
    mkdirSync(target.nodes[0]!.dataDir, { recursive: true });
    await restoreCluster(dir, target);
    expect(readdirSync(join(root, "new")).sort()).toEqual(["n1", "n2", "n3"]);
  });

  test("the restored map's first entry is a valid init (the controller never proposes its own layout over it)", () => {
    // Sanity of the shape restore relies on: a second init on an initialized map changes nothing.
    const machine = new MetaStateMachine();
    const init = {
      type: "init" as const,
      clusterName: "x",
      replicationFactor: 1,
      nodes: [{ id: 1, client: "a:1", peer: "a:2", zone: "z" }],
      shards: [{ id: 5, slotStart: 0, slotEnd: 16384, epoch: 9, voters: [1], learners: [], votersOutgoing: [] }],
      metaVoters: [1],
    };
    expect(machine.applyEntry(1, encodeMetaEntry(1, [init]))[0]).toEqual({ ok: true, changed: true });
    expect(machine.applyEntry(2, encodeMetaEntry(2, [{ ...init, shards: [{ ...init.shards[0]!, id: 1, epoch: 1 }] }]))[0]).toEqual({
      ok: true,
      changed: false,
    });
    expect(machine.map.shards[0]!.id).toBe(5);
  });
});
