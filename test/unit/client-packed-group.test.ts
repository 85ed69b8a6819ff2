/**
 * addBatch of plain adds without an object per op (src/client/packed-group.ts): the caller's ops go
 * straight into the packed form, byte for byte what the general path encodes, with the same errors;
 * split by shard, resolved from packed results into the caller's order; and through a client, the
 * exactly-once behaviours of the general path (a split under the unit, ambiguity per op, nothing
 * sent for a bad op).
 */
import { afterEach, describe, expect, it } from "vitest";
import { encodePackedResults } from "../../src/api/packed-batch.js";
import type { RoutesResponseMessage } from "../../src/api/proto.js";
import { AmbiguousOperationError, BatchError, TallyClient, type BatchOp, type MutationResult } from "../../src/client/index.js";
import { parseBatchOp } from "../../src/client/mutation-ops.js";
import { allPlainAdds, PackedAddGroup, PackedBatch } from "../../src/client/packed-group.js";
import { RouteTable } from "../../src/client/routing.js";
import { slotOf, slotOfRange } from "../../src/meta/slots.js";
import { InvalidArgumentError } from "../../src/util/errors.js";
import { decodePackedAdds, encodePackedAdds } from "../../src/util/packed-adds.js";
import { createPrng } from "../../src/util/prng.js";
import { FakeCluster, keyInShard } from "./client-fake-cluster.js";

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const limits = { maxOps: 10_000, maxKeyBytes: 256 };
const FENCE = { term: 3n, index: 77n };

/** The general path's encoding of the same ops: parseBatchOp, then encodePackedAdds. */
function generalBytes(ops: BatchOp[]): Uint8Array {
  return encodePackedAdds(ops.map((op, index) => parseBatchOp(op, index)));
}

function packedBytes(batch: PackedBatch): Uint8Array {
  return batch.bytes.subarray(0, batch.size);
}

/** The error parseBatchOp gives for ops[index], or undefined. */
function generalError(ops: BatchOp[]): string | undefined {
  try {
    ops.forEach((op, index) => parseBatchOp(op, index));
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return (error as Error).message;
  }
}

/** Result values over the int64 edges and around the shared small ones (-1024..1024). */
function valueFor(position: number): bigint {
  const edges = [INT64_MIN, INT64_MAX, -1025n, 1025n, -1024n, 1024n, 0n, -(2n ** 31n) - 1n, 2n ** 31n];
  return position < edges.length ? edges[position]! : BigInt(position) * (position % 2 === 0 ? 3n : -7n);
}

function routes(): RouteTable {
  const table = new RouteTable();
  const shards = [
    { id: 1, start: 0, end: 5000 },
    { id: 2, start: 5000, end: 12000 },
    { id: 3, start: 12000, end: 16384 },
  ];
  const response: RoutesResponseMessage = {
    slotCount: 16384,
    shards: shards.map((shard) => ({
      shardId: shard.id,
      slotStart: shard.start,
      slotEnd: shard.end,
      epoch: "1",
      replicas: [{ nodeId: "1", address: "127.0.0.1:7001", role: "" }],
      leaderId: "1",
      term: "1",
    })),
    hot: [],
    mapVersion: "0",
    eventualPrefixes: [],
  };
  table.update(response);
  return table;
}

