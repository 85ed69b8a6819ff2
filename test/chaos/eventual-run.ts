/**
 * The eventual-counter chaos run (issue 21; docs/testing.md "Eventual counters under chaos"): real
 * tallyd processes behind proxies (process-cluster.ts), workers sending eventual adds (single
 * `add(k, d, {mode: "eventual"})` and `addEventual([...])` batches) to random nodes, probe workers
 * measuring ack -> visible on keys of their own, and a seeded schedule of the harness's nemeses
 * (kill -9 + restart, kill-all, SIGSTOP pauses, partitions...). After the heal it waits until
 * every node's buffer has drained (`tally_eventual_buffer_adds` 0 on every node), reads every key
 * linearizably and checks each against its acknowledged, ambiguous and refused adds
 * (eventual-checker.ts). Writes .chaos/<timestamp>-eventual-seed<N>/result.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { TallyClient } from "../../src/client/index.js";
import { ClusterUnreachableError } from "../../src/client/errors.js";
import { AmbiguousError, TallyError } from "../../src/util/errors.js";
import { createPrng, type Prng } from "../../src/util/prng.js";
import type { FaultWindow } from "./checker.js";
import {
  checkEventualHistory,
  formatVisibility,
  summarizeVisibility,
  type EventualCheck,
  type EventualOp,
  type EventualStatus,
  type VisibilityReport,
  type VisibilitySample,
} from "./eventual-checker.js";
import { ProcessCluster } from "./process-cluster.js";
import { CRASHED, healEverything, noticeCrashes, runNemesisSchedule, type NemesisName } from "./run.js";

/** The nemeses of `npm run chaos -- --workload eventual` unless --nemesis says otherwise. */
export const EVENTUAL_NEMESES: readonly NemesisName[] = [
  "kill",
  "kill-leader",
  "kill-all",
  "pause",
  "pause-leader",
  "partition-leader",
  "partition-halves",
  "partition-one-way",
];

export interface EventualChaosOptions {
  nodes: number;
  /** Workload duration (s); nemeses run during it. */
  timeS: number;
  /** Target EventualAdd requests per second across the workers (probes not included). */
  rate: number;
  keys: number;
  /** Nemeses, in a seeded order that runs each once per round. */
  nemeses: NemesisName[];
  seed: number;
  /** Workers sending adds (default 6). */
  concurrency?: number;
  /** Probe workers measuring ack -> visible (default 2). */
  probes?: number;
  /** Share of requests that are addEventual batches of 2-8 adds (default 0.3). */
  batchRatio?: number;
  faultMs?: number;
  quietMs?: number;
  /** Client deadline per request, retries included (default 8000); short ones make ambiguity. */
  clientDeadlineMs?: number;
  /**
   * cluster.sessionTimeoutMs (default: tallyd's, 10 minutes). Shorter than a fault window plus a
   * restart, a killed, paused or cut node's flusher sessions expire while its flushes may be in
   * flight, and the shard's marker counter must decide them (docs/eventual.md).
   */
  sessionTimeoutMs?: number;
  /** How long the buffers get to drain after the heal (default 60,000 ms); past it the run is invalid. */
  drainTimeoutMs?: number;
  /** Where .chaos/<timestamp>/ goes (default: the repository root); null writes nothing. */
  outRoot?: string | null;
  log?: (line: string) => void;
}

export interface EventualChaosRun {
  seed: number;
  valid: boolean;
  /** The check's problems, crashes and an undrained buffer. */
  problems: string[];
  check: EventualCheck;
  visibility: VisibilityReport;
  samples: VisibilitySample[];
  faults: FaultWindow[];
  ops: EventualOp[];
  /** tally_eventual_flush_failures_total by outcome, summed over the nodes (each since its last start), read after the drain. */
  flushOutcomes: Record<string, number>;
  /** From the heal to every buffer empty, ms (undefined: never drained). */
  drainMs?: number;
  dir?: string;
}

