/**
 * The chaos harness's process backend: N real `tallyd` processes whose peer traffic passes through
 * per-destination proxies (test/support/proxy.ts), with the controls the nemeses need: kill -9,
 * restart (optionally with a skewed clock), SIGSTOP/SIGCONT, partitions, link shaping, and
 * leadership queries/transfers through AdminService. Every process is tracked by PID and killed
 * in teardown; every wait has a deadline.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import { loadClusterConfig, type ClusterConfig } from "../../src/server/config.js";
import { waitForClusterReady } from "../../scripts/cluster-ready.js";
import { freePort, withDeadline } from "../support/cluster.js";
import { NodeProxy, ProxyMesh, procSourceIdentifier } from "../support/proxy.js";
import { RawNodeClient } from "../support/raw-client.js";
import { createPrng } from "../../src/util/prng.js";

const root = resolve(import.meta.dirname, "..", "..");
const OUTPUT_LINES_MAX = 300;

export interface ChaosClusterOptions {
  nodes: number;
  shards?: number;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  requestTimeoutMs?: number;
  /** Seeds the proxies' jitter. */
  seed?: number;
  /** Environment for every node (e.g. TALLY_TEST_ACK_BEFORE_COMMIT). */
  extraEnv?: Record<string, string>;
}

export class ChaosCluster {
  readonly dir: string;
  readonly configPath: string;
  config!: ClusterConfig;
  mesh!: ProxyMesh;
  readonly processes = new Map<number, ChildProcess>();
  readonly paused = new Set<number>();
  readonly output = new Map<number, string[]>();
  /** Clock offset each node was last started with. */
  readonly clockOffsetMs = new Map<number, number>();
  private readonly privatePeer = new Map<number, string>();
  private readonly admins = new Map<number, RawNodeClient>();

  private constructor(readonly options: ChaosClusterOptions) {
    this.dir = mkdtempSync(join(tmpdir(), "tally-chaos-"));
    this.configPath = join(this.dir, "cluster.yaml");
  }

  static async start(options: ChaosClusterOptions, readyTimeoutMs = 60_000): Promise<ChaosCluster> {
    const cluster = new ChaosCluster(options);
    try {
      await cluster.setUp();
      for (const node of cluster.config.nodes) cluster.startNode(node.id);
      await cluster.waitReady(readyTimeoutMs);
      return cluster;
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
  }

  get electionTimeoutMs(): number {
    return this.config.cluster.tickMs * this.config.cluster.electionTicks;
  }

  get nodeIds(): number[] {
    return this.config.nodes.map((n) => n.id);
  }

  endpoints(): string[] {
    return this.config.nodes.map((n) => n.client);
  }

  private async setUp(): Promise<void> {
    const nodes = [];
    const proxies = new Map<number, NodeProxy>();
    const identify = procSourceIdentifier(() => {
      const pids = new Map<number, number>();
      for (const [id, child] of this.processes) if (child.pid !== undefined) pids.set(id, child.pid);
      return pids;
    });
    const jitterRng = createPrng(this.options.seed ?? 1);
    for (let id = 1; id <= this.options.nodes; id++) {
      const proxyPort = await freePort();
      const privatePort = await freePort();
      this.privatePeer.set(id, `127.0.0.1:${privatePort}`);
      proxies.set(id, new NodeProxy(id, "127.0.0.1", proxyPort, "127.0.0.1", privatePort, identify, () => jitterRng.nextFloat()));
      nodes.push({ id, client: `127.0.0.1:${await freePort()}`, peer: `127.0.0.1:${proxyPort}`, zone: `z${id}`, dataDir: `n${id}` });
    }
    const document = {
      cluster: {
        name: "chaos",
        replicationFactor: Math.min(3, this.options.nodes),
        shards: this.options.shards ?? 2,
        tickMs: this.options.tickMs ?? 20,
        electionTicks: this.options.electionTicks ?? 25,
        heartbeatTicks: this.options.heartbeatTicks ?? 5,
        leaseDriftTicks: 5,
        snapshotEveryEntries: 10_000,
      },
      limits: { requestTimeoutMs: this.options.requestTimeoutMs ?? 4000 },
      nodes,
    };
    writeFileSync(this.configPath, stringify(document));
    this.config = loadClusterConfig(this.configPath);
    this.mesh = new ProxyMesh(proxies);
    await this.mesh.start();
  }

  startNode(id: number, clockOffsetMs = 0): void {
    if (this.processes.has(id)) throw new Error(`node ${id} is already running`);
    const child = spawn(process.execPath, [join(root, "bin", "tallyd.js"), "--config", this.configPath, "--node", String(id)], {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        TALLY_LOG_LEVEL: process.env.TALLY_LOG_LEVEL ?? "warn",
        TALLY_EXIT_WITH_PARENT: "1",
        ...this.options.extraEnv,
        TALLY_PEER_LISTEN: this.privatePeer.get(id)!,
        TALLY_TEST_CLOCK_OFFSET_MS: String(clockOffsetMs),
      },
    });
    this.clockOffsetMs.set(id, clockOffsetMs);
    const lines = this.output.get(id) ?? [];
    this.output.set(id, lines);
    const keep = (chunk: Buffer): void => {
      lines.push(chunk.toString());
      if (lines.length > OUTPUT_LINES_MAX) lines.splice(0, lines.length - OUTPUT_LINES_MAX);
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    child.on("exit", () => {
      if (this.processes.get(id) === child) {
        this.processes.delete(id);
        this.paused.delete(id);
      }
    });
    this.processes.set(id, child);
  }

  /** kill -9 (a paused process dies too: SIGKILL needs no SIGCONT). */
  async kill(id: number): Promise<void> {
    const child = this.processes.get(id);
    if (!child) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await withDeadline(exited, 5000, `node ${id} did not die after SIGKILL`);
    this.processes.delete(id);
    this.paused.delete(id);
  }

  pause(id: number): void {
    const child = this.processes.get(id);
    if (!child || this.paused.has(id)) return;
    child.kill("SIGSTOP");
    this.paused.add(id);
  }

  resume(id: number): void {
    const child = this.processes.get(id);
    if (!child || !this.paused.has(id)) return;
    child.kill("SIGCONT");
    this.paused.delete(id);
  }

  isRunning(id: number): boolean {
    return this.processes.has(id);
  }

  private admin(id: number): RawNodeClient {
    let client = this.admins.get(id);
    if (client === undefined) {
      const node = this.config.nodes.find((n) => n.id === id)!;
      client = new RawNodeClient(node.client);
      this.admins.set(id, client);
    }
    return client;
  }

  /** The node that reports itself leader of `shardId` (highest term wins), or undefined. */
  async leaderOf(shardId: number, timeoutMs = 1000): Promise<number | undefined> {
    let best: { node: number; term: bigint } | undefined;
    await Promise.all(
      this.nodeIds
        .filter((id) => this.processes.has(id) && !this.paused.has(id))
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

  logs(id: number): string {
    return (this.output.get(id) ?? []).join("");
  }

  async destroy(): Promise<void> {
    for (const client of this.admins.values()) client.close();
    this.admins.clear();
    const children = [...this.processes.values()];
    for (const child of children) child.kill("SIGKILL");
    await Promise.all(children.map((child) => withDeadline(new Promise((r) => child.once("exit", r)), 5000, "kill").catch(() => undefined)));
    this.processes.clear();
    if (this.mesh) await this.mesh.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
