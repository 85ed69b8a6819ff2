/**
 * grpc-js and Node describe a failed connection in their own words ("14 UNAVAILABLE: No
 * connection established. Last error: connect ECONNREFUSED 127.0.0.1:7003 (2026-...)"). tallyctl
 * says what it means for the operator instead; text it does not recognise is kept, minus the
 * status-code prefix and the timestamp.
 */

const REASONS: Array<[RegExp, string]> = [
  [/ECONNREFUSED/, "connection refused"],
  [/ENOTFOUND|EAI_AGAIN|getaddrinfo/, "host name not found"],
  [/EHOSTUNREACH|ENETUNREACH/, "host unreachable"],
  [/Deadline exceeded|DEADLINE_EXCEEDED|ETIMEDOUT|timed out|timeout/i, "no answer in time"],
  [
    /certificate|self[- ]signed|SSL|TLS|handshake|wrong version number/i,
    "TLS handshake failed: check --ca, --cert and --key, or the tls section of --config",
  ],
  [
    /ECONNRESET|socket hang up|Connection dropped|Protocol error|RST_STREAM|GOAWAY/i,
    "connection dropped: plaintext to a TLS port, or the node is stopping",
  ],
];

/** A short, human reason for a transport failure text. */
export function humanTransportError(text: string): string {
  for (const [pattern, reason] of REASONS) if (pattern.test(text)) return reason;
  return text
    .replace(/^\d+ [A-Z_]+: /, "")
    .replace(/\s*\(\d{4}-\d{2}-\d{2}T[^)]*\)/g, "")
    .trim();
}

/** True for messages that are grpc-js transport text rather than a tally error's own words. */
export function isTransportText(text: string): boolean {
  return /^\d+ [A-Z_]+: |No connection established|Last error:|ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|Deadline exceeded|Connection dropped/.test(
    text,
  );
}