const CLIENT_DEADLINE_MS = 8000;
const READY_TIMEOUT_MS = 60_000;
const FINAL_READ_TIMEOUT_MS = 30_000;
const WORKER_DRAIN_SLACK_MS = 5000;
/** A probe polls its key this often, and gives up on an add after PROBE_WAIT_MS (recorded as never seen). */
const PROBE_POLL_MS = 20;
const PROBE_WAIT_MS = 20_000;
const PROBE_READ_DEADLINE_MS = 2000;
const OPS_MAX = 200_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Codes after which the client says nothing was buffered (ClusterUnreachableError: every node refused or none was reached). */
const DEFINITE_CODES: ReadonlySet<string> = new Set([
  "INVALID_ARGUMENT",
  "FAILED_PRECONDITION",
  "OUT_OF_RANGE",
  "PERMISSION_DENIED",
  "UNAUTHENTICATED",
  "OVERLOADED",
]);

/** fail: the client's contract says the request was not buffered; ambiguous: it may have been. */
export function eventualOutcome(error: unknown): Exclude<EventualStatus, "ok"> {
  if (error instanceof AmbiguousError) return "ambiguous";
  if (error instanceof ClusterUnreachableError) return "fail";
  if (error instanceof TallyError && DEFINITE_CODES.has(error.code)) return "fail";
  return "ambiguous";
}

/** The nemesis order: each round a seeded shuffle of the list, so every nemesis runs once per round. */
function nemesisOrder(rng: Prng, names: readonly NemesisName[]): () => NemesisName {
  let round: NemesisName[] = [];
  return () => {
    if (round.length === 0) {
      round = [...names];
      for (let i = round.length - 1; i > 0; i--) {
        const j = rng.nextInt(i + 1);
        [round[i], round[j]] = [round[j]!, round[i]!];
      }
    }
    return round.shift()!;
  };
}

