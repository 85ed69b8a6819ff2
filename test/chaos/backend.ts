/**
 * What the chaos run (run.ts) needs from a cluster, whatever runs the nodes: child processes behind
 * userspace proxies (process-cluster.ts) or containers on a private Docker network
 * (container-cluster.ts). The nemeses are written once against this interface; a backend that
 * cannot shape links leaves `shapeAll` out and the latency/slow nemeses are refused for it.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitForClusterReady } from "../../scripts/cluster-ready.js";
import type { ClusterConfig, NodeConfig } from "../../src/server/config/config.js";
import type { LinkShape } from "../support/proxy.js";
import { RawNodeClient } from "../support/raw-client.js";
import type { DiskVolumes } from "./disk-volume.js";

export type BackendName = "process" | "container";
export const BACKEND_NAMES: readonly BackendName[] = ["process", "container"];

export interface ClusterOptions {
  nodes: number;
  shards?: number;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  requestTimeoutMs?: number;
  /** Log compaction interval (default 10,000); small values make lagging replicas catch up by snapshot. */
  snapshotEveryEntries?: number;
  /** Seeds the backend's own randomness (the process proxies' jitter). */
  seed?: number;
  /** Environment for every node (e.g. TALLY_TEST_ACK_BEFORE_COMMIT). */
  extraEnv?: Record<string, string>;
  /** Puts each node's data on its own tmpfs so the disk nemesis can fill it (needs root). */
  diskFaults?: boolean;
  /** Gives every node an operations HTTP address (`metrics:`, /metrics) (process backend). */
  metrics?: boolean;
  /**
   * Puts the client ports behind proxies too (process backend), so a cut link also stops what one
   * node sends to another's client port (the eventual flusher's AddBatch, forwarded calls); the
   * harness's own clients still reach every node.
   */
  clientProxies?: boolean;
  /** cluster.sessionTimeoutMs (default: tallyd's, 10 minutes); short, and a node down for a fault outlives its flusher sessions. */
  sessionTimeoutMs?: number;
}

/** A directed link: traffic that `from` sends to `to`. */
export type Link = readonly [from: number, to: number];

export interface ClusterBackend {
  readonly name: BackendName;
  readonly config: ClusterConfig;
  readonly nodeIds: number[];
  readonly electionTimeoutMs: number;
  /** Client addresses reachable from this host, for the workload's TallyClient. */
  endpoints(): string[];
  isRunning(id: number): boolean;
  isPaused(id: number): boolean;
  /** The clock offset the node was last started with (a restart keeps it unless told otherwise). */
  clockOffsetOf(id: number): number;
  /** Starts a stopped node on its existing data. */
  startNode(id: number, clockOffsetMs?: number): Promise<void>;
  /** kill -9; the data stays. A paused node dies too. */
  kill(id: number): Promise<void>;
  /** Freezes every thread of the node (SIGSTOP, cgroup freezer) and thaws it. */
  pause(id: number): Promise<void>;
  resume(id: number): Promise<void>;
  /** Peer traffic on each link stops flowing until healNetwork(). */
  cutLinks(links: readonly Link[]): Promise<void>;
  /** Latency, jitter and bandwidth on every peer link, until healNetwork(). Optional. */
  shapeAll?(shape: LinkShape): Promise<void>;
  /**
   * Re-reads which nodes run and which are frozen, for backends that can lose track (a container
   * whose tallyd exited by itself). Returns the nodes found dead that were believed running. The
   * process backend always knows (exit events).
   */
  syncState?(): Promise<number[]>;
  /** How a stopped node ended (exit code or signal), for the report. */
  exitInfo(id: number): Promise<string>;
  /**
   * Jumps a running node's clocks (test control file, src/server/testing/fault-switches.ts): the wall clock
   * to `wallJumpMs` from where it started (either sign; 0 puts it back), the monotonic clock
   * forward by `monotonicForwardMs` more (it never goes back). A restarted node keeps the jumps.
   */
  jumpClock(id: number, wallJumpMs: number, monotonicForwardMs: number): Promise<void>;
  /** Fills the node's data volume (ENOSPC on its next write); needs ClusterOptions.diskFaults. */
  fillDisk(id: number): Promise<void>;
  /** Frees the room fillDisk took. */
  drainDisk(id: number): Promise<void>;
  /** Undoes every cut and shape on running nodes. */
  healNetwork(): Promise<void>;
  /** The node that reports itself leader of `shardId` (highest term wins), or undefined. */
  leaderOf(shardId: number, timeoutMs?: number): Promise<number | undefined>;
  /** Snapshots installed, summed over the running nodes (each counts since its last start). */
  snapshotsInstalled(): Promise<number>;
  transferLeader(shardId: number, toNode: number): Promise<boolean>;
  waitReady(timeoutMs: number): Promise<void>;
  /** Recent output of a node, for diagnosing a failed run. */
  logs(id: number): Promise<string>;
  /** Kills and removes everything the backend started. Idempotent; never throws. */
  destroy(): Promise<void>;
}

