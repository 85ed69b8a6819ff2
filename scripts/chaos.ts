/**
 * npm run chaos -- [--backend process|container] [--nodes 3] [--time 60] [--rate 100] [--keys 5] [--read-ratio 0.3]
 *                  [--nemesis all|kill,pause,...] [--seed N] [--fault-ms 4000] [--quiet-ms 3000]
 *                  [--concurrency 6] [--contract-workers 2] [--client-deadline-ms 8000] [--check-states-max 2000000]
 *                  [--snapshot-every 10000]
 * npm run chaos -- --workload regions [--time 600] [--region-nodes 3,1,1] [--rate 30] [--loss 0.02] [--loss-mode iptables|emulated]
 *                  [--escrow-keys 2] [--drain-timeout-ms 60000]
 * npm run chaos -- --recheck .chaos/<run>/result.json [--check-states-max N]
 * npm run chaos -- --workload eventual [--time 600] [--nemesis kill,kill-all,pause,partition...] [--probes 2]
 *                  [--batch-ratio 0.3] [--session-timeout-ms N] [--drain-timeout-ms 60000] (process backend)
 * Runs one chaos run (test/chaos/run.ts) on child processes (default) or on containers (needs
 * the daemon of scripts/docker-up.sh, or DOCKER_HOST), prints the verdict and where the
 * report went, and exits 0 when valid, 1 when invalid, 2 when unknown or when a fault could not be
 * injected. Replay with the same seed. --recheck judges a recorded history again (e.g. an UNKNOWN
 * one, where the linearizability search ran out of budget, with a larger budget). --workload eventual
 * runs eventual adds instead (test/chaos/eventual-run.ts; docs/testing.md): every acknowledged add
 * must count exactly once once the buffers drained; it prints the ack -> visible distribution.
 * --workload regions runs 2-3 regions with latency, loss and inter-region partitions
 * (test/chaos/regions-run.ts; docs/regions.md): every region's global sum must equal the
 * acknowledged adds after the heal, and the escrow floor must hold throughout.
 */
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { ensureBundles } from "../bin/bundle.js";
import { LINEARIZABILITY_STATES_MAX, checkHistory, type CheckResult, type FaultWindow } from "../test/chaos/checker.js";
import { BACKEND_NAMES, type BackendName } from "../test/chaos/backend.js";
import { ALL_NEMESES, parseNemeses, runChaos } from "../test/chaos/run.js";
import { EVENTUAL_NEMESES, describeEventualRun, runEventualChaos } from "../test/chaos/eventual-run.js";
import { describeRegionRun, runRegionChaos } from "../test/chaos/regions-run.js";

const program = new Command()
  .name("chaos")
  .option("--backend <name>", `where the nodes run: ${BACKEND_NAMES.join(" or ")}`, "process")
  .option("--nodes <n>", "number of tallyd nodes", "3")
  .option("--time <s>", "workload duration in seconds", "60")
  .option("--rate <ops>", "target operations per second", "100")
  .option("--keys <n>", "number of counter keys", "5")
  .option("--read-ratio <r>", "share of reads (half linearizable, half stale)", "0.3")
  .option(
    "--workload <name>",
    "counter (exact adds and reads, the default), eventual (eventual adds to random nodes) or regions (2-3 regions, latency, loss, partitions)",
    "counter",
  )
  .option("--region-nodes <list>", "regions: nodes of each region's cluster, comma separated (2 or 3 regions of 1-3 nodes)", "3,1,1")
  .option("--loss <p>", "regions: packet loss between regions", "0.02")
  .option(
    "--loss-mode <mode>",
    "regions: iptables (real drops on the proxies' ports; needs root, else emulated) or emulated (the proxy)",
    "iptables",
  )
  .option("--escrow-keys <n>", "regions: escrowed keys (floor 0) decremented in every region", "2")
  .option(
    "--nemesis <list>",
    `comma list of ${ALL_NEMESES.join(",")} (or the groups partition, clock, crashes), or all, or none (default: all; eventual: ${EVENTUAL_NEMESES.join(",")})`,
  )
  .option("--probes <n>", "eventual: probe workers measuring ack -> visible", "2")
  .option("--batch-ratio <r>", "eventual: share of requests that are addEventual batches", "0.3")
  .option("--session-timeout-ms <ms>", "eventual: cluster.sessionTimeoutMs (short: flusher sessions expire during faults)")
  .option("--drain-timeout-ms <ms>", "eventual: how long the buffers get to drain after the heal", "60000")
  .option("--seed <n>", "seed of the schedule and workload (default: random)")
  .option("--concurrency <n>", "concurrent workers", "6")
  .option(
    "--contract-workers <n>",
    "raw-protocol workers that follow the error contract (a key per add; proves no 'not applied' answer was applied)",
    "2",
  )
  .option("--fault-ms <ms>", "length of one fault window", "4000")
  .option("--quiet-ms <ms>", "gap between fault windows", "3000")
  .option("--client-deadline-ms <ms>", "client deadline per operation, retries included (short: more ambiguity)", "8000")
  .option("--snapshot-every <n>", "the nodes' log compaction interval in entries (small: restarted nodes catch up by snapshot)", "10000")
  .option("--check-states-max <n>", "linearizability search budget per key", String(LINEARIZABILITY_STATES_MAX))
  .option("--recheck <result.json>", "check a recorded run's history again instead of running")
  .parse();

