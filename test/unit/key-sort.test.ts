import { describe, expect, it } from "vitest";
import { sortKeysInArena } from "../../src/shard/key-sort.js";
import { createPrng, type Prng } from "../../src/util/prng.js";

/** Lays `keys` out in one arena (in a shuffled place each) and sorts them with sortKeysInArena. */
function radixOrder(keys: Uint8Array[], prng: Prng): Uint8Array[] {
  const total = keys.reduce((sum, key) => sum + key.length, 0);
  const arena = new Uint8Array(total + 7);
  const ids = new Int32Array(keys.length);
  const offsets = new Uint32Array(keys.length);
  const lengths = new Uint16Array(keys.length);
  // Arena placement unrelated to id order, with a gap at the start.
  const placement = Array.from(keys.keys());
  for (let i = placement.length - 1; i > 0; i--) {
    const j = prng.nextInt(i + 1);
    [placement[i], placement[j]] = [placement[j]!, placement[i]!];
  }
  let at = 7;
  for (const id of placement) {
    arena.set(keys[id]!, at);
    ids[id] = id;
    offsets[id] = at;
    lengths[id] = keys[id]!.length;
    at += keys[id]!.length;
  }
  sortKeysInArena(arena, ids, offsets, lengths);
  for (let i = 0; i < ids.length; i++) {
    // The three arrays moved together: each id still points at its own key's bytes.
    expect(Array.from(arena.subarray(offsets[i]!, offsets[i]! + lengths[i]!))).toEqual(Array.from(keys[ids[i]!]!));
  }
  return Array.from(ids, (id) => keys[id]!);
}

function bytewise(a: Uint8Array, b: Uint8Array): number {
  const shared = Math.min(a.length, b.length);
  for (let i = 0; i < shared; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

const hexes = (keys: Uint8Array[]) => keys.map((key) => Buffer.from(key).toString("hex"));

describe("sortKeysInArena", () => {
  it("orders keys bytewise, a prefix first, across key shapes and sizes (seeded)", () => {
    const prng = createPrng(20261123);
    const shapes: Array<[string, (i: number) => Uint8Array]> = [
      [
        "random bytes incl. 0x00 and 0xff, lengths 1-6",
        () => Uint8Array.from({ length: 1 + prng.nextInt(6) }, () => [0, 255, prng.nextInt(256)][prng.nextInt(3)]!),
      ],
      [
        "a long shared prefix then decimal ids",
        (i) => new TextEncoder().encode(`${"tenant-000/".repeat(8)}counter-${(i * 7919) % 100_003}`),
      ],
      ["prefixes of each other", (i) => new Uint8Array(1 + (i % 300)).fill(0x61)],
      ["two bytes from a tiny alphabet (many duplicates)", () => Uint8Array.of(prng.nextInt(2), prng.nextInt(2))],
      ["long random keys", () => Uint8Array.from({ length: 200 + prng.nextInt(60) }, () => prng.nextInt(4))],
    ];
    for (const [name, make] of shapes) {
      for (const size of [0, 1, 2, 23, 24, 25, 100, 5_000]) {
        const keys = Array.from({ length: size }, (_, i) => make(i));
        const expected = hexes([...keys].sort(bytewise));
        expect(hexes(radixOrder(keys, prng)), `${name}, ${size} keys`).toEqual(expected);
      }
    }
  });
});
