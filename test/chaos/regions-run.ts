/**
 * The region chaos run (issue 21; docs/regions.md "Proof under chaos"): 2 or 3 regions on loopback,
 * each a real tally cluster of 1-3 tallyd processes (test/support/regions.ts), real replicators
 * (what `tallyctl regions replicate` runs), every inter-region link through a userspace proxy with
 * 50-150 ms one-way latency and packet loss (emulated by the proxy, or real by iptables:
 * test/support/iptables-loss.ts), and a seeded schedule of inter-region partitions (a pair cut
 * both ways, a region isolated), replicator restarts and kill -9 of a node of a multi-node region. Meanwhile workers in every region add
 * to shared plain keys and run escrow increments and decrements (on-demand transfers from the
 * other regions, across the same lossy links) on keys with a declared floor; the floor invariants
 * are read in every region during the run (regions-checker.ts).
 *
 * After the schedule: heal, stop the workload, wait until every region's global read of every key
 * equals the sum of the regions' own values and every transfer is received (the convergence time is
 * measured), then check the sums against the history. Writes .chaos/<stamp>-regions-seed<N>/
 * result.json (the seed, the schedule, every operation). The seed fixes the schedule, the op mix
 * and the proxies' jitter and loss draws; process timing is real, so a replay repeats the faults,
 * not the interleaving.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { applyComponents, escrowAdd, escrowDeclare, escrowState, globalGet, type TallyClient } from "../../src/client/index.js";
import { AmbiguousError, FailedPreconditionError, TallyError } from "../../src/util/errors.js";
import { createPrng, type Prng } from "../../src/util/prng.js";
import type { FaultWindow } from "./checker.js";
import { checkEscrowSample, checkRegionSums, type EscrowSample, type RegionOp, type RegionKeyVerdict } from "./regions-checker.js";
import { IptablesLoss, unavailableReason } from "../support/iptables-loss.js";
import { RegionMesh } from "../support/regions.js";
import { DEFINITE_FAILURE_CODES } from "./run.js";

export const REGION_NAMES = ["east", "west", "north"] as const;

export interface RegionChaosOptions {
  /** Nodes of each region's cluster (its length, 2 or 3, is the number of regions). */
  regionNodes: number[];
  /** Workload duration (s); the schedule runs during it. */
  timeS: number;
  /** Target operations per second in each region. */
  rate: number;
  /** Plain keys (every region adds to each) and escrowed keys. */
  keys: number;
  escrowKeys: number;
  seed: number;
  /** One-way latency between regions: latencyMs + [0, jitterMs) (defaults 50 and 100: 50-150 ms). */
  latencyMs?: number;
  jitterMs?: number;
  /** Packet loss between regions (default 0.02), emulated by the proxies or real by iptables. */
  loss?: number;
  lossMode?: "emulated" | "iptables";
  faultMs?: number;
  quietMs?: number;
  /** How long the regions get to converge after the heal (default 60,000 ms); past it the run is invalid. */
  drainTimeoutMs?: number;
  /**
   * A planted bug the checks must catch (regions-planted.test.ts): `escrow-bypass`, the second
   * region decrements escrowed keys by a plain add (no rights spent); `double-apply`, a component
   * copy is overwritten with twice the origin's value at a far-future origin index, as a replicator
   * that applied a batch twice without the guard would leave it.
   */
  plant?: "escrow-bypass" | "double-apply";
  outRoot?: string | null;
  log?: (line: string) => void;
}

export interface RegionChaosRun {
  seed: number;
  valid: boolean;
  problems: string[];
  lossMode: "emulated" | "iptables";
  /** Why iptables was not used when asked for (the run fell back to emulated loss). */
  lossNote?: string;
  /** Emulated: stalls and resets over every proxy. iptables: packets seen and dropped. */
  lossCounters: Record<string, number>;
  ops: RegionOp[];
  counts: Record<RegionOp["status"], number>;
  escrow: { refused: number; transferred: number; samples: number; floorProblems: number };
  faults: FaultWindow[];
  keys: RegionKeyVerdict[];
  /** From the workload's stop to every region agreeing (undefined: never). */
  convergedMs?: number;
  /** From the last heal to every region agreeing (the workload stops in between). */
  convergedAfterHealMs?: number;
  replicators: Array<{ link: string; errors: number; fullReads: number; lastError?: string }>;
  dir?: string;
}

