/**
 * The request digest: what a mutate asks for, reduced to 32 bits, so that a retry of a seq can be
 * told from a reuse of it with other ops (sessions.ts keeps it with the retained outcome).
 */
import { unreachable } from "../util/assert.js";
import { fmix32 } from "../util/hash.js";
import type { CounterOp } from "./command-types.js";

/**
 * A digest of what a mutate asks for (its ops, not its routing or acknowledgements), kept with the
 * retained outcome: a retry of a seq must carry the same ops, or it is refused. A 32-bit FNV-1a
 * style mix with a final avalanche, allocation-free (it runs for every mutate on every replica):
 * a guard against a client reusing a seq by mistake, not against a forger (a session is usable
 * only by its owner). Deterministic, so every replica decides alike.
 */
export function requestDigest(ops: readonly CounterOp[]): number {
  let h = FNV_OFFSET;
  for (let o = 0; o < ops.length; o++) {
    const op = ops[o]!;
    h = mixWord(h, OP_TAGS[op.kind]);
    h = mixBytes(h, op.key);
    switch (op.kind) {
      case "add":
        h = mixOptional(mixBigint(h, op.delta), op.floor);
        h = mixOptional(h, op.ttlMs);
        break;
      case "set":
        h = mixOptional(mixBigint(h, op.value), op.ttlMs);
        break;
      case "reset":
        break;
      case "cas":
        h = mixBigint(mixNumber(h, op.expectedVersion), op.value);
        break;
      case "window":
        h = mixOptional(mixOptional(mixBigint(h, op.delta), op.eventTimeMs), op.ttlMs);
        break;
      case "acquire":
        h = mixNumber(mixNumber(mixNumber(h, op.n), op.limit), op.windowMs);
        break;
      case "unique":
        h = mixWord(mixOptional(h, op.ttlMs), op.items.length);
        for (const item of op.items) h = mixBytes(h, item);
        break;
      default:
        unreachable(op);
    }
  }
  // Avalanche, so digests of near-equal requests differ in many bits.
  return fmix32(h);
}

/**
 * requestDigest of the packed adds' decoding (src/util/packed-adds.ts), read from the bytes: the
 * same words in the same order (an add's tag, its key, its delta's two words, absent floor and
 * TTL), so a retry may carry either form. Bytes checked by scanPackedAdds.
 */
export function packedRequestDigest(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const addTag = OP_TAGS.add;
  let h = FNV_OFFSET;
  let at = 0;
  while (at < bytes.length) {
    const length = (bytes[at]! << 8) | bytes[at + 1]!;
    const keyStart = at + 2;
    h = mixWord(mixWord(h, addTag), length);
    for (let i = keyStart; i < keyStart + length; i++) h = Math.imul(h ^ bytes[i]!, FNV_PRIME);
    at = keyStart + length;
    // mixBigint's two words are the int64's low and high halves, whatever its size.
    h = mixWord(mixWord(h, view.getInt32(at, true)), view.getInt32(at + 4, true));
    h = mixWord(mixWord(h, 0), 0); // no floor, no TTL
    at += 8;
  }
  return fmix32(h);
}

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;
const OP_TAGS: Readonly<Record<CounterOp["kind"], number>> = { add: 1, set: 2, reset: 3, cas: 4, window: 5, acquire: 6, unique: 7 };

function mixWord(h: number, word: number): number {
  h = Math.imul(h ^ (word & 0xff), FNV_PRIME);
  h = Math.imul(h ^ ((word >>> 8) & 0xff), FNV_PRIME);
  h = Math.imul(h ^ ((word >>> 16) & 0xff), FNV_PRIME);
  return Math.imul(h ^ (word >>> 24), FNV_PRIME);
}

/** The length, then every byte: ("ab","c") and ("a","bc") differ. */
function mixBytes(h: number, bytes: Uint8Array): number {
  h = mixWord(h, bytes.length);
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, FNV_PRIME);
  return h;
}

/** An exact 64-bit integer as two words; small values (the common case) take no bigint arithmetic. */
function mixBigint(h: number, value: bigint): number {
  if (value >= -0x8000_0000n && value <= 0x7fff_ffffn) return mixWord(mixWord(h, Number(value)), Number(value) < 0 ? -1 : 0);
  return mixWord(mixWord(h, Number(BigInt.asUintN(32, value))), Number(BigInt.asIntN(32, value >> 32n)));
}

/** A safe integer (counts, times, versions) as two words. */
function mixNumber(h: number, value: number): number {
  return mixWord(mixWord(h, value | 0), Math.floor(value / 0x1_0000_0000) | 0);
}

/** Absent and 0 differ: a presence word, then the value. */
function mixOptional(h: number, value: bigint | number | undefined): number {
  if (value === undefined) return mixWord(h, 0);
  h = mixWord(h, 1);
  return typeof value === "bigint" ? mixBigint(h, value) : mixNumber(h, value);
}
