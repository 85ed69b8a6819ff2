/**
 * Prometheus metrics for one node, on a Registry of its own (never prom-client's global one, so
 * nodes in one process -- tests -- never collide). Two kinds of series:
 *
 * - event counters and histograms updated on the request path (requests by RPC and code, latency,
 *   counter operations by kind, overload refusals, storage write time). The label sets are fixed
 *   (RPC names, error codes, op kinds), and children are bound once and cached. An answered
 *   request, the hot path, costs two map lookups and a few increments of plain numbers: its count
 *   reaches the prom-client counter at scrape time, and its latency is kept by RequestLatency
 *   (a prom-client child hashes its labels on every observe, ~3% of a node's CPU on reads);
 * - state read at scrape time (Raft term, leader, commit and applied index, lease, queue depths,
 *   peer queues, the node's own counters): nothing on the hot path at all;
 * - tally_build_info{version, node_version} = 1, set once, so a dashboard can show which build runs;
 * - the event loop's delay (src/server/ops/event-loop.ts): the longest since start, and p50, p99 and
 *   max since the previous scrape, from a monitorEventLoopDelay histogram read at scrape time.
 *
 * The endpoint has no authentication (src/server/ops/ops-http.ts), so nothing here may be a secret the
 * cluster's safety depends on. Term, leader and indexes are not: every client reply carries a
 * fencing token (term, index), and peer traffic is authenticated by mTLS or the cluster secret, so
 * knowing where the log stands does not let anyone append to it (docs/security.md, "What /metrics
 * exposes"). No key, value, token or principal name is ever a label.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from "prom-client";
import { Role } from "../../raft/types.js";
import { buildInfo } from "../../util/build-info.js";
import type { TallyNode } from "../node.js";
import { EventLoopDelay, RESOLUTION_MS, type EventLoopDelaySample } from "./event-loop.js";
import { stageTrace, type TraceStage } from "../core/stage-trace.js";

/** One Raft group as a scrape sees it. */
export interface GroupSample {
  /** The shard id, or "meta" for the metadata group. */
  group: string;
  term: number;
  isLeader: boolean;
  leader: number;
  commit: number;
  applied: number;
  lastIndex: number;
  leaseValid: boolean;
  pendingProposals: number;
  pendingReads: number;
}

/** Everything the scrape-time series read, taken once per scrape. */
export interface NodeSample {
  groups: GroupSample[];
  /** Monotonic counters the node keeps anyway (node.stats). */
  counters: {
    loopIterations: number;
    entriesWritten: number;
    entriesApplied: number;
    leaderChanges: number;
    snapshotsTaken: number;
    snapshotsBuilt: number;
    snapshotsInstalled: number;
  };
  /** Raft messages queued per peer node id. */
  peerQueues: Map<number, number>;
  peerMessagesDropped: number;
  /** Frames (one stream message, all groups' messages for one peer) and Raft messages sent to peers. */
  peerFramesSent: number;
  peerMessagesSent: number;
  /** Peer calls, frames and snapshot chunks refused by peer authentication (transport stats). */
  peerUnauthenticated: number;
  inboundDropped: number;
  /** The most committed-entry bytes one group applied in one driver iteration (node.stats). */
  appliedBytesPerIterationMax: number;
  ready: boolean;
}

export interface MetricsOptions {
  nodeId: number;
  /** process_* and nodejs_* series (CPU, memory, event loop lag, GC). Default true. */
  defaultMetrics?: boolean;
  /** The tally_event_loop_delay_* series' source: default a monitor on this process's loop; false for none. */
  eventLoopDelay?: EventLoopDelay | false;
}

/** Latency buckets: a lease read on loopback is ~0.2 ms, a mutation one fsync, a bad one the 5 s timeout. */
const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const STORAGE_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

type Child = { inc(value?: number): void };
type Observer = { observe(value: number): void };
/** Requests of one (rpc, code) answered since the last scrape, and the counter child they go to. */
type PendingCount = { child: Child; pending: number };

/** One RPC's latency observations: per-bucket (not cumulative) counts, their sum and count. */
interface LatencySeries {
  rpc: string;
  buckets: number[];
  sum: number;
  count: number;
}

/**
 * tally_request_duration_seconds, by rpc: the same series and text a prom-client Histogram with
 * these buckets gives (registered on the registry as a metric of its own), but an observation is
 * a map lookup, a bucket search and three increments. Prometheus's histogram semantics: a value
 * counts in the first bucket whose bound is >= it, and in +Inf.
 */
