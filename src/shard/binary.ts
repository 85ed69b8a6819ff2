/**
 * Big-endian binary writer/reader and CRC-32 for the shard's own record and snapshot formats.
 * Pure: DataView and Uint8Array only (no Buffer, no node:*), so the bytes are the same everywhere.
 *
 * Integers that are JS numbers (indexes, timestamps, seqs, client ids) are written as u64 and must
 * be safe integers; counter values are bigint and written as two's-complement i64.
 */
import { assert } from "../util/assert.js";
import { crcSlice8 } from "../util/crc-slice8.js";
import { CorruptionError } from "../util/errors.js";
import { INT64_MAX, INT64_MIN } from "../util/int64.js";

const TWO_POW_32 = 0x1_0000_0000;
/** A hard ceiling so a corrupt length field can never make us allocate gigabytes. */
const WRITER_BYTES_MAX = 0x7fff_ffff;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

export class ByteWriter {
  private bytes: Uint8Array;
  private view: DataView;
  private position = 0;

  constructor(initialBytes = 256) {
    assert(Number.isInteger(initialBytes) && initialBytes > 0, "initialBytes must be a positive integer");
    this.bytes = new Uint8Array(initialBytes);
    this.view = new DataView(this.bytes.buffer);
  }

  get length(): number {
    return this.position;
  }

  /** Forgets what was written (keeps the buffer) so one writer can be reused. */
  reset(): void {
    this.position = 0;
  }

  private reserve(count: number): void {
    const needed = this.position + count;
    if (needed <= this.bytes.length) return;
    assert(needed <= WRITER_BYTES_MAX, "binary writer would exceed 2 GiB");
    let capacity = this.bytes.length * 2;
    while (capacity < needed) capacity *= 2;
    capacity = Math.min(capacity, WRITER_BYTES_MAX);
    const grown = new Uint8Array(capacity);
    grown.set(this.bytes.subarray(0, this.position));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }

  u8(value: number): void {
    assert(Number.isInteger(value) && value >= 0 && value <= 0xff, "u8 out of range");
    this.reserve(1);
    this.view.setUint8(this.position, value);
    this.position += 1;
  }

  u16(value: number): void {
    assert(Number.isInteger(value) && value >= 0 && value <= 0xffff, "u16 out of range");
    this.reserve(2);
    this.view.setUint16(this.position, value);
    this.position += 2;
  }

  u32(value: number): void {
    assert(Number.isInteger(value) && value >= 0 && value < TWO_POW_32, "u32 out of range");
    this.reserve(4);
    this.view.setUint32(this.position, value);
    this.position += 4;
  }

  /** A non-negative safe integer as u64. */
  u64(value: number): void {
    assert(Number.isSafeInteger(value) && value >= 0, "u64 must be a non-negative safe integer");
    this.reserve(8);
    this.view.setUint32(this.position, Math.floor(value / TWO_POW_32));
    this.view.setUint32(this.position + 4, value % TWO_POW_32);
    this.position += 8;
  }

  i64(value: bigint): void {
    assert(value >= INT64_MIN && value <= INT64_MAX, "i64 out of range");
    this.reserve(8);
    this.view.setBigInt64(this.position, value);
    this.position += 8;
  }

  /**
   * Lets `write` fill up to `maxBytes` straight into the buffer from the current position; it
   * returns the position after what it wrote.
   */
  writeWith(maxBytes: number, write: (bytes: Uint8Array, position: number) => number): void {
    this.reserve(maxBytes);
    const end = write(this.bytes, this.position);
    assert(Number.isInteger(end) && end >= this.position && end <= this.position + maxBytes, "writeWith wrote outside its reservation");
    this.position = end;
  }

  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.bytes.set(bytes, this.position);
    this.position += bytes.length;
  }

  /** UTF-8 string with a u16 byte length prefix. */
  string16(text: string): void {
    const encoded = textEncoder.encode(text);
    this.u16(encoded.length);
    this.raw(encoded);
  }

  /** Appends CRC-32 of everything written so far. */
  crc32Trailer(): void {
    this.u32(crc32(this.bytes.subarray(0, this.position)));
  }

  /** A copy exactly as long as what was written (never aliases the growable buffer). */
  finish(): Uint8Array {
    return this.bytes.slice(0, this.position);
  }
}

