/**
 * The packed form of a batch of plain adds (no floor, no TTL): per op, back to back, key length
 * (u16 big-endian), key bytes, delta (int64 little-endian). One byte string instead of an object
 * (protobuf) or an array (msgpack) per op. It travels in BatchRequest.packed_adds (src/api) and,
 * as the same bytes, in the shard's Raft entry (src/shard/commands.ts), so a leader proposes what
 * the client sent without re-encoding it. The form is canonical: one batch has one encoding.
 *
 * Pure (Uint8Array and DataView only): src/shard uses it. Decoding checks structure and limits,
 * names the first bad op, and never returns a partial batch; keys are views into `bytes`.
 */
import { InvalidArgumentError } from "./errors.js";
import { INT64_MAX, INT64_MIN } from "./int64.js";

const KEY_LENGTH_BYTES = 2;
const DELTA_BYTES = 8;
/** A key length has 16 bits. */
export const PACKED_KEY_BYTES_MAX = 0xffff;

export interface PackedAdd {
  key: Uint8Array;
  delta: bigint;
}

/** A decoded op: shaped as the shard's add CounterOp, so it is used as it is. */
export interface DecodedAdd extends PackedAdd {
  kind: "add";
}

export function encodePackedAdds(ops: ReadonlyArray<PackedAdd>): Uint8Array {
  let size = 0;
  for (const op of ops) size += KEY_LENGTH_BYTES + op.key.length + DELTA_BYTES;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (let i = 0; i < ops.length; i++) {
    const { key, delta } = ops[i]!;
    if (key.length === 0 || key.length > PACKED_KEY_BYTES_MAX)
      throw new InvalidArgumentError(`ops[${i}].key: keys must be 1 to ${PACKED_KEY_BYTES_MAX} bytes, got ${key.length}`);
    if (delta < INT64_MIN || delta > INT64_MAX)
      throw new InvalidArgumentError(`ops[${i}].delta: ${delta} is outside the signed 64-bit range`);
    view.setUint16(at, key.length);
    out.set(key, at + KEY_LENGTH_BYTES);
    at += KEY_LENGTH_BYTES + key.length;
    view.setBigInt64(at, delta, true);
    at += DELTA_BYTES;
  }
  return out;
}

/** The ops of a packed batch; throws InvalidArgumentError naming the first bad op. */
export function decodePackedAdds(bytes: Uint8Array, limits: { maxOps: number; maxKeyBytes: number }): DecodedAdd[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ops: DecodedAdd[] = [];
  let at = 0;
  while (at < bytes.length) {
    const keyStart = checkedKeyStart(bytes, at, ops.length, limits);
    const deltaStart = keyStart + ((bytes[at]! << 8) | bytes[at + 1]!);
    ops.push({ kind: "add", key: bytes.subarray(keyStart, deltaStart), delta: readInt64LE(view, deltaStart) });
    at = deltaStart + DELTA_BYTES;
  }
  if (ops.length === 0) throw new InvalidArgumentError("packed_adds: a batch needs at least one operation");
  return ops;
}

/**
 * The op count of a packed batch, with every check of decodePackedAdds (same errors) and no object
 * per op: the shard applies packed adds straight from their bytes (mutation.ts).
 */
export function scanPackedAdds(bytes: Uint8Array, limits: { maxOps: number; maxKeyBytes: number }): number {
  let count = 0;
  let at = 0;
  while (at < bytes.length) {
    at = checkedKeyStart(bytes, at, count, limits) + ((bytes[at]! << 8) | bytes[at + 1]!) + DELTA_BYTES;
    count++;
  }
  if (count === 0) throw new InvalidArgumentError("packed_adds: a batch needs at least one operation");
  return count;
}

/** Where op i's key starts, once its length and its whole op are checked to fit; throws naming op i. */
function checkedKeyStart(bytes: Uint8Array, at: number, i: number, limits: { maxOps: number; maxKeyBytes: number }): number {
  if (i >= limits.maxOps)
    throw new InvalidArgumentError(`packed_adds: more than ${limits.maxOps} operations exceed the batch limit of ${limits.maxOps}`);
  if (at + KEY_LENGTH_BYTES > bytes.length) throw new InvalidArgumentError(`packed_adds: ops[${i}] is truncated (no key length)`);
  const keyLength = (bytes[at]! << 8) | bytes[at + 1]!;
  if (keyLength === 0) throw new InvalidArgumentError(`ops[${i}].key: keys must be 1 to ${limits.maxKeyBytes} bytes, got an empty key`);
  if (keyLength > limits.maxKeyBytes)
    throw new InvalidArgumentError(`ops[${i}].key: keys must be 1 to ${limits.maxKeyBytes} bytes, got ${keyLength}`);
  const keyStart = at + KEY_LENGTH_BYTES;
  if (keyStart + keyLength + DELTA_BYTES > bytes.length)
    throw new InvalidArgumentError(`packed_adds: ops[${i}] is truncated (${bytes.length - keyStart} of ${keyLength + DELTA_BYTES} bytes)`);
  return keyStart;
}

/** Integers -SMALL_INT64..SMALL_INT64 as shared bigints: reading one allocates nothing (bigints are immutable). */
const SMALL_INT64 = 1024;
const SMALL_INT64S: readonly bigint[] = Array.from({ length: 2 * SMALL_INT64 + 1 }, (_, i) => BigInt(i - SMALL_INT64));

/** view.getBigInt64(at, true), but a small value (most deltas and counts) is a shared bigint. */
export function readInt64LE(view: DataView, at: number): bigint {
  const low = view.getInt32(at, true);
  const high = view.getInt32(at + 4, true);
  if (high === (low < 0 ? -1 : 0) && low >= -SMALL_INT64 && low <= SMALL_INT64) return SMALL_INT64S[low + SMALL_INT64]!;
  return view.getBigInt64(at, true);
}

/**
 * The keys of packed bytes, read leniently for access checks that run before validation: where
 * the bytes stop making sense (an empty or truncated op), `malformed` stands for the rest, so a
 * check that covers every key listed covers the request. Such a request fails decoding anyway.
 */
export function packedAddKeys(bytes: Uint8Array, malformed: Uint8Array): Uint8Array[] {
  const keys: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    const keyLength = at + KEY_LENGTH_BYTES <= bytes.length ? (bytes[at]! << 8) | bytes[at + 1]! : 0;
    const end = at + KEY_LENGTH_BYTES + keyLength + DELTA_BYTES;
    if (keyLength === 0 || end > bytes.length) {
      keys.push(malformed);
      break;
    }
    keys.push(bytes.subarray(at + KEY_LENGTH_BYTES, at + KEY_LENGTH_BYTES + keyLength));
    at = end;
  }
  return keys;
}

/** The op count of packed bytes already accepted by decodePackedAdds (for metrics). */
export function countPackedAdds(bytes: Uint8Array): number {
  let count = 0;
  for (let at = 0; at + KEY_LENGTH_BYTES <= bytes.length; count++)
    at += KEY_LENGTH_BYTES + ((bytes[at]! << 8) | bytes[at + 1]!) + DELTA_BYTES;
  return count;
}