const raw = program.opts<Record<string, string | undefined>>();
const int = (name: string, value: string | undefined, min: number): number => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min) throw new Error(`--${name} must be an integer >= ${min}, got ${value}`);
  return parsed;
};
const checkStatesMax = int("check-states-max", raw.checkStatesMax, 1);

/** Prints the verdict; exits 0 valid, 1 invalid, 2 unknown or a fault that was not injected. */
function finish(result: CheckResult, faults: FaultWindow[], reportPath: string): never {
  console.log(
    `chaos: ${result.valid === true ? "VALID" : result.valid === false ? "INVALID" : "UNKNOWN"}: ${result.opsChecked} ops ` +
      `(${result.counts.ok} ok, ${result.counts.fail} failed, ${result.counts.ambiguous} ambiguous), ${faults.length} faults`,
  );
  for (const problem of result.problems) console.log(`  ${problem}`);
  if (result.linearizability.ok === "unknown")
    console.log(`  linearizability unknown: ${result.linearizability.message} (try --recheck with a larger --check-states-max)`);
  // A fault that could not be injected leaves the run proving less than it claims: not a clean pass.
  const failedFaults = faults.filter((fault) => fault.detail?.startsWith("nemesis error"));
  for (const fault of failedFaults) console.log(`  fault not injected: ${fault.name}: ${fault.detail}`);
  const contract = result.contract;
  if (contract.adds > 0)
    console.log(
      `  contract adds: ${contract.adds} (${Object.entries(contract.answers)
        .map(([code, n]) => `${code} ${n}`)
        .join(", ")}); answered "not applied" but applied: ${contract.definiteButApplied}`,
    );
  console.log(`chaos: report ${reportPath}`);
  process.exit(result.valid === false ? 1 : result.valid === true && failedFaults.length === 0 ? 0 : 2);
}

if (raw.recheck !== undefined) {
  const recorded = JSON.parse(readFileSync(raw.recheck, "utf8"));
  console.log(`chaos: rechecking ${raw.recheck} (seed ${recorded.seed}) with ${checkStatesMax} states per key`);
  finish(checkHistory(recorded.history, recorded.faults, checkStatesMax), recorded.faults, raw.recheck);
}

const readRatio = Number(raw.readRatio);
if (!(readRatio >= 0 && readRatio <= 1)) throw new Error(`--read-ratio must be in [0, 1], got ${raw.readRatio}`);
const seed = raw.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : int("seed", raw.seed, 0);
const nodes = int("nodes", raw.nodes, 1);
const backend = raw.backend as BackendName;
if (!BACKEND_NAMES.includes(backend)) throw new Error(`--backend must be one of ${BACKEND_NAMES.join(", ")}, got ${raw.backend}`);

if (raw.workload !== "counter" && raw.workload !== "eventual" && raw.workload !== "regions")
  throw new Error(`--workload must be counter, eventual or regions, got ${raw.workload}`);

