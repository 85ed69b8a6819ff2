/**
 * HyperLogLog unique counter: precision p = 14, m = 16,384 registers, standard error
 * 1.04 / sqrt(m) = 0.81%. Items are arbitrary bytes, hashed with xxHash64 (seed 0; the seed and p
 * are part of the format: changing either would change every register).
 *
 * Register update (Flajolet et al. 2007): index = the top 14 hash bits; rho = 1 + the number of
 * leading zeros of the remaining 50 bits (1..51); register[index] = max(register[index], rho).
 *
 * Estimate: Ertl's improved estimator ("New cardinality estimation algorithms for HyperLogLog
 * sketches", 2017, Algorithm 6), computed from the register histogram. It needs neither the bias
 * tables of HLL++ nor a switch to linear counting: its relative error is ~1.04/sqrt(m) across the
 * whole range from 0 to far beyond 10^9 (measured in test/unit/kinds-hll.test.ts at 10^3..10^6).
 * The estimate is a double computed with +, *, / and sqrt only (IEEE-exact in every engine), and
 * is a read, never state.
 *
 * Representation, canonical: while at most SPARSE_MAX (4,096) registers are non-zero, the sketch
 * is SPARSE: a sorted Uint32Array of (index << 8 | rho); beyond that it is DENSE: one byte per
 * register. Registers only grow, so the form is a function of the register contents alone: two
 * sketches with the same registers have the same bytes whatever the order of adds and merges.
 * Sparse and dense answer identically (same registers, same estimator).
 *
 * Merge is the register-wise max: commutative, associative, idempotent, and equal to the sketch
 * of the union of the two item sets.
 *
 * Bounds: at most 16 KiB in memory (sparse: 4 bytes x 4,096; dense: 16,384 bytes). Encoded: 9
 * bytes + 3 per non-zero register while sparse (<= 12,298 bytes), 12,296 bytes dense (6-bit
 * packed registers).
 *
 * Complexity: add O(1) dense, O(log n) + O(n) insert (n <= 4,096, a memmove) sparse; count O(m)
 * dense, O(n) sparse; merge O(m).
 */
import { InvalidArgumentError } from "../util/errors.js";
import { assert } from "../util/assert.js";
import { KIND_MAGIC, beginEnvelope, lowerBound, openEnvelope, readUvarint, requireBytes, sealEnvelope, writeUvarint } from "./codec.js";
import { HASH_OUT, xxhash64Into } from "./xxhash64.js";

export const HLL_PRECISION = 14;
export const HLL_REGISTERS = 1 << HLL_PRECISION;
/** Bits of the hash left after the index: q in Ertl's paper. */
const Q = 64 - HLL_PRECISION;
export const RHO_MAX = Q + 1;
export const SPARSE_MAX = 4_096;
/** 1.04 / sqrt(m). */
export const HLL_STANDARD_ERROR = 1.04 / Math.sqrt(HLL_REGISTERS);
/** Items are counter-sized things (ids, addresses): bounded so one add is bounded work. */
export const ITEM_BYTES_MAX = 64 * 1024;
const FORMAT_VERSION = 1;
const FORM_SPARSE = 0;
const FORM_DENSE = 1;
const DENSE_PACKED_BYTES = (HLL_REGISTERS * 6) / 8;
const ALPHA_INFINITY = 0.5 / Math.LN2;

export class HyperLogLog {
  /** Sorted (index << 8 | rho) entries [0, sparseSize), while dense === undefined. */
  private sparse: Uint32Array | undefined = new Uint32Array(16);
  private sparseSize = 0;
  private dense: Uint8Array | undefined;
  /** count() as of the last change of a register (a read cache, not state: never encoded). */
  private estimate: number | undefined;

  get isSparse(): boolean {
    return this.dense === undefined;
  }

  /** Adds one item; returns whether a register changed. */
  add(item: Uint8Array): boolean {
    requireBytes(item, "item");
    if (item.length > ITEM_BYTES_MAX) throw new InvalidArgumentError(`item of ${item.length} bytes exceeds ${ITEM_BYTES_MAX}`);
    xxhash64Into(item);
    const hi = HASH_OUT[0]!;
    const lo = HASH_OUT[1]!;
    const index = hi >>> (32 - HLL_PRECISION);
    const rest = hi & ((1 << (32 - HLL_PRECISION)) - 1);
    const rho = rest !== 0 ? Math.clz32(rest) - HLL_PRECISION + 1 : lo !== 0 ? 32 - HLL_PRECISION + Math.clz32(lo) + 1 : RHO_MAX;
    return this.raise(index, rho);
  }

