/**
 * `npm start`: runs every node of cluster.yaml as a child process, waits until every shard has a
 * leader, prints `tally cluster ready`, and stops them all cleanly on Ctrl-C. Logs go to
 * data/logs/n<id>.log. A second `npm start` reuses the data directories: counts survive.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadClusterConfig } from "../src/server/config.js";
import { waitForClusterReady } from "./cluster-ready.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const configPath = resolve(process.argv[2] ?? process.env.TALLY_CONFIG ?? join(root, "cluster.yaml"));
const config = loadClusterConfig(configPath);
const logDir = join(dirname(configPath), "data", "logs");
mkdirSync(logDir, { recursive: true });

const children = new Map<number, ChildProcess>();
let stopping = false;

for (const node of config.nodes) {
  const logFile = createWriteStream(join(logDir, `n${node.id}.log`), { flags: "a" });
  const child = spawn(process.execPath, [join(root, "bin", "tallyd.js"), "--config", configPath, "--node", String(node.id)], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, TALLY_LOG_LEVEL: process.env.TALLY_LOG_LEVEL ?? "info", TALLY_EXIT_WITH_PARENT: "1" },
  });
  child.stdout!.pipe(logFile);
  child.stderr!.on("data", (chunk: Buffer) => {
    logFile.write(chunk);
    process.stderr.write(`[n${node.id}] ${chunk}`);
  });
  child.on("exit", (code, signal) => {
    children.delete(node.id);
    if (!stopping) {
      process.stderr.write(`node ${node.id} exited (${signal ?? `code ${code}`}); see ${join(logDir, `n${node.id}.log`)}\n`);
      void stopAll(1);
    } else if (children.size === 0) {
      process.exit(process.exitCode ?? 0);
    }
  });
  children.set(node.id, child);
}

async function stopAll(exitCode: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.exitCode = exitCode;
  process.stdout.write("\nstopping tally cluster...\n");
  for (const child of children.values()) child.kill("SIGTERM");
  setTimeout(() => {
    for (const child of children.values()) child.kill("SIGKILL");
    process.exit(exitCode || 1);
  }, 10_000).unref();
  if (children.size === 0) process.exit(exitCode);
}

process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));

try {
  const summary = await waitForClusterReady(config, 60_000);
  const endpoints = config.nodes.map((n) => n.client).join(",");
  process.stdout.write(
    [
      `tally cluster ready: ${config.nodes.length} nodes, ${summary.shards} shards, every shard has a leader`,
      ...config.nodes.map((n) => `  node ${n.id}  clients ${n.client}  peers ${n.peer}  zone ${n.zone}  data ${n.dataDir}`),
      `  logs: ${logDir}`,
      "",
      "Try it (in another terminal):",
      `  npx tallyctl add page:home 5 --endpoints ${endpoints}`,
      `  npx tallyctl get page:home`,
      `  npx tallyctl status`,
      `  npx tsx scripts/example.ts`,
      "",
      "Ctrl-C stops the cluster; the next `npm start` keeps the counts.",
      "",
    ].join("\n"),
  );
} catch (error) {
  process.stderr.write(`tally cluster did not become ready: ${(error as Error).message}\n`);
  await stopAll(1);
}
