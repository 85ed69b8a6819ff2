/**
 * CounterService (proto/tally.proto) for one node, except its two streams (watch.ts, pipeline.ts):
 * sessions, mutations, reads, counter-kind reads and the routing map. Each request's fields are
 * validated here (fields.ts; bad input never reaches the log), routed to a shard replica, and
 * answered with value, version and a fencing token. A mutation names itself by a session
 * (client_id, seq) or by a request_id; a request_id write may arrive at any node, which forwards
 * it to the shard's leader (forwarding.ts). A definite failure the state machine recorded becomes
 * its typed error here (expectOk), and leaves through toServiceError (errors.ts).
 */
import { randomBytes } from "node:crypto";
import {
  type Command,
  type CommandResult,
  type CounterOp,
  type MutatingCommand,
  requestIdProblem,
  validateCommand,
} from "../../shard/commands.js";
import type { MutationOutcome } from "../core/node-types.js";
import { TOP_K_MAX } from "../../kinds/topk.js";
import { SESSION_ID_IN_USE } from "../../shard/state-machine.js";
import type { ShardReplica } from "../shard-replica.js";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  OutOfRangeError,
  OverloadedError,
  SeqAcknowledgedError,
  SessionExpiredError,
  TallyError,
  UnavailableError,
  VersionMismatchError,
  WrongShardError,
} from "../../util/errors.js";
import { HotIndex } from "../../meta/hot.js";
import { checkHotReads, hotRouteMessage, refuseHotMutations } from "./hot-checks.js";
import { routePackedRequest } from "../core/route-packed.js";
import { describeKey } from "../../shard/keys.js";
import { wallClockMs } from "../../util/clock.js";
import type {
  AddRequestMessage,
  AggregateRequestMessage,
  AggregateResponseInput,
  BatchRequestMessage,
  BatchResponseInput,
  CompareAndSetRequestMessage,
  GetManyRequestMessage,
  GetManyResponseInput,
  GetRequestMessage,
  GetResponseInput,
  KeepAliveRequestMessage,
  KeepAliveResponseInput,
  MutationResponseInput,
  ReadFieldsMessage,
  RegisterSessionRequestMessage,
  RegisterSessionResponseInput,
  RequestHeaderMessage,
  ResetRequestMessage,
  RoutesResponseInput,
  SetRequestMessage,
  ShardAnswerInput,
  TopKRequestMessage,
  TopKResponseInput,
  UniqueCountRequestMessage,
  UniqueCountResponseInput,
  WindowAtRequestMessage,
  WindowAtResponseInput,
  WindowRangeRequestMessage,
  WindowRangeResponseInput,
} from "../../api/proto.js";
import { encodePackedResultsOf } from "../../api/packed-batch.js";
import { scanPackedAdds } from "../../util/packed-adds.js";
import { attachPackedOps } from "../../shard/packed-ops.js";
import type { ReadResult, TallyNode } from "../node.js";
import { callerOf } from "./auth-gate.js";
import { WriteForwarder } from "./forwarding.js";
import {
  addOp,
  batchOp,
  boundedKey,
  casOp,
  consistencyOf,
  fence,
  int64Wire,
  key,
  opResultMessage,
  prefixOf,
  setOp,
  timeRangeOf,
  u32,
  u64,
  windowAggregateOf,
} from "./fields.js";

/** A shard's result of a mutate that applied. */
type MutateResult = Extract<CommandResult, { ok: true; type: "mutate" }>;
/** A command's ops before they are set. */
const NO_OPS: CounterOp[] = [];

const HEADER_REQUIRED =
  "header is required: a request_id (any unique string of 1-64 printable characters, for a write without a session) or a session (client_id from RegisterSession, seq, first_unacked_seq)";

/** The unary CounterService calls, bound to one node. */
export class CounterApi {
  private readonly hotIndex = new HotIndex();
  readonly forwarder: WriteForwarder;

  constructor(private readonly node: TallyNode) {
    this.forwarder = new WriteForwarder(node);
  }

  /** The hot counters of the map this node knows. */
  private hot(): HotIndex {
    this.hotIndex.refresh(this.node.map.hot, this.node.map.version);
    return this.hotIndex;
  }

  // ---- decoding ----

  private maxKeyBytes(): number {
    return this.node.config.limits.maxKeyBytes;
  }

  private limits() {
    return { maxKeyBytes: this.node.config.limits.maxKeyBytes, maxOps: this.node.config.limits.maxBatchOps };
  }