const FLOOR = 0n;
const INITIAL = 20n;
const SAMPLE_EVERY_MS = 250;
const PEER_DEADLINES = { deadlineMs: 1_500, attemptTimeoutMs: 1_000, connectTimeoutMs: 700, retryBackoffMaxMs: 200 };
const WORKER_STOP_MS = 15_000;
const OPS_MAX = 400_000;
const WORKERS_PER_REGION = 2;
/** Codes after which an add certainly did not happen (shared with test/chaos/run.ts). */
const DEFINITE = DEFINITE_FAILURE_CODES;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export function outcomeOf(error: unknown): "fail" | "ambiguous" {
  if (error instanceof FailedPreconditionError) return "fail";
  if (error instanceof AmbiguousError) return "ambiguous";
  return error instanceof TallyError && DEFINITE.has(error.code) ? "fail" : "ambiguous";
}

interface Shared {
  options: RegionChaosOptions;
  mesh: RegionMesh;
  names: string[];
  plainKeys: string[];
  escrowKeys: string[];
  /** "from>to": a client of region `from` as region `to` sees it (through the lossy proxies). */
  peers: Map<string, TallyClient>;
  ops: RegionOp[];
  faults: FaultWindow[];
  floorProblems: string[];
  samples: number;
  /** Per replicator link, errors and full reads summed over its restarts. */
  replicatorTotals: Map<string, RegionChaosRun["replicators"][number]>;
  now: () => number;
  stopping: boolean;
  frozen: boolean;
}

async function runOp(shared: Shared, op: RegionOp): Promise<void> {
  const client = shared.mesh.region(op.region).client;
  try {
    if (op.kind === "add") await client.add(op.key, BigInt(op.delta));
    else if (shared.options.plant === "escrow-bypass" && op.delta < 0 && op.region === shared.names[1])
      await client.add(op.key, BigInt(op.delta));
    else {
      const peers = shared.names.filter((n) => n !== op.region).map((n) => ({ region: n, client: shared.peers.get(`${n}>${op.region}`)! }));
      const result = await escrowAdd(client, op.key, BigInt(op.delta), { region: op.region, peers });
      op.transferred = Number(result.transferred);
    }
    if (shared.frozen) return;
    op.status = "ok";
    op.completedAt = shared.now();
  } catch (error) {
    if (shared.frozen) return;
    op.error = error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 300) : String(error);
    op.status = outcomeOf(error);
    if (op.status === "fail") op.completedAt = shared.now();
  }
}

/** 70% plain adds of 1..5; 30% escrow ops: increments of 1..3 (45%) or decrements of 1..4 (55%): down to the floor. */
function nextOp(shared: Shared, region: string, rng: Prng): RegionOp {
  const escrow = shared.escrowKeys.length > 0 && rng.chance(0.3);
  const key = escrow ? shared.escrowKeys[rng.nextInt(shared.escrowKeys.length)]! : shared.plainKeys[rng.nextInt(shared.plainKeys.length)]!;
  const delta = !escrow ? 1 + rng.nextInt(5) : rng.chance(0.45) ? 1 + rng.nextInt(3) : -(1 + rng.nextInt(4));
  // "ambiguous" until the call returns: one still running when the history freezes stays so.
  return { id: shared.ops.length, region, kind: escrow ? "escrow" : "add", key, delta, status: "ambiguous", invokedAt: shared.now() };
}

async function worker(shared: Shared, region: string, rng: Prng): Promise<void> {
  const intervalMs = (1000 * WORKERS_PER_REGION) / Math.max(1, shared.options.rate);
  let nextAt = performance.now() + rng.nextFloat() * intervalMs;
  while (!shared.stopping && shared.ops.length < OPS_MAX) {
    await sleep(nextAt - performance.now());
    nextAt = Math.max(nextAt + intervalMs, performance.now() - intervalMs);
    if (shared.stopping) break;
    const op = nextOp(shared, region, rng);
    shared.ops.push(op);
    await runOp(shared, op);
  }
}

