/**
 * The client port's gRPC server: CounterService and AdminService from proto/tally.proto bound to
 * one node, plus the standard health service and server reflection (reflection.ts). What a call
 * meets, in order:
 *   1. grpc-js refuses a message above limits.maxRequestBytes on its length prefix;
 *   2. admission.ts: credentials (auth-gate.ts) and the node's in-flight bounds (request-guard.ts),
 *      before the message is read;
 *   3. request-bounds.ts: the message's size and shape, before it is decoded;
 *   4. auth-gate.ts guard: the caller's roles on the keys it touches;
 *   5. request-guard.ts: the per-session bound, and the request metrics;
 *   6. the handler: counter-service.ts, watch.ts, pipeline.ts, admin-service.ts, internal.ts,
 *      src/server/backup/backup-service.ts.
 * Errors leave through one function, toServiceError (errors.ts).
 */
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { tallyProto, type AdminServiceHandlers, type CounterServiceHandlers } from "../../api/proto.js";
import type { Logger } from "../../util/log.js";
import { serveShardBackup, type ShardBackupCall } from "../backup/backup-service.js";
import type { Limits } from "../config/config.js";
import type { TallyNode } from "../node.js";
import type { NodeMetrics } from "../ops/metrics.js";
import { AdminApi } from "./admin-service.js";
import { admissionInterceptor, admittedMethods } from "./admission.js";
import { adminAccess, authGateFor, counterAccess, guardService, stampCaller, type AuthGate } from "./auth-gate.js";
import { CounterApi } from "./counter-service.js";
import { toServiceError } from "./errors.js";
import { internalApi } from "./internal.js";
import { pipelineBatchHandler, pipelineHandler } from "./pipeline.js";
import { addReflection } from "./reflection.js";
import { boundedService, tallyRequestBounds } from "./request-bounds.js";
import { RequestGuard } from "./request-guard.js";
import { serveWatch, type WatchCall } from "./watch.js";
import type { EventualService } from "../eventual/service.js";
import { UnavailableError } from "../../util/errors.js";

const HEALTH_SERVICES = ["", "tally.v1.CounterService", "tally.v1.AdminService"];

