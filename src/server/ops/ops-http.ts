/**
 * The operations HTTP server of one node (node:http, plain text, meant for a private network or a
 * local scraper): /metrics in the Prometheus text format, /livez and /readyz for orchestrators.
 *
 * - /livez: 200 while the process's event loop runs and the driver loop and storage are up (a
 *   storage failure fail-stops the node; restarting it is the cure) and the driver loop makes
 *   progress (it iterates at least once a tick; a hung fsync stops it). Never depends on peers, so
 *   a partition does not get a healthy node killed.
 * - /readyz: 200 only when the node can serve: running and not stopping, knows the partition map,
 *   is a member of it, and every shard replica it hosts has a leader -- itself, or a peer it is
 *   connected to. 503 with a JSON body naming every reason otherwise.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { TallyNode } from "../node.js";
import type { NodeMetrics } from "./metrics.js";
import type { Logger } from "../../util/log.js";
import { monotonicMs } from "../../util/clock.js";

/** The driver loop iterates at least once per tick; this long without an iteration means it is stuck. */
export const LOOP_STALL_MS = 10_000;

export interface Readiness {
  ready: boolean;
  /** Empty when ready; otherwise every reason it is not, most basic first. */
  reasons: string[];
}

export function livenessOf(node: TallyNode): Readiness {
  const failure = node.failure;
  if (failure !== undefined) return { ready: false, reasons: [`driver loop stopped: ${failure.message}`] };
  if (!node.isRunning) return { ready: false, reasons: ["node is not running (storage closed)"] };
  return { ready: true, reasons: [] };
}

export function readinessOf(node: TallyNode): Readiness {
  const live = livenessOf(node);
  if (!live.ready) return live;
  if (node.isStopping) return { ready: false, reasons: ["node is stopping"] };
  const map = node.map;
  if (!map.initialized) return { ready: false, reasons: ["partition map not known yet"] };
  const self = map.nodes.find((n) => n.id === node.nodeId);
  if (self === undefined) return { ready: false, reasons: [`node ${node.nodeId} has not joined the cluster map yet`] };
  if (self.state === "removed") return { ready: false, reasons: [`node ${node.nodeId} is removed from the cluster`] };
  const reasons: string[] = [];
  for (const replica of node.replicas.values()) {
    const leader = replica.leader;
    if (leader === 0) reasons.push(`shard ${replica.shardId} has no leader (no quorum reachable)`);
    else if (leader !== node.nodeId && !node.peerConnected(leader))
      reasons.push(`shard ${replica.shardId}: leader node ${leader} is not reachable from here`);
  }
  return { ready: reasons.length === 0, reasons };
}

/**
 * Watches the node every 100 ms and on every leader change: whether its driver loop still makes progress (for /livez), and
 * readiness changes, which it passes to node.onHealthChange so the gRPC health service
 * (grpc.health.v1) says NOT_SERVING exactly when /readyz says 503.
 */
export class NodeHealth {
  private iterationsSeen = -1;
  private progressAtMs = monotonicMs();
  private readyReported: boolean | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly node: TallyNode,
    private readonly stallMs = LOOP_STALL_MS,
  ) {}

  start(intervalMs = 100): this {
    // Leader changes are when readiness usually flips; the timer catches the rest (connections, map).
    this.node.onLeaderChange = () => queueMicrotask(() => this.check());
    this.check();
    this.timer = setInterval(() => this.check(), intervalMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  check(): void {
    const iterations = this.node.stats.iterations;
    if (iterations !== this.iterationsSeen) {
      this.iterationsSeen = iterations;
      this.progressAtMs = monotonicMs();
    }
    const ready = this.readiness().ready;
    if (ready !== this.readyReported) {
      this.readyReported = ready;
      this.node.onHealthChange?.(ready);
    }
  }

  liveness(): Readiness {
    const live = livenessOf(this.node);
    if (!live.ready) return live;
    const stalledMs = monotonicMs() - this.progressAtMs;
    if (stalledMs > this.stallMs)
      return { ready: false, reasons: [`driver loop has not completed an iteration for ${Math.round(stalledMs)} ms (storage hung?)`] };
    return live;
  }

  readiness(): Readiness {
    const live = this.liveness();
    return live.ready ? readinessOf(this.node) : live;
  }
}

export interface OpsServer {
  server: Server;
  /** host:port actually bound (port 0 resolved). */
  address: string;
  close(): Promise<void>;
}

/** Serves /metrics, /livez and /readyz on `address` (host:port). Rejects when it cannot bind. */
export async function startOpsServer(health: NodeHealth, metrics: NodeMetrics, address: string, log: Logger): Promise<OpsServer> {
  const separator = address.lastIndexOf(":");
  const host = address.slice(0, separator).replace(/^\[(.*)\]$/, "$1");
  const port = Number(address.slice(separator + 1));
  const server = createServer((request, response) => {
    void handle(health, metrics, request, response).catch((error: unknown) => {
      log.error({ err: error }, "ops endpoint failed");
      if (!response.headersSent) response.writeHead(500, { "content-type": "text/plain" });
      response.end("internal error\n");
    });
  });
  // A scraper that never reads must not hold sockets forever.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  const boundAddress = typeof bound === "object" && bound !== null ? `${host}:${bound.port}` : address;
  return {
    server,
    address: boundAddress,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function handle(health: NodeHealth, metrics: NodeMetrics, request: IncomingMessage, response: ServerResponse): Promise<void> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" });
    response.end("method not allowed\n");
    return;
  }
  const path = (request.url ?? "/").split("?")[0];
  switch (path) {
    case "/metrics": {
      const body = await metrics.scrape();
      response.writeHead(200, { "content-type": metrics.contentType });
      response.end(body);
      return;
    }
    case "/livez":
      return answer(response, health.liveness());
    case "/readyz":
      return answer(response, health.readiness());
    default:
      response.writeHead(404, { "content-type": "text/plain" });
      response.end("not found: try /metrics, /livez or /readyz\n");
  }
}

function answer(response: ServerResponse, state: Readiness): void {
  response.writeHead(state.ready ? 200 : 503, { "content-type": "application/json" });
  response.end(`${JSON.stringify({ status: state.ready ? "ok" : "unavailable", reasons: state.reasons })}\n`);
}
