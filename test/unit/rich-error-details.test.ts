/**
 * The standard rich error model (docs/errors-wire.md): every error reply carries
 * grpc-status-details-bin with google.rpc.Status{code, message, [ErrorInfo, RetryInfo]}. The hand
 * codec (src/api/google-rpc-status.ts) is checked against protobufjs reflection over
 * proto/google/rpc/*.proto in both directions, and the client is run against servers that send
 * only the standard trailer.
 */
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import {
  ERROR_DETAILS_METADATA_KEY,
  STATUS_DETAILS_METADATA_KEY,
  decodeErrorInfo,
  decodeServiceError,
  encodeErrorInfo,
  errorToErrorInfo,
  errorToServiceError,
  normalizeErrorInfo,
  type ErrorInfo,
} from "../../src/api/error-details.js";
import { WireFormatError, decodeRpcStatus, encodeRpcStatus } from "../../src/api/google-rpc-status.js";
import { ERROR_METADATA_KEYS, decodeStatusDetails, encodeStatusDetails } from "../../src/api/rich-error-details.js";
import { tallyProto } from "../../src/api/proto.js";
import { ERROR_CODES } from "../../src/api/status-codes.js";
import { TallyClient } from "../../src/client/index.js";
import {
  AmbiguousError,
  CorruptionError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotLeaderError,
  OutOfRangeError,
  OverloadedError,
  PermissionDeniedError,
  SeqAcknowledgedError,
  SessionExpiredError,
  TallyError,
  UnauthenticatedError,
  UnavailableError,
  VersionMismatchError,
  WrongShardError,
  type ErrorCode,
} from "../../src/util/errors.js";
import {
  ERROR_INFO_URL,
  RETRY_INFO_URL,
  decodeStatusByReflection,
  encodeStatusByReflection,
  type StatusToEncode,
} from "../support/google-rpc-reflection.js";

/** One error of every code, with the metadata and RetryInfo its standard trailer must carry. */
const SAMPLES: Record<ErrorCode, { error: TallyError; metadata: Record<string, string>; retryDelay?: { seconds: string; nanos: number } }> =
  {
    INVALID_ARGUMENT: { error: new InvalidArgumentError("empty key"), metadata: {} },
    NOT_LEADER: {
      error: new NotLeaderError("node 1 is not the leader of shard 3", "2", "127.0.0.1:7002", 3),
      metadata: { leader_id: "2", leader_address: "127.0.0.1:7002", shard_id: "3" },
    },
    WRONG_SHARD: {
      error: new WrongShardError("shard 4 is at epoch 9, request routed by epoch 8", 4, 9),
      metadata: { shard_id: "4", current_epoch: "9" },
    },
    AMBIGUOUS: { error: new AmbiguousError("leadership changed; the add may have been applied"), metadata: {} },
    OVERLOADED: {
      error: new OverloadedError("node at its in-flight limit", 250),
      metadata: {},
      retryDelay: { seconds: "0", nanos: 250_000_000 },
    },
    OUT_OF_RANGE: { error: new OutOfRangeError("sum outside int64"), metadata: {} },
    FAILED_PRECONDITION: { error: new FailedPreconditionError("below the floor"), metadata: {} },
    VERSION_MISMATCH: { error: new VersionMismatchError("version is 7, expected 6", 7), metadata: { current_version: "7" } },
    SESSION_EXPIRED: { error: new SessionExpiredError("session 5 expired"), metadata: {} },
    SEQ_ACKNOWLEDGED: { error: new SeqAcknowledgedError("seq 1 of session 5 was already acknowledged"), metadata: {} },
    UNAVAILABLE: { error: new UnavailableError("no quorum"), metadata: {} },
    TIMEOUT: { error: new TallyError("TIMEOUT", "request timed out"), metadata: {} },
    NOT_FOUND: { error: new TallyError("NOT_FOUND", "no such shard"), metadata: {} },
    INTERNAL: { error: new TallyError("INTERNAL", "internal error: boom"), metadata: {} },
    CORRUPTION: { error: new CorruptionError("checksum mismatch in segment 3"), metadata: {} },
    PERMISSION_DENIED: { error: new PermissionDeniedError("reader has no writer role"), metadata: {} },
    UNAUTHENTICATED: { error: new UnauthenticatedError("no token"), metadata: {} },
  };

function standardTrailer(serviceError: grpc.ServiceError): Buffer {
  const value = serviceError.metadata.get(STATUS_DETAILS_METADATA_KEY)[0];
  expect(value).toBeInstanceOf(Buffer);
  return value as Buffer;
}

