/**
 * The real-parts simulator (TigerBeetle's VOPR runs the real replica; this runs the real node).
 * N simulated tally nodes, each the production DriverLoop + NodeGroups + GroupApplier +
 * CounterStateMachine + NodeStore (cluster.ts), over a simulated disk that loses unsynced batches
 * (sim-kv.ts), a simulated network that delays, drops, duplicates, reorders and partitions (the
 * messages cross it in the real peer wire format, src/transport/codec.ts), and one virtual clock.
 * Everything nondeterministic comes from createPrng(seed): one seed replays one run exactly, and the
 * trace hash says so.
 *
 * A run: the nodes boot an empty cluster (the metadata group elects a leader, the harness proposes
 * the initial map as the placement controller would, every node creates its shard replicas); clients
 * add to counters through the production request path (core/requests.ts submitCommand with a session
 * or a request id, retried with the same id) and read linearizably (readKeys: lease or ReadIndex);
 * the nemesis crashes nodes (at random times, and right after a write is issued, before it resolves),
 * restarts them over their disks, partitions and heals the network and moves wall clocks. Then the
 * faults stop, every node restarts, the network heals, and the cluster must finish every operation
 * (liveness) and settle; the checkers (checks.ts) run throughout and at the end.
 */
import { MessageType, type Entry, type Message, type Snapshot } from "../../../src/raft/types.js";
import type { AnyReplica } from "../../../src/server/core/groups.js";
import { readKeys, routeRequest, submitCommand } from "../../../src/server/core/requests.js";
import { computePlacement, META_GROUP_ID, parseClusterConfig, type ClusterConfig } from "../../../src/server/config/config.js";
import type { MetaReplica, ShardReplica } from "../../../src/server/shard-replica.js";
import type { MetaCommand } from "../../../src/meta/map.js";
import { validateCommand, type Command } from "../../../src/shard/commands.js";
import { decodeFrame, encodeFrame } from "../../../src/transport/codec.js";
import { assert } from "../../../src/util/assert.js";
import { NotLeaderError, OverloadedError, WrongShardError } from "../../../src/util/errors.js";
import { createPrng, type Prng } from "../../../src/util/prng.js";
import { EventQueue } from "../event-queue.js";
import { hashBytes } from "../hash.js";
import { SimNetwork, type NetworkOptions } from "../network.js";
import { Trace } from "../trace.js";
import { checkExactlyOnce, checkReadsLinearizable, entryFingerprint, RealChecker, SimViolation, type OpRecord } from "./checks.js";
import { SimNode, type NodeHost } from "./cluster.js";
import { defaultCheckpointOptions, SimCheckpointDisk } from "./sim-checkpoints.js";
import { defaultKvOptions, SimDisk } from "./sim-kv.js";
import { realNowMs, withVirtualTime } from "./virtual-time.js";

/** Checker self-tests: defects planted in the harness (never in production code). */
export type Plant = "ack-before-commit" | "lie-about-sync" | "stale-reads" | "tear-checkpoints" | "compact-above-checkpoint";

export interface RealSimOptions {
  seed: number;
  nodeCount: number;
  shards: number;
  clients: number;
  keys: number;
  /** Virtual ms of faults and workload. */
  faultMs: number;
  /** The final phase must settle within this many virtual ms (liveness). */
  finalMsMax: number;
  /** Chance that a batch write issued during the fault phase is followed by a crash before it resolves. */
  crashOnWriteRate: number;
  /** The same for a checkpoint file write. */
  crashOnCheckpointRate: number;
  /** Mean virtual ms between nemesis actions. */
  nemesisEveryMs: number;
  /** Chance that a sampled apply compares the replica's state bytes (CounterStateMachine.snapshot()). */
  stateSampleRate: number;
  network: NetworkOptions;
  /**
   * Adds of even seq go as two plain adds of the same key (delta - 1, then 1) in one mutate: an
   * entry then carries them packed, and every replica applies them from the bytes (mutatePacked).
   */
  splitAdds: boolean;
  plant?: Plant;
  traceSink?: (line: string) => void;
}

export interface RealSimStats {
  events: number;
  virtualMs: number;
  crashes: number;
  crashesMidWrite: number;
  restarts: number;
  messages: number;
  adds: { ok: number; ambiguous: number; failed: number };
  reads: { ok: number; failed: number };
  leaderChanges: number;
  batchesLost: number;
  batchesKeptUnsynced: number;
  snapshotsInstalled: number;
  /** Checkpoint files made durable, and torn ones a crash left behind. */
  checkpointsWritten: number;
  checkpointsTorn: number;
  checks: number;
  appliedMax: number;
}

export interface RealSimResult {
  ok: boolean;
  options: RealSimOptions;
  traceHash: string;
  stats: RealSimStats;
  violation?: SimViolation;
  traceTail: string[];
  focusLines: string[];
  elapsedMs: number;
}

export interface RealSimOverrides {
  nodeCount?: number;
  faultMs?: number;
  plant?: Plant;
  traceSink?: (line: string) => void;
}