  /** register[index] = max(register[index], rho). */
  private raise(index: number, rho: number): boolean {
    if (this.dense !== undefined) {
      if (this.dense[index]! >= rho) return false;
      this.dense[index] = rho;
      this.estimate = undefined;
      return true;
    }
    const sparse = this.sparse!;
    const position = this.sparseLowerBound(index);
    if (position < this.sparseSize && sparse[position]! >>> 8 === index) {
      if ((sparse[position]! & 0xff) >= rho) return false;
      sparse[position] = (index << 8) | rho;
      this.estimate = undefined;
      return true;
    }
    this.estimate = undefined; // a new non-zero register, below
    if (this.sparseSize === SPARSE_MAX) {
      this.toDense();
      this.dense![index] = rho;
      return true;
    }
    if (this.sparseSize === sparse.length) {
      const grown = new Uint32Array(Math.min(SPARSE_MAX, sparse.length * 2));
      grown.set(sparse.subarray(0, position));
      grown.set(sparse.subarray(position, this.sparseSize), position + 1);
      this.sparse = grown;
    } else {
      sparse.copyWithin(position + 1, position, this.sparseSize);
    }
    this.sparse![position] = (index << 8) | rho;
    this.sparseSize++;
    return true;
  }

  private sparseLowerBound(index: number): number {
    return lowerBound(this.sparse!, 0, this.sparseSize, index << 8);
  }

  private toDense(): void {
    const dense = new Uint8Array(HLL_REGISTERS);
    for (let i = 0; i < this.sparseSize; i++) {
      const entry = this.sparse![i]!;
      dense[entry >>> 8] = entry & 0xff;
    }
    this.dense = dense;
    this.sparse = undefined;
    this.sparseSize = 0;
  }

  /** The register value at `index` (0 = never hit). */
  register(index: number): number {
    assert(Number.isInteger(index) && index >= 0 && index < HLL_REGISTERS, "register index in range");
    if (this.dense !== undefined) return this.dense[index]!;
    const position = this.sparseLowerBound(index);
    return position < this.sparseSize && this.sparse![position]! >>> 8 === index ? this.sparse![position]! & 0xff : 0;
  }

  get nonZeroRegisters(): number {
    if (this.dense === undefined) return this.sparseSize;
    let count = 0;
    for (let i = 0; i < HLL_REGISTERS; i++) if (this.dense[i] !== 0) count++;
    return count;
  }

  /** The register histogram: histogram[k] = how many registers hold k (k = 0..RHO_MAX). */
  histogram(): number[] {
    const histogram = new Array<number>(RHO_MAX + 1).fill(0);
    if (this.dense !== undefined) {
      for (let i = 0; i < HLL_REGISTERS; i++) histogram[this.dense[i]!]!++;
    } else {
      histogram[0] = HLL_REGISTERS - this.sparseSize;
      for (let i = 0; i < this.sparseSize; i++) histogram[this.sparse![i]! & 0xff]!++;
    }
    return histogram;
  }

  /** The estimated number of distinct items added (rounded to an integer). */
  count(): number {
    return (this.estimate ??= estimateFromHistogram(this.histogram()));
  }

  /** Makes this the sketch of the union (register-wise max); returns whether anything changed. */
  merge(other: HyperLogLog): boolean {
    if (!(other instanceof HyperLogLog)) throw new InvalidArgumentError("merge needs a HyperLogLog");
    let changed = false;
    if (other.dense === undefined) {
      for (let i = 0; i < other.sparseSize; i++) {
        const entry = other.sparse![i]!;
        if (this.raise(entry >>> 8, entry & 0xff)) changed = true;
      }
      return changed;
    }
    if (this.dense === undefined) this.toDense();
    const mine = this.dense!;
    const theirs = other.dense;
    for (let i = 0; i < HLL_REGISTERS; i++) {
      if (theirs[i]! > mine[i]!) {
        mine[i] = theirs[i]!;
        changed = true;
      }
    }
    if (changed) this.estimate = undefined;
    return changed;
  }

  clone(): HyperLogLog {
    const copy = new HyperLogLog();
    copy.sparse = this.sparse?.slice();
    copy.sparseSize = this.sparseSize;
    copy.dense = this.dense?.slice();
    copy.estimate = this.estimate;
    return copy;
  }

