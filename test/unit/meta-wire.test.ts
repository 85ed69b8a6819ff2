/**
 * The metadata protocol's node-to-node messages (src/server/meta-wire.ts), through the real proto
 * encoder: a partition map survives Heartbeat's reply exactly (every optional field set and unset),
 * a load report and every shard change arrive as sent, what cannot be read is refused, and an older
 * node's msgpack body (field 1, reserved) is refused with INVALID_ARGUMENT before anything changes,
 * also over a real gRPC call through AdminClients.internal.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { errorToServiceError } from "../../src/api/error-details.js";
import {
  tallyProto,
  type HeartbeatRequestInput,
  type HeartbeatRequestMessage,
  type HeartbeatResponseInput,
  type HeartbeatResponseMessage,
  type ShardChangeRequestInput,
  type ShardChangeRequestMessage,
  type ShardChangeResponseInput,
  type ShardChangeResponseMessage,
} from "../../src/api/proto.js";
import { type ClusterMap, emptyMap } from "../../src/meta/map.js";
import {
  AdminClients,
  clusterMapOf,
  heartbeatReplyOf,
  heartbeatRequest,
  heartbeatResponse,
  type HeartbeatReply,
  type NodeReport,
  nodeReportOf,
  partitionMap,
  type ShardChangeRequest,
  shardChangeOf,
  shardChangeReplyOf,
  shardChangeRequest,
  shardChangeResponse,
} from "../../src/server/meta-wire.js";
import type { TallyNode } from "../../src/server/node.js";
import type { WriteForwarder } from "../../src/server/rpc/forwarding.js";
import { internalApi } from "../../src/server/rpc/internal.js";
import { InvalidArgumentError, NotLeaderError, TallyError } from "../../src/util/errors.js";

interface Codec<In, Out> {
  serialize(value: In): Buffer;
  deserialize(bytes: Buffer): Out;
}

function codec<In, Out>(name: string): Codec<In, Out> {
  return tallyProto().packageDefinition[`tally.v1.${name}`] as unknown as Codec<In, Out>;
}

const heartbeats = codec<HeartbeatRequestInput, HeartbeatRequestMessage>("HeartbeatRequest");
const replies = codec<HeartbeatResponseInput, HeartbeatResponseMessage>("HeartbeatResponse");
const changes = codec<ShardChangeRequestInput, ShardChangeRequestMessage>("ShardChangeRequest");
const changeReplies = codec<ShardChangeResponseInput, ShardChangeResponseMessage>("ShardChangeResponse");
const internal = codec<{ body: Uint8Array }, { body: Buffer }>("InternalRequest");
const internalReply = codec<{ body: Uint8Array }, { body: Buffer }>("InternalResponse");

/** The map as the node that adopts it from a heartbeat reply has it. */
const overTheWire = (map: ClusterMap): ClusterMap =>
  heartbeatReplyOf(replies.deserialize(replies.serialize(heartbeatResponse({ metaLeader: 2, map })))).map!;
/** Any msgpack document, as an older node sends it in InternalRequest.body. */
const MSGPACK_BODY = Buffer.from("85a7736861726449640101", "hex");

