/**
 * Command-line runner of the real-parts simulator (npm run sim:real).
 *
 *   SIM_SEED=n          replay one seed exactly (prints its trace hash; SIM_TRACE=1 prints every trace line)
 *   SIM_SEEDS=k         run k seeds from SIM_SEED_BASE (default 1); default 10
 *   SIM_NODES=3|5       force the node count (default: per seed, 3 or sometimes 5)
 *   SIM_FAULT_MS=n      virtual ms of the fault phase (default 4000)
 *   SIM_PLANT=ack-before-commit|lie-about-sync|stale-reads|compact-above-checkpoint   plant a defect the checkers must catch
 *   SIM_PLANT=tear-checkpoints   crashes may leave torn checkpoint files under their final names (the
 *                                readers' checksums must keep the node correct: it should pass)
 *
 * Exit code 1 on the first failing seed, after printing the seed, the replay command and the trace.
 */
import { configForSeed, formatFailure, runRealSimulation, type Plant, type RealSimOverrides } from "./simulator.js";

function intFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got ${raw}`);
  return value;
}

const overrides: RealSimOverrides = {};
const nodes = intFromEnv("SIM_NODES");
if (nodes !== undefined) overrides.nodeCount = nodes;
const faultMs = intFromEnv("SIM_FAULT_MS");
if (faultMs !== undefined) overrides.faultMs = faultMs;
const plant = process.env.SIM_PLANT;
if (plant !== undefined && plant !== "") {
  const plants = ["ack-before-commit", "lie-about-sync", "stale-reads", "tear-checkpoints", "compact-above-checkpoint"];
  if (!plants.includes(plant)) throw new Error(`unknown SIM_PLANT ${plant}`);
  overrides.plant = plant as Plant;
}

async function main(): Promise<void> {
  const single = intFromEnv("SIM_SEED") ?? intFromEnv("SEED");
  if (single !== undefined) {
    if (process.env.SIM_TRACE === "1") overrides.traceSink = (line) => process.stdout.write(`${line}\n`);
    const result = await runRealSimulation(configForSeed(single, overrides));
    if (!result.ok) {
      console.error(formatFailure(result));
      process.exitCode = 1;
      return;
    }
    console.log(`seed ${single} ok in ${result.elapsedMs.toFixed(0)} ms; trace hash ${result.traceHash}`);
    console.log(JSON.stringify(result.stats));
    return;
  }
  const count = intFromEnv("SIM_SEEDS") ?? 10;
  const base = intFromEnv("SIM_SEED_BASE") ?? 1;
  let totalMs = 0;
  for (let seed = base; seed < base + count; seed++) {
    const result = await runRealSimulation(configForSeed(seed, overrides));
    totalMs += result.elapsedMs;
    if (!result.ok) {
      console.error(formatFailure(result));
      process.exitCode = 1;
      return;
    }
    const s = result.stats;
    console.log(
      `seed ${seed} ok in ${result.elapsedMs.toFixed(0)} ms: ${result.options.nodeCount} nodes, ${s.events} events, ` +
        `${s.crashes} crashes (${s.crashesMidWrite} mid-write), adds ok/ambiguous/failed ${s.adds.ok}/${s.adds.ambiguous}/${s.adds.failed}, ` +
        `reads ${s.reads.ok}, snapshots installed ${s.snapshotsInstalled}, checkpoints ${s.checkpointsWritten} (torn ${s.checkpointsTorn}); hash ${result.traceHash}`,
    );
  }
  console.log(
    `${count} seeds ok (${base}..${base + count - 1}) in ${(totalMs / 1000).toFixed(1)} s (${(totalMs / count).toFixed(0)} ms per seed)`,
  );
}

await main();
