/**
 * The deterministic simulator (TigerBeetle's VOPR, FoundationDB's simulation): N raft nodes in one
 * process, one virtual clock, one event queue, one seed. Every source of nondeterminism (network
 * delay, loss, duplication and reordering, fsync latency, tick skew, crashes, partitions,
 * membership changes, leader transfers, the client workload, Raft's election jitter) is drawn
 * from streams forked off createPrng(seed), so `SEED=n npx tsx test/sim/run.ts` replays a run
 * exactly, trace line for trace line.
 *
 * Each node follows the Ready contract (src/raft/types.ts) with a real gap between write and
 * fsync: entries and hard state go to MemoryStorage at once, become durable only when the seeded
 * fsync completes, and only then are the Ready's messages sent and its committed entries applied.
 * A crash drops everything unsynced (or, sometimes, makes it durable without its messages ever
 * leaving); the node restarts from its durable image, restores the state machine from its last
 * snapshot and replays from there.
 *
 * The safety checkers (checkers.ts) run after every event; exactly-once and linearizability
 * (test/support/linearizability.ts) run on the recorded history at the end of the run, after a
 * final phase that heals everything and requires the cluster to finish every operation.
 */
import { assert } from "../../src/util/assert.js";
import { InvalidArgumentError } from "../../src/util/errors.js";
import { createPrng, type Prng } from "../../src/util/prng.js";
import { MemoryStorage } from "../../src/raft/memory-storage.js";
import { decodeConfChange, RawNode } from "../../src/raft/raw-node.js";
import {
  type ConfChange,
  type ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type NodeId,
  ProposalDroppedError,
  type RaftConfig,
  type RaftTestKnobs,
  type Ready,
  type ReadState,
  Role,
  type Term,
} from "../../src/raft/types.js";
import { checkLinearizable, counterModel, type CounterInput, type CounterOutput, type Operation } from "../support/linearizability.js";
import { SafetyChecker, SimViolation, type ViolationKind } from "./checkers.js";
import { CounterStateMachine, decodeCommand, encodeCommand, opIdOf } from "./counter-state-machine.js";
import { SimDisk } from "./disk.js";
import { EventQueue } from "./event-queue.js";
import { mixNumber } from "./hash.js";
import { SimNetwork } from "./network.js";
import { type FaultKind, type FaultProfile, type ProfileName, profiles } from "./profiles.js";
import { Trace } from "./trace.js";
import {
  type ClientHost,
  type ClientRequest,
  type ClientResponse,
  type HistoryRecord,
  SimClient,
  type WorkloadOptions,
} from "./workload.js";

export interface RaftTuning {
  electionTicks: number;
  heartbeatTicks: number;
  leaseDriftTicks: number;
  preVote: boolean;
  maxInflightMessages: number;
  maxInflightBytes: number;
  maxCommittedSizePerReady: number;
  maxUncommittedEntriesBytes: number;
}

export interface SimOptions {
  seed: number;
  nodeCount: number;
  /** Events processed in the fault phase (SIM_STEPS). */
  steps: number;
  membership: boolean;
  profile: FaultProfile;
  knobs?: RaftTestKnobs;
  raft: RaftTuning;
  workload: WorkloadOptions;
  tickMs: number;
  /** Each node's tick interval is tickMs * (1 + skew), skew uniform in [-tickSkewMax, tickSkewMax]. */
  tickSkewMax: number;
  clientDelayMs: [number, number];
  clientDropRate: number;
  snapshotEveryEntries: number;
  /** After a snapshot, keep up to this many entries before it (so some laggards catch up by log). */
  compactKeepMax: number;
  /** Virtual time the healed cluster gets to finish every outstanding operation. */
  quiesceMsMax: number;
  checkLeaseExclusivity: boolean;
  checkLinearizability: boolean;
  /** Test-only: break the simulated application on purpose, to show the end-of-run checkers bite. */
  sabotage?: Sabotage;
  traceTailLines: number;
  traceSink?: (line: string) => void;
}

/**
 * follower-reads: every node answers lease reads from its local state without holding a lease.
 * no-dedupe: the state machine applies a retried op id again (no sessions).
 * lazy-ticks: after a pause the driver ticks once instead of once per tick interval that passed
 *   (a timer-driven loop, not a monotonic-clock one): leases outlive the time they were granted for.
 */
export type Sabotage = "follower-reads" | "no-dedupe" | "lazy-ticks";

export interface SimStats {
  events: number;
  virtualMs: number;
  traceLines: number;
  leaders: number;
  highestTerm: Term;
  appliedIndex: number;
  crashes: number;
  partitions: number;
  snapshotsInstalled: number;
  snapshotsTaken: number;
  confChangesApplied: number;
  transfers: number;
  addsAcknowledged: number;
  addsAmbiguous: number;
  addsFailed: number;
  readsServed: number;
  leaseReadsServed: number;
  leaderCommitsOfOlderTerm: number;
  checks: number;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  violation?: { kind: ViolationKind; message: string; atMs: number; event: number };
  traceHash: string;
  traceTail: string[];
  stats: SimStats;
  options: SimOptions;
  history: HistoryRecord[];
}

/** What can be fixed from outside instead of drawn from the seed (run.ts reads these from env). */
export interface SimOverrides {
  steps?: number;
  nodeCount?: number;
  membership?: boolean;
  profileName?: ProfileName;
  knobs?: RaftTestKnobs;
  checkLeaseExclusivity?: boolean;
  checkLinearizability?: boolean;
  sabotage?: Sabotage;
  traceTailLines?: number;
  traceSink?: (line: string) => void;
}

export const DEFAULT_STEPS = 12_000;

/**
 * The whole configuration of one run, drawn from its seed (plus overrides). Every draw happens
 * whether or not it is overridden, so an override changes only what it names: a failure found
 * with overrides replays with the same overrides, and the report spells them all out.
 */