/** Reads every escrow key's state in every region (one GetMany each) and judges it. */
async function sampleFloor(shared: Shared, maxReceived: Map<string, bigint>): Promise<void> {
  const earlier = new Map(maxReceived);
  for (const key of shared.escrowKeys) {
    for (const region of shared.names) {
      const others = shared.names.filter((n) => n !== region);
      const state = await escrowState(shared.mesh.region(region).client, key, others).catch(() => undefined);
      if (state === undefined) continue;
      const sample: EscrowSample = { atMs: shared.now(), region, key, rights: state.rights, value: state.value, links: state.links };
      shared.samples++;
      const problems = checkEscrowSample(sample, FLOOR, region === shared.names[0], maxReceived, earlier);
      if (state.floor !== undefined && state.floor !== FLOOR) problems.push(`FLOOR: ${region} ${key}: declared floor reads ${state.floor}`);
      shared.floorProblems.push(...problems);
    }
  }
}

async function floorSampler(shared: Shared): Promise<void> {
  const maxReceived = new Map<string, bigint>();
  while (!shared.stopping) {
    await sampleFloor(shared, maxReceived);
    await sleep(SAMPLE_EVERY_MS);
  }
  await sampleFloor(shared, maxReceived);
}

/** The fault kinds of a schedule (isolating one of two regions is the pair cut; a kill needs a region of 2+ nodes). */
function faultKinds(shared: Shared): string[] {
  const kinds = ["partition-pair", "restart-replicator"];
  if (shared.names.length > 2) kinds.push("isolate-region");
  if (shared.options.regionNodes.some((n) => n > 1)) kinds.push("kill-node");
  return kinds;
}

/** Adds a replicator's counters to the run's totals (its status starts from 0 when it is restarted). */
function tallyReplicator(shared: Shared, link: string): void {
  const running = shared.mesh.replicators.get(link);
  if (running === undefined) return;
  const status = running.replicator.status();
  const total = shared.replicatorTotals.get(link) ?? { link, errors: 0, fullReads: 0 };
  total.errors += status.errors;
  total.fullReads += status.fullReads;
  total.lastError = status.lastError ?? total.lastError;
  shared.replicatorTotals.set(link, total);
}

/** kill -9 of one node of a region of 2+ nodes (its local adds may become ambiguous; its shards' leaders move); restarted on heal. */
function killNode(shared: Shared, rng: Prng): { detail: string; heal: () => Promise<void> } {
  const multi = shared.names.filter((_, i) => shared.options.regionNodes[i]! > 1);
  const region = shared.mesh.region(multi[rng.nextInt(multi.length)]!);
  const ids = region.cluster.config.nodes.map((node) => node.id);
  const id = ids[rng.nextInt(ids.length)]!;
  const killed = region.cluster.kill(id);
  return {
    detail: `${region.name} node ${id} killed`,
    heal: async () => {
      await killed;
      region.cluster.startNode(id);
    },
  };
}

/** Injects one fault; returns what heals it. */
function inject(shared: Shared, kind: string, rng: Prng): { detail: string; heal: () => Promise<void> } {
  const { mesh, names } = shared;
  const pick = (): string => names[rng.nextInt(names.length)]!;
  if (kind === "kill-node") return killNode(shared, rng);
  if (kind === "restart-replicator") {
    const to = pick();
    const from = names.filter((n) => n !== to)[rng.nextInt(names.length - 1)]!;
    tallyReplicator(shared, `${from}>${to}`);
    const stopped = mesh.stopReplicator(from, to);
    return { detail: `replicator ${from}>${to} stopped`, heal: async () => (await stopped, void mesh.startReplicator(from, to)) };
  }
  const a = pick();
  const cut = kind === "isolate-region" ? names.filter((n) => n !== a) : [names.filter((n) => n !== a)[rng.nextInt(names.length - 1)]!];
  for (const b of cut) mesh.partition(a, b, true);
  return {
    detail: `${a} | ${cut.join(",")}`,
    heal: async () => {
      for (const b of cut) mesh.partition(a, b, false);
    },
  };
}

