/** Helpers shared by the counter-kind tests (src/shard/kinds). */
import { expect } from "vitest";
import { CorruptionError } from "../../src/util/errors.js";

/**
 * Every truncation and every single-bit flip of `bytes` (up to `positionsMax` positions, spread
 * over the buffer) must make `decode` throw CorruptionError, never return something.
 */
export function expectDamageDetected(bytes: Uint8Array, decode: (bytes: Uint8Array) => unknown, positionsMax = 400): void {
  const stride = Math.max(1, Math.floor(bytes.length / positionsMax));
  for (let length = 0; length < bytes.length; length += stride) {
    expect(() => decode(bytes.slice(0, length)), `truncated to ${length}`).toThrow(CorruptionError);
  }
  for (let position = 0; position < bytes.length; position += stride) {
    const damaged = bytes.slice();
    damaged[position]! ^= 1 << (position % 8);
    expect(() => decode(damaged), `bit flipped at byte ${position}`).toThrow(CorruptionError);
  }
  const extended = new Uint8Array(bytes.length + 1);
  extended.set(bytes);
  expect(() => decode(extended), "a trailing byte").toThrow(CorruptionError);
}

export const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