export function configForSeed(seed: number, overrides: SimOverrides = {}): SimOptions {
  assert(Number.isSafeInteger(seed) && seed >= 0, "seed must be a non-negative integer");
  const choose = createPrng(mixNumber(0x51_4e_55_1a, seed));
  const pick = <T>(values: readonly T[]): T => values[choose.nextInt(values.length)]!;
  const drawn = {
    profileName: pick<ProfileName>(["mixed", "mixed", "mixed", "stormy", "crashy"]),
    nodeCount: choose.chance(0.5) ? 3 : 5,
    membership: choose.chance(0.4),
    preVote: choose.chance(0.85),
    maxInflightBytes: pick([0, 0, 64 * 1024, 8 * 1024]),
    maxInflightMessages: pick([1, 4, 32, 256]),
    maxCommittedSizePerReady: pick([64, 1024, 1 << 20]),
    maxUncommittedEntriesBytes: pick([2 * 1024, 64 * 1024]),
    tickSkewMax: pick([0.001, 0.01, 0.03]),
    snapshotEveryEntries: pick([5, 20, 60, 250]),
    compactKeepMax: pick([0, 5, 40]),
    clients: 3 + choose.nextInt(4),
    keyCount: 1 + choose.nextInt(3),
    thinkMsMax: pick([2, 10, 30]),
    attemptTimeoutMs: pick([80, 150, 300]),
    operationDeadlineMs: pick([300, 1_000, 3_000]),
  };
  const profileName = overrides.profileName ?? drawn.profileName;
  const profile: FaultProfile = profiles[profileName];
  const workload: WorkloadOptions = {
    clients: drawn.clients,
    keys: ["a", "b", "c"].slice(0, drawn.keyCount),
    readIndexRate: 0.2,
    leaseReadRate: 0.25,
    thinkMsMax: drawn.thinkMsMax,
    attemptTimeoutMs: drawn.attemptTimeoutMs,
    operationDeadlineMs: drawn.operationDeadlineMs,
    retryBackoffMsMax: 20,
    randomTargetRate: 0.3,
  };
  if (profileName === "leases") {
    // Lease reads spread over all nodes, and clients that notice a dead leader fast: a stale
    // lease read is visible only if a write acknowledged by the new leader precedes it.
    workload.readIndexRate = 0.1;
    workload.leaseReadRate = 0.5;
    workload.thinkMsMax = 5;
    workload.attemptTimeoutMs = 25;
    workload.randomTargetRate = 0.6;
  }
  if (profileName === "pauses") {
    // Mostly ReadIndex reads, many of them at followers, which forward them to the leader they
    // believe in: a node that was paused, or that a paused node last heard from.
    workload.readIndexRate = 0.5;
    workload.leaseReadRate = 0.1;
    workload.randomTargetRate = 0.6;
  }
  return {
    seed,
    nodeCount: overrides.nodeCount ?? drawn.nodeCount,
    steps: overrides.steps ?? DEFAULT_STEPS,
    membership: overrides.membership ?? drawn.membership,
    profile,
    knobs: overrides.knobs,
    raft: {
      electionTicks: 10,
      heartbeatTicks: 2,
      leaseDriftTicks: 2,
      // The lease trap needs PreVote's quiet followers; elsewhere both modes are exercised.
      preVote: profileName === "leases" || drawn.preVote,
      maxInflightMessages: drawn.maxInflightMessages,
      maxInflightBytes: drawn.maxInflightBytes === 0 ? 0 : Math.max(drawn.maxInflightBytes, profile.maxSizePerMsg),
      maxCommittedSizePerReady: drawn.maxCommittedSizePerReady,
      maxUncommittedEntriesBytes: drawn.maxUncommittedEntriesBytes,
    },
    workload,
    tickMs: 10,
    tickSkewMax: drawn.tickSkewMax,
    clientDelayMs: [0.2, 2],
    clientDropRate: 0.005,
    snapshotEveryEntries: drawn.snapshotEveryEntries,
    compactKeepMax: drawn.compactKeepMax,
    quiesceMsMax: 30_000,
    checkLeaseExclusivity: overrides.checkLeaseExclusivity ?? true,
    checkLinearizability: overrides.checkLinearizability ?? true,
    sabotage: overrides.sabotage,
    traceTailLines: overrides.traceTailLines ?? 60,
    traceSink: overrides.traceSink,
  };
}

/** The environment that makes run.ts rebuild exactly these options for this seed. */
export function replayCommand(options: SimOptions): string {
  const env = [
    `SEED=${options.seed}`,
    `SIM_STEPS=${options.steps}`,
    `SIM_PROFILE=${options.profile.name}`,
    `SIM_NODES=${options.nodeCount}`,
    `SIM_MEMBERSHIP=${options.membership ? 1 : 0}`,
  ];
  for (const [knob, on] of Object.entries(options.knobs ?? {})) if (on) env.push(`SIM_KNOB=${knob}`);
  if (!options.checkLeaseExclusivity) env.push("SIM_LEASE_CHECK=0");
  if (options.sabotage !== undefined) env.push(`SIM_SABOTAGE=${options.sabotage}`);
  return `${env.join(" ")} npx tsx test/sim/run.ts`;
}

export function runSimulation(options: SimOptions): SimResult {
  const sim = new Simulator(options);
  let violation: SimResult["violation"];
  let traceTail: string[] | undefined;
  try {
    sim.run();
  } catch (error) {
    if (error instanceof SimViolation) {
      violation = { kind: error.kind, message: error.message, atMs: sim.now, event: sim.events };
      if (error.focusMs !== undefined) {
        // Heartbeats and reads are the bulk of the trace and rarely the story.
        const [fromMs, toMs] = error.focusMs;
        const lines = sim.trace.window(fromMs, toMs, 2 * options.traceTailLines, (line) => !/Heartbeat|ReadIndex/.test(line));
        traceTail = [`(trace from ${fromMs.toFixed(3)} to ${toMs.toFixed(3)} ms, heartbeats and ReadIndex traffic left out)`, ...lines];
      }
    } else {
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      violation = { kind: "exception", message: text, atMs: sim.now, event: sim.events };
    }
    sim.record(`VIOLATION ${violation.message.split("\n")[0]}`);
  }
  return {
    seed: options.seed,
    ok: violation === undefined,
    violation,
    traceHash: sim.trace.hash(),
    traceTail: traceTail ?? sim.trace.tail(),
    stats: sim.stats(),
    options,
    history: sim.history,
  };
}