/** Quiet, fault, quiet, fault... until the workload time is up; each kind once per seeded round. */
async function runSchedule(shared: Shared, rng: Prng, log: (line: string) => void): Promise<void> {
  const { options } = shared;
  const endAtMs = options.timeS * 1000;
  const faultMs = options.faultMs ?? 4000;
  const quietMs = options.quietMs ?? 3000;
  let round: string[] = [];
  while (shared.now() + quietMs + faultMs <= endAtMs) {
    await sleep(quietMs);
    if (round.length === 0) round = faultKinds(shared);
    // The first fault is a partition, so even the shortest run has one.
    const at = shared.faults.length === 0 ? round.indexOf("partition-pair") : rng.nextInt(round.length);
    const kind = round.splice(at, 1)[0]!;
    const startMs = shared.now();
    const fault = inject(shared, kind, rng);
    log(`[${(startMs / 1000).toFixed(1)}s] ${kind}: ${fault.detail}`);
    await sleep(faultMs);
    await fault.heal();
    shared.faults.push({ name: kind, startMs, endMs: shared.now(), detail: fault.detail });
  }
  await sleep(endAtMs - shared.now());
}

/** Every region's own (linearizable) value of `key`, and each region's global read of it. */
async function readKey(
  shared: Shared,
  key: string,
): Promise<{ own: bigint[]; globals: Array<{ value: bigint; parts: Map<string, bigint> }> }> {
  const own = await Promise.all(shared.names.map(async (n) => (await shared.mesh.region(n).client.get(key)).value));
  const globals = await Promise.all(
    shared.names.map(async (n) => {
      const read = await globalGet(shared.mesh.region(n).client, key, { regions: shared.names.filter((o) => o !== n) });
      return { value: read.value, parts: new Map(read.regions.map((part) => [part.region, part.value])) };
    }),
  );
  return { own, globals };
}

/**
 * Waits until, for every key, each region's copy of each other region's component equals that
 * region's own value (so every global read is the sum of the regions' values), and no escrow
 * transfer is in flight. Returns the ms it took, or undefined and the last difference seen.
 */
async function waitConverged(shared: Shared, timeoutMs: number): Promise<{ ms?: number; last: string }> {
  const started = performance.now();
  let last = "";
  const differs = async (): Promise<string | undefined> => {
    for (const key of [...shared.plainKeys, ...shared.escrowKeys]) {
      const { own, globals } = await readKey(shared, key);
      for (const [i, reader] of shared.names.entries())
        for (const [j, origin] of shared.names.entries())
          if (i !== j && globals[i]!.parts.get(origin) !== own[j])
            return `${reader}'s copy of ${origin}'s ${key}: ${globals[i]!.parts.get(origin)} != ${own[j]}`;
    }
    for (const key of shared.escrowKeys) {
      const states = await escrowStates(shared, key);
      for (const [i, state] of states.entries())
        for (const link of state.links) {
          const taker = states[shared.names.indexOf(link.region)]!.links.find((l) => l.region === shared.names[i])!;
          if (taker.received !== link.out)
            return `${key}: ${shared.names[i]} sent ${link.out} to ${link.region}, received ${taker.received}`;
        }
    }
    return undefined;
  };
  while (performance.now() - started < timeoutMs) {
    const difference = await differs().catch((error: Error) => `read failed: ${error.message}`);
    if (difference === undefined) return { ms: Math.round(performance.now() - started), last };
    last = difference;
    await sleep(200);
  }
  return { last };
}

/** Each key's global read in every region (decimal), after convergence. */
async function finalGlobals(shared: Shared): Promise<Map<string, Record<string, string | undefined>>> {
  const finals = new Map<string, Record<string, string | undefined>>();
  for (const key of [...shared.plainKeys, ...shared.escrowKeys]) {
    const row: Record<string, string | undefined> = {};
    for (const name of shared.names)
      row[name] = await globalGet(shared.mesh.region(name).client, key)
        .then((read) => read.value.toString())
        .catch(() => undefined);
    finals.set(key, row);
  }
  return finals;
}

