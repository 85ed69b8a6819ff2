/**
 * The protobuf wire format by hand, for the few fixed messages tally encodes without a generated
 * codec: google.rpc.Status and its details (google-rpc-status.ts) and gRPC server reflection
 * (src/server/rpc/reflection.ts). Varints, length-delimited fields and skipping unknown fields;
 * malformed input throws WireFormatError.
 */
import { assert } from "../util/assert.js";

/** Bytes that are not the message they were read as. */
export class WireFormatError extends Error {
  override name = "WireFormatError";
}

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LENGTH_DELIMITED = 2;
export const WIRE_FIXED32 = 5;
const VARINT_BYTES_MAX = 10;
const UINT64_MASK = (1n << 64n) - 1n;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

export class ProtoWriter {
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

export class ProtoReader {
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
export function readFields(
  bytes: Uint8Array,
  what: string,
  onField: (reader: ProtoReader, field: number, wireType: number) => boolean,
): void {
  const reader = new ProtoReader(bytes, what);
  while (!reader.done()) {
    const { field, wireType } = reader.tag();
    if (!onField(reader, field, wireType)) reader.skip(wireType);
  }
}