export function configForSeed(seed: number, overrides: RealSimOverrides = {}): RealSimOptions {
  const prng = createPrng(seed ^ 0x5eed);
  return {
    seed,
    // 3 nodes, sometimes 5.
    nodeCount: overrides.nodeCount ?? (prng.chance(0.25) ? 5 : 3),
    shards: 1 + prng.nextInt(2),
    clients: 3 + prng.nextInt(3),
    keys: 3 + prng.nextInt(3),
    faultMs: overrides.faultMs ?? 4000,
    finalMsMax: 20_000,
    crashOnWriteRate: 0.001 + prng.nextFloat() * 0.003,
    crashOnCheckpointRate: 0.05 + prng.nextFloat() * 0.1,
    nemesisEveryMs: 150 + prng.nextInt(250),
    stateSampleRate: 0.05,
    network: {
      delayMinMs: 0.2,
      delayMaxMs: 2 + prng.nextFloat() * 4,
      dropRate: prng.nextFloat() * 0.03,
      duplicateRate: prng.nextFloat() * 0.02,
      spikeRate: 0.01,
      spikeMaxMs: 60,
    },
    // Drawn last, so the draws above (and what they give each seed) are unchanged.
    splitAdds: prng.chance(0.5),
    ...(overrides.plant !== undefined ? { plant: overrides.plant } : {}),
    ...(overrides.traceSink !== undefined ? { traceSink: overrides.traceSink } : {}),
  };
}

export function replayCommand(options: RealSimOptions): string {
  const env = [`SIM_SEED=${options.seed}`, `SIM_NODES=${options.nodeCount}`, `SIM_FAULT_MS=${options.faultMs}`];
  if (options.plant !== undefined) env.push(`SIM_PLANT=${options.plant}`);
  return `${env.join(" ")} npx tsx test/sim/real/run.ts`;
}

export function formatFailure(result: RealSimResult): string {
  const lines = [
    `seed ${result.options.seed} FAILED: ${result.violation?.message ?? "unknown"}`,
    `replay: ${replayCommand(result.options)}`,
    `  (SIM_TRACE=1 prints every trace line)`,
    `nodes ${result.options.nodeCount}, shards ${result.options.shards}, clients ${result.options.clients}; trace hash ${result.traceHash}`,
    `stats ${JSON.stringify(result.stats)}`,
  ];
  if (result.focusLines.length > 0) lines.push("trace around the failing operation:", ...result.focusLines);
  lines.push("trace tail:", ...result.traceTail);
  return lines.join("\n");
}

export async function runRealSimulation(options: RealSimOptions): Promise<RealSimResult> {
  const started = realNowMs();
  const sim = new RealSimulation(options);
  const result = await withVirtualTime(
    () => sim.now,
    () => WALL_BASE_MS + sim.now,
    () => sim.run(),
  );
  result.elapsedMs = realNowMs() - started;
  return result;
}

/** The virtual wall clock starts here (2026-01-01), so stamps look like real ones. */
const WALL_BASE_MS = 1_767_225_600_000;
const CLIENT_LINK_MS_MAX = 3;
const ATTEMPT_TIMEOUT_MS = 800;
const OPERATION_DEADLINE_MS = 1500;
const REQUEST_TIMEOUT_MS = 600;
const HEARTBEAT_MS = 100;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface ClientState {
  id: number;
  useSessions: boolean;
  seq: number;
  sessions: Map<number, number>;
  leaderHint: number;
  current: { record: OpRecord; attempt: number; deadlineMs: number } | undefined;
}

type Reply =
  | { kind: "ok"; value: bigint; node: number; session?: [number, number] }
  | { kind: "refused"; node: number; leaderHint: number; reason: string; session?: [number, number] }
  | { kind: "unknown"; node: number; reason: string; session?: [number, number] };

class RealSimulation implements NodeHost {
  now = 0;
  private readonly prng: Prng;
  private readonly queue = new EventQueue(2_000_000);
  private readonly trace: Trace;
  private readonly network: SimNetwork;
  private readonly config: ClusterConfig;
  private readonly nodes = new Map<number, SimNode>();
  private readonly checker = new RealChecker();
  private readonly history: OpRecord[] = [];
  private readonly clients: ClientState[] = [];
  private readonly keys: string[];
  /** Session id -> the client that registered it (the oracle maps sessions to op ids with it). */
  private readonly sessionOwner = new Map<number, number>();
  private readonly skew = new Map<number, number>();
  private readonly wallOffsets = new Map<number, number>();
  private violation: SimViolation | undefined;
  private phase: "faults" | "final" | "done" = "faults";
  private step = 0;
  private readIds = 0;
  private readonly stats: RealSimStats = {
    events: 0,
    virtualMs: 0,
    crashes: 0,
    crashesMidWrite: 0,
    restarts: 0,
    messages: 0,
    adds: { ok: 0, ambiguous: 0, failed: 0 },
    reads: { ok: 0, failed: 0 },
    leaderChanges: 0,
    batchesLost: 0,
    batchesKeptUnsynced: 0,
    snapshotsInstalled: 0,
    checkpointsWritten: 0,
    checkpointsTorn: 0,
    checks: 0,
    appliedMax: 0,
  };

