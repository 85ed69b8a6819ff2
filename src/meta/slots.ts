/**
 * Hash slots (Redis Cluster's scheme): slot = CRC16-XMODEM(key) mod 16384. A shard owns a
 * contiguous slot range [start, end). Pure and shared by server, client and meta.
 */
export const SLOT_COUNT = 16384;

const crcTable = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < bytes.length; i++) {
    crc = ((crc << 8) & 0xffff) ^ crcTable[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  }
  return crc;
}

export function slotOf(key: Uint8Array): number {
  return crc16(key) % SLOT_COUNT;
}

export interface SlotRange {
  start: number; // inclusive
  end: number; // exclusive
}

/** Splits the slot space into `shardCount` contiguous ranges of near-equal size. */
export function evenSlotRanges(shardCount: number): SlotRange[] {
  if (!(Number.isInteger(shardCount) && shardCount >= 1 && shardCount <= SLOT_COUNT)) {
    throw new RangeError(`shard count must be an integer in [1, ${SLOT_COUNT}], got ${shardCount}`);
  }
  const ranges: SlotRange[] = [];
  for (let i = 0; i < shardCount; i++) {
    ranges.push({
      start: Math.floor((i * SLOT_COUNT) / shardCount),
      end: Math.floor(((i + 1) * SLOT_COUNT) / shardCount),
    });
  }
  return ranges;
}
