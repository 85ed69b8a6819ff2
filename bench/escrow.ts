/**
 * Escrow latencies (docs/regions.md, "Escrow: a global floor"), two fresh 1-node regions on
 * loopback with a one-way latency on every region link (test/support/proxy.ts) and both
 * replicators in this process. Every process is killed by PID at the end.
 *
 *   npx tsx bench/escrow.ts [--latency-ms 50] [--samples 200]
 *
 * Measured, sequentially, --samples each:
 * - plain add: `add(K, -1)` in a (the baseline: one atomic batch of one op);
 * - escrow decrement with local rights: `escrowAdd(K, -1)` in a (one atomic batch of two ops);
 * - escrow decrement on demand: a holds no rights, b does: `escrowAdd(K, -1, { peers: [b] })` in a
 *   (refused, read of b's rights, transfer in b, applied in a, retried): about two round trips;
 * - transfer visible: from a transfer acknowledged in b (without a receiver) until a's rights
 *   show it, through a's replicator.
 */
import { ensureBundles } from "../bin/bundle.js";
import { escrowKeys } from "../src/client/escrow-keys.js";
import { escrowAdd, escrowTransfer, type TallyClient } from "../src/client/index.js";
import { RegionMesh } from "../test/support/regions.js";
import { parseArgs } from "./lib.js";

const args = parseArgs(process.argv.slice(2));
const latencyMs = Number(args.option("latency-ms", "50"));
const samples = Number(args.option("samples", "200"));

let mesh: RegionMesh | undefined;
process.on("exit", () => {
  for (const region of mesh?.regions ?? [])
    for (const node of region.cluster.processes.values()) if (node.pid !== undefined && node.exitCode === null) node.kill("SIGKILL");
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function summary(name: string, times: number[]): string {
  const sorted = [...times].sort((x, y) => x - y);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!.toFixed(1);
  return `| ${name} | ${at(50)} ms | ${at(90)} ms | ${at(99)} ms | ${sorted[sorted.length - 1]!.toFixed(1)} ms |`;
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

async function main(): Promise<void> {
  ensureBundles();
  mesh = await RegionMesh.start(["a", "b"], { shards: 2 });
  mesh.shapeAll({ latencyMs });
  mesh.startAllReplicators();
  const a = mesh.region("a").client;
  const b = mesh.region("b").client;
  const bFromA: TallyClient = mesh.remoteClient("b", "a");
  const rows: string[] = [];
  const runId = Date.now().toString(36);
  try {
    const plain = `plain:${runId}`;
    const local = `{esc-${runId}}:local`;
    const demand = `{esc-${runId}}:demand`;
    const moved = `{esc-${runId}}:moved`;
    await a.add(plain, BigInt(samples));
    await escrowAdd(a, local, BigInt(samples), { region: "a" });
    await escrowAdd(b, demand, BigInt(samples), { region: "b" });
    await escrowAdd(b, moved, BigInt(samples), { region: "b" });
    const times = { plain: [] as number[], local: [] as number[], demand: [] as number[], visible: [] as number[] };
    for (let i = 0; i < samples; i++) times.plain.push(await timed(() => a.add(plain, -1n)));
    for (let i = 0; i < samples; i++) times.local.push(await timed(() => escrowAdd(a, local, -1n, { region: "a" })));
    for (let i = 0; i < samples; i++)
      times.demand.push(await timed(() => escrowAdd(a, demand, -1n, { region: "a", peers: [{ region: "b", client: bFromA }] })));
    const rightsKey = escrowKeys(moved).rights;
    for (let i = 1; i <= samples; i++) {
      await escrowTransfer(b, moved, { from: "b", to: "a", amount: 1n });
      const acked = performance.now();
      for (;;) {
        const [held] = await a.getMany([rightsKey]);
        if (held!.value >= BigInt(i)) break;
        await sleep(2);
      }
      times.visible.push(performance.now() - acked);
    }
    rows.push(
      summary("plain add (baseline)", times.plain),
      summary("escrow decrement, local rights", times.local),
      summary("escrow decrement, rights on demand from b", times.demand),
      summary("transfer acknowledged in b -> rights in a (replicator)", times.visible),
    );
  } finally {
    await bFromA.close();
  }
  console.log(`escrow: 1-node regions a, b; one-way latency ${latencyMs} ms on region links; ${samples} sequential samples each`);
  console.log("| operation | p50 | p90 | p99 | max |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const row of rows) console.log(row);
}

try {
  await main();
} finally {
  await mesh?.destroy();
}