  private header(raw: RequestHeaderMessage | undefined | null): {
    shardId: number;
    epoch: number;
    clientId: number;
    seq: number;
    firstUnackedSeq: number;
    requestId: string;
    owner: string;
  } {
    if (raw === undefined || raw === null) throw new InvalidArgumentError(HEADER_REQUIRED);
    const requestId = typeof raw.requestId === "string" ? raw.requestId : "";
    const header = {
      owner: callerOf(raw),
      shardId: u32(raw.shardId, "header.shard_id"),
      epoch: u64(raw.epoch, "header.epoch"),
      clientId: u64(raw.clientId, "header.client_id"),
      seq: u64(raw.seq, "header.seq"),
      firstUnackedSeq: u64(raw.firstUnackedSeq, "header.first_unacked_seq"),
      requestId,
    };
    if (requestId !== "") {
      const problem = requestIdProblem(requestId);
      if (problem !== undefined) throw new InvalidArgumentError(`header.request_id ${problem}`);
      if (header.clientId !== 0 || header.seq !== 0 || header.firstUnackedSeq !== 0) {
        throw new InvalidArgumentError("header: give a request_id or a session (client_id, seq, first_unacked_seq), not both");
      }
    }
    return header;
  }

  /**
   * `ops`: the request's ops, or packed adds (`count` of them, checked by scanPackedAdds) that the
   * command carries as bytes: its op objects are made only if something reads them (hot keys, a
   * forwarded write), the keys are routed from the bytes, and the Raft entry takes them as they are.
   */
  private async mutate(
    headerRaw: RequestHeaderMessage | null | undefined,
    ops: CounterOp[] | { packed: Uint8Array; count: number },
  ): Promise<{ result: MutateResult; term: number; index: number }> {
    const header = this.header(headerRaw);
    const command: MutatingCommand =
      header.requestId === ""
        ? { type: "mutate", clientId: header.clientId, seq: header.seq, firstUnackedSeq: header.firstUnackedSeq, ops: NO_OPS }
        : { type: "write", requestId: header.requestId, ops: NO_OPS };
    if (header.epoch !== 0) command.epoch = header.epoch;
    if (header.owner !== "") command.owner = header.owner;
    if (Array.isArray(ops)) command.ops = ops;
    else attachPackedOps(command, ops.packed);
    if (command.type === "mutate" && command.clientId === 0) throw new InvalidArgumentError(HEADER_REQUIRED);
    validateCommand(command, this.limits());
    if (this.hot().size > 0) refuseHotMutations(this.hotIndex, command.ops);
    let bytes = 64 + header.requestId.length;
    if (!Array.isArray(ops))
      bytes += ops.packed.length + 30 * ops.count; // key + 40 per op, as below
    else
      for (const op of ops) {
        bytes += op.key.length + 40;
        if (op.kind === "unique") for (const item of op.items) bytes += item.length + 5;
      }
    if (bytes > this.node.config.limits.maxEntryBytes)
      throw new InvalidArgumentError(
        `request: its log entry would take ~${bytes} bytes, above limits.maxEntryBytes ${this.node.config.limits.maxEntryBytes}; split it`,
      );
    let outcome: MutationOutcome;
    if (command.type === "write") outcome = await this.forwarder.write(command, header.shardId, bytes);
    else {
      const replica = Array.isArray(ops)
        ? this.node.route(
            header.shardId,
            header.epoch,
            ops.map((op) => op.key),
          )
        : routePackedRequest(this.node, header.shardId, header.epoch, ops.packed);
      outcome = await this.node.submit(replica, command, bytes);
    }
    const result = expectOk(outcome.result);
    if (result.type !== "mutate") throw new TallyError("INTERNAL", `unexpected result type ${result.type}`);
    return { result, term: outcome.term, index: outcome.index };
  }