function info(fields: Partial<ErrorInfo>): ErrorInfo {
  return normalizeErrorInfo(fields);
}

describe("grpc-status-details-bin from the server", () => {
  it.each(ERROR_CODES.map((code) => [code]))(
    "%s: Status{call code, call message, ErrorInfo(, RetryInfo)} next to tally-error-bin",
    (code) => {
      const sample = SAMPLES[code];
      const serviceError = errorToServiceError(sample.error);
      const bytes = standardTrailer(serviceError);
      const reflected = decodeStatusByReflection(bytes);
      // grpcio-status (rpc_status.from_call) refuses a Status whose code or message differ from the call's.
      expect(reflected.code).toBe(serviceError.code);
      expect(reflected.message).toBe(serviceError.details);
      expect(reflected.details[0]).toEqual({
        type_url: ERROR_INFO_URL,
        errorInfo: { reason: code, domain: "tally.dev", metadata: sample.metadata },
      });
      if (sample.retryDelay === undefined) expect(reflected.details).toHaveLength(1);
      else expect(reflected.details[1]).toEqual({ type_url: RETRY_INFO_URL, retryInfo: { retry_delay: sample.retryDelay } });
      // The old trailer stays, and the standard one decodes to exactly what it says.
      const own = decodeErrorInfo(serviceError.metadata.get(ERROR_DETAILS_METADATA_KEY)[0] as Buffer);
      expect(decodeStatusDetails(bytes)).toEqual(own);
    },
  );

  it("covers every tally error code", () => {
    expect(Object.keys(SAMPLES).sort()).toEqual([...ERROR_CODES].sort());
  });

  it("writes the same bytes as protobufjs, field by field in order", () => {
    const serviceError = errorToServiceError(new NotLeaderError("ask node 2", "2", "127.0.0.1:7002", 3), { opIndex: 4 });
    const expected = encodeStatusByReflection({
      code: grpc.status.UNAVAILABLE,
      message: "ask node 2",
      errorInfo: {
        reason: "NOT_LEADER",
        domain: "tally.dev",
        metadata: { leader_id: "2", leader_address: "127.0.0.1:7002", shard_id: "3", op_index: "4" },
      },
    });
    expect(standardTrailer(serviceError).toString("hex")).toBe(expected.toString("hex"));
    const overloaded = errorToServiceError(new OverloadedError("busy", 1_500));
    const expectedOverloaded = encodeStatusByReflection({
      code: grpc.status.RESOURCE_EXHAUSTED,
      message: "busy",
      errorInfo: { reason: "OVERLOADED", domain: "tally.dev", metadata: {} },
      retryDelay: { seconds: 1, nanos: 500_000_000 },
    });
    expect(standardTrailer(overloaded).toString("hex")).toBe(expectedOverloaded.toString("hex"));
  });
});

describe("ErrorInfo.metadata keys", () => {
  const metadataOf = (error: unknown, extras: { opIndex?: number } = {}): Record<string, string> =>
    decodeStatusByReflection(standardTrailer(errorToServiceError(error, extras))).details[0]!.errorInfo!.metadata;

  it("names the leader when there is one, and only the fields that are set", () => {
    expect(metadataOf(new NotLeaderError("no leader yet", undefined, undefined, 3))).toEqual({ shard_id: "3" });
    expect(metadataOf(new NotLeaderError("metadata group: ask 2", "2", "127.0.0.1:7002", 0))).toEqual({
      leader_id: "2",
      leader_address: "127.0.0.1:7002",
    });
    expect(metadataOf(new WrongShardError("shard 4 has no replica here", 4, 0))).toEqual({ shard_id: "4" });
    expect(metadataOf(new OutOfRangeError("overflow"), { opIndex: 0 })).toEqual({ op_index: "0" });
  });

  it("always has current_version on VERSION_MISMATCH: 0 says the counter does not exist", () => {
    const serviceError = errorToServiceError(new VersionMismatchError("counter does not exist", 0));
    expect(decodeStatusByReflection(standardTrailer(serviceError)).details[0]!.errorInfo!.metadata).toEqual({ current_version: "0" });
    expect(decodeStatusDetails(standardTrailer(serviceError))).toMatchObject({ code: "VERSION_MISMATCH", currentVersion: "0" });
  });

  it("round-trips every key, 64-bit values exact, in the documented order", () => {
    const full = info({
      code: "WRONG_SHARD",
      message: "moved",
      leaderId: "node-7",
      leaderAddress: "[::1]:7000",
      shardId: 4_294_967_295,
      currentEpoch: "18446744073709551615",
      currentVersion: "9223372036854775808",
      hasOpIndex: true,
      opIndex: 4_294_967_295,
      retryAfterMs: 4_294_967_295,
    });
    const bytes = encodeStatusDetails(full, grpc.status.FAILED_PRECONDITION);
    expect(decodeStatusDetails(bytes)).toEqual(full);
    const reflected = decodeStatusByReflection(bytes);
    expect(Object.keys(reflected.details[0]!.errorInfo!.metadata)).toEqual([...ERROR_METADATA_KEYS]);
    expect(reflected.details[1]!.retryInfo).toEqual({ retry_delay: { seconds: "4294967", nanos: 295_000_000 } });
  });
});

