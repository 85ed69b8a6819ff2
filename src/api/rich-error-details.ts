/**
 * tally's ErrorInfo in the standard rich error model, so a client in any language reads it with
 * its gRPC library's status helpers (Python grpcio-status `rpc_status.from_call`, Go
 * `status.FromError(err).Details()`, Java `StatusProto.fromThrowable`). docs/errors-wire.md is
 * the contract; it and this file change together.
 *
 *   Status.code      the call's gRPC status (status-codes.ts); Status.message the call's message
 *   ErrorInfo        reason = the tally code ("NOT_LEADER"), domain = "tally.dev",
 *                    metadata = the fields of ERROR_METADATA_KEYS that are set, as strings
 *   RetryInfo        retry_delay = retry_after_ms, only when it is > 0
 *
 * Invariant: decoding the encoding of an ErrorInfo gives it back (with 64-bit fields in canonical
 * decimal), so a client that reads only this trailer acts exactly as one reading tally-error-bin.
 * A key is left out only when its field is at the default that decoding restores.
 */
import { assert } from "../util/assert.js";
import { UINT64_MAX } from "../util/int64.js";
import {
  ERROR_INFO_TYPE_URL,
  RETRY_INFO_TYPE_URL,
  WireFormatError,
  decodeErrorInfoDetail,
  decodeRetryInfoDetail,
  decodeRpcStatus,
  encodeErrorInfoDetail,
  encodeRetryInfoDetail,
  encodeRpcStatus,
  type RpcDuration,
  type RpcStatus,
} from "./google-rpc-status.js";
import type { ErrorInfoMessage } from "./proto.js";

export { STATUS_DETAILS_METADATA_KEY } from "./google-rpc-status.js";

/** ErrorInfo.domain of tally's errors; an ErrorInfo of any other domain is not tally's. */
export const TALLY_ERROR_DOMAIN = "tally.dev";

/**
 * The ErrorInfo.metadata keys, in the order they are written. shard_id 0 means "no shard" (shard
 * ids start at 1) and epoch 0 "unknown", so both are left out at 0; current_version is always
 * there on VERSION_MISMATCH, where 0 says "the counter does not exist".
 */
export const ERROR_METADATA_KEYS = ["leader_id", "leader_address", "shard_id", "current_epoch", "current_version", "op_index"] as const;
export type ErrorMetadataKey = (typeof ERROR_METADATA_KEYS)[number];

const UINT32_MAX = 2 ** 32 - 1;
const MS_PER_SECOND = 1000;
const NANOS_PER_MS = 1_000_000;
const DECIMAL = /^(0|[1-9][0-9]*)$/;

function metadataOf(info: ErrorInfoMessage): Map<ErrorMetadataKey, string> {
  const metadata = new Map<ErrorMetadataKey, string>();
  if (info.leaderId !== "") metadata.set("leader_id", info.leaderId);
  if (info.leaderAddress !== "") metadata.set("leader_address", info.leaderAddress);
  if (info.shardId !== 0) metadata.set("shard_id", String(info.shardId));
  const epoch = BigInt(info.currentEpoch || "0");
  if (epoch !== 0n) metadata.set("current_epoch", epoch.toString());
  const version = BigInt(info.currentVersion || "0");
  if (version !== 0n || info.code === "VERSION_MISMATCH") metadata.set("current_version", version.toString());
  if (info.hasOpIndex) metadata.set("op_index", String(info.opIndex));
  return metadata;
}

function retryDelayOf(retryAfterMs: number): RpcDuration {
  return { seconds: BigInt(Math.floor(retryAfterMs / MS_PER_SECOND)), nanos: (retryAfterMs % MS_PER_SECOND) * NANOS_PER_MS };
}

