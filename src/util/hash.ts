/**
 * murmur3's 32-bit finalizer (fmix32): every input bit affects every output bit, so a weak mix
 * before it (FNV-1a over bytes) still spreads into the low bits a hash table indexes by. Pure.
 */
export function fmix32(hash: number): number {
  let h = hash;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
