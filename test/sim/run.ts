/**
 * Command-line runner (npm run sim / sim:long).
 *
 *   SEED=n            replay one seed exactly (prints its trace hash; SIM_TRACE=1 prints every event)
 *   SIM_SEEDS=k       run k seeds, starting at SIM_SEED_BASE (default 1)
 *   SIM_STEPS=n       events in the fault phase (default DEFAULT_STEPS)
 *   SIM_NODES=3|5, SIM_MEMBERSHIP=0|1, SIM_PROFILE=mixed|stormy|crashy|figure8|elections|leases|pauses
 *   SIM_KNOB=commitPreviousTermEntries|forgetVote|leaseWithoutVoteRestriction   plant a known bug
 *   SIM_LEASE_CHECK=0 disables the lease-exclusivity checker (to see the history checker find it)
 *   SIM_SABOTAGE=follower-reads|no-dedupe|lazy-ticks breaks the simulated application or driver (checker self-test)
 *
 * Exit code 1 on the first failing seed, after printing the seed, how to replay it, and the last
 * trace events.
 */
import type { RaftTestKnobs } from "../../src/raft/types.js";
import { configForSeed, DEFAULT_STEPS, formatFailure, runSimulation, type Sabotage, type SimOverrides } from "./simulator.js";
import { profileNames, type ProfileName } from "./profiles.js";

function intFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got ${raw}`);
  return value;
}

const overrides: SimOverrides = {};
const steps = intFromEnv("SIM_STEPS");
if (steps !== undefined) overrides.steps = steps;
const nodes = intFromEnv("SIM_NODES");
if (nodes !== undefined) overrides.nodeCount = nodes;
const membership = intFromEnv("SIM_MEMBERSHIP");
if (membership !== undefined) overrides.membership = membership === 1;
const profile = process.env.SIM_PROFILE;
if (profile !== undefined && profile !== "") {
  if (!profileNames.includes(profile as ProfileName)) throw new Error(`SIM_PROFILE must be one of ${profileNames.join(", ")}`);
  overrides.profileName = profile as ProfileName;
}
const knob = process.env.SIM_KNOB;
if (knob !== undefined && knob !== "") {
  const knobs: RaftTestKnobs = {};
  if (knob !== "commitPreviousTermEntries" && knob !== "forgetVote" && knob !== "leaseWithoutVoteRestriction") {
    throw new Error(`unknown SIM_KNOB ${knob}`);
  }
  knobs[knob] = true;
  overrides.knobs = knobs;
}
if (process.env.SIM_LEASE_CHECK === "0") overrides.checkLeaseExclusivity = false;
const sabotage = process.env.SIM_SABOTAGE;
if (sabotage !== undefined && sabotage !== "") {
  if (sabotage !== "follower-reads" && sabotage !== "no-dedupe" && sabotage !== "lazy-ticks") {
    throw new Error(`unknown SIM_SABOTAGE ${sabotage}`);
  }
  overrides.sabotage = sabotage satisfies Sabotage;
}

const single = intFromEnv("SEED");
if (single !== undefined) {
  if (process.env.SIM_TRACE === "1") overrides.traceSink = (line) => process.stdout.write(`${line}\n`);
  const started = performance.now();
  const result = runSimulation(configForSeed(single, overrides));
  const elapsedMs = performance.now() - started;
  if (!result.ok) {
    console.error(formatFailure(result));
    process.exitCode = 1;
  } else {
    console.log(`seed ${single} ok in ${elapsedMs.toFixed(0)} ms; trace hash ${result.traceHash}`);
    console.log(JSON.stringify(result.stats));
  }
} else {
  const count = intFromEnv("SIM_SEEDS") ?? 20;
  const base = intFromEnv("SIM_SEED_BASE") ?? 1;
  const started = performance.now();
  let events = 0;
  for (let seed = base; seed < base + count; seed++) {
    const result = runSimulation(configForSeed(seed, overrides));
    events += result.stats.events;
    if (!result.ok) {
      console.error(formatFailure(result));
      process.exitCode = 1;
      break;
    }
    if ((seed - base + 1) % 50 === 0) console.log(`${seed - base + 1} seeds ok (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
  if (process.exitCode !== 1) {
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `${count} seeds ok (${base}..${base + count - 1}), ${events} events, ${seconds.toFixed(1)} s; steps ${overrides.steps ?? DEFAULT_STEPS}`,
    );
  }
}