/** The google.rpc.Status for a failed call with status `grpcCode` and this ErrorInfo. */
export function errorInfoToRpcStatus(info: ErrorInfoMessage, grpcCode: number): RpcStatus {
  assert(info.code !== "", "ErrorInfo.code is empty: a reason is required");
  const details = [encodeErrorInfoDetail({ reason: info.code, domain: TALLY_ERROR_DOMAIN, metadata: metadataOf(info) })];
  // Whole milliseconds, as ErrorInfo.retry_after_ms (a uint32) carries them in tally-error-bin.
  const retryAfterMs = Math.floor(info.retryAfterMs);
  if (retryAfterMs > 0) details.push(encodeRetryInfoDetail({ retryDelay: retryDelayOf(retryAfterMs) }));
  return { code: grpcCode, message: info.message, details };
}

/** The value of trailer grpc-status-details-bin. */
export function encodeStatusDetails(info: ErrorInfoMessage, grpcCode: number): Buffer {
  return encodeRpcStatus(errorInfoToRpcStatus(info, grpcCode));
}

function parseUnsigned(key: string, text: string, max: bigint): bigint {
  const value = DECIMAL.test(text) ? BigInt(text) : undefined;
  if (value === undefined || value > max)
    throw new WireFormatError(`google.rpc.ErrorInfo metadata ${key}: ${JSON.stringify(text)} is not a decimal in 0..${max}`);
  return value;
}

/** Milliseconds, rounded up (waiting a little longer is always within the hint), as a uint32. */
function retryAfterMsOf(delay: RpcDuration): number {
  if (delay.seconds < 0n || delay.nanos < 0 || (delay.seconds === 0n && delay.nanos === 0)) return 0;
  const ms = delay.seconds * BigInt(MS_PER_SECOND) + BigInt(Math.ceil(delay.nanos / NANOS_PER_MS));
  return ms > BigInt(UINT32_MAX) ? UINT32_MAX : Number(ms);
}

/**
 * The tally ErrorInfo a google.rpc.Status carries: its first ErrorInfo detail of domain tally.dev,
 * with the Status message and the first RetryInfo. Undefined when there is no such detail (the
 * status came from elsewhere: a proxy, another service). Throws WireFormatError when a detail or a
 * metadata value is malformed: a wrong hint must never be acted on.
 */
export function errorInfoFromRpcStatus(status: RpcStatus): ErrorInfoMessage | undefined {
  const errorDetail = status.details
    .map((detail) => (detail.typeUrl === ERROR_INFO_TYPE_URL ? decodeErrorInfoDetail(detail.value) : undefined))
    .find((detail) => detail?.domain === TALLY_ERROR_DOMAIN);
  if (errorDetail === undefined) return undefined;
  const retryDetail = status.details.find((detail) => detail.typeUrl === RETRY_INFO_TYPE_URL);
  const metadata = errorDetail.metadata;
  const opIndex = metadata.get("op_index");
  return {
    code: errorDetail.reason,
    message: status.message,
    leaderId: metadata.get("leader_id") ?? "",
    leaderAddress: metadata.get("leader_address") ?? "",
    shardId: Number(parseUnsigned("shard_id", metadata.get("shard_id") ?? "0", BigInt(UINT32_MAX))),
    currentEpoch: parseUnsigned("current_epoch", metadata.get("current_epoch") ?? "0", UINT64_MAX).toString(),
    currentVersion: parseUnsigned("current_version", metadata.get("current_version") ?? "0", UINT64_MAX).toString(),
    retryAfterMs: retryDetail === undefined ? 0 : retryAfterMsOf(decodeRetryInfoDetail(retryDetail.value).retryDelay),
    hasOpIndex: opIndex !== undefined,
    opIndex: opIndex === undefined ? 0 : Number(parseUnsigned("op_index", opIndex, BigInt(UINT32_MAX))),
  };
}

/** The tally ErrorInfo in a grpc-status-details-bin value; see errorInfoFromRpcStatus. */
export function decodeStatusDetails(bytes: Uint8Array): ErrorInfoMessage | undefined {
  return errorInfoFromRpcStatus(decodeRpcStatus(bytes));
}
