/**
 * Admission and accounting for client requests: in-flight bounds and the request metrics. It
 * wraps handlers from the outside (wrapUnary, pipelineOp) so the service table stays as it is.
 *
 * In-flight bounds (docs/limits.md), over unary CounterService calls and Pipeline ops together:
 *   - per node (limits.maxInflightPerNode), whatever number of connections the requests come
 *     over. The node serves on one thread: the calls that arrive in one read of its sockets are
 *     decoded and handled in one run, and the answers of a ReadIndex round or an applied entry
 *     are sent in one run; past a few thousand calls such a run holds the thread longer than an
 *     election timeout (a 12,000-get burst cost the shard its leader), so the total bounds them;
 *   - per client connection (gRPC peer address; also HTTP/2 max_concurrent_streams, so a client
 *     queues its excess unary calls instead of sending them) and per session id
 *     (limits.maxInflightPerClient), so one client cannot take the node's whole capacity.
 * A unary call takes its slot when its metadata arrives (admitCall), before its message is read,
 * and holds it until the call ends (answer written or cancelled); a Pipeline op from its arrival to
 * its answer. The per-session bound is taken once the request is decoded (it names the session).
 *
 * Refusals are OVERLOADED (gRPC RESOURCE_EXHAUSTED) with retry_after_ms: nothing was proposed, so
 * a retry is always safe, and the client library backs off by the hint.
 */