/** Every directed link between `a` and `b`, both ways. */
export function linksBetween(a: readonly number[], b: readonly number[]): Link[] {
  const links: Link[] = [];
  for (const x of a) {
    for (const y of b) {
      links.push([x, y], [y, x]);
    }
  }
  return links;
}

/** The cluster.yaml document of a chaos cluster: short timeouts so faults show within seconds. */
export function chaosClusterDocument(options: ClusterOptions, nodes: NodeConfig[]): object {
  return {
    cluster: {
      name: "chaos",
      replicationFactor: Math.min(3, options.nodes),
      shards: options.shards ?? 2,
      tickMs: options.tickMs ?? 20,
      electionTicks: options.electionTicks ?? 25,
      heartbeatTicks: options.heartbeatTicks ?? 5,
      leaseDriftTicks: 5,
      snapshotEveryEntries: options.snapshotEveryEntries ?? 10_000,
      ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: options.sessionTimeoutMs }),
    },
    limits: { requestTimeoutMs: options.requestTimeoutMs ?? 4000 },
    nodes,
  };
}

/**
 * What both backends share: the config-derived views, and the AdminService calls the nemeses make
 * (leader lookup, leadership transfer, readiness) over the nodes' client addresses, asking only
 * nodes that are running and not frozen.
 */
