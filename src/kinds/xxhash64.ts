/**
 * xxHash64 (Yann Collet, XXH64 of the xxHash spec, doc/xxhash_spec.md), in pure TypeScript on
 * 32-bit halves: no BigInt on the hot path, no allocation per call. Checked against the published
 * vectors and a BigInt transcription of the spec in test/unit/kinds-hll.test.ts.
 *
 * A 64-bit value is two uint32 halves (hi, lo). `xxhash64Into` leaves the digest in HASH_OUT
 * ([0] = high 32 bits, [1] = low 32 bits); `xxhash64` returns it as a bigint for convenience.
 * Deterministic: integer arithmetic only, bytes read little-endian as the spec says.
 */

// The five primes of the spec, as (hi, lo).
const P1_HI = 0x9e3779b1;
const P1_LO = 0x85ebca87;
const P2_HI = 0xc2b2ae3d;
const P2_LO = 0x27d4eb4f;
const P3_HI = 0x165667b1;
const P3_LO = 0x9e3779f9;
const P4_HI = 0x85ebca77;
const P4_LO = 0xc2b2ae63;
const P5_HI = 0x27d4eb2f;
const P5_LO = 0x165667c5;

export const HASH_OUT = new Uint32Array(2);

// Results of the helpers below (module registers, so the hot loop allocates nothing).
let rHi = 0;
let rLo = 0;

/** (rHi, rLo) = low 64 bits of a * b, in 16-bit limbs so every partial product is exact. */
function mul(aHi: number, aLo: number, bHi: number, bLo: number): void {
  const a00 = aLo & 0xffff;
  const a16 = aLo >>> 16;
  const a32 = aHi & 0xffff;
  const a48 = aHi >>> 16;
  const b00 = bLo & 0xffff;
  const b16 = bLo >>> 16;
  const b32 = bHi & 0xffff;
  const b48 = bHi >>> 16;
  let c00 = a00 * b00;
  let c16 = c00 >>> 16;
  c00 &= 0xffff;
  c16 += a16 * b00;
  let c32 = c16 >>> 16;
  c16 &= 0xffff;
  c16 += a00 * b16;
  c32 += c16 >>> 16;
  c16 &= 0xffff;
  c32 += a32 * b00;
  let c48 = c32 >>> 16;
  c32 &= 0xffff;
  c32 += a16 * b16;
  c48 += c32 >>> 16;
  c32 &= 0xffff;
  c32 += a00 * b32;
  c48 += c32 >>> 16;
  c32 &= 0xffff;
  c48 += a48 * b00 + a32 * b16 + a16 * b32 + a00 * b48;
  c48 &= 0xffff;
  rHi = ((c48 << 16) | c32) >>> 0;
  rLo = ((c16 << 16) | c00) >>> 0;
}

