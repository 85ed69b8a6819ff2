import { describe, expect, it } from "vitest";
import { INT64_MAX, INT64_MIN } from "../../src/util/int64.js";
import { ByteReader, ByteWriter } from "../../src/shard/binary.js";
import { readAscending, readSvarint64, readUvarint, writeAscending, writeSvarint64, writeUvarint } from "../../src/kinds/codec.js";
import { CorruptionError } from "../../src/util/errors.js";
import { createPrng } from "../../src/util/prng.js";

const reader = (bytes: number[] | Uint8Array): ByteReader => new ByteReader(Uint8Array.from(bytes), "test");

/** Zigzag LEB128 written the slow, obvious way (BigInt throughout), as an oracle. */
function referenceSvarint(value: bigint): number[] {
  let rest = value >= 0n ? value * 2n : -value * 2n - 1n;
  const out: number[] = [];
  do {
    const low = Number(rest % 128n);
    rest /= 128n;
    out.push(rest > 0n ? low | 0x80 : low);
  } while (rest > 0n);
  return out;
}

describe("kinds codec varints", () => {
  it("round-trips int64 edges and the 2^49 / 2^52 fast-path boundaries, matching the reference bytes", () => {
    const prng = createPrng(9);
    const values = [0n, -1n, 1n, 63n, -64n, 64n, INT64_MAX, INT64_MIN, INT64_MAX - 1n, INT64_MIN + 1n];
    for (const edge of [48n, 49n, 52n, 53n, 62n]) for (const d of [-1n, 0n, 1n]) values.push((1n << edge) + d, -(1n << edge) + d);
    for (let i = 0; i < 2_000; i++)
      values.push(BigInt.asIntN(64, (BigInt(prng.nextU32()) << 32n) | BigInt(prng.nextU32())) >> BigInt(prng.nextInt(64)));
    for (const value of values) {
      const writer = new ByteWriter(16);
      writeSvarint64(writer, value);
      const bytes = writer.finish();
      expect(Array.from(bytes), String(value)).toEqual(referenceSvarint(value));
      const r = reader(bytes);
      expect(readSvarint64(r)).toBe(value);
      expect(r.remaining).toBe(0);
    }
    expect(() => writeSvarint64(new ByteWriter(), INT64_MAX + 1n)).toThrow(RangeError);
  });

  it("rejects non-canonical, overlong and truncated varints", () => {
    expect(() => readSvarint64(reader([0x80, 0x00]))).toThrow(/non-canonical/);
    expect(() => readSvarint64(reader([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]))).toThrow(/non-canonical/);
    expect(() => readSvarint64(reader(new Array(10).fill(0xff).concat([0x01])))).toThrow(/longer than 10/);
    expect(() => readSvarint64(reader([...new Array(9).fill(0xff), 0x02]))).toThrow(/above 64 bits/);
    expect(() => readSvarint64(reader([0x80]))).toThrow(CorruptionError);
    expect(() => readUvarint(reader([0x81, 0x00]))).toThrow(/non-canonical/);
    expect(() => readUvarint(reader(new Array(9).fill(0xff)))).toThrow(/longer than 8/);
    expect(() => readUvarint(reader([...new Array(7).fill(0xff), 0x7f]))).toThrow(/above 2\^53/);
  });

  it("uvarint and ascending gap coding round-trip", () => {
    const writer = new ByteWriter();
    const values = [0, 1, 127, 128, 300, 2 ** 32, Number.MAX_SAFE_INTEGER];
    let previous = -1;
    for (const value of values) previous = writeAscending(writer, previous, value);
    writeUvarint(writer, Number.MAX_SAFE_INTEGER);
    const r = reader(writer.finish());
    previous = -1;
    for (const value of values) {
      previous = readAscending(r, previous);
      expect(previous).toBe(value);
    }
    expect(readUvarint(r)).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => writeUvarint(new ByteWriter(), -1)).toThrow(RangeError);
  });
});
