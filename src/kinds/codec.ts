/**
 * What the counter-kind structures share: one versioned envelope for their encodings, LEB128
 * varints, and argument checks that throw the project's typed errors.
 *
 * Envelope: magic u8 (one per structure), format version u8, body, CRC-32 trailer over all of it.
 * `openEnvelope` verifies the CRC before anything in the body is read, so a flipped or missing
 * byte is CorruptionError up front, and each decoder then re-validates every invariant of its
 * structure (a buffer with a valid CRC but made by a buggy writer is rejected, not believed).
 */
import { CorruptionError, InvalidArgumentError, OutOfRangeError } from "../util/errors.js";
import { ByteReader, ByteWriter } from "../shard/binary.js";
import { INT64_MAX, INT64_MIN } from "../util/int64.js";

export const KIND_MAGIC = {
  window: 0x57, // 'W'
  rateLimit: 0x52, // 'R'
  hyperLogLog: 0x48, // 'H'
  expiry: 0x54, // 'T'
} as const;

/** Starts an encoding: call `sealEnvelope` when the body is written. */
export function beginEnvelope(magic: number, version: number, initialBytes = 64): ByteWriter {
  const writer = new ByteWriter(initialBytes);
  writer.u8(magic);
  writer.u8(version);
  return writer;
}

export function sealEnvelope(writer: ByteWriter): Uint8Array {
  writer.crc32Trailer();
  return writer.finish();
}

/** Verifies CRC, magic and version; the returned reader is positioned at the body. */
export function openEnvelope(bytes: Uint8Array, magic: number, version: number, what: string): ByteReader {
  if (!(bytes instanceof Uint8Array)) throw new CorruptionError(`${what}: expected a Uint8Array`);
  const reader = new ByteReader(bytes, what);
  if (bytes.length < 6) reader.fail("too short for a header and a CRC-32 trailer");
  reader.verifyCrc32Trailer();
  const foundMagic = reader.u8();
  if (foundMagic !== magic) reader.fail(`wrong magic byte 0x${foundMagic.toString(16)}, expected 0x${magic.toString(16)}`);
  const foundVersion = reader.u8();
  if (foundVersion !== version) reader.fail(`unsupported format version ${foundVersion} (this build reads ${version})`);
  return reader;
}

/** Unsigned LEB128 of a non-negative safe integer (1..8 bytes). */
export function writeUvarint(writer: ByteWriter, value: number): void {
  if (!(Number.isSafeInteger(value) && value >= 0)) throw new RangeError(`uvarint must be a non-negative safe integer, got ${value}`);
  let rest = value;
  while (rest >= 0x80) {
    writer.u8((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  writer.u8(rest);
}

/** Whether the last readLeb128Prefix call reached the varint's final byte. */
let leb128Ended = false;

/** Accumulates up to `bytesMax` LEB128 bytes in a double (exact up to 7 bytes, 49 bits). */
function readLeb128Prefix(reader: ByteReader, bytesMax: number): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < bytesMax; i++) {
    const byte = reader.u8();
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) {
      if (i > 0 && byte === 0) reader.fail("non-canonical varint (trailing zero byte)");
      leb128Ended = true;
      return value;
    }
    scale *= 0x80;
  }
  leb128Ended = false;
  return value;
}

export function readUvarint(reader: ByteReader): number {
  const value = readLeb128Prefix(reader, 8);
  if (!leb128Ended) reader.fail("varint longer than 8 bytes");
  if (!Number.isSafeInteger(value)) reader.fail("varint above 2^53");
  return value;
}

const SMALL_MAGNITUDE = 1n << 52n;