  constructor(private readonly options: RealSimOptions) {
    this.prng = createPrng(options.seed);
    this.trace = new Trace(200, options.traceSink);
    this.network = new SimNetwork(this.prng.fork(), options.network);
    const nodes = [];
    for (let id = 1; id <= options.nodeCount; id++)
      nodes.push({ id, client: `127.0.0.1:${7000 + id}`, peer: `127.0.0.1:${7100 + id}`, dataDir: `/nonexistent/sim/n${id}` });
    this.config = parseClusterConfig(
      {
        cluster: {
          shards: options.shards,
          replicationFactor: 3,
          tickMs: 10,
          electionTicks: 10,
          heartbeatTicks: 2,
          leaseDriftTicks: 2,
          // Small, so logs compact and lagging followers catch up by snapshot.
          snapshotEveryEntries: 40,
          metaReplicas: 3,
        },
        limits: { requestTimeoutMs: REQUEST_TIMEOUT_MS },
        placement: { autoRebalance: false, heartbeatMs: HEARTBEAT_MS, downAfterMs: 600_000 },
        nodes,
      },
      "<real-sim>",
      { env: {} },
    );
    this.keys = Array.from({ length: options.keys }, (_, i) => `k${i}`);
    for (let id = 1; id <= options.nodeCount; id++) {
      this.skew.set(id, this.prng.nextFloat() * 0.05);
      this.wallOffsets.set(id, WALL_BASE_MS + this.prng.nextInt(200));
      const disk = new SimDisk(
        this.prng.fork(),
        (delay, run) => this.schedule(delay, run),
        () => this.now,
        {
          ...defaultKvOptions,
          ...(options.plant === "lie-about-sync" && id === 1 ? { lieAboutSync: true } : {}),
        },
      );
      disk.onWriteIssued = (latencyMs) => this.maybeCrashMidWrite(id, latencyMs, "batch");
      const checkpoints = new SimCheckpointDisk(this.prng.fork(), (delay, run) => this.schedule(delay, run), {
        ...defaultCheckpointOptions,
        ...(options.plant === "tear-checkpoints" ? { tearFinalNames: true } : {}),
      });
      checkpoints.onWriteIssued = (latencyMs) => this.maybeCrashMidWrite(id, latencyMs, "checkpoint");
      this.nodes.set(id, new SimNode(id, this.config, this, disk, checkpoints));
    }
  }

  // ---- NodeHost ----

  get plantCompactAboveCheckpoint(): boolean {
    return this.options.plant === "compact-above-checkpoint";
  }

  nowMs(): number {
    return this.now;
  }

  schedule(delayMs: number, run: () => void): void {
    assert(delayMs >= 0 && Number.isFinite(delayMs), `bad delay ${delayMs}`);
    this.queue.push(this.now + delayMs, run);
  }

  record(text: string): void {
    this.trace.record(this.now, text);
  }

  fatal(node: number, error: Error): void {
    // A checker that throws inside the loop (an observed apply or append) stops that node's loop too.
    if (error instanceof SimViolation) this.fail(error);
    else this.fail(new SimViolation("exception", `node ${node}'s driver loop died: ${error.stack ?? error.message}`));
  }

  timerSkew(node: number, ms: number): number {
    return ms * (this.skew.get(node) ?? 0);
  }

  wallOffset(node: number): number {
    return this.wallOffsets.get(node) ?? WALL_BASE_MS;
  }

  onLeaderChange(node: number): void {
    this.stats.leaderChanges++;
    const inc = this.nodes.get(node)?.current;
    if (inc === undefined) return;
    const leading = [...inc.groups.all()].filter((g) => g.isLeader).map((g) => `g${g.shardId}`);
    this.record(`n${node} leader change; leads ${leading.join(",") || "nothing"}`);
  }

  observeAppend(node: number, groupId: number, entries: Entry[]): void {
    this.checker.observeAppend(node, groupId, entries);
  }

  observeApply(node: number, replica: AnyReplica, entries: Entry[]): void {
    for (const entry of entries) this.checker.observeApply(node, replica.shardId, entry);
    const last = entries[entries.length - 1]!.index;
    this.stats.appliedMax = Math.max(this.stats.appliedMax, last);
    this.record(`n${node} g${replica.shardId} applied ${entries[0]!.index}..${last}`);
    if (replica.shardId !== META_GROUP_ID && this.prng.chance(this.options.stateSampleRate))
      this.observeState(node, replica as ShardReplica);
  }

  observeInstall(node: number, replica: AnyReplica, snapshot: Snapshot): void {
    this.stats.snapshotsInstalled++;
    this.record(`n${node} g${replica.shardId} installed snapshot ${snapshot.metadata.index} (term ${snapshot.metadata.term})`);
    if (replica.shardId !== META_GROUP_ID) this.observeState(node, replica as ShardReplica);
  }

