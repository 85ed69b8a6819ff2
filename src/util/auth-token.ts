/**
 * Bearer tokens: how they are made and hashed. cluster.yaml holds only a token's SHA-256 (hex),
 * never the secret; a node hashes the presented token and compares digests in constant time
 * (src/server/config/auth.ts). Tokens carry 256 random bits, so one unsalted SHA-256 is enough: there is
 * no dictionary to guess from.
 */
import { createHash, randomBytes } from "node:crypto";

export const TOKEN_PREFIX = "tly_";
/** Random bytes per token (256 bits). */
const TOKEN_RANDOM_BYTES = 32;

export function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(TOKEN_RANDOM_BYTES).toString("base64url");
}

/** The SHA-256 of the token's UTF-8 bytes. */
export function tokenDigest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/** The form cluster.yaml stores: 64 lowercase hex digits. */
export function tokenSha256Hex(token: string): string {
  return tokenDigest(token).toString("hex");
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;