/** A map with every kind of record and every optional field both set and unset. */
function fullMap(): ClusterMap {
  return {
    initialized: true,
    clusterName: "prod-eu",
    replicationFactor: 3,
    version: 2 ** 40 + 7,
    clockMs: 1_765_000_000_123,
    nodes: [
      { id: 1, client: "10.0.0.1:7000", peer: "10.0.0.1:7100", zone: "a", host: "rack1-m1", state: "up", sinceMs: 1_765_000_000_000 },
      { id: 2, client: "10.0.0.2:7000", peer: "10.0.0.2:7100", zone: "", state: "down", sinceMs: 5 },
      { id: 3, client: "n3:7000", peer: "n3:7100", zone: "b", host: "3", state: "draining", sinceMs: 0 },
      { id: 4, client: "n4:7000", peer: "n4:7100", zone: "c", state: "removed", sinceMs: 1_765_000_000_001 },
    ],
    shards: [
      { id: 1, slotStart: 0, slotEnd: 8192, epoch: 9, voters: [1, 2, 3], learners: [], votersOutgoing: [] },
      { id: 2, slotStart: 8192, slotEnd: 12000, epoch: 2 ** 33, voters: [3, 1], learners: [4], votersOutgoing: [1, 2, 4] },
      { id: 7, slotStart: 12000, slotEnd: 16384, epoch: 1, voters: [2], learners: [1, 3], votersOutgoing: [] },
    ],
    meta: { voters: [1, 2, 3], learners: [4], votersOutgoing: [1, 2] },
    operations: [
      {
        id: 11,
        kind: "move",
        shardId: 1,
        from: 2,
        to: 4,
        state: "running",
        step: "adding learner",
        reason: "operator",
        createdMs: 100,
        updatedMs: 200,
      },
      {
        id: 12,
        kind: "split",
        shardId: 2,
        from: 0,
        to: 0,
        state: "done",
        step: "split applied",
        reason: "hot shard",
        splitSlot: 10000,
        newShardId: 7,
        createdMs: 300,
        updatedMs: 400,
      },
      {
        id: 13,
        kind: "split",
        shardId: 7,
        from: 0,
        to: 0,
        state: "aborted",
        step: "",
        reason: "",
        splitSlot: 0,
        createdMs: 1,
        updatedMs: 1,
      },
      {
        id: 14,
        kind: "move",
        shardId: 1,
        from: 0,
        to: 3,
        state: "aborted",
        step: "x",
        reason: "y",
        newShardId: 0,
        createdMs: 2,
        updatedMs: 3,
      },
    ],
    nextOperationId: 15,
    hot: [
      { key: Buffer.from("{a}:views"), tags: [0, 17, 4096], writable: 2, declaredVersion: 90, updatedMs: 1_765_000_000_050 },
      { key: Buffer.from([0, 255, 1]), tags: [0, 3], writable: 2, declaredVersion: 2 ** 41, updatedMs: 0 },
    ],
  };
}

describe("the partition map in HeartbeatResponse", () => {
  test("a full map (operations, hot keys, learners, joint configurations, removed nodes) arrives identical", () => {
    const map = fullMap();
    expect(overTheWire(map)).toStrictEqual(map);
  });

  test("optional fields unset stay absent, not zero: splitSlot, newShardId, the hot list, the meta membership", () => {
    const adopted = overTheWire(fullMap());
    expect("splitSlot" in adopted.operations[0]! || "newShardId" in adopted.operations[0]!).toBe(false);
    expect(adopted.operations[2]).toHaveProperty("splitSlot", 0);
    expect(adopted.operations[2]).not.toHaveProperty("newShardId");
    expect(adopted.operations[3]).toHaveProperty("newShardId", 0);
    expect(adopted.operations[3]).not.toHaveProperty("splitSlot");

    const old = fullMap();
    delete old.hot;
    delete (old as Partial<ClusterMap>).meta;
    const oldAdopted = overTheWire(old);
    expect(oldAdopted).toStrictEqual(old);
    expect(oldAdopted).not.toHaveProperty("hot");
    expect(oldAdopted).not.toHaveProperty("meta");

    const noHotKeys = { ...fullMap(), hot: [] };
    expect(overTheWire(noHotKeys)).toStrictEqual(noHotKeys);
  });

  test("the empty map (before init) and a map without operations or shards arrive identical", () => {
    expect(overTheWire(emptyMap())).toStrictEqual(emptyMap());
    const bare = { ...fullMap(), shards: [], operations: [], nodes: [] };
    expect(overTheWire(bare)).toStrictEqual(bare);
  });

  test("a reply without the map leaves the sender's map alone; one without meta_leader is refused", () => {
    expect(heartbeatReplyOf(replies.deserialize(replies.serialize(heartbeatResponse({ metaLeader: 3 }))))).toStrictEqual({ metaLeader: 3 });
    // An older leader's InternalResponse decodes as a reply with neither.
    expect(() => heartbeatReplyOf(replies.deserialize(internalReply.serialize({ body: MSGPACK_BODY })))).toThrow(/older version/);
  });

  test("a node state, operation kind or operation state the node does not know is refused, not guessed", () => {
    for (const edit of [
      (m: ReturnType<typeof partitionMap>) => (m.nodes![0]!.state = "sleeping"),
      (m: ReturnType<typeof partitionMap>) => (m.operations![0]!.kind = "merge"),
      (m: ReturnType<typeof partitionMap>) => (m.operations![1]!.state = "paused"),
    ]) {
      const message = partitionMap(fullMap());
      edit(message);
      const decoded = replies.deserialize(replies.serialize({ metaLeader: 1, map: message }));
      expect(() => clusterMapOf(decoded.map!)).toThrow(InvalidArgumentError);
    }
  });
});

