/**
 * Each RaftTestKnobs bug, planted in the real core, must be found by the simulator within a
 * bounded number of seeds, with a fault profile that makes it reachable:
 *   forgetVote                  -> profile "elections": dueling candidates, voters that crash right
 *                                  after voting and come back before the other candidate's request
 *   commitPreviousTermEntries   -> profile "figure8": new leaders cut off right after election and
 *                                  right after their first commit, one entry per App (paper Fig. 8)
 *   leaseWithoutVoteRestriction -> profile "leases": a follower stops hearing the leader, the
 *                                  leader is cut off while its lease runs, clients keep reading it
 * Also: the seed that finds a bug passes without the knob, so the knob is what the checkers saw.
 */
import { describe, expect, it } from "vitest";
import type { RaftTestKnobs } from "../../src/raft/types.js";
import type { ViolationKind } from "./checkers.js";
import { configForSeed, formatFailure, runSimulation, type SimOverrides } from "./simulator.js";

interface PlantedBug {
  knob: keyof RaftTestKnobs;
  overrides: SimOverrides;
  seedsMax: number;
  expected: ViolationKind[];
}

const SAFETY: ViolationKind[] = [
  "election-safety",
  "log-matching",
  "committed-overwrite",
  "leader-completeness",
  "state-machine-safety",
  "exactly-once",
  "linearizability",
];

const bugs: [string, PlantedBug][] = [
  ["forgetVote", { knob: "forgetVote", overrides: { profileName: "elections" }, seedsMax: 30, expected: ["election-safety"] }],
  [
    "commitPreviousTermEntries",
    { knob: "commitPreviousTermEntries", overrides: { profileName: "figure8", nodeCount: 3 }, seedsMax: 60, expected: SAFETY },
  ],
  [
    "leaseWithoutVoteRestriction",
    {
      knob: "leaseWithoutVoteRestriction",
      overrides: { profileName: "leases" },
      seedsMax: 40,
      expected: ["lease-exclusivity", "linearizability"],
    },
  ],
  [
    "leaseWithoutVoteRestriction, found as a stale read by the history checker alone",
    {
      knob: "leaseWithoutVoteRestriction",
      overrides: { profileName: "leases", checkLeaseExclusivity: false },
      seedsMax: 80,
      expected: ["linearizability"],
    },
  ],
];

describe("planted bugs are found", () => {
  for (const [name, bug] of bugs) {
    it(name, () => {
      for (let seed = 1; seed <= bug.seedsMax; seed++) {
        const overrides: SimOverrides = { ...bug.overrides, knobs: { [bug.knob]: true } };
        const result = runSimulation(configForSeed(seed, overrides));
        if (result.ok) continue;
        console.log(`planted ${name}: found at seed ${seed}: ${result.violation!.message.split("\n").slice(0, 4).join(" | ")}`);
        if (!bug.expected.includes(result.violation!.kind)) expect.fail(formatFailure(result));
        const clean = runSimulation(configForSeed(seed, bug.overrides));
        if (!clean.ok) expect.fail(`seed ${seed} fails without the knob too:\n${formatFailure(clean)}`);
        return;
      }
      expect.fail(`${name}: no violation found in ${bug.seedsMax} seeds`);
    });
  }
});
