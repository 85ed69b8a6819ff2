import { status as GrpcStatus } from "@grpc/grpc-js";
import type { ErrorCode } from "../util/errors.js";

/**
 * The one mapping from tally error codes to gRPC status codes, shared by server (which sets the
 * status) and client (which falls back to it when a reply carries no ErrorInfo). It is many to
 * one -- FAILED_PRECONDITION carries WRONG_SHARD, SESSION_EXPIRED, SEQ_ACKNOWLEDGED and FAILED_PRECONDITION -- so the
 * precise code always comes from ErrorInfo.code; the status is for generic gRPC tooling.
 *
 * NOT_LEADER is UNAVAILABLE because generic gRPC clients retry UNAVAILABLE, which is right for it;
 * AMBIGUOUS and TIMEOUT are DEADLINE_EXCEEDED because gRPC documents that status as "the operation
 * may have completed", the same contract.
 */
export const GRPC_STATUS_BY_ERROR_CODE: Readonly<Record<ErrorCode, GrpcStatus>> = Object.freeze({
  INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  NOT_LEADER: GrpcStatus.UNAVAILABLE,
  WRONG_SHARD: GrpcStatus.FAILED_PRECONDITION,
  AMBIGUOUS: GrpcStatus.DEADLINE_EXCEEDED,
  OVERLOADED: GrpcStatus.RESOURCE_EXHAUSTED,
  OUT_OF_RANGE: GrpcStatus.OUT_OF_RANGE,
  FAILED_PRECONDITION: GrpcStatus.FAILED_PRECONDITION,
  VERSION_MISMATCH: GrpcStatus.ABORTED,
  SESSION_EXPIRED: GrpcStatus.FAILED_PRECONDITION,
  SEQ_ACKNOWLEDGED: GrpcStatus.FAILED_PRECONDITION,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  INTERNAL: GrpcStatus.INTERNAL,
  CORRUPTION: GrpcStatus.DATA_LOSS,
  PERMISSION_DENIED: GrpcStatus.PERMISSION_DENIED,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
});

export const ERROR_CODES: readonly ErrorCode[] = Object.freeze(Object.keys(GRPC_STATUS_BY_ERROR_CODE) as ErrorCode[]);

export function isErrorCode(value: string): value is ErrorCode {
  return Object.prototype.hasOwnProperty.call(GRPC_STATUS_BY_ERROR_CODE, value);
}

export function grpcStatusForErrorCode(code: ErrorCode): GrpcStatus {
  return GRPC_STATUS_BY_ERROR_CODE[code];
}

/**
 * Best guess of the tally code for a status that arrived without ErrorInfo: a proxy, the gRPC
 * library itself (connection refused, deadline), or a server bug. DEADLINE_EXCEEDED maps to
 * TIMEOUT, not AMBIGUOUS: whether a timed-out call is ambiguous depends on whether it mutates,
 * which only the caller knows.
 */
export function errorCodeForGrpcStatus(status: GrpcStatus): ErrorCode {
  switch (status) {
    case GrpcStatus.INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case GrpcStatus.DEADLINE_EXCEEDED:
      return "TIMEOUT";
    case GrpcStatus.NOT_FOUND:
      return "NOT_FOUND";
    case GrpcStatus.ALREADY_EXISTS:
    case GrpcStatus.FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case GrpcStatus.PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case GrpcStatus.UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return "OVERLOADED";
    case GrpcStatus.ABORTED:
      return "VERSION_MISMATCH";
    case GrpcStatus.OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case GrpcStatus.DATA_LOSS:
      return "CORRUPTION";
    case GrpcStatus.CANCELLED:
    case GrpcStatus.UNAVAILABLE:
      return "UNAVAILABLE";
    default:
      // OK (never an error here), UNKNOWN, UNIMPLEMENTED, INTERNAL.
      return "INTERNAL";
  }
}
