/**
 * The standard gRPC rich error model on the wire: google.rpc.Status in the trailer
 * `grpc-status-details-bin`, with google.protobuf.Any details, of which tally sends two kinds,
 * google.rpc.ErrorInfo and google.rpc.RetryInfo (a google.protobuf.Duration). The definitions are
 * proto/google/rpc/status.proto and error_details.proto; the field numbers below are theirs.
 *
 * Encoded and decoded by hand because @grpc/proto-loader hands out codecs only for RPC methods
 * (these messages are in none), and protobufjs, which could, is not a declared dependency of
 * tally. Five messages of varints, strings, bytes and one map are a short, fixed wire format;
 * test/unit/rich-error-details.test.ts checks it against protobufjs reflection over the .proto
 * files, and test/integration/rich-error-status.test.ts against Python's protobuf and grpcio.
 *
 * Encoding is canonical proto3: fields at their default are left out, map entries in insertion
 * order. Decoding is lenient the way protobuf is: unknown fields of any wire type but groups are
 * skipped and the last occurrence of a singular field wins (protobuf would merge a message field
 * sent twice; no encoder does that). Malformed input throws WireFormatError.
 */
import { assert } from "../util/assert.js";
import { INT64_MAX, INT64_MIN } from "../util/int64.js";
import { ProtoWriter, readFields, WIRE_LENGTH_DELIMITED, WIRE_VARINT } from "./proto-wire.js";

export { WireFormatError } from "./proto-wire.js";

export const STATUS_DETAILS_METADATA_KEY = "grpc-status-details-bin";
export const ERROR_INFO_TYPE_URL = "type.googleapis.com/google.rpc.ErrorInfo";
export const RETRY_INFO_TYPE_URL = "type.googleapis.com/google.rpc.RetryInfo";

/** google.protobuf.Any { string type_url = 1; bytes value = 2; } */
export interface RpcAny {
  typeUrl: string;
  value: Uint8Array;
}

/** google.rpc.Status { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; } */
export interface RpcStatus {
  code: number;
  message: string;
  details: RpcAny[];
}

/** google.rpc.ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; } */
export interface RpcErrorInfo {
  reason: string;
  domain: string;
  /** A Map, not an object: a key such as "__proto__" from the wire stays an ordinary key. */
  metadata: Map<string, string>;
}

/** google.protobuf.Duration { int64 seconds = 1; int32 nanos = 2; } */
export interface RpcDuration {
  seconds: bigint;
  nanos: number;
}