export class RequestLatency {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly series = new Map<string, LatencySeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {}

  observe(rpc: string, seconds: number): void {
    let series = this.series.get(rpc);
    if (series === undefined) {
      series = { rpc, buckets: new Array<number>(this.bounds.length).fill(0), sum: 0, count: 0 };
      this.series.set(rpc, series);
    }
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (seconds <= bounds[i]!) {
        series.buckets[i]!++;
        break;
      }
    }
    series.sum += seconds;
    series.count++;
  }

  reset(): void {
    this.series.clear();
  }

  /** What the registry formats: each rpc's cumulative buckets, +Inf, _sum and _count, rpc as a shared label. */
  async getForPromString(): Promise<{ name: string; help: string; type: string; values: LatencyValue[]; aggregator: string }> {
    const values: LatencyValue[] = [];
    for (const series of this.series.values()) {
      const sharedLabels = { rpc: series.rpc };
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += series.buckets[i]!;
        values.push({ labels: { le: bound }, sharedLabels, value: cumulative, metricName: `${this.name}_bucket`, exemplar: null });
      });
      values.push({ labels: { le: "+Inf" }, sharedLabels, value: series.count, metricName: `${this.name}_bucket`, exemplar: null });
      values.push({ labels: {}, sharedLabels, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels, value: series.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** The same values with the labels merged (registry.getMetricsAsJSON), as prom-client's Histogram.get() gives them. */
  async get(): Promise<{ name: string; help: string; type: string; values: LatencyValue[]; aggregator: string }> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return data;
  }
}

type LatencyValue = {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
  exemplar?: null;
};

export class NodeMetrics {
  readonly registry = new Registry();
  private sample: NodeSample | undefined;
  private readonly eventLoop: EventLoopDelay | undefined;
  /** The event-loop delay read once per scrape (a read starts the next window). */
  private loopSample: EventLoopDelaySample | undefined;

  private readonly requests: Counter<"rpc" | "code">;
  private readonly latency: RequestLatency;
  private readonly ops: Counter<"kind">;
  private readonly overloads: Counter<"reason">;
  private readonly storageWrite: Histogram<"sync">;
  private readonly storageBytes: Counter;
  /** rpc -> code -> the count since the last scrape: two lookups and no string building per request. */
  private readonly requestCounts = new Map<string, Map<string, PendingCount>>();
  private readonly opsChildren = new Map<string, Child>();
  private readonly overloadChildren = new Map<string, Child>();
  private readonly storageChildren: Record<"true" | "false", Observer>;
  /** Requests admitted and not yet answered (set by the request guard). */
  inflightRequests = 0;

