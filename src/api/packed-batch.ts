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
import { encodePackedAdds, type PackedAdd } from "../util/packed-adds.js";

export const PACKED_RESULT_BYTES = 16;
const TWO_32 = 2 ** 32;
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
  for (let i = 0; i < results.length; i++) {
    const { value, version } = results[i]!;
    if (!Number.isSafeInteger(version) || version < 0)
      throw new InvalidArgumentError(`results[${i}].version: ${version} is not a log index`);
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
    results[i] = {
      value: view.getBigInt64(i * PACKED_RESULT_BYTES, true),
      version: high * TWO_32 + view.getUint32(i * PACKED_RESULT_BYTES + 8, true),
    };
  }
  return results;
}
