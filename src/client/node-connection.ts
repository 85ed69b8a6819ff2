import * as grpc from "@grpc/grpc-js";
import { assert } from "../util/assert.js";
import { monotonicMs } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { TallyError } from "../util/errors.js";
import type { Cancellation } from "./cancellation.js";
import { decodeServiceError, normalizeErrorInfo, type ErrorInfo } from "../api/error-details.js";
import {
  tallyProto,
  type AdminServiceClient,
  type CounterServiceClient,
  type PipelineOpInputs,
  type PipelineOpName,
  type PipelineRequestInput,
  type PipelineResponseBatchMessage,
  type PipelineResponseMessage,
} from "../api/proto.js";
import { MessagePacker } from "./message-packer.js";

/**
 * How one Pipeline attempt ended. `unsent` means the request certainly never reached the node
 * (no connection): the only outcome that proves a mutation was not applied without a reply.
 * `lost` and `timeout` mean it was written and the node may have applied it.
 */
export type PipelineOutcome =
  | { kind: "reply"; response: PipelineResponseMessage }
  | { kind: "error"; info: ErrorInfo }
  | { kind: "unsent"; cause: unknown }
  | { kind: "lost"; cause: unknown }
  | { kind: "timeout" }
  | { kind: "aborted"; sent: boolean };

export type UnaryOutcome<T> = { kind: "reply"; response: T } | { kind: "error"; error: TallyError; info: ErrorInfo | undefined };

interface PendingAttempt {
  settle(outcome: PipelineOutcome): void;
}

/**
 * The connection's op stream: PipelineBatch (the ops of one event-loop turn leave in as few
 * messages as MessagePacker allows, replies come back together) or, against a node without it or
 * after a batch message was refused, Pipeline (one op per message).
 */
interface PipelineStream {
  readonly call: grpc.ClientDuplexStream<never, PipelineResponseMessage | PipelineResponseBatchMessage>;
  readonly batched: boolean;
  /** Ops waiting for the end of the turn (batched streams only). */
  packer: MessagePacker | undefined;
}

/**
 * Stream failures after which the connection falls back to one op per message, for good: the node
 * lacks PipelineBatch (UNIMPLEMENTED), or refused a batch message (over its maxRequestBytes or a
 * request bound). Over Pipeline an op over a bound is then answered alone, with its own error.
 */
const UNBATCHED_AFTER: ReadonlySet<number> = new Set([
  grpc.status.UNIMPLEMENTED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.INVALID_ARGUMENT,
]);

export interface NodeConnectionOptions {
  address: string;
  credentials: grpc.ChannelCredentials;
  connectTimeoutMs: number;
  logger: Logger;
  /** Sent as `authorization: Bearer <token>` on every call and stream (clusters with auth). */
  token?: string;
}

/** Adds the bearer token to the metadata of every call made through a client. */
function bearerTokenInterceptor(token: string): grpc.Interceptor {
  const value = `Bearer ${token}`;
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set("authorization", value);
        next(metadata, listener);
      },
    });
}

/**
 * One node: one gRPC channel (shared by the counter and admin clients) and at most one op stream
 * (PipelineBatch, or Pipeline where the node lacks it) over it, opened lazily and reopened after
 * it dies. Attempts are matched to replies by id; ids are unique for the connection's lifetime, so
 * a late reply can never be taken for another op.
 * Invariant: every pending attempt belongs to the current stream; when a stream dies, all of them
 * are settled as `lost` before another stream is opened.
 */
export class NodeConnection {
  readonly address: string;
  /** monotonicMs of the last connection failure, to steer attempts elsewhere for a while. */
  lastFailureAtMs = Number.NEGATIVE_INFINITY;

  /** Someone fresher than our failure observation vouches for the node (a leader hint). */
  clearFailure(): void {
    this.lastFailureAtMs = Number.NEGATIVE_INFINITY;
  }
  private readonly channel: grpc.Channel;
  private readonly counterClient: CounterServiceClient;
  private readonly adminClient: AdminServiceClient;
  private readonly connectTimeoutMs: number;
  private readonly logger: Logger;
  private stream: PipelineStream | undefined;
  /** Cleared for good when a PipelineBatch stream fails as UNBATCHED_AFTER says. */
  private batchedStreams = true;
  private readonly pending = new Map<string, PendingAttempt>();
  private nextId = 1;
  private connecting: Promise<boolean> | undefined;
  private closed = false;

