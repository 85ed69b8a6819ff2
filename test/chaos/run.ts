/**
 * One chaos run (Jepsen-shaped): start a cluster (child processes behind proxies, or containers:
 * see backend.ts), run a concurrent workload
 * through the real TallyClient while a seeded schedule of nemeses injects faults, heal, wait for
 * quiescence, read every key back, check the history and write .chaos/<timestamp>/{result.json,
 * report.html}. The seed fixes the schedule, the keys, deltas and op mix; process timing is real,
 * so a replay reproduces the fault sequence, not the exact interleaving.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { TallyClient } from "../../src/client/index.js";
import { AmbiguousError, TallyError } from "../../src/util/errors.js";
import { createPrng, type Prng } from "../../src/util/prng.js";
import { checkHistory, type CheckResult, type FaultWindow, type HistoryOp } from "./checker.js";
import { runPlacementNemesis } from "./placement-nemesis.js";
import { linksBetween, type BackendName, type ClusterBackend, type ClusterOptions } from "./backend.js";
import { ProcessCluster } from "./process-cluster.js";
import { renderHtmlReport } from "./report.js";
import type { LinkShape } from "../support/proxy.js";
import { keyInSlots } from "../support/keys.js";
import { RawCallError, RawNodeClient } from "../support/raw-client.js";

export const ALL_NEMESES = [
  "kill",
  "kill-minority",
  "kill-leader",
  "kill-all",
  "pause",
  "pause-leader",
  "partition-leader",
  "partition-halves",
  "partition-one-way",
  "clock-skew",
  "clock-jump",
  "disk",
  "transfer-storm",
  "placement",
  "latency",
  "slow",
] as const;
export type NemesisName = (typeof ALL_NEMESES)[number];

/** Names that stand for several nemeses on the command line. */
const NEMESIS_GROUPS: Record<string, readonly NemesisName[]> = {
  partition: ["partition-leader", "partition-halves", "partition-one-way"],
  clock: ["clock-skew", "clock-jump"],
  crashes: ["kill", "kill-minority", "kill-leader", "kill-all"],
};

/** The container backend cannot shape links (no latency or bandwidth caps). */
const SHAPING_NEMESES: readonly NemesisName[] = ["latency", "slow"];

export function nemesesOf(backend: BackendName): NemesisName[] {
  return ALL_NEMESES.filter((name) => backend === "process" || !SHAPING_NEMESES.includes(name));
}

export interface ChaosOptions {
  /** Where the nodes run (default "process"). */
  backend?: BackendName;
  nodes: number;
  /** Workload duration (s); nemeses run during it. */
  timeS: number;
  /** Target operations per second across all workers. */
  rate: number;
  keys: number;
  /** Share of operations that are reads (half linearizable, half STALE). */
  readRatio: number;
  nemeses: NemesisName[];
  seed: number;
  /** Concurrent workers (default 6). */
  concurrency?: number;
  /**
   * Contract workers (default 0): raw-protocol clients that follow the documented error contract to
   * the letter, as a client in another language would: an add answered "not applied" (NOT_LEADER,
   * WRONG_SHARD, ...) is given up and the next add takes a new seq; an unknown outcome is left
   * ambiguous. Each add has a key of its own, so the final reads prove which adds applied.
   */
  contractWorkers?: number;
  /** Pause between a contract worker's adds (default 20 ms): short, so adds are in flight when a fault strikes. */
  contractIntervalMs?: number;
  /** Length of a fault window (default 4 s) and of the quiet gap between faults (default 3 s). */
  faultMs?: number;
  quietMs?: number;
  /** Overall deadline of one client operation, retries included (default 8000). Short ones make ambiguity. */
  clientDeadlineMs?: number;
  /** Where .chaos/<timestamp>/ goes (default: the repository root); null writes nothing. */
  outRoot?: string | null;
  /** Linearizability search budget per key (default LINEARIZABILITY_STATES_MAX); many ambiguous adds need more. */
  checkStatesMax?: number;
  /** Extra environment for every node (the planted-bug test sets TALLY_TEST_ACK_BEFORE_COMMIT). */
  nodeEnv?: Record<string, string>;
  /** The nodes' log compaction interval (default 10,000): small, and restarted nodes catch up by snapshot. */
  snapshotEveryEntries?: number;
  log?: (line: string) => void;
}