/** (rHi, rLo) = a + b mod 2^64. */
function add(aHi: number, aLo: number, bHi: number, bLo: number): void {
  const lo = aLo + bLo;
  rLo = lo >>> 0;
  rHi = (aHi + bHi + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

/** (rHi, rLo) = rotate left by 0 < bits < 32. */
function rotl(hi: number, lo: number, bits: number): void {
  rHi = ((hi << bits) | (lo >>> (32 - bits))) >>> 0;
  rLo = ((lo << bits) | (hi >>> (32 - bits))) >>> 0;
}

/** round(acc, input) = rotl(acc + input * P2, 31) * P1 */
function round(accHi: number, accLo: number, inHi: number, inLo: number): void {
  mul(inHi, inLo, P2_HI, P2_LO);
  add(accHi, accLo, rHi, rLo);
  rotl(rHi, rLo, 31);
  mul(rHi, rLo, P1_HI, P1_LO);
}

function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/** The digest of `bytes` with a 64-bit seed (as halves) into HASH_OUT. */
export function xxhash64Into(bytes: Uint8Array, seedHi = 0, seedLo = 0): void {
  const length = bytes.length;
  let p = 0;
  let hHi: number;
  let hLo: number;
  if (length >= 32) {
    add(seedHi, seedLo, P1_HI, P1_LO);
    add(rHi, rLo, P2_HI, P2_LO);
    let v1Hi = rHi;
    let v1Lo = rLo;
    add(seedHi, seedLo, P2_HI, P2_LO);
    let v2Hi = rHi;
    let v2Lo = rLo;
    let v3Hi = seedHi >>> 0;
    let v3Lo = seedLo >>> 0;
    // seed - P1 = seed + (2^64 - P1)
    add(seedHi, seedLo, ~P1_HI >>> 0, ~P1_LO >>> 0);
    add(rHi, rLo, 0, 1);
    let v4Hi = rHi;
    let v4Lo = rLo;
    const limit = length - 32;
    for (; p <= limit; p += 32) {
      round(v1Hi, v1Lo, readU32(bytes, p + 4), readU32(bytes, p));
      v1Hi = rHi;
      v1Lo = rLo;
      round(v2Hi, v2Lo, readU32(bytes, p + 12), readU32(bytes, p + 8));
      v2Hi = rHi;
      v2Lo = rLo;
      round(v3Hi, v3Lo, readU32(bytes, p + 20), readU32(bytes, p + 16));
      v3Hi = rHi;
      v3Lo = rLo;
      round(v4Hi, v4Lo, readU32(bytes, p + 28), readU32(bytes, p + 24));
      v4Hi = rHi;
      v4Lo = rLo;
    }
    rotl(v1Hi, v1Lo, 1);
    hHi = rHi;
    hLo = rLo;
    rotl(v2Hi, v2Lo, 7);
    add(hHi, hLo, rHi, rLo);
    hHi = rHi;
    hLo = rLo;
    rotl(v3Hi, v3Lo, 12);
    add(hHi, hLo, rHi, rLo);
    hHi = rHi;
    hLo = rLo;
    rotl(v4Hi, v4Lo, 18);
    add(hHi, hLo, rHi, rLo);
    hHi = rHi;
    hLo = rLo;
    const lanes = [v1Hi, v1Lo, v2Hi, v2Lo, v3Hi, v3Lo, v4Hi, v4Lo];
    for (let lane = 0; lane < 8; lane += 2) {
      // mergeRound(h, v) = (h ^ round(0, v)) * P1 + P4
      round(0, 0, lanes[lane]!, lanes[lane + 1]!);
      mul((hHi ^ rHi) >>> 0, (hLo ^ rLo) >>> 0, P1_HI, P1_LO);
      add(rHi, rLo, P4_HI, P4_LO);
      hHi = rHi;
      hLo = rLo;
    }
  } else {
    add(seedHi, seedLo, P5_HI, P5_LO);
    hHi = rHi;
    hLo = rLo;
  }
  add(hHi, hLo, Math.floor(length / 0x1_0000_0000), length >>> 0);
  hHi = rHi;
  hLo = rLo;
  for (; p + 8 <= length; p += 8) {
    round(0, 0, readU32(bytes, p + 4), readU32(bytes, p));
    rotl((hHi ^ rHi) >>> 0, (hLo ^ rLo) >>> 0, 27);
    mul(rHi, rLo, P1_HI, P1_LO);
    add(rHi, rLo, P4_HI, P4_LO);
    hHi = rHi;
    hLo = rLo;
  }
  if (p + 4 <= length) {
    mul(0, readU32(bytes, p), P1_HI, P1_LO);
    rotl((hHi ^ rHi) >>> 0, (hLo ^ rLo) >>> 0, 23);
    mul(rHi, rLo, P2_HI, P2_LO);
    add(rHi, rLo, P3_HI, P3_LO);
    hHi = rHi;
    hLo = rLo;
    p += 4;
  }
  for (; p < length; p++) {
    mul(0, bytes[p]!, P5_HI, P5_LO);
    rotl((hHi ^ rHi) >>> 0, (hLo ^ rLo) >>> 0, 11);
    mul(rHi, rLo, P1_HI, P1_LO);
    hHi = rHi;
    hLo = rLo;
  }
  avalancheInto(hHi, hLo);
}

/** The final mix of h into HASH_OUT: h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32. */
function avalancheInto(hHi: number, hLo: number): void {
  hLo = (hLo ^ (hHi >>> 1)) >>> 0;
  mul(hHi, hLo, P2_HI, P2_LO);
  hHi = rHi;
  hLo = (rLo ^ ((rLo >>> 29) | (rHi << 3))) >>> 0;
  hHi = (hHi ^ (hHi >>> 29)) >>> 0;
  mul(hHi, hLo, P3_HI, P3_LO);
  HASH_OUT[0] = rHi;
  HASH_OUT[1] = (rLo ^ rHi) >>> 0;
}

/** xxHash64 of `bytes` as a bigint (seed a uint64). */
export function xxhash64(bytes: Uint8Array, seed = 0n): bigint {
  if (seed < 0n || seed >= 1n << 64n) throw new RangeError("seed must be a uint64");
  xxhash64Into(bytes, Number(seed >> 32n), Number(seed & 0xffffffffn));
  return (BigInt(HASH_OUT[0]!) << 32n) | BigInt(HASH_OUT[1]!);
}