  async registerSession(request: RegisterSessionRequestMessage): Promise<RegisterSessionResponseInput> {
    const shardId = u32(request.shardId, "shard_id");
    if (shardId === 0) throw new InvalidArgumentError("shard_id is required: sessions are per shard");
    const replica = this.node.route(shardId, u64(request.epoch, "epoch"), []);
    const owner = callerOf(request);
    // A random id (a new one if the state machine finds it in use): ids are unguessable and do not
    // repeat across shards, so a misrouted request never lands in another client's session.
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.node.submit(replica, { type: "register", clientId: randomSessionId(), owner }, 32 + owner.length);
      const result = outcome.result;
      if (!result.ok && result.code === "FAILED_PRECONDITION" && result.message === SESSION_ID_IN_USE && attempt < 3) continue;
      const registered = expectOk(result);
      if (registered.type !== "register") throw new TallyError("INTERNAL", `unexpected result type ${registered.type}`);
      return { clientId: String(registered.clientId), fence: fence(outcome.term, outcome.index) };
    }
  }

  async keepAlive(request: KeepAliveRequestMessage): Promise<KeepAliveResponseInput> {
    const header = this.header(request.header);
    const command: Command = { type: "keepalive", clientId: header.clientId };
    if (header.owner !== "") command.owner = header.owner;
    validateCommand(command, this.limits());
    const replica = this.node.route(header.shardId, header.epoch, []);
    const outcome = await this.node.submit(replica, command, 16);
    expectOk(outcome.result);
    return { fence: fence(outcome.term, outcome.index) };
  }

  async add(request: AddRequestMessage): Promise<MutationResponseInput> {
    return this.single(request.header, addOp(request, -1));
  }

  async set(request: SetRequestMessage): Promise<MutationResponseInput> {
    return this.single(request.header, setOp(request, -1));
  }

  async reset(request: ResetRequestMessage): Promise<MutationResponseInput> {
    return this.single(request.header, { kind: "reset", key: key(request.key, "key") });
  }

  async compareAndSet(request: CompareAndSetRequestMessage): Promise<MutationResponseInput> {
    return this.single(request.header, casOp(request, -1));
  }

  private async single(header: RequestHeaderMessage | null, op: CounterOp): Promise<MutationResponseInput> {
    const {
      result: { results },
      term,
      index,
    } = await this.mutate(header, [op]);
    const first = results[0]!;
    return { value: int64Wire(first.value), version: first.version, fence: fence(term, index) };
  }

  async addBatch(request: BatchRequestMessage): Promise<BatchResponseInput> {
    const rawOps = Array.isArray(request.ops) ? request.ops : [];
    if (request.packedAdds instanceof Uint8Array && request.packedAdds.length > 0) {
      if (rawOps.length > 0) throw new InvalidArgumentError("a batch gives ops or packed_adds, not both");
      return this.packedAddBatch(request.header, request.packedAdds);
    }
    if (rawOps.length === 0) throw new InvalidArgumentError("ops: a batch needs at least one operation");
    if (rawOps.length > this.node.config.limits.maxBatchOps) {
      throw new InvalidArgumentError(`ops: ${rawOps.length} operations exceed the batch limit of ${this.node.config.limits.maxBatchOps}`);
    }
    const ops: CounterOp[] = new Array(rawOps.length);
    for (let i = 0; i < rawOps.length; i++) ops[i] = batchOp(rawOps[i], i);
    const {
      result: { results },
      term,
      index,
    } = await this.mutate(request.header, ops);
    return { results: results.map(opResultMessage), fence: fence(term, index) };
  }

  /** An add-only batch in packed form (src/api/packed-batch.ts): the same command, packed results. */
  private async packedAddBatch(header: RequestHeaderMessage | null, packed: Uint8Array): Promise<BatchResponseInput> {
    // Over a plain Uint8Array view of the message's Buffer: each op's key is then a TypedArray
    // subarray, cheaper per op than Buffer.prototype.subarray (as the entry decoder does).
    const bytes = new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength);
    const count = scanPackedAdds(bytes, this.limits());
    const { result, term, index } = await this.mutate(header, { packed: bytes, count });
    return { packedResults: encodePackedResultsOf(result), fence: fence(term, index) };
  }

  async get(request: GetRequestMessage): Promise<GetResponseInput> {
    const k = key(request.key, "key");
    checkHotReads(this.hot(), [k], [u32(request.hotSubCounters, "hot_sub_counters")]);
    const result = await this.read(request, [k]);
    refuseOtherKinds([k], result);
    return readResponse(result, 0);
  }

  async getMany(request: GetManyRequestMessage): Promise<GetManyResponseInput> {
    const keysRaw: unknown[] = Array.isArray(request.keys) ? request.keys : [];
    if (keysRaw.length === 0) throw new InvalidArgumentError("keys: at least one key is required");
    if (keysRaw.length > this.node.config.limits.maxBatchOps) {
      throw new InvalidArgumentError(`keys: ${keysRaw.length} keys exceed the limit of ${this.node.config.limits.maxBatchOps}`);
    }
    const keys: Uint8Array[] = new Array(keysRaw.length);
    // The field name only on the error path: no string built per key.
    for (let i = 0; i < keysRaw.length; i++) keys[i] = readKey(keysRaw[i]) ?? key(keysRaw[i], `keys[${i}]`);
    const claimsRaw: unknown[] = Array.isArray(request.hotSubCounters) ? request.hotSubCounters : [];
    if (claimsRaw.length !== 0 && claimsRaw.length !== keys.length) {
      throw new InvalidArgumentError(`hot_sub_counters: ${claimsRaw.length} entries for ${keys.length} keys (give none or one per key)`);
    }
    checkHotReads(
      this.hot(),
      keys,
      claimsRaw.map((claim, i) => u32(claim, `hot_sub_counters[${i}]`)),
    );
    const result = await this.read(request, keys);
    refuseOtherKinds(keys, result);
    // One fence for every value: the encoder only reads it.
    const shared = fence(result.term, result.appliedIndex);
    const values: GetResponseInput[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) values[i] = readResponse(result, i, shared);
    return { values };
  }

  // ---- counter kinds: reads ----

  /**
   * Runs `answer` on the shard's applied state once the read may be served (lease or ReadIndex,
   * or STALE at min_index), exactly like Get: node.read resolves when a consistent applied state
   * is reached, and `answer` runs synchronously in the continuation, at one applied index (which
   * may be newer than the one that served the read: still linearizable, applied state only grows).
   */
  private async kindRead<T>(
    request: ReadFieldsMessage,
    keys: Uint8Array[],
    answer: (replica: ShardReplica) => T,
  ): Promise<{ value: T; term: number; appliedIndex: number; replica: ShardReplica }> {
    const shardId = u32(request.shardId, "shard_id");
    if (keys.length === 0 && shardId === 0) throw new InvalidArgumentError("shard_id is required: this read is answered per shard");
    const replica = this.node.route(shardId, u64(request.epoch, "epoch"), keys);
    await this.node.read(replica, [], consistencyOf(request.consistency), u64(request.minIndex, "min_index"));
    const current = this.node.replicas.get(replica.shardId) as ShardReplica | undefined;
    if (current === undefined) throw new UnavailableError(`shard ${replica.shardId} left node ${this.node.nodeId} during the read`);
    return { value: answer(current), term: current.raw.term, appliedIndex: current.machine.appliedIndex, replica: current };
  }

  async windowRange(request: WindowRangeRequestMessage): Promise<WindowRangeResponseInput> {
    const k = boundedKey(request.key, "key", this.maxKeyBytes());
    const fromMs = u64(request.fromMs, "from_ms");
    const toMs = u64(request.toMs, "to_ms");
    const stepMs = u64(request.stepMs, "step_ms");
    const agg = windowAggregateOf(request.agg);
    if (toMs <= fromMs) throw new InvalidArgumentError(`to_ms: ${toMs} must be above from_ms ${fromMs}`);
    if (stepMs === 0) throw new InvalidArgumentError("step_ms: must be >= 1");
    if ((toMs - fromMs) % stepMs !== 0)
      throw new InvalidArgumentError(`step_ms: to_ms - from_ms (${toMs - fromMs}) is not a multiple of ${stepMs}`);
    const { value, term, appliedIndex } = await this.kindRead(request, [k], (r) =>
      r.machine.windowRange(k, fromMs, toMs, stepMs, agg, wallClockMs()),
    );
    return {
      points: value.points.map((point) => ({ startMs: point.startMs, value: int64Wire(point.value), divisor: int64Wire(point.divisor) })),
      resolutionMs: value.resolutionMs,
      version: value.version,
      fence: fence(term, appliedIndex),
      appliedIndex,
    };
  }

  async windowAt(request: WindowAtRequestMessage): Promise<WindowAtResponseInput> {
    const k = boundedKey(request.key, "key", this.maxKeyBytes());
    const timeMs = u64(request.timeMs, "time_ms");
    const { value, term, appliedIndex } = await this.kindRead(request, [k], (r) => r.machine.windowAt(k, timeMs, wallClockMs()));
    return {
      startMs: value.startMs,
      resolutionMs: value.resolutionMs,
      sum: int64Wire(value.sum),
      count: value.count,
      version: value.version,
      fence: fence(term, appliedIndex),
      appliedIndex,
    };
  }

  async uniqueCount(request: UniqueCountRequestMessage): Promise<UniqueCountResponseInput> {
    const keysRaw: unknown[] = Array.isArray(request.keys) ? request.keys : [];
    if (keysRaw.length === 0) throw new InvalidArgumentError("keys: at least one key is required");
    if (keysRaw.length > this.node.config.limits.maxBatchOps) {
      throw new InvalidArgumentError(`keys: ${keysRaw.length} keys exceed the limit of ${this.node.config.limits.maxBatchOps}`);
    }
    const keys = keysRaw.map((raw, i) => boundedKey(raw, `keys[${i}]`, this.maxKeyBytes()));
    const { value, term, appliedIndex } = await this.kindRead(request, keys, (r) => r.machine.uniqueSketch(keys, wallClockMs()));
    return {
      count: Math.round(value.count()),
      sketch: request.withSketch ? Buffer.from(value.encode()) : Buffer.alloc(0),
      fence: fence(term, appliedIndex),
      appliedIndex,
    };
  }

  async topK(request: TopKRequestMessage): Promise<TopKResponseInput> {
    const prefix = prefixOf(request.prefix, this.maxKeyBytes());
    const k = u32(request.k, "k");
    if (k < 1 || k > TOP_K_MAX) throw new InvalidArgumentError(`k: must be 1..${TOP_K_MAX}, got ${k}`);
    const window = timeRangeOf(request, wallClockMs());
    const { value, term, appliedIndex, replica } = await this.kindRead(request, [], (r) =>
      r.machine.topK(prefix, k, wallClockMs(), window),
    );
    return {
      entries: value.map((entry) => ({ key: Buffer.from(entry.key), value: int64Wire(entry.value) })),
      shard: shardAnswer(replica, term, appliedIndex),
    };
  }

  async aggregate(request: AggregateRequestMessage): Promise<AggregateResponseInput> {
    const prefix = prefixOf(request.prefix, this.maxKeyBytes());
    const window = timeRangeOf(request, wallClockMs());
    const { value, term, appliedIndex, replica } = await this.kindRead(request, [], (r) =>
      r.machine.aggregate(prefix, wallClockMs(), window),
    );
    return {
      count: value.count,
      sum: value.sum.toString(),
      min: int64Wire(value.min ?? 0n),
      max: int64Wire(value.max ?? 0n),
      shard: shardAnswer(replica, term, appliedIndex),
    };
  }

  private read(request: ReadFieldsMessage, keys: Uint8Array[]): Promise<ReadResult> {
    const maxKeyBytes = this.node.config.limits.maxKeyBytes;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (k.length > maxKeyBytes) {
        throw new InvalidArgumentError(`key${keys.length > 1 ? `s[${i}]` : ""}: ${k.length} bytes exceed the limit of ${maxKeyBytes}`);
      }
    }
    const consistency = consistencyOf(request.consistency);
    const replica = this.node.route(u32(request.shardId, "shard_id"), u64(request.epoch, "epoch"), keys);
    return this.node.read(replica, keys, consistency, u64(request.minIndex, "min_index"));
  }

  /**
   * The routing map: the partition map this node knows, where a local replica's descriptor is
   * newer (it applied a change the map has not mirrored yet) the replica's own view wins, and the
   * leader each local replica believes in. `visible`: the hot counters the caller may see (all
   * when access control is off).
   */
  routes(visible?: (key: Uint8Array) => boolean): RoutesResponseInput {
    const map = this.node.map;
    const shards = map.shards.map((record) => {
      const replica = this.node.replicas.get(record.id);
      const local = replica !== undefined && replica.descriptor.epoch > record.epoch ? replica : undefined;
      const epoch = local?.descriptor.epoch ?? record.epoch;
      const voters = local?.confState.voters ?? record.voters;
      const learners = local ? [...local.confState.learners, ...local.confState.learnersNext] : record.learners;
      const leader = replica?.leader ?? 0;
      return {
        shardId: record.id,
        slotStart: local?.descriptor.slotStart ?? record.slotStart,
        slotEnd: local?.descriptor.slotEnd ?? record.slotEnd,
        epoch: String(epoch),
        replicas: [
          ...voters.map((id) => ({ nodeId: String(id), address: this.node.clientAddressOf(id) ?? "", role: "voter" })),
          ...learners.map((id) => ({ nodeId: String(id), address: this.node.clientAddressOf(id) ?? "", role: "learner" })),
        ],
        leaderId: leader === 0 ? "" : String(leader),
        term: String(replica?.raw.term ?? 0),
      };
    });
    if (shards.length === 0) throw new UnavailableError(`node ${this.node.nodeId} does not know the partition map yet`);
    const hot = (map.hot ?? []).filter((record) => visible === undefined || visible(record.key));
    const eventualPrefixes = this.node.config.eventual.prefixes;
    return { shards, slotCount: 16384, hot: hot.map(hotRouteMessage), mapVersion: String(map.version), eventualPrefixes };
  }
}