/** A failure report: the seed, how to replay it, the violation and the last trace events. */
export function formatFailure(result: SimResult): string {
  const o = result.options;
  const lines = [
    `SIM FAILURE seed=${result.seed} (${o.nodeCount} nodes, profile ${o.profile.name}, membership ${o.membership}, ` +
      `steps ${o.steps}${o.knobs ? `, knobs ${JSON.stringify(o.knobs)}` : ""})`,
    `replay: ${replayCommand(o)}`,
    `at ${result.violation?.atMs.toFixed(3)} ms, event ${result.violation?.event}`,
    result.violation?.message ?? "",
    `trace (${result.traceTail.length} lines; SIM_TRACE=1 prints all):`,
    ...result.traceTail.map((line) => `  ${line}`),
  ];
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------

/** Node ids are small so the network's link table stays small. */
const EXTRA_NODE_IDS = 8;
const WRITE_WAITERS_MAX = 256;
/** With membership on, an operator changes the configuration this often (next to the faults). */
const MEMBERSHIP_INTERVAL_MS: [number, number] = [30, 250];
const PENDING_READS_MAX = 256;
const EVENT_QUEUE_CAPACITY = 2_000_000;
/** An fsync that stalls (a busy disk, a journal commit) takes this much longer. */
const FSYNC_STALL_MS: [number, number] = [20, 300];

interface PendingRead {
  opId: string;
  attempt: number;
  key: string;
  path: "lease" | "read-index";
  index: number;
  createdAtMs: number;
  reply: (response: ClientResponse) => void;
}

interface WriteWaiter {
  attempt: number;
  createdAtMs: number;
  reply: (response: ClientResponse) => void;
}

class SimNode {
  incarnation = 0;
  alive = false;
  decommissioned = false;
  storage!: MemoryStorage;
  raw!: RawNode;
  sm!: CounterStateMachine;
  confState!: ConfState;
  /** The Ready written to MemoryStorage whose fsync has not completed yet. */
  outstanding: Ready | undefined;
  readonly writeWaiters = new Map<string, WriteWaiter[]>();
  writeWaiterCount = 0;
  readonly readsByContext = new Map<string, PendingRead>();
  readsWaitingApply: PendingRead[] = [];
  /** Term whose leader-completeness check waits for this node's next Ready (0: none). */
  completenessTerm: Term = 0;
  role: Role = Role.Follower;
  term: Term = 0;
  leader: NodeId = 0;
  commit = 0;
  firstCommitTerm: Term = 0;
  /** A paused process (GC pause, SIGSTOP) runs nothing until then; its events wait. */
  pausedUntilMs = 0;
  /** Ticks that fell due while paused, delivered in a burst on resume (a monotonic-clock driver). */
  owedTicks = 0;

  constructor(
    readonly id: NodeId,
    readonly disk: SimDisk,
    readonly tickMs: number,
  ) {}
}

class Simulator {
  readonly trace: Trace;
  readonly history: HistoryRecord[] = [];
  now = 0;
  events = 0;
  private readonly queue = new EventQueue(EVENT_QUEUE_CAPACITY);
  private readonly network: SimNetwork;
  private readonly checker = new SafetyChecker();
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly clients: SimClient[] = [];
  private readonly dirty = new Set<SimNode>();
  private phase: "faults" | "quiesce" | "done" = "faults";
  private nextNodeId: NodeId;
  private readonly maxNodeId: NodeId;
  private readCounter = 0;
  private writesPausedUntilMs = 0;
  private readonly counters = {
    crashes: 0,
    partitions: 0,
    snapshotsInstalled: 0,
    snapshotsTaken: 0,
    confChangesApplied: 0,
    transfers: 0,
    readsServed: 0,
    leaseReadsServed: 0,
    leaderCommitsOfOlderTerm: 0,
  };

  // Independent streams, so that e.g. a workload change does not reshuffle network weather.
  private readonly networkPrng: Prng;
  private readonly nemesisPrng: Prng;
  private readonly nodePrng: Prng;
  private readonly clientLinkPrng: Prng;
  private readonly raftPrngRoot: Prng;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  constructor(readonly options: SimOptions) {
    assert(options.nodeCount >= 1 && options.nodeCount <= 7, "nodeCount must be in [1, 7]");
    assert(options.steps > 0, "steps must be positive");
    const root = createPrng(options.seed);
    this.networkPrng = root.fork();
    this.nemesisPrng = root.fork();
    this.nodePrng = root.fork();
    this.clientLinkPrng = root.fork();
    this.raftPrngRoot = root.fork();
    const workloadPrng = root.fork();
    this.trace = new Trace(options.traceTailLines, options.traceSink);
    this.network = new SimNetwork(this.networkPrng, options.profile.network);
    this.nextNodeId = options.nodeCount + 1;
    this.maxNodeId = options.nodeCount + EXTRA_NODE_IDS;

    const voters: NodeId[] = [];
    for (let id = 1; id <= options.nodeCount; id++) voters.push(id);
    for (const id of voters) {
      const seedStorage = new MemoryStorage();
      RawNode.bootstrap(seedStorage, voters);
      this.createNode(id, SimDisk.fromStorage(seedStorage));
    }
    const host = this.clientHost();
    for (let i = 1; i <= options.workload.clients; i++) {
      this.clients.push(new SimClient(i, host, workloadPrng.fork(), options.workload, this.history, () => ++this.readCounter));
    }
  }

  record(text: string): void {
    this.trace.record(this.now, text);
  }

  stats(): SimStats {
    let addsAcknowledged = 0;
    let addsAmbiguous = 0;
    let addsFailed = 0;
    for (const r of this.history) {
      if (r.kind !== "add") continue;
      if (r.outcome === "ok") addsAcknowledged++;
      else if (r.outcome === "ambiguous") addsAmbiguous++;
      else if (r.outcome === "failed") addsFailed++;
    }
    return {
      events: this.events,
      virtualMs: Math.round(this.now),
      traceLines: this.trace.lines,
      leaders: this.checker.leaderCount(),
      highestTerm: this.checker.highestTerm(),
      appliedIndex: this.checker.appliedLength(),
      addsAcknowledged,
      addsAmbiguous,
      addsFailed,
      checks: this.checker.checks,
      ...this.counters,
    };
  }

  // --- The run ---------------------------------------------------------------------------------

  run(): void {
    this.record(
      `start seed=${this.options.seed} nodes=${this.options.nodeCount} profile=${this.options.profile.name} ` +
        `membership=${this.options.membership} preVote=${this.options.raft.preVote}`,
    );
    for (const node of this.nodes.values()) this.startNode(node);
    for (const client of this.clients) client.start();
    this.scheduleNemesis();
    if (this.options.membership) this.scheduleMembership();

    this.runEvents(this.options.steps, () => false);

    // Final phase: no more faults, everything healed and restarted; the cluster must finish every
    // outstanding operation (a liveness check, and it keeps ambiguity out of the history).
    this.phase = "quiesce";
    this.network.heal();
    this.record("quiesce: faults stop, network healed, every node restarted");
    for (const node of this.nodes.values()) if (!node.alive && !node.decommissioned) this.restart(node);
    this.scheduleLeaveJointIfNeeded();
    const deadlineMs = this.now + this.options.quiesceMsMax;
    // Bounded in events too: a core that never stops producing Readies would otherwise spin
    // forever at one instant of virtual time.
    const eventsMax = Math.max(500_000, 20 * this.options.steps);
    const eventsBefore = this.events;
    this.runEvents(eventsMax, () => this.clients.every((c) => c.idle) || this.now > deadlineMs);
    if (this.events - eventsBefore >= eventsMax) {
      throw new SimViolation("liveness", `final phase used ${eventsMax} events by ${this.now.toFixed(3)} ms without settling`);
    }
    if (!this.clients.every((c) => c.idle)) {
      const pending = this.history.filter((r) => r.outcome === "pending").map((r) => r.opId);
      throw new SimViolation(
        "liveness",
        `healed cluster did not finish ${pending.length} operations within ${this.options.quiesceMsMax} ms: ${pending.slice(0, 10).join(", ")}`,
      );
    }
    this.phase = "done";
    this.checkExactlyOnceAndLinearizability();
  }

  private runEvents(maxEvents: number, stop: () => boolean): void {
    for (let i = 0; i < maxEvents; i++) {
      if (stop()) return;
      const event = this.queue.pop();
      if (event === undefined) return;
      assert(event.timeMs >= this.now, "virtual time must not go backwards");
      this.now = event.timeMs;
      this.events++;
      event.run();
      this.afterEvent();
    }
  }

  private schedule(delayMs: number, run: () => void): void {
    assert(delayMs >= 0, "cannot schedule in the past");
    this.queue.push(this.now + delayMs, run);
  }

  private uniform(prng: Prng, [low, high]: [number, number]): number {
    return low + prng.nextFloat() * (high - low);
  }

  private touch(node: SimNode): void {
    this.dirty.add(node);
  }

  /** Checkers after every event, on every node the event touched; then drain their Ready. */
  private afterEvent(): void {
    if (this.dirty.size === 0) return;
    for (const node of this.dirty) {
      // A paused process runs nothing; its resume event touches it again.
      if (!node.alive || this.now < node.pausedUntilMs) continue;
      this.pump(node);
      this.checkNode(node);
    }
    this.dirty.clear();
  }

  private checkNode(node: SimNode): void {
    const status = node.raw.status();
    if (status.role !== node.role || status.term !== node.term || status.leader !== node.leader) {
      node.role = status.role;
      node.term = status.term;
      node.leader = status.leader;
      this.record(`n${node.id} ${Role[status.role]} term ${status.term} leader ${status.leader}`);
    }
    const profile = this.options.profile;
    if (status.role === Role.Leader && this.checker.observeLeader(node.id, status.term)) {
      node.completenessTerm = status.term;
      if (this.phase === "faults" && this.nemesisPrng.chance(profile.crashNewLeaderRate)) {
        const incarnation = node.incarnation;
        this.schedule(this.uniform(this.nemesisPrng, profile.crashNewLeaderMs), () => {
          if (node.incarnation === incarnation && this.phase === "faults") this.crash(node, "new leader");
        });
      } else if (this.phase === "faults" && this.nemesisPrng.chance(profile.isolateNewLeaderRate)) {
        this.isolate(node, "new leader");
      }
    }
    if (status.commit > node.commit) {
      node.commit = status.commit;
      if (
        status.role === Role.Leader &&
        status.commit >= node.storage.firstIndex() &&
        status.commit <= node.storage.lastIndex() &&
        node.storage.term(status.commit) < status.term
      ) {
        // Only possible with the Figure 8 bug planted (paper 5.4.2); counted to show reachability.
        this.counters.leaderCommitsOfOlderTerm++;
      }
      if (status.role === Role.Leader && node.firstCommitTerm !== status.term) {
        // A new leader's first commit is where the current-term rule (paper 5.4.2) matters.
        node.firstCommitTerm = status.term;
        if (this.phase === "faults" && this.nemesisPrng.chance(profile.isolateAfterCommitRate)) {
          this.isolate(node, `new leader just committed ${status.commit}`);
        }
      }
    }
    if (this.options.checkLeaseExclusivity && status.leaseValid) this.checker.observeLease(node.id, status.term);
  }

  // --- Nodes: start, tick, crash, restart --------------------------------------------------------

  private createNode(id: NodeId, disk: SimDisk): SimNode {
    const skew = (this.nodePrng.nextFloat() * 2 - 1) * this.options.tickSkewMax;
    const node = new SimNode(id, disk, this.options.tickMs * (1 + skew));
    this.nodes.set(id, node);
    return node;
  }

  private raftConfig(node: SimNode, applied: number): RaftConfig {
    const r = this.options.raft;
    return {
      id: node.id,
      electionTicks: r.electionTicks,
      heartbeatTicks: r.heartbeatTicks,
      storage: node.storage,
      applied,
      maxSizePerMsg: this.options.profile.maxSizePerMsg,
      maxInflightMessages: r.maxInflightMessages,
      maxInflightBytes: r.maxInflightBytes,
      maxUncommittedEntriesBytes: r.maxUncommittedEntriesBytes,
      maxCommittedSizePerReady: r.maxCommittedSizePerReady,
      preVote: r.preVote,
      checkQuorum: true,
      leaseDriftTicks: r.leaseDriftTicks,
      prng: this.raftPrngRoot.fork(),
      testKnobs: this.options.knobs,
    };
  }

  /** (Re)starts a node from its durable image: the only way a node comes up. */
  private startNode(node: SimNode): void {
    assert(!node.alive && !node.decommissioned, `node ${node.id} cannot start`);
    node.storage = node.disk.load();
    const snapshot = node.disk.durableSnapshot();
    node.sm = snapshot === undefined ? CounterStateMachine.empty(0, 0) : CounterStateMachine.restore(snapshot);
    node.sm.unsafeNoDedupe = this.options.sabotage === "no-dedupe";
    if (snapshot !== undefined) {
      this.checker.observeRestore(node.id, snapshot.metadata.index, snapshot.metadata.term, node.sm.hash);
    }
    node.confState = node.storage.initialState().confState;
    node.raw = new RawNode(this.raftConfig(node, node.sm.appliedIndex));
    node.alive = true;
    node.incarnation++;
    node.outstanding = undefined;
    node.role = Role.Follower;
    node.term = 0;
    node.leader = 0;
    node.commit = 0;
    node.completenessTerm = 0;
    const hs = node.storage.initialState().hardState;
    this.record(
      `n${node.id} up: term ${hs.term} vote ${hs.vote} commit ${hs.commit} applied ${node.sm.appliedIndex} ` +
        `log ${node.storage.firstIndex()}..${node.storage.lastIndex()}`,
    );
    this.scheduleTick(node);
    this.touch(node);
  }

  private scheduleTick(node: SimNode): void {
    const incarnation = node.incarnation;
    this.schedule(node.tickMs, () => {
      if (node.incarnation !== incarnation || !node.alive) return;
      if (this.now < node.pausedUntilMs) node.owedTicks++;
      else {
        node.raw.tick();
        this.touch(node);
      }
      this.scheduleTick(node);
    });
  }

  /**
   * A paused node's event runs when it resumes. Returns true when `run` was deferred. Deferred
   * events keep their order (they are rescheduled in arrival order at the same instant), after
   * the resume event that first delivers the owed ticks.
   */
  private deferIfPaused(node: SimNode, run: () => void): boolean {
    if (this.now >= node.pausedUntilMs) return false;
    this.queue.push(node.pausedUntilMs, run);
    return true;
  }

  private pause(node: SimNode, durationMs: number): void {
    if (!node.alive || this.now < node.pausedUntilMs) return;
    node.pausedUntilMs = this.now + durationMs;
    node.owedTicks = 0;
    const incarnation = node.incarnation;
    this.record(`n${node.id} PAUSE for ${durationMs.toFixed(1)} ms`);
    this.schedule(durationMs, () => {
      if (node.incarnation !== incarnation || !node.alive) return;
      this.record(`n${node.id} resumes, ${node.owedTicks} ticks owed`);
      if (this.options.sabotage === "lazy-ticks") node.owedTicks = Math.min(node.owedTicks, 1);
      for (; node.owedTicks > 0; node.owedTicks--) node.raw.tick();
      this.touch(node);
    });
  }

  private crash(node: SimNode, why: string, restartAfterMs?: number): void {
    if (!node.alive) return;
    node.alive = false;
    node.incarnation++;
    node.pausedUntilMs = 0;
    node.owedTicks = 0;
    let lost = node.outstanding;
    node.outstanding = undefined;
    if (lost !== undefined && this.nemesisPrng.chance(this.options.profile.unsyncedSurvivesRate)) {
      node.disk.persist(lost.snapshot, lost.entries, lost.hardState);
      this.record(`n${node.id} unsynced write survives the crash (${lost.entries.length} entries), its messages are never sent`);
      lost = undefined;
    }
    node.writeWaiters.clear();
    node.writeWaiterCount = 0;
    node.readsByContext.clear();
    node.readsWaitingApply = [];
    this.counters.crashes++;
    this.record(
      `n${node.id} CRASH (${why})${lost ? `: lost unsynced ${lost.entries.length} entries${lost.hardState ? `, hard state term ${lost.hardState.term} vote ${lost.hardState.vote}` : ""}` : ""}`,
    );
    const delayMs = restartAfterMs ?? this.uniform(this.nemesisPrng, this.options.profile.restartDelayMs);
    const incarnation = node.incarnation;
    this.schedule(delayMs, () => {
      if (node.incarnation === incarnation) this.restart(node);
    });
  }

  private restart(node: SimNode): void {
    if (node.alive || node.decommissioned) return;
    this.startNode(node);
  }

  private decommission(id: NodeId): void {
    const node = this.nodes.get(id);
    if (node === undefined || node.decommissioned) return;
    const latest = this.mostAdvancedNode();
    if (latest === undefined || inConfig(latest.confState, id)) return;
    this.record(`n${id} decommissioned (removed from the configuration)`);
    if (node.alive) this.crash(node, "decommissioned", Number.MAX_SAFE_INTEGER / 4);
    node.decommissioned = true;
  }

  private mostAdvancedNode(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const node of this.nodes.values()) {
      if (!node.alive) continue;
      if (best === undefined || node.sm.appliedIndex > best.sm.appliedIndex) best = node;
    }
    return best;
  }

  private members(): NodeId[] {
    const ids: NodeId[] = [];
    for (const node of this.nodes.values()) if (!node.decommissioned) ids.push(node.id);
    return ids;
  }

  private aliveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }

  /** The node an operator would talk to: the live, running leader of the highest term. */
  private currentLeader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const node of this.nodes.values()) {
      if (!node.alive || this.now < node.pausedUntilMs || node.role !== Role.Leader) continue;
      if (best === undefined || node.term > best.term) best = node;
    }
    return best;
  }

  // --- The Ready cycle ---------------------------------------------------------------------------

  private pump(node: SimNode): void {
    if (node.alive && node.outstanding === undefined && node.raw.hasReady()) this.writeReady(node);
  }

  /** Ready steps 1-2, first half: write to MemoryStorage now; durability comes with the fsync. */
  private writeReady(node: SimNode): void {
    const rd = node.raw.ready();
    if (rd.snapshot !== undefined) {
      this.record(`n${node.id} install snapshot ${rd.snapshot.metadata.index} term ${rd.snapshot.metadata.term}`);
      node.storage.applySnapshot(rd.snapshot);
    }
    if (rd.entries.length > 0) {
      this.checker.observeAppend(node.id, rd.entries, node.storage);
      node.storage.append(rd.entries);
    }
    if (rd.hardState !== undefined) node.storage.setHardState(rd.hardState);
    if (node.completenessTerm !== 0) {
      // The whole raft log is in storage now (Ready carried every unstable entry).
      const status = node.raw.status();
      if (status.role === Role.Leader && status.term === node.completenessTerm) {
        this.checker.checkLeaderCompleteness(node.id, status.term, node.storage);
      }
      node.completenessTerm = 0;
    }
    node.outstanding = rd;
    const needsSync = rd.mustSync || rd.snapshot !== undefined || rd.hardState !== undefined;
    let delayMs = needsSync ? this.uniform(this.nodePrng, this.options.profile.fsyncDelayMs) : 0;
    if (needsSync && this.nodePrng.chance(this.options.profile.fsyncStallRate)) {
      delayMs += this.uniform(this.nodePrng, FSYNC_STALL_MS);
    }
    const incarnation = node.incarnation;
    this.schedule(delayMs, () => {
      if (node.incarnation !== incarnation) return;
      if (!this.deferIfPaused(node, () => node.incarnation === incarnation && this.onSynced(node, rd))) this.onSynced(node, rd);
    });
  }

  /** Ready steps 2 (durable) to 6: send, apply, serve reads, advance. */
  private onSynced(node: SimNode, rd: Ready): void {
    assert(node.outstanding === rd, "fsync completion for a Ready that is not outstanding");
    node.disk.persist(rd.snapshot, rd.entries, rd.hardState);
    if (rd.snapshot !== undefined) {
      node.sm = CounterStateMachine.restore(rd.snapshot);
      node.sm.unsafeNoDedupe = this.options.sabotage === "no-dedupe";
      node.confState = rd.snapshot.metadata.confState;
      this.counters.snapshotsInstalled++;
      this.checker.observeRestore(node.id, rd.snapshot.metadata.index, rd.snapshot.metadata.term, node.sm.hash);
    }
    for (const message of rd.messages) this.sendRaftMessage(node, message);
    if (rd.committedEntries.length > 0) {
      const term = node.raw.status().term;
      for (const entry of rd.committedEntries) this.applyEntry(node, entry, term);
    }
    for (const readState of rd.readStates) this.onReadState(node, readState);
    this.serveReadsWaitingApply(node);
    node.raw.advance();
    node.outstanding = undefined;
    this.maybeSnapshot(node);
    this.touch(node);
  }

  private applyEntry(node: SimNode, entry: Entry, term: Term): void {
    const outcome = node.sm.apply(entry);
    this.checker.observeApply(node.id, entry, node.sm.hash, term);
    if (entry.type === EntryType.ConfChange) {
      const change = decodeConfChange(entry.data);
      const before = node.confState;
      node.confState = node.raw.applyConfChange(change);
      node.storage.setConfState(node.confState);
      this.counters.confChangesApplied++;
      this.record(`n${node.id} apply ${entry.index} conf ${describeConfChange(change)} -> ${describeConfState(node.confState)}`);
      for (const id of configIds(before)) {
        if (!inConfig(node.confState, id)) {
          this.schedule(this.uniform(this.nemesisPrng, [100, 600]), () => this.decommission(id));
        }
      }
      return;
    }
    if (outcome.kind !== "applied" && outcome.kind !== "duplicate") return;
    const opId = opIdOf(outcome.command.clientId, outcome.command.seq);
    const waiters = node.writeWaiters.get(opId);
    if (waiters === undefined) return;
    node.writeWaiters.delete(opId);
    node.writeWaiterCount -= waiters.length;
    for (const waiter of waiters) {
      waiter.reply({ kind: "ok", opId, attempt: waiter.attempt, value: outcome.value, node: node.id, path: `log ${entry.index}` });
    }
  }

  private maybeSnapshot(node: SimNode): void {
    const applied = node.sm.appliedIndex;
    if (applied - node.storage.snapshot().metadata.index < this.options.snapshotEveryEntries) return;
    const snapshot = node.storage.createSnapshot(applied, node.confState, node.sm.serialize());
    const keep = this.nodePrng.nextInt(this.options.compactKeepMax + 1);
    const compactIndex = Math.max(applied - keep, node.storage.firstIndex() - 1);
    node.storage.compact(compactIndex);
    node.disk.snapshotAndCompact(snapshot, compactIndex);
    this.counters.snapshotsTaken++;
    this.record(`n${node.id} snapshot at ${applied}, log compacted to ${compactIndex}`);
  }

  // --- Raft messages -------------------------------------------------------------------------------

  private sendRaftMessage(from: SimNode, message: Message): void {
    this.network.checkSender(from.id, message);
    const target = this.nodes.get(message.to);
    if (target === undefined || target.decommissioned) return;
    const delays = this.network.plan(from.id, message.to);
    if (delays.length === 0) {
      this.record(`drop ${describeMessage(message)}`);
      this.onUndelivered(from, message);
    }
    for (const delayMs of delays) {
      const copy: Message = { ...message, entries: message.entries.slice() };
      this.schedule(delayMs, () => this.deliver(copy, from));
    }
    if (
      message.type === MessageType.VoteResp &&
      !message.reject &&
      this.phase === "faults" &&
      this.nemesisPrng.chance(this.options.profile.crashAfterVoteRate)
    ) {
      // The vote is durable and on the wire; the voter dies right away (forgetVote's trap).
      const incarnation = from.incarnation;
      this.schedule(0, () => {
        if (from.incarnation === incarnation) this.crash(from, `after voting for ${message.to} in term ${message.term}`);
      });
    }
  }

  private onUndelivered(from: SimNode, message: Message): void {
    const incarnation = from.incarnation;
    const report = (run: () => void): void => {
      const attempt = (): void => {
        if (!from.alive || from.incarnation !== incarnation || this.deferIfPaused(from, attempt)) return;
        run();
        this.touch(from);
      };
      this.schedule(this.uniform(this.clientLinkPrng, [1, 10]), attempt);
    };
    if (message.type === MessageType.Snap) report(() => from.raw.reportSnapshot(message.to, false));
    else if (this.network.isCut(message.from, message.to) && this.clientLinkPrng.chance(0.2)) {
      report(() => from.raw.reportUnreachable(message.to));
    }
  }

  private deliver(message: Message, from: SimNode): void {
    const node = this.nodes.get(message.to)!;
    if (node.alive && this.deferIfPaused(node, () => this.deliver(message, from))) return;
    if (!node.alive || this.network.isCut(message.from, message.to)) {
      this.record(`lost ${describeMessage(message)} (${node.alive ? "cut" : "down"})`);
      this.onUndelivered(from, message);
      return;
    }
    this.record(`recv ${describeMessage(message)}`);
    node.raw.step(message);
    this.touch(node);
    if (message.type === MessageType.Snap) {
      const incarnation = from.incarnation;
      const attempt = (): void => {
        if (!from.alive || from.incarnation !== incarnation || this.deferIfPaused(from, attempt)) return;
        from.raw.reportSnapshot(message.to, true);
        this.touch(from);
      };
      this.schedule(this.uniform(this.clientLinkPrng, [1, 10]), attempt);
    }
  }

  // --- Clients -------------------------------------------------------------------------------------

  private clientHost(): ClientHost {
    return {
      nowMs: () => this.now,
      step: () => this.events,
      schedule: (delayMs, run) => this.schedule(delayMs, run),
      members: () => this.members(),
      sendRequest: (nodeId, request, onResponse) => {
        if (this.clientLinkPrng.chance(this.options.clientDropRate)) return;
        this.schedule(this.uniform(this.clientLinkPrng, this.options.clientDelayMs), () =>
          this.onClientRequest(nodeId, request, (response) => {
            if (this.clientLinkPrng.chance(this.options.clientDropRate)) return;
            this.schedule(this.uniform(this.clientLinkPrng, this.options.clientDelayMs), () => onResponse(response));
          }),
        );
      },
      acceptingNewOperations: () => this.phase === "faults",
      writesPaused: () => this.now < this.writesPausedUntilMs,
      deadlinesApply: () => this.phase === "faults",
      record: (text) => this.record(text),
    };
  }

  private onClientRequest(nodeId: NodeId, request: ClientRequest, reply: (response: ClientResponse) => void): void {
    const node = this.nodes.get(nodeId);
    if (node === undefined || !node.alive) return;
    if (this.deferIfPaused(node, () => this.onClientRequest(nodeId, request, reply))) return;
    this.touch(node);
    if (request.kind === "add") this.onAddRequest(node, request, reply);
    else this.onReadRequest(node, request, reply);
  }

  private onAddRequest(node: SimNode, request: Extract<ClientRequest, { kind: "add" }>, reply: (r: ClientResponse) => void): void {
    const { command, attempt } = request;
    const opId = opIdOf(command.clientId, command.seq);
    const saved = node.sm.unsafeNoDedupe ? undefined : node.sm.savedResult(command.clientId, command.seq);
    if (saved !== undefined) {
      // Applied here already (thesis 6.3): answer from the session table, change nothing.
      reply({ kind: "ok", opId, attempt, value: saved, node: node.id, path: "session" });
      return;
    }
    this.expireWaiters(node);
    if (node.writeWaiterCount >= WRITE_WAITERS_MAX) {
      reply({ kind: "rejected", opId, attempt, node: node.id, leaderHint: node.leader, reason: "overloaded" });
      return;
    }
    try {
      node.raw.propose(encodeCommand(command));
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      reply({ kind: "rejected", opId, attempt, node: node.id, leaderHint: error.leaderHint, reason: error.reason });
      return;
    }
    let waiters = node.writeWaiters.get(opId);
    if (waiters === undefined) node.writeWaiters.set(opId, (waiters = []));
    waiters.push({ attempt, createdAtMs: this.now, reply });
    node.writeWaiterCount++;
  }

  private onReadRequest(node: SimNode, request: Extract<ClientRequest, { kind: "read" }>, reply: (r: ClientResponse) => void): void {
    const { opId, attempt, key } = request;
    this.expireWaiters(node);
    if (node.readsByContext.size + node.readsWaitingApply.length >= PENDING_READS_MAX) {
      reply({ kind: "rejected", opId, attempt, node: node.id, leaderHint: node.leader, reason: "overloaded" });
      return;
    }
    if (request.lease && (node.raw.leaseValid() || this.options.sabotage === "follower-reads")) {
      // Thesis 6.4.1: no round trip; the commit index already covers every acknowledged write,
      // so the read is served as soon as the state machine has caught up with it.
      const commit = this.options.sabotage === "follower-reads" ? 0 : node.raw.status().commit;
      const read: PendingRead = { opId, attempt, key, path: "lease", index: commit, createdAtMs: this.now, reply };
      if (node.sm.appliedIndex >= commit) this.serveRead(node, read);
      else node.readsWaitingApply.push(read);
      return;
    }
    const context = `${node.id}:${node.incarnation}:${++this.readCounter}`;
    try {
      node.raw.readIndex(this.encoder.encode(context));
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      reply({ kind: "rejected", opId, attempt, node: node.id, leaderHint: error.leaderHint, reason: error.reason });
      return;
    }
    node.readsByContext.set(context, { opId, attempt, key, path: "read-index", index: 0, createdAtMs: this.now, reply });
  }

  private onReadState(node: SimNode, readState: ReadState): void {
    const context = this.decoder.decode(readState.context);
    const read = node.readsByContext.get(context);
    if (read === undefined) return; // expired, or from before a restart
    node.readsByContext.delete(context);
    read.index = readState.index;
    if (node.sm.appliedIndex >= read.index) this.serveRead(node, read);
    else node.readsWaitingApply.push(read);
  }

  private serveReadsWaitingApply(node: SimNode): void {
    if (node.readsWaitingApply.length === 0) return;
    const still: PendingRead[] = [];
    for (const read of node.readsWaitingApply) {
      if (node.sm.appliedIndex >= read.index) this.serveRead(node, read);
      else still.push(read);
    }
    node.readsWaitingApply = still;
  }

  private serveRead(node: SimNode, read: PendingRead): void {
    this.counters.readsServed++;
    if (read.path === "lease") this.counters.leaseReadsServed++;
    read.reply({
      kind: "ok",
      opId: read.opId,
      attempt: read.attempt,
      value: node.sm.read(read.key),
      node: node.id,
      path: `${read.path} @${node.sm.appliedIndex}`,
    });
  }

  /** Waiters whose client has long given up on them: keeps the per-node queues bounded. */
  private expireWaiters(node: SimNode): void {
    const horizonMs = this.now - 4 * this.options.workload.attemptTimeoutMs;
    if (node.writeWaiterCount > WRITE_WAITERS_MAX / 2) {
      for (const [opId, waiters] of node.writeWaiters) {
        const kept = waiters.filter((w) => w.createdAtMs >= horizonMs);
        node.writeWaiterCount -= waiters.length - kept.length;
        if (kept.length === 0) node.writeWaiters.delete(opId);
        else node.writeWaiters.set(opId, kept);
      }
    }
    if (node.readsByContext.size > PENDING_READS_MAX / 2) {
      for (const [context, read] of node.readsByContext) if (read.createdAtMs < horizonMs) node.readsByContext.delete(context);
    }
  }

  // --- The nemesis -------------------------------------------------------------------------------

  /** The operator: membership changes on their own schedule, interleaved with the faults. */
  private scheduleMembership(): void {
    this.schedule(this.uniform(this.nemesisPrng, MEMBERSHIP_INTERVAL_MS), () => {
      if (this.phase !== "faults") return;
      this.membershipChange(this.currentLeader());
      this.scheduleMembership();
    });
  }

  private scheduleNemesis(): void {
    this.schedule(this.uniform(this.nemesisPrng, this.options.profile.nemesisIntervalMs), () => {
      if (this.phase !== "faults") return;
      this.nemesis();
      this.scheduleNemesis();
    });
  }

  private nemesis(): void {
    const weights: [FaultKind, number][] = [];
    let total = 0;
    for (const [kind, weight] of Object.entries(this.options.profile.weights) as [FaultKind, number][]) {
      const w = kind === "membership" && !this.options.membership ? 0 : weight;
      if (w > 0) {
        weights.push([kind, w]);
        total += w;
      }
    }
    if (total === 0) return;
    let roll = this.nemesisPrng.nextFloat() * total;
    let kind = weights[0]![0];
    for (const [k, w] of weights) {
      roll -= w;
      if (roll < 0) {
        kind = k;
        break;
      }
    }
    this.fault(kind);
  }

  /** Cuts `node` off from every other node, and reconnects it (only it) later. */
  private isolate(node: SimNode, why: string): void {
    this.network.isolate(node.id, this.members());
    this.counters.partitions++;
    this.record(`nemesis: isolate ${node.id} (${why})`);
    this.schedule(this.uniform(this.nemesisPrng, this.options.profile.healAfterMs), () => {
      if (this.phase !== "faults") return;
      this.network.healNode(node.id);
      this.record(`nemesis: reconnect ${node.id}`);
    });
  }

  private healLater(): void {
    this.schedule(this.uniform(this.nemesisPrng, this.options.profile.healAfterMs), () => {
      if (this.phase !== "faults") return;
      this.network.heal();
      this.record("nemesis: heal");
    });
  }

  private fault(kind: FaultKind): void {
    const prng = this.nemesisPrng;
    const alive = this.aliveNodes();
    const leader = this.currentLeader();
    const healLater = (): void => this.healLater();
    switch (kind) {
      case "partition": {
        const ids = shuffle(prng, this.members());
        if (ids.length < 2) return;
        const split = 1 + prng.nextInt(ids.length - 1);
        const groups = [ids.slice(0, split), ids.slice(split)];
        this.network.partition(groups);
        this.counters.partitions++;
        this.record(`nemesis: partition ${groups.map((g) => `{${g.join(",")}}`).join(" ")}`);
        healLater();
        return;
      }
      case "isolate-leader":
        if (leader !== undefined) this.isolate(leader, "leader");
        return;
      case "one-way-cut": {
        const ids = this.members();
        const cuts = 1 + prng.nextInt(3);
        const made: string[] = [];
        for (let i = 0; i < cuts; i++) {
          const from = ids[prng.nextInt(ids.length)]!;
          const to = ids[prng.nextInt(ids.length)]!;
          if (from === to) continue;
          this.network.cut(from, to);
          made.push(`${from}->${to}`);
        }
        this.counters.partitions++;
        this.record(`nemesis: one-way cuts ${made.join(" ")}`);
        healLater();
        return;
      }
      case "heal":
        this.network.heal();
        this.record("nemesis: heal");
        return;
      case "crash": {
        if (alive.length === 0) return;
        this.crash(alive[prng.nextInt(alive.length)]!, "nemesis");
        return;
      }
      case "crash-leader":
        if (leader !== undefined) this.crash(leader, "nemesis: leader");
        return;
      case "pause": {
        // Half the time the leader: the classic threat to leases (it wakes up believing it leads).
        const victim = leader !== undefined && prng.chance(0.5) ? leader : alive[prng.nextInt(Math.max(1, alive.length))];
        if (victim !== undefined) this.pause(victim, this.uniform(prng, this.options.profile.pauseMs));
        return;
      }
      case "transfer-leader": {
        if (leader === undefined) return;
        const voters = leader.raw.status().config.voters.filter((id) => id !== leader.id);
        if (voters.length === 0) return;
        const target = voters[prng.nextInt(voters.length)]!;
        this.record(`nemesis: transfer leadership ${leader.id} -> ${target}`);
        leader.raw.transferLeader(target);
        this.counters.transfers++;
        this.touch(leader);
        return;
      }
      case "membership":
        this.membershipChange(leader);
        return;
      case "lease-trap": {
        if (leader === undefined) return;
        const followers = alive.filter((n) => n !== leader && inConfig(leader.confState, n.id));
        if (followers.length === 0) return;
        const follower = followers[prng.nextInt(followers.length)]!;
        this.network.cut(leader.id, follower.id);
        this.record(`nemesis: lease trap: cut ${leader.id}->${follower.id}`);
        // The follower's log must stay as long as the others' for it to win an election
        // (paper 5.4.1), so clients pause writes until the leader is cut off (a quiet period).
        const electionMs = this.options.tickMs * this.options.raft.electionTicks;
        const armMs = electionMs * (0.95 + 0.15 * prng.nextFloat());
        this.writesPausedUntilMs = Math.max(this.writesPausedUntilMs, this.now + armMs);
        this.schedule(armMs, () => {
          if (this.phase !== "faults") return;
          this.network.isolate(leader.id, this.members());
          this.record(`nemesis: lease trap: isolate ${leader.id}`);
          healLater();
        });
        return;
      }
      case "election-storm": {
        if (leader !== undefined) this.crash(leader, "nemesis: election storm");
        const electionMs = this.options.tickMs * (this.options.raft.electionTicks + 1.5);
        this.schedule(electionMs, () => {
          if (this.phase !== "faults") return;
          const running = this.aliveNodes().filter((n) => this.now >= n.pausedUntilMs);
          const candidates = shuffle(prng, running).slice(0, 2);
          this.record(`nemesis: election storm: ${candidates.map((n) => n.id).join(", ")} campaign`);
          for (const node of candidates) {
            node.raw.campaign();
            this.touch(node);
          }
        });
        return;
      }
    }
  }

  private membershipChange(leader: SimNode | undefined): void {
    if (leader === undefined) return;
    const prng = this.nemesisPrng;
    const config = leader.raw.status().config;
    let change: ConfChange | undefined;
    let newNodeId: NodeId | undefined;
    if (config.votersOutgoing.length > 0) {
      if (config.autoLeave) return;
      change = { transition: ConfChangeTransition.Auto, changes: [] };
    } else {
      const options: (() => ConfChange | undefined)[] = [];
      const single = (type: ConfChangeType, nodeId: NodeId): ConfChange => ({
        transition: ConfChangeTransition.Auto,
        changes: [{ type, nodeId }],
      });
      const { voters, learners } = config;
      const pickOf = (ids: NodeId[]): NodeId => ids[prng.nextInt(ids.length)]!;
      if (this.nextNodeId <= this.maxNodeId && this.members().length < 7) {
        options.push(() => {
          newNodeId = this.nextNodeId;
          return single(ConfChangeType.AddLearnerNode, newNodeId);
        });
      }
      if (learners.length > 0 && voters.length < 7) {
        options.push(() => single(ConfChangeType.AddNode, pickOf(learners)));
        options.push(() => single(ConfChangeType.RemoveNode, pickOf(learners)));
      }
      if (voters.length > 3) options.push(() => single(ConfChangeType.RemoveNode, pickOf(voters)));
      if (learners.length > 0 && voters.length >= 3) {
        // Joint consensus (thesis 4.3): promote a learner and remove a voter in one step.
        options.push(() => {
          const changes: ConfChangeSingle[] = [
            { type: ConfChangeType.AddNode, nodeId: pickOf(learners) },
            { type: ConfChangeType.RemoveNode, nodeId: pickOf(voters) },
          ];
          const transition = prng.chance(0.5) ? ConfChangeTransition.JointImplicit : ConfChangeTransition.JointExplicit;
          return { transition, changes };
        });
      }
      if (voters.length > 3) {
        // Demote a voter to learner: joint, with the voter in learnersNext until it is left.
        options.push(() => {
          const demote = pickOf(voters);
          return {
            transition: ConfChangeTransition.JointExplicit,
            changes: [{ type: ConfChangeType.AddLearnerNode, nodeId: demote }],
          };
        });
      }
      if (options.length === 0) return;
      change = options[prng.nextInt(options.length)]!();
    }
    if (change === undefined) return;
    try {
      leader.raw.proposeConfChange(change);
      this.record(`nemesis: propose conf change ${describeConfChange(change)} at leader ${leader.id}`);
      if (newNodeId !== undefined) {
        // A new member starts with an empty disk and waits for the leader (etcd, TiKV).
        assert(newNodeId === this.nextNodeId, "new node id changed under us");
        this.nextNodeId++;
        this.startNode(this.createNode(newNodeId, new SimDisk()));
      }
    } catch (error) {
      if (!(error instanceof ProposalDroppedError || error instanceof InvalidArgumentError)) throw error;
      this.record(`nemesis: conf change ${describeConfChange(change)} refused: ${error.message}`);
    }
    this.touch(leader);
  }

  /** In the final phase an explicit joint configuration must still be left, or it never is. */
  private scheduleLeaveJointIfNeeded(): void {
    this.schedule(100, () => {
      if (this.phase !== "quiesce") return;
      const leader = this.currentLeader();
      if (leader !== undefined) {
        const config = leader.raw.status().config;
        if (config.votersOutgoing.length > 0 && !config.autoLeave) {
          try {
            leader.raw.proposeConfChange({ transition: ConfChangeTransition.Auto, changes: [] });
            this.record(`quiesce: leave joint configuration at leader ${leader.id}`);
          } catch (error) {
            if (!(error instanceof ProposalDroppedError || error instanceof InvalidArgumentError)) throw error;
          }
          this.touch(leader);
        }
      }
      this.scheduleLeaveJointIfNeeded();
    });
  }

  // --- End-of-run checks -------------------------------------------------------------------------

  /**
   * Exactly-once, against an oracle that replays the canonical applied sequence with the session
   * rules (first occurrence of an op id at or above its client's floor takes effect; nothing else
   * does), written independently of the replicas' state machine. Then linearizability per key.
   */
  private checkExactlyOnceAndLinearizability(): void {
    const applied = this.checker.applied;
    const effective = new Map<string, { index: number; value: bigint }>();
    const floors = new Map<number, number>();
    const values = new Map<string, bigint>();
    let last = 0;
    for (let index = 1; index < applied.length; index++) {
      const record = applied[index];
      if (record === undefined) {
        assert(index <= 1, `applied sequence has a gap at ${index}`);
        continue;
      }
      last = index;
      if (record.entry.type !== EntryType.Normal || record.entry.data.length === 0) continue;
      const command = decodeCommand(record.entry.data);
      const opId = opIdOf(command.clientId, command.seq);
      const floor = floors.get(command.clientId) ?? 0;
      if (!effective.has(opId) && command.seq >= floor) {
        const value = (values.get(command.key) ?? 0n) + BigInt(command.delta);
        values.set(command.key, value);
        effective.set(opId, { index, value });
      }
      if (command.floorSeq > floor) floors.set(command.clientId, command.floorSeq);
    }
    for (const node of this.nodes.values()) {
      if (!node.alive || node.sm.appliedIndex !== last) continue;
      for (const key of new Set([...values.keys(), ...node.sm.values.keys()])) {
        const expected = values.get(key) ?? 0n;
        if (node.sm.read(key) !== expected) {
          throw new SimViolation(
            "exactly-once",
            `node ${node.id} holds ${key}=${node.sm.read(key)} at index ${last}; applying each op id once gives ${expected}`,
          );
        }
      }
    }
    const byOpId = new Map<string, HistoryRecord>();
    for (const record of this.history) {
      byOpId.set(record.opId, record);
      if (record.kind !== "add") continue;
      const applied = effective.get(record.opId);
      if (record.outcome === "ok") {
        if (applied === undefined) {
          throw new SimViolation("exactly-once", `acknowledged ${record.opId} (${record.key} += ${record.delta}) never took effect`);
        }
        if (applied.value !== record.value) {
          throw new SimViolation(
            "exactly-once",
            `acknowledged ${record.opId} returned ${record.value}, but it took effect at index ${applied.index} giving ${applied.value}`,
          );
        }
      } else if (record.outcome === "failed" && applied !== undefined) {
        throw new SimViolation("exactly-once", `${record.opId} failed for certain, yet took effect at index ${applied.index}`);
      }
    }
    for (const opId of effective.keys()) {
      if (!byOpId.has(opId)) throw new SimViolation("exactly-once", `${opId} took effect but no client issued it`);
    }
    if (!this.options.checkLinearizability) return;

    const operations: Operation<CounterInput, CounterOutput>[] = [];
    for (const record of this.history) {
      if (record.kind === "add") {
        if (record.outcome === "ok") {
          operations.push({
            id: record.opId,
            clientId: record.clientId,
            partition: record.key,
            input: { kind: "add", delta: BigInt(record.delta) },
            output: record.value,
            invokedAt: record.invokedStep,
            completedAt: record.completedStep,
          });
        } else if (record.outcome === "ambiguous" && effective.has(record.opId)) {
          // The simulator knows an ambiguous op that never took effect; leaving it out keeps the
          // search small. One that did take effect stays ambiguous: when is for the checker.
          operations.push({
            id: record.opId,
            clientId: record.clientId,
            partition: record.key,
            input: { kind: "add", delta: BigInt(record.delta) },
            invokedAt: record.invokedStep,
          });
        }
      } else if (record.outcome === "ok") {
        operations.push({
          id: record.opId,
          clientId: record.clientId,
          partition: record.key,
          input: { kind: "read" },
          output: record.value,
          invokedAt: record.invokedStep,
          completedAt: record.completedStep,
        });
      }
    }
    const result = checkLinearizable(operations, counterModel);
    if (result.ok === true) return;
    const describe = (op: Operation<CounterInput, CounterOutput>): string => {
      const record = byOpId.get(String(op.id))!;
      const what = op.input.kind === "add" ? `add(${op.input.delta})` : `read${record.lease ? "[lease]" : ""}()`;
      const result = op.output === undefined ? "?" : op.output.toString();
      const when = `${record.invokedAtMs.toFixed(3)}..${record.completedAtMs === undefined ? "" : record.completedAtMs.toFixed(3)} ms`;
      return `  ${record.opId} ${what} -> ${result}  [${when}]${record.servedBy !== undefined ? ` from n${record.servedBy} (${record.path})` : ""}`;
    };
    if (result.ok === "unknown") throw new SimViolation("linearizability", `inconclusive: ${result.message}`);
    const shown = [...result.minimalCounterexample].sort((a, b) => a.invokedAt - b.invokedAt).slice(-30);
    const failing = byOpId.get(String(result.failingOperation.id))!;
    const focusMs: [number, number] = [failing.invokedAtMs - 40, failing.completedAtMs ?? failing.invokedAtMs];
    throw new SimViolation(
      "linearizability",
      [
        `key ${result.partition}: not linearizable`,
        `failing: ${describe(result.failingOperation).trim()}`,
        `states it could have seen: ${result.statesBeforeFailure.join(", ") || "none"}`,
        `counterexample (${result.minimalCounterexample.length} ops${result.minimalCounterexample.length > shown.length ? `, last ${shown.length}` : ""}):`,
        ...shown.map(describe),
      ].join("\n"),
      focusMs,
    );
  }
}

