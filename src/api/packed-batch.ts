/**
 * The packed form of an add-only batch (BatchRequest.packed_adds, codec in src/util/packed-adds.ts)
 * and of its results (BatchResponse.packed_results): one bytes field instead of 10,000 BatchOp /
 * OpResult messages. Decoding those through protobufjs made an object, a oneof object and two
 * decimal strings per op on both sides; the profile of a 10,000-op AddBatch put that churn at
 * about a third of the client's CPU and a tenth of the leader's.
 *
 *   packed_results  per op, in request order: value (int64 LE), version (uint64 LE, a log index
 *                   below 2^53).
 */
import { InvalidArgumentError } from "../util/errors.js";
import { NATIVE_LITTLE_ENDIAN } from "../util/int64.js";
import { encodePackedAdds, type PackedAdd } from "../util/packed-adds.js";

export const PACKED_RESULT_BYTES = 16;
const TWO_32 = 2 ** 32;
const INT32_MIN = -0x8000_0000n;
const INT32_MAX = 0x7fff_ffffn;
/** The high 32 bits of a safe integer. */
const VERSION_HIGH_MAX = 2 ** 21 - 1;

export { countPackedAdds, decodePackedAdds, type DecodedAdd, type PackedAdd } from "../util/packed-adds.js";

export interface PackedResult {
  value: bigint;
  version: number;
}

/** The packed_adds field of a batch of plain adds (a Buffer view of the encoding, no copy). */
export function encodePackedAddsField(ops: ReadonlyArray<PackedAdd>): Buffer {
  const bytes = encodePackedAdds(ops);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function encodePackedResults(results: ReadonlyArray<PackedResult>): Buffer {
  const out = Buffer.allocUnsafe(results.length * PACKED_RESULT_BYTES);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0, at = 0; i < results.length; i++, at += PACKED_RESULT_BYTES) {
    const result = results[i]!;
    const value = result.value;
    const version = result.version;
    if (!Number.isSafeInteger(version) || version < 0)
      throw new InvalidArgumentError(`results[${i}].version: ${version} is not a log index`);
    // Values that fit 32 bits (most counters) are written without bigint arithmetic.
    if (value >= INT32_MIN && value <= INT32_MAX) {
      const low = Number(value);
      view.setInt32(at, low, true);
      view.setInt32(at + 4, low < 0 ? -1 : 0, true);
    } else {
      view.setBigInt64(at, value, true);
    }
    view.setUint32(at + 8, version % TWO_32, true);
    view.setUint32(at + 12, Math.floor(version / TWO_32), true);
  }
  return out;
}

/**
 * encodePackedResults of results that all have one version (a shard's mutate of packed adds:
 * CommandResult.packedValues), from the values as they are: no bigint read per op.
 */
export function encodePackedValues(values: BigInt64Array, version: number): Buffer {
  if (!Number.isSafeInteger(version) || version < 0) throw new InvalidArgumentError(`results version: ${version} is not a log index`);
  const out = Buffer.allocUnsafe(values.length * PACKED_RESULT_BYTES);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const source = new DataView(values.buffer, values.byteOffset, values.byteLength);
  const versionLow = version % TWO_32;
  const versionHigh = Math.floor(version / TWO_32);
  for (let i = 0, at = 0; i < values.length; i++, at += PACKED_RESULT_BYTES) {
    // BigInt64Array holds native byte order; the wire's is little-endian.
    view.setUint32(at, source.getUint32(i * 8 + (NATIVE_LITTLE_ENDIAN ? 0 : 4), NATIVE_LITTLE_ENDIAN), true);
    view.setUint32(at + 4, source.getUint32(i * 8 + (NATIVE_LITTLE_ENDIAN ? 4 : 0), NATIVE_LITTLE_ENDIAN), true);
    view.setUint32(at + 8, versionLow, true);
    view.setUint32(at + 12, versionHigh, true);
  }
  return out;
}

/** The packed results of a shard's mutate result: from its packed values when it has them. */
export function encodePackedResultsOf(result: {
  readonly results: ReadonlyArray<PackedResult>;
  readonly packedValues?: BigInt64Array;
  readonly packedVersion?: number;
}): Buffer {
  const values = result.packedValues;
  return values !== undefined ? encodePackedValues(values, result.packedVersion!) : encodePackedResults(result.results);
}

/** Throws InvalidArgumentError unless `bytes` are `count` packed results with versions below 2^53. */
export function checkPackedResults(bytes: Uint8Array, count: number): void {
  if (bytes.length !== count * PACKED_RESULT_BYTES) {
    throw new InvalidArgumentError(`packed_results: ${bytes.length} bytes for ${count} ops (want ${count * PACKED_RESULT_BYTES})`);
  }
  // The high word of each version is at byte 12 of its record.
  for (let i = 0, at = 12; i < count; i++, at += PACKED_RESULT_BYTES) {
    const high = bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
    if (high < 0 || high > VERSION_HIGH_MAX)
      throw new InvalidArgumentError(`packed_results: results[${i}].version is 2^53 or more, not a log index`);
  }
}

/** `count` results (the request's op count); throws InvalidArgumentError when the size or a version is wrong. */
export function decodePackedResults(bytes: Uint8Array, count: number): PackedResult[] {
  checkPackedResults(bytes, count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const results: PackedResult[] = new Array(count);
  for (let i = 0; i < count; i++) {
    results[i] = {
      value: view.getBigInt64(i * PACKED_RESULT_BYTES, true),
      version: view.getUint32(i * PACKED_RESULT_BYTES + 12, true) * TWO_32 + view.getUint32(i * PACKED_RESULT_BYTES + 8, true),
    };
  }
  return results;
}
