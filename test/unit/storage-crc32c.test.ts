import * as zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { crc32 } from "../../src/shard/binary.js";
import { crc32c } from "../../src/storage/crc32c.js";

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Bit-at-a-time reference, independent of the table construction under test. */
function crc32cBitwise(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe("crc32c", () => {
  it("matches the published check values (RFC 3720 B.4, iSCSI)", () => {
    expect(crc32c(text("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it("agrees with a bitwise reference for every length around the 8-byte stride", () => {
    const data = Uint8Array.from({ length: 100 }, (_, i) => (i * 37 + 11) & 0xff);
    for (let length = 0; length <= data.length; length++) {
      const slice = data.subarray(3, 3 + Math.min(length, data.length - 3));
      expect(crc32c(slice)).toBe(crc32cBitwise(slice));
    }
  });

  it("chains: crc32c(b, crc32c(a)) equals crc32c(a ++ b)", () => {
    const a = text("the key L|3|17");
    const b = text("and the value, long enough to use the eight-byte loop");
    const joined = new Uint8Array([...a, ...b]);
    expect(crc32c(b, crc32c(a))).toBe(crc32c(joined));
  });

  it("detects every single-bit flip in a small record", () => {
    const data = text("term=5 index=17 data=add(likes,1)");
    const good = crc32c(data);
    for (let i = 0; i < data.length * 8; i++) {
      const flipped = data.slice();
      flipped[i >> 3]! ^= 1 << (i & 7);
      expect(crc32c(flipped)).not.toBe(good);
    }
  });
});

describe("crc32 (IEEE; shard snapshot and record trailers)", () => {
  it("matches zlib's CRC-32 for every length around the 8-byte stride and on views into larger buffers", () => {
    expect(crc32(text("123456789"))).toBe(0xcbf43926);
    const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
    const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 131 + 7) & 0xff);
    for (let length = 0; length <= 100; length++) {
      const slice = data.subarray(5, 5 + length);
      // Node < 20.15 has no zlib.crc32: fall back to a bitwise reference.
      const reference = zlibCrc32 !== undefined ? zlibCrc32(slice) >>> 0 : crcBitwise(slice, 0xedb88320);
      expect(crc32(slice), `${length} bytes`).toBe(reference);
    }
  });
});

function crcBitwise(data: Uint8Array, polynomial: number): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ polynomial : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
