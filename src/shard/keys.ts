/** Counter keys are arbitrary bytes (1..256); this renders them for error messages. */

const DESCRIBE_BYTES_MAX = 64;

/**
 * A key for error messages: printable ASCII as is, other bytes (and quote, backslash) as \xNN,
 * quoted; long keys are cut at 64 bytes with their length appended so messages stay bounded.
 */
export function describeKey(key: Uint8Array): string {
  const shown = Math.min(key.length, DESCRIBE_BYTES_MAX);
  let out = '"';
  for (let i = 0; i < shown; i++) {
    const code = key[i]!;
    if (code >= 0x20 && code < 0x7f && code !== 0x22 && code !== 0x5c) {
      out += String.fromCharCode(code);
    } else {
      out += "\\x" + code.toString(16).padStart(2, "0");
    }
  }
  out += '"';
  if (shown < key.length) out += `... (${key.length} bytes)`;
  return out;
}

/**
 * Keys under this prefix are the cluster's own (an eventual buffer's flush markers,
 * src/server/eventual/flusher.ts): with auth on only a node writes them, and a top-K or an
 * aggregate lists them only under a prefix that itself starts with it (docs/eventual.md).
 */
export const RESERVED_KEY_PREFIX: Uint8Array = new TextEncoder().encode("\0tally:");

/** True when `key` starts with `prefix`, byte for byte (every prefix test of keys: grants, listings, watches). */
export function keyHasPrefix(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

/** True for a key under RESERVED_KEY_PREFIX. */
export function isReservedKey(key: Uint8Array): boolean {
  return key.length > 0 && key[0] === 0 && keyHasPrefix(key, RESERVED_KEY_PREFIX);
}

/** Whether a scan over `prefix` lists `key`: it has the prefix, and a reserved key only under a reserved prefix. */
export function listedUnder(key: Uint8Array, prefix: Uint8Array): boolean {
  return keyHasPrefix(key, prefix) && (!isReservedKey(key) || keyHasPrefix(prefix, RESERVED_KEY_PREFIX));
}
