import { describe, expect, it } from "vitest";
import {
  BatchError,
  ClusterUnreachableError,
  FailedPreconditionError,
  InvalidArgumentError,
  INT64_MAX,
  INT64_MIN,
  OutOfRangeError,
  TallyClient,
  VersionMismatchError,
} from "../../src/client/index.js";
import { fakeClusterPerTest, keyInShard } from "./client-fake-cluster.js";

// Only the third node is configured: the rest must come from Routes.
const setup = fakeClusterPerTest((cluster) => ({ endpoints: [cluster.addresses[2]!] }));

describe("TallyClient API against the fake cluster", () => {
  it("add, set, reset, compareAndSet and get round-trip with versions and fences", async () => {
    const { cluster, client } = await setup();
    const key = keyInShard(cluster.shard(1), "api");
    const added = await client.add(key, 5n);
    expect(added.value).toBe(5n);
    expect(added.version).toBeGreaterThan(0n);
    expect(added.fence.index).toBe(added.version);
    expect((await client.add(key)).value).toBe(6n);
    expect((await client.add(key, -2)).value).toBe(4n);

    const read = await client.get(key);
    expect(read).toMatchObject({ value: 4n, exists: true });
    expect(read.appliedIndex).toBeGreaterThanOrEqual(read.version);

    const set = await client.set(key, 100n);
    expect(set.value).toBe(100n);
    const swapped = await client.compareAndSet(key, set.version, 7n);
    expect(swapped.value).toBe(7n);
    await expect(client.compareAndSet(key, set.version, 8n)).rejects.toBeInstanceOf(VersionMismatchError);

    await client.reset(key);
    expect(await client.get(key)).toMatchObject({ value: 0n, version: 0n, exists: false });
    // compareAndSet with version 0 creates a counter that does not exist.
    expect((await client.compareAndSet(key, 0, 9)).value).toBe(9n);
  });

  it("keeps int64 values exact at both edges and reports overflow as OUT_OF_RANGE", async () => {
    const { cluster, client } = await setup();
    const high = keyInShard(cluster.shard(1), "edge-high");
    const low = keyInShard(cluster.shard(2), "edge-low");
    expect((await client.set(high, INT64_MAX)).value).toBe(9223372036854775807n);
    expect((await client.get(high)).value).toBe(INT64_MAX);
    expect(cluster.counter(high)?.value).toBe(INT64_MAX);
    await expect(client.add(high, 1n)).rejects.toBeInstanceOf(OutOfRangeError);
    expect((await client.get(high)).value).toBe(INT64_MAX);

    expect((await client.set(low, INT64_MIN)).value).toBe(-9223372036854775808n);
    expect((await client.add(low, 0n)).value).toBe(INT64_MIN);
    await expect(client.add(low, -1n)).rejects.toBeInstanceOf(OutOfRangeError);
    expect((await client.add(low, INT64_MAX)).value).toBe(-1n);
    // 2^53 + 1 is where a JS number would round.
    expect((await client.set(low, 9007199254740993n)).value).toBe(9007199254740993n);
    expect((await client.get(low)).value).toBe(9007199254740993n);
  });

  it("surfaces definite errors once, without retrying", async () => {
    const { cluster, client } = await setup();
    const key = keyInShard(cluster.shard(2), "floor");
    await client.set(key, 3n);
    await expect(client.add(key, -5n, { floor: 0n })).rejects.toBeInstanceOf(FailedPreconditionError);
    expect((await client.add(key, -3n, { floor: 0 })).value).toBe(0n);
    const attempts = cluster.mutationsFor(key);
    // set, failed add, successful add: one attempt each.
    expect(attempts.map((attempt) => attempt.op)).toEqual(["set", "add", "add"]);
    expect(cluster.counter(key)?.value).toBe(0n);
  });

  it("rejects bad input before sending anything", async () => {
    const { cluster, client } = await setup();
    await expect(client.add("", 1n)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.add("x".repeat(257), 1n)).rejects.toThrow(/1\.\.256 bytes/);
    await expect(client.add("é".repeat(129), 1n)).rejects.toBeInstanceOf(InvalidArgumentError); // 258 bytes
    await expect(client.add("\uD800", 1n)).rejects.toThrow(/surrogate/);
    await expect(client.add("k", 2n ** 63n)).rejects.toThrow(/outside int64/);
    await expect(client.add("k", 2 ** 53)).rejects.toThrow(/safe integer/);
    await expect(client.add("k", 1.5)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.set("k", INT64_MIN - 1n)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.compareAndSet("k", -1n, 1n)).rejects.toThrow(/outside uint64/);
    await expect(client.get("k", { minIndex: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    const tooMany = Array.from({ length: 10_001 }, (_, i) => ({ key: `k${i}`, delta: 1n }));
    await expect(client.addBatch(tooMany)).rejects.toThrow(/at most 10000/);
    await expect(
      client.addBatch([
        { key: "ok", delta: 1n },
        { key: "", delta: 1n },
      ]),
    ).rejects.toThrow(/ops\[1\]/);
    await expect(client.getMany(Array.from({ length: 10_001 }, (_, i) => `k${i}`))).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(cluster.received).toEqual([]);
    expect(() => new TallyClient({ endpoints: [] })).toThrow(InvalidArgumentError);
    expect(() => new TallyClient({ endpoints: ["nohost"] })).toThrow(/host:port/);
    expect(() => new TallyClient({ endpoints: ["a:1"], maxBatchOps: 10_001 })).toThrow(/maxBatchOps/);
    expect(() => new TallyClient({ endpoints: ["a:1"], retryBackoffMs: 100, retryBackoffMaxMs: 10 })).toThrow(/retryBackoffMaxMs/);
  });

  it("accepts byte keys and keeps a copy of them", async () => {
    const { cluster, client } = await setup();
    const key = keyInShard(cluster.shard(1), "bytes");
    const bytes = new Uint8Array(Buffer.from(key));
    const pending = client.add(bytes, 2n);
    bytes.fill(0x7a); // the caller reuses its buffer while the add is in flight
    expect((await pending).value).toBe(2n);
    expect(cluster.counter(key)?.value).toBe(2n);
    expect(cluster.counters.size).toBe(1);
  });

  it("getMany and addBatch keep the caller's order across shards", async () => {
    const { cluster, client } = await setup();
    const keys = [
      keyInShard(cluster.shard(1), "m", 0),
      keyInShard(cluster.shard(2), "m", 0),
      keyInShard(cluster.shard(1), "m", 1),
      keyInShard(cluster.shard(2), "m", 1),
    ];
    const results = await client.addBatch([
      { key: keys[0]!, delta: 1n },
      { key: keys[1]!, delta: 2n },
      { op: "set", key: keys[2]!, value: 30n },
      { key: keys[3]!, delta: 4n },
      { key: keys[0]!, delta: 10n },
    ]);
    expect(results.map((result) => result.value)).toEqual([1n, 2n, 30n, 4n, 11n]);
    // One request per shard.
    const batches = cluster.received.filter((received) => received.op === "batch");
    expect(batches.map((batch) => batch.header?.shardId).sort()).toEqual([1, 2]);

    const reads = await client.getMany([...keys, "missing-key"]);
    expect(reads.map((read) => read.value)).toEqual([11n, 2n, 30n, 4n, 0n]);
    expect(reads[4]!.exists).toBe(false);
    expect(cluster.received.filter((received) => received.op === "getMany")).toHaveLength(2);
    expect(await client.getMany([])).toEqual([]);
    expect(await client.addBatch([])).toEqual([]);
  });

  it("a failing shard group fails alone and BatchError says op by op", async () => {
    const { cluster, client } = await setup();
    const ok = keyInShard(cluster.shard(1), "bok");
    const full = keyInShard(cluster.shard(2), "bfull");
    const sibling = keyInShard(cluster.shard(2), "bsib");
    await client.set(full, INT64_MAX);
    const error = await client
      .addBatch([
        { key: ok, delta: 1n },
        { key: sibling, delta: 1n },
        { key: full, delta: 1n },
      ])
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BatchError);
    const batchError = error as BatchError<unknown>;
    expect(batchError.code).toBe("OUT_OF_RANGE");
    expect(batchError.opIndex).toBe(2);
    expect(batchError.outcomes.map((outcome) => outcome.ok)).toEqual([true, false, false]);
    // Atomic per shard: the sibling in the failing shard was not applied; the other shard was.
    expect(cluster.counter(sibling)).toBeUndefined();
    expect(cluster.counter(ok)?.value).toBe(1n);
  });

  it("reads stale from any replica and passes minIndex", async () => {
    const { cluster, client } = await setup();
    const key = keyInShard(cluster.shard(2), "stale");
    const added = await client.add(key, 3n);
    const nodesUsed = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const read = await client.get(key, { consistency: "stale", minIndex: added.fence.index });
      expect(read.value).toBe(3n);
    }
    for (const received of cluster.received.filter((r) => r.op === "get")) {
      nodesUsed.add(received.nodeId);
      expect(received.request.get?.consistency).toBe("STALE");
      expect(received.request.get?.minIndex).toBe(String(added.fence.index));
    }
    expect(nodesUsed.size).toBeGreaterThan(1);
  });

  it("status and routes come back typed", async () => {
    const { cluster, client } = await setup();
    const routes = await client.routes();
    expect(routes.slotCount).toBe(16384);
    expect(routes.shards.map((shard) => [shard.shardId, shard.slotStart, shard.slotEnd, shard.epoch])).toEqual([
      [1, 0, 8192, 1n],
      [2, 8192, 16384, 1n],
    ]);
    expect(routes.shards[0]!.leaderAddress).toBe(cluster.node("1").address);
    const status = await client.status();
    expect(status.nodes).toHaveLength(3);
    expect(status.nodes[0]!.groups[0]!.term).toBe(1n);
  });

  it("fails fast with ClusterUnreachableError when no endpoint answers", async () => {
    const client = new TallyClient({ endpoints: ["127.0.0.1:1", "127.0.0.1:2"], deadlineMs: 3_000 });
    try {
      const started = Date.now();
      const error = await client.connect().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ClusterUnreachableError);
      expect((error as ClusterUnreachableError).endpoints).toEqual(expect.arrayContaining(["127.0.0.1:1", "127.0.0.1:2"]));
      expect(Date.now() - started).toBeLessThan(2_500);
      // An operation retries until its deadline, then says it never reached the cluster.
      await expect(client.add("k", 1n, { deadlineMs: 300 })).rejects.toBeInstanceOf(ClusterUnreachableError);
    } finally {
      await client.close();
    }
  });
});
