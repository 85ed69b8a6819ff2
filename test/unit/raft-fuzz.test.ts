/**
 * Randomized safety check of the core; see raft-fuzz-lib.ts. A failure names the seed; replay it
 * with runFuzz(seed, steps, options).
 */
import { describe, expect, it } from "vitest";
import { runFuzz } from "./raft-fuzz-lib.js";

describe("raft randomized safety (paper Figure 3 properties)", () => {
  const configs = [
    { preVote: false, checkQuorum: false, lease: false },
    { preVote: true, checkQuorum: true, lease: true },
    { preVote: true, checkQuorum: false, lease: false },
    { preVote: false, checkQuorum: true, lease: true },
    { preVote: true, checkQuorum: true, lease: true, commitUpdatesOnTick: true },
  ];
  for (const [i, options] of configs.entries()) {
    it(`holds under faults: ${JSON.stringify(options)}`, () => {
      let total = 0;
      for (let seed = 1; seed <= 6; seed++) {
        const s = seed * 10 + i;
        try {
          total += runFuzz(s, 1500, options);
        } catch (err) {
          throw new Error(`seed ${s}: ${(err as Error).message}`, { cause: err });
        }
      }
      // The runs must actually commit things, or the checks prove nothing.
      expect(total).toBeGreaterThan(40);
    });
  }
});