export interface ChaosRun {
  seed: number;
  result: CheckResult;
  history: HistoryOp[];
  faults: FaultWindow[];
  /** The report directory, when written. */
  dir?: string;
  /** Snapshots the nodes installed (since each one's last start), read after the final reads. */
  snapshotsInstalled?: number;
}

/**
 * The planted-bug run both backends' tests make: with TALLY_TEST_ACK_BEFORE_COMMIT=1 a leader
 * acknowledges adds before they commit, so kill -9 of leaders must leave an INVALID history.
 */
export const PLANTED_BUG_RUN: ChaosOptions = {
  nodes: 3,
  timeS: 16,
  rate: 60,
  keys: 3,
  readRatio: 0.2,
  nemeses: ["kill-leader"],
  seed: 1234,
  concurrency: 6,
  faultMs: 2500,
  quietMs: 2000,
  outRoot: null,
  nodeEnv: { TALLY_TEST_ACK_BEFORE_COMMIT: "1" },
};

/**
 * The planted bug of the error contract: with TALLY_TEST_NOT_LEADER_AFTER_PROPOSE=1 a leader that
 * loses leadership answers its proposed writes NOT_LEADER. Leader pauses and kills with contract
 * workers must show adds answered NOT_LEADER that were applied.
 */
export const PLANTED_NOT_LEADER_RUN: ChaosOptions = {
  nodes: 3,
  timeS: 30,
  rate: 40,
  keys: 3,
  readRatio: 0.2,
  nemeses: ["pause-leader"],
  seed: 4321,
  concurrency: 4,
  contractWorkers: 6,
  faultMs: 2500,
  quietMs: 1500,
  outRoot: null,
  nodeEnv: { TALLY_TEST_NOT_LEADER_AFTER_PROPOSE: "1" },
};

const CLIENT_DEADLINE_MS = 8000;
const FINAL_READ_TIMEOUT_MS = 30_000;
const READY_TIMEOUT_MS = 60_000;
const WORKER_DRAIN_SLACK_MS = 5000;
/** Bounds the history kept in memory (a run beyond it stops issuing operations). */
const HISTORY_OPS_MAX = 200_000;
const CLIENTS = 2;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/**
 * The codes the error contract calls "not applied" (docs/errors.md, proto/tally.proto): a contract worker
 * gives such an add up and never resends it. Anything else, or no answer, is "unknown".
 */
export const CONTRACT_NOT_APPLIED: ReadonlySet<string> = new Set([
  "NOT_LEADER",
  "WRONG_SHARD",
  "SEQ_ACKNOWLEDGED",
  "INVALID_ARGUMENT",
  "FAILED_PRECONDITION",
  "OUT_OF_RANGE",
  "OVERLOADED",
  "SESSION_EXPIRED",
  "PERMISSION_DENIED",
  "UNAUTHENTICATED",
  "VERSION_MISMATCH",
  "NOT_FOUND",
]);
// Longer than a pause nemesis holds a node: a paused leader answers in-flight adds when it resumes.
const CONTRACT_CALL_TIMEOUT_MS = 10_000;
/** The shard contract workers write to, and whose leader pause-leader stops. */
const CONTRACT_SHARD = 1;

