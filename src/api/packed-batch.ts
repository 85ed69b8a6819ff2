/**
 * The packed form of an add-only batch (BatchRequest.packed_adds) and of its results
 * (BatchResponse.packed_results): one bytes field instead of 10,000 BatchOp / OpResult messages.
 * Decoding those through protobufjs made an object, a oneof object and two decimal strings per op
 * on both sides; the profile of a 10,000-op AddBatch put that churn at about a third of the
 * client's CPU and a tenth of the leader's.
 *
 *   packed_adds     per op, back to back: key length (u16 big-endian), key bytes, delta (int64
 *                   little-endian). A plain add only: no floor, no TTL (those use `ops`).
 *   packed_results  per op, in request order: value (int64 LE), version (uint64 LE, a log index
 *                   below 2^53).
 *
 * Decoding checks structure and limits and names the first bad op; it never returns a partial
 * batch. Keys decoded from a request are views into its buffer, as protobufjs's bytes are.
 */
import { InvalidArgumentError } from "../util/errors.js";

const KEY_LENGTH_BYTES = 2;
const DELTA_BYTES = 8;
export const PACKED_RESULT_BYTES = 16;
/** A key length has 16 bits on the wire. */
export const PACKED_KEY_BYTES_MAX = 0xffff;
const TWO_32 = 2 ** 32;
/** The high 32 bits of a safe integer. */
const VERSION_HIGH_MAX = 2 ** 21 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export interface PackedAdd {
  key: Uint8Array;
  delta: bigint;
}

export interface PackedResult {
  value: bigint;
  version: number;
}

export function encodePackedAdds(ops: ReadonlyArray<PackedAdd>): Buffer {
  let size = 0;
  for (const op of ops) size += KEY_LENGTH_BYTES + op.key.length + DELTA_BYTES;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (let i = 0; i < ops.length; i++) {
    const { key, delta } = ops[i]!;
    if (key.length === 0 || key.length > PACKED_KEY_BYTES_MAX) throw new InvalidArgumentError(`ops[${i}].key: keys must be 1 to ${PACKED_KEY_BYTES_MAX} bytes, got ${key.length}`);
    if (delta < INT64_MIN || delta > INT64_MAX) throw new InvalidArgumentError(`ops[${i}].delta: ${delta} is outside the signed 64-bit range`);
    out.writeUInt16BE(key.length, at);
    out.set(key, at + KEY_LENGTH_BYTES);
    at += KEY_LENGTH_BYTES + key.length;
    out.writeBigInt64LE(delta, at);
    at += DELTA_BYTES;
  }
  return out;
}

/** The ops of a packed_adds field; throws InvalidArgumentError naming the first bad op. */
export function decodePackedAdds(bytes: Uint8Array, limits: { maxOps: number; maxKeyBytes: number }): PackedAdd[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ops: PackedAdd[] = [];
  let at = 0;
  while (at < bytes.length) {
    const i = ops.length;
    if (i >= limits.maxOps) throw new InvalidArgumentError(`packed_adds: more than ${limits.maxOps} operations exceed the batch limit of ${limits.maxOps}`);
    if (at + KEY_LENGTH_BYTES > bytes.length) throw new InvalidArgumentError(`packed_adds: ops[${i}] is truncated (no key length)`);
    const keyLength = view.getUint16(at);
    if (keyLength === 0) throw new InvalidArgumentError(`ops[${i}].key: keys must be 1 to ${limits.maxKeyBytes} bytes, got an empty key`);
    if (keyLength > limits.maxKeyBytes) throw new InvalidArgumentError(`ops[${i}].key: keys must be 1 to ${limits.maxKeyBytes} bytes, got ${keyLength}`);
    const keyStart = at + KEY_LENGTH_BYTES;
    const deltaStart = keyStart + keyLength;
    if (deltaStart + DELTA_BYTES > bytes.length) throw new InvalidArgumentError(`packed_adds: ops[${i}] is truncated (${bytes.length - keyStart} of ${keyLength + DELTA_BYTES} bytes)`);
    ops.push({ key: bytes.subarray(keyStart, deltaStart), delta: view.getBigInt64(deltaStart, true) });
    at = deltaStart + DELTA_BYTES;
  }
  if (ops.length === 0) throw new InvalidArgumentError("packed_adds: a batch needs at least one operation");
  return ops;
}

/** The op count of a packed_adds field already accepted by decodePackedAdds (for metrics). */
export function countPackedAdds(bytes: Uint8Array): number {
  let count = 0;
  for (let at = 0; at + KEY_LENGTH_BYTES <= bytes.length; count++) at += KEY_LENGTH_BYTES + ((bytes[at]! << 8) | bytes[at + 1]!) + DELTA_BYTES;
  return count;
}

export function encodePackedResults(results: ReadonlyArray<PackedResult>): Buffer {
  const out = Buffer.allocUnsafe(results.length * PACKED_RESULT_BYTES);
  for (let i = 0; i < results.length; i++) {
    const { value, version } = results[i]!;
    if (!Number.isSafeInteger(version) || version < 0) throw new InvalidArgumentError(`results[${i}].version: ${version} is not a log index`);
    out.writeBigInt64LE(value, i * PACKED_RESULT_BYTES);
    out.writeUInt32LE(version % TWO_32, i * PACKED_RESULT_BYTES + 8);
    out.writeUInt32LE(Math.floor(version / TWO_32), i * PACKED_RESULT_BYTES + 12);
  }
  return out;
}

/** `count` results (the request's op count); throws InvalidArgumentError when the size or a version is wrong. */
export function decodePackedResults(bytes: Uint8Array, count: number): PackedResult[] {
  if (bytes.length !== count * PACKED_RESULT_BYTES) {
    throw new InvalidArgumentError(`packed_results: ${bytes.length} bytes for ${count} ops (want ${count * PACKED_RESULT_BYTES})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const results: PackedResult[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const high = view.getUint32(i * PACKED_RESULT_BYTES + 12, true);
    if (high > VERSION_HIGH_MAX) throw new InvalidArgumentError(`packed_results: results[${i}].version is 2^53 or more, not a log index`);
    results[i] = { value: view.getBigInt64(i * PACKED_RESULT_BYTES, true), version: high * TWO_32 + view.getUint32(i * PACKED_RESULT_BYTES + 8, true) };
  }
  return results;
}
