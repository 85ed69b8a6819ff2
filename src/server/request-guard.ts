/**
 * Admission and accounting for client requests: a per-client in-flight bound (per connection and
 * per session) so one client cannot take the node's whole capacity, and the request metrics. It
 * wraps handlers from the outside (wrapUnary, pipelineOp) so the service table stays as it is.
 *
 * Refusals are OVERLOADED (gRPC RESOURCE_EXHAUSTED) with retry_after_ms: nothing was proposed, so
 * a retry is always safe, and the client library backs off by the hint.
 */
import type * as grpc from "@grpc/grpc-js";
import { decodeServiceError } from "../api/error-details.js";
import { countPackedAdds } from "../api/packed-batch.js";
import { OverloadedError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { errorInfoOf, toServiceError } from "./errors.js";
import type { NodeMetrics } from "./metrics.js";

type Json = Record<string, any>;

/** The hint sent with a per-client refusal: long enough for some of that client's requests to finish. */
export const CLIENT_RETRY_AFTER_MS = 50;

/**
 * Requests in flight per client connection (gRPC peer address) and per session id. Entries exist
 * only while a request is in flight, so the maps never hold more than the requests in flight.
 */
export class ClientInflightLimiter {
  private readonly byPeer = new Map<string, number>();
  private readonly bySession = new Map<string, number>();
  total = 0;

  constructor(readonly maxPerClient: number) {
    if (!Number.isSafeInteger(maxPerClient) || maxPerClient < 1) throw new RangeError(`maxPerClient must be a positive integer, got ${maxPerClient}`);
  }

  /** Admits one request (undefined) or says which bound it hit. Every admission needs one release(). */
  acquire(peer: string, session: string | undefined): { error: OverloadedError; reason: "client_inflight" | "session_inflight" } | undefined {
    const byPeer = this.byPeer.get(peer) ?? 0;
    if (byPeer >= this.maxPerClient) {
      return { error: new OverloadedError(`client ${peer} has ${byPeer} requests in flight (limits.maxInflightPerClient ${this.maxPerClient}); retry after ${CLIENT_RETRY_AFTER_MS} ms`, CLIENT_RETRY_AFTER_MS), reason: "client_inflight" };
    }
    const bySession = session === undefined ? 0 : (this.bySession.get(session) ?? 0);
    if (bySession >= this.maxPerClient) {
      return { error: new OverloadedError(`session ${session} has ${bySession} requests in flight (limits.maxInflightPerClient ${this.maxPerClient}); retry after ${CLIENT_RETRY_AFTER_MS} ms`, CLIENT_RETRY_AFTER_MS), reason: "session_inflight" };
    }
    this.byPeer.set(peer, byPeer + 1);
    if (session !== undefined) this.bySession.set(session, bySession + 1);
    this.total++;
    return undefined;
  }

  release(peer: string, session: string | undefined): void {
    decrement(this.byPeer, peer);
    if (session !== undefined) decrement(this.bySession, session);
    this.total--;
  }

  inflightOf(peer: string): number {
    return this.byPeer.get(peer) ?? 0;
  }

  get trackedClients(): number {
    return this.byPeer.size;
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const count = map.get(key);
  if (count === undefined) throw new Error(`released more than acquired for ${key}`);
  if (count <= 1) map.delete(key);
  else map.set(key, count - 1);
}

/** The session id a request carries (header.client_id), undefined for none (0 or absent). */
export function sessionOf(request: Json | undefined): string | undefined {
  const id = request?.header?.clientId;
  if (id === undefined || id === null || id === "" || id === "0" || id === 0) return undefined;
  return String(id);
}

/** Counter operations in a (successful) mutation request, by kind; nothing for reads and admin calls. */
export function countOps(rpc: string, request: Json | undefined, count: (kind: string, n: number) => void): void {
  const single = SINGLE_OP_KINDS[rpc];
  if (single !== undefined) return count(single, 1);
  if (rpc !== "addBatch" && rpc !== "Pipeline.batch") return;
  if (request?.packedAdds instanceof Uint8Array && request.packedAdds.length > 0) return count("add", countPackedAdds(request.packedAdds));
  const ops: Json[] = Array.isArray(request?.ops) ? request.ops : [];
  const kinds = new Map<string, number>();
  for (const op of ops) {
    const kind = BATCH_OP_KINDS[op?.op as string] ?? "other";
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  for (const [kind, n] of kinds) count(kind, n);
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
const BATCH_OP_KINDS: Record<string, string> = { add: "add", set: "set", reset: "reset", compareAndSet: "cas", windowAdd: "window", tryAcquire: "acquire", uniqueAdd: "unique" };

export class RequestGuard {
  readonly limiter: ClientInflightLimiter;

  constructor(
    maxInflightPerClient: number,
    private readonly metrics: NodeMetrics | undefined,
    private readonly log: Logger,
  ) {
    this.limiter = new ClientInflightLimiter(maxInflightPerClient);
  }

  private admit(rpc: string, peer: string, session: string | undefined, startedMs: number): OverloadedError | undefined {
    const refusal = this.limiter.acquire(peer, session);
    if (refusal === undefined) {
      if (this.metrics !== undefined) this.metrics.inflightRequests = this.limiter.total;
      return undefined;
    }
    this.metrics?.overloaded(refusal.reason);
    this.metrics?.request(rpc, "OVERLOADED", startedMs);
    return refusal.error;
  }

  private finish(rpc: string, peer: string, session: string | undefined, code: string, request: Json | undefined, startedMs: number): void {
    this.limiter.release(peer, session);
    const metrics = this.metrics;
    if (metrics === undefined) return;
    metrics.inflightRequests = this.limiter.total;
    metrics.request(rpc, code, startedMs);
    if (code === "OK") countOps(rpc, request, (kind, n) => metrics.countOps(kind, n));
  }

  /**
   * Every unary handler of a service table: admitted under the per-client bound when `limit` is
   * set, counted and timed always. Streaming handlers (one argument) pass through unchanged.
   */
  wrapService<T extends Record<string, (...args: any[]) => void>>(handlers: T, options: { limit: boolean }): T {
    const wrapped: Record<string, (...args: any[]) => void> = {};
    for (const [rpc, handler] of Object.entries(handlers)) {
      wrapped[rpc] = handler.length === 2 ? this.wrapUnary(rpc, handler as grpc.handleUnaryCall<Json, Json>, options.limit) : handler;
    }
    return wrapped as T;
  }

  wrapUnary(rpc: string, handler: grpc.handleUnaryCall<Json, Json>, limit: boolean): grpc.handleUnaryCall<Json, Json> {
    return (call, callback) => {
      const startedMs = performance.now();
      const peer = limit ? call.getPeer() : "";
      const session = limit ? sessionOf(call.request) : undefined;
      if (limit) {
        const refusal = this.admit(rpc, peer, session, startedMs);
        if (refusal !== undefined) {
          callback(toServiceError(refusal, this.log));
          return;
        }
      }
      let answered = false;
      const done = (code: string): void => {
        if (answered) return;
        answered = true;
        if (limit) this.finish(rpc, peer, session, code, call.request, startedMs);
        else this.metrics?.request(rpc, code, startedMs);
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
   * One Pipeline operation, admitted under the same per-client bound as unary calls from that
   * connection (the stream's own bound, PIPELINE_INFLIGHT_MAX, is per stream); never rejects.
   */
  async pipelineOp(peer: string, request: Json, run: (request: Json) => Promise<Json>): Promise<Json> {
    const startedMs = performance.now();
    const rpc = `Pipeline.${typeof request.op === "string" ? request.op : "none"}`;
    const session = sessionOf(request[request.op as string]);
    const refusal = this.admit(rpc, peer, session, startedMs);
    if (refusal !== undefined) return { id: request.id ?? "0", error: errorInfoOf(refusal, this.log) };
    let code = "INTERNAL";
    try {
      const response = await run(request);
      code = response.error === undefined || response.error === null ? "OK" : String(response.error.code);
      return response;
    } finally {
      this.finish(rpc, peer, session, code, request[request.op as string], startedMs);
    }
  }

  /** A refusal by a per-stream bound (a stalled watch), for the metrics. */
  streamOverloaded(reason: string): void {
    this.metrics?.overloaded(reason);
  }

  /** A Pipeline op refused by the stream's own in-flight bound: counted like any other answer. */
  pipelineRefused(request: Json, reason: string): void {
    this.metrics?.overloaded(reason);
    this.metrics?.request(`Pipeline.${typeof request.op === "string" ? request.op : "none"}`, "OVERLOADED", performance.now());
  }
}
