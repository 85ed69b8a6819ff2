/**
 * Escrow, a global floor across regions (docs/regions.md, "Escrow: a global floor"): three 1-node
 * regions behind latency proxies, in-process replicators (which also carry transfers). Checks:
 * the rights arithmetic against a real cluster (a refused decrement or transfer changes nothing; a
 * transfer applied twice counts once; a declared floor); a transfer in flight across a partition
 * arrives on heal, and a decrement beyond local rights is refused while the region holding them is
 * cut off; decrements racing in every region down to the floor, with on-demand transfers and a
 * partition in the middle, never take the global value below the floor, and end with every
 * region's global equal to the acknowledged operations and to the floor.
 *
 * Why "never below the floor at any point" is checked by phases: increments are all acknowledged
 * (and replicated) before the decrements race, so during the race the true global value only goes
 * down; it is then never below the floor iff its final value (increments minus acknowledged
 * decrements) is not. During the race every region's global view (acknowledged increments minus a
 * subset of the decrements) is sampled too: it must never be below the floor either.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { runTallyctl } from "../support/tallyctl.js";
import { applyTransfers, escrowAdd, escrowDeclare, escrowState, escrowTransfer, globalGet, TallyClient } from "../../src/client/index.js";
import { escrowKeys } from "../../src/client/escrow-keys.js";
import { cursorKey } from "../../src/client/region-keys.js";
import { FailedPreconditionError } from "../../src/util/errors.js";
import { eventually, withDeadline } from "../support/cluster.js";
import { RegionMesh } from "../support/regions.js";

const NAMES = ["east", "west", "north"];

/** A client of region `from` as seen from region `to` (through the proxy of that link), with short deadlines. */
function peerClient(mesh: RegionMesh, from: string, to: string): TallyClient {
  const origin = mesh.region(from);
  const through = mesh.proxies.get(`${from}>${to}`)!.map((proxy) => `127.0.0.1:${proxy.listenPort}`);
  const addressMap = Object.fromEntries(origin.cluster.config.nodes.map((node, i) => [node.client, through[i]!]));
  return new TallyClient({
    endpoints: through,
    addressMap,
    deadlineMs: 1_500,
    attemptTimeoutMs: 1_000,
    connectTimeoutMs: 500,
    retryBackoffMaxMs: 200,
  });
}

/** A key's and its rights' values and versions: what a refusal must leave as they were. */
async function snapshot(client: TallyClient, keys: ReturnType<typeof escrowKeys>): Promise<string[]> {
  return (await client.getMany([keys.key, keys.rights])).map((read) => `${read.value}@${read.version}`);
}

async function globalsEqual(mesh: RegionMesh, key: string, expected: bigint): Promise<void> {
  const seen: string[] = [];
  await eventually(
    async () => {
      seen.length = 0;
      for (const region of mesh.regions) {
        const value = (await globalGet(region.client, key)).value;
        if (value !== expected) seen.push(`${region.name}: ${value}`);
      }
      return seen.length === 0;
    },
    20_000,
    `every region's global of ${key} to equal ${expected}`,
    () => seen.join(", "),
  );
}