/** Errors after which a mutation certainly did not happen; everything else is ambiguous. */
/** Codes after which a mutation certainly did not happen. */
export const DEFINITE_FAILURE_CODES: ReadonlySet<string> = new Set([
  "INVALID_ARGUMENT",
  "FAILED_PRECONDITION",
  "OUT_OF_RANGE",
  "OVERLOADED",
  "UNAVAILABLE",
  "TIMEOUT",
  "WRONG_SHARD",
  "NOT_LEADER",
]);

function isDefiniteFailure(error: unknown): boolean {
  if (error instanceof AmbiguousError) return false;
  if (!(error instanceof TallyError)) return false;
  return DEFINITE_FAILURE_CODES.has(error.code);
}

export async function runChaos(options: ChaosOptions): Promise<ChaosRun> {
  const log = options.log ?? (() => undefined);
  const prng = createPrng(options.seed);
  const scheduleRng = prng.fork();
  const workloadRng = prng.fork();
  const backend = options.backend ?? "process";
  const unsupported = options.nemeses.filter((name) => !nemesesOf(backend).includes(name));
  if (unsupported.length > 0) throw new Error(`the ${backend} backend cannot run nemesis ${unsupported.join(",")}`);
  const diskFaults = options.nemeses.includes("disk");
  const cluster = await startCluster(backend, {
    nodes: options.nodes,
    extraEnv: options.nodeEnv,
    seed: options.seed,
    diskFaults,
    snapshotEveryEntries: options.snapshotEveryEntries,
  });
  const clients: TallyClient[] = [];
  const startedAt = performance.now();
  const now = (): number => Math.round((performance.now() - startedAt) * 1000) / 1000;
  const history: HistoryOp[] = [];
  const faults: FaultWindow[] = [];
  let snapshotsInstalled: number | undefined;
  try {
    for (let i = 0; i < CLIENTS; i++) {
      const client = new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: options.clientDeadlineMs ?? CLIENT_DEADLINE_MS });
      await client.connect();
      clients.push(client);
    }
    const keys = Array.from({ length: options.keys }, (_, i) => `chaos-${options.seed}-k${i}`);
    let stopping = false;
    // Set once the history is final: a call that returns later (the client is being closed) must not rewrite it.
    let frozen = false;
    const concurrency = options.concurrency ?? 6;
    const intervalMs = (1000 * concurrency) / Math.max(1, options.rate);
    let nextId = 0;

    const worker = async (workerId: number, rng: Prng): Promise<void> => {
      const client = clients[workerId % clients.length]!;
      // Per key: the highest log index and counter value this worker has seen (for STALE minIndex).
      const seenIndex = new Map<string, bigint>();
      const seenValue = new Map<string, bigint>();
      let nextAt = performance.now() + rng.nextFloat() * intervalMs;
      while (!stopping && history.length < HISTORY_OPS_MAX) {
        await sleep(nextAt - performance.now());
        nextAt = Math.max(nextAt + intervalMs, performance.now() - intervalMs);
        if (stopping) break;
        const key = keys[rng.nextInt(keys.length)]!;
        const roll = rng.nextFloat();
        // "ambiguous" until the call returns: an op still running when the run ends stays so.
        const op: HistoryOp = { id: nextId++, worker: workerId, key, kind: "add", status: "ambiguous", invokedAt: now() };
        history.push(op);
        try {
          if (roll >= options.readRatio) {
            op.delta = 1 + rng.nextInt(5);
            const result = await client.add(key, BigInt(op.delta));
            op.value = result.value.toString();
            seenIndex.set(key, result.fence.index);
            seenValue.set(key, result.value);
          } else if (roll < options.readRatio / 2) {
            op.kind = "read";
            const result = await client.get(key);
            op.value = result.value.toString();
            if (result.appliedIndex > (seenIndex.get(key) ?? 0n)) seenIndex.set(key, result.appliedIndex);
            if (result.value > (seenValue.get(key) ?? 0n)) seenValue.set(key, result.value);
          } else {
            op.kind = "stale-read";
            const minIndex = seenIndex.get(key) ?? 0n;
            op.minIndex = minIndex.toString();
            op.minValue = (seenValue.get(key) ?? 0n).toString();
            const result = await client.get(key, { consistency: "stale", minIndex });
            op.value = result.value.toString();
            op.appliedIndex = result.appliedIndex.toString();
          }
          if (frozen) return;
          op.completedAt = now();
          op.status = "ok";
        } catch (error) {
          if (frozen) return;
          op.error = error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 300) : String(error);
          if (op.kind === "add" && !isDefiniteFailure(error)) {
            op.status = "ambiguous";
          } else {
            op.status = "fail";
            op.completedAt = now();
          }
        }
      }
    };

    // Contract workers write to shard 1's keys (the shard pause-leader aims at): a session per worker.
    const contractShard =
      (options.contractWorkers ?? 0) > 0
        ? (await clients[0]!.routes()).shards.find((shard) => shard.shardId === CONTRACT_SHARD)
        : undefined;
    if ((options.contractWorkers ?? 0) > 0 && contractShard === undefined) throw new Error(`no shard ${CONTRACT_SHARD} in the routes`);
    const contractWorker = async (workerId: number): Promise<void> => {
      const endpoints = cluster.endpoints();
      let target = workerId % endpoints.length;
      let raw = new RawNodeClient(endpoints[target]!);
      const switchTo = (address: string | undefined): void => {
        const next = address !== undefined && endpoints.includes(address) ? endpoints.indexOf(address) : (target + 1) % endpoints.length;
        if (next === target) return;
        raw.close();
        target = next;
        raw = new RawNodeClient(endpoints[target]!);
      };
      const shardId = contractShard!.shardId;
      let session: string | undefined;
      let seq = 0;
      let count = 0;
      try {
        while (!stopping && history.length < HISTORY_OPS_MAX) {
          await sleep(options.contractIntervalMs ?? 20);
          if (stopping) break;
          if (session === undefined) {
            try {
              session = String((await raw.call("registerSession", { shardId }, CONTRACT_CALL_TIMEOUT_MS)).clientId);
              seq = 0;
            } catch (error) {
              switchTo(error instanceof RawCallError ? error.info?.leaderAddress : undefined);
              continue;
            }
          }
          const key = keyInSlots(`chaos-${options.seed}-c${workerId}-${count++}`, contractShard!.slotStart, contractShard!.slotEnd);
          const mySeq = ++seq;
          const op: HistoryOp = {
            id: nextId++,
            worker: 1000 + workerId,
            key,
            kind: "add",
            delta: 1,
            status: "ambiguous",
            invokedAt: now(),
            contract: true,
          };
          history.push(op);
          try {
            // Earlier seqs are all answered or given up: the worker acknowledges them.
            const header = { shardId, epoch: "0", clientId: session, seq: String(mySeq), firstUnackedSeq: String(mySeq) };
            const reply = await raw.call("add", { header, key: Buffer.from(key), delta: "1" }, CONTRACT_CALL_TIMEOUT_MS);
            if (frozen) return;
            op.value = String(reply.value);
            op.status = "ok";
            op.completedAt = now();
          } catch (error) {
            if (frozen) return;
            const code = error instanceof RawCallError ? error.code : "NO_ANSWER";
            op.errorCode = code;
            op.error = `${code}: ${(error as Error).message}`.slice(0, 300);
            if (CONTRACT_NOT_APPLIED.has(code)) {
              op.status = "fail";
              op.completedAt = now();
            }
            if (code === "SESSION_EXPIRED") session = undefined;
            if (code === "NOT_LEADER" || !CONTRACT_NOT_APPLIED.has(code))
              switchTo(error instanceof RawCallError ? error.info?.leaderAddress : undefined);
          }
        }
      } finally {
        raw.close();
      }
    };

    const workers = [
      ...Array.from({ length: concurrency }, (_, i) => worker(i, workloadRng.fork())),
      ...Array.from({ length: options.contractWorkers ?? 0 }, (_, i) => contractWorker(i)),
    ];
    const workloadDone = Promise.all(workers);

    // Nemesis schedule: quiet, fault, quiet, fault, ... until the workload time is up.
    const pick = () => options.nemeses[scheduleRng.nextInt(options.nemeses.length)]!;
    await runNemesisSchedule({ cluster, options, rng: scheduleRng, pick, faults, now, log });

    // Heal, let the workload see the healthy cluster for a moment, then stop it.
    await healEverything(cluster, faults, now(), log);
    await sleep(2000);
    stopping = true;
    await Promise.race([workloadDone, sleep((options.clientDeadlineMs ?? CLIENT_DEADLINE_MS) + WORKER_DRAIN_SLACK_MS)]);
    frozen = true;
    // A read that never returned observed nothing; an add that never returned stays ambiguous.
    for (const op of history) {
      if (op.status === "ambiguous" && op.kind !== "add") {
        op.status = "fail";
        op.completedAt = now();
      }
    }
    await cluster.waitReady(READY_TIMEOUT_MS);
    log(`[${(now() / 1000).toFixed(1)}s] healed; final reads`);

    const contractKeys = [...new Set(history.filter((op) => op.contract).map((op) => op.key))];
    for (const key of [...keys, ...contractKeys]) {
      const op: HistoryOp = { id: nextId++, worker: -1, key, kind: "final-read", status: "fail", invokedAt: now() };
      const deadline = performance.now() + FINAL_READ_TIMEOUT_MS;
      while (performance.now() < deadline) {
        op.invokedAt = now();
        try {
          const result = await clients[0]!.get(key);
          op.value = result.value.toString();
          op.status = "ok";
          op.completedAt = now();
          break;
        } catch (error) {
          op.error = (error as Error).message;
          await sleep(200);
        }
      }
      if (op.status !== "ok") op.completedAt = now();
      history.push(op);
    }
    snapshotsInstalled = await cluster.snapshotsInstalled();
    log(`snapshots installed (since each node's last start): ${snapshotsInstalled}`);
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await cluster.destroy().catch((error: Error) => log(`teardown: ${error.message}`));
  }

  const result = checkHistory(history, faults, options.checkStatesMax);
  // Fail-stop is part of the contract: a node that kept running on a full disk is a finding.
  // So is staying up: a node that crashed is a finding even when the history checks out.
  for (const fault of faults.filter((f) => f.detail?.startsWith(DISK_FAULT_IGNORED) || f.detail?.startsWith(CRASHED))) {
    result.problems.push(fault.detail!);
    result.valid = false;
  }
  const run: ChaosRun = { seed: options.seed, result, history, faults, snapshotsInstalled };
  if (options.outRoot !== null) {
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const dir = resolve(options.outRoot ?? resolve(import.meta.dirname, "..", ".."), ".chaos", `${stamp}-seed${options.seed}`);
    mkdirSync(dir, { recursive: true });
    const json = JSON.stringify({ options: { ...options, backend, log: undefined }, seed: options.seed, result, faults, history }, null, 1);
    writeFileSync(join(dir, "result.json"), json);
    writeFileSync(join(dir, "report.html"), renderHtmlReport(run, options));
    run.dir = dir;
  }
  return run;
}

