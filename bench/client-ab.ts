/**
 * A client change measured alone: this tree's TallyClient and another tree's (`--base`, a checkout
 * with the same dependencies, e.g. a `git worktree` of the commit before) take turns against ONE
 * cluster started from this tree, window by window, so both see the same nodes, data and box.
 *
 *   npx tsx bench/client-ab.ts --base /tmp/old [--keys uniform|hot] [--rate 0] [--rounds 6]
 *                              [--seconds 5] [--concurrency 256]
 *
 * --rate 0: a closed loop of --concurrency adds; --rate N: an open loop at N adds/s (latency).
 * Prints each window and the medians. The first window of each client warms it (JIT, routes).
 */
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { TallyClient } from "../src/client/index.js";
import { createPrng } from "../src/util/prng.js";
import { TestCluster } from "../test/support/cluster.js";
import { closedLoop, loadAverage, machineDescription, openLoop, parseArgs, type LoadResult } from "./lib.js";

const args = parseArgs(process.argv.slice(2));
const base = args.option("base", "");
if (base === "") throw new Error("--base <tree> is required (a checkout of the client to compare with)");
const keys = args.option("keys", "uniform");
if (keys !== "uniform" && keys !== "hot") throw new Error(`--keys must be uniform or hot, got ${keys}`);
const rate = Number(args.option("rate", "0"));
const rounds = Number(args.option("rounds", "6"));
const seconds = Number(args.option("seconds", "5"));
const concurrency = Number(args.option("concurrency", "256"));
for (const [name, value] of Object.entries({ rate, rounds, seconds, concurrency }))
  if (!(value >= 0) || (name !== "rate" && !(value > 0))) throw new Error(`--${name} must be a positive number, got ${value}`);

type ClientClass = typeof TallyClient;
const { TallyClient: BaseClient } = (await import(pathToFileURL(join(resolve(base), "src/client/index.ts")).href)) as {
  TallyClient: ClientClass;
};

const cluster = await TestCluster.start({ nodes: 3, shards: 8 });
try {
  const clients: Record<"base" | "this", TallyClient> = {
    base: new BaseClient({ endpoints: cluster.endpoints(), deadlineMs: 30_000 }),
    this: new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 30_000 }),
  };
  for (const client of Object.values(clients)) await client.connect();
  console.log(
    `${machineDescription()}; load ${loadAverage()}; ${keys} keys, ${rate > 0 ? `${rate}/s offered` : `${concurrency} in flight`}`,
  );
  const prng = createPrng(7);
  const results: Record<"base" | "this", LoadResult[]> = { base: [], this: [] };
  for (let round = 0; round < rounds; round++) {
    for (const name of round % 2 === 0 ? (["base", "this"] as const) : (["this", "base"] as const)) {
      const client = clients[name];
      const operation = async () => (await client.add(keys === "hot" ? "hot" : `ab${prng.nextInt(1_000_000)}`, 1n), 1);
      const result = rate > 0 ? await openLoop({ rate, seconds, operation }) : await closedLoop({ concurrency, seconds, operation });
      results[name].push(result);
      console.log(
        `${round} ${name.padEnd(4)} ${result.perSecond}/s p50 ${result.p50Ms.toFixed(1)} p99 ${result.p99Ms.toFixed(1)} ms, errors ${result.errors}`,
      );
    }
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  for (const name of ["base", "this"] as const) {
    const warm = results[name].slice(1); // the first window warms the client
    console.log(
      `${name}: median of ${warm.length} windows ${median(warm.map((r) => r.perSecond))}/s, p99 ${median(warm.map((r) => r.p99Ms)).toFixed(1)} ms`,
    );
  }
  for (const client of Object.values(clients)) await client.close();
} finally {
  await cluster.destroy();
}
process.exit(0);