export abstract class BaseCluster implements ClusterBackend {
  abstract readonly name: BackendName;
  /** The run's temporary directory on this host (config, data, control files). */
  abstract readonly dir: string;
  config!: ClusterConfig;
  private readonly admins = new Map<number, RawNodeClient>();
  private readonly monotonicJumpMs = new Map<number, number>();
  /** Set up by the subclass when ClusterOptions.diskFaults asks for it. */
  protected volumes: DiskVolumes | undefined;
  /** Ctrl-C or a kill of the harness must not leave nodes, containers or mounts behind. */
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    void this.destroy().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };

  protected watchSignals(): void {
    process.once("SIGINT", this.onSignal);
    process.once("SIGTERM", this.onSignal);
  }

  protected unwatchSignals(): void {
    process.off("SIGINT", this.onSignal);
    process.off("SIGTERM", this.onSignal);
  }

  abstract endpoints(): string[];
  abstract isRunning(id: number): boolean;
  abstract isPaused(id: number): boolean;
  abstract clockOffsetOf(id: number): number;
  abstract startNode(id: number, clockOffsetMs?: number): Promise<void>;
  abstract kill(id: number): Promise<void>;
  abstract pause(id: number): Promise<void>;
  abstract resume(id: number): Promise<void>;
  abstract cutLinks(links: readonly Link[]): Promise<void>;
  abstract healNetwork(): Promise<void>;
  abstract logs(id: number): Promise<string>;
  abstract exitInfo(id: number): Promise<string>;
  abstract destroy(): Promise<void>;
  /** Creates the config and whatever the nodes need before the first start. */
  protected abstract setUp(): Promise<void>;

  /** Sets up, starts every node, waits until every shard has a leader; tears down on any failure. */
  protected async bringUp(readyTimeoutMs: number): Promise<void> {
    this.watchSignals();
    try {
      await this.setUp();
      await Promise.all(this.nodeIds.map((id) => this.startNode(id)));
      await this.waitReady(readyTimeoutMs);
    } catch (error) {
      await this.destroy();
      throw error;
    }
  }

  get electionTimeoutMs(): number {
    return this.config.cluster.tickMs * this.config.cluster.electionTicks;
  }

  get nodeIds(): number[] {
    return this.config.nodes.map((n) => n.id);
  }

  private admin(id: number): RawNodeClient {
    let client = this.admins.get(id);
    if (client === undefined) {
      const node = this.config.nodes.find((n) => n.id === id);
      if (node === undefined) throw new Error(`no node ${id} in the cluster config`);
      client = new RawNodeClient(node.client);
      this.admins.set(id, client);
    }
    return client;
  }

  async leaderOf(shardId: number, timeoutMs = 1000): Promise<number | undefined> {
    let best: { node: number; term: bigint } | undefined;
    await Promise.all(
      this.nodeIds
        .filter((id) => this.isRunning(id) && !this.isPaused(id))
        .map(async (id) => {
          try {
            const status = await this.admin(id).call("status", { localOnly: true }, timeoutMs);
            const group = status.nodes?.[0]?.groups?.find((g: any) => g.groupId === shardId);
            if (group?.role !== "leader") return;
            const term = BigInt(group.term ?? 0);
            if (best === undefined || term > best.term) best = { node: id, term };
          } catch {
            // unreachable or busy: not a leader we can see
          }
        }),
    );
    return (best as { node: number; term: bigint } | undefined)?.node;
  }

  async snapshotsInstalled(): Promise<number> {
    let total = 0;
    for (const id of this.nodeIds.filter((n) => this.isRunning(n) && !this.isPaused(n))) {
      const status = await this.admin(id)
        .call("status", { localOnly: true }, 3000)
        .catch(() => undefined);
      total += Number(status?.nodes?.[0]?.stats?.snapshotsInstalled ?? 0);
    }
    return total;
  }

  async transferLeader(shardId: number, toNode: number): Promise<boolean> {
    const leader = await this.leaderOf(shardId);
    if (leader === undefined || leader === toNode) return false;
    try {
      await this.admin(leader).call("transferLeader", { shardId, toNode: String(toNode) }, 2000);
      return true;
    } catch {
      return false;
    }
  }

  async waitReady(timeoutMs = 30_000): Promise<void> {
    await waitForClusterReady(this.config, timeoutMs);
  }

  /** Where node `id`'s test control file is on this host (the directory is created on demand). */
  protected controlFile(id: number): string {
    mkdirSync(join(this.dir, "control"), { recursive: true });
    return join(this.dir, "control", `n${id}.json`);
  }

  async jumpClock(id: number, wallJumpMs: number, monotonicForwardMs: number): Promise<void> {
    if (monotonicForwardMs < 0) throw new Error("the monotonic clock only jumps forward");
    const monotonicJumpMs = (this.monotonicJumpMs.get(id) ?? 0) + monotonicForwardMs;
    this.monotonicJumpMs.set(id, monotonicJumpMs);
    const path = this.controlFile(id);
    // Atomic: the node polls the file and must never read half of it.
    writeFileSync(`${path}.tmp`, JSON.stringify({ wallJumpMs, monotonicJumpMs }));
    renameSync(`${path}.tmp`, path);
  }

  async fillDisk(id: number): Promise<void> {
    if (this.volumes === undefined) throw new Error("the cluster was started without diskFaults: its nodes' disks cannot be filled");
    this.volumes.fill(id);
  }

  async drainDisk(id: number): Promise<void> {
    this.volumes?.drain(id);
  }

  protected closeAdmins(): void {
    for (const client of this.admins.values()) client.close();
    this.admins.clear();
  }
}
