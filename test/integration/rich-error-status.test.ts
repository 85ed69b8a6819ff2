/**
 * The standard rich error model against 3 real tallyd processes (docs/errors-wire.md): a
 * NOT_LEADER, a WRONG_SHARD and a failed Watch stream each carry grpc-status-details-bin next to
 * tally-error-bin, read by decoders that share nothing with tally's codec: protobufjs reflection
 * over proto/google/rpc/*.proto, and a Python client (grpcio + python3-protobuf,
 * test/support/status-details.py). The Python half is skipped, saying why, where /usr/bin/python3
 * lacks grpc (Debian: apt-get install python3-grpcio python3-protobuf).
 */
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ERROR_DETAILS_METADATA_KEY, STATUS_DETAILS_METADATA_KEY } from "../../src/api/error-details.js";
import { tallyProto } from "../../src/api/proto.js";
import { TestCluster } from "../support/cluster.js";
import { decodeStatusByReflection, ERROR_INFO_URL, type ReflectedStatus } from "../support/google-rpc-reflection.js";
import { keyInShard } from "../support/keys.js";
import { RawNodeClient, leaderClient } from "../support/raw-client.js";

const PYTHON = "/usr/bin/python3";
const PYTHON_SCRIPT = resolve(import.meta.dirname, "..", "support", "status-details.py");
const CALL_TIMEOUT_MS = 5_000;
const PYTHON_TIMEOUT_MS = 30_000;

const pythonProblem = ((): string | undefined => {
  const probe = spawnSync(PYTHON, ["-c", "import grpc, google.protobuf"], { encoding: "utf8", timeout: PYTHON_TIMEOUT_MS });
  if (probe.error !== undefined) return `${PYTHON} did not run (${probe.error.message})`;
  if (probe.status !== 0)
    return `${PYTHON} lacks grpc or protobuf (${probe.stderr.trim().split("\n").pop()}); install python3-grpcio python3-protobuf`;
  return undefined;
})();
if (pythonProblem !== undefined) console.warn(`rich-error-status: skipping the Python decoder: ${pythonProblem}`);
const withPython = pythonProblem === undefined ? "" : ` [skipped: ${pythonProblem}]`;

type MethodDefinition = { path: string; requestSerialize(value: object): Buffer; responseDeserialize(bytes: Buffer): unknown };

function method(name: string): MethodDefinition {
  const service = tallyProto().packageDefinition["tally.v1.CounterService"] as unknown as Record<string, MethodDefinition>;
  const definition = service[name];
  if (definition === undefined) throw new Error(`no CounterService.${name}`);
  return definition;
}

interface FailedCall {
  code: number;
  details: string;
  metadata: grpc.Metadata;
}

/** One unary call that must fail; its status and trailers as grpc-js received them. */
function failingUnary(address: string, name: string, request: object): Promise<FailedCall> {
  const identity = (value: Buffer): Buffer => value;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise((resolvePromise, reject) => {
    client.makeUnaryRequest(
      method(name).path,
      identity,
      identity,
      method(name).requestSerialize(request),
      new grpc.Metadata(),
      { deadline: Date.now() + CALL_TIMEOUT_MS },
      (error) => {
        client.close();
        if (error === null) reject(new Error(`${name} succeeded; the test needs it to fail`));
        else resolvePromise({ code: error.code, details: error.details, metadata: error.metadata });
      },
    );
  });
}

/** The standard trailer, decoded by protobufjs reflection; fails the test when it is missing. */
function standardStatus(call: FailedCall): ReflectedStatus {
  const values = call.metadata.get(STATUS_DETAILS_METADATA_KEY);
  expect(values, "one grpc-status-details-bin trailer").toHaveLength(1);
  expect(values[0]).toBeInstanceOf(Buffer);
  return decodeStatusByReflection(values[0] as Buffer);
}

interface PythonView {
  grpc_code: number;
  grpc_details: string;
  status_details_trailers: number;
  matches_call?: boolean;
  status?: {
    code: number;
    message: string;
    details: Array<{ type_url: string; reason?: string; domain?: string; metadata?: Record<string, string> }>;
  };
}

/** The same call made by the Python client, and what it decoded. */
function pythonCall(address: string, name: string, request: object): PythonView {
  const hex = method(name).requestSerialize(request).toString("hex");
  const run = spawnSync(PYTHON, [PYTHON_SCRIPT, address, method(name).path, hex], { encoding: "utf8", timeout: PYTHON_TIMEOUT_MS });
  if (run.error !== undefined || run.status !== 0)
    throw new Error(`status-details.py exited ${run.status ?? run.signal}: ${run.error?.message ?? ""}\n${run.stderr}\n${run.stdout}`);
  return JSON.parse(run.stdout) as PythonView;
}

let cluster: TestCluster;
let leader: RawNodeClient;
let follower: string;
/** The leader of shard 1 as the follower names it. */
let leaderIdSeenByFollower: string;

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 3, shards: 2 });
  leader = await leaderClient(cluster.endpoints(), 1);
  follower = cluster.endpoints().find((endpoint) => endpoint !== leader.address)!;
  const followerClient = new RawNodeClient(follower);
  try {
    const status = await followerClient.call("status", { localOnly: true });
    leaderIdSeenByFollower = status.nodes[0].groups.find((group: { groupId: number }) => group.groupId === 1).leaderId;
  } finally {
    followerClient.close();
  }
});