describe("grpc-status-details-bin from any server", () => {
  const notLeader: StatusToEncode = {
    code: grpc.status.UNAVAILABLE,
    message: "not the leader",
    errorInfo: { reason: "NOT_LEADER", domain: "tally.dev", metadata: { leader_id: "3", leader_address: "127.0.0.1:7003", shard_id: "2" } },
  };

  it("decodes what protobufjs encodes, skipping details of other types and domains", () => {
    const bytes = encodeStatusByReflection({
      ...notLeader,
      otherDetails: [
        { type_url: "type.googleapis.com/google.rpc.DebugInfo", value: Buffer.from([0x12, 0x01, 0x78]) },
        {
          type_url: ERROR_INFO_URL,
          value: decodeRpcStatus(
            encodeStatusByReflection({
              code: 14,
              message: "",
              errorInfo: { reason: "NOT_LEADER", domain: "example.com", metadata: { leader_id: "wrong" } },
            }),
          ).details[0]!.value,
        },
      ],
    });
    expect(decodeStatusDetails(bytes)).toEqual(
      info({ code: "NOT_LEADER", message: "not the leader", leaderId: "3", leaderAddress: "127.0.0.1:7003", shardId: 2 }),
    );
  });

  it("turns RetryInfo into whole milliseconds, rounded up, within uint32", () => {
    const retryAfter = (seconds: number, nanos: number): number | undefined =>
      decodeStatusDetails(
        encodeStatusByReflection({
          code: 8,
          message: "busy",
          errorInfo: { reason: "OVERLOADED", domain: "tally.dev", metadata: {} },
          retryDelay: { seconds, nanos },
        }),
      )?.retryAfterMs;
    expect(retryAfter(1, 500_000_000)).toBe(1_500);
    expect(retryAfter(0, 1)).toBe(1);
    expect(retryAfter(2, 0)).toBe(2_000);
    expect(retryAfter(-1, -5)).toBe(0);
    expect(retryAfter(10_000_000, 0)).toBe(4_294_967_295);
  });

  it("is no tally ErrorInfo without a tally.dev ErrorInfo detail", () => {
    expect(decodeStatusDetails(encodeStatusByReflection({ code: 14, message: "upstream connect error" }))).toBeUndefined();
    expect(
      decodeStatusDetails(
        encodeStatusByReflection({ code: 14, message: "x", errorInfo: { reason: "NOT_LEADER", domain: "example.com", metadata: {} } }),
      ),
    ).toBeUndefined();
    expect(decodeStatusDetails(Buffer.alloc(0))).toBeUndefined();
  });

  it("refuses a malformed hint rather than act on it", () => {
    for (const [key, value] of [
      ["shard_id", "x"],
      ["shard_id", "4294967296"],
      ["current_epoch", "18446744073709551616"],
      ["current_version", "-1"],
      ["op_index", "01"],
      ["op_index", ""],
    ] as const) {
      const bytes = encodeStatusByReflection({
        code: 9,
        message: "m",
        errorInfo: { reason: "WRONG_SHARD", domain: "tally.dev", metadata: { [key]: value } },
      });
      expect(() => decodeStatusDetails(bytes), `${key}=${JSON.stringify(value)}`).toThrow(WireFormatError);
    }
  });

  it("skips unknown fields of every wire type and rejects broken framing", () => {
    const bytes = encodeStatusByReflection(notLeader);
    // field 9 varint 300, field 10 fixed64, field 11 fixed32, field 12 bytes "ab"
    const unknown = Buffer.from([0x48, 0xac, 0x02, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5d, 1, 2, 3, 4, 0x62, 0x02, 0x61, 0x62]);
    expect(decodeStatusDetails(Buffer.concat([unknown, bytes, unknown]))).toEqual(decodeStatusDetails(bytes));
    expect(() => decodeRpcStatus(bytes.subarray(0, bytes.length - 1))).toThrow(WireFormatError);
    expect(() => decodeRpcStatus(Buffer.from([0x0b]))).toThrow(WireFormatError); // field 1, wire type 3 (group)
    expect(() => decodeRpcStatus(Buffer.from([0x0a, 0x00]))).toThrow(WireFormatError); // code sent as bytes
    expect(() => decodeRpcStatus(Buffer.from([0x08, ...Array(10).fill(0xff), 0x01]))).toThrow(WireFormatError);
    expect(() => decodeRpcStatus(Buffer.from([0x12, 0x01, 0xff]))).toThrow(WireFormatError); // message not UTF-8
  });

  it("reads a negative int32 code (ten-byte varint) as protobuf does", () => {
    const bytes = encodeStatusByReflection({ code: -1, message: "odd server" });
    expect(bytes).toHaveLength(1 + 10 + 2 + 10);
    expect(decodeRpcStatus(bytes)).toEqual({ code: -1, message: "odd server", details: [] });
    expect(encodeRpcStatus({ code: -1, message: "odd server", details: [] }).equals(bytes)).toBe(true);
  });
});

