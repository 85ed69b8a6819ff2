/**
 * The counter API against 3 real tallyd processes: every call, exactly-once under retries and a
 * leader kill, reads that never go back in time, STALE min-index reads, NOT_LEADER redirects, and
 * bad input that changes nothing.
 */
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import { keyInShard } from "../support/keys.js";
import { AmbiguousError, FailedPreconditionError, OutOfRangeError, VersionMismatchError } from "../../src/util/errors.js";
import { TestCluster, eventually } from "../support/cluster.js";
import { RawCallError, RawNodeClient, leaderClient } from "../support/raw-client.js";
import { decodePackedResults, encodePackedAddsField } from "../../src/api/packed-batch.js";

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

let cluster: TestCluster;
let client: TallyClient;

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 3, shards: 4 });
  client = new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 15_000 });
});

afterAll(async () => {
  await client?.close();
  await cluster?.destroy();
});

/** The packed_adds form of plain adds (src/util/packed-adds.ts). */
function packed(adds: Array<[string, bigint]>): Buffer {
  return encodePackedAddsField(adds.map(([key, delta]) => ({ key: Buffer.from(key), delta })));
}

async function rawError(promise: Promise<unknown>): Promise<RawCallError> {
  let response: unknown;
  try {
    response = await promise;
  } catch (error) {
    if (error instanceof RawCallError) return error;
    throw error;
  }
  throw new Error(`expected the call to fail, got ${JSON.stringify(response)}`);
}

