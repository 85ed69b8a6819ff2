/**
 * Real-process test clusters: N `tallyd` processes on free loopback ports with a temporary data
 * directory each. Every process is tracked by PID and killed in teardown; every wait has a deadline.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import { loadClusterConfig, type ClusterConfig } from "../../src/server/config/config.js";
import { waitForClusterReady } from "../../scripts/cluster-ready.js";
import { createCa, issueClientCertificate, issueNodeCertificate } from "../../scripts/gen-certs.js";
import { generateToken, tokenSha256Hex } from "../../src/util/auth-token.js";
import { withMallocTunables } from "../../src/util/malloc-tunables.js";

const root = resolve(import.meta.dirname, "..", "..");

/**
 * Ports this process has handed out. The OS may offer a port again once its probe socket closed,
 * and then one cluster.yaml names it twice (seen in CI: "nodes[2].client ... is already used by
 * nodes[1].peer"), so a port is never handed out twice.
 */
const portsHandedOut = new Set<number>();
const FREE_PORT_ATTEMPTS = 100;

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < FREE_PORT_ATTEMPTS; attempt++) {
    const port = await ephemeralPort();
    if (!portsHandedOut.has(port)) {
      portsHandedOut.add(port);
      return port;
    }
  }
  throw new Error(`no unused loopback port in ${FREE_PORT_ATTEMPTS} attempts`);
}

function ephemeralPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export interface TestClusterOptions {
  nodes?: number;
  shards?: number;
  replicationFactor?: number;
  snapshotEveryEntries?: number;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  extraEnv?: Record<string, string>;
  /** Extra node flags for every tallyd (e.g. --cpu-prof for profiling). */
  nodeArgs?: string[];
  /** Node `id`'s host and zone (several tallyd per host); default: host unset (its id), zone z<id>. */
  nodeLayout?: (id: number) => { host?: string; zone?: string };
  /** cluster.metaReplicas (default: 3, or 1 below 3 nodes). */
  metaReplicas?: number;
  /** cluster.yaml `placement:` settings (the placement controller). */
  placement?: Record<string, number | boolean>;
  /** Give every node an operations HTTP address (`metrics:`): /metrics, /livez, /readyz. */
  metrics?: boolean;
  /** More cluster.yaml `cluster:` settings (e.g. sessionsPerCallerMax). */
  cluster?: Record<string, number>;
  /** cluster.yaml `limits:` settings, over the test default (requestTimeoutMs 4000). */
  limits?: Record<string, number>;
  /** TLS: a fresh CA and node and client certificates under <dir>/certs (openssl), and a tls section. */
  tls?: { clientAuth?: "require" | "none"; reloadSeconds?: number };
  /**
   * Access control: an auth section with these tokens (their SHA-256 goes into cluster.yaml) and
   * certificate identities, and a fresh internal token in <dir>/internal.token unless
   * `internalToken` is false (with tls clientAuth require, node certificates identify the nodes).
   * `readyToken` (needs admin) is what waitReady uses; without it, the tls client certificate.
   */
  auth?: {
    tokens: TestToken[];
    certificates?: Array<Omit<TestToken, "token"> & { identity: string }>;
    readyToken?: string;
    internalToken?: boolean;
  };
  /**
   * Called when a node's process exits without the harness having stopped or killed it (a crash, a
   * fatal storage error, a failed assertion, an OOM, a kill from outside). Default: the exit and the
   * tail of the node's output go to stderr at once, so a run that fails later says why.
   */
  onUnexpectedExit?: (exit: NodeExit) => void;
}

/** How a node's process ended, with the tail of what it wrote. */
export interface NodeExit {
  nodeId: number;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** False: the harness did not ask for it (kill, stop, destroy). */
  expected: boolean;
  /** Milliseconds from the process's start to its exit. */
  uptimeMs: number;
  /** The last OUTPUT_TAIL_BYTES of its stdout and stderr, interleaved as they arrived. */
  outputTail: string;
}

/** Per node, this much of its latest stdout+stderr is kept (the whole of it is not: benches run long). */
export const OUTPUT_TAIL_BYTES = 64 * 1024;

