import { describe, expect, it } from "vitest";
import {
  appliedKey,
  compareKeys,
  decodeLogKey,
  describeKey,
  groupIdOfKey,
  groupRange,
  groupStateKey,
  hardStateKey,
  identityKey,
  KeyPrefix,
  keyInRange,
  logKey,
  logRange,
  prefixKeyRange,
  prefixUpperBound,
  snapshotChunkKey,
  snapshotChunkRange,
  snapshotMetaKey,
  tombstoneKey,
} from "../../src/storage/keys.js";
import { AssertionError } from "../../src/util/assert.js";

const sorted = (keys: Uint8Array[]): Uint8Array[] => [...keys].sort(compareKeys);

describe("storage keys", () => {
  it("orders log keys by group, then by index numerically (big-endian)", () => {
    const pairs: Array<[number, number]> = [
      [0, 1],
      [0, 255],
      [0, 256],
      [0, 2 ** 32 - 1],
      [0, 2 ** 32],
      [0, 2 ** 53 - 1],
      [1, 0],
      [1, 7],
      [256, 1],
      [2 ** 32 - 1, 0],
    ];
    const keys = pairs.map(([group, index]) => logKey(group, index));
    const shuffled = [keys[5]!, keys[0]!, keys[9]!, keys[3]!, keys[7]!, keys[1]!, keys[8]!, keys[4]!, keys[2]!, keys[6]!];
    expect(sorted(shuffled)).toEqual(keys);
    for (const [i, key] of keys.entries()) {
      expect(decodeLogKey(key)).toEqual({ groupId: pairs[i]![0], index: pairs[i]![1] });
    }
  });

  it("keeps each group's log range disjoint from its neighbours and from other kinds", () => {
    const range = logRange(7);
    expect(keyInRange(logKey(7, 0), range)).toBe(true);
    expect(keyInRange(logKey(7, 2 ** 53 - 1), range)).toBe(true);
    expect(keyInRange(logKey(6, 2 ** 53 - 1), range)).toBe(false);
    expect(keyInRange(logKey(8, 0), range)).toBe(false);
    expect(keyInRange(hardStateKey(7), range)).toBe(false);
    expect(keyInRange(logKey(7, 10), logRange(7, 11))).toBe(false);
    expect(keyInRange(logKey(7, 11), logRange(7, 11))).toBe(true);
    // The last group's range still has an upper bound (the next prefix byte).
    expect(keyInRange(logKey(2 ** 32 - 1, 5), logRange(2 ** 32 - 1))).toBe(true);
  });

  it("orders snapshot chunks numerically inside a group and ranges them from a chunk on", () => {
    const chunks = [0, 1, 255, 256, 2 ** 32 - 1].map((chunk) => snapshotChunkKey(5, chunk));
    expect(sorted([...chunks].reverse())).toEqual(chunks);
    expect(chunks.every((key) => keyInRange(key, snapshotChunkRange(5)))).toBe(true);
    expect(keyInRange(chunks[1]!, snapshotChunkRange(5, 2))).toBe(false);
    expect(keyInRange(chunks[2]!, snapshotChunkRange(5, 2))).toBe(true);
    expect(keyInRange(snapshotChunkKey(6, 0), snapshotChunkRange(5))).toBe(false);
    expect(keyInRange(snapshotMetaKey(5), snapshotChunkRange(5))).toBe(false);
  });

  it("ranges one kind of every group, and one group of one kind, without touching neighbours", () => {
    const tombstones = prefixKeyRange(KeyPrefix.tombstone);
    expect(keyInRange(tombstoneKey(0), tombstones)).toBe(true);
    expect(keyInRange(tombstoneKey(2 ** 32 - 1), tombstones)).toBe(true);
    expect(keyInRange(groupStateKey(3), tombstones)).toBe(false);
    expect(keyInRange(identityKey(), prefixKeyRange(KeyPrefix.hardState))).toBe(false);
    const groupState = groupRange(KeyPrefix.meta, 3);
    expect(keyInRange(groupStateKey(3), groupState)).toBe(true);
    expect(keyInRange(groupStateKey(4), groupState)).toBe(false);
    for (const key of [logKey(9, 4), hardStateKey(9), appliedKey(9), snapshotChunkKey(9, 2), tombstoneKey(9), groupStateKey(9)]) {
      expect(groupIdOfKey(key)).toBe(9);
    }
  });

  it("keeps the letters of format 1's retired records reserved: no two kinds share a prefix byte", () => {
    expect([KeyPrefix.counter, KeyPrefix.session, KeyPrefix.kind].map((byte) => String.fromCharCode(byte))).toEqual(["C", "S", "K"]);
    const bytes = Object.values(KeyPrefix);
    expect(new Set(bytes).size).toBe(bytes.length);
  });

  it("rejects ids and indexes that do not fit", () => {
    expect(() => logKey(-1, 1)).toThrow(AssertionError);
    expect(() => logKey(2 ** 32, 1)).toThrow(AssertionError);
    expect(() => logKey(1, 2 ** 53)).toThrow(AssertionError);
    expect(() => logKey(1, 1.5)).toThrow(AssertionError);
    expect(() => tombstoneKey(-3)).toThrow(AssertionError);
    expect(() => snapshotChunkKey(1, 2 ** 32)).toThrow(AssertionError);
  });

  it("computes prefix upper bounds with carry", () => {
    expect(prefixUpperBound(Uint8Array.of(1, 2, 3))).toEqual(Uint8Array.of(1, 2, 4));
    expect(prefixUpperBound(Uint8Array.of(1, 0xff, 0xff))).toEqual(Uint8Array.of(2));
    expect(prefixUpperBound(Uint8Array.of(0xff, 0xff))).toBeUndefined();
  });

  it("describes keys for error messages", () => {
    expect(describeKey(logKey(3, 17))).toBe("L|group=3|index=17");
    expect(describeKey(appliedKey(2))).toBe("A|group=2");
    expect(describeKey(snapshotChunkKey(4, 1))).toBe("Q|group=4|chunk=1");
    expect(describeKey(tombstoneKey(7))).toBe("T|group=7");
    expect(describeKey(groupStateKey(0))).toBe("M|group=0");
    // A retired format-1 record (never read by this build) is shown in hex.
    expect(describeKey(Uint8Array.of(KeyPrefix.counter, 0, 0, 0, 1, 0x68, 0x69))).toBe("0x43000000016869");
  });
});
