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
