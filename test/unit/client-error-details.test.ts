import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import {
  ERROR_DETAILS_METADATA_KEY,
  decodeErrorInfo,
  decodeServiceError,
  encodeErrorInfo,
  errorInfoFromMetadata,
  errorInfoToError,
  errorInfoToMetadata,
  errorToErrorInfo,
  errorToServiceError,
} from "../../src/api/error-details.js";
import { tallyProto } from "../../src/api/proto.js";
import { ERROR_CODES, GRPC_STATUS_BY_ERROR_CODE, errorCodeForGrpcStatus } from "../../src/api/status-codes.js";
import {
  AmbiguousError,
  CorruptionError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotLeaderError,
  OutOfRangeError,
  OverloadedError,
  SeqAcknowledgedError,
  SessionExpiredError,
  TallyError,
  UnavailableError,
  VersionMismatchError,
  WrongShardError,
} from "../../src/util/errors.js";

describe("status codes", () => {
  it("maps every tally code to the agreed gRPC status", () => {
    expect(GRPC_STATUS_BY_ERROR_CODE).toEqual({
      INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
      NOT_LEADER: grpc.status.UNAVAILABLE,
      WRONG_SHARD: grpc.status.FAILED_PRECONDITION,
      AMBIGUOUS: grpc.status.DEADLINE_EXCEEDED,
      OVERLOADED: grpc.status.RESOURCE_EXHAUSTED,
      OUT_OF_RANGE: grpc.status.OUT_OF_RANGE,
      FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
      VERSION_MISMATCH: grpc.status.ABORTED,
      SESSION_EXPIRED: grpc.status.FAILED_PRECONDITION,
      SEQ_ACKNOWLEDGED: grpc.status.FAILED_PRECONDITION,
      UNAVAILABLE: grpc.status.UNAVAILABLE,
      TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
      NOT_FOUND: grpc.status.NOT_FOUND,
      INTERNAL: grpc.status.INTERNAL,
      CORRUPTION: grpc.status.DATA_LOSS,
      PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
      UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
    });
    expect(ERROR_CODES).toHaveLength(17);
  });

  it("falls back from a bare status to a code", () => {
    expect(errorCodeForGrpcStatus(grpc.status.UNAVAILABLE)).toBe("UNAVAILABLE");
    expect(errorCodeForGrpcStatus(grpc.status.DEADLINE_EXCEEDED)).toBe("TIMEOUT");
    expect(errorCodeForGrpcStatus(grpc.status.DATA_LOSS)).toBe("CORRUPTION");
    expect(errorCodeForGrpcStatus(grpc.status.UNIMPLEMENTED)).toBe("INTERNAL");
  });
});