afterAll(async () => {
  leader?.close();
  await cluster?.destroy();
});

async function wrongShardRequest(): Promise<{ request: object; epoch: string }> {
  const { clientId } = await leader.call("registerSession", { shardId: 1 });
  const routes = await leader.call("routes", {});
  const epoch: string = routes.shards.find((shard: { shardId: number }) => shard.shardId === 1).epoch;
  const header = { shardId: 1, epoch: String(BigInt(epoch) + 76n), clientId, seq: "1", firstUnackedSeq: "1" };
  return { request: { header, key: Buffer.from(keyInShard("rich-status", 1, 2)), delta: "1" }, epoch };
}

describe("grpc-status-details-bin from real processes", () => {
  test("NOT_LEADER: Status{UNAVAILABLE, message, ErrorInfo with the leader hint}, next to tally-error-bin", async () => {
    const call = await failingUnary(follower, "RegisterSession", { shardId: 1 });
    expect(call.code).toBe(grpc.status.UNAVAILABLE);
    expect(call.metadata.get(ERROR_DETAILS_METADATA_KEY)).toHaveLength(1);
    const status = standardStatus(call);
    expect(status).toEqual({
      code: grpc.status.UNAVAILABLE,
      message: call.details,
      details: [
        {
          type_url: ERROR_INFO_URL,
          errorInfo: {
            reason: "NOT_LEADER",
            domain: "tally.dev",
            metadata: { leader_id: leaderIdSeenByFollower, leader_address: leader.address, shard_id: "1" },
          },
        },
      ],
    });
  });

  test("WRONG_SHARD: shard_id and current_epoch", async () => {
    const { request, epoch } = await wrongShardRequest();
    const call = await failingUnary(leader.address, "Add", request);
    const status = standardStatus(call);
    expect(status.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(status.message).toBe(call.details);
    expect(status.details).toEqual([
      {
        type_url: ERROR_INFO_URL,
        errorInfo: { reason: "WRONG_SHARD", domain: "tally.dev", metadata: { shard_id: "1", current_epoch: epoch } },
      },
    ]);
  });

  test("a failed server stream (Watch) carries it too", async () => {
    const watch = method("Watch");
    const identity = (value: Buffer): Buffer => value;
    const client = new grpc.Client(follower, grpc.credentials.createInsecure());
    try {
      const failure = await new Promise<grpc.ServiceError>((resolvePromise, reject) => {
        const stream = client.makeServerStreamRequest(
          watch.path,
          identity,
          identity,
          watch.requestSerialize({ key: Buffer.from("rich"), prefix: true }),
          new grpc.Metadata(),
          {
            deadline: Date.now() + CALL_TIMEOUT_MS,
          },
        );
        stream.on("data", () => reject(new Error("Watch sent data; the test needs it to fail")));
        stream.on("error", resolvePromise);
        stream.on("end", () => reject(new Error("Watch ended without a status error")));
      });
      expect(failure.code).toBe(grpc.status.INVALID_ARGUMENT);
      const status = standardStatus({ code: failure.code, details: failure.details, metadata: failure.metadata });
      expect(status).toEqual({
        code: grpc.status.INVALID_ARGUMENT,
        message: failure.details,
        details: [{ type_url: ERROR_INFO_URL, errorInfo: { reason: "INVALID_ARGUMENT", domain: "tally.dev", metadata: {} } }],
      });
    } finally {
      client.close();
    }
  });
});

describe("read by a Python grpcio client", () => {
  test.skipIf(pythonProblem !== undefined)(
    `NOT_LEADER: grpcio sees the Status of the call, with the leader hint${withPython}`,
    async () => {
      const view = pythonCall(follower, "RegisterSession", { shardId: 1 });
      expect(view).toMatchObject({ grpc_code: grpc.status.UNAVAILABLE, status_details_trailers: 1, matches_call: true });
      expect(view.status?.code).toBe(grpc.status.UNAVAILABLE);
      expect(view.status?.message).toBe(view.grpc_details);
      expect(view.status?.details).toEqual([
        {
          type_url: ERROR_INFO_URL,
          reason: "NOT_LEADER",
          domain: "tally.dev",
          metadata: { leader_id: leaderIdSeenByFollower, leader_address: leader.address, shard_id: "1" },
        },
      ]);
    },
  );

  test.skipIf(pythonProblem !== undefined)(`WRONG_SHARD: shard_id and current_epoch${withPython}`, async () => {
    const { request, epoch } = await wrongShardRequest();
    const view = pythonCall(leader.address, "Add", request);
    expect(view).toMatchObject({ grpc_code: grpc.status.FAILED_PRECONDITION, status_details_trailers: 1, matches_call: true });
    expect(view.status?.details).toEqual([
      { type_url: ERROR_INFO_URL, reason: "WRONG_SHARD", domain: "tally.dev", metadata: { shard_id: "1", current_epoch: epoch } },
    ]);
  });
});
