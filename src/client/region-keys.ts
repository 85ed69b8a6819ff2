/**
 * Where a region's replicated state lives in the local cluster (docs/regions.md), all under the
 * reserved prefix `\0tally:` (cluster-owned, unlisted by top-K and aggregates of user prefixes):
 *
 * - `\0tally:region:<origin>:c{<h>}<key>`: the remote component of `key` from region `origin` (a
 *   plain counter holding the origin's absolute value);
 * - `\0tally:region:<origin>:i{<h>}<key>`: the origin log index that value reflects (a plain
 *   counter); both are written together by one atomic batch guarded by the index key's version;
 * - `\0tally:region:<origin>:shard:<id>`: the replicator's resume cursor for the origin's shard;
 * - `\0tally:region:<origin>:seen`: wall-clock ms when the replicator last held every origin shard
 *   complete (the lag of a global read is measured from it);
 * - `\0tally:regions:<origin>`: the registry (1: replicated, part of global reads; 0: forgotten).
 *
 * `<h>` is 16 hex digits of xxhash64(key), a hash tag (src/meta/slots.ts): every component and
 * index key of one user key, whatever the origin, hashes to one slot, so the pair is one atomic
 * batch on one shard and a global read is one GetMany there.
 */
import { xxhash64 } from "../kinds/xxhash64.js";
import { REGION_NAME } from "../util/region-config.js";
import { InvalidArgumentError } from "../util/errors.js";
import { KEY_BYTES_MAX } from "./values.js";

const encoder = new TextEncoder();
export const REGION_PREFIX = "\0tally:region:";
export const REGISTRY_PREFIX = "\0tally:regions:";
const TAG_BYTES = 18; // "{" + 16 hex + "}"
const KIND_BYTES = 1;

export function checkRegion(name: string): string {
  if (typeof name !== "string" || !REGION_NAME.test(name))
    throw new InvalidArgumentError(`region name: 1..16 of a-z, 0-9 and '-' (not starting with '-'), got ${JSON.stringify(name)}`);
  return name;
}

function bytes(text: string): Buffer {
  return Buffer.from(encoder.encode(text));
}

function tagged(origin: string, kind: "c" | "i", key: Uint8Array): Buffer {
  const tag = xxhash64(key).toString(16).padStart(16, "0");
  return Buffer.concat([bytes(`${REGION_PREFIX}${origin}:${kind}{${tag}}`), key]);
}

/** The longest user key whose components fit in `maxKeyBytes` for this origin. */
export function maxReplicatedKeyBytes(origin: string, maxKeyBytes = KEY_BYTES_MAX): number {
  return maxKeyBytes - bytes(`${REGION_PREFIX}${origin}:`).length - TAG_BYTES - KIND_BYTES;
}

export function componentKey(origin: string, key: Uint8Array): Buffer {
  return tagged(origin, "c", key);
}

/** The prefix of every component key from `origin` (a top-K over it lists them). */
export function componentPrefix(origin: string): Buffer {
  return bytes(`${REGION_PREFIX}${origin}:c{`);
}

/** The user key a component key from `origin` is for, or undefined for another key. */
export function componentUserKey(origin: string, key: Uint8Array): Buffer | undefined {
  const prefix = componentPrefix(origin);
  const start = prefix.length + TAG_BYTES - 1;
  if (key.length <= start || !Buffer.from(key.subarray(0, prefix.length)).equals(prefix) || key[start - 1] !== 0x7d) return undefined;
  return Buffer.from(key.subarray(start));
}

export function componentIndexKey(origin: string, key: Uint8Array): Buffer {
  return tagged(origin, "i", key);
}

export function cursorKey(origin: string, shardId: number): Buffer {
  return bytes(`${REGION_PREFIX}${origin}:shard:${shardId}`);
}

export function seenKey(origin: string): Buffer {
  return bytes(`${REGION_PREFIX}${origin}:seen`);
}

export function registryKey(origin: string): Buffer {
  return bytes(`${REGISTRY_PREFIX}${origin}`);
}

/** The origin named by a registry key, or undefined. */
export function registryOrigin(key: Uint8Array): string | undefined {
  const text = Buffer.from(key).toString("latin1");
  if (!text.startsWith(REGISTRY_PREFIX)) return undefined;
  const name = text.slice(REGISTRY_PREFIX.length);
  return REGION_NAME.test(name) ? name : undefined;
}

/** True for a key of the cluster's own (`\0tally:`): never shipped to other regions. */
export function isReserved(key: Uint8Array): boolean {
  const prefix = "\0tally:";
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix.charCodeAt(i)) return false;
  return true;
}
