/**
 * Small non-cryptographic hashes for the simulator: entry fingerprints, the replicas' applied
 * hash chains and the trace hash. Two independent 32-bit lanes give 64 bits, plenty to tell runs
 * and entries apart.
 */

/** FNV-1a over bytes, 32 bits. */
export function hashBytes(data: Uint8Array, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    h ^= data[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Mixes a 32-bit value into a 32-bit hash (murmur3 finalizer style). */
export function mix(h: number, value: number): number {
  let k = Math.imul(value | 0, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  let x = (h ^ k) >>> 0;
  x = (x << 13) | (x >>> 19);
  x = (Math.imul(x, 5) + 0xe6546b64) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  return x >>> 0;
}

/** Mixes a non-negative integer up to 2^53 (indexes, terms) as two 32-bit halves. */
export function mixNumber(h: number, value: number): number {
  return mix(mix(h, value >>> 0), Math.floor(value / 0x1_0000_0000));
}

/** A 64-bit running hash of strings (two FNV-1a lanes with different bases). */
export class StringHasher {
  private low = 0x811c9dc5;
  private high = 0xcbf29ce4;

  update(text: string): void {
    let low = this.low;
    let high = this.high;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      low = Math.imul(low ^ c, 0x01000193);
      high = Math.imul(high ^ c, 0x01000193) ^ (high >>> 15);
    }
    // Line separator, so "ab"+"c" differs from "a"+"bc".
    this.low = Math.imul(low ^ 0x0a, 0x01000193) >>> 0;
    this.high = Math.imul(high ^ 0x0a, 0x01000193) >>> 0;
  }

  digest(): string {
    return this.high.toString(16).padStart(8, "0") + this.low.toString(16).padStart(8, "0");
  }
}