  encode(): Uint8Array {
    const writer = beginEnvelope(
      KIND_MAGIC.hyperLogLog,
      FORMAT_VERSION,
      this.dense === undefined ? 16 + this.sparseSize * 3 : 16 + DENSE_PACKED_BYTES,
    );
    writer.u8(HLL_PRECISION);
    if (this.dense === undefined) {
      writer.u8(FORM_SPARSE);
      writeUvarint(writer, this.sparseSize);
      for (let i = 0; i < this.sparseSize; i++) {
        const entry = this.sparse![i]!;
        writer.u16(entry >>> 8);
        writer.u8(entry & 0xff);
      }
    } else {
      writer.u8(FORM_DENSE);
      const dense = this.dense;
      // Four 6-bit registers in three bytes.
      for (let i = 0; i < HLL_REGISTERS; i += 4) {
        const r0 = dense[i]!;
        const r1 = dense[i + 1]!;
        const r2 = dense[i + 2]!;
        const r3 = dense[i + 3]!;
        writer.u8((r0 << 2) | (r1 >>> 4));
        writer.u8(((r1 & 0xf) << 4) | (r2 >>> 2));
        writer.u8(((r2 & 0x3) << 6) | r3);
      }
    }
    return sealEnvelope(writer);
  }

  static decode(bytes: Uint8Array): HyperLogLog {
    const reader = openEnvelope(bytes, KIND_MAGIC.hyperLogLog, FORMAT_VERSION, "HyperLogLog");
    const precision = reader.u8();
    if (precision !== HLL_PRECISION) reader.fail(`precision ${precision}, this build reads only ${HLL_PRECISION}`);
    const form = reader.u8();
    const sketch = new HyperLogLog();
    if (form === FORM_SPARSE) {
      const size = readUvarint(reader);
      if (size > SPARSE_MAX) reader.fail(`${size} sparse registers exceed ${SPARSE_MAX}`);
      const sparse = new Uint32Array(Math.max(16, size));
      let previous = -1;
      for (let i = 0; i < size; i++) {
        const index = reader.u16();
        const rho = reader.u8();
        if (index >= HLL_REGISTERS || index <= previous) reader.fail(`sparse register index ${index} out of order or range`);
        if (rho < 1 || rho > RHO_MAX) reader.fail(`register value ${rho} outside 1..${RHO_MAX}`);
        sparse[i] = (index << 8) | rho;
        previous = index;
      }
      sketch.sparse = sparse;
      sketch.sparseSize = size;
    } else if (form === FORM_DENSE) {
      const packed = reader.subarray(DENSE_PACKED_BYTES);
      const dense = new Uint8Array(HLL_REGISTERS);
      for (let i = 0, b = 0; i < HLL_REGISTERS; i += 4, b += 3) {
        const b0 = packed[b]!;
        const b1 = packed[b + 1]!;
        const b2 = packed[b + 2]!;
        dense[i] = b0 >>> 2;
        dense[i + 1] = ((b0 & 0x3) << 4) | (b1 >>> 4);
        dense[i + 2] = ((b1 & 0xf) << 2) | (b2 >>> 6);
        dense[i + 3] = b2 & 0x3f;
      }
      let nonZero = 0;
      for (let i = 0; i < HLL_REGISTERS; i++) {
        if (dense[i]! > RHO_MAX) reader.fail(`register ${i} holds ${dense[i]}, above ${RHO_MAX}`);
        if (dense[i] !== 0) nonZero++;
      }
      // Canonical form: a dense sketch has more than SPARSE_MAX non-zero registers.
      if (nonZero <= SPARSE_MAX) reader.fail(`dense form with only ${nonZero} non-zero registers`);
      sketch.sparse = undefined;
      sketch.dense = dense;
    } else {
      reader.fail(`unknown form ${form}`);
    }
    reader.expectEnd(4);
    return sketch;
  }
}

/** Ertl 2017, Algorithm 6 (improved raw estimator), from the register histogram. */
export function estimateFromHistogram(histogram: readonly number[]): number {
  assert(histogram.length === RHO_MAX + 1, "histogram has q + 2 entries");
  const m = HLL_REGISTERS;
  let z = m * tau(1 - histogram[Q + 1]! / m);
  for (let k = Q; k >= 1; k--) z = 0.5 * (z + histogram[k]!);
  z += m * sigma(histogram[0]! / m);
  return Math.round((ALPHA_INFINITY * m * m) / z);
}

function sigma(x: number): number {
  if (x === 1) return Infinity;
  let y = 1;
  let z = x;
  let previous: number;
  do {
    x *= x;
    previous = z;
    z += x * y;
    y += y;
  } while (z !== previous);
  return z;
}

function tau(x: number): number {
  if (x === 0 || x === 1) return 0;
  let y = 1;
  let z = 1 - x;
  let previous: number;
  do {
    x = Math.sqrt(x);
    previous = z;
    y *= 0.5;
    z -= (1 - x) * (1 - x) * y;
  } while (z !== previous);
  return z / 3;
}
