/**
 * Escrow pieces that need no cluster (docs/regions.md, "Escrow: a global floor"): every escrow key
 * of a user key shares its slot (so a decrement and its rights are one atomic batch), keys that
 * cannot be so placed are refused, the max-merge guard of received transfers, and bad arguments
 * refused before anything is sent. The rights arithmetic against real clusters (refusals changing
 * nothing, a transfer applied twice counting once, a partition) is test/integration/escrow.test.ts.
 */
import { describe, expect, it } from "vitest";
import { escrowAdd, escrowDeclare, escrowTransfer, receivedDelta, type EscrowStore } from "../../src/client/escrow.js";
import { escrowKeys, receivingKey, rightsKeyOfReceiving, transferOutPrefix } from "../../src/client/escrow-keys.js";
import { isReserved } from "../../src/client/region-keys.js";
import { slotOf } from "../../src/meta/slots.js";
import { InvalidArgumentError } from "../../src/util/errors.js";

/** A store that fails the test if anything reaches it: the argument checks come first. */
const untouchable: EscrowStore = {
  getMany: () => Promise.reject(new Error("the store was read")),
  addBatch: () => Promise.reject(new Error("the store was written")),
};

describe("escrow keys", () => {
  it("puts every escrow key of a key in the key's slot, tagged or not", () => {
    for (const key of ["stock:a", "{shop}:stock:b", "a{b", "x{y{z}", "{w}}", "ü{t}", "a".repeat(100)]) {
      const keys = escrowKeys(key);
      const slot = slotOf(Buffer.from(key));
      for (const derived of [keys.rights, keys.declared, keys.floor, keys.out("west"), keys.received("east-2")]) {
        expect(slotOf(derived), `${JSON.stringify(key)} -> ${JSON.stringify(derived.toString("latin1"))}`).toBe(slot);
        expect(isReserved(derived)).toBe(true);
      }
    }
  });

  it("keeps keys of different user keys apart (a tagged key never collides with an untagged one)", () => {
    expect(escrowKeys("{abc}").rights.equals(escrowKeys("abc").rights)).toBe(false);
    expect(escrowKeys("ab").out("c").equals(escrowKeys("b").out("c"))).toBe(false);
  });

  it("maps a transfer counter of the origin to the receiving and rights keys of the same key", () => {
    const keys = escrowKeys("{shop}:stock:b");
    expect(receivingKey(keys.out("west"), "west", "east")).toEqual(keys.received("east"));
    expect(rightsKeyOfReceiving(keys.received("east"), "east")).toEqual(keys.rights);
    expect(receivingKey(keys.out("north"), "west", "east")).toBeUndefined();
    expect(receivingKey(transferOutPrefix("west"), "west", "east")).toBeUndefined();
  });

  it("refuses keys it cannot place or that are too long, and reserved keys", () => {
    for (const key of ["a}b", "{}x", "\0tally:x", "{t}" + "a".repeat(220), "b".repeat(230)])
      expect(() => escrowKeys(key), JSON.stringify(key)).toThrow(InvalidArgumentError);
    expect(() => escrowKeys("a}b")).toThrow(/hash tag/);
  });
});

describe("received transfers", () => {
  it("add only the part above what was received: a transfer applied twice counts once", () => {
    let held = 0n;
    let rights = 0n;
    for (const value of [5n, 5n, 3n, 12n, 5n, 12n, 12n]) {
      const delta = receivedDelta(held, value);
      rights += delta;
      if (delta > 0n) held = value;
    }
    expect(rights).toBe(12n);
    expect(held).toBe(12n);
  });
});

describe("bad arguments change nothing", () => {
  it("refuses before sending", async () => {
    await expect(escrowAdd(untouchable, "k", 0n)).rejects.toThrow(InvalidArgumentError);
    await expect(escrowAdd(untouchable, "a}b", -1n)).rejects.toThrow(InvalidArgumentError);
    await expect(escrowAdd(untouchable, "k", -1n, { region: "Bad!" })).rejects.toThrow(InvalidArgumentError);
    await expect(escrowTransfer(untouchable, "k", { from: "a", to: "a", amount: 1n })).rejects.toThrow(/itself/);
    await expect(escrowTransfer(untouchable, "k", { from: "a", to: "b", amount: 0n })).rejects.toThrow(/positive/);
    await expect(escrowTransfer(untouchable, "k", { from: "a", to: "b", amount: -3n })).rejects.toThrow(/positive/);
    await expect(escrowTransfer(untouchable, "k", { from: "a", to: "B", amount: 3n })).rejects.toThrow(InvalidArgumentError);
    await expect(escrowDeclare(untouchable, "k", { floor: 5n, initial: 4n })).rejects.toThrow(/below the floor/);
  });
});
