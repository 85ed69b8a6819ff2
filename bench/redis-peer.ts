/**
 * Peer servers for the side-by-side benchmarks (bench/peers.ts, bench/kinds-api.ts): each started
 * on loopback with a private temp data dir, tracked by PID and killed on every way out (exit,
 * SIGINT/SIGTERM, and a watchdog shell for when this process is SIGKILLed); Redis 7 from Debian
 * (scripts/peers.sh installs it) talked to with ioredis.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { Redis } from "ioredis";
import { freePort } from "../test/support/cluster.js";
import { closedLoop, type LoadResult } from "./lib.js";

const children: ChildProcess[] = [];
const tempDirs: string[] = [];

/** Kills (SIGKILL, by PID) every server this process started that is still running. */
export function killChildren(): void {
  for (const child of children) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}
process.on("exit", () => {
  killChildren();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130));

/** A private temp dir, removed when this process exits. */
export function peerTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export function spawnServer(command: string, argv: string[], logFile: string, dataDir: string): ChildProcess {
  const log = openSync(logFile, "a");
  const child = spawn(command, argv, { stdio: ["ignore", log, log] });
  children.push(child);
  // Exit handlers do not run when this process is SIGKILLed (tsx escalates to that when a signal
  // is not acknowledged in time): a watchdog kills the server by PID once this process is gone.
  if (child.pid !== undefined) {
    const watchdog = spawn(
      "sh",
      ["-c", `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 ${child.pid} 2>/dev/null; sleep 1; rm -rf '${dataDir}'`],
      { stdio: "ignore", detached: true },
    );
    watchdog.unref();
    children.push(watchdog);
  }
  return child;
}

/** Retries `attempt` every 100 ms until it resolves, or throws after deadlineMs. */
export async function until<T>(what: string, deadlineMs: number, attempt: () => Promise<T>): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      return await attempt();
    } catch (error) {
      last = error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${what} not ready after ${deadlineMs} ms: ${(last as Error)?.message ?? last}`);
}

/** The binaries among `binaries` not on PATH. */
export function missingBinaries(binaries: string[]): string[] {
  return binaries.filter((binary) => spawnSync("sh", ["-c", `command -v ${binary}`]).status !== 0);
}

export function version(command: string): string {
  return (spawnSync(command, ["--version"], { encoding: "utf8" }).stdout ?? "").split("\n")[0]!.trim();
}

/** A 3-member etcd cluster (default settings: WAL fsync on every commit); returns its client URLs. */
export async function startEtcd(members = 3): Promise<string[]> {
  const dir = peerTempDir("tally-peer-etcd-");
  const nodes = [];
  for (let i = 1; i <= members; i++)
    nodes.push({ name: `e${i}`, client: `http://127.0.0.1:${await freePort()}`, peer: `http://127.0.0.1:${await freePort()}` });
  const initialCluster = nodes.map((n) => `${n.name}=${n.peer}`).join(",");
  for (const node of nodes) {
    spawnServer(
      "etcd",
      [
        "--name",
        node.name,
        "--data-dir",
        join(dir, node.name),
        "--listen-client-urls",
        node.client,
        "--advertise-client-urls",
        node.client,
        "--listen-peer-urls",
        node.peer,
        "--initial-advertise-peer-urls",
        node.peer,
        "--initial-cluster",
        initialCluster,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        `tally-bench-${process.pid}`,
        "--logger",
        "zap",
        "--log-level",
        "error",
      ],
      join(dir, `${node.name}.log`),
      dir,
    );
  }
  const hosts = nodes.map((n) => n.client);
  const probe = new Etcd3({ hosts });
  try {
    await until("etcd", 30_000, async () => {
      await probe.put("probe").value("1").exec();
      return probe.get("probe").string();
    });
  } finally {
    probe.close();
  }
  return hosts;
}

export type RedisFsync = "always" | "everysec";

export interface RedisPeer {
  port: number;
  fsync: RedisFsync;
  /** One new connection (the caller disconnects it). */
  client: () => Redis;
}

/** One redis-server: appendonly yes with the given appendfsync, RDB snapshots off (the AOF is the only persistence). */
export async function startRedis(fsync: RedisFsync): Promise<RedisPeer> {
  const dir = peerTempDir(`tally-peer-redis-${fsync}-`);
  const port = await freePort();
  // No config file: only these settings.
  spawnServer(
    "redis-server",
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--appendonly",
      "yes",
      "--appendfsync",
      fsync,
      "--save",
      "",
      "--daemonize",
      "no",
      "--logfile",
      "",
    ],
    join(dir, "redis.log"),
    dir,
  );
  const client = () =>
    new Redis({ host: "127.0.0.1", port, lazyConnect: false, maxRetriesPerRequest: 2, connectTimeout: 5000, commandTimeout: 30_000 });
  const probe = client();
  try {
    await until(`redis (${fsync})`, 15_000, () => probe.ping());
  } finally {
    probe.disconnect();
  }
  return { port, fsync, client };
}

/**
 * A closed loop against one Redis with one connection per worker, so each operation is one
 * unpipelined round trip (the same concurrency as the tally side it is compared with).
 */
export async function redisClosedLoop(
  peer: RedisPeer,
  options: {
    concurrency: number;
    seconds: number;
    warmupSeconds?: number;
    operation: (redis: Redis, worker: number, i: number) => Promise<number>;
  },
): Promise<LoadResult & { fsync: RedisFsync }> {
  const connections = Array.from({ length: options.concurrency }, () => peer.client());
  try {
    await Promise.all(connections.map((c) => c.ping()));
    return {
      fsync: peer.fsync,
      ...(await closedLoop({
        concurrency: options.concurrency,
        seconds: options.seconds,
        warmupSeconds: options.warmupSeconds,
        operation: (w, i) => options.operation(connections[w]!, w, i),
      })),
    };
  } finally {
    for (const c of connections) c.disconnect();
  }
}

/** Parses --redis-fsync (everysec and/or always, comma-separated); exits 2 on anything else. */
export function parseRedisFsyncs(program: string, value: string): RedisFsync[] {
  const fsyncs = value.split(",");
  for (const fsync of fsyncs) {
    if (fsync !== "everysec" && fsync !== "always") {
      console.error(`${program}: --redis-fsync takes everysec and/or always (comma-separated), not ${JSON.stringify(fsync)}`);
      process.exit(2);
    }
  }
  return fsyncs as RedisFsync[];
}

/** Exits 1 with a clear message when redis-server is missing. */
export function requireRedis(program: string): void {
  if (missingBinaries(["redis-server"]).length > 0) {
    console.error(
      `${program}: redis-server not installed; run scripts/peers.sh (Debian: redis-server), or pass --no-redis to measure tally alone.`,
    );
    process.exit(1);
  }
}

export const redisSetting = (fsync: RedisFsync) =>
  `redis-server, appendonly yes, appendfsync ${fsync}, RDB off, one node, one connection per operation in flight (unpipelined)`;