console.log(`chaos: ${backend} backend, ${raw.workload} workload, seed ${seed} (replay with --seed ${seed})`);
ensureBundles();
if (raw.workload === "eventual") await runEventual();
if (raw.workload === "regions") await runRegions(); // the nodes run dist/tallyd.mjs and bin/tallyd.js never builds: rebuild it if src/ is newer
const run = await runChaos({
  backend,
  nodes,
  timeS: int("time", raw.time, 1),
  rate: int("rate", raw.rate, 1),
  keys: int("keys", raw.keys, 1),
  readRatio,
  nemeses: parseNemeses(raw.nemesis ?? "all", backend),
  seed,
  concurrency: int("concurrency", raw.concurrency, 1),
  contractWorkers: int("contract-workers", raw.contractWorkers, 0),
  faultMs: int("fault-ms", raw.faultMs, 100),
  quietMs: int("quiet-ms", raw.quietMs, 0),
  clientDeadlineMs: int("client-deadline-ms", raw.clientDeadlineMs, 100),
  snapshotEveryEntries: int("snapshot-every", raw.snapshotEvery, 2),
  checkStatesMax,
  log: (line) => console.log(line),
});
finish(run.result, run.faults, `${run.dir}/report.html`);

/** --workload eventual: exits 0 valid, 1 invalid, 2 when a fault could not be injected. */
async function runEventual(): Promise<never> {
  if (backend !== "process") throw new Error("--workload eventual runs on the process backend only");
  const batchRatio = Number(raw.batchRatio);
  if (!(batchRatio >= 0 && batchRatio <= 1)) throw new Error(`--batch-ratio must be in [0, 1], got ${raw.batchRatio}`);
  const run = await runEventualChaos({
    nodes,
    timeS: int("time", raw.time, 1),
    rate: int("rate", raw.rate, 1),
    keys: int("keys", raw.keys, 1),
    nemeses: raw.nemesis === undefined ? [...EVENTUAL_NEMESES] : parseNemeses(raw.nemesis, backend),
    seed,
    concurrency: int("concurrency", raw.concurrency, 1),
    probes: int("probes", raw.probes, 0),
    batchRatio,
    faultMs: int("fault-ms", raw.faultMs, 100),
    quietMs: int("quiet-ms", raw.quietMs, 0),
    clientDeadlineMs: int("client-deadline-ms", raw.clientDeadlineMs, 100),
    sessionTimeoutMs: raw.sessionTimeoutMs === undefined ? undefined : int("session-timeout-ms", raw.sessionTimeoutMs, 1000),
    drainTimeoutMs: int("drain-timeout-ms", raw.drainTimeoutMs, 1000),
    log: (line) => console.log(line),
  });
  for (const line of describeEventualRun(run)) console.log(line);
  const failedFaults = run.faults.filter((fault) => fault.detail?.startsWith("nemesis error"));
  for (const fault of failedFaults) console.log(`  fault not injected: ${fault.name}: ${fault.detail}`);
  console.log(`chaos: report ${run.dir}/result.json`);
  process.exit(!run.valid ? 1 : failedFaults.length > 0 ? 2 : 0);
}

/** --workload regions: exits 0 valid, 1 invalid. */
async function runRegions(): Promise<never> {
  if (backend !== "process") throw new Error("--workload regions runs on the process backend only");
  const regionNodes = String(raw.regionNodes)
    .split(",")
    .map((n) => int("region-nodes", n, 1));
  const loss = Number(raw.loss);
  if (!(loss >= 0 && loss < 1)) throw new Error(`--loss must be in [0, 1), got ${raw.loss}`);
  if (raw.lossMode !== "iptables" && raw.lossMode !== "emulated")
    throw new Error(`--loss-mode must be iptables or emulated, got ${raw.lossMode}`);
  const run = await runRegionChaos({
    regionNodes,
    timeS: int("time", raw.time, 1),
    rate: int("rate", raw.rate, 1),
    keys: int("keys", raw.keys, 1),
    escrowKeys: int("escrow-keys", raw.escrowKeys, 0),
    seed,
    loss,
    lossMode: raw.lossMode,
    faultMs: int("fault-ms", raw.faultMs, 100),
    quietMs: int("quiet-ms", raw.quietMs, 0),
    drainTimeoutMs: int("drain-timeout-ms", raw.drainTimeoutMs, 1000),
    log: (line) => console.log(line),
  });
  for (const line of describeRegionRun(run)) console.log(line);
  console.log(`chaos: report ${run.dir}/result.json (replay with --seed ${seed})`);
  process.exit(run.valid ? 0 : 1);
}
