import * as grpc from "@grpc/grpc-js";
import { assert } from "../util/assert.js";
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
} from "../util/errors.js";
import { WireFormatError } from "./google-rpc-status.js";
import { tallyProto, type ErrorInfoMessage, type PipelineResponseMessage } from "./proto.js";
import { STATUS_DETAILS_METADATA_KEY, decodeStatusDetails, encodeStatusDetails } from "./rich-error-details.js";
import { errorCodeForGrpcStatus, grpcStatusForErrorCode, isErrorCode } from "./status-codes.js";

/**
 * ErrorInfo travels two ways: as the `error` result of a Pipeline reply, and on unary calls as
 * binary trailing metadata under this key next to the gRPC status (grpc-js
 * examples/error_handling). Both ends use the helpers below so the two can never disagree.
 * Every failed call also carries the same ErrorInfo in the standard rich error model, trailer
 * grpc-status-details-bin (rich-error-details.ts, docs/errors-wire.md), for clients in other
 * languages; a client reads it when tally-error-bin is absent.
 */
export const ERROR_DETAILS_METADATA_KEY = "tally-error-bin";
export { STATUS_DETAILS_METADATA_KEY };

export type ErrorInfo = ErrorInfoMessage;

/** Fields a server may add that the error class does not carry (which op of a batch failed). */
export interface ErrorInfoExtras {
  shardId?: number;
  opIndex?: number;
}

function emptyErrorInfo(code: string, message: string): ErrorInfo {
  return {
    code,
    message,
    leaderId: "",
    leaderAddress: "",
    shardId: 0,
    currentEpoch: "0",
    currentVersion: "0",
    retryAfterMs: 0,
    hasOpIndex: false,
    opIndex: 0,
  };
}

/** Fills defaults, so a partial ErrorInfo (from a hand-built object) reads like a decoded one. */
export function normalizeErrorInfo(info: Partial<ErrorInfo>): ErrorInfo {
  return { ...emptyErrorInfo(info.code ?? "INTERNAL", info.message ?? ""), ...info };
}

function toSafeNumber(decimal: string): number {
  // Epochs and versions are log indexes and epoch counters: far below 2^53 in any real cluster.
  // The error classes in util/errors.ts carry them as numbers.
  const value = Number(BigInt(decimal || "0"));
  return Number.isSafeInteger(value) ? value : Number.MAX_SAFE_INTEGER;
}

/** The typed error an ErrorInfo describes. Unknown codes become INTERNAL (a newer server?). */
export function errorInfoToError(partial: Partial<ErrorInfo>): TallyError {
  const info = normalizeErrorInfo(partial);
  const message = info.message || info.code;
  if (!isErrorCode(info.code)) return new TallyError("INTERNAL", `unknown error code ${info.code}: ${message}`);
  const code: ErrorCode = info.code;
  switch (code) {
    case "INVALID_ARGUMENT":
      return new InvalidArgumentError(message);
    case "NOT_LEADER":
      return new NotLeaderError(message, info.leaderId || undefined, info.leaderAddress || undefined, info.shardId);
    case "WRONG_SHARD":
      return new WrongShardError(message, info.shardId, toSafeNumber(info.currentEpoch));
    case "AMBIGUOUS":
      return new AmbiguousError(message);
    case "OVERLOADED":
      return new OverloadedError(message, info.retryAfterMs > 0 ? info.retryAfterMs : undefined);
    case "OUT_OF_RANGE":
      return new OutOfRangeError(message);
    case "FAILED_PRECONDITION":
      return new FailedPreconditionError(message);
    case "VERSION_MISMATCH":
      return new VersionMismatchError(message, toSafeNumber(info.currentVersion));
    case "SESSION_EXPIRED":
      return new SessionExpiredError(message);
    case "SEQ_ACKNOWLEDGED":
      return new SeqAcknowledgedError(message);
    case "UNAVAILABLE":
      return new UnavailableError(message);
    case "CORRUPTION":
      return new CorruptionError(message);
    case "TIMEOUT":
    case "NOT_FOUND":
    case "INTERNAL":
      return new TallyError(code, message);
    case "PERMISSION_DENIED":
      return new PermissionDeniedError(message);
    case "UNAUTHENTICATED":
      return new UnauthenticatedError(message);
  }
}

