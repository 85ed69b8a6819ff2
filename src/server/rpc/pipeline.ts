/**
 * CounterService.Pipeline: many independent operations over one stream, matched by id; replies may
 * come out of order. The stream authenticates once (auth-gate.ts pipelineCaller) and checks every
 * op (pipelineDenial); each op takes the node's and its connection's in-flight slots like a unary
 * call (request-guard.ts pipelineOp), and the stream itself holds at most PIPELINE_INFLIGHT_MAX.
 * Replies are written with backpressure (pipelineWriter).
 */
import type * as grpc from "@grpc/grpc-js";
import type { PipelineRequestMessage, PipelineResponseInput } from "../../api/proto.js";
import { InvalidArgumentError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { stampCaller, type AuthGate } from "./auth-gate.js";
import type { CounterApi } from "./counter-service.js";
import { errorInfoOf } from "./errors.js";
import { RefusedRequest } from "./request-bounds.js";
import type { RequestGuard } from "./request-guard.js";

/** Bounds a single Pipeline stream; beyond it, operations are answered OVERLOADED at once. */
const PIPELINE_INFLIGHT_MAX = 20_000;

type PipelineResponse = PipelineResponseInput;
export type PipelineCall = grpc.ServerDuplexStream<PipelineRequestMessage, PipelineResponse>;

/** The Pipeline handler for one server: every stream shares the node's api, gate and guard. */
export function pipelineHandler(
  api: CounterApi,
  gate: AuthGate | undefined,
  guard: RequestGuard,
  log: Logger,
): (call: PipelineCall) => void {
  const run = (request: PipelineRequestMessage): Promise<PipelineResponse> => pipelineOp(api, request, log);
  return (call) => {
    let inflight = 0;
    let ended = false;
    const caller = gate?.pipelineCaller(call);
    const callerName = caller?.principal?.name ?? "";
    const peer = call.getPeer();
    const write = pipelineWriter(call);
    const answer = (response: PipelineResponse): void => {
      inflight--;
      if (!call.cancelled && !call.destroyed) write(response);
      if (ended && inflight === 0) call.end();
    };
    call.on("data", (request: PipelineRequestMessage | RefusedRequest) => {
      if (request instanceof RefusedRequest) {
        // Over a bound (request-bounds.ts) yet with a readable id: that op alone is refused.
        guard.refusedBeforeHandler("Pipeline.none", request.error);
        write({ id: request.id ?? "0", error: errorInfoOf(request.error, log) });
        return;
      }
      const denied = caller === undefined ? undefined : gate?.pipelineDenial(caller, request);
      if (denied !== undefined) {
        write(denied);
        return;
      }
      if (inflight >= PIPELINE_INFLIGHT_MAX) {
        guard.pipelineRefused(request, "stream_inflight");
        write({
          id: request.id ?? "0",
          error: {
            code: "OVERLOADED",
            message: `more than ${PIPELINE_INFLIGHT_MAX} operations in flight on this stream`,
            retryAfterMs: 10,
          },
        });
        return;
      }
      inflight++;
      if (typeof request.op === "string") stampCaller(request[request.op], callerName);
      void guard.pipelineOp(peer, request, run).then(answer);
    });
    call.on("end", () => {
      ended = true;
      if (inflight === 0) call.end();
    });
    call.on("error", () => undefined);
  };
}

/**
 * Writes Pipeline replies with backpressure: while the client does not read its replies, the
 * stream stops reading requests (HTTP/2 flow control then holds the client back), so a client that
 * sends without reading cannot grow this node's memory beyond one stream buffer.
 */
function pipelineWriter(call: PipelineCall): (response: PipelineResponse) => void {
  let paused = false;
  return (response) => {
    if (call.write(response) || paused) return;
    paused = true;
    call.pause();
    call.once("drain", () => {
      paused = false;
      call.resume();
    });
  };
}

/** Runs one Pipeline operation; never throws (errors become ErrorInfo results). */
export async function pipelineOp(api: CounterApi, request: PipelineRequestMessage, log: Logger): Promise<PipelineResponse> {
  const id = request.id ?? "0";
  try {
    switch (request.op) {
      case "add":
        return { id, mutation: await api.add(request.add!) };
      case "set":
        return { id, mutation: await api.set(request.set!) };
      case "reset":
        return { id, mutation: await api.reset(request.reset!) };
      case "compareAndSet":
        return { id, mutation: await api.compareAndSet(request.compareAndSet!) };
      case "batch":
        return { id, batch: await api.addBatch(request.batch!) };
      case "get":
        return { id, get: await api.get(request.get!) };
      case "getMany":
        return { id, getMany: await api.getMany(request.getMany!) };
      case "windowRange":
        return { id, windowRange: await api.windowRange(request.windowRange!) };
      case "windowAt":
        return { id, windowAt: await api.windowAt(request.windowAt!) };
      case "uniqueCount":
        return { id, uniqueCount: await api.uniqueCount(request.uniqueCount!) };
      case "topK":
        return { id, topK: await api.topK(request.topK!) };
      case "aggregate":
        return { id, aggregate: await api.aggregate(request.aggregate!) };
      default:
        throw new InvalidArgumentError(`pipeline request ${id} carries no operation`);
    }
  } catch (error) {
    return { id, error: errorInfoOf(error, log) };
  }
}
