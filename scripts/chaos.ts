/**
 * npm run chaos -- [--nodes 3] [--time 60] [--rate 100] [--keys 5] [--read-ratio 0.3]
 *                  [--nemesis all|kill,pause,...] [--seed N] [--fault-ms 4000] [--quiet-ms 3000]
 *                  [--concurrency 6] [--client-deadline-ms 8000]
 * Runs one process-backend chaos run (test/chaos/run.ts), prints the verdict and where the
 * report went, and exits 0 when valid, 1 when invalid, 2 when unknown. Replay with the same seed.
 */
import { Command } from "commander";
import { ALL_NEMESES, parseNemeses, runChaos } from "../test/chaos/run.js";

const program = new Command()
  .name("chaos")
  .option("--nodes <n>", "number of tallyd processes", "3")
  .option("--time <s>", "workload duration in seconds", "60")
  .option("--rate <ops>", "target operations per second", "100")
  .option("--keys <n>", "number of counter keys", "5")
  .option("--read-ratio <r>", "share of reads (half linearizable, half stale)", "0.3")
  .option("--nemesis <list>", `comma list of ${ALL_NEMESES.join(",")}, or all, or none`, "all")
  .option("--seed <n>", "seed of the schedule and workload (default: random)")
  .option("--concurrency <n>", "concurrent workers", "6")
  .option("--fault-ms <ms>", "length of one fault window", "4000")
  .option("--quiet-ms <ms>", "gap between fault windows", "3000")
  .option("--client-deadline-ms <ms>", "client deadline per operation, retries included (short: more ambiguity)", "8000")
  .parse();

const raw = program.opts<Record<string, string | undefined>>();
const int = (name: string, value: string | undefined, min: number): number => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min) throw new Error(`--${name} must be an integer >= ${min}, got ${value}`);
  return parsed;
};
const readRatio = Number(raw.readRatio);
if (!(readRatio >= 0 && readRatio <= 1)) throw new Error(`--read-ratio must be in [0, 1], got ${raw.readRatio}`);
const seed = raw.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : int("seed", raw.seed, 0);
const nodes = int("nodes", raw.nodes, 1);

console.log(`chaos: seed ${seed} (replay with --seed ${seed})`);
const run = await runChaos({
  nodes,
  timeS: int("time", raw.time, 1),
  rate: int("rate", raw.rate, 1),
  keys: int("keys", raw.keys, 1),
  readRatio,
  nemeses: parseNemeses(raw.nemesis ?? "all"),
  seed,
  concurrency: int("concurrency", raw.concurrency, 1),
  faultMs: int("fault-ms", raw.faultMs, 100),
  quietMs: int("quiet-ms", raw.quietMs, 0),
  clientDeadlineMs: int("client-deadline-ms", raw.clientDeadlineMs, 100),
  log: (line) => console.log(line),
});
const { result } = run;
console.log(
  `chaos: ${result.valid === true ? "VALID" : result.valid === false ? "INVALID" : "UNKNOWN"}: ${result.opsChecked} ops ` +
    `(${result.counts.ok} ok, ${result.counts.fail} failed, ${result.counts.ambiguous} ambiguous), ${run.faults.length} faults`,
);
for (const problem of result.problems) console.log(`  ${problem}`);
console.log(`chaos: report ${run.dir}/report.html`);
process.exit(result.valid === true ? 0 : result.valid === false ? 1 : 2);