describe("the load report in HeartbeatRequest", () => {
  const report: NodeReport = {
    node: { id: 3, client: "n3:7000", peer: "n3:7100", zone: "b", host: "m2" },
    mapVersion: 2 ** 40,
    shards: [
      {
        id: 1,
        epoch: 4,
        slotStart: 0,
        slotEnd: 8192,
        voters: [1, 2, 3],
        learners: [4],
        votersOutgoing: [1, 2],
        leader: 3,
        term: 12,
        commit: 2 ** 45,
        applied: 2 ** 45 - 1,
        isLeader: true,
        progress: [
          [1, 100],
          [2, 0],
          [4, 2 ** 44],
        ],
        opsPerSecond: 1234.5678,
        counters: 1_000_000,
        splitSlot: 4100,
      },
      {
        id: 2,
        epoch: 1,
        slotStart: 8192,
        slotEnd: 16384,
        voters: [1, 2, 3],
        learners: [],
        votersOutgoing: [],
        leader: 0,
        term: 0,
        commit: 0,
        applied: 0,
        isLeader: false,
        progress: [],
        opsPerSecond: 0,
        counters: 0,
        splitSlot: 0,
      },
    ],
  };

  test("arrives at the metadata leader as the node made it", () => {
    expect(nodeReportOf(heartbeats.deserialize(heartbeats.serialize(heartbeatRequest(report))))).toStrictEqual(report);
    const none = { ...report, mapVersion: 0, shards: [] };
    expect(nodeReportOf(heartbeats.deserialize(heartbeats.serialize(heartbeatRequest(none))))).toStrictEqual(none);
    // A node that names no host (older versions): the report has none, and the node is its own host.
    const unnamed: NodeReport = { ...none, node: { id: 3, client: "n3:7000", peer: "n3:7100", zone: "b" } };
    expect(nodeReportOf(heartbeats.deserialize(heartbeats.serialize(heartbeatRequest(unnamed))))).toStrictEqual(unnamed);
  });

  test("a report without its node is refused", () => {
    expect(() => nodeReportOf(heartbeats.deserialize(heartbeats.serialize({ mapVersion: 1 })))).toThrow(InvalidArgumentError);
  });
});

describe("ShardChangeRequest", () => {
  const every: ShardChangeRequest[] = [
    { action: "add-learner", nodeId: 4, shardId: 1, expectedEpoch: 3 },
    { action: "promote-and-remove", nodeId: 4, removeId: 2, shardId: 1, expectedEpoch: 4 },
    { action: "promote", nodeId: 4, shardId: 2, expectedEpoch: 2 ** 40 },
    { action: "remove", nodeId: 2, shardId: 3, expectedEpoch: 1 },
    { action: "transfer-leader", nodeId: 1, shardId: 9, expectedEpoch: 7 },
    { action: "split", splitSlot: 10000, newShardId: 12, shardId: 2, expectedEpoch: 5 },
  ];

  test("every action arrives as the metadata leader asked it, and the epoch comes back", () => {
    for (const request of every) {
      expect(shardChangeOf(changes.deserialize(changes.serialize(shardChangeRequest(request))))).toStrictEqual(request);
    }
    expect(shardChangeReplyOf(changeReplies.deserialize(changeReplies.serialize(shardChangeResponse({ epoch: 2 ** 35 }))))).toStrictEqual({
      epoch: 2 ** 35,
    });
  });

  test("a change without its shard, action or node is refused", () => {
    for (const bad of [
      { expectedEpoch: 1, remove: { nodeId: 2 } },
      { shardId: 1, expectedEpoch: 1 },
      { shardId: 1, expectedEpoch: 1, remove: { nodeId: 0 } },
      { shardId: 1, expectedEpoch: 1, promoteAndRemove: { nodeId: 4 } },
      { shardId: 1, expectedEpoch: 1, split: { splitSlot: 0, newShardId: 3 } },
    ]) {
      expect(() => shardChangeOf(changes.deserialize(changes.serialize(bad)))).toThrow(InvalidArgumentError);
    }
    expect(() => shardChangeReplyOf(changeReplies.deserialize(internalReply.serialize({ body: MSGPACK_BODY })))).toThrow(/older version/);
  });
});

describe("Heartbeat and ShardChange between nodes of two versions", () => {
  test("an older node's msgpack body is refused by a newer node, not misread", () => {
    expect(() => nodeReportOf(heartbeats.deserialize(internal.serialize({ body: MSGPACK_BODY })))).toThrow(/older version/);
    expect(() => shardChangeOf(changes.deserialize(internal.serialize({ body: MSGPACK_BODY })))).toThrow(/older version/);
  });

  test("a newer node's requests carry no body for an older node (which refuses them)", () => {
    const report: NodeReport = { node: { id: 1, client: "a", peer: "b", zone: "" }, mapVersion: 3, shards: [] };
    expect(internal.deserialize(heartbeats.serialize(heartbeatRequest(report))).body).toHaveLength(0);
    const change: ShardChangeRequest = { action: "remove", nodeId: 2, shardId: 1, expectedEpoch: 3 };
    expect(internal.deserialize(changes.serialize(shardChangeRequest(change))).body).toHaveLength(0);
  });
});