/** Loss between regions: the proxies' emulated model, or iptables on the proxies' ports (falling back, with a note). */
function installLoss(mesh: RegionMesh, options: RegionChaosOptions, log: (line: string) => void) {
  const rate = options.loss ?? 0.02;
  const shape = { latencyMs: options.latencyMs ?? 50, jitterMs: options.jitterMs ?? 100 };
  let note: string | undefined;
  if (options.lossMode === "iptables" && rate > 0) {
    note = unavailableReason();
    if (note === undefined) {
      mesh.shapeAll(shape);
      const loss = IptablesLoss.install(mesh.proxyPorts(), rate);
      log(
        `loss: iptables chain ${loss.chain}, ${(rate * 100).toFixed(1)}% of the packets to and from ${mesh.proxyPorts().length} proxy ports`,
      );
      return { mode: "iptables" as const, iptables: loss, note };
    }
    log(`loss: iptables unavailable (${note}): the proxies emulate it instead`);
  }
  // Resets at 1/50 of the loss rate: a connection given up on now and then, not the common case.
  mesh.shapeAll({ ...shape, lossRate: rate, resetRate: rate / 50 });
  return { mode: "emulated" as const, iptables: undefined, note };
}

export async function runRegionChaos(options: RegionChaosOptions): Promise<RegionChaosRun> {
  const log = options.log ?? (() => undefined);
  const count = options.regionNodes.length;
  if (count < 2 || count > REGION_NAMES.length) throw new RangeError(`region chaos: 2 or 3 regions, got ${count}`);
  if (options.regionNodes.some((n) => !Number.isInteger(n) || n < 1 || n > 3))
    throw new RangeError(`region chaos: 1-3 nodes per region, got ${options.regionNodes.join(",")}`);
  const prng = createPrng(options.seed);
  const [scheduleRng, workloadRng, proxyRng] = [prng.fork(), prng.fork(), prng.fork()];
  const names = REGION_NAMES.slice(0, count);
  const mesh = await RegionMesh.start(names, {}, { nodes: options.regionNodes, random: () => proxyRng.nextFloat() });
  const startedAt = performance.now();
  const shared: Shared = {
    options,
    mesh,
    names,
    plainKeys: Array.from({ length: options.keys }, (_, i) => `rc-${options.seed}-k${i}`),
    escrowKeys: Array.from({ length: options.escrowKeys }, (_, i) => `{rc-${options.seed}-e${i}}:stock`),
    peers: new Map(),
    ops: [],
    faults: [],
    floorProblems: [],
    samples: 0,
    replicatorTotals: new Map(),
    now: () => Math.round(performance.now() - startedAt),
    stopping: false,
    frozen: false,
  };
  const problems: string[] = [];
  let loss: ReturnType<typeof installLoss> | undefined;
  let lossCounters: Record<string, number> = {};
  let converged: { ms?: number; afterHealMs?: number; last: string } = { last: "not reached" };
  let finals = new Map<string, Record<string, string | undefined>>();
  let replicators: RegionChaosRun["replicators"] = [];
  try {
    for (const from of names)
      for (const to of names) if (from !== to) shared.peers.set(`${from}>${to}`, mesh.remoteClient(from, to, PEER_DEADLINES));
    for (const key of shared.escrowKeys) {
      const op: RegionOp = {
        id: shared.ops.length,
        region: names[0]!,
        kind: "declare",
        key,
        delta: Number(INITIAL),
        status: "ok",
        invokedAt: 0,
      };
      await escrowDeclare(mesh.region(names[0]!).client, key, { floor: FLOOR, initial: INITIAL });
      shared.ops.push(op);
    }
    loss = installLoss(mesh, options, log);
    mesh.startAllReplicators();
    const workers = names.flatMap((name) => Array.from({ length: WORKERS_PER_REGION }, () => worker(shared, name, workloadRng.fork())));
    const sampler = floorSampler(shared);
    await runSchedule(shared, scheduleRng, log);
    if (options.plant === "double-apply") await plantDoubleApply(shared, log);
    const healedAt = shared.now();
    for (const a of names) for (const b of names) if (a < b) mesh.partition(a, b, false);
    shared.stopping = true;
    await Promise.race([Promise.all(workers), sleep(WORKER_STOP_MS)]);
    shared.frozen = true;
    await sampler;
    log(
      `[${(shared.now() / 1000).toFixed(1)}s] healed at ${(healedAt / 1000).toFixed(1)} s; ${shared.ops.length} ops; waiting for every region to converge`,
    );
    converged = await waitConverged(shared, options.drainTimeoutMs ?? 60_000);
    if (converged.ms !== undefined) converged.afterHealMs = shared.now() - healedAt;
    if (converged.ms === undefined) {
      problems.push(`STALLED: the regions did not converge within ${options.drainTimeoutMs ?? 60_000} ms: ${converged.last}`);
      for (const line of await mesh.diagnose()) log(`  ${line}`);
    } else log(`converged ${converged.ms} ms after the workload stopped`);
    finals = await finalGlobals(shared);
    problems.push(...(await escrowEnd(shared)));
    for (const link of mesh.replicators.keys()) tallyReplicator(shared, link);
    replicators = [...shared.replicatorTotals.values()].sort((a, b) => (a.link < b.link ? -1 : 1));
    // Staying up is part of the contract: a node that exited by itself is a finding.
    for (const region of mesh.regions) {
      try {
        region.cluster.assertNoUnexpectedExit();
      } catch (error) {
        problems.push(`CRASHED in ${region.name}: ${(error as Error).message.slice(0, 2000)}`);
      }
    }
    lossCounters = loss.iptables !== undefined ? { ...loss.iptables.counters() } : mesh.lossCounters();
  } finally {
    shared.stopping = true;
    shared.frozen = true;
    loss?.iptables?.remove();
    for (const peer of shared.peers.values()) await peer.close().catch(() => undefined);
    await mesh.destroy().catch((error: Error) => log(`teardown: ${error.message}`));
  }
  return finish(shared, { problems, loss: loss!, lossCounters, converged, finals, replicators });
}

