/**
 * Where an escrowed key's rights live (docs/regions.md, "Escrow: a global floor"; ADR 0012), all
 * reserved (`\0tally:escrow:`, cluster-owned, never shipped as components) and all in the slot of
 * the user key K, so a decrement of K and the spending of the rights it needs are one atomic batch
 * on one shard:
 *
 * - `\0tally:escrow:r:<K'>`: the rights this region holds to decrement K;
 * - `\0tally:escrow:o:<to>:<K'>`: rights this region has transferred to region `to` (only grows);
 * - `\0tally:escrow:i:<from>:<K'>`: what this region has received from region `from`: the value of
 *   `from`'s `o:<here>:` counter as last applied here (only grows: the max-merge guard);
 * - `\0tally:escrow:d:<K'>` = 1 and `\0tally:escrow:f:<K'>` = F: the floor, declared in one region.
 *
 * `<K'>` places the key in K's slot (src/meta/slots.ts): a key with a hash tag is written as is
 * (`t:` + K: the prefix has no brace, so K's own tag is the first one); a key without one as
 * `u:{` + K + `}`, whose tag is K itself. A key without a tag that contains `}` cannot be so placed
 * (its tag would end early) and is refused: give it a hash tag.
 */
import { hashedPart } from "../meta/slots.js";
import { InvalidArgumentError } from "../util/errors.js";
import { checkRegion, isReserved } from "./region-keys.js";
import { encodeKey, KEY_BYTES_MAX, type Key } from "./values.js";

/** A key for messages: printable ASCII as is, other bytes as \xNN, quoted, cut at 64 bytes. */
export function describeKey(key: Uint8Array): string {
  let out = "";
  for (const byte of key.subarray(0, 64))
    out +=
      byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c
        ? String.fromCharCode(byte)
        : `\\x${byte.toString(16).padStart(2, "0")}`;
  return `"${out}"${key.length > 64 ? `... (${key.length} bytes)` : ""}`;
}

export const ESCROW_PREFIX = "\0tally:escrow:";
const CLOSE_BRACE = 0x7d;

/** The slot-preserving suffix `<K'>` of every escrow key of `key`; refuses keys it cannot place. */
export function escrowSuffix(key: Key): Buffer {
  const encoded = Buffer.from(encodeKey(key));
  if (isReserved(encoded)) throw new InvalidArgumentError(`escrow: ${describeKey(encoded)} is a reserved key`);
  if (hashedPart(encoded).length !== encoded.length) return Buffer.concat([Buffer.from("t:"), encoded]);
  if (encoded.includes(CLOSE_BRACE))
    throw new InvalidArgumentError(
      `escrow: ${describeKey(encoded)} has no hash tag and contains '}': its rights cannot share its slot; give it a hash tag ({tag}rest)`,
    );
  return Buffer.concat([Buffer.from("u:{"), encoded, Buffer.from("}")]);
}

function escrowKey(kind: string, suffix: Buffer): Buffer {
  const key = Buffer.concat([Buffer.from(`${ESCROW_PREFIX}${kind}`), suffix]);
  if (key.length > KEY_BYTES_MAX)
    throw new InvalidArgumentError(
      `escrow: the key is too long to escrow (its rights key would be ${key.length} bytes, over ${KEY_BYTES_MAX})`,
    );
  return key;
}

export interface EscrowKeys {
  /** The user key. */
  key: Buffer;
  rights: Buffer;
  declared: Buffer;
  floor: Buffer;
  /** Transferred out to `to` (local, grows). */
  out(to: string): Buffer;
  /** Received from `from` (local copy of from's out(here), grows). */
  received(from: string): Buffer;
}

/** Every escrow key of `key` (checked once; region names are checked when used). */
export function escrowKeys(key: Key): EscrowKeys {
  const suffix = escrowSuffix(key);
  const keys: EscrowKeys = {
    key: Buffer.from(encodeKey(key)),
    rights: escrowKey("r:", suffix),
    declared: escrowKey("d:", suffix),
    floor: escrowKey("f:", suffix),
    out: (to) => escrowKey(`o:${checkRegion(to)}:`, suffix),
    received: (from) => escrowKey(`i:${checkRegion(from)}:`, suffix),
  };
  // The longest of them, with the longest region name: refuse now rather than at a transfer.
  escrowKey(`o:${"x".repeat(16)}:`, suffix);
  return keys;
}

/** The prefix of every transfer counter of a region towards `to` (what `to`'s replicator reads). */
export function transferOutPrefix(to: string): Buffer {
  return Buffer.from(`${ESCROW_PREFIX}o:${checkRegion(to)}:`);
}

/** For a key of transferOutPrefix(to): the key receiving it in `to` from `from`; else undefined. */
export function receivingKey(outKey: Uint8Array, to: string, from: string): Buffer | undefined {
  const prefix = transferOutPrefix(to);
  if (outKey.length <= prefix.length || !Buffer.from(outKey.subarray(0, prefix.length)).equals(prefix)) return undefined;
  return Buffer.concat([Buffer.from(`${ESCROW_PREFIX}i:${checkRegion(from)}:`), outKey.subarray(prefix.length)]);
}

/** The rights key sharing a receiving key's suffix. */
export function rightsKeyOfReceiving(receivedKey: Uint8Array, from: string): Buffer {
  const prefix = Buffer.from(`${ESCROW_PREFIX}i:${from}:`);
  return Buffer.concat([Buffer.from(`${ESCROW_PREFIX}r:`), receivedKey.subarray(prefix.length)]);
}