describe("ErrorInfo", () => {
  const full = {
    code: "NOT_LEADER",
    message: "ask node 2",
    leaderId: "2",
    leaderAddress: "127.0.0.1:7002",
    shardId: 7,
    currentEpoch: "18446744073709551615",
    currentVersion: "9223372036854775808",
    retryAfterMs: 25,
    hasOpIndex: true,
    opIndex: 9_999,
  };

  it("round-trips through its binary encoding, 64-bit fields exact", () => {
    const bytes = encodeErrorInfo(full);
    expect(decodeErrorInfo(bytes)).toEqual(full);
    expect(decodeErrorInfo(encodeErrorInfo({ code: "INTERNAL" }))).toMatchObject({ code: "INTERNAL", message: "", opIndex: 0 });
  });

  it("encodes exactly what the Pipeline codec puts in PipelineResponse.error", () => {
    const pipeline = (
      tallyProto().packageDefinition["tally.v1.CounterService"] as unknown as Record<
        string,
        { responseSerialize(v: object): Buffer; responseDeserialize(b: Buffer): { error: object } }
      >
    )["Pipeline"]!;
    const framed = pipeline.responseSerialize({ id: "42", error: full });
    const bytes = encodeErrorInfo(full);
    // The framed reply ends with the ErrorInfo bytes; decoding them alone gives the same object.
    expect(framed.subarray(framed.length - bytes.length).equals(bytes)).toBe(true);
    expect(pipeline.responseDeserialize(framed).error).toEqual(decodeErrorInfo(bytes));
  });

  it("travels in metadata under tally-error-bin", () => {
    const metadata = errorInfoToMetadata(full);
    expect(metadata.get(ERROR_DETAILS_METADATA_KEY)[0]).toBeInstanceOf(Buffer);
    expect(errorInfoFromMetadata(metadata)).toEqual(full);
    expect(errorInfoFromMetadata(new grpc.Metadata())).toBeUndefined();
    const garbage = new grpc.Metadata();
    garbage.set(ERROR_DETAILS_METADATA_KEY, Buffer.from([0xff, 0xff, 0xff]));
    expect(errorInfoFromMetadata(garbage)).toBeUndefined();
  });

  it("becomes the typed error class with its details", () => {
    const notLeader = errorInfoToError(full);
    expect(notLeader).toBeInstanceOf(NotLeaderError);
    expect(notLeader).toMatchObject({ leaderId: "2", leaderAddress: "127.0.0.1:7002", shardId: 7, message: "ask node 2" });
    expect(errorInfoToError({ code: "NOT_LEADER" })).toMatchObject({ leaderId: undefined, leaderAddress: undefined });
    expect(errorInfoToError({ code: "WRONG_SHARD", shardId: 3, currentEpoch: "12" })).toMatchObject({ shardId: 3, currentEpoch: 12 });
    expect(errorInfoToError({ code: "WRONG_SHARD" })).toBeInstanceOf(WrongShardError);
    expect(errorInfoToError({ code: "VERSION_MISMATCH", currentVersion: "77" })).toMatchObject({ currentVersion: 77 });
    expect(errorInfoToError({ code: "OVERLOADED", retryAfterMs: 40 })).toMatchObject({ retryAfterMs: 40 });
    expect(errorInfoToError({ code: "OVERLOADED" })).toMatchObject({ retryAfterMs: 10 });
    const classes: Array<[string, new (...args: never[]) => TallyError]> = [
      ["INVALID_ARGUMENT", InvalidArgumentError],
      ["AMBIGUOUS", AmbiguousError],
      ["OUT_OF_RANGE", OutOfRangeError],
      ["FAILED_PRECONDITION", FailedPreconditionError],
      ["SESSION_EXPIRED", SessionExpiredError],
      ["SEQ_ACKNOWLEDGED", SeqAcknowledgedError],
      ["UNAVAILABLE", UnavailableError],
      ["CORRUPTION", CorruptionError],
      ["VERSION_MISMATCH", VersionMismatchError],
      ["OVERLOADED", OverloadedError],
    ];
    for (const [code, errorClass] of classes) expect(errorInfoToError({ code })).toBeInstanceOf(errorClass);
    expect(errorInfoToError({ code: "TIMEOUT", message: "slow" })).toMatchObject({ code: "TIMEOUT", message: "slow" });
    expect(errorInfoToError({ code: "BRAND_NEW", message: "x" })).toMatchObject({ code: "INTERNAL" });
  });

  it("is built from errors, inverse of errorInfoToError", () => {
    const samples: TallyError[] = [
      new NotLeaderError("no", "3", "127.0.0.1:7003", 2),
      new WrongShardError("moved", 4, 9),
      new VersionMismatchError("stale", 41),
      new OverloadedError("busy", 250),
      new OutOfRangeError("overflow"),
      new InvalidArgumentError("bad"),
    ];
    for (const error of samples) {
      const back = errorInfoToError(decodeErrorInfo(encodeErrorInfo(errorToErrorInfo(error))));
      expect(back.constructor).toBe(error.constructor);
      expect({ ...back, message: back.message }).toEqual({ ...error, message: error.message });
    }
    expect(errorToErrorInfo(new OutOfRangeError("overflow"), { opIndex: 3 })).toMatchObject({ hasOpIndex: true, opIndex: 3 });
    expect(errorToErrorInfo(Object.assign(new OutOfRangeError("o"), { opIndex: 5 }))).toMatchObject({ hasOpIndex: true, opIndex: 5 });
    // A plain Error is a bug on the sender's side: INTERNAL, never something a client acts on.
    expect(errorToErrorInfo(new TypeError("boom"))).toMatchObject({ code: "INTERNAL", message: "internal error: boom" });
  });

  it("makes and reads unary service errors", () => {
    const serviceError = errorToServiceError(new NotLeaderError("no", "1", "a:1", 5));
    expect(serviceError.code).toBe(grpc.status.UNAVAILABLE);
    const decoded = decodeServiceError(serviceError);
    expect(decoded.error).toBeInstanceOf(NotLeaderError);
    expect(decoded.info?.leaderAddress).toBe("a:1");
    // Without ErrorInfo (connection refused): the status decides, the gRPC error is the cause.
    const bare = decodeServiceError({ code: grpc.status.UNAVAILABLE, details: "connect ECONNREFUSED", metadata: new grpc.Metadata() });
    expect(bare.error).toBeInstanceOf(UnavailableError);
    expect(bare.info).toBeUndefined();
    expect(decodeServiceError({ code: grpc.status.OUT_OF_RANGE, details: "x" }).error).toBeInstanceOf(OutOfRangeError);
  });
});