/**
 * A new session id: 53 random bits from the OS CSPRNG (the safe-integer range, so the id is exact in
 * the state machine and in every client's JSON), never 0. Unguessable in practice, and a session is
 * usable only by the caller that registered it anyway.
 */
function randomSessionId(): number {
  const bytes = randomBytes(8);
  const id = (bytes.readUInt32BE(0) & 0x1f_ffff) * 0x1_0000_0000 + bytes.readUInt32BE(4);
  return id === 0 ? 1 : id;
}

function shardAnswer(replica: ShardReplica, term: number, appliedIndex: number): ShardAnswerInput {
  const { descriptor } = replica;
  return {
    shardId: replica.shardId,
    slotStart: descriptor.slotStart,
    slotEnd: descriptor.slotEnd,
    epoch: descriptor.epoch,
    appliedIndex,
    fence: fence(term, appliedIndex),
  };
}

const KIND_READS: Record<string, string> = {
  "windowed counter": "windowRange / windowAt (tallyctl window range|at)",
  "rate limit": "tryAcquire with n = 0 to peek (tallyctl limit KEY 0 ...)",
  "unique count": "uniqueCount (tallyctl unique count)",
};

/** A get of a windowed counter, rate limit or unique count says so instead of "does not exist". */
function refuseOtherKinds(keys: Uint8Array[], result: ReadResult): void {
  const values = result.values;
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (value.kind === undefined) continue;
    throw new FailedPreconditionError(
      `key ${describeKey(keys[i]!)} holds a ${value.kind}, not a counter: read it with ${KIND_READS[value.kind] ?? "its kind's read"}`,
    );
  }
}

