/**
 * Multi-region replication on loopback (docs/regions.md): 1-node clusters as regions, a latency
 * proxy on every directed region link, in-process replicators (what `tallyctl regions replicate`
 * runs). Checks: the idempotent apply against a real cluster (duplicates, reordering, replay); a
 * bootstrap full read; adds and decrements in every region with a partition and its heal; a
 * replicator restarted and a duplicate replicator running beside it; a reset key. Every region's
 * global read must equal the sum of the acknowledged adds over all regions.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyComponents, globalGet, listRegions, TallyClient } from "../../src/client/index.js";
import { componentIndexKey, componentKey } from "../../src/client/region-keys.js";
import { eventually } from "../support/cluster.js";
import { RegionMesh } from "../support/regions.js";

const KEYS = ["likes:1", "likes:2", "{stock}:a", "views:x", "neg"];

/** Acknowledged adds, per key, summed over every region. */
class Ledger {
  readonly totals = new Map<string, bigint>();
  async add(client: TallyClient, key: string, delta: bigint): Promise<void> {
    await client.add(key, delta);
    this.totals.set(key, (this.totals.get(key) ?? 0n) + delta);
  }
  expected(key: string): bigint {
    return this.totals.get(key) ?? 0n;
  }
}

async function writeRound(mesh: RegionMesh, ledger: Ledger, regions: string[], round: number): Promise<void> {
  await Promise.all(
    regions.map(async (name, r) => {
      const client = mesh.region(name).client;
      for (let i = 0; i < KEYS.length; i++) {
        const delta = BigInt(((round * 7 + r * 3 + i) % 11) - 4); // some negative: a PN counter
        await ledger.add(client, KEYS[i]!, delta === 0n ? 1n : delta);
      }
    }),
  );
}

async function converged(mesh: RegionMesh, ledger: Ledger, keys = KEYS): Promise<void> {
  const seen: string[] = [];
  await eventually(
    async () => {
      seen.length = 0;
      for (const region of mesh.regions) {
        for (const key of keys) {
          const global = await globalGet(region.client, key);
          if (global.value !== ledger.expected(key)) {
            seen.push(`${region.name} ${key}: ${global.value} != ${ledger.expected(key)}`);
            return false;
          }
        }
      }
      return true;
    },
    30_000,
    "every region's global sums to equal the acknowledged adds",
    () => seen.join("; "),
  );
}

