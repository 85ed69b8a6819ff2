/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum LevelDB, RocksDB, ext4 and
 * iSCSI use. Table-driven, slicing-by-8: eight 256-entry tables let the inner loop consume eight
 * bytes per step instead of one.
 *
 * Chaining: crc32c(b, crc32c(a)) === crc32c(a ++ b), so a checksum can cover a key and a value
 * without concatenating them.
 */
const POLYNOMIAL_REFLECTED = 0x82f63b78;
const TABLE_COUNT = 8;

const tables: Int32Array[] = buildTables();

function buildTables(): Int32Array[] {
  const result: Int32Array[] = [];
  for (let t = 0; t < TABLE_COUNT; t++) result.push(new Int32Array(256));
  const base = result[0]!;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL_REFLECTED : c >>> 1;
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

const [t0, t1, t2, t3, t4, t5, t6, t7] = tables as [
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
];

/**
 * CRC-32C of `data`, continuing from `previous` (the CRC of the bytes before it; 0 to start).
 * Returns an unsigned 32-bit integer.
 */
export function crc32c(data: Uint8Array, previous = 0): number {
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
}
