/**
 * Reflected 32-bit CRCs, table-driven, slicing-by-8: eight 256-entry tables let the inner loop
 * consume eight bytes per step instead of one. crcSlice8(0xEDB88320) is CRC-32 (IEEE, the zlib
 * one); crcSlice8(0x82F63B78) is CRC-32C (Castagnoli). Pure: no I/O, no clock.
 *
 * Chaining: crc(b, crc(a)) === crc(a ++ b), so a checksum can cover a key and a value without
 * concatenating them.
 */
const TABLE_COUNT = 8;

function buildTables(polynomialReflected: number): Int32Array[] {
  const result: Int32Array[] = [];
  for (let t = 0; t < TABLE_COUNT; t++) result.push(new Int32Array(256));
  const base = result[0]!;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ polynomialReflected : c >>> 1;
    base[n] = c;
  }
  // tables[t][n] is the CRC of byte n followed by t zero bytes.
  for (let n = 0; n < 256; n++) {
    let c = base[n]!;
    for (let t = 1; t < TABLE_COUNT; t++) {
      c = base[c & 0xff]! ^ (c >>> 8);
      result[t]![n] = c;
    }
  }
  return result;
}

/** The CRC function for a reflected polynomial: (data, previous CRC or 0) -> unsigned 32-bit CRC. */
export function crcSlice8(polynomialReflected: number): (data: Uint8Array, previous?: number) => number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = buildTables(polynomialReflected) as [
    Int32Array,
    Int32Array,
    Int32Array,
    Int32Array,
    Int32Array,
    Int32Array,
    Int32Array,
    Int32Array,
  ];
  return (data: Uint8Array, previous = 0): number => {
    let crc = ~previous;
    let i = 0;
    const length = data.length;
    const end8 = length - (length % 8);
    while (i < end8) {
      const lo = crc ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
      const hi = data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24);
      crc =
        t7[lo & 0xff]! ^
        t6[(lo >>> 8) & 0xff]! ^
        t5[(lo >>> 16) & 0xff]! ^
        t4[lo >>> 24]! ^
        t3[hi & 0xff]! ^
        t2[(hi >>> 8) & 0xff]! ^
        t1[(hi >>> 16) & 0xff]! ^
        t0[hi >>> 24]!;
      i += 8;
    }
    while (i < length) {
      crc = t0[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
      i++;
    }
    return ~crc >>> 0;
  };
}