describe("AdminClients.internal over gRPC", () => {
  const map = fullMap();
  const seen: { reports: NodeReport[]; changes: ShardChangeRequest[] } = { reports: [], changes: [] };
  /** The two methods internal.ts serves, on a node that leads the metadata group and shard 1. */
  const node = {
    onHeartbeat(report: NodeReport): HeartbeatReply {
      seen.reports.push(report);
      return report.mapVersion < map.version ? { metaLeader: 1, map } : { metaLeader: 1 };
    },
    shardChange(request: ShardChangeRequest): Promise<{ epoch: number }> {
      seen.changes.push(request);
      if (request.shardId !== 1) return Promise.reject(new NotLeaderError("not the leader", "2", "n2:7000", request.shardId));
      return Promise.resolve({ epoch: request.expectedEpoch });
    },
  } as unknown as TallyNode;
  const api = internalApi(node, {} as WriteForwarder, false);
  const unary =
    <Req, Res>(fn: (request: Req) => Res | Promise<Res>) =>
    (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>): void => {
      Promise.resolve()
        .then(() => fn(call.request))
        .then(
          (response) => callback(null, response),
          (error: unknown) => callback(errorToServiceError(error)),
        );
    };
  const server = new grpc.Server();
  const clients = new AdminClients();
  let address = "";

  beforeAll(async () => {
    server.addService(tallyProto().AdminService.service, {
      heartbeat: unary((r: HeartbeatRequestMessage) => api.heartbeat(r)),
      shardChange: unary((r: ShardChangeRequestMessage) => api.shardChange(r)),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    address = `127.0.0.1:${port}`;
  });

  afterAll(() => {
    clients.close();
    server.forceShutdown();
  });

  test("a heartbeat reaches the leader and brings back its map exactly when the sender's is older", async () => {
    const report: NodeReport = { node: { id: 2, client: "n2:7000", peer: "n2:7100", zone: "a" }, mapVersion: 1, shards: [] };
    expect(await clients.internal(address, "heartbeat", report, 5000)).toStrictEqual({ metaLeader: 1, map });
    expect(await clients.internal(address, "heartbeat", { ...report, mapVersion: map.version }, 5000)).toStrictEqual({ metaLeader: 1 });
    expect(seen.reports.at(-1)).toStrictEqual({ ...report, mapVersion: map.version });
  });

  test("a shard change reaches the shard's leader; its typed refusal comes back as it was", async () => {
    const change: ShardChangeRequest = { action: "split", splitSlot: 100, newShardId: 5, shardId: 1, expectedEpoch: 6 };
    expect(await clients.internal(address, "shardChange", change, 5000)).toStrictEqual({ epoch: 6 });
    expect(seen.changes.at(-1)).toStrictEqual(change);
    await expect(clients.internal(address, "shardChange", { ...change, shardId: 2 }, 5000)).rejects.toBeInstanceOf(NotLeaderError);
  });

  test("an older node's call (a msgpack body) is INVALID_ARGUMENT and reaches neither handler", async () => {
    const before = { reports: seen.reports.length, changes: seen.changes.length };
    const raw = new grpc.Client(address, grpc.credentials.createInsecure());
    try {
      for (const method of ["Heartbeat", "ShardChange"]) {
        const error = await new Promise<grpc.ServiceError | null>((resolve) =>
          raw.makeUnaryRequest(
            `/tally.v1.AdminService/${method}`,
            (value: { body: Uint8Array }) => internal.serialize(value),
            (bytes: Buffer) => bytes,
            { body: MSGPACK_BODY },
            (err) => resolve(err),
          ),
        );
        expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(error?.details).toMatch(/older version/);
      }
    } finally {
      raw.close();
    }
    expect({ reports: seen.reports.length, changes: seen.changes.length }).toEqual(before);
  });

  test("a call to an unreachable node rejects with a typed error", async () => {
    const report: NodeReport = { node: { id: 2, client: "", peer: "", zone: "" }, mapVersion: 1, shards: [] };
    await expect(clients.internal("127.0.0.1:1", "heartbeat", report, 2000)).rejects.toBeInstanceOf(TallyError);
  });
});