  constructor(options: NodeConnectionOptions) {
    this.address = options.address;
    this.connectTimeoutMs = options.connectTimeoutMs;
    this.logger = options.logger.child({ node: options.address });
    const proto = tallyProto();
    // Reconnect quickly after a node restarts: the default 1 s..120 s backoff would keep a
    // recovered leader unused for minutes. Our own retry loop paces attempts.
    this.channel = new grpc.Channel(options.address, options.credentials, {
      // The client retries with its own rules (same seq, other replicas); gRPC's transparent
      // retries would also buffer every message of the long-lived Pipeline stream.
      "grpc.enable_retries": 0,
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 2_000,
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
      // Channelz bookkeeping runs on every call and message; nothing reads it.
      "grpc.enable_channelz": 0,
    });
    const clientOptions: grpc.ClientOptions = { channelOverride: this.channel };
    if (options.token !== undefined) clientOptions.interceptors = [bearerTokenInterceptor(options.token)];
    this.counterClient = new proto.CounterService(options.address, options.credentials, clientOptions);
    this.adminClient = new proto.AdminService(options.address, options.credentials, clientOptions);
  }

  get inflightCount(): number {
    return this.pending.size;
  }

  private isReady(): boolean {
    return !this.closed && this.channel.getConnectivityState(false) === grpc.connectivityState.READY;
  }

  /**
   * Waits (bounded) for the channel to be READY. Fails fast in TRANSIENT_FAILURE so the caller
   * can try another replica instead of sitting out gRPC's reconnect backoff.
   */
  private ensureConnected(deadlineAtMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    const state = this.channel.getConnectivityState(true);
    if (state === grpc.connectivityState.READY) return Promise.resolve(true);
    if (this.connecting !== undefined) return this.connecting;
    const deadline = Math.min(deadlineAtMs, monotonicMs() + this.connectTimeoutMs);
    const attempt = new Promise<boolean>((resolve) => {
      const watch = (current: grpc.connectivityState): void => {
        if (this.closed) return resolve(false);
        if (current === grpc.connectivityState.READY) return resolve(true);
        if (current === grpc.connectivityState.SHUTDOWN) return resolve(false);
        if (current === grpc.connectivityState.TRANSIENT_FAILURE) return resolve(false);
        const remainingMs = deadline - monotonicMs();
        if (remainingMs <= 0) return resolve(false);
        this.channel.watchConnectivityState(current, Date.now() + remainingMs, (error) => {
          if (error !== undefined) return resolve(false);
          watch(this.channel.getConnectivityState(true));
        });
      };
      watch(state);
    });
    this.connecting = attempt.finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private openStream(): PipelineStream {
    assert(this.stream === undefined, "a pipeline stream is already open");
    assert(this.pending.size === 0, "pending attempts without a stream");
    const batched = this.batchedStreams;
    const call = (batched ? this.counterClient.PipelineBatch() : this.counterClient.Pipeline()) as PipelineStream["call"];
    const stream: PipelineStream = { call, batched, packer: undefined };
    this.stream = stream;
    const onReply = (response: PipelineResponseMessage): void => {
      const attempt = this.pending.get(response.id);
      if (attempt === undefined) return; // timed out or aborted already: the reply is stale.
      this.pending.delete(response.id);
      if (response.result === "error") {
        attempt.settle({ kind: "error", info: normalizeErrorInfo(response.error ?? {}) });
      } else {
        attempt.settle({ kind: "reply", response });
      }
    };
    call.on(
      "data",
      batched
        ? (message: PipelineResponseBatchMessage) => {
            for (const response of message.responses) onReply(response);
          }
        : onReply,
    );
    call.on("error", (error: Error) => {
      const code = (error as grpc.ServiceError).code;
      if (batched && UNBATCHED_AFTER.has(code)) {
        this.logger.debug({ err: error }, "PipelineBatch refused; one op per message from now on");
        this.batchedStreams = false;
      }
      // A node without the method ran none of the stream's ops.
      this.onStreamDown(stream, error, batched && code === grpc.status.UNIMPLEMENTED);
    });
    call.on("end", () => this.onStreamDown(stream, new Error("pipeline stream ended by the server")));
    call.on("close", () => this.onStreamDown(stream, new Error("pipeline stream closed")));
    return stream;
  }

  /** Writes one op: at once on a Pipeline stream, at the end of the turn with the turn's others on a PipelineBatch stream. */
  private write(stream: PipelineStream, request: PipelineRequestInput): void {
    // Backpressure: write() returning false only means gRPC buffered it; the buffer is bounded
    // by the client's in-flight limit (maxInflightOps), so there is nothing to wait for.
    if (!stream.batched) {
      stream.call.write(request as never);
      return;
    }
    if (stream.packer === undefined) {
      const packer = new MessagePacker();
      stream.packer = packer;
      setImmediate(() => {
        stream.packer = undefined;
        // A stream that died meanwhile settled these ops as lost already.
        if (this.stream !== stream) return;
        for (const requests of packer.messages()) stream.call.write({ requests } as never);
      });
    }
    stream.packer.add(request);
  }

  private onStreamDown(stream: PipelineStream, cause: unknown, neverRan = false): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    // A stream can end while the connection stays up (the server reset one call); only a
    // connection that is down makes this node one to avoid for a while.
    if (this.channel.getConnectivityState(false) !== grpc.connectivityState.READY) this.lastFailureAtMs = monotonicMs();
    if (this.pending.size > 0) {
      this.logger.debug({ err: cause, inflight: this.pending.size }, "pipeline stream lost");
    }
    const attempts = [...this.pending.values()];
    this.pending.clear();
    for (const attempt of attempts) attempt.settle(neverRan ? { kind: "unsent", cause } : { kind: "lost", cause });
    // Drop our half too, so gRPC frees the call.
    stream.call.cancel();
  }

