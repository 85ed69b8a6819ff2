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
import { loadClusterConfig, type NodeConfig } from "../../src/server/config/config.js";
import { freePort, withDeadline } from "../support/cluster.js";
import { NodeProxy, ProxyMesh, procSourceIdentifier, type LinkShape } from "../support/proxy.js";
import { createPrng } from "../../src/util/prng.js";
import { withMallocTunables } from "../../src/util/malloc-tunables.js";
import { BaseCluster, chaosClusterDocument, type ClusterOptions, type Link } from "./backend.js";
import { DiskVolumes } from "./disk-volume.js";

const root = resolve(import.meta.dirname, "..", "..");
const OUTPUT_LINES_MAX = 300;

export class ProcessCluster extends BaseCluster {
  readonly name = "process";
  readonly dir: string;
  readonly configPath: string;
  mesh!: ProxyMesh;
  /** The client ports' proxies (ClusterOptions.clientProxies). */
  clientMesh: ProxyMesh | undefined;
  readonly processes = new Map<number, ChildProcess>();
  readonly paused = new Set<number>();
  readonly output = new Map<number, string[]>();
  private readonly clockOffsetMs = new Map<number, number>();
  /** How each node's last process ended; nodes whose process exited without the harness killing it. */
  private readonly exits = new Map<number, string>();
  private readonly selfExited = new Set<number>();
  private readonly killing = new WeakSet<ChildProcess>();
  private readonly privatePeer = new Map<number, string>();

  private constructor(readonly options: ClusterOptions) {
    super();
    this.dir = mkdtempSync(join(tmpdir(), "tally-chaos-"));
    this.configPath = join(this.dir, "cluster.yaml");
  }

  static async start(options: ClusterOptions, readyTimeoutMs = 60_000): Promise<ProcessCluster> {
    const cluster = new ProcessCluster(options);
    await cluster.bringUp(readyTimeoutMs);
    return cluster;
  }

  endpoints(): string[] {
    return this.config.nodes.map((n) => n.client);
  }

  protected async setUp(): Promise<void> {
    const nodes = [];
    const proxies = new Map<number, NodeProxy>();
    const clientProxies = new Map<number, NodeProxy>();
    const identify = procSourceIdentifier(() => {
      const pids = new Map<number, number>();
      for (const [id, child] of this.processes) if (child.pid !== undefined) pids.set(id, child.pid);
      return pids;
    });
    const jitterRng = createPrng(this.options.seed ?? 1);
    if (this.options.diskFaults) this.volumes = new DiskVolumes(this.dir);
    for (let id = 1; id <= this.options.nodes; id++) {
      const proxyPort = await freePort();
      const privatePort = await freePort();
      this.privatePeer.set(id, `127.0.0.1:${privatePort}`);
      proxies.set(id, new NodeProxy(id, "127.0.0.1", proxyPort, "127.0.0.1", privatePort, identify, () => jitterRng.nextFloat()));
      const dataDir = this.volumes !== undefined ? this.volumes.mount(id) : `n${id}`;
      const node: NodeConfig = {
        id,
        client: `127.0.0.1:${await freePort()}`,
        peer: `127.0.0.1:${proxyPort}`,
        zone: `z${id}`,
        host: `${id}`,
        dataDir,
      };
      if (this.options.metrics) node.metrics = `127.0.0.1:${await freePort()}`;
      if (this.options.clientProxies) {
        const clientPort = await freePort();
        node.clientListen = `127.0.0.1:${clientPort}`;
        const proxyClientPort = Number(node.client.split(":")[1]);
        clientProxies.set(id, new NodeProxy(id, "127.0.0.1", proxyClientPort, "127.0.0.1", clientPort, identify));
      }
      nodes.push(node);
    }
    writeFileSync(this.configPath, stringify(chaosClusterDocument(this.options, nodes)));
    this.config = loadClusterConfig(this.configPath);
    this.mesh = new ProxyMesh(proxies);
    await this.mesh.start();
    if (clientProxies.size > 0) {
      this.clientMesh = new ProxyMesh(clientProxies);
      await this.clientMesh.start();
    }
  }