// --- Helpers -------------------------------------------------------------------------------------

function configIds(cs: ConfState): NodeId[] {
  return [...new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext])];
}

function inConfig(cs: ConfState, id: NodeId): boolean {
  return cs.voters.includes(id) || cs.learners.includes(id) || cs.votersOutgoing.includes(id) || cs.learnersNext.includes(id);
}

function shuffle<T>(prng: Prng, values: T[]): T[] {
  const out = values.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = prng.nextInt(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function describeMessage(m: Message): string {
  let text = `${MessageType[m.type]} ${m.from}->${m.to} t${m.term}`;
  switch (m.type) {
    case MessageType.App:
      text += ` i${m.index}/t${m.logTerm} n${m.entries.length} c${m.commit}`;
      break;
    case MessageType.AppResp:
      text += ` i${m.index}${m.reject ? ` reject hint ${m.rejectHint}` : ""}`;
      break;
    case MessageType.Vote:
    case MessageType.PreVote:
      text += ` last ${m.index}/t${m.logTerm}`;
      break;
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      text += m.reject ? " reject" : " grant";
      break;
    case MessageType.Heartbeat:
      text += ` c${m.commit}`;
      break;
    case MessageType.Snap:
      text += ` snap ${m.snapshot?.metadata.index}/t${m.snapshot?.metadata.term}`;
      break;
    default:
      break;
  }
  return text;
}

function describeConfChange(cc: ConfChange): string {
  if (cc.changes.length === 0) return "leave-joint";
  const parts = cc.changes.map((c) => `${ConfChangeType[c.type]}(${c.nodeId})`);
  return `${ConfChangeTransition[cc.transition]}[${parts.join(" ")}]`;
}

function describeConfState(cs: ConfState): string {
  let text = `voters {${cs.voters.join(",")}}`;
  if (cs.learners.length > 0) text += ` learners {${cs.learners.join(",")}}`;
  if (cs.votersOutgoing.length > 0) text += ` outgoing {${cs.votersOutgoing.join(",")}}${cs.autoLeave ? " auto-leave" : ""}`;
  if (cs.learnersNext.length > 0) text += ` learnersNext {${cs.learnersNext.join(",")}}`;
  return text;
}
