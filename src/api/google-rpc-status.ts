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

/** Bytes that are not the message they were read as. */
export class WireFormatError extends Error {
  override name = "WireFormatError";
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;
const VARINT_BYTES_MAX = 10;
const UINT64_MASK = (1n << 64n) - 1n;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
/** Duration.nanos: the fraction of a second, same sign as seconds (google/protobuf/duration.proto). */
const NANOS_PER_SECOND = 1_000_000_000;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];

  /** int32 and int64 alike: a negative value is its 64-bit two's complement (10 bytes). */
  varint(field: number, value: bigint): this {
    if (value === 0n) return this;
    this.tag(field, WIRE_VARINT);
    this.rawVarint(value & UINT64_MASK);
    return this;
  }

  string(field: number, text: string): this {
    return text === "" ? this : this.bytes(field, utf8.encode(text));
  }

  /** Always written: an embedded message or a map entry is present even when empty. */
  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LENGTH_DELIMITED);
    this.rawVarint(BigInt(value.length));
    this.chunks.push(value);
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks);
  }

  private tag(field: number, wireType: number): void {
    assert(Number.isInteger(field) && field >= 1 && field < 2 ** 29, `bad field number ${field}`);
    this.rawVarint(BigInt(field * 8 + wireType));
  }

  private rawVarint(value: bigint): void {
    assert(value >= 0n && value <= UINT64_MASK, "varint out of uint64 range");
    const out: number[] = [];
    let rest = value;
    while (rest >= 0x80n) {
      out.push(Number(rest & 0x7fn) | 0x80);
      rest >>= 7n;
    }
    out.push(Number(rest));
    this.chunks.push(Uint8Array.from(out));
  }
}

class ProtoReader {
  private position = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {}

  done(): boolean {
    return this.position >= this.bytes.length;
  }

  /** The next field's number and wire type. */
  tag(): { field: number; wireType: number } {
    const tag = this.varint();
    const field = Number(tag >> 3n);
    if (field === 0 || field >= 2 ** 29) throw this.malformed(`field number ${field}`);
    return { field, wireType: Number(tag & 7n) };
  }

  /** An unsigned 64-bit varint. */
  varint(): bigint {
    let value = 0n;
    for (let i = 0; i < VARINT_BYTES_MAX; i++) {
      if (this.position >= this.bytes.length) throw this.malformed("truncated varint");
      const byte = this.bytes[this.position++]!;
      value |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if ((byte & 0x80) === 0) return value & UINT64_MASK;
    }
    throw this.malformed("varint longer than 10 bytes");
  }

  /** int32 as protobuf writes it: sign-extended to 64 bits; decoders keep the low 32 bits. */
  int32(): number {
    return Number(BigInt.asIntN(32, this.varint()));
  }

  int64(): bigint {
    return BigInt.asIntN(64, this.varint());
  }

  lengthDelimited(): Uint8Array {
    const length = this.varint();
    if (length > BigInt(this.bytes.length - this.position)) throw this.malformed(`length ${length} past the end`);
    const start = this.position;
    this.position += Number(length);
    return this.bytes.subarray(start, this.position);
  }

  string(): string {
    try {
      return utf8Strict.decode(this.lengthDelimited());
    } catch (error) {
      if (error instanceof WireFormatError) throw error;
      throw this.malformed("string field is not UTF-8");
    }
  }

  /** A field of the expected wire type, or a malformed message. */
  expect(wireType: number, actual: number, field: number): void {
    if (actual !== wireType) throw this.malformed(`field ${field} has wire type ${actual}, want ${wireType}`);
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.advance(8);
        return;
      case WIRE_LENGTH_DELIMITED:
        this.lengthDelimited();
        return;
      case WIRE_FIXED32:
        this.advance(4);
        return;
      default:
        // 3 and 4 are proto2 groups, which none of these messages can hold; 6 and 7 do not exist.
        throw this.malformed(`wire type ${wireType}`);
    }
  }

  private advance(count: number): void {
    if (this.bytes.length - this.position < count) throw this.malformed("truncated fixed-width field");
    this.position += count;
  }

  private malformed(problem: string): WireFormatError {
    return new WireFormatError(`${this.what}: ${problem} at byte ${this.position}`);
  }
}

/** Reads every field of `bytes`, handing each to `onField`, which returns false for one it does not know. */
function readFields(bytes: Uint8Array, what: string, onField: (reader: ProtoReader, field: number, wireType: number) => boolean): void {
  const reader = new ProtoReader(bytes, what);
  while (!reader.done()) {
    const { field, wireType } = reader.tag();
    if (!onField(reader, field, wireType)) reader.skip(wireType);
  }
}

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
