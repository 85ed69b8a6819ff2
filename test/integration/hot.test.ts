/**
 * Hot counters (issue 8) against 3 real tallyd processes: a key declared hot spreads its adds over
 * sub-counters on different shards and reads sum them; exact under concurrent adds from several
 * clients while the sub-counter count is raised, and across a kill -9 of a sub-counter's shard
 * leader. Also: a plain get of a kinded key names the kind.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import { hotSubKey } from "../../src/meta/hot.js";
import { slotOf } from "../../src/meta/slots.js";
import { AmbiguousError, FailedPreconditionError, InvalidArgumentError } from "../../src/util/errors.js";
import { TestCluster, eventually } from "../support/cluster.js";
import { RawCallError, RawNodeClient, leaderClient } from "../support/raw-client.js";
import { tallyctl } from "../support/tallyctl.js";

const SHARDS = 4;
let cluster: TestCluster;
let clients: TallyClient[] = [];
/** Connected before any declaration: its routes know no hot key. */
let early: TallyClient;

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 3, shards: SHARDS });
  clients = [0, 1, 2].map(() => new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 15_000 }));
  early = new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 15_000 });
  await early.connect();
}, 60_000);

afterAll(async () => {
  await Promise.all([...clients, early].map((client) => client?.close()));
  await cluster?.destroy();
});

const isAmbiguous = (error: unknown): boolean =>
  error instanceof AmbiguousError || (error instanceof Error && error.name.includes("Ambiguous"));
const shardOfKey = (key: Uint8Array): number => Math.floor(slotOf(key) / (16384 / SHARDS)) + 1;

/** Adds from every client (two loops each) until stopped; counts acknowledged and ambiguous deltas. */
function startAdders(key: string) {
  let stop = false;
  const tally = { acked: 0n, ambiguous: 0n, adds: 0 };
  const loop = async (client: TallyClient, delta: bigint): Promise<void> => {
    while (!stop) {
      try {
        await client.add(key, delta, { deadlineMs: 10_000 });
        tally.acked += delta;
        tally.adds++;
      } catch (error) {
        if (!isAmbiguous(error)) throw error;
        tally.ambiguous += delta;
      }
    }
  };
  const loops = clients.flatMap((client, i) => [loop(client, BigInt(i + 1)), loop(client, 1n)]);
  return {
    tally,
    async stop() {
      stop = true;
      await Promise.all(loops);
    },
  };
}

