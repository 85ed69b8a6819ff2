/**
 * Byte-level mutations and hand-made protobuf for the fuzzer. Everything draws from one seeded
 * Prng, so a seed replays the same inputs.
 */
import type { Prng } from "../../src/util/prng.js";

export function randomBytes(prng: Prng, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = prng.nextInt(256);
  return bytes;
}

export function pick<T>(prng: Prng, items: readonly T[]): T {
  if (items.length === 0) throw new Error("pick from an empty list");
  return items[prng.nextInt(items.length)]!;
}

/** A protobuf varint (unsigned; bigint so 64-bit and over-long values can be written). */
export function varint(value: bigint): Buffer {
  const bytes: number[] = [];
  let rest = BigInt.asUintN(70, value);
  do {
    let byte = Number(rest & 0x7fn);
    rest >>= 7n;
    if (rest !== 0n) byte |= 0x80;
    bytes.push(byte);
  } while (rest !== 0n);
  return Buffer.from(bytes);
}

/** A field of wire type 0 (varint). */
export function varintField(field: number, value: bigint): Buffer {
  return Buffer.concat([varint(BigInt((field << 3) | 0)), varint(value)]);
}

/** A field of wire type 2 (length-delimited). */
export function bytesField(field: number, payload: Buffer): Buffer {
  return Buffer.concat([varint(BigInt((field << 3) | 2)), varint(BigInt(payload.length)), payload]);
}

/** Structure-aware damage: every mutator keeps some of the original so decoders get deep. */
const mutators: Array<(prng: Prng, input: Buffer) => Buffer> = [
  // flip one to eight bits
  (prng, input) => {
    const out = Buffer.from(input);
    if (out.length === 0) return out;
    for (let n = 1 + prng.nextInt(8); n > 0; n--) out[prng.nextInt(out.length)]! ^= 1 << prng.nextInt(8);
    return out;
  },
  // truncate
  (prng, input) => input.subarray(0, prng.nextInt(Math.max(1, input.length))),
  // insert random bytes
  (prng, input) => {
    const at = prng.nextInt(input.length + 1);
    return Buffer.concat([input.subarray(0, at), randomBytes(prng, 1 + prng.nextInt(16)), input.subarray(at)]);
  },
  // overwrite a byte with an interesting value
  (prng, input) => {
    const out = Buffer.from(input);
    if (out.length > 0) out[prng.nextInt(out.length)] = pick(prng, [0x00, 0x01, 0x7f, 0x80, 0xff, 0x08, 0x0a, 0x12]);
    return out;
  },
  // duplicate a slice (repeated fields, doubled messages)
  (prng, input) => {
    if (input.length === 0) return input;
    const start = prng.nextInt(input.length);
    const end = start + prng.nextInt(input.length - start + 1);
    return Buffer.concat([input.subarray(0, end), input.subarray(start, end), input.subarray(end)]);
  },
  // append an unknown field, or a known field with the wrong wire type
  (prng, input) => {
    const field = pick(prng, [1, 2, 3, 4, 5, 6, 7, 8, 15, 536870911]);
    const wireType = prng.nextInt(6);
    const tail =
      wireType === 2
        ? Buffer.concat([varint(BigInt(prng.nextInt(40))), randomBytes(prng, prng.nextInt(20))])
        : randomBytes(prng, prng.nextInt(12));
    return Buffer.concat([input, varint(BigInt(field * 8 + wireType)), tail]);
  },
  // an over-long (11-byte) varint or a length prefix far past the end
  (prng, input) => {
    const at = prng.nextInt(input.length + 1);
    const bad = prng.chance(0.5)
      ? Buffer.from([0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
      : Buffer.from([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    return Buffer.concat([input.subarray(0, at), bad, input.subarray(at)]);
  },
];

export function mutate(prng: Prng, input: Buffer): Buffer {
  let out = input;
  for (let rounds = 1 + prng.nextInt(3); rounds > 0; rounds--) out = pick(prng, mutators)(prng, out);
  return out;
}