describe("packed addBatch groups", () => {
  it("slotOfRange is slotOf over the range, hash tags included", () => {
    const prng = createPrng(17);
    const keys = ["{user1}:views", "{}x", "x{", "x}{", "a{b}c{d}", "{", "}", "{{}}", "é{ü}", "plain", "{a}"].map((k) => Buffer.from(k));
    for (let i = 0; i < 500; i++) {
      const key = Buffer.alloc(1 + prng.nextInt(40));
      for (let b = 0; b < key.length; b++) key[b] = prng.nextInt(4) === 0 ? [0x7b, 0x7d][prng.nextInt(2)]! : prng.nextInt(256);
      keys.push(key);
    }
    for (const key of keys) {
      // Inside a larger buffer, with braces around it that must not count.
      const framed = Buffer.concat([Buffer.from("{z}"), key, Buffer.from("{y}")]);
      expect(slotOfRange(framed, 3, 3 + key.length)).toBe(slotOf(key));
    }
  });

  it("encodes the general path's bytes exactly: string, unicode, byte keys, int64 edges, number deltas", () => {
    const prng = createPrng(5);
    const deltas = [
      0n,
      1n,
      -1n,
      1024n,
      -1024n,
      1025n,
      -1025n,
      2n ** 31n - 1n,
      -(2n ** 31n),
      2n ** 31n,
      -(2n ** 31n) - 1n,
      INT64_MAX,
      INT64_MIN,
    ];
    const ops: BatchOp[] = [
      { key: "k".repeat(256), delta: 7 },
      { key: "é".repeat(128) }, // 256 bytes, delta defaults to 1
      { op: "add", key: new Uint8Array([0, 1, 2, 0x7b, 9, 0x7d]), delta: -5 },
      { key: "emoji-😀", delta: Number.MIN_SAFE_INTEGER },
    ];
    for (let i = 0; i < 2000; i++) ops.push({ key: `m:${prng.nextInt(1_000_000)}`, delta: deltas[prng.nextInt(deltas.length)]! });
    expect(allPlainAdds(ops)).toBe(true);
    const batch = new PackedBatch(ops);
    expect(Buffer.from(packedBytes(batch))).toEqual(Buffer.from(generalBytes(ops)));
    ops.forEach((op, i) => expect(batch.slots[i]).toBe(parseBatchOp(op, i).slot));
    // The buffer grew from its first guess (256-byte keys) and kept every byte.
    expect(decodePackedAdds(packedBytes(batch), limits)).toHaveLength(ops.length);
  });

  it("only plain adds travel packed", () => {
    expect(allPlainAdds([{ key: "a" }, { op: "add", key: "b", delta: 1n }])).toBe(true);
    expect(allPlainAdds([{ key: "a" }, { key: "b", floor: 0n }])).toBe(false);
    expect(allPlainAdds([{ key: "a" }, { op: "set", key: "b", value: 1n }])).toBe(false);
    expect(allPlainAdds([{ key: "a" }, null as unknown as BatchOp])).toBe(false);
  });

  it("refuses each bad op with the general path's message, naming the op", () => {
    const bad: unknown[] = [
      { key: "" },
      { key: "x".repeat(257) },
      { key: "é".repeat(129) },
      { key: "\uD800" },
      { key: "a\uDC00b" },
      { key: 12 },
      { key: undefined },
      { key: "k", delta: 2n ** 63n },
      { key: "k", delta: INT64_MIN - 1n },
      { key: "k", delta: 2 ** 53 },
      { key: "k", delta: 1.5 },
      { key: "k", delta: "1" },
      { key: 5, delta: 2n ** 64n }, // the delta is checked first, as parseBatchOp does
    ];
    for (const op of bad) {
      const ops = [{ key: "fine", delta: 1n }, { key: "fine2" }, op] as BatchOp[];
      const expected = generalError(ops);
      expect(expected).toMatch(/^ops\[2\]: /);
      let caught: unknown;
      try {
        new PackedBatch(ops);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(InvalidArgumentError);
      expect((caught as Error).message).toBe(expected);
    }
  });

  it("groups by shard in the caller's order, splits, and resolves results into the caller's places", () => {
    const ops: BatchOp[] = Array.from({ length: 300 }, (_, i) => ({
      key: i % 7 === 0 ? new Uint8Array([i & 0xff, 1]) : `g:${i}`,
      delta: BigInt(i),
    }));
    const results: MutationResult[] = new Array(ops.length);
    const table = routes();
    const groups = new PackedBatch(ops).groupByShard(table, results);
    expect(groups.length).toBe(3);
    const seen: number[] = [];
    for (const group of groups) {
      const positions = [...group.positions];
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
      const decoded = decodePackedAdds(group.bytes, limits);
      positions.forEach((position, i) => {
        const op = parseBatchOp(ops[position]!, position);
        expect(table.lookup(group.slots[i]!)?.shardId).toBe(table.lookup(op.slot)?.shardId);
        expect(Buffer.from(decoded[i]!.key)).toEqual(op.key);
        expect(decoded[i]!.delta).toBe(op.delta);
        expect(group.opAt(i)).toMatchObject({ kind: "add", keyInput: ops[position]!.key, delta: op.delta });
      });
      seen.push(...positions);
      // A split: the odd ops of the group as a group of their own, positions carried over.
      const odd = positions.map((_, i) => i).filter((i) => i % 2 === 1);
      const part = group.subset(odd);
      expect([...part.positions]).toEqual(odd.map((i) => positions[i]));
      expect(decodePackedAdds(part.bytes, limits).map((op) => op.delta)).toEqual(odd.map((i) => decoded[i]!.delta));
    }
    expect(seen.sort((a, b) => a - b)).toEqual(ops.map((_, i) => i));
    for (const group of groups) {
      const packed = encodePackedResults([...group.positions].map((position) => ({ value: valueFor(position), version: 2 ** 40 + 1 })));
      group.resolve(packed, FENCE);
    }
    results.forEach((result, i) => expect(result).toEqual({ value: valueFor(i), version: 2n ** 40n + 1n, fence: FENCE }));
  });

  it("refuses malformed results and writes nothing", () => {
    const results: MutationResult[] = new Array(2);
    const [group] = new PackedBatch([{ key: "a" }, { key: "a" }]).groupByShard(routes(), results) as [PackedAddGroup];
    const good = encodePackedResults([
      { value: 1n, version: 9 },
      { value: 2n, version: 9 },
    ]);
    expect(() => group.resolve(good.subarray(0, 16), FENCE)).toThrow(/16 bytes for 2 ops/);
    const huge = Buffer.from(good);
    huge.writeUInt32LE(0x8000_0000, 16 + 12); // the second version's high word: far beyond 2^53
    expect(() => group.resolve(huge, FENCE)).toThrow(/results\[1\]\.version is 2\^53 or more/);
    expect(results.filter((result) => result !== undefined)).toEqual([]);
    group.resolve(good, FENCE);
    expect(results.map((result) => result.value)).toEqual([1n, 2n]);
  });
});

describe("packed addBatch through a client", () => {
  let cluster: FakeCluster | undefined;
  let client: TallyClient | undefined;
  afterEach(async () => {
    await client?.close();
    await cluster?.close();
    client = cluster = undefined;
  });

  async function setup(options: { attemptTimeoutMs?: number } = {}): Promise<{ cluster: FakeCluster; client: TallyClient }> {
    cluster = await FakeCluster.start();
    client = new TallyClient({ endpoints: cluster.addresses, retryBackoffMs: 5, retryBackoffMaxMs: 50, ...options });
    return { cluster, client };
  }

  it("a bad op anywhere sends nothing", async () => {
    const { cluster, client } = await setup();
    const ops: BatchOp[] = Array.from({ length: 5000 }, (_, i) => ({ key: `ok:${i}`, delta: 1n }));
    ops.push({ key: "", delta: 1n });
    await expect(client.addBatch(ops)).rejects.toThrow(/^ops\[5000\]: key must be 1\.\.256 bytes, got 0$/);
    expect(cluster.received).toEqual([]);
    expect(cluster.counters.size).toBe(0);
  });

  it("a unit whose keys split across shards under it: a group per shard, each op applied once", async () => {
    const { cluster, client } = await setup();
    await client.add(keyInShard({ slotStart: 0, slotEnd: 4096 }, "warm"), 1n); // routes and a session
    const staying = [0, 1, 2].map((i) => keyInShard({ slotStart: 0, slotEnd: 4096 }, "stay", i));
    const moving = [0, 1, 2].map((i) => keyInShard({ slotStart: 4096, slotEnd: 8192 }, "move", i));
    cluster.shard(1).slotEnd = 4096;
    cluster.shard(1).epoch = 2n;
    cluster.shard(2).slotStart = 4096;
    cluster.shard(2).epoch = 2n;
    const keys = [staying[0]!, moving[0]!, staying[1]!, moving[1]!, moving[2]!, staying[2]!];
    const results = await client.addBatch(keys.map((key, i) => ({ key, delta: BigInt(i + 1) })));
    expect(results.map((result) => result.value)).toEqual([1n, 2n, 3n, 4n, 5n, 6n]);
    for (const [i, key] of keys.entries()) expect(cluster.counter(key)?.value).toBe(BigInt(i + 1));
    const lastAttempts = keys.map((key) => cluster.mutationsFor(key).at(-1)?.header?.shardId);
    expect(lastAttempts).toEqual([1, 2, 1, 2, 2, 1]);
  });

  it("no answer before the deadline: every op ambiguous, naming its own key and delta", async () => {
    const { cluster, client } = await setup({ attemptTimeoutMs: 60 });
    const keys = [keyInShard(cluster.shard(1), "quiet", 0), keyInShard(cluster.shard(1), "quiet", 1)];
    const bytesKey = new Uint8Array(Buffer.from(keys[1]!));
    await client.add(keyInShard(cluster.shard(1), "warm"), 1n); // routes and a session: the batch goes out at once
    cluster.pipelineHook = (_node, request) => (request.op === "batch" ? { kind: "no-reply" } : undefined);
    const error = await client
      .addBatch(
        [
          { key: keys[0]!, delta: 4n },
          { key: bytesKey, delta: -2 },
        ],
        { deadlineMs: 1_500 },
      )
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BatchError);
    const batchError = error as BatchError<MutationResult>;
    expect(batchError.code).toBe("AMBIGUOUS");
    const errors = batchError.outcomes.map((outcome) => (outcome.ok ? undefined : outcome.error));
    expect(errors[0]).toBeInstanceOf(AmbiguousOperationError);
    expect((errors[0] as AmbiguousOperationError).operation).toMatchObject({ kind: "add", key: keys[0], delta: 4n, shardId: 1 });
    expect((errors[1] as AmbiguousOperationError).operation).toMatchObject({ kind: "add", key: bytesKey, delta: -2n, shardId: 1 });
    const attempts = cluster.mutationsFor(keys[0]!);
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(new Set(attempts.map((attempt) => `${attempt.header?.clientId}/${attempt.header?.seq}`)).size).toBe(1);
  });
});
