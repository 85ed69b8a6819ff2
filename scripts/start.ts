/**
 * `npm start`: runs every node of cluster.yaml as a child process, waits until every shard has a
 * leader, prints `tally cluster ready`, and stops them all cleanly on Ctrl-C. Logs go to
 * data/logs/n<id>.log. A second `npm start` reuses the data directories: counts survive.
 * `npm start -- --tls` runs cluster-tls.yaml instead (TLS for clients, mTLS between nodes),
 * generating it and a dev CA under certs/ first if it is missing (scripts/gen-certs.ts).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadClusterConfig } from "../src/server/config.js";
import { waitForClusterReady } from "./cluster-ready.js";
import { generateClusterCertificates } from "./gen-certs.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const tlsMode = process.argv.includes("--tls");
const configArgument = process.argv.slice(2).find((argument) => argument !== "--tls");
const configPath = resolve(configArgument ?? process.env.TALLY_CONFIG ?? join(root, tlsMode ? "cluster-tls.yaml" : "cluster.yaml"));
if (tlsMode && configArgument === undefined && !existsSync(configPath)) {
  generateClusterCertificates(join(root, "cluster.yaml"), join(root, "certs"), configPath);
  process.stdout.write(`generated a dev CA and node certificates in ${join(root, "certs")} and ${configPath}\n`);
}
const config = loadClusterConfig(configPath);
const tallyctlTls = config.tls
  ? ` --ca ${relative(process.cwd(), config.tls.ca)}${config.tls.client ? ` --cert ${relative(process.cwd(), config.tls.client.cert)} --key ${relative(process.cwd(), config.tls.client.key)}` : ""}`
  : "";
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
  // With an auth section, the readiness wait needs an admin token: $TALLY_TOKEN.
  const summary = await waitForClusterReady(config, 60_000, process.env.TALLY_TOKEN || undefined);
  const endpoints = config.nodes.map((n) => n.client).join(",");
  process.stdout.write(
    [
      `tally cluster ready: ${config.nodes.length} nodes, ${summary.shards} shards, every shard has a leader`,
      ...config.nodes.map((n) => `  node ${n.id}  clients ${n.client}  peers ${n.peer}  zone ${n.zone}  data ${n.dataDir}`),
      ...config.nodes.filter((n) => n.metrics !== undefined).map((n) => `  node ${n.id}  metrics http://${n.metrics}/metrics  health http://${n.metrics}/livez http://${n.metrics}/readyz`),
      `  logs: ${logDir}`,
      "",
      "Try it (in another terminal):",
      `  npx tallyctl add page:home 5 --endpoints ${endpoints}${tallyctlTls}`,
      `  npx tallyctl get page:home${tallyctlTls}`,
      `  npx tallyctl status${tallyctlTls}`,
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