/**
 * The ErrorInfo for any thrown value. A value that is not a TallyError is a bug on the sending
 * side: it travels as INTERNAL with its message, never as something the client would act on.
 * `extras.opIndex` (or an `opIndex` number property on the error) names the failing op of a batch.
 */
export function errorToErrorInfo(err: unknown, extras: ErrorInfoExtras = {}): ErrorInfo {
  let info: ErrorInfo;
  if (err instanceof TallyError) {
    info = emptyErrorInfo(err.code, err.message);
    if (err instanceof NotLeaderError) {
      info.leaderId = err.leaderId ?? "";
      info.leaderAddress = err.leaderAddress ?? "";
      info.shardId = err.shardId;
    } else if (err instanceof WrongShardError) {
      info.shardId = err.shardId;
      info.currentEpoch = String(err.currentEpoch);
    } else if (err instanceof VersionMismatchError) {
      info.currentVersion = String(err.currentVersion);
    } else if (err instanceof OverloadedError) {
      info.retryAfterMs = err.retryAfterMs;
    }
  } else {
    const message = err instanceof Error ? err.message : String(err);
    info = emptyErrorInfo("INTERNAL", `internal error: ${message}`);
  }
  if (extras.shardId !== undefined) info.shardId = extras.shardId;
  const ownOpIndex = (err as { opIndex?: unknown } | null)?.opIndex;
  const opIndex = extras.opIndex ?? (typeof ownOpIndex === "number" ? ownOpIndex : undefined);
  if (opIndex !== undefined) {
    assert(Number.isInteger(opIndex) && opIndex >= 0, `opIndex must be a non-negative integer, got ${opIndex}`);
    info.hasOpIndex = true;
    info.opIndex = opIndex;
  }
  return info;
}

// ErrorInfo has no RPC of its own, so its codec is borrowed from PipelineResponse, whose field 6
// (`error`) is an ErrorInfo: with `id` left at its default, proto3 encodes PipelineResponse{error}
// as exactly the tag byte (6 << 3 | 2) = 0x32, a varint length, and the ErrorInfo bytes. This keeps
// the codec generated from the .proto rather than written by hand.
const ERROR_FIELD_TAG = 0x32;

function pipelineResponseCodec(): {
  serialize: (value: object) => Buffer;
  deserialize: (bytes: Buffer) => PipelineResponseMessage;
} {
  const method = tallyProto().packageDefinition["tally.v1.CounterService"] as unknown as Record<
    string,
    { responseSerialize: (value: object) => Buffer; responseDeserialize: (bytes: Buffer) => PipelineResponseMessage }
  >;
  const pipeline = method["Pipeline"];
  assert(pipeline !== undefined, "tally.proto has no CounterService.Pipeline");
  return { serialize: pipeline.responseSerialize, deserialize: pipeline.responseDeserialize };
}

function readVarint(bytes: Uint8Array, offset: number): { value: number; next: number } {
  let value = 0;
  let shift = 0;
  let position = offset;
  for (;;) {
    assert(position < bytes.length, "truncated varint");
    const byte = bytes[position]!;
    position++;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return { value, next: position };
    shift += 7;
    assert(shift < 35, "varint too long for a length");
  }
}

function writeVarint(value: number): number[] {
  assert(Number.isSafeInteger(value) && value >= 0, "varint must be a non-negative safe integer");
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return out;
}

export function encodeErrorInfo(info: Partial<ErrorInfo>): Buffer {
  const framed = pipelineResponseCodec().serialize({ error: normalizeErrorInfo(info) });
  assert(framed[0] === ERROR_FIELD_TAG, "PipelineResponse.error is no longer field 6");
  const { value: length, next } = readVarint(framed, 1);
  assert(next + length === framed.length, "PipelineResponse framing: unexpected extra fields");
  return framed.subarray(next);
}

export function decodeErrorInfo(bytes: Uint8Array): ErrorInfo {
  const framed = Buffer.concat([Buffer.from([ERROR_FIELD_TAG, ...writeVarint(bytes.length)]), bytes]);
  const decoded = pipelineResponseCodec().deserialize(framed);
  return normalizeErrorInfo(decoded.error ?? {});
}