describe("the client reads grpc-status-details-bin when tally-error-bin is absent", () => {
  const standardOnly = (status: StatusToEncode): Partial<grpc.ServiceError> => {
    const metadata = new grpc.Metadata();
    metadata.set(STATUS_DETAILS_METADATA_KEY, encodeStatusByReflection(status));
    return { code: status.code, details: status.message, metadata };
  };

  it("decodes a typed error with its hints", () => {
    const decoded = decodeServiceError(
      standardOnly({
        code: grpc.status.UNAVAILABLE,
        message: "ask 3",
        errorInfo: {
          reason: "NOT_LEADER",
          domain: "tally.dev",
          metadata: { leader_id: "3", leader_address: "127.0.0.1:7003", shard_id: "2" },
        },
      }),
    );
    expect(decoded.error).toBeInstanceOf(NotLeaderError);
    expect(decoded.error).toMatchObject({ message: "ask 3", leaderId: "3", leaderAddress: "127.0.0.1:7003", shardId: 2 });
    expect(decoded.info?.leaderAddress).toBe("127.0.0.1:7003");
    const overloaded = decodeServiceError(
      standardOnly({
        code: grpc.status.RESOURCE_EXHAUSTED,
        message: "busy",
        errorInfo: { reason: "OVERLOADED", domain: "tally.dev", metadata: {} },
        retryDelay: { seconds: 0, nanos: 40_000_000 },
      }),
    );
    expect(overloaded.error).toBeInstanceOf(OverloadedError);
    expect((overloaded.error as OverloadedError).retryAfterMs).toBe(40);
    // FAILED_PRECONDITION alone would be FAILED_PRECONDITION; the reason says which one.
    expect(
      decodeServiceError(
        standardOnly({
          code: grpc.status.FAILED_PRECONDITION,
          message: "expired",
          errorInfo: { reason: "SESSION_EXPIRED", domain: "tally.dev", metadata: {} },
        }),
      ).error,
    ).toBeInstanceOf(SessionExpiredError);
  });

  it("prefers tally-error-bin, and falls back to the status when neither trailer is tally's", () => {
    const both = standardOnly({
      code: grpc.status.UNAVAILABLE,
      message: "ask 3",
      errorInfo: { reason: "NOT_LEADER", domain: "tally.dev", metadata: { leader_address: "standard:1" } },
    });
    both.metadata!.set(ERROR_DETAILS_METADATA_KEY, encodeErrorInfo({ code: "NOT_LEADER", message: "ask 3", leaderAddress: "own:1" }));
    expect(decodeServiceError(both).info?.leaderAddress).toBe("own:1");
    // An undecodable tally-error-bin does not hide a good standard trailer.
    both.metadata!.set(ERROR_DETAILS_METADATA_KEY, Buffer.from([0xff, 0xff, 0xff]));
    expect(decodeServiceError(both).info?.leaderAddress).toBe("standard:1");

    const foreign = decodeServiceError(
      standardOnly({
        code: grpc.status.FAILED_PRECONDITION,
        message: "x",
        errorInfo: { reason: "WRONG_SHARD", domain: "example.com", metadata: {} },
      }),
    );
    expect(foreign.info).toBeUndefined();
    expect(foreign.error.code).toBe("FAILED_PRECONDITION");
    const garbage = standardOnly({ code: grpc.status.FAILED_PRECONDITION, message: "x" });
    garbage.metadata!.set(STATUS_DETAILS_METADATA_KEY, Buffer.from([0x1a, 0x05, 0x0a]));
    expect(decodeServiceError(garbage).error.code).toBe("FAILED_PRECONDITION");
  });

  it("is what errorToErrorInfo sent, for every code", () => {
    for (const code of ERROR_CODES) {
      const serviceError = errorToServiceError(SAMPLES[code].error, { opIndex: 2 });
      serviceError.metadata.remove(ERROR_DETAILS_METADATA_KEY);
      const decoded = decodeServiceError(serviceError);
      expect(decoded.info, code).toEqual(errorToErrorInfo(SAMPLES[code].error, { opIndex: 2 }));
      expect(decoded.error.constructor, code).toBe(SAMPLES[code].error.constructor);
    }
  });
});