describe("escrow", () => {
  let mesh: RegionMesh;
  const peers = new Map<string, TallyClient>(); // "from>to"

  beforeAll(async () => {
    mesh = await RegionMesh.start(NAMES);
    mesh.shapeAll({ latencyMs: 10, jitterMs: 5 });
    mesh.startAllReplicators();
    for (const from of NAMES) for (const to of NAMES) if (from !== to) peers.set(`${from}>${to}`, peerClient(mesh, from, to));
  }, 90_000);

  afterAll(async () => {
    // Each close within a deadline, so the nodes are always killed (mesh.destroy).
    for (const client of peers.values()) await withDeadline(client.close(), 10_000, "a peer client did not close").catch(() => undefined);
    await mesh?.destroy();
  }, 120_000);

  const peersOf = (here: string) =>
    NAMES.filter((name) => name !== here).map((name) => ({ region: name, client: peers.get(`${name}>${here}`)! }));

  it("spends only held rights: a refusal changes nothing; a transfer applied twice counts once", async () => {
    const east = mesh.region("east").client;
    const west = mesh.region("west").client;
    const key = "unit:stock";
    const keys = escrowKeys(key);
    expect(await escrowAdd(east, key, 10n, { region: "east" })).toEqual({ value: 10n, rights: 10n, transferred: 0n });
    expect(await escrowAdd(east, key, -4n, { region: "east" })).toEqual({ value: 6n, rights: 6n, transferred: 0n });
    const before = await snapshot(east, keys);
    await expect(escrowAdd(east, key, -7n, { region: "east" })).rejects.toThrow(/holds 6 rights .* needs 7: nothing changed/);
    await expect(escrowTransfer(east, key, { from: "east", to: "west", amount: 7n })).rejects.toThrow(FailedPreconditionError);
    expect(await snapshot(east, keys)).toEqual(before);
    // West holds nothing: its decrement is refused, its component stays 0.
    await expect(escrowAdd(west, key, -1n, { region: "west" })).rejects.toThrow(FailedPreconditionError);
    expect((await west.get(key)).value).toBe(0n);

    // East moves 4 to west, applied at west at once; the same counter applied again (a replay, the
    // replicator's copy) adds nothing.
    const moved = await escrowTransfer(east, key, { from: "east", to: "west", amount: 4n, receiver: west });
    expect(moved).toEqual({ rights: 2n, transferredTotal: 4n, received: true });
    expect(await applyTransfers(west, "east", "west", [{ outKey: keys.out("west"), value: 4n }])).toBe(0n);
    expect(await applyTransfers(west, "east", "west", [{ outKey: keys.out("west"), value: 3n }])).toBe(0n);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the replicator's copy arrives too
    expect((await escrowState(west, key, ["east"])).rights).toBe(4n);
    expect(await escrowAdd(west, key, -4n, { region: "west" })).toEqual({ value: -4n, rights: 0n, transferred: 0n });
    await globalsEqual(mesh, key, 2n);

    // A declared floor: rights = initial - floor, in the declaring region, once.
    const declared = "{sku-9}:stock";
    expect(await escrowDeclare(east, declared, { floor: -5n, initial: 3n })).toEqual({ rights: 8n });
    await expect(escrowDeclare(east, declared, { floor: 0n })).rejects.toThrow(/already declared/);
    await expect(escrowDeclare(west, "plain", { floor: 0n, initial: 0n }).then(() => escrowAdd(west, "plain", 1n))).resolves.toBeDefined();
    await expect(escrowDeclare(west, "plain", { floor: -1n })).rejects.toThrow(FailedPreconditionError);
    expect((await escrowAdd(east, declared, -8n, { region: "east" })).value).toBe(-5n);
    await expect(escrowAdd(east, declared, -1n, { region: "east" })).rejects.toThrow(FailedPreconditionError);
    expect((await escrowState(east, declared, [])).floor).toBe(-5n);
  });

  it("a partition refuses what needs the cut region's rights; a transfer in flight arrives on heal", async () => {
    const key = "{p}:stock";
    const keys = escrowKeys(key);
    const [east, west, north] = ["east", "west", "north"].map((name) => mesh.region(name).client) as [
      TallyClient,
      TallyClient,
      TallyClient,
    ];
    await escrowAdd(west, key, 10n, { region: "west" });
    await globalsEqual(mesh, key, 10n);
    mesh.partition("east", "west", true);
    try {
      const before = await snapshot(east, keys);
      // East needs west's rights and cannot reach west: refused, nothing changed.
      await expect(
        escrowAdd(east, key, -3n, { region: "east", peers: [{ region: "west", client: peers.get("west>east")! }] }),
      ).rejects.toThrow(FailedPreconditionError);
      expect(await snapshot(east, keys)).toEqual(before);
      // North still reaches west: it gets 2 on demand.
      expect(await escrowAdd(north, key, -2n, { region: "north", peers: peersOf("north") })).toMatchObject({ rights: 0n, transferred: 2n });
      // West sends 5 to east: committed in west, in flight until the heal.
      await escrowTransfer(west, key, { from: "west", to: "east", amount: 5n });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect((await escrowState(east, key, ["west"])).rights).toBe(0n);
    } finally {
      mesh.partition("east", "west", false);
    }
    await eventually(async () => (await escrowState(east, key, ["west"])).rights === 5n, 20_000, "the transfer to reach east");
    expect(await escrowAdd(east, key, -5n, { region: "east" })).toMatchObject({ rights: 0n });
    await globalsEqual(mesh, key, 3n);

    // A transfer sent while north's replicator of west is down and its cursors are gone: the
    // replicator's full read (top-K of west's transfer counters towards north) brings it.
    await mesh.stopReplicator("west", "north");
    await escrowTransfer(west, key, { from: "west", to: "north", amount: 1n });
    for (const route of (await west.routes()).shards) await north.set(cursorKey("west", route.shardId), 0n);
    const replicator = mesh.startReplicator("west", "north");
    await eventually(async () => (await escrowState(north, key, ["west"])).rights === 1n, 20_000, "the transfer to reach north");
    expect(replicator.status().fullReads).toBeGreaterThan(0);
    expect(await escrowAdd(north, key, -1n, { region: "north" })).toMatchObject({ rights: 0n });
    await globalsEqual(mesh, key, 2n);
    const westState = await escrowState(west, key, ["east", "north"]);
    expect(westState.rights).toBe(2n);
    expect(westState.links).toEqual([
      { region: "east", out: 5n, received: 0n },
      { region: "north", out: 3n, received: 0n },
    ]);
  });

  it("decrements racing in every region, across a partition, stop at the floor", async () => {
    const key = "{race}:stock";
    const floor = -20n;
    const acked = { increments: 0n, decrements: 0n, refused: 0, refusedDuringCut: 0, transferred: 0n };
    // East: 20 rights from the declaration and 10 from its increment; west 150; north 30. East
    // decrements as fast as it can, west and north at a pace: east runs out first and asks.
    await escrowDeclare(mesh.region("east").client, key, { floor, initial: 0n });
    for (const [name, amount] of [
      ["east", 10n],
      ["west", 150n],
      ["north", 30n],
    ] as const) {
      await escrowAdd(mesh.region(name).client, key, amount, { region: name });
      acked.increments += amount;
    }
    await globalsEqual(mesh, key, acked.increments);

    let stop = false;
    let cut = true;
    const views: string[] = [];
    const sampler = (async () => {
      while (!stop) {
        for (const region of mesh.regions) {
          const value = (await globalGet(region.client, key)).value;
          if (value < floor) views.push(`${region.name} saw ${value}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    /** One decrement with on-demand transfers; false when refused. */
    const decrement = async (name: string, amount: bigint): Promise<boolean> => {
      try {
        const result = await escrowAdd(mesh.region(name).client, key, -amount, { region: name, peers: peersOf(name) });
        acked.decrements += amount;
        acked.transferred += result.transferred;
        return true;
      } catch (error) {
        if (!(error instanceof FailedPreconditionError)) throw error;
        acked.refused++;
        if (cut) acked.refusedDuringCut++;
        return false;
      }
    };
    // Each region decrements until, after the heal, it is refused three times in a row; then
    // single units until refused: down to the floor.
    const paceMs: Record<string, number> = { east: 0, west: 30, north: 30 };
    const worker = async (name: string, seed: number): Promise<void> => {
      let refusedInARow = 0;
      for (let i = 0; cut || refusedInARow < 3; i++) {
        if (await decrement(name, BigInt(((seed + i * 7) % 4) + 1))) {
          refusedInARow = 0;
          await new Promise((resolve) => setTimeout(resolve, paceMs[name]));
        } else {
          refusedInARow++;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
      while (await decrement(name, 1n));
    };
    // East and west are cut apart from the start of the race to its middle: east soon runs out
    // of its own rights and can only get north's.
    mesh.partition("east", "west", true);
    const racing = Promise.all(NAMES.map((name, i) => worker(name, i * 3)));
    // The cut lasts until a decrement was refused during it (east, out of its rights and of
    // north's), at least 500 ms, then heals while the race goes on.
    const cutAt = Date.now();
    await eventually(() => acked.refusedDuringCut > 0 && Date.now() - cutAt >= 500, 15_000, "a decrement refused during the cut");
    mesh.partition("east", "west", false);
    cut = false;
    await racing;
    stop = true;
    await sampler;
    expect(views).toEqual([]);
    expect(acked.increments - acked.decrements).toBeGreaterThanOrEqual(floor);

    // Every right held or in flight: held rights plus transfers not yet received = value - floor.
    // Once none is in flight, a last sweep from every region spends what is left: exactly the floor.
    const value = () => acked.increments - acked.decrements;
    await globalsEqual(mesh, key, value());
    const rights = async (): Promise<{ held: bigint; inFlight: bigint }> => {
      const total = { held: 0n, inFlight: 0n };
      for (const name of NAMES) {
        const state = await escrowState(
          mesh.region(name).client,
          key,
          NAMES.filter((other) => other !== name),
        );
        total.held += state.rights;
        for (const link of state.links)
          total.inFlight += link.out - (await escrowState(mesh.region(link.region).client, key, [name])).links[0]!.received;
      }
      return total;
    };
    await eventually(async () => (await rights()).inFlight === 0n, 20_000, "every transfer to be received");
    expect((await rights()).held).toBe(value() - floor);
    for (const name of NAMES) while (await decrement(name, 1n));
    expect(value()).toBe(floor);
    expect(await rights()).toEqual({ held: 0n, inFlight: 0n });
    await globalsEqual(mesh, key, floor);
    // The race did race: east was refused while cut off, and rights moved on demand.
    expect(acked.refusedDuringCut).toBeGreaterThan(0);
    expect(acked.transferred).toBeGreaterThan(0n);
    expect(acked.decrements).toBeGreaterThan(0n);
  }, 60_000);
  it("tallyctl escrow: declare, add, a refusal, --ask, transfer, status", async () => {
    // West's cluster file with region: and regions: (the other regions through their proxies).
    const west = mesh.region("west").cluster;
    const document = parse(readFileSync(west.configPath, "utf8")) as Record<string, unknown>;
    document.region = "west";
    document.regions = ["east", "north"].map((name) => {
      const proxy = `127.0.0.1:${mesh.proxies.get(`${name}>west`)![0]!.listenPort}`;
      return { name, endpoints: [proxy], addressMap: { [mesh.region(name).cluster.config.nodes[0]!.client]: proxy } };
    });
    const config = join(west.dir, "escrow.yaml");
    writeFileSync(config, stringify(document));
    const run = (...args: string[]) => runTallyctl(["--config", config, "--timeout", "5000", ...args]);
    const key = "cli:stock";
    expect(await run("escrow", "declare", key, "--floor", "0", "--initial", "5")).toEqual({
      code: 0,
      output: `${key} escrowed with floor 0; rights held here: 5\n`,
    });
    const refused = await run("escrow", "add", key, "--", "-7");
    expect(refused.code).not.toBe(0);
    expect(refused.output).toMatch(/region west holds 5 rights .* needs 7: nothing changed/);
    expect((await mesh.region("west").client.get(key)).value).toBe(5n);
    await escrowAdd(mesh.region("east").client, key, 4n, { region: "east" });
    expect(await run("escrow", "add", "--ask", key, "--", "-7")).toEqual({
      code: 0,
      output: `${key} = -2 here; rights held here: 0 (2 received on demand)\n`,
    });
    const moved = await run("escrow", "transfer", key, "--from", "east", "--to", "west", "--amount", "2");
    expect(moved).toEqual({ code: 0, output: `moved 2 rights of ${key} from east (now holding 0) to west (received there now)\n` });
    await globalsEqual(mesh, key, 2n);
    const status = await run("--json", "escrow", "status", key);
    expect(status.code).toBe(0);
    const parsed = JSON.parse(status.output) as { global: string; floor: string; regions: Array<{ region: string; rights: string }> };
    expect([parsed.global, parsed.floor]).toEqual(["2", "0"]);
    expect(parsed.regions.map((row) => [row.region, row.rights])).toEqual([
      ["west", "2"],
      ["east", "0"],
      ["north", "0"],
    ]);
    expect((await run("escrow", "status", key)).output).toMatch(/^cli:stock = 2 \(global, as seen here\); floor 0; rights held 2/);
    // Bad input: a clear error, nothing changed.
    for (const args of [
      ["escrow", "transfer", key, "--from", "west", "--to", "east", "--amount", "0"],
      ["escrow", "transfer", key, "--from", "west", "--to", "mars", "--amount", "1"],
      ["escrow", "transfer", key, "--from", "west", "--to", "west", "--amount", "1"],
      ["escrow", "add", "a}b", "1"],
      ["escrow", "add", key, "0"],
    ]) {
      const result = await run(...args);
      expect(result.code, `${args.join(" ")}: ${result.output}`).not.toBe(0);
      expect(result.output.length).toBeGreaterThan(0);
    }
    expect((await escrowState(mesh.region("west").client, key, ["east"])).rights).toBe(2n);
  });
});
