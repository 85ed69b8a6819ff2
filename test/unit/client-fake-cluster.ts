import * as grpc from "@grpc/grpc-js";
import { afterEach } from "vitest";
import { TallyClient, type TallyClientOptions } from "../../src/client/index.js";
import { SLOT_COUNT, slotOf } from "../../src/meta/slots.js";
import { errorInfoToMetadata, normalizeErrorInfo, type ErrorInfo } from "../../src/api/error-details.js";
import { GRPC_STATUS_BY_ERROR_CODE } from "../../src/api/status-codes.js";
import {
  tallyProto,
  type BatchOpMessage,
  type GetRequestMessage,
  type GetResponseMessage,
  type KeepAliveRequestMessage,
  type PipelineRequestBatchMessage,
  type PipelineRequestMessage,
  type PipelineResponseBatchInput,
  type PipelineResponseInput,
  type RegisterSessionRequestMessage,
  type RequestHeaderMessage,
} from "../../src/api/proto.js";
import type { ErrorCode } from "../../src/util/errors.js";
import { decodePackedAdds, encodePackedResults } from "../../src/api/packed-batch.js";

/**
 * An in-process stand-in for a tally cluster, for client tests until tallyd exists: N gRPC servers
 * on 127.0.0.1 sharing one fake state (two shards by default, exactly-once sessions per Raft
 * thesis 6.3, int64 overflow, floors, versions), plus hooks that script failures per request.
 */

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export interface FakeShard {
  shardId: number;
  slotStart: number;
  slotEnd: number;
  epoch: bigint;
  leaderId: string;
}

export interface FakeNode {
  id: string;
  address: string;
  server: grpc.Server;
  /** Live Pipeline and PipelineBatch calls on this node. */
  streams: Set<grpc.ServerDuplexStream<unknown, unknown>>;
  /** Requests per PipelineBatch message received, in order. */
  batchMessages: number[];
}

/** What a hook makes a node do with one Pipeline request instead of (or besides) serving it. */
export type HookAction =
  | { kind: "error"; info: Partial<ErrorInfo> } // reply with this error, apply nothing
  | { kind: "apply-no-reply" } // apply, but lose the reply
  | { kind: "no-reply" } // neither apply nor reply
  | { kind: "kill-stream" } // fail the whole stream (every in-flight op on it) without applying
  | { kind: "apply-kill-stream" } // apply, then fail the stream before replying
  | { kind: "hold"; until: Promise<void> }; // serve (apply and reply) once `until` resolves

export interface ReceivedRequest {
  nodeId: string;
  op: string;
  header: RequestHeaderMessage | null;
  request: PipelineRequestMessage;
}

interface StoredResult {
  response: PipelineResponseInput;
}

interface FakeSession {
  shardId: number;
  expired: boolean;
  firstUnacked: bigint;
  results: Map<string, StoredResult>;
}

interface Counter {
  value: bigint;
  version: bigint;
}

class OpFailure extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly opIndex?: number,
    readonly currentVersion?: bigint,
  ) {
    super(message);
  }
}

export function keyInShard(shard: { slotStart: number; slotEnd: number }, prefix: string, skip = 0): string {
  let found = 0;
  for (let i = 0; i < 1_000_000; i++) {
    const key = `${prefix}-${i}`;
    const slot = slotOf(Buffer.from(key));
    if (slot >= shard.slotStart && slot < shard.slotEnd) {
      if (found === skip) return key;
      found++;
    }
  }
  throw new Error("no key found");
}

export class FakeCluster {
  readonly nodes: FakeNode[] = [];
  shards: FakeShard[];
  readonly counters = new Map<string, Counter>();
  readonly sessions = new Map<string, FakeSession>();
  readonly received: ReceivedRequest[] = [];
  readonly registrations: Array<{ nodeId: string; shardId: number; clientId: string }> = [];
  readonly keepAlives: Array<{ nodeId: string; header: RequestHeaderMessage | null }> = [];
  /** Mutations served from a saved result (a retried seq). */
  duplicates = 0;
  routesCalls = 0;
  term = 1n;
  logIndex = 0n;
  pipelineHook: ((node: FakeNode, request: PipelineRequestMessage) => HookAction | undefined) | undefined;
  registerHook: ((node: FakeNode, request: RegisterSessionRequestMessage) => Partial<ErrorInfo> | undefined) | undefined;

