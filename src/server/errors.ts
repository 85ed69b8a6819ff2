/**
 * The one place where typed errors become gRPC statuses (STYLE model 5). The precise code travels
 * in an ErrorInfo (proto) -- in the Pipeline stream's error result, and on unary calls as the binary
 * trailer `tally-error-bin` -- so the client can act on it (leader hint, current epoch, op index).
 */
import * as grpc from "@grpc/grpc-js";
import { AssertionError } from "../util/assert.js";
import {
  NotLeaderError,
  OverloadedError,
  TallyError,
  VersionMismatchError,
  WrongShardError,
  type ErrorCode,
} from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { errorInfoMessage } from "./proto.js";

export const ERROR_METADATA_KEY = "tally-error-bin";

export const grpcStatusOf: Record<ErrorCode, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  NOT_LEADER: grpc.status.UNAVAILABLE,
  WRONG_SHARD: grpc.status.FAILED_PRECONDITION,
  AMBIGUOUS: grpc.status.DEADLINE_EXCEEDED,
  OVERLOADED: grpc.status.RESOURCE_EXHAUSTED,
  OUT_OF_RANGE: grpc.status.OUT_OF_RANGE,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  VERSION_MISMATCH: grpc.status.ABORTED,
  SESSION_EXPIRED: grpc.status.FAILED_PRECONDITION,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  NOT_FOUND: grpc.status.NOT_FOUND,
  INTERNAL: grpc.status.INTERNAL,
  CORRUPTION: grpc.status.DATA_LOSS,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
};

export interface ErrorInfo {
  code: string;
  message: string;
  leaderId: string;
  leaderAddress: string;
  shardId: number;
  currentEpoch: string;
  currentVersion: string;
  retryAfterMs: number;
  hasOpIndex: boolean;
  opIndex: number;
}

/** Any thrown value as an ErrorInfo; unexpected errors are logged and reported as INTERNAL. */
export function errorInfoOf(error: unknown, log: Logger): ErrorInfo {
  const info: ErrorInfo = {
    code: "INTERNAL",
    message: "internal error",
    leaderId: "",
    leaderAddress: "",
    shardId: 0,
    currentEpoch: "0",
    currentVersion: "0",
    retryAfterMs: 0,
    hasOpIndex: false,
    opIndex: 0,
  };
  if (error instanceof TallyError) {
    info.code = error.code;
    info.message = error.message;
    if (error instanceof NotLeaderError) {
      info.leaderId = error.leaderId ?? "";
      info.leaderAddress = error.leaderAddress ?? "";
      info.shardId = error.shardId;
    } else if (error instanceof WrongShardError) {
      info.shardId = error.shardId;
      info.currentEpoch = String(error.currentEpoch);
    } else if (error instanceof VersionMismatchError) {
      info.currentVersion = String(error.currentVersion);
    } else if (error instanceof OverloadedError) {
      info.retryAfterMs = error.retryAfterMs;
    }
    const opIndex = (error as { opIndex?: number }).opIndex;
    if (opIndex !== undefined) {
      info.hasOpIndex = true;
      info.opIndex = opIndex;
    }
  } else {
    if (error instanceof AssertionError) log.error({ err: error }, "assertion failed while serving a request");
    else log.error({ err: error }, "unexpected error while serving a request");
    info.message = `internal error: ${(error as Error)?.message ?? String(error)}`;
  }
  return info;
}

export function toServiceError(error: unknown, log: Logger): Partial<grpc.StatusObject> {
  const info = errorInfoOf(error, log);
  const metadata = new grpc.Metadata();
  const type = errorInfoMessage();
  metadata.set(ERROR_METADATA_KEY, Buffer.from(type.encode(type.fromObject(info)).finish()));
  return { code: grpcStatusOf[info.code as ErrorCode] ?? grpc.status.INTERNAL, details: `${info.code}: ${info.message}`, metadata };
}
