/**
 * tallyd: `tallyd --config cluster.yaml --node 1` starts one node of the cluster; `tallyd --version`
 * prints the build. Logs are readable lines on a terminal and JSON lines otherwise
 * (TALLY_LOG_FORMAT=pretty|json forces one; src/server/ops/log-format.ts). Exit codes: 0 clean stop,
 * 1 runtime failure (storage corruption, fsync failure), 2 bad config or arguments, 3 cannot bind
 * an address or open the data directory. TALLY_CONFIG and TALLY_NODE_ID stand
 * in for the flags, and every setting of the file can also come from a TALLY_* variable
 * (docs/configuration.md): that is how the container image is configured.
 */
import { isIPv6 } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { Command, InvalidArgumentError as CommanderInvalidArgument, Option } from "commander";
import { ConfigError, findNode, listenAddress, loadClusterConfig, type ClusterConfig, type NodeConfig } from "./config/config.js";
import { TallyNode } from "./node.js";
import { createClientServer, prepareClientServices } from "./rpc/server.js";
import { RequestGuard } from "./rpc/request-guard.js";
import { tallyProto } from "../api/proto.js";
import { warmUpApplyPath } from "../shard/warm-up.js";
import { crc32c } from "../storage/crc32c.js";
import { clientPortCredentials, nodeCertificateProvider } from "./config/tls.js";
import { authorizerFor } from "./config/auth.js";
import { componentLogger, rootLogger, setLogDestination } from "../util/log.js";
import { buildInfo } from "../util/build-info.js";
import { chooseLogFormat, prettyDestination } from "./ops/log-format.js";
import { applyFaultSwitches, readFaultSwitches } from "./testing/fault-switches.js";
import { nodeMetrics } from "./ops/metrics.js";
import { EventLoopDelay } from "./ops/event-loop.js";
import { NodeHealth, startOpsServer, type OpsServer } from "./ops/ops-http.js";
import { EventualService } from "./eventual/service.js";

/** On SIGTERM, how long calls in flight may take to finish before open streams are cancelled. */
const STREAM_DRAIN_MS = 500;

const program = new Command()
  .name("tallyd")
  .description("tally node: hosts shard replicas of an exact, Raft-replicated counter cluster")
  .version(`tallyd ${buildInfo().version} (node ${buildInfo().nodeVersion})`, "-V, --version", "print the version and exit")
  .addOption(new Option("-c, --config <path>", "cluster.yaml (optional when TALLY_NODES gives the nodes)").env("TALLY_CONFIG"))
  .addOption(
    new Option("-n, --node <id>", "this node's id in the config")
      .env("TALLY_NODE_ID")
      .makeOptionMandatory()
      .argParser((value) => {
        const id = Number(value.replace(/^n/, ""));
        if (!Number.isSafeInteger(id) || id <= 0) throw new CommanderInvalidArgument(`node id must be a positive integer, got "${value}"`);
        return id;
      }),
  )
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));

program.parse();
const options = program.opts<{ config?: string; node: number }>();
// An empty TALLY_CONFIG (the image sets one) means no file: the settings come from TALLY_NODES etc.
if (options.config === "") delete options.config;
try {
  if (chooseLogFormat(process.env, process.stdout.isTTY === true) === "pretty")
    setLogDestination(prettyDestination({ colorize: process.stdout.isTTY === true }));
} catch (error) {
  process.stderr.write(`tallyd: ${(error as Error).message}\n`);
  process.exit(2);
}
const log = componentLogger("tallyd", { node: options.node });
// grpc-js logs to stderr by itself; route it through our logger instead.
const grpcLog = componentLogger("grpc", { node: options.node });
grpc.setLogger({ error: (...args: unknown[]) => grpcLog.debug(args.map(String).join(" ")) } as unknown as Console);