  /** Sends one op on the pipeline and waits (at most timeoutMs after it is written) for its reply. */
  async send<K extends PipelineOpName>(
    opName: K,
    op: PipelineOpInputs[K],
    timeoutMs: number,
    deadlineAtMs: number,
    cancellation: Cancellation | undefined,
  ): Promise<PipelineOutcome> {
    assert(timeoutMs > 0, "attempt timeout must be positive");
    if (cancellation?.cancelled) return { kind: "aborted", sent: false };
    const connected = this.isReady() || (await this.ensureConnected(Math.min(deadlineAtMs, monotonicMs() + timeoutMs)));
    if (!connected) {
      this.lastFailureAtMs = monotonicMs();
      return { kind: "unsent", cause: new Error(`cannot connect to ${this.address}`) };
    }
    if (cancellation?.cancelled) return { kind: "aborted", sent: false };
    if (this.closed) return { kind: "unsent", cause: new Error("connection closed") };
    const stream = this.stream ?? this.openStream();
    const idNumber = this.nextId++;
    assert(Number.isSafeInteger(idNumber), "pipeline ids stay safe integers");
    // Replies carry the id back as a decimal string (longs: String); it goes out as a number,
    // which protobufjs encodes to the same bytes without parsing a string.
    const id = String(idNumber);
    return new Promise<PipelineOutcome>((resolve) => {
      let settled = false;
      const finish = (outcome: PipelineOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        unsubscribe?.();
        resolve(outcome);
      };
      this.pending.set(id, { settle: finish });
      const timer = setTimeout(() => {
        this.pending.delete(id);
        finish({ kind: "timeout" });
      }, timeoutMs);
      const unsubscribe = cancellation?.onCancel(() => {
        this.pending.delete(id);
        finish({ kind: "aborted", sent: true });
      });
      this.write(stream, { id: idNumber, [opName]: op });
    });
  }

  /** A unary call with a deadline; errors come back typed (ErrorInfo when the server sent one). */
  unary<Request, Response>(
    service: "counter" | "admin",
    method: string,
    request: Request,
    deadlineAtMs: number,
  ): Promise<UnaryOutcome<Response>> {
    const client = service === "counter" ? this.counterClient : this.adminClient;
    const call = (client as unknown as Record<string, unknown>)[method];
    assert(typeof call === "function", `no such RPC: ${service}.${method}`);
    const remainingMs = Math.max(1, deadlineAtMs - monotonicMs());
    return new Promise((resolve) => {
      if (this.closed) {
        resolve({ kind: "error", error: decodeServiceError(new Error("connection closed")).error, info: undefined });
        return;
      }
      (call as (req: Request, options: grpc.CallOptions, callback: grpc.requestCallback<Response>) => void).call(
        client,
        request,
        { deadline: Date.now() + remainingMs },
        (error, response) => {
          if (error !== null || response === undefined) {
            const decoded = decodeServiceError(error);
            if (decoded.error.code === "UNAVAILABLE" && decoded.info === undefined) this.lastFailureAtMs = monotonicMs();
            resolve({ kind: "error", error: decoded.error, info: decoded.info });
          } else {
            resolve({ kind: "reply", response });
          }
        },
      );
    });
  }

  /** A server-streaming call (Watch, ShardBackup) on this node's channel; the caller cancels it. */
  serverStream<Request, Response>(
    method: string,
    request: Request,
    service: "counter" | "admin" = "counter",
  ): grpc.ClientReadableStream<Response> {
    const client = service === "counter" ? this.counterClient : this.adminClient;
    const call = (client as unknown as Record<string, unknown>)[method];
    assert(typeof call === "function", `no such RPC: ${service}.${method}`);
    return (call as (req: Request) => grpc.ClientReadableStream<Response>).call(client, request);
  }

  /** Settles every pending attempt as aborted and closes the stream and channel. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const stream = this.stream;
    this.stream = undefined;
    const attempts = [...this.pending.values()];
    this.pending.clear();
    for (const attempt of attempts) attempt.settle({ kind: "aborted", sent: true });
    if (stream !== undefined) {
      stream.call.end();
      stream.call.cancel();
    }
    this.counterClient.close();
    this.adminClient.close();
    this.channel.close();
  }
}
