import { describe, expect, it } from "vitest";
import {
  appliedKey,
  compareKeys,
  counterKey,
  counterRange,
  decodeCounterKey,
  decodeLogKey,
  decodeSessionKey,
  describeKey,
  hardStateKey,
  keyInRange,
  logKey,
  logRange,
  prefixUpperBound,
  sessionKey,
  sessionRange,
  snapshotChunkKey,
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

  it("sorts counter keys bytewise inside a shard and keeps shards apart", () => {
    const a = counterKey(3, new Uint8Array([0x61]));
    const ab = counterKey(3, new Uint8Array([0x61, 0x62]));
    const b = counterKey(3, new Uint8Array([0x62]));
    const otherShard = counterKey(4, new Uint8Array([0x00]));
    expect(sorted([otherShard, b, ab, a])).toEqual([a, ab, b, otherShard]);
    expect(keyInRange(b, counterRange(3))).toBe(true);
    expect(keyInRange(otherShard, counterRange(3))).toBe(false);
    expect(decodeCounterKey(ab)).toEqual({ shardId: 3, userKey: new Uint8Array([0x61, 0x62]) });
  });

  it("encodes session client ids as u64 and decodes them back", () => {
    const ids = [0, 1, 2 ** 32, 2 ** 53 - 1];
    const keys = ids.map((id) => sessionKey(9, id));
    expect(sorted([...keys].reverse())).toEqual(keys);
    expect(keys.map((key) => decodeSessionKey(key).clientId)).toEqual(ids);
    expect(keyInRange(keys[3]!, sessionRange(9))).toBe(true);
    expect(keyInRange(sessionKey(10, 0), sessionRange(9))).toBe(false);
  });

  it("rejects ids and indexes that do not fit", () => {
    expect(() => logKey(-1, 1)).toThrow(AssertionError);
    expect(() => logKey(2 ** 32, 1)).toThrow(AssertionError);
    expect(() => logKey(1, 2 ** 53)).toThrow(AssertionError);
    expect(() => logKey(1, 1.5)).toThrow(AssertionError);
    expect(() => sessionKey(1, -3)).toThrow(AssertionError);
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
    expect(describeKey(counterKey(1, Uint8Array.of(0x68, 0x69)))).toBe("C|shard=1|key=0x6869");
    expect(describeKey(sessionKey(1, 2 ** 40))).toBe(`S|shard=1|client=${2 ** 40}`);
  });
});
