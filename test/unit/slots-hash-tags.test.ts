// The slot rule clients in other languages implement from proto/tally.proto: CRC16-XMODEM mod 16384
// over the key's {hash tag} (Redis Cluster's rule), else over the whole key.
import { describe, expect, it } from "vitest";
import { crc16, hashedPart, slotOf } from "../../src/meta/slots.js";

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (part: Uint8Array): string => new TextDecoder().decode(part);

describe("slots", () => {
  it("CRC16-XMODEM has the check value the proto documents", () => {
    expect(crc16(bytes("123456789"))).toBe(0x31c3);
    // Redis Cluster's published example: the slot of "foo" is 12182.
    expect(slotOf(bytes("foo"))).toBe(12182);
  });

  it("keys with the same {tag} share a slot; the tag alone is hashed", () => {
    expect(slotOf(bytes("{user1}:a"))).toBe(slotOf(bytes("{user1}:b")));
    expect(slotOf(bytes("{user1}:a"))).toBe(slotOf(bytes("user1")));
    expect(slotOf(bytes("x{user1}y{other}"))).toBe(slotOf(bytes("user1")));
    expect(slotOf(bytes("{user1}:a"))).not.toBe(slotOf(bytes("{user2}:a")));
  });

  it("follows Redis Cluster's edge cases", () => {
    for (const [key, hashed] of [
      ["plain", "plain"], // no brace
      ["{}x", "{}x"], // empty tag: the whole key
      ["{}{a}", "{}{a}"], // the first `{` has an empty tag: the whole key, not "a"
      ["a{b", "a{b"], // no closing brace
      ["a}b{c", "a}b{c"], // `}` only before the `{`
      ["{a}}", "a"], // the first `}` after the `{` ends the tag
      ["{{a}", "{a"], // the tag starts after the first `{`
    ] as const) {
      expect(text(hashedPart(bytes(key))), key).toBe(hashed);
    }
  });
});