function readResponse(result: ReadResult, i: number, readFence = fence(result.term, result.appliedIndex)): GetResponseInput {
  const value = result.values[i]!;
  return {
    value: int64Wire(value.value),
    version: value.version,
    exists: value.exists,
    fence: readFence,
    appliedIndex: result.appliedIndex,
  };
}

/** A well-formed key field as key() (fields.ts) returns it; undefined for anything key() would refuse. */
function readKey(raw: unknown): Uint8Array | undefined {
  return raw instanceof Uint8Array && raw.length > 0 ? new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
}

/** A definite failure recorded by the state machine becomes the matching typed error. */
export function expectOk(result: CommandResult): Exclude<CommandResult, { ok: false }> {
  if (result.ok) return result;
  // The state machine's message already names the op (ops[i]) and key; opIndex travels apart.
  let error: TallyError;
  switch (result.code) {
    case "OUT_OF_RANGE":
      error = new OutOfRangeError(result.message);
      break;
    case "FAILED_PRECONDITION":
      error = new FailedPreconditionError(result.message);
      break;
    case "VERSION_MISMATCH":
      error = new VersionMismatchError(result.message, result.currentVersion ?? 0);
      break;
    case "SESSION_EXPIRED":
      error = new SessionExpiredError(result.message);
      break;
    case "SEQ_ACKNOWLEDGED":
      error = new SeqAcknowledgedError(result.message);
      break;
    case "INVALID_ARGUMENT":
      error = new InvalidArgumentError(result.message);
      break;
    case "UNAVAILABLE":
      error = new UnavailableError(result.message);
      break;
    case "WRONG_SHARD":
      error = new WrongShardError(result.message, 0, result.currentEpoch ?? 0);
      break;
    case "OVERLOADED":
      error = new OverloadedError(result.message, result.retryAfterMs);
      break;
    default:
      error = new TallyError(result.code, result.message);
  }
  if (result.opIndex !== undefined) (error as TallyError & { opIndex?: number }).opIndex = result.opIndex;
  throw error;
}
