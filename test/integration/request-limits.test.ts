/**
 * Request limits against 3 real tallyd processes (docs/limits.md). With access control on: a flood
 * of ~63 MiB requests without a token is refused before anything is read or decoded and no group
 * anywhere changes leader; an authorized request over the default maxRequestBytes is refused on its
 * length prefix and changes nothing; request shapes (field occurrences, repeated fields, unique-add
 * item bytes) are bounded before decoding; malformed bytes are INVALID_ARGUMENT; the node-wide
 * in-flight bound answers OVERLOADED with a retry hint. With the default limits: 24,000
 * linearizable gets at once on one connection cost no group its leader.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { decodeServiceError, decodeErrorInfo, ERROR_DETAILS_METADATA_KEY } from "../../src/api/error-details.js";
import { tallyProto } from "../../src/api/proto.js";
import { generateToken } from "../../src/util/auth-token.js";
import { InvalidArgumentError } from "../../src/util/errors.js";
import { TestCluster, eventually, withDeadline, type TestToken } from "../support/cluster.js";
import { keyInShard } from "../support/keys.js";
import { slotOf } from "../../src/meta/slots.js";
import { leaderClient, rawBytesCall, type RawBytesOutcome } from "../support/raw-client.js";

type Json = Record<string, any>;
type Codec = { path: string; requestSerialize: (value: object) => Buffer; responseDeserialize: (bytes: Buffer) => Json };

const SHARDS = 2;
const admin = { name: "ops", token: generateToken(), grants: [{ prefix: "", roles: ["read", "write", "admin"] }] } satisfies TestToken;
const counter = (method: string): Codec =>
  (tallyProto().packageDefinition["tally.v1.CounterService"] as unknown as Record<string, Codec>)[method]!;

/** Leader changes seen by every node's replicas (tally_raft_leader_changes_total), summed; waits while a node does not answer. */
async function leaderChangesEverywhere(cluster: TestCluster): Promise<number> {
  let total = 0;
  for (const node of cluster.config.nodes) {
    total += await eventually(async () => cluster.metric(node.id, "tally_raft_leader_changes_total"), 60_000, `node ${node.id}'s /metrics`);
  }
  return total;
}

/** The count once it has held still for a second: elections after start-up are over. */
async function settledLeaderChanges(cluster: TestCluster): Promise<number> {
  let previous = await leaderChangesEverywhere(cluster);
  for (let attempt = 0; attempt < 30; attempt++) {
    await new Promise((r) => setTimeout(r, 1_000));
    const current = await leaderChangesEverywhere(cluster);
    if (current === previous) return current;
    previous = current;
  }
  throw new Error("leader changes did not settle within 30 s");
}

/** Time for an election that a stalled node would have caused (electionTicks x tickMs = 500 ms), then the count. */
async function leaderChangesAfterQuiet(cluster: TestCluster): Promise<number> {
  await new Promise((r) => setTimeout(r, 2_000));
  return leaderChangesEverywhere(cluster);
}

/**
 * A GetManyRequest of `bytes` bytes made of 1-byte keys (field 1: tag 0x0a, length 1, the key): the
 * shape that costs the most objects per byte to decode.
 */
function getManyOfOneByteKeys(bytes: number): Buffer {
  const request = Buffer.alloc(bytes - (bytes % 3));
  request.fill(Buffer.from([0x0a, 0x01, 0x61]));
  return request;
}