/** google.rpc.RetryInfo { google.protobuf.Duration retry_delay = 1; } */
export interface RpcRetryInfo {
  retryDelay: RpcDuration;
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
/** Duration.nanos: the fraction of a second, same sign as seconds (google/protobuf/duration.proto). */
const NANOS_PER_SECOND = 1_000_000_000;

export function encodeRpcStatus(status: RpcStatus): Buffer {
  assert(
    Number.isInteger(status.code) && status.code >= INT32_MIN && status.code <= INT32_MAX,
    `Status.code ${status.code} is not an int32`,
  );
  const writer = new ProtoWriter().varint(1, BigInt(status.code)).string(2, status.message);
  for (const detail of status.details) {
    writer.bytes(3, new ProtoWriter().string(1, detail.typeUrl).bytes(2, detail.value).finish());
  }
  return writer.finish();
}

export function decodeRpcStatus(bytes: Uint8Array): RpcStatus {
  const status: RpcStatus = { code: 0, message: "", details: [] };
  readFields(bytes, "google.rpc.Status", (reader, field, wireType) => {
    if (field === 1) {
      reader.expect(WIRE_VARINT, wireType, field);
      status.code = reader.int32();
    } else if (field === 2) {
      reader.expect(WIRE_LENGTH_DELIMITED, wireType, field);
      status.message = reader.string();
    } else if (field === 3) {
      reader.expect(WIRE_LENGTH_DELIMITED, wireType, field);
      status.details.push(decodeAny(reader.lengthDelimited()));
    } else {
      return false;
    }
    return true;
  });
  return status;
}

function decodeAny(bytes: Uint8Array): RpcAny {
  const any: RpcAny = { typeUrl: "", value: new Uint8Array(0) };
  readFields(bytes, "google.protobuf.Any", (reader, field, wireType) => {
    if (field === 1) {
      reader.expect(WIRE_LENGTH_DELIMITED, wireType, field);
      any.typeUrl = reader.string();
    } else if (field === 2) {
      reader.expect(WIRE_LENGTH_DELIMITED, wireType, field);
      any.value = reader.lengthDelimited();
    } else {
      return false;
    }
    return true;
  });
  return any;
}

export function encodeErrorInfoDetail(info: RpcErrorInfo): RpcAny {
  const writer = new ProtoWriter().string(1, info.reason).string(2, info.domain);
  // A map field is a repeated MetadataEntry { string key = 1; string value = 2; }.
  for (const [key, value] of info.metadata) writer.bytes(3, new ProtoWriter().string(1, key).string(2, value).finish());
  return { typeUrl: ERROR_INFO_TYPE_URL, value: writer.finish() };
}

export function decodeErrorInfoDetail(bytes: Uint8Array): RpcErrorInfo {
  const info: RpcErrorInfo = { reason: "", domain: "", metadata: new Map() };
  readFields(bytes, "google.rpc.ErrorInfo", (reader, field, wireType) => {
    if (field === 1) {
      reader.expect(WIRE_LENGTH_DELIMITED, wireType, field);
      info.reason = reader.string();
    } else if (field === 2) {
      reader.expect(WIRE_LENGTH_DELIMITED, wireType, field);
      info.domain = reader.string();
    } else if (field === 3) {
      reader.expect(WIRE_LENGTH_DELIMITED, wireType, field);
      const entry = { key: "", value: "" };
      readFields(reader.lengthDelimited(), "google.rpc.ErrorInfo.MetadataEntry", (entryReader, entryField, entryWireType) => {
        if (entryField !== 1 && entryField !== 2) return false;
        entryReader.expect(WIRE_LENGTH_DELIMITED, entryWireType, entryField);
        entry[entryField === 1 ? "key" : "value"] = entryReader.string();
        return true;
      });
      // A repeated key: the last entry wins, as in every protobuf runtime.
      info.metadata.set(entry.key, entry.value);
    } else {
      return false;
    }
    return true;
  });
  return info;
}

export function encodeRetryInfoDetail(info: RpcRetryInfo): RpcAny {
  const { seconds, nanos } = info.retryDelay;
  assert(seconds >= INT64_MIN && seconds <= INT64_MAX, "Duration.seconds is not an int64");
  assert(Number.isInteger(nanos) && Math.abs(nanos) < NANOS_PER_SECOND, "Duration.nanos must be within ±999,999,999");
  assert(seconds === 0n || nanos === 0 || seconds > 0n === nanos > 0, "Duration.seconds and nanos must have the same sign");
  const duration = new ProtoWriter().varint(1, seconds).varint(2, BigInt(nanos)).finish();
  // retry_delay is a message field: present (possibly empty) whenever RetryInfo is sent.
  return { typeUrl: RETRY_INFO_TYPE_URL, value: new ProtoWriter().bytes(1, duration).finish() };
}

export function decodeRetryInfoDetail(bytes: Uint8Array): RpcRetryInfo {
  const info: RpcRetryInfo = { retryDelay: { seconds: 0n, nanos: 0 } };
  readFields(bytes, "google.rpc.RetryInfo", (reader, field, wireType) => {
    if (field !== 1) return false;
    reader.expect(WIRE_LENGTH_DELIMITED, wireType, field);
    const delay: RpcDuration = { seconds: 0n, nanos: 0 };
    readFields(reader.lengthDelimited(), "google.protobuf.Duration", (durationReader, durationField, durationWireType) => {
      if (durationField !== 1 && durationField !== 2) return false;
      durationReader.expect(WIRE_VARINT, durationWireType, durationField);
      if (durationField === 1) delay.seconds = durationReader.int64();
      else delay.nanos = durationReader.int32();
      return true;
    });
    info.retryDelay = delay;
    return true;
  });
  return info;
}
