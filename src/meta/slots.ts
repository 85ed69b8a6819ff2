/**
 * Hash slots (Redis Cluster's scheme, https://redis.io/docs/reference/cluster-spec/#hash-tags):
 * slot = CRC16-XMODEM(hashed bytes) mod 16384, where the hashed bytes are the key's hash tag if it
 * has one, else the whole key. The hash tag is the bytes between the key's first `{` and the first
 * `}` after it, when there is at least one byte between them: `{user1}:views` and `{user1}:clicks`
 * hash only `user1`, so they share a slot, a shard, and can be in one atomic batch. `{}x`, `x{` and
 * `x}{` have no tag (the whole key is hashed). A shard owns a contiguous slot range [start, end).
 * Pure and shared by server, client and meta; proto/tally.proto and docs/protocol.md state the rule
 * for clients in other languages.
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
  return crc16Range(bytes, 0, bytes.length);
}

/** crc16 of bytes[start, end), without a view of them. */
function crc16Range(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    crc = ((crc << 8) & 0xffff) ^ crcTable[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  }
  return crc;
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/** The bytes a key's slot is computed from: its hash tag, or the whole key (a view, no copy). */
export function hashedPart(key: Uint8Array): Uint8Array {
  const open = key.indexOf(OPEN_BRACE);
  if (open < 0) return key;
  const close = key.indexOf(CLOSE_BRACE, open + 1);
  if (close <= open + 1) return key; // no `}` after the `{`, or nothing between them
  return key.subarray(open + 1, close);
}

export function slotOf(key: Uint8Array): number {
  return crc16(hashedPart(key)) % SLOT_COUNT;
}

/** slotOf() of the key bytes[start, end), without a view of it (a packed batch's keys). */
export function slotOfRange(bytes: Uint8Array, start: number, end: number): number {
  let open = start;
  while (open < end && bytes[open] !== OPEN_BRACE) open++;
  if (open < end) {
    let close = open + 1;
    while (close < end && bytes[close] !== CLOSE_BRACE) close++;
    if (close < end && close > open + 1) return crc16Range(bytes, open + 1, close) % SLOT_COUNT;
  }
  return crc16Range(bytes, start, end) % SLOT_COUNT;
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
