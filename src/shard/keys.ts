/**
 * Counter keys are arbitrary bytes. In memory the shard keys its table by a one-byte-per-char
 * ("latin1") string made from those bytes: binary-safe, hashable by V8, and its default string
 * order (UTF-16 code units, all < 256) is exactly the bytewise order of the keys.
 */
import { bytesFromLatin1, latin1FromBytes } from "./binary.js";

export function keyToString(key: Uint8Array): string {
  return latin1FromBytes(key);
}

export function keyFromString(text: string): Uint8Array {
  return bytesFromLatin1(text);
}

const DESCRIBE_BYTES_MAX = 64;

/**
 * A key for error messages: printable ASCII as is, other bytes as \xNN, quoted; long keys are
 * cut at 64 bytes with their length appended so messages stay bounded.
 */
export function describeKey(key: Uint8Array | string): string {
  const length = key.length;
  const shown = Math.min(length, DESCRIBE_BYTES_MAX);
  let out = '"';
  for (let i = 0; i < shown; i++) {
    const code = typeof key === "string" ? key.charCodeAt(i) : key[i]!;
    if (code >= 0x20 && code < 0x7f && code !== 0x22 && code !== 0x5c) {
      out += String.fromCharCode(code);
    } else {
      out += "\\x" + code.toString(16).padStart(2, "0");
    }
  }
  out += '"';
  if (shown < length) out += `... (${length} bytes)`;
  return out;
}