import type * as grpc from "@grpc/grpc-js";
import { decodeServiceError, type ErrorInfo } from "../../api/error-details.js";
import { countPackedAdds } from "../../api/packed-batch.js";
import type { PipelineRequestMessage, PipelineResponseInput } from "../../api/proto.js";
import { assert } from "../../util/assert.js";
import { OverloadedError, type TallyError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { errorInfoOf, toServiceError } from "./errors.js";
import type { NodeMetrics } from "../ops/metrics.js";

/** The fields admission and accounting read, whatever the request. */
type GuardFields = { header?: { clientId?: unknown } | null; ops?: unknown; packedAdds?: unknown };
type PipelineResponse = PipelineResponseInput;

/** The hint sent with a per-client refusal: long enough for some of that client's requests to finish. */
export const CLIENT_RETRY_AFTER_MS = 50;
/** The hint sent with a node-wide refusal: a few driver-loop iterations, in which bursts are answered. */
export const NODE_RETRY_AFTER_MS = 100;

export interface InflightLimits {
  maxInflightPerClient: number;
  maxInflightPerNode: number;
}

export type InflightRefusalReason = "node_inflight" | "client_inflight" | "session_inflight";

/**
 * Requests in flight on this node, per client connection (gRPC peer address) and per session id.
 * Entries exist only while a request is in flight, so the maps never hold more than the requests
 * in flight. Invariant: total = the sum over byPeer <= maxPerNode.
 */
export class InflightLimiter {
  private readonly byPeer = new Map<string, number>();
  private readonly bySession = new Map<string, number>();
  total = 0;
  readonly maxPerClient: number;
  readonly maxPerNode: number;

  constructor(limits: InflightLimits) {
    this.maxPerClient = limits.maxInflightPerClient;
    this.maxPerNode = limits.maxInflightPerNode;
    if (!Number.isSafeInteger(this.maxPerClient) || this.maxPerClient < 1)
      throw new RangeError(`maxInflightPerClient must be a positive integer, got ${this.maxPerClient}`);
    if (!Number.isSafeInteger(this.maxPerNode) || this.maxPerNode < 1)
      throw new RangeError(`maxInflightPerNode must be a positive integer, got ${this.maxPerNode}`);
  }

  /** Admits one request from connection `peer` (undefined) or names the bound it hit. Every admission needs one release(peer). */
  acquire(peer: string): "node_inflight" | "client_inflight" | undefined {
    if (this.total >= this.maxPerNode) return "node_inflight";
    const byPeer = this.byPeer.get(peer) ?? 0;
    if (byPeer >= this.maxPerClient) return "client_inflight";
    this.byPeer.set(peer, byPeer + 1);
    this.total++;
    assert(this.total <= this.maxPerNode, "in-flight requests within the node's bound");
    return undefined;
  }

  release(peer: string): void {
    decrement(this.byPeer, peer);
    this.total--;
  }

  /** Admits one request of session `session` (true) or not (false). Every admission needs one releaseSession(session). */
  acquireSession(session: string): boolean {
    const bySession = this.bySession.get(session) ?? 0;
    if (bySession >= this.maxPerClient) return false;
    this.bySession.set(session, bySession + 1);
    return true;
  }

  releaseSession(session: string): void {
    decrement(this.bySession, session);
  }

  /** The error a refusal answers with. The messages are fixed, so a burst of refusals can share one. */
  refusal(reason: InflightRefusalReason, session = ""): OverloadedError {
    switch (reason) {
      case "node_inflight":
        return new OverloadedError(
          `this node has limits.maxInflightPerNode (${this.maxPerNode}) requests in flight; retry after ${NODE_RETRY_AFTER_MS} ms`,
          NODE_RETRY_AFTER_MS,
        );
      case "client_inflight":
        return new OverloadedError(
          `this connection has limits.maxInflightPerClient (${this.maxPerClient}) requests in flight; retry after ${CLIENT_RETRY_AFTER_MS} ms`,
          CLIENT_RETRY_AFTER_MS,
        );
      case "session_inflight":
        return new OverloadedError(
          `session ${session} has limits.maxInflightPerClient (${this.maxPerClient}) requests in flight; retry after ${CLIENT_RETRY_AFTER_MS} ms`,
          CLIENT_RETRY_AFTER_MS,
        );
    }
  }

  inflightOf(peer: string): number {
    return this.byPeer.get(peer) ?? 0;
  }

  get trackedClients(): number {
    return this.byPeer.size + this.bySession.size;
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const count = map.get(key);
  if (count === undefined) throw new Error(`released more than acquired for ${key}`);
  if (count <= 1) map.delete(key);
  else map.set(key, count - 1);
}

/** The session id a request carries (header.client_id), undefined for none (0 or absent). */
export function sessionOf(request: unknown): string | undefined {
  const id = (request as GuardFields | undefined)?.header?.clientId;
  if (id === undefined || id === null || id === "" || id === "0" || id === 0) return undefined;
  return String(id);
}

/** Counter operations in a (successful) mutation request, by kind; nothing for reads and admin calls. */
export function countOps(rpc: string, message: unknown, count: (kind: string, n: number) => void): void {
  const request = message as GuardFields | undefined;
  const single = SINGLE_OP_KINDS[rpc];
  if (single !== undefined) return count(single, 1);
  if (rpc !== "addBatch" && rpc !== "Pipeline.batch") return;
  if (request?.packedAdds instanceof Uint8Array && request.packedAdds.length > 0) return count("add", countPackedAdds(request.packedAdds));
  const ops: ({ op?: unknown } | undefined)[] = Array.isArray(request?.ops) ? request.ops : [];
  const kinds = new Map<string, number>();
  for (const op of ops) {
    const kind = BATCH_OP_KINDS[op?.op as string] ?? "other";
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  for (const [kind, n] of kinds) count(kind, n);
}

/** "Pipeline.<op>", the name a Pipeline op is counted under, built once per op name (not per op). */
const pipelineRpcNames = new Map<string, string>();

export function pipelineRpcName(op: unknown): string {
  const name = typeof op === "string" ? op : "none";
  let rpc = pipelineRpcNames.get(name);
  if (rpc === undefined) {
    rpc = `Pipeline.${name}`;
    // The names come from the decoder's oneof (a fixed set), so this map stays small.
    if (pipelineRpcNames.size < 64) pipelineRpcNames.set(name, rpc);
  }
  return rpc;
}

/** Unary RPCs and Pipeline ops that carry one counter operation. */
const SINGLE_OP_KINDS: Record<string, string> = {
  add: "add",
  "Pipeline.add": "add",
  set: "set",
  "Pipeline.set": "set",
  reset: "reset",
  "Pipeline.reset": "reset",
  compareAndSet: "cas",
  "Pipeline.compareAndSet": "cas",
};
const BATCH_OP_KINDS: Record<string, string> = {
  add: "add",
  set: "set",
  reset: "reset",
  compareAndSet: "cas",
  windowAdd: "window",
  tryAcquire: "acquire",
  uniqueAdd: "unique",
};

export class RequestGuard {
  readonly limiter: InflightLimiter;
  /**
   * Refusals by the node-wide and per-connection bounds, as a call's status and as a Pipeline op's
   * ErrorInfo, built once: a burst of refusals must stay cheap (no error, stack or encoding each).
   */
  private readonly callRefusals: Record<"node_inflight" | "client_inflight", grpc.StatusObject>;
  private readonly opRefusals: Record<"node_inflight" | "client_inflight", ErrorInfo>;

  constructor(
    limits: InflightLimits,
    private readonly metrics: NodeMetrics | undefined,
    private readonly log: Logger,
  ) {
    this.limiter = new InflightLimiter(limits);
    const status = (reason: "node_inflight" | "client_inflight"): grpc.StatusObject => {
      const error = toServiceError(this.limiter.refusal(reason), log);
      return { code: error.code, details: error.details, metadata: error.metadata };
    };
    this.callRefusals = { node_inflight: status("node_inflight"), client_inflight: status("client_inflight") };
    this.opRefusals = {
      node_inflight: errorInfoOf(this.limiter.refusal("node_inflight"), log),
      client_inflight: errorInfoOf(this.limiter.refusal("client_inflight"), log),
    };
  }

  /**
   * Admits a unary call when its metadata arrives (admission.ts), before its message is read or
   * decoded: undefined, or the status to refuse it with. An admitted call holds its slot until it
   * ends (finishCall), answer written or cancelled, so a burst of calls arriving in one read of
   * the sockets counts whole, even when each is answered at once.
   */
  admitCall(rpc: string, peer: string): grpc.StatusObject | undefined {
    const reason = this.limiter.acquire(peer);
    if (this.metrics !== undefined) this.metrics.inflightRequests = this.limiter.total;
    if (reason === undefined) return undefined;
    this.metrics?.overloaded(reason);
    this.metrics?.request(rpc, "OVERLOADED", performance.now());
    return this.callRefusals[reason];
  }

  finishCall(peer: string): void {
    this.limiter.release(peer);
    if (this.metrics !== undefined) this.metrics.inflightRequests = this.limiter.total;
  }

  /**
   * A call refused before its handler (admission.ts: credentials, a request that failed its bounds
   * or its decoding), counted like any other answer.
   */
  refusedBeforeHandler(rpc: string, error: TallyError): void {
    this.metrics?.request(rpc, error.code, performance.now());
  }

  private admitSession(rpc: string, session: string | undefined, startedMs: number): OverloadedError | undefined {
    if (session === undefined || this.limiter.acquireSession(session)) return undefined;
    this.metrics?.overloaded("session_inflight");
    this.metrics?.request(rpc, "OVERLOADED", startedMs);
    return this.limiter.refusal("session_inflight", session);
  }

  private finish(rpc: string, session: string | undefined, code: string, request: unknown, startedMs: number): void {
    if (session !== undefined) this.limiter.releaseSession(session);
    const metrics = this.metrics;
    if (metrics === undefined) return;
    metrics.request(rpc, code, startedMs);
    if (code === "OK") countOps(rpc, request, this.countOpsInMetrics);
  }

  /** countOps's sink, made once (not a closure per request). */
  private readonly countOpsInMetrics = (kind: string, n: number): void => this.metrics?.countOps(kind, n);

  /**
   * Every unary handler of a service table: admitted under the per-session bound when `limit` is
   * set (the node-wide and per-connection bounds were applied at admission), counted and timed
   * always. Streaming handlers (one argument) pass through unchanged.
   */
  wrapService<T extends Record<string, (...args: any[]) => void>>(handlers: T, options: { limit: boolean }): T {
    const wrapped: Record<string, (...args: any[]) => void> = {};
    for (const [rpc, handler] of Object.entries(handlers)) {
      wrapped[rpc] = handler.length === 2 ? this.wrapUnary(rpc, handler as grpc.handleUnaryCall<unknown, unknown>, options.limit) : handler;
    }
    return wrapped as T;
  }

  wrapUnary(rpc: string, handler: grpc.handleUnaryCall<unknown, unknown>, limit: boolean): grpc.handleUnaryCall<unknown, unknown> {
    return (call, callback) => {
      const startedMs = performance.now();
      const session = limit ? sessionOf(call.request) : undefined;
      const refusal = this.admitSession(rpc, session, startedMs);
      if (refusal !== undefined) {
        callback(toServiceError(refusal, this.log));
        return;
      }
      let answered = false;
      const done = (code: string): void => {
        if (answered) return;
        answered = true;
        this.finish(rpc, session, code, call.request, startedMs);
      };
      try {
        handler(call, (error, value, trailer, flags) => {
          done(error ? decodeServiceError(error).error.code : "OK");
          callback(error, value, trailer, flags);
        });
      } catch (error) {
        done("INTERNAL");
        throw error;
      }
    };
  }

  /**
   * One Pipeline operation, admitted under the same in-flight bounds as unary calls from that
   * connection (the stream's own bound, PIPELINE_INFLIGHT_MAX, is per stream); never rejects.
   */
  async pipelineOp(
    peer: string,
    request: PipelineRequestMessage,
    run: (request: PipelineRequestMessage) => Promise<PipelineResponse>,
  ): Promise<PipelineResponse> {
    const startedMs = performance.now();
    const rpc = pipelineRpcName(request.op);
    const reason = this.limiter.acquire(peer);
    if (reason !== undefined) {
      this.metrics?.overloaded(reason);
      this.metrics?.request(rpc, "OVERLOADED", startedMs);
      return { id: request.id ?? "0", error: this.opRefusals[reason] };
    }
    if (this.metrics !== undefined) this.metrics.inflightRequests = this.limiter.total;
    const op = request.op === undefined ? undefined : request[request.op];
    const session = sessionOf(op);
    let code = "INTERNAL";
    try {
      const refusal = this.admitSession(rpc, session, startedMs);
      if (refusal !== undefined) return { id: request.id ?? "0", error: errorInfoOf(refusal, this.log) };
      try {
        const response = await run(request);
        code = response.error === undefined || response.error === null ? "OK" : String(response.error.code);
        return response;
      } finally {
        this.finish(rpc, session, code, op, startedMs);
      }
    } finally {
      this.finishCall(peer);
    }
  }

  /** A refusal by a per-stream bound (a stalled watch), for the metrics. */
  streamOverloaded(reason: string): void {
    this.metrics?.overloaded(reason);
  }

  /** A Pipeline op refused by the stream's own in-flight bound: counted like any other answer. */
  pipelineRefused(request: PipelineRequestMessage, reason: string): void {
    this.metrics?.overloaded(reason);
    this.metrics?.request(pipelineRpcName(request.op), "OVERLOADED", performance.now());
  }
}