  async startNode(id: number, clockOffsetMs = this.clockOffsetOf(id)): Promise<void> {
    if (this.processes.has(id)) throw new Error(`node ${id} is already running`);
    const child = spawn(process.execPath, [join(root, "bin", "tallyd.js"), "--config", this.configPath, "--node", String(id)], {
      stdio: ["ignore", "pipe", "pipe"],
      env: withMallocTunables({
        ...process.env,
        TALLY_LOG_LEVEL: process.env.TALLY_LOG_LEVEL ?? "warn",
        TALLY_EXIT_WITH_PARENT: "1",
        ...this.options.extraEnv,
        TALLY_NODE_PEER_LISTEN: this.privatePeer.get(id)!,
        TALLY_TEST_CLOCK_OFFSET_MS: String(clockOffsetMs),
        TALLY_TEST_CONTROL_FILE: this.controlFile(id),
      }),
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
    child.on("exit", (code, signal) => {
      this.exits.set(id, signal !== null ? `signal ${signal}` : `exit code ${code}`);
      if (this.processes.get(id) === child && !this.killing.has(child)) this.selfExited.add(id);
      if (this.processes.get(id) === child) {
        this.processes.delete(id);
        this.paused.delete(id);
      }
    });
    this.processes.set(id, child);
  }

  /** The nodes whose process exited by itself since the last call (the harness did not kill it). */
  async syncState(): Promise<number[]> {
    const died = [...this.selfExited];
    this.selfExited.clear();
    return died;
  }

  async exitInfo(id: number): Promise<string> {
    return this.exits.get(id) ?? "still running";
  }

  clockOffsetOf(id: number): number {
    return this.clockOffsetMs.get(id) ?? 0;
  }

  async kill(id: number): Promise<void> {
    const child = this.processes.get(id);
    if (!child) return;
    const exited = new Promise((r) => child.once("exit", r));
    this.killing.add(child);
    child.kill("SIGKILL");
    await withDeadline(exited, 5000, `node ${id} did not die after SIGKILL`);
    this.processes.delete(id);
    this.paused.delete(id);
  }

  async pause(id: number): Promise<void> {
    const child = this.processes.get(id);
    if (!child || this.paused.has(id)) return;
    child.kill("SIGSTOP");
    this.paused.add(id);
  }

  async resume(id: number): Promise<void> {
    const child = this.processes.get(id);
    if (!child || !this.paused.has(id)) return;
    child.kill("SIGCONT");
    this.paused.delete(id);
  }

  isRunning(id: number): boolean {
    return this.processes.has(id);
  }

  isPaused(id: number): boolean {
    return this.paused.has(id);
  }

  async cutLinks(links: readonly Link[]): Promise<void> {
    for (const [from, to] of links) {
      this.mesh.cutLink(from, to);
      this.clientMesh?.cutLink(from, to);
    }
  }

  async shapeAll(shape: LinkShape): Promise<void> {
    this.mesh.shapeAll(shape);
  }

  async healNetwork(): Promise<void> {
    this.mesh.healAll();
    this.clientMesh?.healAll();
  }

  async logs(id: number): Promise<string> {
    return (this.output.get(id) ?? []).join("");
  }

  async destroy(): Promise<void> {
    this.unwatchSignals();
    this.closeAdmins();
    const children = [...this.processes.values()];
    for (const child of children) child.kill("SIGKILL");
    await Promise.all(
      children.map((child) => withDeadline(new Promise((r) => child.once("exit", r)), 5000, "kill").catch(() => undefined)),
    );
    this.processes.clear();
    if (this.mesh) await this.mesh.close();
    await this.clientMesh?.close();
    this.volumes?.unmountAll();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