/** A node's sample of an unlabelled series (the node's own `node` label aside), or undefined when it does not answer. */
export async function metricOf(cluster: ProcessCluster, id: number, name: string): Promise<number | undefined> {
  const address = cluster.config.nodes.find((n) => n.id === id)?.metrics;
  if (address === undefined) throw new Error(`node ${id} has no metrics address`);
  try {
    const text = await (await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
    const row = text.split("\n").find((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`));
    return row === undefined ? undefined : Number(row.slice(row.lastIndexOf(" ") + 1));
  } catch {
    return undefined;
  }
}

/** tally_eventual_flush_failures_total by outcome, summed over the nodes that answer. */
async function flushOutcomes(cluster: ProcessCluster): Promise<Record<string, number>> {
  const outcomes: Record<string, number> = {};
  for (const node of cluster.config.nodes) {
    const text = await fetch(`http://${node.metrics}/metrics`, { signal: AbortSignal.timeout(3000) })
      .then((r) => r.text())
      .catch(() => "");
    for (const line of text.split("\n")) {
      const match = /^tally_eventual_flush_failures_total\{.*outcome="([a-z_]+)".*\} (\d+)/.exec(line);
      if (match !== null) outcomes[match[1]!] = (outcomes[match[1]!] ?? 0) + Number(match[2]);
    }
  }
  return outcomes;
}

/** Waits until every node reports an empty buffer; returns undefined and the last readings on timeout. */
async function waitDrained(cluster: ProcessCluster, timeoutMs: number): Promise<{ ms?: number; last: string }> {
  const started = performance.now();
  let last = "";
  while (performance.now() - started < timeoutMs) {
    const readings = await Promise.all(cluster.nodeIds.map((id) => metricOf(cluster, id, "tally_eventual_buffer_adds")));
    last = cluster.nodeIds.map((id, i) => `node ${id}: ${readings[i] ?? "no answer"}`).join(", ");
    if (readings.every((n) => n === 0)) return { ms: Math.round(performance.now() - started), last };
    await sleep(200);
  }
  return { last };
}

interface Shared {
  options: EventualChaosOptions;
  cluster: ProcessCluster;
  /** One client per node, that node first (its home node for eventual adds). */
  homeClients: TallyClient[];
  reader: TallyClient;
  ops: EventualOp[];
  samples: VisibilitySample[];
  now: () => number;
  stopping: boolean;
  /** Set once the history is final: a call returning later must not rewrite it. */
  frozen: boolean;
  nextId: number;
}

async function send(shared: Shared, op: EventualOp, client: TallyClient): Promise<void> {
  try {
    const result =
      op.kind === "add"
        ? await client.add(op.adds[0]!.key, BigInt(op.adds[0]!.delta), { mode: "eventual" })
        : await client.addEventual(op.adds.map((a) => ({ key: a.key, delta: BigInt(a.delta) })));
    if (shared.frozen) return;
    op.answeredBy = result.nodeId;
    op.status = "ok";
    op.completedAt = shared.now();
  } catch (error) {
    if (shared.frozen) return;
    op.error = error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 300) : String(error);
    op.status = eventualOutcome(error);
    if (op.status === "fail") op.completedAt = shared.now();
  }
}

function newOp(shared: Shared, worker: number, node: number, kind: EventualOp["kind"], adds: EventualOp["adds"]): EventualOp {
  // "ambiguous" until the call returns: a request still running when the run ends stays so.
  const op: EventualOp = { id: shared.nextId++, worker, node, kind, adds, status: "ambiguous", invokedAt: shared.now() };
  shared.ops.push(op);
  return op;
}

async function worker(shared: Shared, workerId: number, keys: readonly string[], rng: Prng): Promise<void> {
  const { options } = shared;
  const concurrency = options.concurrency ?? 6;
  const intervalMs = (1000 * concurrency) / Math.max(1, options.rate);
  let nextAt = performance.now() + rng.nextFloat() * intervalMs;
  while (!shared.stopping && shared.ops.length < OPS_MAX) {
    await sleep(nextAt - performance.now());
    nextAt = Math.max(nextAt + intervalMs, performance.now() - intervalMs);
    if (shared.stopping) break;
    const node = rng.nextInt(shared.homeClients.length);
    const batch = rng.chance(options.batchRatio ?? 0.3);
    const count = batch ? 2 + rng.nextInt(7) : 1;
    const adds = Array.from({ length: count }, () => ({ key: keys[rng.nextInt(keys.length)]!, delta: 1 + rng.nextInt(5) }));
    const op = newOp(shared, workerId, shared.cluster.nodeIds[node]!, batch ? "batch" : "add", adds);
    await send(shared, op, shared.homeClients[node]!);
  }
}

/**
 * A probe: adds 1 to a key only it writes, through a random node, then polls a linearizable `get`
 * until the value reaches the sum of its acknowledged adds. An ambiguous add leaves the key's
 * expected value unknown: the probe moves to a fresh key (the old one is still checked).
 */
async function probe(shared: Shared, probeId: number, rng: Prng): Promise<void> {
  let generation = 0;
  let key = `ev-${shared.options.seed}-probe${probeId}-g${generation}`;
  let expected = 0n;
  while (!shared.stopping && shared.ops.length < OPS_MAX) {
    const node = rng.nextInt(shared.homeClients.length);
    const op = newOp(shared, 500 + probeId, shared.cluster.nodeIds[node]!, "add", [{ key, delta: 1 }]);
    op.probe = true;
    await send(shared, op, shared.homeClients[node]!);
    if (shared.frozen) return;
    if (op.status !== "ok") {
      if (op.status === "ambiguous") {
        key = `ev-${shared.options.seed}-probe${probeId}-g${++generation}`;
        expected = 0n;
      }
      await sleep(50);
      continue;
    }
    expected += 1n;
    const sample: VisibilitySample = { key, node: op.answeredBy ?? op.node, ackAt: op.completedAt! };
    shared.samples.push(sample);
    const giveUpAt = performance.now() + PROBE_WAIT_MS;
    while (performance.now() < giveUpAt && !shared.frozen) {
      const value = await shared.reader
        .get(key, { deadlineMs: PROBE_READ_DEADLINE_MS })
        .then((r) => r.value)
        .catch((error: Error) => {
          sample.failedReads = (sample.failedReads ?? 0) + 1;
          sample.lastRead = `${(performance.now() / 1000).toFixed(1)}: ${error.name}: ${error.message}`.slice(0, 200);
          return undefined;
        });
      if (value !== undefined && value >= expected) {
        sample.visibleAt = shared.now();
        break;
      }
      if (value !== undefined) sample.lastRead = `${value} < ${expected}`;
      await sleep(PROBE_POLL_MS);
    }
  }
}

/** Quiet, fault, quiet, fault... until the workload time is up, every nemesis once per round. */
async function runSchedule(shared: Shared, faults: FaultWindow[], rng: Prng, log: (line: string) => void): Promise<void> {
  const { options, cluster, now } = shared;
  await runNemesisSchedule({ cluster, options, rng, pick: nemesisOrder(rng, options.nemeses), faults, now, log });
}

/** Every key the history touched, read linearizably (retried up to FINAL_READ_TIMEOUT_MS each). */
async function finalReads(shared: Shared): Promise<Map<string, string | undefined>> {
  const keys = [...new Set(shared.ops.flatMap((op) => op.adds.map((a) => a.key)))].sort();
  const finals = new Map<string, string | undefined>();
  for (const key of keys) {
    const deadline = performance.now() + FINAL_READ_TIMEOUT_MS;
    let value: string | undefined;
    while (value === undefined && performance.now() < deadline) {
      value = await shared.reader
        .get(key)
        .then((r) => r.value.toString())
        .catch(() => undefined);
      if (value === undefined) await sleep(200);
    }
    finals.set(key, value);
  }
  return finals;
}

export async function runEventualChaos(options: EventualChaosOptions): Promise<EventualChaosRun> {
  const log = options.log ?? (() => undefined);
  const prng = createPrng(options.seed);
  const scheduleRng = prng.fork();
  const workloadRng = prng.fork();
  const cluster = await ProcessCluster.start(
    {
      nodes: options.nodes,
      seed: options.seed,
      metrics: true,
      clientProxies: true,
      sessionTimeoutMs: options.sessionTimeoutMs,
      diskFaults: options.nemeses.includes("disk"),
    },
    READY_TIMEOUT_MS,
  );
  const startedAt = performance.now();
  const deadlineMs = options.clientDeadlineMs ?? CLIENT_DEADLINE_MS;
  const faults: FaultWindow[] = [];
  const problems: string[] = [];
  const shared: Shared = {
    options,
    cluster,
    homeClients: [],
    reader: new TallyClient({ endpoints: cluster.endpoints(), deadlineMs }),
    ops: [],
    samples: [],
    now: () => Math.round((performance.now() - startedAt) * 1000) / 1000,
    stopping: false,
    frozen: false,
    nextId: 0,
  };
  let finals = new Map<string, string | undefined>();
  let drainMs: number | undefined;
  let outcomes: Record<string, number> = {};
  try {
    const endpoints = cluster.endpoints();
    for (let i = 0; i < endpoints.length; i++) {
      const client = new TallyClient({ endpoints: [...endpoints.slice(i), ...endpoints.slice(0, i)], deadlineMs });
      shared.homeClients.push(client);
      await client.connect();
    }
    await shared.reader.connect();
    const keys = Array.from({ length: options.keys }, (_, i) => `ev-${options.seed}-k${i}`);
    const workers = [
      ...Array.from({ length: options.concurrency ?? 6 }, (_, i) => worker(shared, i, keys, workloadRng.fork())),
      ...Array.from({ length: options.probes ?? 2 }, (_, i) => probe(shared, i, workloadRng.fork())),
    ];
    const workloadDone = Promise.all(workers);
    await runSchedule(shared, faults, scheduleRng, log);

    await healEverything(cluster, faults, shared.now(), log);
    await sleep(2000);
    shared.stopping = true;
    await Promise.race([workloadDone, sleep(Math.max(deadlineMs, PROBE_WAIT_MS) + WORKER_DRAIN_SLACK_MS)]);
    shared.frozen = true;
    await cluster.waitReady(READY_TIMEOUT_MS);
    log(`[${(shared.now() / 1000).toFixed(1)}s] healed; waiting for every buffer to drain`);
    const drained = await waitDrained(cluster, options.drainTimeoutMs ?? 60_000);
    drainMs = drained.ms;
    if (drainMs === undefined)
      problems.push(`STALLED: the buffers did not drain within ${options.drainTimeoutMs ?? 60_000} ms (${drained.last})`);
    else log(`buffers drained in ${drainMs} ms; final reads`);
    await noticeCrashes(cluster, faults, shared.now(), log);
    outcomes = await flushOutcomes(cluster);
    finals = await finalReads(shared);
  } finally {
    shared.frozen = true;
    await Promise.all([...shared.homeClients, shared.reader].map((c) => c.close().catch(() => undefined)));
    await cluster.destroy().catch((error: Error) => log(`teardown: ${error.message}`));
  }

  const check = checkEventualHistory(shared.ops, finals);
  problems.push(...check.problems);
  // Staying up is part of the contract: a node that crashed by itself is a finding.
  for (const fault of faults.filter((f) => f.detail?.startsWith(CRASHED))) problems.push(fault.detail!);
  const visibility = summarizeVisibility(shared.samples, faults);
  const run: EventualChaosRun = {
    seed: options.seed,
    valid: problems.length === 0,
    problems,
    check,
    visibility,
    samples: shared.samples,
    faults,
    ops: shared.ops,
    flushOutcomes: outcomes,
    drainMs,
  };
  if (options.outRoot !== null) run.dir = writeResult(run, options);
  return run;
}

function writeResult(run: EventualChaosRun, options: EventualChaosOptions): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const dir = resolve(options.outRoot ?? resolve(import.meta.dirname, "..", ".."), ".chaos", `${stamp}-eventual-seed${run.seed}`);
  mkdirSync(dir, { recursive: true });
  const summary = {
    workload: "eventual",
    options: { ...options, log: undefined },
    seed: run.seed,
    valid: run.valid,
    problems: run.problems,
    counts: run.check.counts,
    addCounts: run.check.addCounts,
    drainMs: run.drainMs,
    flushOutcomes: run.flushOutcomes,
    visibility: run.visibility,
    keys: run.check.keys,
    faults: run.faults,
    samples: run.samples,
    history: run.ops,
  };
  writeFileSync(join(dir, "result.json"), JSON.stringify(summary, null, 1));
  return dir;
}

/** The run's verdict and figures, one line each (scripts/chaos.ts and the test print them). */
export function describeEventualRun(run: EventualChaosRun): string[] {
  const { counts, addCounts } = run.check;
  return [
    `eventual chaos: ${run.valid ? "VALID" : "INVALID"}: ${counts.ok + counts.fail + counts.ambiguous} requests ` +
      `(${counts.ok} ok, ${counts.fail} refused, ${counts.ambiguous} ambiguous; adds ${addCounts.ok}/${addCounts.fail}/${addCounts.ambiguous}), ` +
      `${run.check.keys.length} keys, ${run.faults.length} faults, buffers drained ${run.drainMs === undefined ? "NEVER" : `in ${run.drainMs} ms`}`,
    ...run.problems.map((problem) => `  ${problem}`),
    `  flush answers other than applied (since each node's last start): ${
      Object.entries(run.flushOutcomes)
        .map(([outcome, n]) => `${outcome} ${n}`)
        .join(", ") || "none"
    }`,
    `  ack -> visible (linearizable get), ${formatVisibility("quiet", run.visibility.quiet)}`,
    `  ack -> visible, ${formatVisibility(`during faults (+${run.visibility.recoveryMs} ms after)`, run.visibility.faults)}`,
    `  ack -> visible, ${formatVisibility("all", run.visibility.all)}`,
  ];
}