/** Reads what ByteWriter wrote. Every read is bounds-checked; a violation is CorruptionError. */
export class ByteReader {
  private readonly view: DataView;
  private position = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.length - this.position;
  }

  fail(problem: string): never {
    throw new CorruptionError(`${this.what}: ${problem} (at byte ${this.position} of ${this.bytes.length})`);
  }

  private need(count: number): void {
    if (this.position + count > this.bytes.length) this.fail(`truncated: needs ${count} more bytes`);
  }

  u8(): number {
    this.need(1);
    const value = this.view.getUint8(this.position);
    this.position += 1;
    return value;
  }

  u16(): number {
    this.need(2);
    const value = this.view.getUint16(this.position);
    this.position += 2;
    return value;
  }

  u32(): number {
    this.need(4);
    const value = this.view.getUint32(this.position);
    this.position += 4;
    return value;
  }

  u64(): number {
    this.need(8);
    const high = this.view.getUint32(this.position);
    const low = this.view.getUint32(this.position + 4);
    // Safe integers have at most 21 bits in the high word.
    if (high > 0x1f_ffff) this.fail(`u64 above 2^53: high word ${high}`);
    this.position += 8;
    return high * TWO_POW_32 + low;
  }

  i64(): bigint {
    this.need(8);
    const value = this.view.getBigInt64(this.position);
    this.position += 8;
    return value;
  }

  raw(count: number): Uint8Array {
    this.need(count);
    const out = this.bytes.slice(this.position, this.position + count);
    this.position += count;
    return out;
  }

  /** A view (no copy) of the next `count` bytes. */
  subarray(count: number): Uint8Array {
    this.need(count);
    const out = this.bytes.subarray(this.position, this.position + count);
    this.position += count;
    return out;
  }

  string16(): string {
    const count = this.u16();
    this.need(count);
    try {
      const text = textDecoder.decode(this.bytes.subarray(this.position, this.position + count));
      this.position += count;
      return text;
    } catch {
      return this.fail("string is not valid UTF-8");
    }
  }

  /** Checks the CRC-32 trailer over everything before it; call first, then read the body. */
  verifyCrc32Trailer(): void {
    if (this.bytes.length < 4) this.fail("too short for a CRC-32 trailer");
    const bodyLength = this.bytes.length - 4;
    const stored = this.view.getUint32(bodyLength);
    const actual = crc32(this.bytes.subarray(0, bodyLength));
    if (stored !== actual) this.fail(`CRC-32 mismatch: stored ${stored}, computed ${actual}`);
  }

  /** Asserts the reader consumed exactly `trailerBytes` short of the end. */
  expectEnd(trailerBytes = 0): void {
    if (this.remaining !== trailerBytes) this.fail(`${this.remaining - trailerBytes} unexpected trailing bytes`);
  }
}

/** CRC-32 (IEEE 802.3, the zlib one): check value crc32("123456789") = 0xcbf43926. Slicing-by-8. */
const crc32Slice8 = crcSlice8(0xedb88320);

/**
 * A CRC-32 (IEEE) function: crc32 below, or one with the same values (the server passes
 * node:zlib's, several times faster; src/shard may import no node: module).
 */
export type Crc32 = (bytes: Uint8Array, previous?: number) => number;

/** previous: the CRC of the bytes before these, to checksum a block in slices: crc32(b, crc32(a)) === crc32(a ++ b). */
export function crc32(bytes: Uint8Array, previous = 0): number {
  return crc32Slice8(bytes, previous);
}