  private observeState(node: number, replica: ShardReplica): void {
    this.checker.observeState(node, replica.shardId, replica.machine.appliedIndex, hashBytes(replica.machine.snapshot()));
  }

  send(from: number, to: number, groupId: number, message: Message): void {
    this.network.checkSender(from, message);
    this.stats.messages++;
    if (message.type === MessageType.Snap) {
      this.sendSnapshot(from, to, groupId, message);
      return;
    }
    // The peer wire format: the receiver gets its own decoded copy, as over a socket.
    const frame = encodeFrame([[groupId, message]]);
    for (const delay of this.network.plan(from, to)) {
      this.schedule(delay, () => {
        if (this.network.isCut(from, to)) return;
        this.nodes.get(to)?.current?.loop.receive(decodeFrame(frame));
      });
    }
  }

  /**
   * A snapshot goes as PeerTransport sends one: its data read from the sender's snapshot source (a
   * shard's checkpoint file), the receiver's SnapshotExchange makes it durable and decodes it before
   * Raft sees it, and the sender's group learns the outcome (reportSnapshot) afterwards.
   */
  private sendSnapshot(from: number, to: number, groupId: number, message: Message): void {
    const sender = this.nodes.get(from)!;
    const inc = sender.current;
    if (inc === undefined) return;
    const generation = sender.generation;
    let reported = false;
    const report = (ok: boolean) => {
      if (reported) return;
      reported = true;
      this.schedule(1 + this.prng.nextFloat() * 5, () => {
        if (sender.generation !== generation) return;
        inc.groups.get(groupId)?.raw.reportSnapshot(to, ok);
        inc.loop.wake();
      });
      this.record(`n${from} -> n${to} g${groupId} snapshot ${message.snapshot!.metadata.index} ${ok ? "delivered" : "failed"}`);
    };
    this.record(`n${from} -> n${to} g${groupId} snapshot ${message.snapshot!.metadata.index} sending`);
    const source = groupId === META_GROUP_ID ? undefined : inc.snapshots.source(groupId, message);
    const transfer = async () => {
      let data = message.snapshot!.data;
      if (source !== undefined) data = await source.read(0, await source.open());
      const frame = encodeFrame([[groupId, { ...message, snapshot: { metadata: message.snapshot!.metadata, data } }]]);
      const delays = this.network.plan(from, to);
      if (delays.length === 0) {
        this.schedule(20, () => report(false));
        return;
      }
      this.schedule(delays[0]! + data.length / 100_000, () => {
        const receiver = this.nodes.get(to)!;
        const target = receiver.current;
        if (this.network.isCut(from, to) || target === undefined) return report(false);
        const targetGeneration = receiver.generation;
        const [[, received]] = decodeFrame(frame) as [[number, Message]];
        // The receiver crashing mid-receive drops the stream: the sender hears a failure.
        const dropped = () => report(false);
        receiver.openRequests.add(dropped);
        const made = groupId === META_GROUP_ID ? Promise.resolve() : target.snapshots.received(groupId, received);
        made.then(
          () => {
            receiver.openRequests.delete(dropped);
            if (receiver.generation !== targetGeneration) return report(false);
            target.loop.receive([[groupId, received]]);
            report(true);
          },
          () => {
            receiver.openRequests.delete(dropped);
            report(false);
          },
        );
      });
    };
    transfer().catch(() => report(false));
  }

  // ---- the run ----