/** The double-apply plant: the second region's copy of the first's component of a plain key, doubled, at index 2^60. */
async function plantDoubleApply(shared: Shared, log: (line: string) => void): Promise<void> {
  const [origin, here] = [shared.names[0]!, shared.names[1]!];
  const key = Buffer.from(shared.plainKeys[0]!);
  const value = (await shared.mesh.region(origin).client.get(key)).value;
  await applyComponents(shared.mesh.region(here).client, origin, [{ key, value: 2n * value, index: 2n ** 60n }]);
  log(`planted: ${here}'s copy of ${origin}'s ${key.toString()} set to ${2n * value} (twice ${value})`);
}

/**
 * After the workload: the true global of each escrowed key (the sum of every region's own value,
 * final now) at or above the floor, and equal to floor + rights held + rights in flight (sent, not
 * yet received: 0 once converged). Read from each region's own state, not from one region's global
 * view, so a stalled replicator shows up as STALLED, not as a false floor breach.
 */
/** Every region's escrow state of `key`, in shared.names order. */
function escrowStates(shared: Shared, key: string): Promise<Array<Awaited<ReturnType<typeof escrowState>>>> {
  return Promise.all(
    shared.names.map((n) =>
      escrowState(
        shared.mesh.region(n).client,
        key,
        shared.names.filter((o) => o !== n),
      ),
    ),
  );
}

async function escrowEnd(shared: Shared): Promise<string[]> {
  const problems: string[] = [];
  for (const key of shared.escrowKeys) {
    const states = await escrowStates(shared, key);
    const value = states.reduce((sum, state) => sum + state.value, 0n);
    const held = states.reduce((sum, state) => sum + state.rights, 0n);
    let inFlight = 0n;
    for (const [i, state] of states.entries())
      for (const link of state.links)
        inFlight += link.out - states[shared.names.indexOf(link.region)]!.links.find((l) => l.region === shared.names[i])!.received;
    if (value < FLOOR) problems.push(`FLOOR: ${key}: the regions' values sum to ${value}, below the floor ${FLOOR}`);
    if (held + inFlight !== value - FLOOR)
      problems.push(`FLOOR: ${key}: rights held ${held} + in flight ${inFlight} != value ${value} - floor ${FLOOR}`);
  }
  return problems;
}