describe("TallyClient against servers that send only grpc-status-details-bin", () => {
  const servers: grpc.Server[] = [];
  let client: TallyClient | undefined;

  afterEach(async () => {
    await client?.close();
    client = undefined;
    for (const server of servers.splice(0)) server.forceShutdown();
  });

  type Handlers = Partial<Record<"NodeAdd" | "ShardBackup", grpc.UntypedHandleCall>>;

  /** An AdminService on 127.0.0.1 with these handlers; every other method is UNIMPLEMENTED. */
  async function adminServer(handlers: Handlers): Promise<string> {
    const server = new grpc.Server();
    const service = tallyProto().AdminService.service;
    const unimplemented = (_call: unknown, callback?: grpc.sendUnaryData<unknown>): void =>
      callback?.({ code: grpc.status.UNIMPLEMENTED, details: "not in this test" });
    server.addService(
      service,
      Object.fromEntries(Object.keys(service).map((name) => [name, handlers[name as keyof Handlers] ?? unimplemented])),
    );
    servers.push(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    return `127.0.0.1:${port}`;
  }

  function standardOnlyError(status: StatusToEncode): grpc.ServiceError {
    const metadata = new grpc.Metadata();
    metadata.set(STATUS_DETAILS_METADATA_KEY, encodeStatusByReflection(status));
    return Object.assign(new Error(status.message), { code: status.code, details: status.message, metadata });
  }

  const notLeader = (leaderAddress: string): grpc.ServiceError =>
    standardOnlyError({
      code: grpc.status.UNAVAILABLE,
      message: "not the metadata leader",
      errorInfo: { reason: "NOT_LEADER", domain: "tally.dev", metadata: { leader_id: "2", leader_address: leaderAddress } },
    });

  it("follows the NOT_LEADER leader_address of a unary admin call", async () => {
    const calls: string[] = [];
    const leader = await adminServer({
      NodeAdd: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        calls.push("leader");
        callback(null, { summary: "added node 4", operationId: "1", version: "2" });
      },
    });
    const follower = await adminServer({
      NodeAdd: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        calls.push("follower");
        callback(notLeader(leader));
      },
    });
    client = new TallyClient({ endpoints: [follower], deadlineMs: 5_000 });
    await expect(client.admin("NodeAdd", { nodeId: "4" })).resolves.toMatchObject({ summary: "added node 4" });
    expect(calls).toEqual(["follower", "leader"]);
  });

  it("throws the typed error of a failed server stream, hint included", async () => {
    const follower = await adminServer({
      ShardBackup: (call: grpc.ServerWritableStream<unknown, unknown>) => call.emit("error", notLeader("127.0.0.1:7009")),
    });
    client = new TallyClient({ endpoints: [follower], deadlineMs: 5_000 });
    const stream = client.adminStream("ShardBackup", { shardId: 1 }, follower);
    const failure = await stream.next().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(NotLeaderError);
    expect(failure).toMatchObject({ leaderAddress: "127.0.0.1:7009", message: "not the metadata leader" });
  });

  it("keeps RetryInfo on OVERLOADED", async () => {
    const node = await adminServer({
      NodeAdd: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        callback(
          standardOnlyError({
            code: grpc.status.RESOURCE_EXHAUSTED,
            message: "busy",
            errorInfo: { reason: "OVERLOADED", domain: "tally.dev", metadata: {} },
            retryDelay: { seconds: 0, nanos: 75_000_000 },
          }),
        ),
    });
    client = new TallyClient({ endpoints: [node], deadlineMs: 5_000 });
    const failure = await client.admin("NodeAdd", { nodeId: "4" }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(OverloadedError);
    expect((failure as OverloadedError).retryAfterMs).toBe(75);
  });
});
