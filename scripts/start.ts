/**
 * `npm start [-- FILE] [--tls] [--restart-after SECONDS]`: runs every node of cluster.yaml (or
 * FILE, or $TALLY_CONFIG) as a child process, waits until every shard has a leader, prints
 * `tally cluster ready` with commands that reach this very cluster, and stops every node cleanly
 * on Ctrl-C (SIGTERM to each by PID; SIGKILL after 10 s). Logs go to data/logs/n<id>.log beside
 * the config file. A second `npm start` reuses the data directories: counts survive.
 * `npm start -- --tls` runs cluster-tls.yaml instead (TLS for clients, mTLS between nodes),
 * generating it and a dev CA under certs/ first if it is missing (scripts/gen-certs.ts).
 *
 * Failover on a laptop: once the cluster is ready, a node that exits (a crash, `kill <pid>`, a
 * fatal storage error) is reported and the other nodes keep serving, so `tallyctl status` shows
 * its shards electing new leaders. It stays down until restarted, either by a command on stdin
 * (one a line: `kill N` sends SIGKILL, `stop N` SIGTERM, `restart N`, `nodes`, `help`), or, with
 * --restart-after SECONDS, automatically that long after it exited, unless it exited within
 * CRASH_LOOP_UPTIME_MS of its start (then its log says why; restarting it again would loop) or was
 * stopped with `stop N`. Before the cluster is ready, any node's exit stops them all: it is a
 * configuration or address problem, not a failover. Stdin is not read when it is not readable (a
 * background job), and then only --restart-after and Ctrl-C apply.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, type WriteStream } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ensureBundles } from "../bin/bundle.js";
import { loadClusterConfig, type ClusterConfig, type NodeConfig } from "../src/server/config/config.js";
import { withMallocTunables } from "../src/util/malloc-tunables.js";
import { waitForClusterReady } from "./cluster-ready.js";
import { generateClusterCertificates } from "./gen-certs.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** A node that exits sooner than this after its start is not restarted automatically. */
const CRASH_LOOP_UPTIME_MS = 10_000;
const STOP_KILL_AFTER_MS = 10_000;
const READY_TIMEOUT_MS = 60_000;

interface Arguments {
  configPath: string;
  tls: boolean;
  restartAfterMs?: number;
}

function usage(problem: string): never {
  process.stderr.write(`npm start: ${problem}\nusage: npm start [-- [FILE] [--tls] [--restart-after SECONDS]]\n`);
  process.exit(2);
}

function parseArguments(argv: string[]): Arguments {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { tls: { type: "boolean" }, "restart-after": { type: "string" } } });
  } catch (error) {
    usage((error as Error).message);
  }
  if (parsed.positionals.length > 1) usage(`one cluster file at most, got ${parsed.positionals.join(" ")}`);
  const tls = parsed.values.tls === true;
  const file = parsed.positionals[0];
  const configPath = resolve(file ?? process.env.TALLY_CONFIG ?? join(root, tls ? "cluster-tls.yaml" : "cluster.yaml"));
  const result: Arguments = { configPath, tls };
  const restartAfter = parsed.values["restart-after"];
  if (restartAfter !== undefined) {
    const seconds = Number(restartAfter);
    if (!(Number.isFinite(seconds) && seconds >= 0))
      usage(`--restart-after must be a number of seconds, got ${JSON.stringify(restartAfter)}`);
    result.restartAfterMs = seconds * 1000;
  }
  if (tls && file === undefined && !existsSync(configPath)) {
    generateClusterCertificates(join(root, "cluster.yaml"), join(root, "certs"), configPath);
    process.stdout.write(`generated a dev CA and node certificates in ${join(root, "certs")} and ${configPath}\n`);
  }
  return result;
}