function finish(
  shared: Shared,
  end: {
    problems: string[];
    loss: ReturnType<typeof installLoss>;
    lossCounters: Record<string, number>;
    converged: { ms?: number; afterHealMs?: number };
    finals: Map<string, Record<string, string | undefined>>;
    replicators: RegionChaosRun["replicators"];
  },
): RegionChaosRun {
  const sums = checkRegionSums(shared.ops, end.finals);
  const problems = [...end.problems, ...sums.problems, ...shared.floorProblems.slice(0, 50)];
  const counts = { ok: 0, fail: 0, ambiguous: 0 };
  for (const op of shared.ops) counts[op.status]++;
  const escrowOps = shared.ops.filter((op) => op.kind === "escrow");
  const run: RegionChaosRun = {
    seed: shared.options.seed,
    valid: problems.length === 0,
    problems,
    lossMode: end.loss.mode,
    lossNote: end.loss.note,
    lossCounters: end.lossCounters,
    ops: shared.ops,
    counts,
    escrow: {
      refused: escrowOps.filter((op) => op.status === "fail").length,
      transferred: escrowOps.reduce((n, op) => n + (op.transferred ?? 0), 0),
      samples: shared.samples,
      floorProblems: shared.floorProblems.length,
    },
    faults: shared.faults,
    keys: sums.keys,
    convergedMs: end.converged.ms,
    convergedAfterHealMs: end.converged.afterHealMs,
    replicators: end.replicators,
  };
  if (shared.options.outRoot !== null) run.dir = writeResult(run, shared.options);
  return run;
}

function writeResult(run: RegionChaosRun, options: RegionChaosOptions): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const dir = resolve(options.outRoot ?? resolve(import.meta.dirname, "..", ".."), ".chaos", `${stamp}-regions-seed${run.seed}`);
  mkdirSync(dir, { recursive: true });
  const { ops, ...summary } = run;
  writeFileSync(
    join(dir, "result.json"),
    JSON.stringify({ workload: "regions", options: { ...options, log: undefined }, ...summary, history: ops }, null, 1),
  );
  return dir;
}

/** The run's verdict and figures, one line each (scripts/chaos.ts and the test print them). */
export function describeRegionRun(run: RegionChaosRun): string[] {
  const adds = run.ops.filter((op) => op.kind === "add");
  const kinds = new Map<string, number>();
  for (const fault of run.faults) kinds.set(fault.name, (kinds.get(fault.name) ?? 0) + 1);
  const loss =
    run.lossMode === "iptables"
      ? `iptables: ${run.lossCounters.dropped} of ${run.lossCounters.packets} packets dropped (${((100 * (run.lossCounters.dropped ?? 0)) / Math.max(1, run.lossCounters.packets ?? 0)).toFixed(2)}%)`
      : `emulated: ${run.lossCounters.stalls} RTO stalls, ${run.lossCounters.resets} resets${run.lossNote ? ` (iptables unavailable: ${run.lossNote})` : ""}`;
  return [
    `region chaos: ${run.valid ? "VALID" : "INVALID"}: ${run.ops.length} ops (${run.counts.ok} ok, ${run.counts.fail} refused, ${run.counts.ambiguous} ambiguous); ` +
      `plain adds ${adds.length} (${adds.filter((op) => op.status === "ok").length} acknowledged), ${run.keys.length} keys; converged ${run.convergedMs === undefined ? "NEVER" : `${run.convergedMs} ms after the workload stopped (${run.convergedAfterHealMs} ms after the heal)`}`,
    ...run.problems.map((problem) => `  ${problem}`),
    `  faults: ${run.faults.length} (${[...kinds].map(([k, n]) => `${k} ${n}`).join(", ")})`,
    `  loss ${loss}`,
    `  escrow: ${run.escrow.refused} decrements refused at the floor, ${run.escrow.transferred} rights moved on demand, ${run.escrow.samples} floor samples, ${run.escrow.floorProblems} violations`,
    `  replicators: ${run.replicators.map((r) => `${r.link} ${r.errors} errors, ${r.fullReads} full reads`).join("; ")}`,
  ];
}