/** Zigzag LEB128 of an int64 (1..10 bytes). */
export function writeSvarint64(writer: ByteWriter, value: bigint): void {
  if (value < INT64_MIN || value > INT64_MAX) throw new RangeError(`svarint64 out of int64 range: ${value}`);
  if (value >= -SMALL_MAGNITUDE && value < SMALL_MAGNITUDE) {
    // Most values: zigzag fits a safe integer, so no BigInt work per byte.
    const small = Number(value);
    writeUvarint(writer, small >= 0 ? small * 2 : -small * 2 - 1);
    return;
  }
  let rest = value >= 0n ? value << 1n : (-value << 1n) - 1n;
  while (rest >= 0x80n) {
    writer.u8(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  writer.u8(Number(rest));
}

export function readSvarint64(reader: ByteReader): bigint {
  // The first 7 bytes (49 bits) accumulate in a double, exactly; longer ones continue in BigInt.
  const small = readLeb128Prefix(reader, 7);
  if (leb128Ended) return BigInt(small % 2 === 0 ? small / 2 : -(small + 1) / 2);
  let zigzag = BigInt(small);
  let shift = 49n;
  for (let i = 7; i < 10; i++) {
    const byte = reader.u8();
    zigzag |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) {
      if (byte === 0) reader.fail("non-canonical varint (trailing zero byte)");
      if (zigzag >= 1n << 64n) reader.fail("svarint64 above 64 bits");
      return zigzag & 1n ? -((zigzag + 1n) >> 1n) : zigzag >> 1n;
    }
    shift += 7n;
  }
  return reader.fail("svarint64 longer than 10 bytes");
}

/** An integer argument in [min, max] (safe integers), else InvalidArgumentError naming it. */
export function requireInteger(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw new InvalidArgumentError(`${what} must be a safe integer, got ${typeof value === "number" ? value : typeof value}`);
  }
  if (value < min || value > max) throw new InvalidArgumentError(`${what} must be in [${min}, ${max}], got ${value}`);
  return value;
}

/** A bigint argument in int64 range. */
export function requireInt64(value: unknown, what: string): bigint {
  if (typeof value !== "bigint") throw new InvalidArgumentError(`${what} must be a bigint, got ${typeof value}`);
  if (value < INT64_MIN || value > INT64_MAX) throw new OutOfRangeError(`${what} ${value} is outside signed 64-bit range`);
  return value;
}

/** a + b, or OutOfRangeError when the sum leaves int64 (the caller has changed nothing yet). */
export function checkedAdd64(a: bigint, b: bigint, what: string): bigint {
  const sum = a + b;
  if (sum < INT64_MIN || sum > INT64_MAX) throw new OutOfRangeError(`${what}: ${a} + ${b} overflows signed 64-bit`);
  return sum;
}

export function requireBytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidArgumentError(`${what} must be a Uint8Array`);
  return value;
}

/** Unsigned lexicographic byte order (memcmp, shorter prefix first). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const shared = Math.min(a.length, b.length);
  for (let i = 0; i < shared; i++) {
    const difference = a[i]! - b[i]!;
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

/**
 * Bytes as a string of char codes 0..255: a Map key with the same identity as the bytes, whose
 * JS string order (by UTF-16 code unit) is exactly unsigned byte order.
 */
export function binaryString(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += String.fromCharCode(bytes[i]!);
  return out;
}

/** The first position in [from, to) of a sorted run whose value is >= target (`to` if none). */
export function lowerBound(values: ArrayLike<number>, from: number, to: number, target: number): number {
  let low = from;
  let high = to;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (values[middle]! < target) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Strictly increasing integers are written as gaps: the first as is, each next as
 * (value - previous - 1). Returns `value`, the next call's `previous` (-1 before the first).
 */
export function writeAscending(writer: ByteWriter, previous: number, value: number): number {
  writeUvarint(writer, previous < 0 ? value : value - previous - 1);
  return value;
}

export function readAscending(reader: ByteReader, previous: number): number {
  const gap = readUvarint(reader);
  const value = previous < 0 ? gap : previous + gap + 1;
  if (!Number.isSafeInteger(value)) reader.fail("ascending value above 2^53");
  return value;
}
