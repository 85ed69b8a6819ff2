/**
 * Seeded pseudo-random generator (xoshiro128**, seeded through splitmix32). Everything that needs
 * randomness inside the deterministic layers (raft election jitter, the simulator) takes a Prng, so
 * one seed replays a run exactly.
 */
export interface Prng {
  /** Uniform unsigned 32-bit integer. */
  nextU32(): number;
  /** Uniform integer in [0, bound). bound must be a positive integer <= 2^32. */
  nextInt(bound: number): number;
  /** Uniform float in [0, 1). */
  nextFloat(): number;
  /** True with the given probability. */
  chance(probability: number): boolean;
  /** A new generator derived from this one; advancing it does not advance this one afterwards. */
  fork(): Prng;
}

function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Xoshiro128 implements Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    const init = splitmix32(seed);
    this.s0 = init();
    this.s1 = init();
    this.s2 = init();
    this.s3 = init();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0;
    this.s1 >>>= 0;
    this.s2 >>>= 0;
    this.s3 >>>= 0;
    return result;
  }

  nextInt(bound: number): number {
    if (!(Number.isInteger(bound) && bound > 0 && bound <= 0x1_0000_0000)) {
      throw new RangeError(`nextInt bound must be an integer in [1, 2^32], got ${bound}`);
    }
    // Rejection sampling keeps the distribution exactly uniform.
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % bound);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % bound;
    }
  }

  nextFloat(): number {
    return this.nextU32() / 0x1_0000_0000;
  }

  chance(probability: number): boolean {
    return this.nextFloat() < probability;
  }

  fork(): Prng {
    return new Xoshiro128(this.nextU32());
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export function createPrng(seed: number): Prng {
  return new Xoshiro128(seed);
}