  constructor(
    private readonly source: () => NodeSample,
    options: MetricsOptions,
  ) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node: String(options.nodeId) });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.eventLoop = options.eventLoopDelay === false ? undefined : (options.eventLoopDelay ?? EventLoopDelay.monitor());

    const requestCounts = this.requestCounts;
    this.requests = new Counter({
      name: "tally_requests_total",
      help: "Requests answered, by RPC (Pipeline ops as Pipeline.<op>) and tally code (OK or the error code)",
      labelNames: ["rpc", "code"],
      registers,
      collect() {
        // The requests answered since the last scrape (request() only counts them).
        for (const byCode of requestCounts.values()) {
          for (const count of byCode.values()) {
            if (count.pending > 0) count.child.inc(count.pending);
            count.pending = 0;
          }
        }
      },
    });
    this.latency = new RequestLatency("tally_request_duration_seconds", "Time from admission to answer, by RPC", LATENCY_BUCKETS_SECONDS);
    this.registry.registerMetric(this.latency as unknown as Metric);
    this.ops = new Counter({
      name: "tally_ops_total",
      help: "Counter operations in acknowledged mutations, by kind (add, set, reset, cas, window, acquire, unique)",
      labelNames: ["kind"],
      registers,
    });
    this.overloads = new Counter({
      name: "tally_overload_rejections_total",
      help: "Requests refused with OVERLOADED by an in-flight bound (node, client connection, session) or a per-stream bound, by reason",
      labelNames: ["reason"],
      registers,
    });
    this.storageWrite = new Histogram({
      name: "tally_storage_write_seconds",
      help: 'LevelDB batch write time; sync="true" is the fsync of a group commit',
      labelNames: ["sync"],
      buckets: STORAGE_BUCKETS_SECONDS,
      registers,
    });
    this.storageBytes = new Counter({ name: "tally_storage_write_bytes_total", help: "Bytes written to LevelDB in batches", registers });
    this.storageChildren = { true: this.storageWrite.labels("true"), false: this.storageWrite.labels("false") };
    this.registerGroupGauges(registers);
    this.registerSampleCounters(registers);
    this.registerNodeGauges(registers);
    if (this.eventLoop !== undefined) {
      this.registerEventLoopGauges(registers);
      this.registerOnCpuGauges(registers);
    }
    if (stageTrace.enabled) this.registerStageTrace(registers);
  }

  /** TALLY_TRACE_ADDS only: where an add's time goes (src/server/core/stage-trace.ts), per stage. */
  private registerStageTrace(registers: Registry[]): void {
    const histogram = new Histogram({
      name: "tally_stage_seconds",
      help: "Stage trace (TALLY_TRACE_ADDS): time per stage of a sampled write, loop iteration, store write or GC pause",
      labelNames: ["stage"],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    const children = new Map<TraceStage, Observer>();
    stageTrace.observe((stage, seconds) => {
      let child = children.get(stage);
      if (child === undefined) children.set(stage, (child = histogram.labels(stage)));
      child.observe(seconds);
    });
  }

  /** Per Raft group, read from the sample at scrape time. */
  private registerGroupGauges(registers: Registry[]): void {
    const metrics = this;
    const perGroup = (name: string, help: string, value: (group: GroupSample) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["group"],
        registers,
        collect() {
          this.reset();
          for (const group of metrics.current().groups) this.set({ group: group.group }, value(group));
        },
      });
    perGroup("tally_raft_term", "Current Raft term of this replica", (g) => g.term);
    perGroup("tally_raft_is_leader", "1 when this replica leads its group", (g) => (g.isLeader ? 1 : 0));
    perGroup("tally_raft_leader_id", "The leader this replica knows (0 = none)", (g) => g.leader);
    perGroup("tally_raft_commit_index", "Highest log index known committed", (g) => g.commit);
    perGroup("tally_raft_applied_index", "Highest log index applied to the state machine", (g) => g.applied);
    perGroup("tally_raft_last_index", "Last index in this replica's log", (g) => g.lastIndex);
    perGroup("tally_raft_apply_lag_entries", "commit - applied: committed entries not yet applied", (g) =>
      Math.max(0, g.commit - g.applied),
    );
    perGroup("tally_lease_valid", "1 while this leader holds a valid read lease", (g) => (g.leaseValid ? 1 : 0));
    perGroup(
      "tally_proposals_pending",
      "Mutations queued or proposed and not yet applied (bounded by limits.maxPendingProposalsPerShard)",
      (g) => g.pendingProposals,
    );
    perGroup("tally_reads_pending", "Linearizable and min-index reads waiting", (g) => g.pendingReads);
  }

  /** Counts the node keeps itself (node.stats, transport stats), mirrored at scrape time. */
  private registerSampleCounters(registers: Registry[]): void {
    const metrics = this;
    const fromSample = (name: string, help: string, value: (sample: NodeSample) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          // The node keeps these counts itself; the scrape mirrors them.
          this.reset();
          this.inc(value(metrics.current()));
        },
      });
    fromSample("tally_raft_leader_changes_total", "Leader changes seen by this node's replicas", (s) => s.counters.leaderChanges);
    fromSample("tally_loop_iterations_total", "Driver loop iterations", (s) => s.counters.loopIterations);
    fromSample("tally_raft_entries_written_total", "Raft entries persisted", (s) => s.counters.entriesWritten);
    fromSample("tally_raft_entries_applied_total", "Raft entries applied", (s) => s.counters.entriesApplied);
    fromSample(
      "tally_snapshots_taken_total",
      "Log compactions (a shard's stores the snapshot's metadata only)",
      (s) => s.counters.snapshotsTaken,
    );
    fromSample(
      "tally_snapshots_built_total",
      "Shard snapshots built from the applied state for a follower behind the compacted log",
      (s) => s.counters.snapshotsBuilt,
    );
    fromSample("tally_snapshots_installed_total", "Snapshots received from a leader and installed", (s) => s.counters.snapshotsInstalled);
    fromSample(
      "tally_peer_messages_dropped_total",
      "Raft messages the transport dropped (full queue, peer down); Raft retransmits",
      (s) => s.peerMessagesDropped,
    );
    fromSample(
      "tally_peer_frames_sent_total",
      "Frames written to peer streams (each carries the Raft messages of every group queued for that peer)",
      (s) => s.peerFramesSent,
    );
    fromSample("tally_peer_messages_sent_total", "Raft messages written to peer streams", (s) => s.peerMessagesSent);
    fromSample(
      "tally_peer_unauthenticated_total",
      "Peer calls, frames and snapshot chunks refused by peer authentication (no handshake, wrong cluster secret, bad MAC), and peers that failed to prove the secret to this node: an attack, or a node with another auth.internalTokenFile",
      (s) => s.peerUnauthenticated,
    );
    fromSample(
      "tally_inbound_messages_dropped_total",
      "Raft messages dropped because the driver loop's inbound queue was full",
      (s) => s.inboundDropped,
    );
  }

  /** Node-wide state: peer queues, requests in flight, apply bytes, build, readiness. */
  private registerNodeGauges(registers: Registry[]): void {
    const metrics = this;
    new Gauge({
      name: "tally_peer_queue_depth",
      help: "Raft messages waiting to be written to a peer",
      labelNames: ["peer"],
      registers,
      collect() {
        this.reset();
        for (const [peer, depth] of metrics.current().peerQueues) this.set({ peer: String(peer) }, depth);
      },
    });
    new Gauge({
      name: "tally_inflight_requests",
      help: "Client requests (unary calls and Pipeline ops) admitted and not yet answered",
      registers,
      collect() {
        this.set(metrics.inflightRequests);
      },
    });
    new Gauge({
      name: "tally_apply_bytes_per_iteration_max",
      help: "Most committed-entry bytes one driver iteration applied, over all groups, since start (bounded by 128 KiB plus one group's Ready: 16 KiB or one entry): how long applying can hold the event loop",
      registers,
      collect() {
        this.set(metrics.current().appliedBytesPerIterationMax);
      },
    });
    const build = buildInfo();
    new Gauge({
      name: "tally_build_info",
      help: "Always 1; the labels name the tally version and the Node.js this node runs",
      labelNames: ["version", "node_version"],
      registers,
    }).set({ version: build.version, node_version: build.nodeVersion }, 1);
    new Gauge({
      name: "tally_node_ready",
      help: "1 when /readyz answers 200 (the node can serve)",
      registers,
      collect() {
        this.set(metrics.current().ready ? 1 : 0);
      },
    });
  }

  /** The event loop's delay (src/server/ops/event-loop.ts): how long something held the loop. */
  private registerEventLoopGauges(registers: Registry[]): void {
    const metrics = this;
    new Gauge({
      name: "tally_event_loop_delay_max_seconds",
      help: `Longest event-loop delay since the node started: the longest anything (a checkpoint, compaction, snapshot send or install, an apply) held the loop, plus up to the ${RESOLUTION_MS} ms sampling interval`,
      registers,
      collect() {
        this.set(metrics.currentLoop().maxSeconds);
      },
    });
    new Gauge({
      name: "tally_event_loop_delay_recent_seconds",
      help: `Event-loop delay since the previous scrape: p50 (quantile="0.5"), p99 (quantile="0.99") and max (quantile="1"), sampled every ${RESOLUTION_MS} ms (an idle loop reads about that); 0 when no sample fell in the window`,
      labelNames: ["quantile"],
      registers,
      collect() {
        const { recent } = metrics.currentLoop();
        this.set({ quantile: "0.5" }, recent.p50Seconds);
        this.set({ quantile: "0.99" }, recent.p99Seconds);
        this.set({ quantile: "1" }, recent.maxSeconds);
      },
    });
  }

  /** The on-CPU part of stalls (event-loop.ts OnCpuSpans), where the kernel says it. */
  private registerOnCpuGauges(registers: Registry[]): void {
    const metrics = this;
    new Gauge({
      name: "tally_event_loop_on_cpu_max_seconds",
      help: `Longest time the event loop's thread ran on a CPU between two ${RESOLUTION_MS} ms ticks: since the node started (window="start"), since the previous scrape (window="recent"). A delay much longer than this was time waiting for a core, not work holding the loop`,
      labelNames: ["window"],
      registers,
      collect() {
        const onCpu = metrics.currentLoop().onCpu;
        if (onCpu === undefined) return;
        this.set({ window: "start" }, onCpu.maxSeconds);
        this.set({ window: "recent" }, onCpu.recentMaxSeconds);
      },
    });
  }

  private current(): NodeSample {
    return this.sample ?? this.source();
  }

  private currentLoop(): EventLoopDelaySample {
    return this.loopSample ?? this.eventLoop!.read();
  }

  /** One request answered: `code` is "OK" or a tally error code. */
  request(rpc: string, code: string, startedMs: number): void {
    let byCode = this.requestCounts.get(rpc);
    if (byCode === undefined) {
      byCode = new Map();
      this.requestCounts.set(rpc, byCode);
    }
    let count = byCode.get(code);
    if (count === undefined) {
      count = { child: this.requests.labels(rpc, code), pending: 0 };
      byCode.set(code, count);
    }
    count.pending++;
    this.latency.observe(rpc, (performance.now() - startedMs) / 1000);
  }

  countOps(kind: string, count: number): void {
    let child = this.opsChildren.get(kind);
    if (child === undefined) {
      child = this.ops.labels(kind);
      this.opsChildren.set(kind, child);
    }
    child.inc(count);
  }

  overloaded(reason: string): void {
    let child = this.overloadChildren.get(reason);
    if (child === undefined) {
      child = this.overloads.labels(reason);
      this.overloadChildren.set(reason, child);
    }
    child.inc();
  }

  storageWritten(seconds: number, sync: boolean, bytes: number): void {
    this.storageChildren[sync ? "true" : "false"].observe(seconds);
    this.storageBytes.inc(bytes);
  }

  /** The Prometheus text exposition, from one consistent sample of the node. */
  async scrape(): Promise<string> {
    this.sample = this.source();
    this.loopSample = this.eventLoop?.read();
    try {
      return await this.registry.metrics();
    } finally {
      this.sample = undefined;
      this.loopSample = undefined;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** What a scrape reads from a live node. */
export function sampleNode(node: TallyNode, ready: () => boolean): NodeSample {
  const groups: GroupSample[] = [];
  const replicas = node.meta === undefined ? [...node.replicas.values()] : [node.meta, ...node.replicas.values()];
  for (const replica of replicas) {
    const raw = replica.raw;
    groups.push({
      group: replica === node.meta ? "meta" : String(replica.shardId),
      term: raw.term,
      isLeader: replica.role === Role.Leader,
      leader: replica.leader,
      commit: raw.commitIndex,
      applied: replica.machine.appliedIndex,
      lastIndex: raw.lastIndex,
      leaseValid: replica.role === Role.Leader && raw.leaseValid(),
      pendingProposals: replica.pendingProposals,
      pendingReads: replica.pendingReads,
    });
  }
  const stats = node.stats;
  return {
    groups,
    counters: {
      loopIterations: stats.iterations,
      entriesWritten: stats.entriesWritten,
      entriesApplied: stats.applied,
      leaderChanges: stats.leaderChanges,
      snapshotsTaken: stats.snapshotsTaken,
      snapshotsBuilt: stats.snapshotsBuilt,
      snapshotsInstalled: stats.snapshotsInstalled,
    },
    peerQueues: node.peerQueueDepths(),
    peerMessagesDropped: node.transportStats?.dropped ?? 0,
    peerFramesSent: node.transportStats?.framesSent ?? 0,
    peerMessagesSent: node.transportStats?.messagesSent ?? 0,
    peerUnauthenticated: node.transportStats?.unauthenticated ?? 0,
    inboundDropped: node.inboundDroppedCount,
    appliedBytesPerIterationMax: stats.appliedBytesPerIterationMax,
    ready: ready(),
  };
}

/** Metrics for a live node: scrape-time state from it, storage write times hooked in. */
export function nodeMetrics(node: TallyNode, ready: () => boolean, options: Omit<MetricsOptions, "nodeId"> = {}): NodeMetrics {
  const metrics = new NodeMetrics(() => sampleNode(node, ready), { ...options, nodeId: node.nodeId });
  node.onStoreWrite = (seconds, sync, bytes) => metrics.storageWritten(seconds, sync, bytes);
  return metrics;
}