describe("counter API", () => {
  test("add, set, reset, compareAndSet, addBatch, get, getMany, routes, status", async () => {
    const a = await client.add("api:a", 5n);
    expect(a.value).toBe(5n);
    expect((await client.add("api:a", -7)).value).toBe(-2n);
    const read = await client.get("api:a");
    expect(read).toMatchObject({ value: -2n, exists: true });
    expect(read.version).toBeGreaterThan(0n);
    expect(read.fence.term).toBeGreaterThan(0n);

    const set = await client.set("api:b", 100n);
    expect(set.value).toBe(100n);
    const cas = await client.compareAndSet("api:b", set.version, 200n);
    expect(cas.value).toBe(200n);
    await expect(client.compareAndSet("api:b", set.version, 300n)).rejects.toBeInstanceOf(VersionMismatchError);
    expect((await client.get("api:b")).value).toBe(200n);
    await expect(client.compareAndSet("api:new", 0n, 1n)).resolves.toMatchObject({ value: 1n });

    await client.reset("api:b");
    expect(await client.get("api:b")).toMatchObject({ value: 0n, exists: false });

    const keys = Array.from({ length: 50 }, (_, i) => `api:batch-${i}`);
    const results = await client.addBatch(keys.map((key, i) => ({ key, delta: BigInt(i) })));
    expect(results.map((r) => r.value)).toEqual(keys.map((_, i) => BigInt(i)));
    const many = await client.getMany(keys);
    expect(many.map((r) => r.value)).toEqual(keys.map((_, i) => BigInt(i)));

    const routes = await client.routes();
    expect(routes.shards).toHaveLength(4);
    const status = await client.status();
    expect(status.nodes).toHaveLength(3);
    // Four shards and the metadata group (group 0) on each of the three nodes.
    for (const node of status.nodes) expect(node.groups.map((g) => g.groupId).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
  });

  test("exact int64 at the edges; overflow is OUT_OF_RANGE and changes nothing", async () => {
    await client.set("edge:max", INT64_MAX);
    expect((await client.get("edge:max")).value).toBe(INT64_MAX);
    await expect(client.add("edge:max", 1n)).rejects.toBeInstanceOf(OutOfRangeError);
    expect((await client.get("edge:max")).value).toBe(INT64_MAX);
    await client.set("edge:min", INT64_MIN);
    await expect(client.add("edge:min", -1n)).rejects.toBeInstanceOf(OutOfRangeError);
    expect((await client.get("edge:min")).value).toBe(INT64_MIN);
    expect((await client.add("edge:min", INT64_MAX)).value).toBe(-1n);
  });

  test("a floor refuses a decrement below it and changes nothing", async () => {
    await client.set("stock:sku", 2n);
    await client.add("stock:sku", -2n, { floor: 0n });
    await expect(client.add("stock:sku", -1n, { floor: 0n })).rejects.toBeInstanceOf(FailedPreconditionError);
    expect((await client.get("stock:sku")).value).toBe(0n);
  });

  test("a batch with one bad op applies nothing (atomic per shard)", async () => {
    const k1 = keyInShard("atomic-a", 2);
    const k2 = keyInShard("atomic-b", 2);
    await client.set(k2, INT64_MAX);
    const leader = await leaderClient(cluster.endpoints(), 2);
    const { clientId } = await leader.call("registerSession", { shardId: 2 });
    const error = await rawError(
      leader.call("addBatch", {
        header: { shardId: 2, clientId, seq: "1", firstUnackedSeq: "1" },
        ops: [{ add: { key: Buffer.from(k1), delta: "10" } }, { add: { key: Buffer.from(k2), delta: "1" } }],
      }),
    );
    expect(error.code).toBe("OUT_OF_RANGE");
    expect(error.info?.hasOpIndex).toBe(true);
    expect(error.info?.opIndex).toBe(1);
    expect((await client.get(k1)).exists).toBe(false);
    // The retried seq (the same request) returns the same error and still applies nothing.
    const again = await rawError(
      leader.call("addBatch", {
        header: { shardId: 2, clientId, seq: "1", firstUnackedSeq: "1" },
        ops: [{ add: { key: Buffer.from(k1), delta: "10" } }, { add: { key: Buffer.from(k2), delta: "1" } }],
      }),
    );
    expect(again.code).toBe("OUT_OF_RANGE");
    expect((await client.get(k1)).exists).toBe(false);
    // The same seq with other ops is another request: refused, never answered with seq 1's result.
    const other = await rawError(
      leader.call("addBatch", {
        header: { shardId: 2, clientId, seq: "1", firstUnackedSeq: "1" },
        ops: [{ add: { key: Buffer.from(k1), delta: "10" } }],
      }),
    );
    expect(other.code).toBe("INVALID_ARGUMENT");
    expect((await client.get(k1)).exists).toBe(false);
    leader.close();
  });

  test("a packed AddBatch (packed_adds) applies like ops, answers packed_results, and is all or nothing", async () => {
    const k1 = keyInShard("packed-a", 3);
    const k2 = keyInShard("packed-b", 3);
    const leader = await leaderClient(cluster.endpoints(), 3);
    const { clientId } = await leader.call("registerSession", { shardId: 3 });
    const reply = await leader.call("addBatch", {
      header: { shardId: 3, clientId, seq: "1", firstUnackedSeq: "1" },
      packedAdds: packed([
        [k1, 5n],
        [k2, -7n],
        [k1, INT64_MAX - 5n],
      ]),
    });
    expect(reply.results).toEqual([]);
    const results = decodePackedResults(reply.packedResults as Buffer, 3);
    expect(results.map((result) => result.value)).toEqual([5n, -7n, INT64_MAX]);
    expect(new Set(results.map((result) => result.version)).size).toBe(1);
    expect((await client.get(k1)).value).toBe(INT64_MAX);
    // One op overflows: nothing of the batch is applied, and the error names the op.
    const error = await rawError(
      leader.call("addBatch", {
        header: { shardId: 3, clientId, seq: "2", firstUnackedSeq: "2" },
        packedAdds: packed([
          [k2, 1n],
          [k1, 1n],
        ]),
      }),
    );
    expect(error.code).toBe("OUT_OF_RANGE");
    expect(error.info?.opIndex).toBe(1);
    expect((await client.get(k2)).value).toBe(-7n);
    // The client library sends plain adds packed; floors still go as ops; both read back the same.
    await client.addBatch([
      { key: k2, delta: 7n },
      { key: k2, delta: 1n },
    ]);
    await client.addBatch([
      { key: k2, delta: 1n, floor: 0n },
      { key: k2, delta: 1n },
    ]);
    expect((await client.get(k2)).value).toBe(3n);
    leader.close();
  });

  test("a retried mutation after a dropped reply counts once", async () => {
    const key = keyInShard("retry", 1);
    const leader = await leaderClient(cluster.endpoints(), 1);
    const { clientId } = await leader.call("registerSession", { shardId: 1 });
    const request = { header: { shardId: 1, clientId, seq: "1", firstUnackedSeq: "1" }, key: Buffer.from(key), delta: "3" };
    const first = await leader.call("add", request); // pretend this reply was lost...
    const retry = await leader.call("add", request); // ...so the client sends the same seq again
    // The saved result comes back; the fence is that of the entry that carried the retry, which is
    // at or after the original (a valid point at which the add has happened).
    expect({ value: retry.value, version: retry.version }).toEqual({ value: first.value, version: first.version });
    expect(BigInt(retry.fence.index)).toBeGreaterThanOrEqual(BigInt(first.fence.index));
    expect((await client.get(key)).value).toBe(3n);
    // A new seq counts again; acknowledging seq 1 lets the server forget it.
    await leader.call("add", { ...request, header: { ...request.header, seq: "2", firstUnackedSeq: "2" } });
    expect((await client.get(key)).value).toBe(6n);
    // A seq below the acknowledged watermark is refused with its own code, not re-applied.
    const stale = await rawError(leader.call("add", request));
    expect(stale.code).toBe("SEQ_ACKNOWLEDGED");
    expect(stale.grpcCode).toBe(9); // FAILED_PRECONDITION
    expect((await client.get(key)).value).toBe(6n);
    leader.close();
  });

  test("NOT_LEADER names the leader's address; a client given only a follower still gets through", async () => {
    const leader = await leaderClient(cluster.endpoints(), 3);
    const follower = cluster.endpoints().find((e) => e !== leader.address)!;
    const raw = new RawNodeClient(follower);
    const error = await rawError(raw.call("registerSession", { shardId: 3 }));
    expect(error.code).toBe("NOT_LEADER");
    expect(error.info?.leaderAddress).toBe(leader.address);
    raw.close();
    leader.close();
    const viaFollower = new TallyClient({ endpoints: [follower] });
    try {
      const key = keyInShard("redirect", 3);
      expect((await viaFollower.add(key, 9n)).value).toBe(9n);
      expect((await viaFollower.get(key)).value).toBe(9n);
    } finally {
      await viaFollower.close();
    }
  });

  test("STALE reads honour min index on every replica", async () => {
    const key = keyInShard("stale", 4);
    const written = await client.add(key, 11n);
    for (const endpoint of cluster.endpoints()) {
      const raw = new RawNodeClient(endpoint);
      const read = await raw.call("get", { key: Buffer.from(key), consistency: "STALE", minIndex: String(written.fence.index) });
      expect(BigInt(read.appliedIndex)).toBeGreaterThanOrEqual(written.fence.index);
      expect(read.value).toBe("11");
      raw.close();
    }
  });

  test("bad input gets INVALID_ARGUMENT or WRONG_SHARD naming the problem, and changes nothing", async () => {
    const key = keyInShard("bad", 1);
    await client.set(key, 1n);
    const { clientId } = await (await leaderClient(cluster.endpoints(), 1)).call("registerSession", { shardId: 1 });
    let seq = 0;
    const header = () => ({ shardId: 1, clientId, seq: String(++seq), firstUnackedSeq: String(seq) });
    const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
      ["add", { header: header(), key: Buffer.alloc(0), delta: "1" }, "INVALID_ARGUMENT", /empty key/],
      ["add", { header: header(), key: Buffer.alloc(300, 97), delta: "1" }, "INVALID_ARGUMENT", /256|300/],
      ["add", { key: Buffer.from(key), delta: "1" }, "INVALID_ARGUMENT", /header/],
      ["addBatch", { header: header(), ops: [] }, "INVALID_ARGUMENT", /at least one/],
      [
        "addBatch",
        { header: header(), ops: Array.from({ length: 10_001 }, () => ({ add: { key: Buffer.from(key), delta: "1" } })) },
        "INVALID_ARGUMENT",
        /10000|10,000/,
      ],
      ["addBatch", { header: header(), ops: [{ add: { key: Buffer.from(key), delta: "1" } }, {}] }, "INVALID_ARGUMENT", /ops\[1\]/],
      [
        "addBatch",
        { header: header(), ops: [{ add: { key: Buffer.from(key), delta: "1" } }], packedAdds: packed([[key, 1n]]) },
        "INVALID_ARGUMENT",
        /ops or packed_adds, not both/,
      ],
      [
        "addBatch",
        {
          header: header(),
          packedAdds: packed([
            [key, 1n],
            [key, 2n],
          ]).subarray(0, 20),
        },
        "INVALID_ARGUMENT",
        /ops\[1\] is truncated/,
      ],
      ["addBatch", { header: header(), packedAdds: Buffer.from([0, 0, 1, 0, 0, 0, 0, 0, 0, 0]) }, "INVALID_ARGUMENT", /empty key/],
      [
        "addBatch",
        {
          header: header(),
          packedAdds: packed([
            [key, 1n],
            ["x".repeat(300), 1n],
          ]),
        },
        "INVALID_ARGUMENT",
        /ops\[1\]\.key: keys must be 1 to 256 bytes, got 300/,
      ],
      [
        "addBatch",
        { header: header(), packedAdds: packed(Array.from({ length: 10_001 }, () => [key, 1n] as [string, bigint])) },
        "INVALID_ARGUMENT",
        /batch limit of 10000/,
      ],
      ["addBatch", { header: header(), packedAdds: packed([[key, INT64_MAX]]) }, "OUT_OF_RANGE", /outside int64/],
      ["add", { header: { ...header(), clientId: "999999" }, key: Buffer.from(key), delta: "1" }, "SESSION_EXPIRED", /session/i],
      ["add", { header: header(), key: Buffer.from(keyInShard("elsewhere", 2)), delta: "1" }, "WRONG_SHARD", /shard 1/],
      ["add", { header: { ...header(), epoch: "77" }, key: Buffer.from(key), delta: "1" }, "WRONG_SHARD", /epoch/],
      ["get", { key: Buffer.from(key), consistency: 7 }, "INVALID_ARGUMENT", /consistency/],
    ];
    for (const [method, request, code, message] of cases) {
      // Look the leader up per case: a leadership change mid-test must not mask what is tested.
      const leader = await leaderClient(cluster.endpoints(), 1);
      const error = await rawError(leader.call(method, request)).finally(() => leader.close());
      expect(error.code, `${method} ${JSON.stringify(request).slice(0, 80)}`).toBe(code);
      expect(error.info?.message ?? error.message).toMatch(message);
    }
    expect((await client.get(key)).value).toBe(1n);
  });

  test("a leader kill -9 during a stream of adds: no acknowledged add lost, none doubled; reads never go back", async () => {
    const keys = [1, 2, 3, 4].map((shard) => keyInShard("stream", shard));
    const acked = new Map<string, bigint>(keys.map((k) => [k, 0n]));
    const ambiguous = new Map<string, bigint>(keys.map((k) => [k, 0n]));
    let stop = false;
    let lastSeen = new Map<string, bigint>();
    const workers = keys.flatMap((key) =>
      [0, 1].map(async () => {
        while (!stop) {
          try {
            await client.add(key, 1n, { deadlineMs: 10_000 });
            acked.set(key, acked.get(key)! + 1n);
          } catch (error) {
            if (error instanceof AmbiguousError || (error as Error).name.includes("Ambiguous"))
              ambiguous.set(key, ambiguous.get(key)! + 1n);
            else throw error;
          }
        }
      }),
    );
    const reader = (async () => {
      while (!stop) {
        for (const key of keys) {
          const before = acked.get(key)!;
          try {
            const read = await client.get(key, { deadlineMs: 10_000 });
            // Linearizable: a read that starts after an add was acknowledged must see it, and
            // values never go back in time (every op here is +1).
            expect(read.value).toBeGreaterThanOrEqual(before);
            expect(read.value).toBeGreaterThanOrEqual(lastSeen.get(key) ?? 0n);
            lastSeen.set(key, read.value);
          } catch (error) {
            if (!(error instanceof Error) || !/Ambiguous|Unavailable|Timeout|Unreachable/i.test(error.name + error.message)) throw error;
          }
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 1500));
    const leader = await leaderClient(cluster.endpoints(), 1);
    const victim = cluster.config.nodes.find((n) => n.client === leader.address)!.id;
    leader.close();
    await cluster.kill(victim);
    await new Promise((r) => setTimeout(r, 4000));
    cluster.startNode(victim);
    await new Promise((r) => setTimeout(r, 2000));
    stop = true;
    await Promise.all([...workers, reader]);
    await cluster.waitReady(30_000);
    for (const key of keys) {
      const final = (await client.get(key)).value;
      expect(final).toBeGreaterThanOrEqual(acked.get(key)!);
      expect(final).toBeLessThanOrEqual(acked.get(key)! + ambiguous.get(key)!);
    }
    const total = [...acked.values()].reduce((a, b) => a + b, 0n);
    expect(total).toBeGreaterThan(50n);
  });

  test("the standard gRPC health service and server reflection answer (grpcurl-style tools work)", async () => {
    const require = createRequire(import.meta.url);
    const healthPackage = grpc.loadPackageDefinition(
      protoLoader.loadSync(require.resolve("grpc-health-check/proto/health/v1/health.proto")),
    ) as any;
    const reflectionPackage = grpc.loadPackageDefinition(
      protoLoader.loadSync(require.resolve("@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto")),
    ) as any;
    const endpoint = cluster.endpoints()[0]!;
    const health = new healthPackage.grpc.health.v1.Health(endpoint, grpc.credentials.createInsecure());
    const status = await new Promise<any>((resolve, reject) =>
      health.check({ service: "tally.v1.CounterService" }, { deadline: Date.now() + 5000 }, (error: Error | null, response: any) =>
        error ? reject(error) : resolve(response),
      ),
    );
    health.close();
    expect(status.status).toBe(1); // SERVING (loaded without enum names)
    const reflection = new reflectionPackage.grpc.reflection.v1alpha.ServerReflection(endpoint, grpc.credentials.createInsecure());
    const services = await new Promise<string[]>((resolve, reject) => {
      const call = reflection.ServerReflectionInfo({ deadline: Date.now() + 5000 });
      call.on("data", (response: any) => {
        resolve(response.listServicesResponse.service.map((s: any) => s.name));
        call.end();
      });
      call.on("error", reject);
      call.write({ listServices: "*" });
    });
    reflection.close();
    expect(services).toEqual(expect.arrayContaining(["tally.v1.CounterService", "tally.v1.AdminService"]));
  });

  test("STALE reads on a restarted follower catch up to min index", async () => {
    const key = keyInShard("catchup", 2);
    const written = await client.add(key, 5n);
    await eventually(
      async () => {
        for (const endpoint of cluster.endpoints()) {
          const raw = new RawNodeClient(endpoint);
          try {
            const read = await raw.call(
              "get",
              { key: Buffer.from(key), consistency: "STALE", minIndex: String(written.fence.index) },
              3000,
            );
            if (read.value !== "5") return false;
          } finally {
            raw.close();
          }
        }
        return true;
      },
      20_000,
      "every replica to reflect the write",
    );
  });
});