/** Adds the ErrorInfo to (new or given) metadata, for a server's unary error reply. */
export function errorInfoToMetadata(info: Partial<ErrorInfo>, metadata = new grpc.Metadata()): grpc.Metadata {
  metadata.set(ERROR_DETAILS_METADATA_KEY, encodeErrorInfo(info));
  return metadata;
}

/**
 * The ErrorInfo in trailing metadata, if any: from tally-error-bin, else from a tally ErrorInfo in
 * grpc-status-details-bin (a server that sends only the standard trailer). Undefined if neither is
 * there or decodable.
 */
export function errorInfoFromMetadata(metadata: grpc.Metadata | undefined): ErrorInfo | undefined {
  const own = metadata?.get(ERROR_DETAILS_METADATA_KEY)[0];
  if (own !== undefined && typeof own !== "string") {
    try {
      return decodeErrorInfo(own);
    } catch {
      // Undecodable: the standard trailer may still say it.
    }
  }
  const standard = metadata?.get(STATUS_DETAILS_METADATA_KEY)[0];
  if (standard === undefined || typeof standard === "string") return undefined;
  try {
    const info = decodeStatusDetails(standard);
    return info === undefined ? undefined : normalizeErrorInfo(info);
  } catch (error) {
    if (error instanceof WireFormatError) return undefined;
    throw error;
  }
}

/**
 * What a unary server handler passes to its callback for an error: status from the one mapping,
 * the message as details, ErrorInfo as metadata, both tally-error-bin and grpc-status-details-bin
 * (whose Status repeats this code and message: grpcio-status refuses one that differs).
 * `callback(errorToServiceError(err))`.
 */
export function errorToServiceError(err: unknown, extras: ErrorInfoExtras = {}): grpc.ServiceError {
  const info = errorToErrorInfo(err, extras);
  const code = isErrorCode(info.code) ? grpcStatusForErrorCode(info.code) : grpc.status.INTERNAL;
  const serviceError = new Error(info.message) as grpc.ServiceError;
  serviceError.code = code;
  serviceError.details = info.message;
  serviceError.metadata = errorInfoToMetadata(info);
  serviceError.metadata.set(STATUS_DETAILS_METADATA_KEY, encodeStatusDetails(info, code));
  return serviceError;
}

/**
 * grpc-js's own details for a request over a size limit: refused by the server on its length prefix
 * or after decompression (stream-decoder.ts, server-interceptors.ts), or by this client before
 * sending (compression-filter.ts). A reply over this client's own receive limit reads like the
 * first, but tally's largest replies (a 10,000-entry top-K) are far below the client's 64 MiB. Not
 * "Sent message larger than max": that is the server's reply over its limit, and the request may
 * have been applied.
 */
const MESSAGE_SIZE_REFUSAL =
  /^(Received message larger than max|Received message that decompresses to a size larger than|Attempted to send message with a size larger than)/;

export interface DecodedServiceError {
  error: TallyError;
  info: ErrorInfo | undefined;
}

/**
 * The typed error for a failed unary call: the ErrorInfo when the server sent one, else a best
 * guess from the status code (connection failures, deadlines, proxies).
 */
export function decodeServiceError(err: unknown): DecodedServiceError {
  const serviceError = err as Partial<grpc.ServiceError> | null;
  const info = errorInfoFromMetadata(serviceError?.metadata);
  if (info !== undefined) return { error: errorInfoToError(info), info };
  const status = typeof serviceError?.code === "number" ? (serviceError.code as grpc.status) : grpc.status.UNKNOWN;
  const message = serviceError?.details || (err instanceof Error ? err.message : String(err));
  // grpc-js refuses a request over a message size limit itself, with RESOURCE_EXHAUSTED and no
  // ErrorInfo. That is not overload (retrying never helps): the request is too large
  // (limits.maxRequestBytes on the server) and must be split.
  const code =
    status === grpc.status.RESOURCE_EXHAUSTED && MESSAGE_SIZE_REFUSAL.test(message) ? "INVALID_ARGUMENT" : errorCodeForGrpcStatus(status);
  // Connection failures keep the gRPC error as cause: it says why (refused, reset, DNS).
  const error = code === "UNAVAILABLE" ? new UnavailableError(message, { cause: err }) : errorInfoToError({ code, message });
  return { error, info: undefined };
}