const shellWord = (text: string): string => (/^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`);

/**
 * The commands the banner suggests, each reaching this cluster: tallyctl gets --config unless the
 * file is ./cluster.yaml (its default), so endpoints and TLS come from the file that was started.
 */
function tryItLines(config: ClusterConfig, configPath: string, cwd: string): string[] {
  const isDefault = resolve(cwd, "cluster.yaml") === configPath;
  const shown = relative(cwd, configPath).startsWith("..") ? configPath : relative(cwd, configPath);
  const tallyctl = `npx tallyctl${isDefault ? "" : ` --config ${shellWord(shown)}`}`;
  const lines = [`${tallyctl} add page:home 5`, `${tallyctl} get page:home`, `${tallyctl} status`, `${tallyctl} endpoint health`];
  // scripts/example.ts reads $TALLY_ENDPOINTS or ./cluster.yaml, in plaintext and without a token.
  if (config.tls === undefined && config.auth === undefined) {
    lines.push(`${isDefault ? "" : `TALLY_ENDPOINTS=${config.nodes.map((n) => n.client).join(",")} `}npx tsx scripts/example.ts`);
  }
  return lines;
}

interface Member {
  node: NodeConfig;
  child?: ChildProcess;
  startedAt: number;
  log: WriteStream;
  /** `stop N` or `restart N` asked for this exit: no automatic restart; restart when `restartAfterExit`. */
  stopRequested: boolean;
  restartAfterExit: boolean;
  restartTimer?: NodeJS.Timeout;
}

class Supervisor {
  private readonly members = new Map<number, Member>();
  private ready = false;
  private stopping = false;

  constructor(
    config: ClusterConfig,
    private readonly configPath: string,
    private readonly logDir: string,
    private readonly restartAfterMs: number | undefined,
  ) {
    for (const node of config.nodes) {
      this.members.set(node.id, {
        node,
        startedAt: 0,
        log: createWriteStream(this.logPath(node.id), { flags: "a" }),
        stopRequested: false,
        restartAfterExit: false,
      });
    }
  }

  logPath(id: number): string {
    return join(this.logDir, `n${id}.log`);
  }

  startAll(): void {
    for (const id of this.members.keys()) this.start(id);
  }

  pid(id: number): number | undefined {
    return this.members.get(id)?.child?.pid;
  }

  markReady(): void {
    this.ready = true;
  }

  private start(id: number): void {
    const member = this.members.get(id)!;
    clearTimeout(member.restartTimer);
    member.stopRequested = false;
    member.restartAfterExit = false;
    member.startedAt = Date.now();
    const child = spawn(process.execPath, [join(root, "bin", "tallyd.js"), "--config", this.configPath, "--node", String(id)], {
      stdio: ["ignore", "pipe", "pipe"],
      env: withMallocTunables({ ...process.env, TALLY_LOG_LEVEL: process.env.TALLY_LOG_LEVEL ?? "info", TALLY_EXIT_WITH_PARENT: "1" }),
    });
    member.child = child;
    child.stdout!.pipe(member.log, { end: false });
    child.stderr!.on("data", (chunk: Buffer) => {
      member.log.write(chunk);
      process.stderr.write(`[n${id}] ${chunk}`);
    });
    child.on("exit", (code, signal) => this.exited(member, child, code, signal));
  }

  private exited(member: Member, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (member.child !== child) return;
    member.child = undefined;
    const id = member.node.id;
    if (this.stopping) {
      if (this.running().length === 0) process.exit(process.exitCode ?? 0);
      return;
    }
    const uptimeMs = Date.now() - member.startedAt;
    const how = `${signal ?? `code ${code}`} after ${(uptimeMs / 1000).toFixed(1)} s`;
    if (!this.ready) {
      process.stderr.write(`node ${id} exited (${how}) before the cluster was ready; see ${this.logPath(id)}\n`);
      void this.stopAll(1);
      return;
    }
    if (member.restartAfterExit) {
      this.start(id);
      process.stdout.write(`node ${id} restarted (pid ${this.pid(id)}); it catches up from the other replicas\n`);
      return;
    }
    const others = this.running().length;
    const lines = [
      `node ${id} (pid ${child.pid}) stopped: ${how}. ${others} of ${this.members.size} nodes still running; its log: ${this.logPath(id)}`,
    ];
    if (member.stopRequested) {
      lines.push(`  type \`restart ${id}\` to start it again`);
    } else if (this.restartAfterMs !== undefined && uptimeMs >= CRASH_LOOP_UPTIME_MS) {
      lines.push(
        `  restarting it in ${this.restartAfterMs / 1000} s (--restart-after); \`tallyctl status\` shows its shards' new leaders meanwhile`,
      );
      member.restartTimer = setTimeout(() => this.restart(id), this.restartAfterMs);
    } else {
      const why =
        this.restartAfterMs !== undefined ? ` (not restarted automatically: it ran less than ${CRASH_LOOP_UPTIME_MS / 1000} s)` : "";
      lines.push(`  \`tallyctl status\` shows its shards' new leaders; type \`restart ${id}\` to start it again${why}`);
    }
    process.stdout.write(`${lines.join("\n")}\n`);
  }

  running(): Member[] {
    return [...this.members.values()].filter((member) => member.child !== undefined);
  }

  /** Starts node `id`, first stopping it (SIGTERM) if it runs. */
  restart(id: number): void {
    const member = this.members.get(id)!;
    if (this.stopping) return;
    if (member.child === undefined) {
      this.start(id);
      process.stdout.write(`node ${id} restarted (pid ${this.pid(id)}); it catches up from the other replicas\n`);
      return;
    }
    member.restartAfterExit = true;
    member.child.kill("SIGTERM");
  }

  signal(id: number, signal: "SIGTERM" | "SIGKILL"): void {
    const member = this.members.get(id)!;
    if (member.child === undefined) {
      process.stdout.write(`node ${id} is not running\n`);
      return;
    }
    clearTimeout(member.restartTimer);
    member.stopRequested = signal === "SIGTERM";
    member.child.kill(signal);
  }

  describe(): string {
    return [...this.members.values()]
      .map((m) => `  node ${m.node.id}  ${m.child ? `running, pid ${m.child.pid}` : "stopped"}  clients ${m.node.client}`)
      .join("\n");
  }

  has(id: number): boolean {
    return this.members.has(id);
  }

  async stopAll(exitCode: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    process.exitCode = exitCode;
    process.stdout.write("\nstopping tally cluster...\n");
    for (const member of this.members.values()) clearTimeout(member.restartTimer);
    const running = this.running();
    for (const member of running) member.child!.kill("SIGTERM");
    setTimeout(() => {
      for (const member of this.running()) member.child!.kill("SIGKILL");
      process.exit(exitCode || 1);
    }, STOP_KILL_AFTER_MS).unref();
    if (running.length === 0) process.exit(exitCode);
  }
}

