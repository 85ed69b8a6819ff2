/**
 * The long fuzz run: `npm run fuzz` (10 minutes), or
 * `FUZZ_SEED=7 FUZZ_MINUTES=30 FUZZ_ITERATIONS=100000 npm run fuzz`. Starts its own 3-node cluster
 * (killed by PID at the end), prints a JSON report, exits 1 on any finding.
 */
import { TestCluster } from "../support/cluster.js";
import { Fuzzer } from "./harness.js";

const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const minutes = Number(process.env.FUZZ_MINUTES ?? 10);
const iterations = Number(process.env.FUZZ_ITERATIONS ?? Number.MAX_SAFE_INTEGER);
if (!Number.isFinite(seed) || !(minutes > 0) || !(iterations > 0)) {
  process.stderr.write("usage: FUZZ_SEED=<int> FUZZ_MINUTES=<minutes> FUZZ_ITERATIONS=<cases> npm run fuzz\n");
  process.exit(2);
}

const cluster = await TestCluster.start({ nodes: 3, shards: 2 });
let exitCode = 1;
try {
  process.stdout.write(`fuzz: seed ${seed}, up to ${minutes} min and ${iterations} cases\n`);
  const report = await new Fuzzer(cluster, {
    seed,
    iterations,
    durationMs: minutes * 60_000,
    log: (line) => process.stdout.write(`${line}\n`),
  }).run();
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  exitCode = report.findings.length === 0 ? 0 : 1;
} catch (error) {
  process.stderr.write(`fuzz: ${(error as Error).stack ?? String(error)}\n`);
} finally {
  await cluster.destroy();
}
process.exit(exitCode);