/** Turns a request -> reply function into a unary handler (one per server: it knows the gate). */
type Unary = <Req, Res>(
  fn: (request: Req) => Promise<Res> | Res,
) => (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

/**
 * A service's handlers as generated from proto/tally.proto (AdminServiceHandlers, ...), keyed by the
 * camelCase names this server registers them under (grpc-js accepts either), without the generated
 * interface's catch-all index signature: each handler's request and reply types are the proto's.
 */
type ProtoHandlers<H> = { [K in keyof H as string extends K ? never : K extends string ? Uncapitalize<K> : never]: H[K] };

/** What every service table of one server shares. */
interface ServerParts {
  node: TallyNode;
  log: Logger;
  gate: AuthGate | undefined;
  guard: RequestGuard;
  unary: Unary;
  /** Eventual counters (src/server/eventual); undefined: their calls answer UNAVAILABLE. */
  eventual: EventualService | undefined;
}

let prepared: { key: string; counterService: grpc.ServiceDefinition; adminService: grpc.ServiceDefinition } | undefined;

/**
 * The client services' definitions with their bounded request decoders (tens of ms of walking the
 * message shapes): tallyd builds them before its node starts, so the node's first turns (its
 * replay) do not wait on it; createClientServer() reuses them for the same limits.
 */
export function prepareClientServices(limits: Limits): { counterService: grpc.ServiceDefinition; adminService: grpc.ServiceDefinition } {
  const bounds = tallyRequestBounds(limits);
  const key = `${limits.maxBatchOps}/${limits.maxEntryBytes}`; // all the bounds depend on
  if (prepared?.key !== key) {
    const { packageDefinition } = tallyProto();
    prepared = {
      key,
      counterService: boundedService(packageDefinition, "tally.v1.CounterService", bounds),
      adminService: boundedService(packageDefinition, "tally.v1.AdminService", bounds),
    };
  }
  return prepared;
}

/**
 * Builds the grpc server with every service bound to one node. CounterService calls are admitted
 * under the in-flight bounds and every call is counted in `metrics` (admission.ts, request-guard.ts).
 */
export function createClientServer(node: TallyNode, log: Logger, metrics?: NodeMetrics, eventual?: EventualService): grpc.Server {
  // Access control (cluster.yaml auth:); undefined = off. It runs first: a refused caller takes
  // no in-flight slot and sends no byte of its request that the node reads (admission.ts).
  const gate = authGateFor(node.config, log);
  const guard = new RequestGuard(node.config.limits, metrics, log);
  const { counterService, adminService } = prepareClientServices(node.config.limits);
  const admitted = new Map([...admittedMethods(counterService, true), ...admittedMethods(adminService, false)]);
  const server = new grpc.Server({
    interceptors: [admissionInterceptor(admitted, gate, guard, log)],
    ...serverOptions(node.config.limits),
  });
  const parts: ServerParts = { node, log, gate, guard, unary: unaryFor(gate, log), eventual };
  const counter = new CounterApi(node);
  server.addService(
    counterService,
    guardService(gate, counterService, guard.wrapService(counterHandlers(parts, counter), { limit: true }), counterAccess, [
      "pipeline",
      "pipelineBatch",
    ]),
  );
  server.addService(
    adminService,
    guardService(gate, adminService, guard.wrapService(adminHandlers(parts, counter), { limit: false }), adminAccess),
  );
  addHealth(server, node);
  addReflection(server);
  return server;
}

function serverOptions(limits: Limits): grpc.ServerOptions {
  return {
    // Larger requests are refused by grpc-js with RESOURCE_EXHAUSTED on their length prefix,
    // before they are buffered or decoded.
    "grpc.max_receive_message_length": limits.maxRequestBytes,
    "grpc.max_send_message_length": 64 * 1024 * 1024,
    // Calls a connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS): its
    // excess waits in the client, costing this node nothing, instead of arriving in one burst.
    "grpc.max_concurrent_streams": limits.maxStreamsPerConnection,
    "grpc.keepalive_time_ms": 30_000,
    // Channelz stays on for servers: grpc-js 1.14's forceShutdown() destroys only the sessions its
    // channelz handler tracked, so with channelz off a closed server leaves its streams open.
  };
}

/**
 * Unary handlers that record the authenticated caller on the request (stampCaller: sessions are
 * owned by it) and answer a throw or a rejection through toServiceError.
 */
function unaryFor(gate: AuthGate | undefined, log: Logger): Unary {
  return (fn) => (call, callback) => {
    let pending;
    try {
      if (gate !== undefined) stampCaller(call.request, gate.callerName(call));
      pending = fn(call.request);
    } catch (error) {
      callback(toServiceError(error, log));
      return;
    }
    Promise.resolve(pending).then(
      (response) => callback(null, response),
      (error) => callback(toServiceError(error, log)),
    );
  };
}

function counterHandlers({ node, log, gate, guard, unary, eventual }: ServerParts, api: CounterApi): ProtoHandlers<CounterServiceHandlers> {
  const noEventual = () => Promise.reject(new UnavailableError(`node ${node.nodeId} runs no eventual buffer`));
  return {
    eventualAdd: unary((r) => (eventual ? eventual.eventualAdd(r) : noEventual())),
    eventualGet: unary((r) => (eventual ? eventual.eventualGet(r) : noEventual())),
    registerSession: unary((r) => api.registerSession(r)),
    keepAlive: unary((r) => api.keepAlive(r)),
    add: unary((r) => api.add(r)),
    set: unary((r) => api.set(r)),
    reset: unary((r) => api.reset(r)),
    compareAndSet: unary((r) => api.compareAndSet(r)),
    addBatch: unary((r) => api.addBatch(r)),
    get: unary((r) => api.get(r)),
    getMany: unary((r) => api.getMany(r)),
    windowRange: unary((r) => api.windowRange(r)),
    windowAt: unary((r) => api.windowAt(r)),
    uniqueCount: unary((r) => api.uniqueCount(r)),
    topK: unary((r) => api.topK(r)),
    aggregate: unary((r) => api.aggregate(r)),
    watch: (call: WatchCall) => serveWatch(node, call, log, (reason) => guard.streamOverloaded(reason)),
    routes: (call, callback) => unary(() => api.routes(gate?.keyVisibility(call)))(call, callback),
    pipeline: pipelineHandler(api, gate, guard, log),
    pipelineBatch: pipelineBatchHandler(api, gate, guard, log),
  };
}

function adminHandlers({ node, log, gate, unary }: ServerParts, counter: CounterApi): ProtoHandlers<AdminServiceHandlers> {
  const api = new AdminApi(node);
  const internal = internalApi(node, counter.forwarder, gate !== undefined);
  return {
    status: unary((r) => api.status(r)),
    transferLeader: unary((r) => api.transferLeader(r)),
    clusterMap: unary(() => api.clusterMap()),
    nodeAdd: unary((r) => api.nodeAdd(r)),
    declareHot: unary((r) => api.declareHot(r)),
    nodeState: unary((r) => api.nodeState(r)),
    shardMove: unary((r) => api.shardMove(r)),
    shardSplit: unary((r) => api.shardSplit(r)),
    rebalance: unary((r) => api.rebalance(r)),
    failover: unary((r) => api.failover(r)),
    recoverUnsafe: unary((r) => api.recoverUnsafe(r)),
    heartbeat: unary((r) => internal.heartbeat(r)),
    shardChange: unary((r) => internal.shardChange(r)),
    forwardWrite: unary((r) => internal.forwardWrite(r)),
    shardBackup: (call: ShardBackupCall) => serveShardBackup(node, call, log),
  };
}

/** grpc.health.v1 for the server and each service; NOT_SERVING while the node is not ready. */
function addHealth(server: grpc.Server, node: TallyNode): void {
  const health = new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((service) => [service, "SERVING"])));
  health.addToServer(server);
  node.onHealthChange = (serving) => {
    const state = serving ? "SERVING" : "NOT_SERVING";
    for (const service of HEALTH_SERVICES) health.setStatus(service, state);
  };
}
