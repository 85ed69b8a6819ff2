/**
 * CounterService.Pipeline: many independent operations over one stream, matched by id; replies may
 * come out of order. The stream authenticates once (auth-gate.ts pipelineCaller) and checks every
 * op (pipelineDenial); each op takes the node's and its connection's in-flight slots like a unary
 * call (request-guard.ts pipelineOp), and the stream itself holds at most PIPELINE_INFLIGHT_MAX.
 * Replies are written with backpressure (pipelineWriter).
 *
 * CounterService.PipelineBatch is the same stream with many ops per message both ways: a message's
 * requests each go the Pipeline way (streamOps), and the replies ready in one event-loop turn leave
 * in one message (batchedWriter). gRPC's cost is per message (HTTP/2 frames, grpc-js's stream
 * machinery, a write system call), so a client with many small ops in flight pays it once per turn
 * instead of once per op (docs/adr/0014-many-ops-per-stream-message.md).
 */
import type * as grpc from "@grpc/grpc-js";
import type {
  PipelineRequestBatchMessage,
  PipelineRequestMessage,
  PipelineResponseBatchInput,
  PipelineResponseInput,
} from "../../api/proto.js";
import { InvalidArgumentError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { stampCaller, type AuthGate } from "./auth-gate.js";
import type { CounterApi } from "./counter-service.js";
import { errorInfoOf } from "./errors.js";
import { RefusedRequest } from "./request-bounds.js";
import type { RequestGuard } from "./request-guard.js";

/** Bounds a single Pipeline stream; beyond it, operations are answered OVERLOADED at once. */
const PIPELINE_INFLIGHT_MAX = 20_000;
/** Replies in one PipelineBatch message at most; more ready in one turn go in further messages. */
export const PIPELINE_BATCH_REPLIES_MAX = 512;

type PipelineResponse = PipelineResponseInput;
export type PipelineCall = grpc.ServerDuplexStream<PipelineRequestMessage, PipelineResponse>;
export type PipelineBatchCall = grpc.ServerDuplexStream<PipelineRequestBatchMessage, PipelineResponseBatchInput>;

/** The Pipeline handler for one server: every stream shares the node's api, gate and guard. */
export function pipelineHandler(
  api: CounterApi,
  gate: AuthGate | undefined,
  guard: RequestGuard,
  log: Logger,
): (call: PipelineCall) => void {
  return (call) => {
    const ops = streamOps(call, pipelineWriter(call), api, gate, guard, log);
    call.on("data", (request: PipelineRequestMessage | RefusedRequest) => ops.receive(request));
    call.on("end", () => ops.end());
    call.on("error", () => undefined);
  };
}

/**
 * The PipelineBatch handler: each request of a message goes the way a Pipeline op goes (its
 * checks, its in-flight slot, its reply), and the replies ready in one event-loop turn leave in
 * one message (at most PIPELINE_BATCH_REPLIES_MAX each). A message over a request bound never
 * reaches it: admission.ts ends the stream with INVALID_ARGUMENT.
 */
export function pipelineBatchHandler(
  api: CounterApi,
  gate: AuthGate | undefined,
  guard: RequestGuard,
  log: Logger,
): (call: PipelineBatchCall) => void {
  return (call) => {
    const ops = streamOps(call, batchedWriter(call), api, gate, guard, log);
    call.on("data", (batch: PipelineRequestBatchMessage) => {
      const requests = Array.isArray(batch.requests) ? batch.requests : [];
      for (let i = 0; i < requests.length; i++) ops.receive(requests[i]!);
    });
    call.on("end", () => ops.end());
    call.on("error", () => undefined);
  };
}

/** Where a stream's replies go: `write` one, `flush` what is held (before the stream ends). */
interface ReplyWriter {
  write(response: PipelineResponse): void;
  flush(): void;
}

/** One stream's ops: checks, the stream's in-flight bound, the op, its reply; ends the stream once drained. */
function streamOps(
  call: PipelineCall | PipelineBatchCall,
  writer: ReplyWriter,
  api: CounterApi,
  gate: AuthGate | undefined,
  guard: RequestGuard,
  log: Logger,
): { receive(request: PipelineRequestMessage | RefusedRequest): void; end(): void } {
  const run = (request: PipelineRequestMessage): Promise<PipelineResponse> => pipelineOp(api, request, log);
  let inflight = 0;
  let ended = false;
  const caller = gate?.pipelineCaller(call);
  const callerName = caller?.principal?.name ?? "";
  const peer = call.getPeer();
  const finishIfDrained = (): void => {
    if (!ended || inflight !== 0) return;
    writer.flush();
    call.end();
  };
  const answer = (response: PipelineResponse): void => {
    inflight--;
    if (!call.cancelled && !call.destroyed) writer.write(response);
    finishIfDrained();
  };
  return {
    receive(request) {
      if (request instanceof RefusedRequest) {
        // Over a bound (request-bounds.ts) yet with a readable id: that op alone is refused.
        guard.refusedBeforeHandler("Pipeline.none", request.error);
        writer.write({ id: request.id ?? "0", error: errorInfoOf(request.error, log) });
        return;
      }
      const denied = caller === undefined ? undefined : gate?.pipelineDenial(caller, request);
      if (denied !== undefined) {
        writer.write(denied);
        return;
      }
      if (inflight >= PIPELINE_INFLIGHT_MAX) {
        guard.pipelineRefused(request, "stream_inflight");
        writer.write({
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
    },
    end() {
      ended = true;
      finishIfDrained();
    },
  };
}

/**
 * Writes Pipeline replies with backpressure: while the client does not read its replies, the
 * stream stops reading requests (HTTP/2 flow control then holds the client back), so a client that
 * sends without reading cannot grow this node's memory beyond one stream buffer.
 */
function pipelineWriter(call: PipelineCall): ReplyWriter {
  const write = backpressured(call);
  return { write, flush: () => undefined };
}

/** PipelineBatch's writer: replies wait for the end of the turn and leave together, with backpressure. */
function batchedWriter(call: PipelineBatchCall): ReplyWriter {
  const write = backpressured(call);
  let held: PipelineResponse[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (held.length === 0) return;
    const replies = held;
    held = [];
    if (call.cancelled || call.destroyed) return;
    if (replies.length <= PIPELINE_BATCH_REPLIES_MAX) write({ responses: replies });
    else
      for (let at = 0; at < replies.length; at += PIPELINE_BATCH_REPLIES_MAX)
        write({ responses: replies.slice(at, at + PIPELINE_BATCH_REPLIES_MAX) });
  };
  return {
    write(response) {
      held.push(response);
      if (scheduled) return;
      scheduled = true;
      setImmediate(flush);
    },
    flush,
  };
}

/** call.write, pausing the stream's reads while the client does not read (see pipelineWriter). */
function backpressured<T>(call: grpc.ServerDuplexStream<unknown, T>): (message: T) => void {
  let paused = false;
  return (message) => {
    if (call.write(message) || paused) return;
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