async function startCluster(backend: BackendName, options: ClusterOptions): Promise<ClusterBackend> {
  if (backend === "process") return ProcessCluster.start(options, READY_TIMEOUT_MS);
  // Loaded only when asked for: process runs (npm test) never load testcontainers or need Docker.
  const { ContainerCluster } = await import("./container-cluster.js");
  return ContainerCluster.start(options, READY_TIMEOUT_MS);
}

/**
 * A node whose tallyd exited without a nemesis asking for it (the disk nemesis waits for its own)
 * has crashed: recorded as a fault window whose detail starts with CRASHED (the run is then
 * invalid), with how it ended and its last output, and restarted like a killed node.
 */
export async function noticeCrashes(
  cluster: ClusterBackend,
  faults: FaultWindow[],
  atMs: number,
  log: (line: string) => void,
): Promise<void> {
  for (const id of (await cluster.syncState?.()) ?? []) {
    const detail = `${CRASHED}: node ${id} exited by itself (${await cluster.exitInfo(id)}); last output: ${(await cluster.logs(id)).slice(-1500)}`;
    log(detail);
    faults.push({ name: "crash", startMs: atMs, endMs: atMs, detail });
    if (!cluster.isRunning(id)) await cluster.startNode(id);
  }
}

export const CRASHED = "CRASHED";