export function describeExit(exit: NodeExit): string {
  const how = exit.signal !== null ? `signal ${exit.signal}` : `exit code ${exit.code}`;
  const tail = exit.outputTail.trimEnd();
  return `tallyd node ${exit.nodeId} (pid ${exit.pid ?? "?"}) exited ${exit.expected ? "as asked" : "unexpectedly"}: ${how} after ${(exit.uptimeMs / 1000).toFixed(1)} s; ${
    tail === "" ? "no output" : `last output:\n${tail}`
  }`;
}

export interface TestToken {
  name: string;
  token: string;
  grants: Array<{ prefix: string; roles: Array<"read" | "write" | "admin"> }>;
}

export class TestCluster {
  readonly dir: string;
  readonly configPath: string;
  config!: ClusterConfig;
  readonly processes = new Map<number, ChildProcess>();
  readonly output = new Map<number, string[]>();
  /** The latest exit of each node's process. */
  readonly exits = new Map<number, NodeExit>();
  /** Every exit the harness did not ask for, in order. */
  readonly unexpectedExits: NodeExit[] = [];
  /** Processes the harness is stopping or killing: their exit is expected. */
  private readonly stopping = new WeakSet<ChildProcess>();

  private constructor(private readonly options: TestClusterOptions) {
    this.dir = mkdtempSync(join(tmpdir(), "tally-it-"));
    this.configPath = join(this.dir, "cluster.yaml");
  }

