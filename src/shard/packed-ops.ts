/**
 * Packed adds (src/util/packed-adds.ts) as a decoded entry's ops. A command decoded from an entry
 * that carries packed bytes keeps them (`packedAdds`) and decodes `ops` only when something reads
 * them: the apply path of a shard without kinds (mutation.ts mutatePacked) reads keys and deltas
 * straight from the bytes, so a replica applying 10,000 adds makes no object per op. Objects that
 * lived through one entry's apply were most of what the collector promoted under batched writes
 * (V8 then allocated them in the old generation outright), and each major collection was a pause.
 */
import { decodePackedAdds, PACKED_KEY_BYTES_MAX, scanPackedAdds } from "../util/packed-adds.js";
import type { CounterOp, MutatingCommand } from "./command-types.js";

/** Structure only: the bounds (op count, key size) are validateCommand's, checked at apply. */
const STRUCTURE_LIMITS = { maxOps: Number.POSITIVE_INFINITY, maxKeyBytes: PACKED_KEY_BYTES_MAX };

/** Throws InvalidArgumentError (naming the op) when the bytes are not packed adds. */
export function checkPackedStructure(bytes: Uint8Array): void {
  scanPackedAdds(bytes, STRUCTURE_LIMITS);
}

/**
 * Sets the command's ops to packed bytes already checked by checkPackedStructure: `packedAdds`
 * holds them, `ops` is their decoding, made on first read and kept (the invariant of
 * command-types.ts holds either way).
 */
export function attachPackedOps(command: MutatingCommand, bytes: Uint8Array): void {
  command.packedAdds = bytes;
  let ops: CounterOp[] | undefined;
  Object.defineProperty(command, "ops", {
    get: () => (ops ??= decodePackedAdds(bytes, STRUCTURE_LIMITS)),
    enumerable: true,
    configurable: true,
  });
}