/** Thaws first: a frozen container cannot have its network rules removed. */
export async function healEverything(
  cluster: ClusterBackend,
  faults: FaultWindow[],
  atMs: number,
  log: (line: string) => void,
): Promise<void> {
  await noticeCrashes(cluster, faults, atMs, log);
  for (const id of cluster.nodeIds) if (cluster.isPaused(id)) await cluster.resume(id);
  await cluster.healNetwork();
  // A nemesis that failed half-way may have left a full disk or a jumped wall clock behind.
  for (const id of cluster.nodeIds) {
    await cluster.drainDisk(id);
    await cluster.jumpClock(id, 0, 0);
  }
  for (const id of cluster.nodeIds) if (!cluster.isRunning(id)) await cluster.startNode(id);
}

function pick<T>(rng: Prng, items: readonly T[]): T {
  if (items.length === 0) throw new Error("pick from an empty list");
  return items[rng.nextInt(items.length)]!;
}

function shuffle<T>(rng: Prng, items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

async function someLeader(cluster: ClusterBackend, rng: Prng): Promise<number> {
  const shard = 1 + rng.nextInt(cluster.config.cluster.shards);
  return (await cluster.leaderOf(shard)) ?? pick(rng, cluster.nodeIds);
}

/**
 * Quiet, fault, quiet, fault, ... until options.timeS is up (then waits for it): `pick` names each
 * nemesis, each fault window is recorded in `faults` and logged, crashes are noticed before each.
 */
export async function runNemesisSchedule(schedule: {
  cluster: ClusterBackend;
  options: { timeS: number; faultMs?: number; quietMs?: number; nemeses: readonly NemesisName[] };
  rng: Prng;
  pick: () => NemesisName;
  faults: FaultWindow[];
  now: () => number;
  log: (line: string) => void;
}): Promise<void> {
  const { cluster, options, rng, pick, faults, now, log } = schedule;
  const endAtMs = options.timeS * 1000;
  const faultMs = options.faultMs ?? 4000;
  const quietMs = options.quietMs ?? 3000;
  while (options.nemeses.length > 0 && now() + quietMs + faultMs < endAtMs) {
    await sleep(quietMs);
    await noticeCrashes(cluster, faults, now(), log);
    const name = pick();
    const window: FaultWindow = { name, startMs: now(), endMs: 0 };
    log(`[${(window.startMs / 1000).toFixed(1)}s] nemesis ${name} start`);
    try {
      window.detail = await runNemesis(cluster, name, faultMs, rng);
    } catch (error) {
      window.detail = `nemesis error: ${(error as Error).message}`;
    }
    window.endMs = now();
    faults.push(window);
    log(`[${(window.endMs / 1000).toFixed(1)}s] nemesis ${name} end: ${window.detail ?? ""}`);
  }
  await sleep(endAtMs - now());
}

/** Injects one fault, holds it for about `faultMs`, undoes it. Returns a description. */
async function runNemesis(cluster: ClusterBackend, name: NemesisName, faultMs: number, rng: Prng): Promise<string> {
  const ids = cluster.nodeIds;
  const minority = Math.max(1, Math.floor((ids.length - 1) / 2));
  switch (name) {
    case "kill":
    case "kill-minority":
    case "kill-leader":
    case "kill-all": {
      const victims =
        name === "kill"
          ? [pick(rng, ids)]
          : name === "kill-minority"
            ? shuffle(rng, ids).slice(0, minority)
            : name === "kill-leader"
              ? [await someLeader(cluster, rng)]
              : ids;
      for (const id of victims) await cluster.kill(id);
      await sleep(faultMs);
      for (const id of victims) if (!cluster.isRunning(id)) await cluster.startNode(id);
      return `kill -9 ${victims.join(",")} then restart`;
    }
    case "pause":
    case "pause-leader": {
      // pause-leader: the leader of the contract workers' shard, so adds are in flight when it stops.
      const victim =
        name === "pause-leader"
          ? ((await cluster.leaderOf(CONTRACT_SHARD)) ?? pick(rng, ids))
          : rng.chance(0.5)
            ? await someLeader(cluster, rng)
            : pick(rng, ids);
      // Longer than an election timeout, so the cluster must move on without it.
      const holdMs = Math.max(faultMs, 3 * cluster.electionTimeoutMs);
      await cluster.pause(victim);
      await sleep(holdMs);
      await cluster.resume(victim);
      return `${cluster.name === "process" ? "SIGSTOP" : "docker pause"} ${victim} for ${holdMs} ms`;
    }
    case "partition-leader": {
      const leader = await someLeader(cluster, rng);
      await cluster.cutLinks(
        linksBetween(
          [leader],
          ids.filter((id) => id !== leader),
        ),
      );
      await sleep(faultMs);
      await cluster.healNetwork();
      return `isolate ${leader}`;
    }
    case "partition-halves": {
      const order = shuffle(rng, ids);
      const a = order.slice(0, Math.floor(ids.length / 2));
      const b = order.slice(a.length);
      await cluster.cutLinks(linksBetween(a, b));
      await sleep(faultMs);
      await cluster.healNetwork();
      return `partition [${a.join(",")}] | [${b.join(",")}]`;
    }
    case "partition-one-way": {
      const leader = await someLeader(cluster, rng);
      const outbound = rng.chance(0.5);
      const others = ids.filter((id) => id !== leader);
      await cluster.cutLinks(others.map((other) => (outbound ? ([leader, other] as const) : ([other, leader] as const))));
      await sleep(faultMs);
      await cluster.healNetwork();
      return outbound ? `${leader} cannot send to anyone` : `nobody can send to ${leader}`;
    }
    case "clock-skew": {
      const victim = pick(rng, ids);
      const offsetMs = (rng.chance(0.5) ? -1 : 1) * (500 + rng.nextInt(2500));
      await cluster.kill(victim);
      await cluster.startNode(victim, offsetMs);
      await sleep(faultMs);
      return `restart ${victim} with clock offset ${offsetMs} ms`;
    }
    case "clock-jump": {
      // Live, no restart: the wall clock jumps either way (stamped entry times, session expiry,
      // TTLs), sometimes past the session timeout; the monotonic clock jumps forward by a few
      // election timeouts half the time (a VM resuming: a follower believes the leader silent and
      // campaigns while the leader's lease still holds). The wall clock goes back after the window.
      const victim = rng.chance(0.5) ? await someLeader(cluster, rng) : pick(rng, ids);
      const wallJumpMs = rng.chance(0.2) ? (11 + rng.nextInt(10)) * 60_000 : (rng.chance(0.5) ? -1 : 1) * (1000 + rng.nextInt(29_000));
      const monotonicForwardMs = rng.chance(0.5) ? (1 + rng.nextInt(3)) * cluster.electionTimeoutMs : 0;
      await cluster.jumpClock(victim, wallJumpMs, monotonicForwardMs);
      await sleep(faultMs);
      await cluster.jumpClock(victim, 0, 0);
      return `node ${victim}: wall clock ${wallJumpMs > 0 ? "+" : ""}${wallJumpMs} ms then back, monotonic clock +${monotonicForwardMs} ms`;
    }
    case "disk": {
      // The node's data volume fills up (a real ENOSPC): its next write fails and it must stop
      // itself rather than go on acknowledging what it cannot persist; freed and restarted, it
      // must open the same data intact (the final reads and the checker say whether it did).
      const victim = rng.chance(0.5) ? await someLeader(cluster, rng) : pick(rng, ids);
      const startedAt = performance.now();
      await cluster.fillDisk(victim);
      const deadline = startedAt + Math.max(faultMs, DISK_STOP_DEADLINE_MS);
      while (performance.now() < deadline && (await stillRunning(cluster, victim))) await sleep(50);
      const stopped = !(await stillRunning(cluster, victim));
      const afterMs = Math.round(performance.now() - startedAt);
      if (!stopped) await cluster.kill(victim);
      await cluster.drainDisk(victim);
      if (!cluster.isRunning(victim)) await cluster.startNode(victim);
      return stopped
        ? `node ${victim}'s disk full: it stopped itself after ${afterMs} ms; freed and restarted`
        : `${DISK_FAULT_IGNORED}: node ${victim} still ran ${afterMs} ms after its disk filled (killed, freed, restarted)`;
    }
    case "transfer-storm": {
      const deadline = performance.now() + faultMs;
      let transfers = 0;
      while (performance.now() < deadline) {
        const shard = 1 + rng.nextInt(cluster.config.cluster.shards);
        if (await cluster.transferLeader(shard, pick(rng, ids))) transfers++;
        await sleep(250);
      }
      return `${transfers} leadership transfers`;
    }
    case "placement":
      return runPlacementNemesis(cluster, faultMs, rng);
    case "latency": {
      const latencyMs = 20 + rng.nextInt(80);
      await shapeAll(cluster, { latencyMs, jitterMs: latencyMs });
      await sleep(faultMs);
      await cluster.healNetwork();
      return `latency ${latencyMs} ms + jitter ${latencyMs} ms on every link`;
    }
    case "slow": {
      const bytesPerSecond = 50_000 + rng.nextInt(150_000);
      await shapeAll(cluster, { bytesPerSecond, latencyMs: 5 });
      await sleep(faultMs);
      await cluster.healNetwork();
      return `bandwidth ${bytesPerSecond} B/s per connection`;
    }
  }
}

/** A node whose disk filled must have stopped by then (it writes many times a second under load). */
const DISK_STOP_DEADLINE_MS = 10_000;
const DISK_FAULT_IGNORED = "DISK FAULT IGNORED";

async function stillRunning(cluster: ClusterBackend, id: number): Promise<boolean> {
  await cluster.syncState?.();
  return cluster.isRunning(id);
}

async function shapeAll(cluster: ClusterBackend, shape: LinkShape): Promise<void> {
  if (cluster.shapeAll === undefined) throw new Error(`the ${cluster.name} backend cannot shape links`);
  await cluster.shapeAll(shape);
}

/** A comma list of nemeses or groups (partition), or all (every one the backend supports), or none. */
export function parseNemeses(text: string, backend: BackendName = "process"): NemesisName[] {
  const supported = nemesesOf(backend);
  if (text === "all") return supported;
  if (text === "none" || text === "") return [];
  const names = text.split(",").flatMap((name): readonly string[] => NEMESIS_GROUPS[name] ?? [name]);
  return [...new Set(names)].map((name) => {
    if (!(supported as readonly string[]).includes(name)) {
      throw new Error(
        `nemesis ${name} is unknown or not supported by the ${backend} backend; known: ${supported.join(",")}, ${Object.keys(NEMESIS_GROUPS).join(",")}, all, none`,
      );
    }
    return name as NemesisName;
  });
}