describe("regions", () => {
  let mesh: RegionMesh;
  const ledger = new Ledger();

  beforeAll(async () => {
    mesh = await RegionMesh.start(["east", "west", "north"]);
    mesh.shapeAll({ latencyMs: 10, jitterMs: 5 });
  }, 90_000);

  afterAll(async () => {
    await mesh?.destroy();
  });

  it("applies a component only above the index it holds: duplicates, reordering, replay", async () => {
    const client = mesh.region("east").client;
    const key = Buffer.from("apply:k");
    const read = async () => (await client.getMany([componentKey("zz", key), componentIndexKey("zz", key)])).map((r) => r.value);
    expect(await applyComponents(client, "zz", [{ key, value: 5n, index: 10n }])).toEqual({ applied: 1, stale: 0 });
    expect(await read()).toEqual([5n, 10n]);
    // The same update again, and an older one arriving late: nothing changes.
    expect(await applyComponents(client, "zz", [{ key, value: 5n, index: 10n }])).toEqual({ applied: 0, stale: 1 });
    expect(await applyComponents(client, "zz", [{ key, value: 3n, index: 7n }])).toEqual({ applied: 0, stale: 1 });
    expect(await read()).toEqual([5n, 10n]);
    // Out of order within a batch: the newest wins whatever the order.
    await applyComponents(client, "zz", [
      { key, value: -2n, index: 14n },
      { key, value: 9n, index: 12n },
    ]);
    expect(await read()).toEqual([-2n, 14n]);
    // A replay of everything (a replicator restarted from an old cursor) changes nothing.
    const replay = await applyComponents(client, "zz", [
      { key, value: 5n, index: 10n },
      { key, value: 9n, index: 12n },
      { key, value: -2n, index: 14n },
    ]);
    expect(replay.applied).toBe(0);
    expect(await read()).toEqual([-2n, 14n]);
    // Concurrent appliers of different updates: the highest index wins.
    await Promise.all([15n, 17n, 16n].map((index) => applyComponents(client, "zz", [{ key, value: index * 10n, index }])));
    expect(await read()).toEqual([170n, 17n]);
  });

  it("bootstraps by a full read, replicates adds both ways, survives a partition", async () => {
    // Written before any replicator runs: reaches the others by the full read.
    await writeRound(mesh, ledger, ["east", "west", "north"], 0);
    mesh.startAllReplicators();
    await converged(mesh, ledger);
    for (let round = 1; round <= 3; round++) await writeRound(mesh, ledger, ["east", "west", "north"], round);
    await converged(mesh, ledger);

    // Partition east | west; north still talks to both. Writes continue everywhere.
    mesh.partition("east", "west", true);
    for (let round = 4; round <= 7; round++) await writeRound(mesh, ledger, ["east", "west", "north"], round);
    // West's view of east is frozen while cut: its global read misses east's new adds.
    const westView = await globalGet(mesh.region("west").client, KEYS[0]!);
    const eastPart = westView.regions.find((region) => region.region === "east")!;
    const eastLocal = await mesh.region("east").client.get(KEYS[0]!);
    expect(eastPart.value).not.toBe(eastLocal.value);
    mesh.partition("east", "west", false);
    await converged(mesh, ledger);
    const regions = await listRegions(mesh.region("west").client);
    expect(regions.map((entry) => [entry.region, entry.active])).toEqual([
      ["east", true],
      ["north", true],
    ]);
  });

  it("a restarted replicator resumes from its cursor; a duplicate one changes nothing", async () => {
    await mesh.stopReplicator("north", "east");
    await writeRound(mesh, ledger, ["north", "west"], 8);
    mesh.startReplicator("north", "east");
    // A second replicator of the same link, as after a botched failover: the guard makes it harmless.
    const twin = new TallyClient({ endpoints: mesh.region("east").cluster.endpoints() });
    const { RegionReplicator } = await import("../../src/client/index.js");
    const duplicate = new RegionReplicator({ origin: "north", local: twin, remote: mesh.remoteClient("north", "east") });
    duplicate.start();
    try {
      await writeRound(mesh, ledger, ["north"], 9);
      await converged(mesh, ledger);
    } finally {
      await duplicate.stop();
      await twin.close();
    }
    const status = mesh.replicators.get("north>east")!.replicator.status();
    expect(status.shards.length).toBe(2);
    expect(status.shards.every((shard) => shard.cursor > 0n)).toBe(true);
  });

  it("a cursor the origin no longer retains is recovered by a full read", async () => {
    // A key north deletes (in the shard about to be compacted) while west's cursor is out of its
    // change log: the full read does not list it, and west's copy must still go to 0.
    await ledger.add(mesh.region("north").client, "{bulk}gone", 5n);
    await converged(mesh, ledger, ["{bulk}gone"]);
    await mesh.stopReplicator("north", "west");
    await writeRound(mesh, ledger, ["north"], 10);
    await mesh.region("north").client.reset("{bulk}gone");
    ledger.totals.set("{bulk}gone", 0n);
    // More changes than the change log of one origin shard keeps (65,536; one hash tag, and one
    // change per key per entry): west's cursor falls out of it. 9,000 keys stay within a full read.
    const north = mesh.region("north").client;
    for (let batch = 0; batch < 8; batch++) {
      const ops = Array.from({ length: 9_000 }, (_, i) => ({ key: `{bulk}:${i}`, delta: 1n }));
      await north.addBatch(ops);
      for (const op of ops) ledger.totals.set(op.key, (ledger.totals.get(op.key) ?? 0n) + 1n);
    }
    const replicator = mesh.startReplicator("north", "west");
    await converged(mesh, ledger, [...KEYS, "{bulk}gone", "{bulk}:0", "{bulk}:8999"]);
    expect(replicator.status().fullReads).toBeGreaterThan(0);
  });

  it("a reset key's component goes to 0 everywhere", async () => {
    await mesh.region("west").client.reset(KEYS[1]!);
    // West's own part is gone: the expected total loses what west had acknowledged into it.
    const westRemaining = (await mesh.region("west").client.get(KEYS[1]!)).value;
    expect(westRemaining).toBe(0n);
    const withoutWest = new Ledger();
    for (const region of ["east", "north"]) {
      withoutWest.totals.set(KEYS[1]!, (withoutWest.totals.get(KEYS[1]!) ?? 0n) + (await mesh.region(region).client.get(KEYS[1]!)).value);
    }
    await converged(mesh, withoutWest, [KEYS[1]!]);
  });
});