describe("hot counters end to end", () => {
  test("declare, adds from several clients while S is raised: the sum stays exact; reads by another client and tallyctl sum", async () => {
    const key = "hot:likes";
    await clients[0]!.add(key, 5n);
    const declared = await tallyctl(cluster.endpoints(), "hot", "declare", key, "--shards", "2");
    expect(declared.code, declared.output).toBe(0);
    expect(declared.output).toMatch(/2 sub-counters/);

    const adders = startAdders(key);
    await new Promise((resolve) => setTimeout(resolve, 700));
    const raised = await clients[1]!.declareHot(key, 4);
    expect(raised.tags).toHaveLength(4);
    expect(raised.writable).toBe(4);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await adders.stop();
    expect(adders.tally.ambiguous).toBe(0n);
    expect(adders.tally.adds).toBeGreaterThan(50);
    let expected = 5n + adders.tally.acked;

    // Every client, whatever routes it had, reads the sum.
    for (const client of [...clients, early]) {
      const read = await client.get(key);
      expect(read.value).toBe(expected);
      expect(read.subCounters).toBe(4);
    }
    expect((await clients[2]!.getMany(["hot:absent", key]))[1]!.value).toBe(expected);
    expect((await clients[2]!.get(key, { consistency: "stale" })).value).toBeLessThanOrEqual(expected);

    // The adds really spread: the sub-counters sit on 4 shards, and the ones added after the raise took adds.
    const subKeys = raised.tags.map((tag) => hotSubKey(raised.key, tag));
    expect(new Set(subKeys.map(shardOfKey)).size).toBe(4);
    const parts = await clients[0]!.getMany(subKeys.slice(1));
    for (const part of parts) expect(part.value).toBeGreaterThan(0n);

    const viaCli = await tallyctl(cluster.endpoints(), "get", key);
    expect(viaCli.code, viaCli.output).toBe(0);
    expect(viaCli.output).toContain(`${key} = ${expected}`);
    const listed = await tallyctl(cluster.endpoints(), "--json", "hot", "list");
    expect(JSON.parse(listed.output).hot).toEqual([expect.objectContaining({ key, subCounters: 4, writable: 4 })]);

    // A plain read on the wire does not pass one sub-counter off as the counter.
    const raw = new RawNodeClient(cluster.endpoints()[0]!);
    try {
      const error = await raw.call("get", { key: Buffer.from(key) }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RawCallError);
      expect((error as RawCallError).code).toBe("FAILED_PRECONDITION");
      expect((error as RawCallError).message).toMatch(/hot counter summed over 4 sub-counters/);
    } finally {
      raw.close();
    }

    // S only grows; bad input is refused and changes nothing.
    const lower = await tallyctl(cluster.endpoints(), "hot", "declare", key, "--shards", "3");
    expect(lower.code).toBe(1);
    expect(lower.output).toMatch(/FAILED_PRECONDITION: .*only grows/);
    expect((await tallyctl(cluster.endpoints(), "hot", "declare", key, "--shards", "1")).code).toBe(2);
    await expect(clients[0]!.declareHot(hotSubKey(Buffer.from(key), 1), 2)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(clients[0]!.set(key, 1n)).rejects.toBeInstanceOf(FailedPreconditionError);
    await expect(clients[0]!.add(key, -1n, { floor: 0n })).rejects.toBeInstanceOf(FailedPreconditionError);
    await expect(
      clients[0]!.addBatch([
        { key: "hot:other", delta: 1n },
        { op: "compareAndSet", key, expectedVersion: 0, value: 1n },
      ]),
    ).rejects.toBeInstanceOf(FailedPreconditionError);
    expect((await clients[0]!.hotKeys()).map((route) => route.tags.length)).toEqual([4]);
    expect((await clients[2]!.get(key)).value).toBe(expected);

    const added = await tallyctl(cluster.endpoints(), "add", key, "7");
    expect(added.output).toMatch(/added to one of its 4 sub-counters/);
    expected += 7n;
    expect((await clients[1]!.add(key, 1n)).subCounters).toBe(4);
    expected += 1n;

    // Batches spread too; reset clears every sub-counter.
    await clients[0]!.addBatch(Array.from({ length: 8 }, () => ({ key, delta: 10n })));
    expect((await clients[1]!.get(key)).value).toBe(expected + 80n);
    await clients[0]!.reset(key);
    const cleared = await clients[1]!.get(key);
    expect(cleared).toMatchObject({ value: 0n, exists: false });
  }, 90_000);

  test("a kill -9 of a sub-counter's shard leader during adds: the sum stays exact (retries keep their seq)", async () => {
    const key = "hot:kill";
    const route = await clients[0]!.declareHot(key, 4);
    expect(route.writable).toBe(4);
    const victimShard = shardOfKey(hotSubKey(route.key, route.tags[1]!));
    const adders = startAdders(key);
    await new Promise((resolve) => setTimeout(resolve, 800));
    const leader = await leaderClient(cluster.endpoints(), victimShard);
    const victim = cluster.config.nodes.find((node) => node.client === leader.address)!.id;
    leader.close();
    await cluster.kill(victim);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    cluster.startNode(victim);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await adders.stop();
    await cluster.waitReady(30_000);
    const { acked, ambiguous } = adders.tally;
    expect(acked).toBeGreaterThan(50n);
    const sum = (await clients[1]!.get(key)).value;
    expect(sum).toBeGreaterThanOrEqual(acked);
    expect(sum).toBeLessThanOrEqual(acked + ambiguous);
    // Settled: every client and tallyctl agree.
    let lastRead: bigint | undefined;
    await eventually(
      async () => ((lastRead = (await early.get(key)).value) === sum ? true : undefined),
      10_000,
      "the early client to read the same sum",
      () => `the early client read ${lastRead}, the sum is ${sum}`,
    );
    expect((await tallyctl(cluster.endpoints(), "--json", "get", key)).output).toContain(`"value": "${sum}"`);
  }, 90_000);
});

describe("a plain get of a kinded key", () => {
  test("names the kind and the call that reads it (FAILED_PRECONDITION), changes nothing", async () => {
    const client = clients[0]!;
    await client.addWindowed("kind:window", 3n);
    await client.tryAcquire("kind:limit", 1, 5, 60_000);
    await client.uniqueAdd("kind:unique", ["a", "b"]);
    await expect(client.get("kind:window")).rejects.toThrow(/holds a windowed counter, not a counter: read it with windowRange/);
    await expect(client.get("kind:limit")).rejects.toThrow(/holds a rate limit.*tryAcquire with n = 0/);
    await expect(client.getMany(["kind:absent", "kind:unique"])).rejects.toThrow(/holds a unique count.*uniqueCount/);
    await expect(client.get("kind:window")).rejects.toBeInstanceOf(FailedPreconditionError);
    await expect(client.declareHot("kind:window", 2)).rejects.toThrow(/cannot declare it hot: key "kind:window" holds a windowed counter/);
    expect(await client.hotKeys()).not.toContainEqual(expect.objectContaining({ key: Buffer.from("kind:window") }));
    const cli = await tallyctl(cluster.endpoints(), "get", "kind:window");
    expect(cli.code).toBe(1);
    expect(cli.output).toMatch(/FAILED_PRECONDITION: key "kind:window" holds a windowed counter/);
    expect((await client.get("kind:absent")).exists).toBe(false);
    const t = Math.floor(Date.now() / 60_000) * 60_000;
    expect((await client.windowRange("kind:window", t - 60_000, t + 120_000, 180_000)).points[0]!.value).toBe(3n);
  }, 30_000);

  test("top-K and aggregates over windowed counters: their sums over a range, merged over every shard", async () => {
    const client = clients[1]!;
    const keys = [1, 2, 3, 4].map((shard) => {
      for (let i = 0; ; i++) if (shardOfKey(Buffer.from(`trend:${i}`)) === shard) return `trend:${i}`;
    });
    for (const [i, key] of keys.entries()) await client.addWindowed(key, BigInt(10 * (i + 1)));
    await client.add("trend:plain", 1_000n);
    const toMs = Math.floor(Date.now() / 1000) * 1000 + 1000;
    const window = { fromMs: toMs - 60_000, toMs };
    const top = await client.topK("trend:", 2, { window });
    expect(top.entries.map((entry) => [entry.key.toString(), entry.value])).toEqual([
      [keys[3], 40n],
      [keys[2], 30n],
    ]);
    expect(top.shards).toHaveLength(SHARDS);
    expect(await client.aggregate("trend:", { window })).toMatchObject({ count: 4, sum: 100n, min: 10n, max: 40n });
    expect(await client.aggregate("trend:")).toMatchObject({ count: 1, sum: 1_000n });
    const cli = await tallyctl(cluster.endpoints(), "--json", "top", "trend:", "-k", "1", "--last", "60000");
    expect(cli.code, cli.output).toBe(0);
    expect(JSON.parse(cli.output).entries).toEqual([{ key: keys[3], value: "40" }]);
    await expect(client.topK("trend:", 2, { window: { fromMs: toMs - 500, toMs } })).rejects.toThrow(/no tier holds/);
  }, 30_000);
});