  static async start(options: TestClusterOptions = {}): Promise<TestCluster> {
    const cluster = await TestCluster.prepare(options);
    try {
      await cluster.startAll();
    } catch (error) {
      // The caller never gets the cluster to destroy: without this its nodes outlive the failed start.
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  /** Writes cluster.yaml (fresh ports, data dirs n1.. beside it) and starts nothing: for tests that fill the data dirs first (restore). */
  static async prepare(options: TestClusterOptions = {}): Promise<TestCluster> {
    const cluster = new TestCluster(options);
    await cluster.writeConfig();
    return cluster;
  }

  /** Starts every node of the config and waits until every shard has an agreed leader. */
  async startAll(timeoutMs?: number): Promise<void> {
    for (const node of this.config.nodes) this.startNode(node.id);
    await this.waitReady(timeoutMs);
  }

  private async writeConfig(): Promise<void> {
    const count = this.options.nodes ?? 3;
    const nodes = [];
    for (let id = 1; id <= count; id++) {
      const layout = this.options.nodeLayout?.(id) ?? {};
      nodes.push({
        id,
        client: `127.0.0.1:${await freePort()}`,
        peer: `127.0.0.1:${await freePort()}`,
        zone: layout.zone ?? `z${id}`,
        ...(layout.host !== undefined ? { host: layout.host } : {}),
        dataDir: `n${id}`,
      });
      if (this.options.metrics) Object.assign(nodes[nodes.length - 1]!, { metrics: `127.0.0.1:${await freePort()}` });
    }
    const document = {
      cluster: {
        name: "test",
        replicationFactor: this.options.replicationFactor ?? Math.min(3, count),
        shards: this.options.shards ?? 2,
        tickMs: this.options.tickMs ?? 20,
        electionTicks: this.options.electionTicks ?? 25,
        heartbeatTicks: this.options.heartbeatTicks ?? 5,
        leaseDriftTicks: 5,
        snapshotEveryEntries: this.options.snapshotEveryEntries ?? 10_000,
        ...(this.options.metaReplicas !== undefined ? { metaReplicas: this.options.metaReplicas } : {}),
        ...this.options.cluster,
      },
      limits: { requestTimeoutMs: 4000, ...this.options.limits },
      // Tests that do not exercise the placement controller keep their leaders where elections put them.
      placement: this.options.placement ?? { autoRebalance: false },
      nodes,
    };
    if (this.options.tls !== undefined) {
      const certs = join(this.dir, "certs");
      const ca = createCa(certs);
      issueClientCertificate(ca, certs);
      for (const node of nodes) {
        issueNodeCertificate(ca, certs, node.id);
        Object.assign(node, { cert: `certs/n${node.id}.pem`, key: `certs/n${node.id}-key.pem` });
      }
      const { clientAuth = "require", reloadSeconds = 30 } = this.options.tls;
      Object.assign(document, {
        tls: { ca: "certs/ca.pem", clientAuth, client: { cert: "certs/client.pem", key: "certs/client-key.pem" }, reloadSeconds },
      });
    }
    if (this.options.auth !== undefined) {
      const { tokens, certificates = [], internalToken = true } = this.options.auth;
      const auth: Record<string, unknown> = {
        tokens: tokens.map(({ name, token, grants }) => ({ name, sha256: tokenSha256Hex(token), grants })),
        certificates,
      };
      if (internalToken) {
        this.internalToken = generateToken();
        writeFileSync(join(this.dir, "internal.token"), `${this.internalToken}\n`, { mode: 0o600 });
        auth.internalTokenFile = "internal.token";
      }
      Object.assign(document, { auth });
    }
    this.document = document;
    writeFileSync(this.configPath, stringify(document));
    this.config = loadClusterConfig(this.configPath);
  }

  /** With the auth option: the raw internal token the nodes present to each other. */
  internalToken: string | undefined;

  private document: { nodes: Array<Record<string, unknown>> } & Record<string, unknown> = { nodes: [] };

  /**
   * Adds a node to cluster.yaml (as an operator growing the cluster would) and returns its id; the
   * running nodes keep their config and learn of it from the partition map once it heartbeats.
   */
  async addNode(zone: string): Promise<number> {
    const id = Math.max(...this.config.nodes.map((n) => n.id)) + 1;
    this.document.nodes.push({
      id,
      client: `127.0.0.1:${await freePort()}`,
      peer: `127.0.0.1:${await freePort()}`,
      zone,
      dataDir: `n${id}`,
    });
    if (this.options.metrics)
      Object.assign(this.document.nodes[this.document.nodes.length - 1]!, { metrics: `127.0.0.1:${await freePort()}` });
    writeFileSync(this.configPath, stringify(this.document));
    this.config = loadClusterConfig(this.configPath);
    return id;
  }

  /** The base URL of a node's operations HTTP server (needs the `metrics` option). */
  opsUrl(id: number): string {
    const address = this.config.nodes.find((n) => n.id === id)?.metrics;
    if (address === undefined) throw new Error(`node ${id} has no metrics address (start the cluster with { metrics: true })`);
    return `http://${address}`;
  }

  /** One unlabelled-or-first-labelled sample of a metric from node `id`'s /metrics (needs the `metrics` option). */
  async metric(id: number, name: string): Promise<number> {
    const text = await (await fetch(`${this.opsUrl(id)}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const row = text.split("\n").find((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));
    if (row === undefined) throw new Error(`no ${name} in node ${id}'s metrics`);
    return Number(row.slice(row.lastIndexOf(" ") + 1));
  }

  endpoints(): string[] {
    return this.config.nodes.map((n) => n.client);
  }

  /** Starts node `id`; with `expectExit`, a test that wants the node to refuse to start: its exit is not reported. */
  startNode(id: number, options: { expectExit?: boolean } = {}): ChildProcess {
    if (this.processes.has(id)) throw new Error(`node ${id} is already running`);
    const child = spawn(
      process.execPath,
      [...(this.options.nodeArgs ?? []), join(root, "bin", "tallyd.js"), "--config", this.configPath, "--node", String(id)],
      {
        stdio: ["ignore", "pipe", "pipe"],
        env: withMallocTunables({
          ...process.env,
          TALLY_LOG_LEVEL: process.env.TALLY_LOG_LEVEL ?? "warn",
          TALLY_EXIT_WITH_PARENT: "1",
          ...this.options.extraEnv,
        }),
      },
    );
    const chunks = this.output.get(id) ?? [];
    this.output.set(id, chunks);
    const keep = (chunk: Buffer) => keepTail(chunks, chunk.toString(), OUTPUT_TAIL_BYTES);
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    const startedMs = Date.now();
    // "close", not "exit": by then both pipes are drained, so the tail holds the process's last words.
    child.on("close", (code, signal) => {
      const exit: NodeExit = {
        nodeId: id,
        pid: child.pid,
        code,
        signal,
        expected: this.stopping.has(child),
        uptimeMs: Date.now() - startedMs,
        outputTail: chunks.join(""),
      };
      this.exits.set(id, exit);
      if (exit.expected) return;
      this.unexpectedExits.push(exit);
      if (this.options.onUnexpectedExit !== undefined) this.options.onUnexpectedExit(exit);
      else process.stderr.write(`[TestCluster ${this.dir}] ${describeExit(exit)}\n`);
    });
    child.on("exit", () => {
      if (this.processes.get(id) === child) this.processes.delete(id);
    });
    this.processes.set(id, child);
    if (options.expectExit === true) this.stopping.add(child);
    return child;
  }

  /** kill -9: no flush, no goodbye. */
  async kill(id: number): Promise<void> {
    const child = this.processes.get(id);
    if (!child) return;
    const exited = new Promise((r) => child.once("exit", r));
    this.stopping.add(child);
    child.kill("SIGKILL");
    await withDeadline(exited, 5000, `node ${id} did not die after SIGKILL`);
    this.processes.delete(id);
  }

  /** SIGTERM and wait for the exit code. */
  async stop(id: number, timeoutMs = 10_000): Promise<number | null> {
    const child = this.processes.get(id);
    if (!child) return null;
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    this.stopping.add(child);
    child.kill("SIGTERM");
    try {
      return await withDeadline(exited, timeoutMs, `node ${id} did not stop within ${timeoutMs} ms of SIGTERM`);
    } finally {
      if (this.processes.get(id) === child) {
        child.kill("SIGKILL");
        this.processes.delete(id);
      }
    }
  }

  async waitReady(timeoutMs = 30_000): Promise<Map<number, string>> {
    const subset = { ...this.config, nodes: this.config.nodes.filter((n) => this.processes.has(n.id)) };
    const unexpectedBefore = this.unexpectedExits.length;
    try {
      const { leaders } = await waitForClusterReady(
        { ...subset, cluster: { ...subset.cluster, replicationFactor: Math.min(subset.cluster.replicationFactor, subset.nodes.length) } },
        timeoutMs,
        this.options.auth?.readyToken,
      );
      return leaders;
    } catch (error) {
      const died = this.unexpectedExits.slice(unexpectedBefore);
      if (died.length === 0) throw error;
      throw new Error(`${(error as Error).message}\n${died.map(describeExit).join("\n")}`, { cause: error });
    }
  }

  /** Throws, with each node's exit and last output, if any node's process exited by itself. */
  assertNoUnexpectedExit(): void {
    if (this.unexpectedExits.length > 0) throw new Error(this.unexpectedExits.map(describeExit).join("\n"));
  }

  logs(id: number): string {
    return (this.output.get(id) ?? []).join("");
  }

  async destroy(): Promise<void> {
    for (const child of this.processes.values()) {
      this.stopping.add(child);
      child.kill("SIGKILL");
    }
    await Promise.all(
      [...this.processes.values()].map((child) =>
        withDeadline(new Promise((r) => child.once("exit", r)), 5000, "kill").catch(() => undefined),
      ),
    );
    this.processes.clear();
    // TALLY_TEST_KEEP_DIR=1 keeps the data directories and cluster.yaml for a post-mortem.
    if (process.env.TALLY_TEST_KEEP_DIR === "1") process.stderr.write(`[TestCluster] kept ${this.dir}\n`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Appends text to chunks and drops the oldest text beyond maxBytes (UTF-16 units; near enough for logs). */
export function keepTail(chunks: string[], text: string, maxBytes: number): void {
  chunks.push(text);
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  while (total > maxBytes && chunks.length > 0) {
    const excess = total - maxBytes;
    const first = chunks[0]!;
    if (first.length <= excess) {
      chunks.shift();
      total -= first.length;
    } else {
      chunks[0] = first.slice(excess);
      total -= excess;
    }
  }
}

export async function withDeadline<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Polls `fn` every 100 ms until it returns a value (not undefined or false), or fails after
 * `timeoutMs` naming `what`, the probe's last error, and `lastSeen()` (the state it last saw).
 */
export async function eventually<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  what: string,
  lastSeen?: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value as T;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const seen = lastSeen === undefined ? "" : `\nlast seen: ${lastSeen()}`;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ""}${seen}`);
}