describe("request limits with access control on", () => {
  let cluster: TestCluster;
  let leader1: string;

  beforeAll(async () => {
    cluster = await TestCluster.start({
      nodes: 3,
      shards: SHARDS,
      metrics: true,
      auth: { tokens: [admin], readyToken: admin.token },
      // Small in-flight bounds to reach them with a few requests; an entry bound below the default
      // maxRequestBytes (4 MiB) so a request can be under the one and over the other.
      limits: { maxInflightPerClient: 10, maxInflightPerNode: 20, maxEntryBytes: 1024 * 1024 },
    });
    const leader = await eventually(
      async () => {
        const routes = counter("Routes").responseDeserialize(
          (await rawBytesCall(cluster.endpoints()[0]!, counter("Routes").path, Buffer.alloc(0), { token: admin.token })).response!,
        );
        const shard = routes.shards.find((s: Json) => s.shardId === 1);
        return shard?.replicas.find((r: Json) => r.nodeId === shard.leaderId)?.address as string | undefined;
      },
      10_000,
      "shard 1's leader",
    );
    leader1 = leader;
  }, 90_000);

  afterAll(async () => {
    await cluster?.destroy();
  });

  /** One unary call to `address` with the admin token, the request encoded by tally.proto. */
  async function call(address: string, method: string, request: Json, timeoutMs = 10_000): Promise<RawBytesOutcome & { decoded?: Json }> {
    const codec = counter(method);
    const outcome = await rawBytesCall(address, codec.path, codec.requestSerialize(request), { token: admin.token, timeoutMs });
    return outcome.response === undefined ? outcome : { ...outcome, decoded: codec.responseDeserialize(outcome.response) };
  }

  /** A key of shard 1 holds nothing (exists false), and is no counter kind (a Get would be FAILED_PRECONDITION). */
  async function expectAbsent(key: string): Promise<void> {
    const read = await call(leader1, "Get", { key: Buffer.from(key), shardId: 1 });
    expect(read.code, read.details).toBe(grpc.status.OK);
    expect(read.decoded!.exists).toBe(false);
  }

  async function session(): Promise<string> {
    const registered = await call(leader1, "RegisterSession", { shardId: 1 });
    expect(registered.code, registered.details).toBe(grpc.status.OK);
    return registered.decoded!.clientId as string;
  }

  test("a flood of ~63 MiB requests without a token is refused before decoding; no group changes leader", async () => {
    const before = await settledLeaderChanges(cluster);
    const request = getManyOfOneByteKeys(63 * 1024 * 1024);
    const target = cluster.config.nodes[0]!.client;
    const flood = await Promise.all(
      Array.from({ length: 3 }, () => rawBytesCall(target, counter("GetMany").path, request, { timeoutMs: 30_000 })),
    );
    expect(await leaderChangesAfterQuiet(cluster), "leader changes during the flood").toBe(before);
    for (const outcome of flood) {
      expect(outcome.code, outcome.details).toBe(grpc.status.UNAUTHENTICATED);
      expect(outcome.info?.code).toBe("UNAUTHENTICATED");
    }
    cluster.assertNoUnexpectedExit();
  }, 180_000);

  test("an authorized 48 MiB unique add is refused on its length prefix (default maxRequestBytes): RESOURCE_EXHAUSTED, nothing applied, no leader change", async () => {
    const before = await settledLeaderChanges(cluster);
    const clientId = await session();
    const key = keyInShard("limits:big-unique", 1, SHARDS);
    const items = Array.from({ length: 768 }, (_, i) => Buffer.alloc(64 * 1024, i % 251));
    const request = counter("AddBatch").requestSerialize({
      header: { shardId: 1, clientId, seq: "1", firstUnackedSeq: "1" },
      ops: [{ uniqueAdd: { key: Buffer.from(key), items } }],
    });
    expect(request.length).toBeGreaterThan(48 * 1024 * 1024);
    const outcome = await rawBytesCall(leader1, counter("AddBatch").path, request, { token: admin.token, timeoutMs: 30_000 });
    expect(outcome.code, outcome.details).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(outcome.details).toMatch(new RegExp(`larger than max \\(${request.length} vs ${4 * 1024 * 1024}\\)`));
    // The client library reads it as a request to split, never as overload to retry.
    const { error } = decodeServiceError(
      Object.assign(new Error(outcome.details), { code: outcome.code, details: outcome.details, metadata: new grpc.Metadata() }),
    );
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(await leaderChangesAfterQuiet(cluster), "leader changes").toBe(before);
    await expectAbsent(key);
  }, 120_000);

  test("request shapes are bounded before decoding: field occurrences and unique-add item bytes; nothing applied", async () => {
    // GetRequest.key sent 150,000 times (~600 KiB): decoded, every copy would be an object.
    const occurrence = Buffer.from([0x0a, 0x01, 0x6b]);
    const manyKeys = Buffer.concat([Buffer.concat(new Array(150_000).fill(occurrence)), Buffer.from([0x20, 0x01])]);
    const fields = await rawBytesCall(leader1, counter("Get").path, manyKeys, { token: admin.token });
    expect(fields.code, fields.details).toBe(grpc.status.INVALID_ARGUMENT);
    expect(fields.info?.code).toBe("INVALID_ARGUMENT");
    expect(fields.details).toMatch(/more than 100000 fields/);

    // Two unique adds of 600 KiB of items each: 1.2 MiB, under maxRequestBytes, over maxEntryBytes (1 MiB).
    const clientId = await session();
    const keys = [keyInShard("limits:items-a", 1, SHARDS), keyInShard("limits:items-b", 1, SHARDS)];
    const items = Array.from({ length: 10 }, (_, i) => Buffer.alloc(60 * 1024, i));
    const ops = keys.map((key) => ({ uniqueAdd: { key: Buffer.from(key), items } }));
    const tooMuch = await call(leader1, "AddBatch", { header: { shardId: 1, clientId, seq: "1", firstUnackedSeq: "1" }, ops });
    expect(tooMuch.code, tooMuch.details).toBe(grpc.status.INVALID_ARGUMENT);
    expect(tooMuch.details).toMatch(/more than 1048576 bytes of items in one request \(limits\.maxEntryBytes\)/);
    for (const key of keys) await expectAbsent(key);
    // One of them fits, and is applied.
    const fits = await call(leader1, "AddBatch", {
      header: { shardId: 1, clientId, seq: "2", firstUnackedSeq: "1" },
      ops: ops.slice(0, 1),
    });
    expect(fits.code, fits.details).toBe(grpc.status.OK);
    expect(fits.decoded!.results).toHaveLength(1);
  });

  test("malformed request bytes are INVALID_ARGUMENT, on unary calls and Pipeline streams; a Pipeline op over a bound is answered alone", async () => {
    const unary = await rawBytesCall(leader1, counter("Get").path, Buffer.from([0x0a, 0x05, 0x61]), { token: admin.token });
    expect(unary.code, unary.details).toBe(grpc.status.INVALID_ARGUMENT);
    expect(unary.info?.code).toBe("INVALID_ARGUMENT");
    expect(unary.details).toMatch(/malformed request: length 5 runs past the end/);

    const pipeline = counter("Pipeline");
    const malformed = await bidi(leader1, pipeline.path, [Buffer.from([0x08, 0x07, 0x3a, 0x09, 0x0a])]);
    expect(malformed.status.code, malformed.status.details).toBe(grpc.status.INVALID_ARGUMENT);
    expect(malformed.info?.code).toBe("INVALID_ARGUMENT");

    const overBound = pipeline.requestSerialize({ id: "41", getMany: { keys: new Array(10_001).fill(Buffer.from("k")), shardId: 1 } });
    const fine = pipeline.requestSerialize({ id: "42", get: { key: Buffer.from(keyInShard("limits:fine", 1, SHARDS)), shardId: 1 } });
    const stream = await bidi(leader1, pipeline.path, [overBound, fine]);
    expect(stream.status.code, stream.status.details).toBe(grpc.status.OK);
    const answers = stream.responses.map((bytes) => pipeline.responseDeserialize(bytes)).sort((a, b) => Number(a.id) - Number(b.id));
    expect(answers.map((answer) => [answer.id, answer.result])).toEqual([
      ["41", "error"],
      ["42", "get"],
    ]);
    expect(answers[0]!.error.code).toBe("INVALID_ARGUMENT");
    expect(answers[0]!.error.message).toMatch(/keys: more than 10000 elements/);
  });

  test("PipelineBatch: each request of a message answered alone, bad ones included; a message over a bound ends the stream and runs none of it", async () => {
    const batch = counter("PipelineBatch");
    const reply = (bytes: Buffer): Json[] => (batch.responseDeserialize(bytes) as Json).responses as Json[];
    const clientId = await session();
    const added = keyInShard("limits:batch-added", 1, SHARDS);
    const fine = { id: "2", get: { key: Buffer.from(keyInShard("limits:batch-fine", 1, SHARDS)), shardId: 1 } };
    const message = batch.requestSerialize({
      requests: [
        { id: "1", add: { key: Buffer.from(added), delta: "5", header: { shardId: 1, clientId, seq: "1", firstUnackedSeq: "1" } } },
        fine,
        { id: "3" }, // no operation
        { id: "4", get: { key: Buffer.alloc(0), shardId: 1 } }, // an empty key
      ],
    });
    const stream = await bidi(leader1, batch.path, [message]);
    expect(stream.status.code, stream.status.details).toBe(grpc.status.OK);
    const answers = stream.responses.flatMap(reply).sort((a, b) => Number(a.id) - Number(b.id));
    expect(answers.map((answer) => [answer.id, answer.result])).toEqual([
      ["1", "mutation"],
      ["2", "get"],
      ["3", "error"],
      ["4", "error"],
    ]);
    expect(answers[2]!.error.code).toBe("INVALID_ARGUMENT");
    expect(answers[2]!.error.message).toMatch(/carries no operation/);
    expect(answers[3]!.error.code).toBe("INVALID_ARGUMENT");
    const read = await call(leader1, "Get", { key: Buffer.from(added), shardId: 1 });
    expect(read.decoded!.value).toBe("5");

    // Over a bound: the whole message is refused before decoding, the add beside it never runs.
    const untouched = keyInShard("limits:batch-untouched", 1, SHARDS);
    const overBound = batch.requestSerialize({
      requests: [
        { id: "5", add: { key: Buffer.from(untouched), delta: "1", header: { shardId: 1, clientId, seq: "2", firstUnackedSeq: "2" } } },
        { id: "6", getMany: { keys: new Array(10_001).fill(Buffer.from("k")), shardId: 1 } },
      ],
    });
    const refused = await bidi(leader1, batch.path, [overBound]);
    expect(refused.status.code, refused.status.details).toBe(grpc.status.INVALID_ARGUMENT);
    expect(refused.info?.code).toBe("INVALID_ARGUMENT");
    expect(refused.status.details).toMatch(/keys: more than 10000 elements/);
    expect(refused.responses).toEqual([]);
    const malformed = await bidi(leader1, batch.path, [Buffer.from([0x0a, 0x07, 0x08])]);
    expect(malformed.status.code, malformed.status.details).toBe(grpc.status.INVALID_ARGUMENT);
    await expectAbsent(untouched);
    // The node goes on serving streams.
    const after = await bidi(leader1, batch.path, [batch.requestSerialize({ requests: [fine] })]);
    expect(after.status.code, after.status.details).toBe(grpc.status.OK);
    expect(after.responses.flatMap(reply).map((answer) => answer.result)).toEqual(["get"]);
  });

  test("the node-wide in-flight bound answers OVERLOADED with a retry hint over every connection, and no group changes leader", async () => {
    const before = await settledLeaderChanges(cluster);
    // 6 connections x 8 reads that wait (STALE at an index no replica will reach before the 4 s
    // request timeout): each connection stays under maxInflightPerClient (10), together they pass
    // maxInflightPerNode (20).
    const connections = Array.from(
      { length: 6 },
      (_, i) =>
        new grpc.Client(leader1, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1, "tally.test.connection": i }),
    );
    const get = counter("Get");
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${admin.token}`);
    const key = Buffer.from(keyInShard("limits:inflight", 1, SHARDS));
    const identity = (bytes: Buffer): Buffer => bytes;
    try {
      const outcomes = await Promise.all(
        connections.flatMap((connection) =>
          Array.from(
            { length: 8 },
            () =>
              new Promise<{ code: number; details: string; info?: Json }>((resolve) => {
                const request = get.requestSerialize({ key, consistency: "STALE", minIndex: "1000000000000", shardId: 1 });
                connection.makeUnaryRequest(get.path, identity, identity, request, metadata, { deadline: Date.now() + 15_000 }, (error) => {
                  const raw = error?.metadata?.get(ERROR_DETAILS_METADATA_KEY)?.[0];
                  resolve({
                    code: error?.code ?? grpc.status.OK,
                    details: error?.details ?? "",
                    ...(raw instanceof Buffer ? { info: decodeErrorInfo(raw) as unknown as Json } : {}),
                  });
                });
              }),
          ),
        ),
      );
      const overloaded = outcomes.filter((o) => o.code === grpc.status.RESOURCE_EXHAUSTED);
      const waited = outcomes.filter((o) => o.code === grpc.status.UNAVAILABLE);
      expect(
        waited.length + overloaded.length,
        JSON.stringify(outcomes.filter((o) => o.code !== grpc.status.RESOURCE_EXHAUSTED && o.code !== grpc.status.UNAVAILABLE)),
      ).toBe(48);
      expect(waited.length).toBe(20);
      for (const refusal of overloaded) {
        expect(refusal.info?.code).toBe("OVERLOADED");
        expect(refusal.info?.retryAfterMs).toBeGreaterThan(0);
        expect(refusal.details).toMatch(/limits\.maxInflightPerNode \(20\)/);
      }
      for (const read of waited) expect(read.details).toMatch(/read not served before its deadline/);
      // The slots are free again.
      expect((await call(leader1, "Get", { key, shardId: 1 })).code).toBe(grpc.status.OK);
    } finally {
      for (const connection of connections) connection.close();
    }
    expect(await leaderChangesAfterQuiet(cluster), "leader changes").toBe(before);
  }, 60_000);
});

describe("request limits at their defaults", () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await TestCluster.start({ nodes: 3, shards: SHARDS, metrics: true });
  }, 60_000);

  afterAll(async () => {
    await cluster?.destroy();
  });

  test("24,000 linearizable gets at once on one connection: each answered or OVERLOADED, and no group changes leader", async () => {
    const before = await settledLeaderChanges(cluster);
    const leader = await leaderClient(cluster.endpoints(), 1);
    const address = leader.address;
    leader.close();
    const stub = new (tallyProto().CounterService)(address, grpc.credentials.createInsecure()) as any;
    // Keys of both shards (a client without routes): the other shard's may be answered NOT_LEADER.
    const keys = Array.from({ length: 100 }, (_, i) => Buffer.from(`limits:burst:${i}`));
    const shardOf = (key: Buffer): number => (slotOf(key) < 16384 / SHARDS ? 1 : 2);
    const codes = new Map<string, number>();
    try {
      await withDeadline(
        Promise.all(
          Array.from(
            { length: 24_000 },
            (_, i) =>
              new Promise<void>((resolve) => {
                stub.get({ key: keys[i % keys.length] }, { deadline: Date.now() + 30_000 }, (error: grpc.ServiceError | null) => {
                  const code = `shard ${shardOf(keys[i % keys.length]!)} ${error === null ? "OK" : (grpc.status[error.code] ?? String(error.code))}`;
                  codes.set(code, (codes.get(code) ?? 0) + 1);
                  resolve();
                });
              }),
          ),
        ),
        60_000,
        "24,000 gets to finish",
      );
    } finally {
      stub.close();
    }
    expect(await leaderChangesAfterQuiet(cluster), `leader changes (answers ${JSON.stringify(Object.fromEntries(codes))})`).toBe(before);
    expect(codes.get("shard 1 OK") ?? 0).toBeGreaterThan(0);
    expect(
      [...codes.keys()].filter((code) => code.startsWith("shard 1") && code !== "shard 1 OK" && code !== "shard 1 RESOURCE_EXHAUSTED"),
    ).toEqual([]);
  }, 120_000);
});

/** A bidi stream of raw messages with the admin token; collects every response and the status. */
function bidi(address: string, path: string, messages: Buffer[]): Promise<{ status: grpc.StatusObject; info?: Json; responses: Buffer[] }> {
  const identity = (bytes: Buffer): Buffer => bytes;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${admin.token}`);
  return withDeadline(
    new Promise((resolve) => {
      const stream = client.makeBidiStreamRequest(path, identity, identity, metadata, { deadline: Date.now() + 10_000 });
      const responses: Buffer[] = [];
      stream.on("data", (data: Buffer) => responses.push(data));
      stream.on("error", () => undefined);
      stream.on("status", (status: grpc.StatusObject) => {
        client.close();
        const raw = status.metadata?.get(ERROR_DETAILS_METADATA_KEY)?.[0];
        resolve({ status, responses, ...(raw instanceof Buffer ? { info: decodeErrorInfo(raw) as unknown as Json } : {}) });
      });
      for (const message of messages) stream.write(message);
      stream.end();
    }),
    15_000,
    "the Pipeline stream to end",
  );
}