/** The cluster config, checked with the node's certificate and token files; a ConfigError exits 2. */
function loadConfig(): ClusterConfig {
  try {
    if (options.config === undefined && !process.env.TALLY_NODES) {
      throw new ConfigError("no cluster config: pass --config (or TALLY_CONFIG), or give the nodes in TALLY_NODES");
    }
    const config = loadClusterConfig(options.config, { env: process.env, nodeId: options.node });
    // Unreadable or mismatched certificate files are a config error (exit 2), found before start.
    nodeCertificateProvider(config, findNode(config, options.node), componentLogger("tls", { node: options.node }));
    // So is an unreadable auth.internalTokenFile.
    authorizerFor(config);
    return config;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`tallyd: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

/** What the start-up checksum warm-up runs over. */
const WARM_UP_BYTES = new Uint8Array(64 * 1024);
async function main(): Promise<void> {
  // The chaos harness's TALLY_TEST_* switches (all unset in production), read here and nowhere else.
  const faults = readFaultSwitches();
  applyFaultSwitches(faults, log);
  const config = loadConfig();
  const self = findNode(config, options.node);
  const clientListen = listenAddress(self, "client")!;
  const metricsListen = listenAddress(self, "metrics");
  const field = (port: "client" | "metrics") =>
    `nodes[${config.nodes.indexOf(self)}].${self[`${port}Listen`] === undefined ? port : `${port}Listen`}`;
  const node = new TallyNode({ config, nodeId: options.node, faults: faults.node });
  node.onFatal = (error) => {
    process.stderr.write(`tallyd: node ${options.node} stopped: ${error.message}\n`);
    rootLogger.flush();
    process.exit(1);
  };
  // The API's descriptors parsed now, before the node's loop runs: later they would stall it ~0.1 s.
  tallyProto();
  // node:net's IPv6 pattern is one large regex, compiled on its first use and compiled again to
  // machine code on its second; binding a gRPC port makes both: up to ~24 ms of the loop while the
  // shards replay (a restart's profile on the loaded box). Both compiled here instead.
  isIPv6("::1");
  isIPv6("127.0.0.1");
  // The apply path compiled on a throwaway shard (~75 ms), not on the first replayed entries; and
  // the log records' checksum, which a joining follower ran cold over its first 512 KiB of appends.
  warmUpApplyPath();
  for (let round = 0; round < 16; round++) crc32c(WARM_UP_BYTES, round);
  prepareClientServices(config.limits);
  // The refusals a RequestGuard builds at once encode google.rpc.Status details, whose encoders
  // protobufjs generates on first use: ~20 ms that createClientServer ran while the shards
  // replayed (a restart's profile). Built once here, and thrown away.
  void new RequestGuard(config.limits, undefined, log);
  // The metrics (prom-client's default collectors among them, ~14 ms) and health read the node
  // lazily: built before it starts, not beside its replay.
  const eventLoopDelay = EventLoopDelay.prepare();
  const health = new NodeHealth(node);
  const metrics = nodeMetrics(node, () => health.readiness().ready, { eventLoopDelay });
  // From before the node starts, so tally_event_loop_delay_max_seconds covers its start-up (loading
  // the shards) too; after the synchronous set-up above, which runs before anything is scheduled.
  eventLoopDelay.start();
  try {
    await node.start();
  } catch (error) {
    process.stderr.write(`tallyd: cannot start node ${options.node}: ${(error as Error).message}\n`);
    process.exit(3);
  }
  // The eventual buffer replays (and re-sends its unanswered flushes) before the port opens.
  const eventual = await EventualService.start(node, componentLogger("eventual", { node: options.node }), metrics.registry);
  const server = createClientServer(node, componentLogger("api", { node: options.node }), metrics, eventual);
  // After createClientServer: readiness changes now reach the gRPC health service too.
  health.start();
  try {
    await new Promise<number>((resolve, reject) =>
      server.bindAsync(clientListen, clientPortCredentials(config, self), (error, port) => (error ? reject(error) : resolve(port))),
    );
  } catch (error) {
    const reason = /EADDRINUSE/.test((error as Error).message) ? "address already in use" : (error as Error).message;
    process.stderr.write(`tallyd: ${field("client")} (${clientListen}): ${reason}\n`);
    await node.stop({ transferLeadership: false });
    process.exit(3);
  }
  let ops: OpsServer | undefined;
  if (metricsListen !== undefined) {
    try {
      ops = await startOpsServer(health, metrics, metricsListen, componentLogger("ops", { node: options.node }));
    } catch (error) {
      const reason = /EADDRINUSE/.test((error as Error).message) ? "address already in use" : (error as Error).message;
      process.stderr.write(`tallyd: ${field("metrics")} (${metricsListen}): ${reason}\n`);
      await node.stop({ transferLeadership: false });
      process.exit(3);
    }
  }
  log.info(
    {
      client: self.client,
      clientListen,
      peer: self.peer,
      peerListen: listenAddress(self, "peer"),
      dataDir: self.dataDir,
      metrics: ops?.address,
      malloc: process.env.GLIBC_TUNABLES ?? "", // docs/deploy.md, "Memory: huge pages"
    },
    "tallyd serving",
  );
  const advertised = clientListen === self.client ? "" : ` (advertised as ${self.client})`;
  process.stdout.write(
    `tallyd node ${options.node} serving clients on ${clientListen}${advertised}${ops ? `; metrics and health on http://${ops.address}/metrics /livez /readyz` : ""}\n`,
  );

  handleSignals(config, self, node, server, ops, eventual);
}

/** SIGTERM/SIGINT stop the node gracefully, SIGHUP re-reads TLS files; optionally exit with the parent. */
function handleSignals(
  config: ClusterConfig,
  self: NodeConfig,
  node: TallyNode,
  server: grpc.Server,
  ops: OpsServer | undefined,
  eventual: EventualService,
): void {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    const hardDeadline = setTimeout(() => {
      process.stderr.write("tallyd: graceful stop took too long; exiting\n");
      process.exit(1);
    }, 8000);
    hardDeadline.unref();
    // Unanswered flushes stay in the buffer; the next start re-sends them with the same seq.
    await eventual.close();
    await node.stop({ transferLeadership: true, timeoutMs: 3000 });
    // Clients keep Pipeline and Watch streams open for as long as they live, so tryShutdown alone
    // waited for them until the hard deadline (exit 1 after 8 s in a rolling restart). Calls in
    // flight get STREAM_DRAIN_MS to finish; the rest are cancelled and clients go to another node.
    let drained: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
      new Promise<void>((resolve) => (drained = setTimeout(resolve, STREAM_DRAIN_MS))),
    ]);
    clearTimeout(drained);
    server.forceShutdown();
    await ops?.close();
    rootLogger.flush();
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  // SIGHUP re-reads the certificate files now (they are also re-read every tls.reloadSeconds).
  process.on("SIGHUP", () => {
    const reloaded = nodeCertificateProvider(config, self)?.reload();
    log.info({ reloaded: reloaded ?? false }, "SIGHUP: TLS files re-read");
  });
  // Test harnesses set this so a killed test runner can never leave nodes running behind it.
  if (process.env.TALLY_EXIT_WITH_PARENT === "1") {
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) void shutdown("parent exited");
    }, 500).unref();
  }
}

main().catch((error) => {
  process.stderr.write(`tallyd: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
