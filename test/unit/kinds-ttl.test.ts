import { describe, expect, it } from "vitest";
import { KIND_MAGIC, beginEnvelope, sealEnvelope, writeUvarint } from "../../src/kinds/codec.js";
import { ExpiryIndex } from "../../src/shard/kinds/ttl.js";
import { InvalidArgumentError, OutOfRangeError } from "../../src/util/errors.js";
import { createPrng } from "../../src/util/prng.js";
import { expectDamageDetected, hex, utf8 } from "./kinds-support.js";

const names = (keys: Array<{ key: Uint8Array; expiresAtMs: number }>): string[] =>
  keys.map((k) => `${new TextDecoder().decode(k.key)}@${k.expiresAtMs}`);

describe("expiry index", () => {
  it("returns due keys by (expiresAt, key bytes), at most limit, without changing anything", () => {
    const index = new ExpiryIndex();
    index.set(utf8("b"), 100);
    index.set(utf8("a"), 100);
    index.set(utf8("c"), 50);
    index.set(utf8("d"), 300);
    index.set(utf8("ab"), 100);
    const before = hex(index.encode());
    expect(names(index.expired(100, 10))).toEqual(["c@50", "a@100", "ab@100", "b@100"]);
    expect(names(index.expired(100, 2))).toEqual(["c@50", "a@100"]);
    expect(index.expired(49, 10)).toEqual([]);
    expect(hex(index.encode())).toBe(before);
    index.set(utf8("c"), 400); // moved later
    expect(index.clear(utf8("a"))).toBe(true);
    expect(index.clear(utf8("a"))).toBe(false);
    expect(names(index.expired(1_000, 10))).toEqual(["ab@100", "b@100", "d@300", "c@400"]);
    expect(index.expiresAt(utf8("c"))).toBe(400);
    expect(index.expiresAt(utf8("zz"))).toBeUndefined();
  });

  it("validates arguments and its bound, changing nothing", () => {
    const index = new ExpiryIndex(2);
    index.set(utf8("a"), 1);
    index.set(utf8("b"), 2);
    const before = hex(index.encode());
    expect(() => index.set(utf8("c"), 3)).toThrow(OutOfRangeError);
    index.set(utf8("b"), 5); // an existing key can still move
    expect(() => index.set(new Uint8Array(0), 1)).toThrow(InvalidArgumentError);
    expect(() => index.set(new Uint8Array(257), 1)).toThrow(InvalidArgumentError);
    expect(() => index.set(utf8("a"), -1)).toThrow(InvalidArgumentError);
    expect(() => index.set(utf8("a"), 1.5)).toThrow(InvalidArgumentError);
    expect(() => index.expired(10, 0)).toThrow(InvalidArgumentError);
    expect(() => new ExpiryIndex(0)).toThrow(InvalidArgumentError);
    index.set(utf8("b"), 2);
    expect(hex(index.encode())).toBe(before);
  });

  for (const seed of [41, 42, 43, 44]) {
    it(`matches a sorted-map model under random set/clear (seed ${seed})`, () => {
      const prng = createPrng(seed);
      const index = new ExpiryIndex();
      const model = new Map<string, { key: Uint8Array; expiresAtMs: number }>();
      const sortedModel = (): Array<{ key: Uint8Array; expiresAtMs: number }> =>
        [...model.values()].sort((a, b) => a.expiresAtMs - b.expiresAtMs || (hex(a.key) < hex(b.key) ? -1 : 1));
      for (let step = 0; step < 4_000; step++) {
        const key = Uint8Array.from({ length: 1 + prng.nextInt(3) }, () => prng.nextInt(6) * 50);
        const action = prng.nextInt(10);
        if (action < 6) {
          const expiresAtMs = prng.nextInt(200);
          index.set(key, expiresAtMs);
          model.set(hex(key), { key, expiresAtMs });
        } else if (action < 9) {
          expect(index.clear(key)).toBe(model.delete(hex(key)));
        } else {
          const nowMs = prng.nextInt(220);
          const limit = 1 + prng.nextInt(30);
          const expected = sortedModel()
            .filter((e) => e.expiresAtMs <= nowMs)
            .slice(0, limit);
          expect(index.expired(nowMs, limit).map((e) => `${hex(e.key)}@${e.expiresAtMs}`)).toEqual(
            expected.map((e) => `${hex(e.key)}@${e.expiresAtMs}`),
          );
        }
        expect(index.size).toBe(model.size);
      }
      // The encoding is canonical: rebuild the same state in another order.
      const rebuilt = new ExpiryIndex();
      for (const entry of [...model.values()].reverse()) rebuilt.set(entry.key, entry.expiresAtMs);
      expect(hex(rebuilt.encode())).toBe(hex(index.encode()));
      const decoded = ExpiryIndex.decode(index.encode());
      expect(hex(decoded.encode())).toBe(hex(index.encode()));
      expect(decoded.expired(1_000, 100_000)).toEqual(index.expired(1_000, 100_000));
    });
  }

  it("detects damage and non-canonical content on decode", () => {
    const index = new ExpiryIndex();
    for (let i = 0; i < 200; i++) index.set(utf8(`session:${i}`), 1_700_000_000_000 + (i % 17) * 1_000);
    const bytes = index.encode();
    expect(bytes.length).toBeLessThan(200 * 15);
    expectDamageDetected(bytes, (b) => ExpiryIndex.decode(b));
    expect(() => ExpiryIndex.decode(bytes, 199)).toThrow(/exceed maxKeys/);
    const craft = (entries: Array<[number, string]>): Uint8Array => {
      const writer = beginEnvelope(KIND_MAGIC.expiry, 1);
      writeUvarint(writer, entries.length);
      for (const [delta, key] of entries) {
        writeUvarint(writer, delta);
        writeUvarint(writer, key.length);
        writer.raw(utf8(key));
      }
      return sealEnvelope(writer);
    };
    expect(
      ExpiryIndex.decode(
        craft([
          [5, "a"],
          [0, "b"],
          [1, "a0"],
        ]),
      ).expiresAt(utf8("a0")),
    ).toBe(6);
    expect(() =>
      ExpiryIndex.decode(
        craft([
          [5, "b"],
          [0, "a"],
        ]),
      ),
    ).toThrow(/not after/);
    expect(() =>
      ExpiryIndex.decode(
        craft([
          [5, "a"],
          [1, "a"],
        ]),
      ),
    ).toThrow(/twice/);
    expect(() => ExpiryIndex.decode(craft([[5, ""]]))).toThrow(/key length/);
  });
});