  async run(): Promise<RealSimResult> {
    try {
      for (const node of this.nodes.values()) this.schedule(this.prng.nextFloat() * 5, () => this.startNode(node));
      for (let i = 0; i < this.options.clients; i++) {
        const client: ClientState = {
          id: i + 1,
          useSessions: i % 2 === 0,
          seq: 0,
          sessions: new Map(),
          leaderHint: 0,
          current: undefined,
        };
        this.clients.push(client);
        this.schedule(50 + this.prng.nextFloat() * 100, () => this.nextOperation(client));
      }
      this.schedule(HEARTBEAT_MS, () => this.heartbeat());
      this.schedule(this.nemesisDelay(), () => this.nemesis());
      this.schedule(this.options.faultMs, () => this.beginFinalPhase());
      while (this.phase !== "done" && this.violation === undefined) {
        const event = this.queue.pop();
        if (event === undefined) throw new SimViolation("liveness", "the event queue ran dry");
        assert(event.timeMs >= this.now, "events run in time order");
        this.now = event.timeMs;
        this.stats.events++;
        event.run();
        // Let every promise the event resolved run to its next await (all of them are simulated).
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (this.violation === undefined) this.finalChecks();
    } catch (error) {
      this.fail(error instanceof SimViolation ? error : new SimViolation("exception", (error as Error).stack ?? String(error)));
    }
    this.stats.virtualMs = Math.round(this.now);
    this.stats.checks = this.checker.checks;
    for (const node of this.nodes.values()) {
      this.stats.batchesLost += node.disk.stats.batchesLost;
      this.stats.batchesKeptUnsynced += node.disk.stats.batchesKeptUnsynced;
      this.stats.checkpointsWritten += node.checkpoints.stats.written;
      this.stats.checkpointsTorn += node.checkpoints.stats.tornFiles;
    }
    const focus = this.violation?.focusMs;
    return {
      ok: this.violation === undefined,
      options: this.options,
      traceHash: this.trace.hash(),
      stats: this.stats,
      ...(this.violation !== undefined ? { violation: this.violation } : {}),
      traceTail: this.trace.tail(),
      focusLines: focus === undefined ? [] : this.trace.window(focus[0], focus[1], 80, () => true),
      elapsedMs: 0,
    };
  }

  private fail(violation: SimViolation): void {
    if (this.violation === undefined) this.violation = violation;
  }

  private startNode(node: SimNode): void {
    if (node.alive || node.starting) return;
    if (node.starts > 0) this.stats.restarts++;
    this.record(`n${node.id} starting`);
    node
      .start()
      .catch((error: unknown) => this.fail(new SimViolation("exception", `node ${node.id} failed to start: ${(error as Error).stack}`)));
  }

  private crash(node: SimNode, why: string): void {
    if (!node.alive && !node.starting) return;
    this.stats.crashes++;
    const what = node.crash();
    this.record(`n${node.id} CRASH (${why}): ${what}`);
    if (this.phase === "faults") this.schedule(50 + this.prng.nextFloat() * 1500, () => this.startNode(node));
  }

  /** A crash point: sometimes the node crashes after a write was issued and before it resolves. */
  private maybeCrashMidWrite(id: number, latencyMs: number, what: "batch" | "checkpoint"): void {
    const rate = what === "batch" ? this.options.crashOnWriteRate : this.options.crashOnCheckpointRate;
    if (this.phase !== "faults" || !this.prng.chance(rate)) return;
    const node = this.nodes.get(id)!;
    const generation = node.generation;
    const at = latencyMs * (0.05 + 0.9 * this.prng.nextFloat());
    this.schedule(at, () => {
      // Not once the faults have stopped: the final phase restarts every node once and then waits
      // for the cluster to settle (seed 2012: a crash scheduled at 3,999 ms fired at 4,007 ms and
      // left a node down for good, a harness defect reported as a liveness failure).
      if (node.generation !== generation || this.phase !== "faults") return;
      this.stats.crashesMidWrite++;
      this.crash(node, `mid-write of a ${what}, ${node.disk.writesInFlight} batch write(s) in flight`);
    });
  }

  /** What the placement controller and the heartbeats do: propose the initial map; hand the map to nodes without a metadata replica. */
  private heartbeat(): void {
    if (this.phase === "done") return;
    this.schedule(HEARTBEAT_MS, () => this.heartbeat());
    let newest: SimNode | undefined;
    for (const node of this.nodes.values()) {
      const meta = node.current?.groups.meta;
      if (meta === undefined) continue;
      if (!meta.machine.map.initialized && meta.isLeader) this.proposeInit(node, meta);
      if (meta.machine.map.initialized && (newest === undefined || meta.machine.map.version > newest.map.version)) newest = node;
    }
    if (newest === undefined) return;
    for (const node of this.nodes.values()) {
      if (node.current === undefined || node.current.groups.meta !== undefined || node.map.version >= newest.map.version) continue;
      node.adoptMap(structuredClone(newest.map));
    }
  }

  private proposeInit(node: SimNode, meta: MetaReplica): void {
    const command: MetaCommand = {
      type: "init",
      clusterName: this.config.cluster.name,
      replicationFactor: this.config.cluster.replicationFactor,
      nodes: this.config.nodes.map((n) => ({ id: n.id, client: n.client, peer: n.peer, zone: n.zone, host: n.host })),
      metaVoters: [...meta.confState.voters],
      shards: computePlacement(this.config).map((placement) => ({
        id: placement.shardId,
        slotStart: placement.slots.start,
        slotEnd: placement.slots.end,
        epoch: placement.epoch,
        voters: placement.replicas,
        learners: [],
        votersOutgoing: [],
      })),
    };
    meta.enqueue({ command, bytes: 256, deadlineMs: this.now + 1000, resolve: () => undefined, reject: () => undefined });
    node.current?.loop.wake();
    this.record(`n${node.id} proposes the initial map`);
  }

  // ---- the nemesis ----

  private nemesisDelay(): number {
    return this.options.nemesisEveryMs * (0.2 + 1.6 * this.prng.nextFloat());
  }

  private nemesis(): void {
    if (this.phase !== "faults") return;
    this.schedule(this.nemesisDelay(), () => this.nemesis());
    const ids = [...this.nodes.keys()];
    const roll = this.prng.nextFloat();
    if (roll < 0.25) {
      const node = this.nodes.get(ids[this.prng.nextInt(ids.length)]!)!;
      this.crash(node, "random");
    } else if (roll < 0.45) {
      const leaders = [...this.nodes.values()].filter(
        (n) => n.current !== undefined && [...n.current.groups.all()].some((g) => g.isLeader),
      );
      if (leaders.length > 0) this.crash(leaders[this.prng.nextInt(leaders.length)]!, "a leader");
    } else if (roll < 0.6) {
      const shuffled = ids.map((id) => [this.prng.nextFloat(), id] as const);
      shuffled.sort((a, b) => a[0] - b[0]);
      const cut = 1 + this.prng.nextInt(ids.length - 1);
      const groups = [shuffled.slice(0, cut).map(([, id]) => id), shuffled.slice(cut).map(([, id]) => id)];
      this.network.partition(groups);
      this.record(`partition ${groups.map((g) => g.join(",")).join(" | ")}`);
      this.schedule(200 + this.prng.nextFloat() * 1200, () => this.heal());
    } else if (roll < 0.7) {
      const id = ids[this.prng.nextInt(ids.length)]!;
      this.network.isolate(id, ids);
      this.record(`isolate n${id}`);
      this.schedule(200 + this.prng.nextFloat() * 1200, () => this.heal());
    } else if (roll < 0.78) {
      const from = ids[this.prng.nextInt(ids.length)]!;
      const to = ids[this.prng.nextInt(ids.length)]!;
      if (from !== to) {
        this.network.cut(from, to);
        this.record(`cut n${from} -> n${to}`);
        this.schedule(100 + this.prng.nextFloat() * 800, () => this.heal());
      }
    } else if (roll < 0.86) {
      const id = ids[this.prng.nextInt(ids.length)]!;
      const jump = Math.round((this.prng.nextFloat() - 0.4) * 10_000);
      this.wallOffsets.set(id, (this.wallOffsets.get(id) ?? WALL_BASE_MS) + jump);
      this.record(`n${id} wall clock jumps ${jump} ms`);
    }
  }

  private heal(): void {
    if (this.phase === "done") return;
    this.network.heal();
    this.record("network healed");
  }

  private beginFinalPhase(): void {
    this.phase = "final";
    this.network.heal();
    this.record("FINAL PHASE: faults stop, network healed, every node restarts");
    for (const node of this.nodes.values()) this.startNode(node);
    this.schedule(50, () => this.checkSettled());
  }

  /** The end: every client done, every replica of every group at the same applied index, all at the leader's commit. */
  private checkSettled(): void {
    if (this.now > this.options.faultMs + this.options.finalMsMax) {
      const pending = this.clients.filter((c) => c.current !== undefined).map((c) => c.current!.record.opId);
      throw new SimViolation(
        "liveness",
        `the cluster did not settle within ${this.options.finalMsMax} ms of healing: pending ops ${pending.join(", ") || "none"}; ${this.describeGroups()}`,
      );
    }
    this.schedule(50, () => this.checkSettled());
    if (this.clients.some((c) => c.current !== undefined)) return;
    if ([...this.nodes.values()].some((n) => n.current === undefined)) return;
    const byGroup = new Map<number, AnyReplica[]>();
    for (const node of this.nodes.values())
      for (const group of node.current!.groups.all()) {
        const list = byGroup.get(group.shardId) ?? [];
        list.push(group);
        byGroup.set(group.shardId, list);
      }
    if (byGroup.size < 1 + this.options.shards) return;
    for (const replicas of byGroup.values()) {
      if (replicas.length < 3 || !replicas.some((r) => r.isLeader)) return;
      const applied = replicas[0]!.machine.appliedIndex;
      if (replicas.some((r) => r.machine.appliedIndex !== applied || r.raw.commitIndex !== applied)) return;
    }
    this.phase = "done";
    this.record(`settled: ${this.describeGroups()}`);
  }

  private describeGroups(): string {
    const parts: string[] = [];
    for (const node of this.nodes.values()) {
      const inc = node.current;
      if (inc === undefined) {
        parts.push(`n${node.id} down`);
        continue;
      }
      parts.push(
        `n${node.id}[${[...inc.groups.all()]
          .map((g) => {
            let text = `g${g.shardId}:${g.isLeader ? "L" : "F"}${g.raw.term}@${g.machine.appliedIndex}/${g.raw.commitIndex}`;
            // A leader's view of each follower: match, next, progress state.
            if (g.isLeader)
              for (const [peer, p] of g.raw.status().progress) if (peer !== node.id) text += ` (n${peer} ${JSON.stringify(p)})`;
            return text;
          })
          .join(" ")}]`,
      );
    }
    return parts.join(" ");
  }

  // ---- the workload ----

  private nextOperation(client: ClientState): void {
    if (this.phase !== "faults" || client.current !== undefined) return;
    const key = this.keys[this.prng.nextInt(this.keys.length)]!;
    const isRead = this.prng.chance(0.3);
    const record: OpRecord = {
      opId: "",
      clientId: client.id,
      kind: isRead ? "read" : "add",
      key,
      delta: 0,
      invokedStep: ++this.step,
      invokedAtMs: this.now,
      outcome: "pending",
      maybeApplied: false,
      attempts: 0,
    };
    if (isRead) {
      record.opId = `c${client.id}.r${++this.readIds}`;
    } else {
      client.seq++;
      record.opId = `c${client.id}.${client.seq}`;
      record.delta = 1 + this.prng.nextInt(5);
    }
    this.history.push(record);
    client.current = { record, attempt: 0, deadlineMs: this.now + OPERATION_DEADLINE_MS };
    this.record(`client ${client.id} invoke ${record.opId} ${isRead ? `read(${key})` : `add(${key}, ${record.delta})`}`);
    this.attempt(client);
  }

  private attempt(client: ClientState): void {
    const current = client.current!;
    const ids = [...this.nodes.keys()];
    const target = client.leaderHint !== 0 && this.prng.chance(0.9) ? client.leaderHint : ids[this.prng.nextInt(ids.length)]!;
    const attempt = ++current.attempt;
    current.record.attempts++;
    const record = current.record;
    this.schedule(this.prng.nextFloat() * CLIENT_LINK_MS_MAX, () => {
      this.serve(target, client, record).then(
        (reply) => this.schedule(this.prng.nextFloat() * CLIENT_LINK_MS_MAX, () => this.onReply(client, record, attempt, reply)),
        (error: unknown) => this.fail(new SimViolation("exception", `request handling threw: ${(error as Error).stack}`)),
      );
    });
    this.schedule(ATTEMPT_TIMEOUT_MS, () => {
      if (client.current?.record !== record || current.attempt !== attempt) return;
      record.maybeApplied ||= record.kind === "add";
      client.leaderHint = 0;
      this.retry(client);
    });
  }

  private onReply(client: ClientState, record: OpRecord, attempt: number, reply: Reply): void {
    if (reply.session !== undefined) client.sessions.set(reply.session[0], reply.session[1]);
    if (client.current?.record !== record) return; // done already (another attempt answered)
    if (reply.kind === "ok") {
      record.value = reply.value;
      record.servedBy = reply.node;
      client.leaderHint = reply.node;
      this.finish(client, "ok");
      return;
    }
    if (reply.kind === "unknown") record.maybeApplied ||= record.kind === "add";
    if (attempt !== client.current.attempt) return;
    client.leaderHint = reply.kind === "refused" ? reply.leaderHint : 0;
    this.retry(client);
  }

  private retry(client: ClientState): void {
    const current = client.current!;
    if (this.phase === "faults" && this.now >= current.deadlineMs) {
      this.finish(client, current.record.kind === "add" && current.record.maybeApplied ? "ambiguous" : "failed");
      return;
    }
    const attempt = current.attempt;
    this.schedule(5 + this.prng.nextFloat() * 40, () => {
      if (client.current === current && current.attempt === attempt) this.attempt(client);
    });
  }

  private finish(client: ClientState, outcome: OpRecord["outcome"]): void {
    const record = client.current!.record;
    record.outcome = outcome;
    if (outcome === "ok" || outcome === "failed") {
      record.completedStep = ++this.step;
      record.completedAtMs = this.now;
    }
    if (record.kind === "add") this.stats.adds[outcome === "ok" ? "ok" : outcome === "failed" ? "failed" : "ambiguous"]++;
    else this.stats.reads[outcome === "ok" ? "ok" : "failed"]++;
    this.record(
      `client ${client.id} ${outcome} ${record.opId}${record.value !== undefined ? ` -> ${record.value} from n${record.servedBy}` : ""}`,
    );
    client.current = undefined;
    this.schedule(this.prng.nextFloat() * 30, () => this.nextOperation(client));
  }

  /**
   * One request on node `target`, as its gRPC handler runs it (counter-service.ts): route the key,
   * validate, submit through the shard's leader (with a session, registered first, or a request id)
   * or read linearizably. The reply says ok, refused (certainly not applied) or unknown.
   */
  private serve(target: number, client: ClientState, record: OpRecord): Promise<Reply> {
    const node = this.nodes.get(target)!;
    const inc = node.current;
    if (inc === undefined) return Promise.resolve({ kind: "refused", node: target, leaderHint: 0, reason: "connection refused" });
    return new Promise<Reply>((resolve) => {
      let session: [number, number] | undefined;
      let settled = false;
      const done = (reply: Reply) => {
        if (settled) return;
        settled = true;
        node.openRequests.delete(dropped);
        resolve(session === undefined ? reply : { ...reply, session });
      };
      const dropped = (reason: string) => done({ kind: "unknown", node: target, reason });
      node.openRequests.add(dropped);
      const handle = async (): Promise<Reply> => {
        inc.loop.checkAlive();
        const keyBytes = encoder.encode(record.key);
        let replica = routeRequest(inc.view, 0, 0, [keyBytes]);
        if (record.kind === "read") {
          // The planted defect answers from whichever replica the request reached (a stale read).
          const consistency = this.options.plant === "stale-reads" ? "stale" : "linearizable";
          const result = await readKeys(inc.context, replica, [keyBytes], consistency, 0, REQUEST_TIMEOUT_MS);
          return { kind: "ok", value: result.values[0]!.value, node: target };
        }
        const seq = Number(record.opId.split(".")[1]);
        const delta = BigInt(record.delta);
        const ops =
          this.options.splitAdds && seq % 2 === 0
            ? [
                { kind: "add" as const, key: keyBytes, delta: delta - 1n },
                { kind: "add" as const, key: keyBytes, delta: 1n },
              ]
            : [{ kind: "add" as const, key: keyBytes, delta }];
        let command: Command;
        if (client.useSessions) {
          let sessionId = client.sessions.get(replica.shardId);
          if (sessionId === undefined) {
            sessionId = 1 + this.prng.nextInt(0x7fff_ffff);
            this.sessionOwner.set(sessionId, client.id);
            const registered = await submitCommand(
              inc.context,
              replica,
              { type: "register", clientId: sessionId, owner: "" },
              32,
              REQUEST_TIMEOUT_MS,
              false,
            );
            if (!registered.result.ok) return { kind: "refused", node: target, leaderHint: 0, reason: registered.result.message };
            session = [replica.shardId, sessionId];
            inc.loop.checkAlive();
            replica = routeRequest(inc.view, 0, 0, [keyBytes]);
          }
          command = { type: "mutate", clientId: sessionId, seq, firstUnackedSeq: seq, ops };
        } else {
          command = { type: "write", requestId: record.opId, ops };
        }
        validateCommand(command);
        const outcome = await submitCommand(
          inc.context,
          replica,
          command,
          64 + record.opId.length + ops.length * (keyBytes.length + 40),
          REQUEST_TIMEOUT_MS,
          this.options.plant === "ack-before-commit",
        );
        const result = outcome.result;
        if (!result.ok) return { kind: "refused", node: target, leaderHint: 0, reason: `${result.code}: ${result.message}` };
        assert(result.type === "mutate", "a mutate's result");
        return { kind: "ok", value: result.results[result.results.length - 1]!.value, node: target };
      };
      handle().then(done, (error: unknown) => {
        if (error instanceof NotLeaderError) {
          done({ kind: "refused", node: target, leaderHint: Number(error.leaderId ?? 0), reason: error.message });
        } else if (error instanceof WrongShardError || error instanceof OverloadedError) {
          done({ kind: "refused", node: target, leaderHint: 0, reason: error.message });
        } else {
          done({ kind: "unknown", node: target, reason: (error as Error).message });
        }
      });
    });
  }

  // ---- the end ----

  private finalChecks(): void {
    // Replica state equality and committed-log agreement, every replica.
    const byGroup = new Map<number, Array<[number, AnyReplica]>>();
    for (const node of this.nodes.values())
      for (const group of node.current!.groups.all()) {
        const list = byGroup.get(group.shardId) ?? [];
        list.push([node.id, group]);
        byGroup.set(group.shardId, list);
        if (group.shardId !== META_GROUP_ID) this.observeState(node.id, group as ShardReplica);
      }
    for (const [groupId, replicas] of byGroup) {
      for (let i = 1; i < replicas.length; i++) this.compareLogs(groupId, replicas[0]!, replicas[i]!);
    }
    const shards = [...byGroup.keys()].filter((id) => id !== META_GROUP_ID);
    const effective = checkExactlyOnce({
      shards,
      applied: this.checker.applied,
      sessionOwner: this.sessionOwner,
      history: this.history,
      keyOf: (bytes) => decoder.decode(bytes),
      replicaValues: (shardId, lastIndex) =>
        (byGroup.get(shardId) ?? [])
          .filter(([, replica]) => replica.machine.appliedIndex === lastIndex)
          .map(([node, replica]) => {
            const values = new Map<string, bigint>();
            for (const [key, result] of (replica as ShardReplica).machine.exportRecords().counters)
              values.set(decoder.decode(key), result.value);
            return { node, values };
          }),
    });
    checkReadsLinearizable(this.history, effective);
    this.record(`checks passed: ${effective.size} effective adds, ${this.history.length} operations`);
  }

  /** Entries both replicas hold at or below both commit indexes are the same entries. */
  private compareLogs(groupId: number, [nodeA, a]: [number, AnyReplica], [nodeB, b]: [number, AnyReplica]): void {
    const low = Math.max(a.storage.firstIndex(), b.storage.firstIndex());
    const high = Math.min(a.raw.commitIndex, b.raw.commitIndex, a.storage.lastIndex(), b.storage.lastIndex());
    if (high < low) return;
    const entriesA = a.storage.entries(low, high + 1, Number.POSITIVE_INFINITY);
    const entriesB = b.storage.entries(low, high + 1, Number.POSITIVE_INFINITY);
    for (let i = 0; i < entriesA.length; i++) {
      const x = entriesA[i]!;
      const y = entriesB[i]!;
      if (x.term !== y.term || entryFingerprint(x) !== entryFingerprint(y))
        throw new SimViolation(
          "log-matching",
          `group ${groupId}: committed entry ${x.index} differs between node ${nodeA} (term ${x.term}) and node ${nodeB} (term ${y.term})`,
        );
    }
  }
}
