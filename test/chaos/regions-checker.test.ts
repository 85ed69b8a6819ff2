/**
 * The region chaos checker must see every violation it exists for: a lost add, a doubled one, a
 * refused one counted, regions that disagree, an ambiguous op counted twice; and, for the floor,
 * rights below 0, an escrow operation that was not atomic, and rights received that were never sent.
 */
import { describe, expect, it } from "vitest";
import { checkEscrowSample, checkRegionSums, signedSubsetReaches, type EscrowSample, type RegionOp } from "./regions-checker.js";

let nextId = 0;
const op = (region: string, key: string, delta: number, status: RegionOp["status"] = "ok"): RegionOp => ({
  id: nextId++,
  region,
  kind: "add",
  key,
  delta,
  status,
  invokedAt: 0,
});

const everywhere = (value: string) => ({ east: value, west: value });

describe("region chaos checker", () => {
  it("signed subset sums", () => {
    expect(signedSubsetReaches([], 0)).toBe(true);
    expect(signedSubsetReaches([3, -2], 1)).toBe(true);
    expect(signedSubsetReaches([3, -2], -2)).toBe(true);
    expect(signedSubsetReaches([3, -2], 2)).toBe(false);
    expect(signedSubsetReaches([3, 3], 6)).toBe(true);
    expect(signedSubsetReaches([3], 6)).toBe(false);
  });

  it("accepts the acknowledged sum plus a subset of the ambiguous ops, equal in every region", () => {
    const ops = [op("east", "k", 5), op("west", "k", 2), op("west", "k", 4, "ambiguous"), op("east", "k", 9, "fail")];
    expect(checkRegionSums(ops, new Map([["k", everywhere("7")]])).problems).toEqual([]);
    expect(checkRegionSums(ops, new Map([["k", everywhere("11")]])).problems).toEqual([]);
  });

  it("sees a lost add, a doubled one, a refused one counted, and regions that disagree", () => {
    const ops = [op("east", "k", 5), op("west", "k", 2), op("west", "k", 4, "ambiguous"), op("east", "k", 9, "fail")];
    const judge = (globals: Record<string, string | undefined>) => checkRegionSums(ops, new Map([["k", globals]])).problems;
    expect(judge(everywhere("5"))[0]).toMatch(/LOST: -2/);
    expect(judge(everywhere("13"))[0]).toMatch(/COUNTED TWICE.*: 6/);
    expect(judge(everywhere("16"))[0]).toMatch(/COUNTED TWICE/);
    expect(judge(everywhere("15"))[0]).toMatch(/COUNTED TWICE/); // 4 counted twice
    expect(judge({ east: "7", west: "11" })[0]).toMatch(/disagree/);
    expect(judge({ east: "7", west: undefined })[0]).toMatch(/no final global read/);
  });

  it("sees rights below 0, a non-atomic escrow operation, and rights received that were never sent", () => {
    const sample = (over: Partial<EscrowSample>): EscrowSample => ({
      atMs: 1000,
      region: "east",
      key: "s",
      rights: 5n,
      value: 15n,
      links: [{ region: "west", out: 3n, received: 0n }],
      ...over,
    });
    // Declared in east with floor 10: rights 2 - value 15 + out 3 - received 0 = -10 = -floor.
    const ok = sample({ rights: 2n, value: 15n, links: [{ region: "west", out: 3n, received: 0n }] });
    const maxReceived = new Map<string, bigint>();
    expect(checkEscrowSample(ok, 10n, true, maxReceived, new Map())).toEqual([]);
    expect(
      checkEscrowSample(
        sample({ rights: -1n, value: 2n, links: [{ region: "west", out: 0n, received: 1n }] }),
        0n,
        false,
        maxReceived,
        new Map(),
      )[0],
    ).toMatch(/rights -1 below 0/);
    // A decrement that spent no rights: value down, rights unchanged.
    expect(checkEscrowSample(sample({ rights: 2n, value: 14n }), 10n, true, maxReceived, new Map())[0]).toMatch(/not atomic/);
    // West already received 4 from east, and east has sent only 3: rights created from nothing.
    const earlier = new Map([["s east>west", 4n]]);
    expect(checkEscrowSample(ok, 10n, true, new Map(), earlier)[0]).toMatch(/sent 3 to west, which had already received 4/);
    // The received totals seen are remembered per key and link (giver>taker).
    checkEscrowSample(
      sample({ region: "west", rights: 4n, value: 0n, links: [{ region: "east", out: 0n, received: 4n }] }),
      0n,
      false,
      maxReceived,
      new Map(),
    );
    expect(maxReceived.get("s east>west")).toBe(4n);
  });
});