const COMMANDS_HELP = "commands: kill N (SIGKILL node N), stop N (SIGTERM), restart N, nodes, help; Ctrl-C stops the cluster";

/** One line typed on stdin. */
function command(supervisor: Supervisor, line: string): void {
  const [verb, argument, extra] = line.trim().split(/\s+/);
  if (verb === undefined || verb === "") return;
  if (verb === "help") return void process.stdout.write(`${COMMANDS_HELP}\n`);
  if (verb === "nodes") return void process.stdout.write(`${supervisor.describe()}\n`);
  if (verb !== "kill" && verb !== "stop" && verb !== "restart")
    return void process.stdout.write(`unknown command ${JSON.stringify(verb)}; ${COMMANDS_HELP}\n`);
  const id = Number(argument?.replace(/^n/, ""));
  if (extra !== undefined || !Number.isSafeInteger(id) || !supervisor.has(id))
    return void process.stdout.write(
      `${verb} needs one node id of this cluster (${supervisor.describe().trim().split("\n").length} nodes: \`nodes\` lists them)\n`,
    );
  if (verb === "restart") supervisor.restart(id);
  else supervisor.signal(id, verb === "kill" ? "SIGKILL" : "SIGTERM");
}

function readCommands(supervisor: Supervisor): void {
  // A background job reading its terminal would be stopped by SIGTTIN; ignored, the read fails
  // instead and the interface closes: no commands, the cluster runs on.
  process.on("SIGTTIN", () => undefined);
  process.stdin.on("error", () => undefined);
  createInterface({ input: process.stdin, terminal: false }).on("line", (line) => command(supervisor, line));
}

function banner(config: ClusterConfig, configPath: string, logDir: string, supervisor: Supervisor, shards: number): string {
  return [
    `tally cluster ready: ${config.nodes.length} nodes, ${shards} shards, every shard has a leader`,
    ...config.nodes.map(
      (n) =>
        `  node ${n.id}  pid ${supervisor.pid(n.id)}  clients ${n.client}  peers ${n.peer}  zone ${n.zone}  host ${n.host}  data ${n.dataDir}`,
    ),
    ...config.nodes
      .filter((n) => n.metrics !== undefined)
      .map((n) => `  node ${n.id}  metrics http://${n.metrics}/metrics  health http://${n.metrics}/livez http://${n.metrics}/readyz`),
    `  logs: ${logDir}`,
    "",
    `Try it (in another terminal${config.auth === undefined ? "" : ", with $TALLY_TOKEN set to an admin token"}):`,
    ...tryItLines(config, configPath, process.cwd()).map((line) => `  ${line}`),
    "",
    `Failover: type \`kill 2\` here, watch \`tallyctl status\` elect new leaders, then \`restart 2\`. ${COMMANDS_HELP}.`,
    "The next `npm start` keeps the counts.",
    "",
  ].join("\n");
}

async function main(): Promise<void> {
  const args = parseArguments(process.argv.slice(2));
  const config = loadClusterConfig(args.configPath);
  const logDir = join(dirname(args.configPath), "data", "logs");
  mkdirSync(logDir, { recursive: true });
  ensureBundles(); // bin/tallyd.js runs dist/tallyd.mjs and never builds: rebuild it if src/ is newer
  const supervisor = new Supervisor(config, args.configPath, logDir, args.restartAfterMs);
  process.on("SIGINT", () => void supervisor.stopAll(0));
  process.on("SIGTERM", () => void supervisor.stopAll(0));
  supervisor.startAll();
  try {
    // With an auth section, the readiness wait needs an admin token: $TALLY_TOKEN.
    const summary = await waitForClusterReady(config, READY_TIMEOUT_MS, process.env.TALLY_TOKEN || undefined);
    supervisor.markReady();
    process.stdout.write(banner(config, args.configPath, logDir, supervisor, summary.shards));
    readCommands(supervisor);
  } catch (error) {
    process.stderr.write(`tally cluster did not become ready: ${(error as Error).message}\n`);
    await supervisor.stopAll(1);
  }
}

await main();