  private constructor(
    shards: FakeShard[],
    /** The nodes serve PipelineBatch (else only Pipeline, as a node of an older version). */
    private readonly batch: boolean,
  ) {
    this.shards = shards;
  }

  static async start(options: { nodeCount?: number; shards?: FakeShard[]; batch?: boolean } = {}): Promise<FakeCluster> {
    const shards = options.shards ?? [
      { shardId: 1, slotStart: 0, slotEnd: SLOT_COUNT / 2, epoch: 1n, leaderId: "1" },
      { shardId: 2, slotStart: SLOT_COUNT / 2, slotEnd: SLOT_COUNT, epoch: 1n, leaderId: "2" },
    ];
    const cluster = new FakeCluster(shards, options.batch ?? true);
    const nodeCount = options.nodeCount ?? 3;
    for (let i = 1; i <= nodeCount; i++) await cluster.startNode(String(i));
    return cluster;
  }

  get addresses(): string[] {
    return this.nodes.map((node) => node.address);
  }

  node(id: string): FakeNode {
    const node = this.nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  shard(shardId: number): FakeShard {
    const shard = this.shards.find((candidate) => candidate.shardId === shardId);
    if (shard === undefined) throw new Error(`no shard ${shardId}`);
    return shard;
  }

  counter(key: string): Counter | undefined {
    return this.counters.get(Buffer.from(key).toString("hex"));
  }

  /** Mutations received for a key (every attempt, every node). */
  mutationsFor(key: string): ReceivedRequest[] {
    const hex = Buffer.from(key).toString("hex");
    return this.received.filter((received) => {
      const request = received.request as unknown as Record<string, unknown>;
      const op = request[received.op] as { key?: Buffer; ops?: BatchOpMessage[]; packedAdds?: Buffer } | undefined;
      if (received.op === "get" || received.op === "getMany") return false;
      if (op?.key !== undefined) return op.key.toString("hex") === hex;
      return batchOpsOf(op ?? {}).some((batchOp) => {
        const inner = batchOp[batchOp.op!] as { key: Buffer };
        return inner.key.toString("hex") === hex;
      });
    });
  }

  /** Every Pipeline stream on the node fails at once (as if the node's connection dropped). */
  killStreams(nodeId: string): void {
    for (const stream of this.node(nodeId).streams) {
      stream.emit("error", { code: grpc.status.UNAVAILABLE, details: "killed by the test" });
    }
  }

  async close(): Promise<void> {
    for (const node of this.nodes) node.server.forceShutdown();
  }

  private async startNode(id: string): Promise<void> {
    const server = new grpc.Server();
    const node: FakeNode = { id, address: "", server, streams: new Set(), batchMessages: [] };
    const proto = tallyProto();
    server.addService(proto.CounterService.service, {
      RegisterSession: (call: grpc.ServerUnaryCall<RegisterSessionRequestMessage, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        this.unary(callback, () => this.registerSession(node, call.request)),
      KeepAlive: (call: grpc.ServerUnaryCall<KeepAliveRequestMessage, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        this.unary(callback, () => this.keepAlive(node, call.request)),
      Routes: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        this.unary(callback, () => this.routes()),
      Pipeline: (call: grpc.ServerDuplexStream<PipelineRequestMessage, PipelineResponseInput>) =>
        this.pipeline(node, call as grpc.ServerDuplexStream<unknown, unknown>, false),
      // Without it (batch: false) a client meets a node of an older version: UNIMPLEMENTED.
      ...(this.batch
        ? {
            PipelineBatch: (call: grpc.ServerDuplexStream<PipelineRequestBatchMessage, PipelineResponseBatchInput>) =>
              this.pipeline(node, call as grpc.ServerDuplexStream<unknown, unknown>, true),
          }
        : {}),
      Add: unimplemented,
      Set: unimplemented,
      Reset: unimplemented,
      CompareAndSet: unimplemented,
      AddBatch: unimplemented,
      Get: unimplemented,
      GetMany: unimplemented,
    });
    server.addService(proto.AdminService.service, {
      Status: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        this.unary(callback, () => this.status()),
      TransferLeader: unimplemented,
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, boundPort) =>
        error ? reject(error) : resolve(boundPort),
      ),
    );
    node.address = `127.0.0.1:${port}`;
    this.nodes.push(node);
  }

  private unary(callback: grpc.sendUnaryData<unknown>, handler: () => unknown): void {
    try {
      callback(null, handler());
    } catch (error) {
      if (!(error instanceof OpFailure)) throw error;
      const info = this.errorInfo(error);
      callback({
        code: GRPC_STATUS_BY_ERROR_CODE[error.code],
        details: error.message,
        metadata: errorInfoToMetadata(info),
      });
    }
  }

  private errorInfo(error: OpFailure | { info: Partial<ErrorInfo> }): ErrorInfo {
    if (!(error instanceof OpFailure)) return normalizeErrorInfo(error.info);
    const extra = error as unknown as Partial<ErrorInfo>;
    return normalizeErrorInfo({
      code: error.code,
      message: error.message,
      ...(error.opIndex !== undefined ? { hasOpIndex: true, opIndex: error.opIndex } : {}),
      ...(error.currentVersion !== undefined ? { currentVersion: String(error.currentVersion) } : {}),
      ...(extra.leaderId !== undefined ? { leaderId: extra.leaderId } : {}),
      ...(extra.leaderAddress !== undefined ? { leaderAddress: extra.leaderAddress } : {}),
      ...(extra.shardId !== undefined ? { shardId: extra.shardId } : {}),
      ...(extra.currentEpoch !== undefined ? { currentEpoch: extra.currentEpoch } : {}),
    });
  }

  private leaderCheck(node: FakeNode, shard: FakeShard): void {
    if (shard.leaderId !== node.id) {
      const leader = this.node(shard.leaderId);
      throw Object.assign(new OpFailure("NOT_LEADER", `node ${node.id} is not the leader of shard ${shard.shardId}`), {
        leaderId: leader.id,
        leaderAddress: leader.address,
        shardId: shard.shardId,
      });
    }
  }

  private routes(): unknown {
    this.routesCalls++;
    return {
      slotCount: SLOT_COUNT,
      shards: this.shards.map((shard) => ({
        shardId: shard.shardId,
        slotStart: shard.slotStart,
        slotEnd: shard.slotEnd,
        epoch: String(shard.epoch),
        replicas: this.nodes.map((node) => ({
          nodeId: node.id,
          address: node.address,
          role: node.id === shard.leaderId ? "leader" : "follower",
        })),
        leaderId: shard.leaderId,
        term: String(this.term),
      })),
    };
  }

  private status(): unknown {
    return {
      nodes: this.nodes.map((node) => ({
        nodeId: node.id,
        clientAddress: node.address,
        zone: `z${node.id}`,
        host: String(node.id),
        reachable: true,
        error: "",
        groups: this.shards.map((shard) => ({
          groupId: shard.shardId,
          role: shard.leaderId === node.id ? "leader" : "follower",
          term: String(this.term),
          leaderId: shard.leaderId,
          commit: String(this.logIndex),
          applied: String(this.logIndex),
          lastIndex: String(this.logIndex),
          leaseValid: shard.leaderId === node.id,
          epoch: String(shard.epoch),
          peers: [],
        })),
      })),
    };
  }

  private registerSession(node: FakeNode, request: RegisterSessionRequestMessage): unknown {
    const scripted = this.registerHook?.(node, request);
    if (scripted !== undefined)
      throw Object.assign(new OpFailure((scripted.code ?? "INTERNAL") as ErrorCode, scripted.message ?? "scripted"), scripted);
    const shard = this.shard(request.shardId);
    this.leaderCheck(node, shard);
    this.logIndex++;
    const clientId = String(this.logIndex);
    this.sessions.set(clientId, { shardId: shard.shardId, expired: false, firstUnacked: 1n, results: new Map() });
    this.registrations.push({ nodeId: node.id, shardId: shard.shardId, clientId });
    return { clientId, fence: { term: String(this.term), index: String(this.logIndex) } };
  }

  private keepAlive(node: FakeNode, request: KeepAliveRequestMessage): unknown {
    this.keepAlives.push({ nodeId: node.id, header: request.header });
    const session = this.sessions.get(request.header?.clientId ?? "");
    if (session === undefined || session.expired) throw new OpFailure("SESSION_EXPIRED", "session expired");
    return { fence: { term: String(this.term), index: String(this.logIndex) } };
  }

  /** A Pipeline stream, or a PipelineBatch one (`batched`: each message's requests served in order, each reply in a message of its own). */
  private pipeline(node: FakeNode, call: grpc.ServerDuplexStream<unknown, unknown>, batched: boolean): void {
    const write = (response: PipelineResponseInput): void => {
      call.write(batched ? { responses: [response] } : response);
    };
    node.streams.add(call);
    const forget = (): void => {
      node.streams.delete(call);
    };
    call.on("end", () => {
      forget();
      call.end();
    });
    call.on("error", forget);
    call.on("close", forget);
    call.on("data", (message: unknown) => {
      if (!batched) return serveOne(message as PipelineRequestMessage);
      const { requests } = message as PipelineRequestBatchMessage;
      node.batchMessages.push(requests.length);
      for (const request of requests) serveOne(request);
    });
    const serveOne = (request: PipelineRequestMessage): void => {
      const op = request.op ?? "";
      const body = (request as unknown as Record<string, unknown>)[op] as { header?: RequestHeaderMessage | null } | undefined;
      this.received.push({ nodeId: node.id, op, header: body?.header ?? null, request });
      const action = this.pipelineHook?.(node, request);
      if (action?.kind === "kill-stream") {
        call.emit("error", { code: grpc.status.UNAVAILABLE, details: "stream killed by the test" });
        return;
      }
      if (action?.kind === "no-reply") return;
      if (action?.kind === "hold") {
        void action.until.then(() => write(this.serve(node, request)));
        return;
      }
      if (action?.kind === "error") {
        write({ id: request.id, error: normalizeErrorInfo(action.info) });
        return;
      }
      const response = this.serve(node, request);
      if (action?.kind === "apply-no-reply") return;
      if (action?.kind === "apply-kill-stream") {
        call.emit("error", { code: grpc.status.UNAVAILABLE, details: "stream killed by the test after applying" });
        return;
      }
      write(response);
    };
  }

  /** Serves one Pipeline request (the state machine), returning the reply. */
  serve(node: FakeNode, request: PipelineRequestMessage): PipelineResponseInput {
    try {
      switch (request.op) {
        case "get":
          return { id: request.id, get: this.read(node, request.get!, [request.get!.key])[0]! };
        case "getMany":
          return { id: request.id, getMany: { values: this.read(node, request.getMany!, request.getMany!.keys) } };
        case "add":
        case "set":
        case "reset":
        case "compareAndSet":
        case "batch":
          return this.mutate(node, request);
        default:
          throw new OpFailure("INVALID_ARGUMENT", `unknown op ${String(request.op)}`);
      }
    } catch (error) {
      if (!(error instanceof OpFailure)) throw error;
      return { id: request.id, error: this.errorInfo(error) };
    }
  }

  private shardCheck(header: { shardId: number; epoch: string }, keys: Buffer[]): FakeShard {
    const shard = this.shards.find((candidate) => candidate.shardId === header.shardId);
    const current = shard ?? this.shards.find((candidate) => keys.length > 0 && inShard(candidate, keys[0]!));
    if (shard === undefined || BigInt(header.epoch || "0") !== shard.epoch || !keys.every((key) => inShard(shard, key))) {
      throw Object.assign(new OpFailure("WRONG_SHARD", "wrong shard or stale epoch"), {
        shardId: current?.shardId ?? 0,
        currentEpoch: String(current?.epoch ?? 0n),
      });
    }
    return shard;
  }

  private read(node: FakeNode, request: Omit<GetRequestMessage, "key" | "hotSubCounters">, keys: Buffer[]): GetResponseMessage[] {
    const shard = this.shardCheck(request, keys);
    if (request.consistency !== "STALE") this.leaderCheck(node, shard);
    return keys.map((key) => {
      const counter = this.counters.get(key.toString("hex"));
      return {
        value: String(counter?.value ?? 0n),
        version: String(counter?.version ?? 0n),
        exists: counter !== undefined,
        fence: { term: String(this.term), index: String(this.logIndex) },
        appliedIndex: String(this.logIndex),
      };
    });
  }

  private mutate(node: FakeNode, request: PipelineRequestMessage): PipelineResponseInput {
    const op = request.op!;
    const body = (request as unknown as Record<string, unknown>)[op] as {
      header: RequestHeaderMessage | null;
      key?: Buffer;
      ops?: BatchOpMessage[];
      packedAdds?: Buffer;
    };
    const header = body.header;
    if (header === null) throw new OpFailure("INVALID_ARGUMENT", "missing header");
    const ops: BatchOpMessage[] = op === "batch" ? batchOpsOf(body) : [{ op: op as BatchOpMessage["op"], [op]: body } as BatchOpMessage];
    const keys = ops.map((batchOp) => (batchOp[batchOp.op!] as { key: Buffer }).key);
    const shard = this.shardCheck(header, keys);
    this.leaderCheck(node, shard);
    const session = this.sessions.get(header.clientId);
    if (session === undefined || session.expired || session.shardId !== shard.shardId) {
      throw new OpFailure("SESSION_EXPIRED", `session ${header.clientId} is unknown or expired`);
    }
    const seq = BigInt(header.seq);
    const firstUnacked = BigInt(header.firstUnackedSeq);
    if (!(seq >= 1n && firstUnacked <= seq)) throw new OpFailure("INVALID_ARGUMENT", `bad seq ${seq} / firstUnacked ${firstUnacked}`);
    if (firstUnacked > session.firstUnacked) {
      for (const saved of session.results.keys()) if (BigInt(saved) < firstUnacked) session.results.delete(saved);
      session.firstUnacked = firstUnacked;
    }
    const saved = session.results.get(header.seq);
    if (saved !== undefined) {
      this.duplicates++;
      return { ...saved.response, id: request.id };
    }
    if (seq < session.firstUnacked) throw new OpFailure("FAILED_PRECONDITION", `seq ${seq} was acknowledged already`);
    let response: PipelineResponseInput;
    try {
      response = this.apply(request.id, op, ops, (body.packedAdds?.length ?? 0) > 0);
    } catch (error) {
      if (!(error instanceof OpFailure)) throw error;
      // Raft thesis 6.3: the result of a seq is saved whatever it was, errors included.
      session.results.set(header.seq, { response: { id: "", error: this.errorInfo(error) } });
      throw error;
    }
    session.results.set(header.seq, { response });
    return response;
  }

  /** All or nothing: compute every new value first, then commit them under one log index. */
  private apply(id: string, op: string, ops: BatchOpMessage[], packed: boolean): PipelineResponseInput {
    const index = this.logIndex + 1n;
    const staged = new Map<string, Counter | undefined>();
    const results: Array<{ value: bigint; version: bigint }> = [];
    ops.forEach((batchOp, opIndex) => {
      const inner = batchOp[batchOp.op!] as {
        key: Buffer;
        delta?: string;
        hasFloor?: boolean;
        floor?: string;
        value?: string;
        expectedVersion?: string;
      };
      const hex = inner.key.toString("hex");
      const current = staged.has(hex) ? staged.get(hex) : this.counters.get(hex);
      let next: Counter | undefined;
      switch (batchOp.op) {
        case "add": {
          const value = (current?.value ?? 0n) + BigInt(inner.delta ?? "0");
          if (value < INT64_MIN || value > INT64_MAX) throw new OpFailure("OUT_OF_RANGE", "int64 overflow", opIndex);
          if (inner.hasFloor && value < BigInt(inner.floor ?? "0")) throw new OpFailure("FAILED_PRECONDITION", "below floor", opIndex);
          next = { value, version: index };
          break;
        }
        case "set":
          next = { value: BigInt(inner.value ?? "0"), version: index };
          break;
        case "reset":
          next = undefined;
          break;
        case "compareAndSet": {
          const expected = BigInt(inner.expectedVersion ?? "0");
          if ((current?.version ?? 0n) !== expected) {
            throw new OpFailure("VERSION_MISMATCH", "version mismatch", opIndex, current?.version ?? 0n);
          }
          next = { value: BigInt(inner.value ?? "0"), version: index };
          break;
        }
        default:
          throw new OpFailure("INVALID_ARGUMENT", "empty op", opIndex);
      }
      staged.set(hex, next);
      results.push({ value: next?.value ?? 0n, version: next?.version ?? index });
    });
    this.logIndex = index;
    for (const [hex, counter] of staged) {
      if (counter === undefined) this.counters.delete(hex);
      else this.counters.set(hex, counter);
    }
    const fence = { term: String(this.term), index: String(index) };
    if (op === "batch" && packed) {
      return {
        id,
        batch: {
          results: [],
          packedResults: encodePackedResults(results.map((r) => ({ value: r.value, version: Number(r.version) }))),
          fence,
        },
      };
    }
    if (op === "batch") {
      return { id, batch: { results: results.map((r) => ({ value: String(r.value), version: String(r.version) })), fence } };
    }
    const only = results[0]!;
    return { id, mutation: { value: String(only.value), version: String(only.version), fence } };
  }
}

function inShard(shard: { slotStart: number; slotEnd: number }, key: Buffer): boolean {
  const slot = slotOf(key);
  return slot >= shard.slotStart && slot < shard.slotEnd;
}

function unimplemented(_call: unknown, callback?: grpc.sendUnaryData<unknown>): void {
  callback?.({ code: grpc.status.UNIMPLEMENTED, details: "not in the fake" });
}

/** A batch's ops in message form, from `ops` or from the packed form of a plain-add batch. */
export function batchOpsOf(body: { ops?: BatchOpMessage[]; packedAdds?: Buffer }): BatchOpMessage[] {
  if (body.packedAdds === undefined || body.packedAdds.length === 0) return body.ops ?? [];
  return decodePackedAdds(body.packedAdds, { maxOps: 10_000, maxKeyBytes: 256 }).map(
    (add) =>
      ({
        op: "add",
        add: { key: Buffer.from(add.key), delta: String(add.delta), hasFloor: false, floor: "0", ttlMs: "0" },
      }) as BatchOpMessage,
  );
}

/** The client options fakeClusterPerTest() starts from: every node an endpoint, quick retries. */
const QUICK_RETRIES = (cluster: FakeCluster): Partial<TallyClientOptions> => ({
  endpoints: cluster.addresses,
  retryBackoffMs: 5,
  retryBackoffMaxMs: 50,
});

/**
 * A FakeCluster and a TallyClient for each test, both closed after it: registers the afterEach and
 * returns the set-up. The client's options are `base` of the started cluster, then the set-up's
 * options (or options made from the cluster) over them.
 */
export function fakeClusterPerTest(
  base: (cluster: FakeCluster) => Partial<TallyClientOptions> = QUICK_RETRIES,
  clusterOptions: { batch?: boolean } = {},
): (
  options?: Partial<TallyClientOptions> | ((cluster: FakeCluster) => Partial<TallyClientOptions>),
) => Promise<{ cluster: FakeCluster; client: TallyClient }> {
  let cluster: FakeCluster | undefined;
  let client: TallyClient | undefined;
  afterEach(async () => {
    await client?.close();
    await cluster?.close();
    client = undefined;
    cluster = undefined;
  });
  return async (options = {}) => {
    cluster = await FakeCluster.start(clusterOptions);
    const overrides = typeof options === "function" ? options(cluster) : options;
    client = new TallyClient({ endpoints: cluster.addresses, ...base(cluster), ...overrides });
    return { cluster, client };
  };
}
