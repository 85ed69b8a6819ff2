/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum LevelDB, RocksDB, ext4 and
 * iSCSI use; slicing-by-8 (src/util/crc-slice8.ts).
 *
 * Chaining: crc32c(b, crc32c(a)) === crc32c(a ++ b), so a checksum can cover a key and a value
 * without concatenating them.
 */
import { crcSlice8 } from "../util/crc-slice8.js";

/**
 * CRC-32C of `data`, continuing from `previous` (the CRC of the bytes before it; 0 to start).
 * Returns an unsigned 32-bit integer.
 */
export const crc32c: (data: Uint8Array, previous?: number) => number = crcSlice8(0x82f63b78);
