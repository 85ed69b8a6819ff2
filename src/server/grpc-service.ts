/**
 * The client-facing gRPC services: CounterService and AdminService from proto/tally.proto, plus the
 * standard health service and server reflection. A call's credentials and the node's in-flight
 * bounds are checked before its message is read (admission.ts), its size and shape before it is
 * decoded (request-bounds.ts; docs/limits.md). Requests are then validated here (bad input never
 * reaches the log), routed to a shard replica, and answered with value, version and a fencing
 * token. Errors leave through one function, toServiceError. A mutation names itself by a session
 * (client_id, seq) or by a request_id; a request_id write may arrive at any node, which forwards it
 * to the shard's leader (forwarding.ts). Reflection serves proto/tally.proto as written (snake_case
 * field names) and the health service (reflection.ts).
 */
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { type Command, type CommandResult, type CounterOp, type OpResult, requestIdProblem, TTL_MS_MAX, UNIQUE_ITEMS_MAX, validateCommand } from "../shard/commands.js";
import { WINDOW_MS_MAX } from "../shard/kinds/ratelimit.js";
import { keyHasPrefix, TOP_K_MAX } from "../shard/kinds/topk.js";
import { DEFAULT_WINDOW_OPTIONS, rangePlan, type WindowAggregate } from "../shard/kinds/windows.js";
import { randomBytes } from "node:crypto";
import { SESSION_ID_IN_USE, type TimeRange } from "../shard/state-machine.js";
import type { ShardReplica } from "./shard-replica.js";
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
} from "../util/errors.js";
import { hotRecordOf, shardMembers, type MetaCommand } from "../meta/map.js";
import { HOT_READ_REFUSED, HotIndex, type HotRecord } from "../meta/hot.js";
import { describeKey } from "../shard/keys.js";
import type { MetaController } from "./meta-controller.js";
import { decodeBody, encodeBody, type NodeReport, type ShardChangeRequest } from "./meta-wire.js";
import type { Logger } from "../util/log.js";
import { tallyProto } from "../api/proto.js";
import { decodePackedAdds, encodePackedResults } from "../api/packed-batch.js";
import { toServiceError, errorInfoOf, failStream } from "./errors.js";
import type { Consistency, ReadResult, TallyNode } from "./node.js";
import { Role } from "../raft/types.js";
import { nodeClientCredentials } from "./tls.js";
import { serveShardBackup } from "./backup-service.js";
import { adminAccess, authGateFor, callerOf, counterAccess, guardService, internalCallMetadata, stampCaller } from "./auth.js";
import type { NodeMetrics } from "./metrics.js";
import { RequestGuard } from "./request-guard.js";
import { admissionInterceptor, admittedMethods } from "./admission.js";
import { boundedService, RefusedRequest, tallyRequestBounds } from "./request-bounds.js";
import { WriteForwarder } from "./forwarding.js";
import { addReflection } from "./reflection.js";

type Json = Record<string, any>;

const HEADER_REQUIRED =
  "header is required: a request_id (any unique string of 1-64 printable characters, for a write without a session) or a session (client_id from RegisterSession, seq, first_unacked_seq)";

/** Bounds a single Pipeline stream; beyond it, operations are answered OVERLOADED at once. */
const PIPELINE_INFLIGHT_MAX = 20_000;

const roleName: Record<Role, string> = {
  [Role.Follower]: "follower",
  [Role.PreCandidate]: "pre-candidate",
  [Role.Candidate]: "candidate",
  [Role.Leader]: "leader",
};

export class CounterApi {
  private readonly hotIndex = new HotIndex();
  readonly forwarder: WriteForwarder;

  constructor(
    private readonly node: TallyNode,
    private readonly log: Logger,
  ) {
    this.forwarder = new WriteForwarder(node);
  }

  /** The hot counters of the map this node knows. */
  private hot(): HotIndex {
    this.hotIndex.refresh(this.node.map.hot, this.node.map.version);
    return this.hotIndex;
  }

  /** Told when a stream is ended by an overload bound (metrics). */
  onStreamOverloaded: ((reason: string) => void) | undefined;

  // ---- decoding ----

  private limits() {
    return { maxKeyBytes: this.node.config.limits.maxKeyBytes, maxOps: this.node.config.limits.maxBatchOps };
  }

  private header(raw: Json | undefined | null): { shardId: number; epoch: number; clientId: number; seq: number; firstUnackedSeq: number; requestId: string; owner: string } {
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

  /** `packedAdds`: the packed bytes `ops` were decoded from, which the Raft entry then carries as they are. */
  private async mutate(headerRaw: Json | undefined, ops: CounterOp[], packedAdds?: Uint8Array): Promise<{ results: OpResult[]; term: number; index: number }> {
    const header = this.header(headerRaw);
    const command: Command =
      header.requestId === ""
        ? { type: "mutate", clientId: header.clientId, seq: header.seq, firstUnackedSeq: header.firstUnackedSeq, ops }
        : { type: "write", requestId: header.requestId, ops };
    if (header.epoch !== 0) command.epoch = header.epoch;
    if (header.owner !== "") command.owner = header.owner;
    if (packedAdds !== undefined) command.packedAdds = packedAdds;
    if (command.type === "mutate" && command.clientId === 0) throw new InvalidArgumentError(HEADER_REQUIRED);
    validateCommand(command, this.limits());
    if (this.hot().size > 0) refuseHotMutations(this.hotIndex, ops);
    let bytes = 64 + header.requestId.length;
    for (const op of ops) {
      bytes += op.key.length + 40;
      if (op.kind === "unique") for (const item of op.items) bytes += item.length + 5;
    }
    if (bytes > this.node.config.limits.maxEntryBytes) throw new InvalidArgumentError(`request: its log entry would take ~${bytes} bytes, above limits.maxEntryBytes ${this.node.config.limits.maxEntryBytes}; split it`);
    const outcome =
      command.type === "write"
        ? await this.forwarder.write(command, header.shardId, bytes)
        : await this.node.submit(this.node.route(header.shardId, header.epoch, ops.map((op) => op.key)), command, bytes);
    const result = expectOk(outcome.result);
    if (result.type !== "mutate") throw new TallyError("INTERNAL", `unexpected result type ${result.type}`);
    return { results: result.results, term: outcome.term, index: outcome.index };
  }

  async registerSession(request: Json): Promise<Json> {
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

  async keepAlive(request: Json): Promise<Json> {
    const header = this.header(request.header);
    const command: Command = { type: "keepalive", clientId: header.clientId };
    if (header.owner !== "") command.owner = header.owner;
    validateCommand(command, this.limits());
    const replica = this.node.route(header.shardId, header.epoch, []);
    const outcome = await this.node.submit(replica, command, 16);
    expectOk(outcome.result);
    return { fence: fence(outcome.term, outcome.index) };
  }

  async add(request: Json): Promise<Json> {
    return this.single(request.header, addOp(request, -1));
  }

  async set(request: Json): Promise<Json> {
    return this.single(request.header, setOp(request, -1));
  }

  async reset(request: Json): Promise<Json> {
    return this.single(request.header, { kind: "reset", key: key(request.key, "key") });
  }

  async compareAndSet(request: Json): Promise<Json> {
    return this.single(request.header, {
      kind: "cas",
      key: key(request.key, "key"),
      expectedVersion: u64(request.expectedVersion, "expected_version"),
      value: i64(request.value, "value"),
    });
  }

  private async single(header: Json | undefined, op: CounterOp): Promise<Json> {
    const { results, term, index } = await this.mutate(header, [op]);
    const first = results[0]!;
    return { value: int64Wire(first.value), version: first.version, fence: fence(term, index) };
  }

  async addBatch(request: Json): Promise<Json> {
    const rawOps: Json[] = Array.isArray(request.ops) ? request.ops : [];
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
    const { results, term, index } = await this.mutate(request.header, ops);
    const replies: Json[] = new Array(results.length);
    for (let i = 0; i < results.length; i++) {
      const result = results[i]!;
      const reply: Json = { value: int64Wire(result.value), version: result.version };
      if (result.eventTimeMs !== undefined) reply.eventTimeMs = result.eventTimeMs;
      if (result.allowed !== undefined) {
        reply.hasAcquire = true;
        reply.allowed = result.allowed;
        reply.retryAfterMs = result.retryAfterMs ?? 0;
      }
      replies[i] = reply;
    }
    return { results: replies, fence: fence(term, index) };
  }

  /** An add-only batch in packed form (src/api/packed-batch.ts): the same command, packed results. */
  private async packedAddBatch(header: Json | undefined, packed: Uint8Array): Promise<Json> {
    const ops: CounterOp[] = decodePackedAdds(packed, this.limits());
    const { results, term, index } = await this.mutate(header, ops, packed);
    return { packedResults: encodePackedResults(results), fence: fence(term, index) };
  }

  async get(request: Json): Promise<Json> {
    const k = key(request.key, "key");
    checkHotReads(this.hot(), [k], [u32(request.hotSubCounters, "hot_sub_counters")]);
    const result = await this.read(request, [k]);
    refuseOtherKinds([k], result);
    return readResponse(result, 0);
  }

  async getMany(request: Json): Promise<Json> {
    const keysRaw: unknown[] = Array.isArray(request.keys) ? request.keys : [];
    if (keysRaw.length === 0) throw new InvalidArgumentError("keys: at least one key is required");
    if (keysRaw.length > this.node.config.limits.maxBatchOps) {
      throw new InvalidArgumentError(`keys: ${keysRaw.length} keys exceed the limit of ${this.node.config.limits.maxBatchOps}`);
    }
    const keys = keysRaw.map((k, i) => key(k, `keys[${i}]`));
    const claimsRaw: unknown[] = Array.isArray(request.hotSubCounters) ? request.hotSubCounters : [];
    if (claimsRaw.length !== 0 && claimsRaw.length !== keys.length) {
      throw new InvalidArgumentError(`hot_sub_counters: ${claimsRaw.length} entries for ${keys.length} keys (give none or one per key)`);
    }
    checkHotReads(this.hot(), keys, claimsRaw.map((claim, i) => u32(claim, `hot_sub_counters[${i}]`)));
    const result = await this.read(request, keys);
    refuseOtherKinds(keys, result);
    return { values: keys.map((_, i) => readResponse(result, i)) };
  }

  // ---- counter kinds: reads ----

  /**
   * Runs `answer` on the shard's applied state once the read may be served (lease or ReadIndex,
   * or STALE at min_index), exactly like Get: node.read resolves when a consistent applied state
   * is reached, and `answer` runs synchronously in the continuation, at one applied index (which
   * may be newer than the one that served the read: still linearizable, applied state only grows).
   */
  private async kindRead<T>(request: Json, keys: Uint8Array[], answer: (replica: ShardReplica) => T): Promise<{ value: T; term: number; appliedIndex: number; replica: ShardReplica }> {
    const shardId = u32(request.shardId, "shard_id");
    if (keys.length === 0 && shardId === 0) throw new InvalidArgumentError("shard_id is required: this read is answered per shard");
    const replica = this.node.route(shardId, u64(request.epoch, "epoch"), keys);
    await this.node.read(replica, [], consistencyOf(request.consistency), u64(request.minIndex, "min_index"));
    const current = this.node.replicas.get(replica.shardId) as ShardReplica | undefined;
    if (current === undefined) throw new UnavailableError(`shard ${replica.shardId} left node ${this.node.nodeId} during the read`);
    return { value: answer(current), term: current.raw.term, appliedIndex: current.machine.appliedIndex, replica: current };
  }

  async windowRange(request: Json): Promise<Json> {
    const k = this.boundedKey(request.key, "key");
    const fromMs = u64(request.fromMs, "from_ms");
    const toMs = u64(request.toMs, "to_ms");
    const stepMs = u64(request.stepMs, "step_ms");
    const agg = windowAggregateOf(request.agg);
    if (toMs <= fromMs) throw new InvalidArgumentError(`to_ms: ${toMs} must be above from_ms ${fromMs}`);
    if (stepMs === 0) throw new InvalidArgumentError("step_ms: must be >= 1");
    if ((toMs - fromMs) % stepMs !== 0) throw new InvalidArgumentError(`step_ms: to_ms - from_ms (${toMs - fromMs}) is not a multiple of ${stepMs}`);
    const { value, term, appliedIndex } = await this.kindRead(request, [k], (r) => r.machine.windowRange(k, fromMs, toMs, stepMs, agg, Date.now()));
    return {
      points: value.points.map((point) => ({ startMs: point.startMs, value: int64Wire(point.value), divisor: int64Wire(point.divisor) })),
      resolutionMs: value.resolutionMs,
      version: value.version,
      fence: fence(term, appliedIndex),
      appliedIndex,
    };
  }

  async windowAt(request: Json): Promise<Json> {
    const k = this.boundedKey(request.key, "key");
    const timeMs = u64(request.timeMs, "time_ms");
    const { value, term, appliedIndex } = await this.kindRead(request, [k], (r) => r.machine.windowAt(k, timeMs, Date.now()));
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

  async uniqueCount(request: Json): Promise<Json> {
    const keysRaw: unknown[] = Array.isArray(request.keys) ? request.keys : [];
    if (keysRaw.length === 0) throw new InvalidArgumentError("keys: at least one key is required");
    if (keysRaw.length > this.node.config.limits.maxBatchOps) {
      throw new InvalidArgumentError(`keys: ${keysRaw.length} keys exceed the limit of ${this.node.config.limits.maxBatchOps}`);
    }
    const keys = keysRaw.map((raw, i) => this.boundedKey(raw, `keys[${i}]`));
    const { value, term, appliedIndex } = await this.kindRead(request, keys, (r) => r.machine.uniqueSketch(keys, Date.now()));
    return {
      count: Math.round(value.count()),
      sketch: request.withSketch ? Buffer.from(value.encode()) : Buffer.alloc(0),
      fence: fence(term, appliedIndex),
      appliedIndex,
    };
  }

  async topK(request: Json): Promise<Json> {
    const prefix = this.prefixOf(request.prefix);
    const k = u32(request.k, "k");
    if (k < 1 || k > TOP_K_MAX) throw new InvalidArgumentError(`k: must be 1..${TOP_K_MAX}, got ${k}`);
    const window = timeRangeOf(request, Date.now());
    const { value, term, appliedIndex, replica } = await this.kindRead(request, [], (r) => r.machine.topK(prefix, k, Date.now(), window));
    return {
      entries: value.map((entry) => ({ key: Buffer.from(entry.key), value: int64Wire(entry.value) })),
      shard: shardAnswer(replica, term, appliedIndex),
    };
  }

  async aggregate(request: Json): Promise<Json> {
    const prefix = this.prefixOf(request.prefix);
    const window = timeRangeOf(request, Date.now());
    const { value, term, appliedIndex, replica } = await this.kindRead(request, [], (r) => r.machine.aggregate(prefix, Date.now(), window));
    return {
      count: value.count,
      sum: value.sum.toString(),
      min: int64Wire(value.min ?? 0n),
      max: int64Wire(value.max ?? 0n),
      shard: shardAnswer(replica, term, appliedIndex),
    };
  }

  /**
   * A watch stream: polls the replica's change log every coalesce_ms and sends the latest change
   * per key since the cursor. Ends with an error status when the shard leaves this node or changes
   * epoch (re-route and resume), or when the cursor fell out of the change log (OUT_OF_RANGE).
   */
  watch(call: grpc.ServerWritableStream<Json, Json>): void {
    const request = call.request;
    let prefix: boolean;
    let target: Uint8Array;
    let replica: ShardReplica;
    let coalesceMs: number;
    let cursor: number;
    try {
      prefix = request.prefix === true;
      target = prefix ? this.prefixOf(request.key) : this.boundedKey(request.key, "key");
      coalesceMs = u32(request.coalesceMs, "coalesce_ms") || WATCH_COALESCE_DEFAULT_MS;
      if (coalesceMs < 10 || coalesceMs > 10_000) throw new InvalidArgumentError(`coalesce_ms: must be 10..10000, got ${coalesceMs}`);
      const shardId = u32(request.shardId, "shard_id");
      if (prefix && shardId === 0) throw new InvalidArgumentError("shard_id is required for a prefix watch (one stream per shard)");
      replica = this.node.route(shardId, u64(request.epoch, "epoch"), prefix ? [] : [target]);
      const fromIndex = u64(request.fromIndex, "from_index");
      cursor = fromIndex === 0 ? replica.machine.appliedIndex : fromIndex;
    } catch (error) {
      failStream(call, error, this.log);
      return;
    }
    const shardId = replica.shardId;
    const epoch = replica.descriptor.epoch;
    const matches = prefix ? (key: Uint8Array) => keyHasPrefix(key, target) : (key: Uint8Array) => Buffer.compare(key, target) === 0;
    let sentAtMs = Date.now();
    let done = false;
    // Backpressure: at most one batch is on its way to the consumer. While it has not been taken
    // (HTTP/2 flow control), polls send nothing -- the cursor stays, so changes coalesce instead of
    // piling up -- and a consumer stuck past the request timeout is ended with OVERLOADED. A
    // watcher that never reads costs one batch (<= WATCH_BATCH_MAX events), not a growing buffer.
    let blockedSinceMs = 0;
    const stop = (error?: unknown): void => {
      if (done) return;
      done = true;
      clearInterval(timer);
      if (error === undefined) call.end();
      else failStream(call, error, this.log);
    };
    const poll = (): void => {
      if (done || call.cancelled || call.destroyed) return stop();
      if (blockedSinceMs !== 0) {
        if (Date.now() - blockedSinceMs <= this.node.config.limits.requestTimeoutMs) return;
        this.onStreamOverloaded?.("watch_stalled");
        return stop(new OverloadedError(`watch consumer has not read for ${this.node.config.limits.requestTimeoutMs} ms; resume from index ${cursor}`, this.node.config.limits.requestTimeoutMs));
      }
      const current = this.node.replicas.get(shardId) as ShardReplica | undefined;
      if (current === undefined) return stop(new UnavailableError(`shard ${shardId} left node ${this.node.nodeId}; resume from index ${cursor} elsewhere`));
      if (current.descriptor.epoch !== epoch) return stop(new WrongShardError(`shard ${shardId} moved to epoch ${current.descriptor.epoch}; re-route and resume from index ${cursor}`, shardId, current.descriptor.epoch));
      const changes = current.machine.changesSince(cursor, matches, WATCH_BATCH_MAX);
      if (changes === undefined) {
        return stop(new OutOfRangeError(`from_index ${cursor} is compacted: this replica keeps changes after index ${current.machine.changesRetainedAfter}; re-read and watch from now`));
      }
      // Coalesce: the latest change per key, in the order of those latest changes.
      const latest = new Map<string, KeyChangeLike>();
      for (const change of changes) {
        const name = Buffer.from(change.key).toString("latin1");
        latest.delete(name);
        latest.set(name, change);
      }
      const last = changes[changes.length - 1];
      const index = changes.length >= WATCH_BATCH_MAX && last !== undefined ? last.index : current.machine.appliedIndex;
      const now = Date.now();
      if (latest.size === 0 && now - sentAtMs < WATCH_PROGRESS_MS) {
        cursor = Math.max(cursor, index);
        return;
      }
      cursor = Math.max(cursor, index);
      sentAtMs = now;
      blockedSinceMs = now;
      call.write(
        {
          events: [...latest.values()].map((change) => ({ key: Buffer.from(change.key), value: int64Wire(change.value), version: change.version, kind: change.kind, index: change.index })),
          index: cursor,
          shardId,
        },
        () => {
          blockedSinceMs = 0;
        },
      );
    };
    const timer = setInterval(poll, coalesceMs);
    call.on("cancelled", () => stop());
    call.on("error", () => stop());
    poll();
  }

  private boundedKey(raw: unknown, field: string): Uint8Array {
    const k = key(raw, field);
    if (k.length > this.node.config.limits.maxKeyBytes) throw new InvalidArgumentError(`${field}: ${k.length} bytes exceed the limit of ${this.node.config.limits.maxKeyBytes}`);
    return k;
  }

  private prefixOf(raw: unknown): Uint8Array {
    if (raw === undefined || raw === null) return new Uint8Array(0);
    if (!(raw instanceof Uint8Array)) throw new InvalidArgumentError("prefix: bytes are required");
    if (raw.length > this.node.config.limits.maxKeyBytes) throw new InvalidArgumentError(`prefix: ${raw.length} bytes exceed the key limit of ${this.node.config.limits.maxKeyBytes}`);
    return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  }

  private read(request: Json, keys: Uint8Array[]): Promise<ReadResult> {
    for (const [i, k] of keys.entries()) {
      if (k.length > this.node.config.limits.maxKeyBytes) {
        throw new InvalidArgumentError(`key${keys.length > 1 ? `s[${i}]` : ""}: ${k.length} bytes exceed the limit of ${this.node.config.limits.maxKeyBytes}`);
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
  routes(visible?: (key: Uint8Array) => boolean): Json {
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
    return { shards, slotCount: 16384, hot: hot.map(hotRouteMessage), mapVersion: String(map.version) };
  }

  /** The map for tallyctl, with the metadata leader's liveness and load when this node is it. */
  clusterMap(): Json {
    const map = this.node.map;
    const controller = this.node.metaController;
    const counts = controller?.counts();
    const leaders = controller?.leaders() ?? new Map<number, number>();
    if (controller === undefined) {
      for (const replica of this.node.replicas.values()) if (replica.leader !== 0) leaders.set(replica.shardId, replica.leader);
    }
    const nowMs = Date.now();
    return {
      version: String(map.version),
      metaLeaderId: this.node.meta?.leader ? String(this.node.meta.leader) : this.node.metaLeaderId ? String(this.node.metaLeaderId) : "",
      fromMetaLeader: controller !== undefined,
      metaVoters: (map.meta?.voters ?? []).map(String),
      metaLearners: (map.meta?.learners ?? []).map(String),
      nodes: map.nodes.map((n) => {
        const ago = controller?.lastSeenAgoMs(n.id);
        return {
          nodeId: String(n.id),
          clientAddress: n.client,
          peerAddress: n.peer,
          zone: n.zone,
          state: n.state,
          alive: controller?.isAlive(n.id) ?? false,
          lastHeartbeatMsAgo: ago === undefined ? "0" : String(Math.round(ago)),
          replicas: counts?.get(n.id)?.replicas ?? map.shards.filter((shard) => shardMembers(shard).includes(n.id)).length,
          leaders: counts?.get(n.id)?.leaders ?? 0,
          opsPerSecond: counts?.get(n.id)?.opsPerSecond ?? 0,
        };
      }),
      shards: map.shards.map((shard) => ({
        shardId: shard.id,
        slotStart: shard.slotStart,
        slotEnd: shard.slotEnd,
        epoch: String(shard.epoch),
        voters: shard.voters.map(String),
        learners: shard.learners.map(String),
        votersOutgoing: shard.votersOutgoing.map(String),
        leaderId: leaders.has(shard.id) ? String(leaders.get(shard.id)) : "",
        opsPerSecond: controller?.shardLoad(shard.id) ?? 0,
      })),
      operations: map.operations.map((op) => ({
        id: String(op.id),
        kind: op.kind,
        shardId: op.shardId,
        fromNode: String(op.from),
        toNode: String(op.to),
        state: op.state,
        step: op.step,
        reason: op.reason,
        ageMs: String(Math.max(0, nowMs - op.createdMs)),
        splitSlot: op.splitSlot ?? 0,
        newShardId: op.newShardId ?? 0,
      })),
    };
  }

  private controller(): MetaController {
    const controller = this.node.metaController;
    if (controller === undefined) throw this.node.metaNotLeaderError();
    return controller;
  }

  private nodeIdOf(raw: unknown, field: string, mustExist = true): number {
    const id = Number(raw);
    if (!Number.isSafeInteger(id) || id <= 0) throw new InvalidArgumentError(`${field}: "${String(raw)}" is not a node id`);
    if (mustExist && !this.node.map.nodes.some((n) => n.id === id)) throw new InvalidArgumentError(`${field}: node ${id} is not in the cluster (nodes ${this.node.map.nodes.map((n) => n.id).join(", ")})`);
    return id;
  }

  private async metaChange(command: MetaCommand, summary: string): Promise<Json> {
    this.controller();
    const [result] = await this.node.submitMeta([command]);
    if (result === undefined) throw new TallyError("INTERNAL", "no result");
    if (!result.ok) throw result.code === "INVALID_ARGUMENT" ? new InvalidArgumentError(result.message) : new FailedPreconditionError(result.message);
    return { summary: result.changed ? summary : `no change: ${summary} already`, operationId: String(result.opId ?? 0), version: String(this.node.map.version) };
  }

  async declareHot(request: Json): Promise<Json> {
    const k = key(request.key, "key");
    const subCounters = u32(request.subCounters, "sub_counters");
    const before = hotRecordOf(this.node.map, k)?.tags.length ?? 1;
    const reply = await this.metaChange(
      { type: "hot-declare", key: k, subCounters },
      `${describeKey(k)} is a hot counter over ${subCounters} sub-counters (was ${before}); writers use the new ones once every node has the map`,
    );
    return reply;
  }

  nodeAdd(request: Json): Promise<Json> {
    const id = this.nodeIdOf(request.nodeId, "node_id", false);
    const node = { id, client: String(request.clientAddress ?? ""), peer: String(request.peerAddress ?? ""), zone: String(request.zone || "default") };
    for (const field of ["client", "peer"] as const) {
      if (!/^([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.test(node[field])) throw new InvalidArgumentError(`${field}_address: must be "host:port", got "${node[field]}"`);
    }
    return this.metaChange({ type: "node-add", node }, `node ${id} added (${node.client}, peer ${node.peer}, zone ${node.zone}); start tallyd for it`);
  }

  nodeState(request: Json): Promise<Json> {
    const id = this.nodeIdOf(request.nodeId, "node_id");
    const state = String(request.state);
    if (state !== "up" && state !== "draining" && state !== "removed") throw new InvalidArgumentError(`state: must be up, draining or removed, got "${state}"`);
    const what = state === "draining" ? "draining: its replicas and leaders move to other nodes" : state === "removed" ? "removed from the cluster" : "up: it takes replicas and leaders again";
    return this.metaChange({ type: "node-state", nodeId: id, state }, `node ${id} ${what}`);
  }

  async shardMove(request: Json): Promise<Json> {
    const shardId = u32(request.shardId, "shard_id");
    if (!this.node.map.shards.some((shard) => shard.id === shardId)) throw new InvalidArgumentError(`shard_id: shard ${shardId} does not exist`);
    const from = this.nodeIdOf(request.fromNode, "from_node");
    const to = this.nodeIdOf(request.toNode, "to_node");
    if (from === to) throw new InvalidArgumentError("from_node and to_node are the same node");
    const id = await this.controller().startMove(shardId, from, to, "operator");
    return { summary: `operation ${id}: move shard ${shardId} from node ${from} to node ${to} started`, operationId: String(id), version: String(this.node.map.version) };
  }

  async shardSplit(request: Json): Promise<Json> {
    const shardId = u32(request.shardId, "shard_id");
    const shard = this.node.map.shards.find((candidate) => candidate.id === shardId);
    if (shard === undefined) throw new InvalidArgumentError(`shard_id: shard ${shardId} does not exist`);
    const at = u32(request.atSlot, "at_slot");
    if (at !== 0 && !(at > shard.slotStart && at < shard.slotEnd)) {
      throw new InvalidArgumentError(`at_slot: ${at} is not inside shard ${shardId}'s slots ${shard.slotStart + 1}-${shard.slotEnd - 1} (the new shard starts there)`);
    }
    const { id, splitSlot } = await this.controller().startSplit(shardId, at === 0 ? undefined : at, "operator");
    return { summary: `operation ${id}: split shard ${shardId} at slot ${splitSlot} started`, operationId: String(id), version: String(this.node.map.version) };
  }

  async rebalance(request: Json): Promise<Json> {
    const controller = this.controller();
    const plan = request.apply ? await controller.applyPlan() : controller.plan();
    const changes = [
      ...plan.moves.map((m) => ({ kind: "move", shardId: m.shardId, fromNode: String(m.from), toNode: String(m.to), reason: m.reason })),
      ...plan.transfers.map((t) => ({ kind: "leader-transfer", shardId: t.shardId, fromNode: String(t.from), toNode: String(t.to), reason: t.reason })),
    ];
    const summary = changes.length === 0 ? "balanced: nothing to do" : `${request.apply ? "started" : "would make"} ${plan.moves.length} moves and ${plan.transfers.length} leader transfers`;
    return { changes, summary };
  }

  async failover(request: Json): Promise<Json> {
    const id = this.nodeIdOf(request.nodeId, "node_id");
    const moved = await this.controller().failover(id);
    return {
      changes: moved.map((m) => ({ kind: "leader-transfer", shardId: m.shardId, fromNode: String(m.from), toNode: String(m.to), reason: "failover" })),
      summary: moved.length === 0 ? `node ${id} leads no shard` : `moved ${moved.length} leaderships off node ${id}`,
    };
  }

  async recoverUnsafe(request: Json): Promise<Json> {
    const shardId = u32(request.shardId, "shard_id");
    if (!request.iUnderstandDataLoss) throw new FailedPreconditionError("recover --unsafe needs i_understand_data_loss: writes acknowledged by the lost replicas may be gone");
    const epoch = await this.node.recoverUnsafe(shardId);
    return { summary: `shard ${shardId}: node ${this.node.nodeId} is now its only voter at epoch ${epoch}; the controller re-replicates it`, operationId: "0", version: String(this.node.map.version) };
  }

  localStatus(): Json {
    const groups = this.node.groupStatus().map(({ shardId, status, applied, epoch }) => {
      const peers: Json[] = [];
      for (const [id, progress] of status.progress) {
        peers.push({ nodeId: String(id), match: String(progress.match), lag: String(Math.max(0, status.lastIndex - progress.match)), state: ["probe", "replicate", "snapshot"][progress.state] ?? "unknown" });
      }
      return {
        groupId: shardId,
        role: roleName[status.role],
        term: String(status.term),
        leaderId: status.leader === 0 ? "" : String(status.leader),
        commit: String(status.commit),
        applied: String(applied),
        lastIndex: String(status.lastIndex),
        leaseValid: status.leaseValid,
        epoch: String(epoch),
        peers,
      };
    });
    const stats = this.node.stats;
    return {
      nodeId: String(this.node.nodeId),
      clientAddress: this.node.self.client,
      zone: this.node.self.zone,
      reachable: true,
      groups,
      error: "",
      stats: {
        loopIterations: String(stats.iterations),
        syncs: String(stats.syncs),
        entriesWritten: String(stats.entriesWritten),
        entriesApplied: String(stats.applied),
        leaderChanges: String(stats.leaderChanges),
        inboundDropped: String(this.node.inboundDroppedCount),
        snapshotsInstalled: String(stats.snapshotsInstalled),
        snapshotsTaken: String(stats.snapshotsTaken),
      },
    };
  }

  transferLeader(request: Json): Json {
    const shardId = u32(request.shardId, "shard_id");
    const to = Number(request.toNode);
    if (!Number.isSafeInteger(to) || to <= 0 || !this.node.map.nodes.some((n) => n.id === to)) {
      throw new InvalidArgumentError(`to_node: unknown node "${request.toNode}"`);
    }
    this.node.transferLeader(shardId, to);
    return { leaderId: String(to) };
  }

  /** Runs one Pipeline operation; never throws (errors become ErrorInfo results). */
  async pipelineOp(request: Json): Promise<Json> {
    const id = request.id ?? "0";
    try {
      switch (request.op) {
        case "add":
          return { id, mutation: await this.add(request.add) };
        case "set":
          return { id, mutation: await this.set(request.set) };
        case "reset":
          return { id, mutation: await this.reset(request.reset) };
        case "compareAndSet":
          return { id, mutation: await this.compareAndSet(request.compareAndSet) };
        case "batch":
          return { id, batch: await this.addBatch(request.batch) };
        case "get":
          return { id, get: await this.get(request.get) };
        case "getMany":
          return { id, getMany: await this.getMany(request.getMany) };
        case "windowRange":
          return { id, windowRange: await this.windowRange(request.windowRange) };
        case "windowAt":
          return { id, windowAt: await this.windowAt(request.windowAt) };
        case "uniqueCount":
          return { id, uniqueCount: await this.uniqueCount(request.uniqueCount) };
        case "topK":
          return { id, topK: await this.topK(request.topK) };
        case "aggregate":
          return { id, aggregate: await this.aggregate(request.aggregate) };
        default:
          throw new InvalidArgumentError(`pipeline request ${id} carries no operation`);
      }
    } catch (error) {
      return { id, error: errorInfoOf(error, this.log) };
    }
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

/**
 * Builds the grpc server with every service bound to one node. CounterService calls are admitted
 * under the in-flight bounds and every call is counted in `metrics` (admission.ts, request-guard.ts).
 */
export function createClientServer(node: TallyNode, log: Logger, metrics?: NodeMetrics): grpc.Server {
  const proto = tallyProto();
  const { packageDefinition } = proto;
  const api = new CounterApi(node, log);
  // Access control (cluster.yaml auth:); undefined = off. It runs first: a refused caller takes
  // no in-flight slot and sends no byte of its request that the node reads (admission.ts).
  const gate = authGateFor(node.config, log);
  const guard = new RequestGuard(node.config.limits, metrics, log);
  api.onStreamOverloaded = (reason) => guard.streamOverloaded(reason);
  const bounds = tallyRequestBounds(node.config.limits);
  const counterService = boundedService(packageDefinition, "tally.v1.CounterService", bounds);
  const adminService = boundedService(packageDefinition, "tally.v1.AdminService", bounds);
  const admitted = new Map([...admittedMethods(counterService, true), ...admittedMethods(adminService, false)]);
  const server = new grpc.Server({
    interceptors: [admissionInterceptor(admitted, gate, guard, log)],
    // Larger requests are refused by grpc-js with RESOURCE_EXHAUSTED on their length prefix,
    // before they are buffered or decoded.
    "grpc.max_receive_message_length": node.config.limits.maxRequestBytes,
    "grpc.max_send_message_length": 64 * 1024 * 1024,
    // Calls a connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS): its
    // excess waits in the client, costing this node nothing, instead of arriving in one burst.
    "grpc.max_concurrent_streams": node.config.limits.maxStreamsPerConnection,
    "grpc.keepalive_time_ms": 30_000,
    // Channelz stays on for servers: grpc-js 1.14's forceShutdown() destroys only the sessions its
    // channelz handler tracked, so with channelz off a closed server leaves its streams open.
  });
  const unary =
    (fn: (request: Json) => Promise<Json> | Json) =>
    (call: grpc.ServerUnaryCall<Json, Json>, callback: grpc.sendUnaryData<Json>) => {
      let pending: Promise<Json> | Json;
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

  server.addService(counterService, guardService(gate, counterService, guard.wrapService({
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
    watch: (call: grpc.ServerWritableStream<Json, Json>) => api.watch(call),
    routes: (call: grpc.ServerUnaryCall<Json, Json>, callback: grpc.sendUnaryData<Json>) => unary(() => api.routes(gate?.keyVisibility(call)))(call, callback),
    pipeline: (call: grpc.ServerDuplexStream<Json, Json>) => {
      let inflight = 0;
      let ended = false;
      const caller = gate?.pipelineCaller(call);
      const callerName = caller?.principal?.name ?? "";
      const peer = call.getPeer();
      const write = pipelineWriter(call);
      call.on("data", (request: Json | RefusedRequest) => {
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
          write({ id: request.id ?? "0", error: { code: "OVERLOADED", message: `more than ${PIPELINE_INFLIGHT_MAX} operations in flight on this stream`, retryAfterMs: 10 } });
          return;
        }
        inflight++;
        if (typeof request.op === "string") stampCaller(request[request.op], callerName);
        void guard.pipelineOp(peer, request, (r) => api.pipelineOp(r)).then((response) => {
          inflight--;
          if (!call.cancelled && !call.destroyed) write(response);
          if (ended && inflight === 0) call.end();
        });
      });
      call.on("end", () => {
        ended = true;
        if (inflight === 0) call.end();
      });
      call.on("error", () => undefined);
    },
  }, { limit: true }), counterAccess, ["pipeline"]));

  server.addService(adminService, guardService(gate, adminService, guard.wrapService({
    status: unary(async (request) => {
      const local = api.localStatus();
      if (request.localOnly) return { nodes: [local] };
      const known = node.map.nodes.length > 0 ? node.map.nodes.filter((n) => n.state !== "removed") : node.config.nodes;
      const credentials = nodeClientCredentials(node.config, node.self);
      const others = await Promise.all(known.filter((n) => n.id !== node.nodeId).map((n) => fetchPeerStatus(proto, n.id, n.client, n.zone, credentials, internalCallMetadata(node.config))));
      return { nodes: [local, ...others].sort((a, b) => Number(a.nodeId) - Number(b.nodeId)) };
    }),
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
    heartbeat: unary((r) => ({ body: encodeBody(node.onHeartbeat(decodeBody<NodeReport>(r.body, "heartbeat"))) })),
    shardChange: unary(async (r) => ({ body: encodeBody(await node.shardChange(decodeBody<ShardChangeRequest>(r.body, "shard change"))) })),
    forwardWrite: unary(async (r) => ({ body: await api.forwarder.serve(r.body, gate !== undefined) })),
    shardBackup: (call: grpc.ServerWritableStream<Json, Json>) => serveShardBackup(node, call, log),
  }, { limit: false }), adminAccess));

  const health = new HealthImplementation({ "": "SERVING", "tally.v1.CounterService": "SERVING", "tally.v1.AdminService": "SERVING" });
  health.addToServer(server);
  node.onHealthChange = (serving) => {
    const state = serving ? "SERVING" : "NOT_SERVING";
    for (const service of ["", "tally.v1.CounterService", "tally.v1.AdminService"]) health.setStatus(service, state);
  };
  addReflection(server);
  return server;
}

/**
 * Writes Pipeline replies with backpressure: while the client does not read its replies, the
 * stream stops reading requests (HTTP/2 flow control then holds the client back), so a client that
 * sends without reading cannot grow this node's memory beyond one stream buffer.
 */
function pipelineWriter(call: grpc.ServerDuplexStream<Json, Json>): (response: Json) => void {
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

function fetchPeerStatus(proto: ReturnType<typeof tallyProto>, id: number, address: string, zone: string, credentials: grpc.ChannelCredentials, metadata = new grpc.Metadata()): Promise<Json> {
  return new Promise((resolve) => {
    const client = new proto.AdminService(address, credentials) as any;
    const unreachable = (message: string) => ({ nodeId: String(id), clientAddress: address, zone, reachable: false, groups: [], error: message });
    client.status({ localOnly: true }, metadata, { deadline: Date.now() + 1500 }, (error: grpc.ServiceError | null, response: Json) => {
      client.close();
      if (error) resolve(unreachable(error.details || error.message));
      else resolve(response.nodes?.[0] ?? unreachable("empty status"));
    });
  });
}

// ---- decoding helpers: every message names the field at fault ----

/**
 * The name of a field in errors: `field` alone, or `ops[opIndex].field` inside a batch. Built only
 * when an error is thrown, so a 10,000-op batch makes no name strings on the success path.
 */
function fieldName(field: string, opIndex: number): string {
  return opIndex < 0 ? field : `ops[${opIndex}].${field}`;
}

function key(raw: unknown, field: string, opIndex = -1): Uint8Array {
  if (!(raw instanceof Uint8Array)) throw new InvalidArgumentError(`${fieldName(field, opIndex)}: bytes are required`);
  if (raw.length === 0) throw new InvalidArgumentError(`${fieldName(field, opIndex)}: keys must be 1 to 256 bytes, got an empty key`);
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function i64(raw: unknown, field: string, opIndex = -1): bigint {
  if (raw === undefined || raw === null || raw === "") return 0n;
  let value: bigint;
  try {
    value = BigInt(raw as string);
  } catch {
    throw new InvalidArgumentError(`${fieldName(field, opIndex)}: not an integer: ${JSON.stringify(raw)}`);
  }
  if (value < INT64_MIN || value > INT64_MAX) throw new InvalidArgumentError(`${fieldName(field, opIndex)}: ${value} is outside the signed 64-bit range`);
  return value;
}

function u64(raw: unknown, field: string, opIndex = -1): number {
  if (raw === undefined || raw === null || raw === "") return 0;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`${fieldName(field, opIndex)}: ${JSON.stringify(raw)} is not a valid unsigned integer below 2^53`);
  }
  return value;
}

function u32(raw: unknown, field: string): number {
  const value = u64(raw, field);
  if (value > 0xffffffff) throw new InvalidArgumentError(`${field}: ${value} does not fit 32 bits`);
  return value;
}

function addOp(raw: Json, opIndex: number): CounterOp {
  const op: CounterOp = { kind: "add", key: key(raw.key, "key", opIndex), delta: i64(raw.delta, "delta", opIndex) };
  if (raw.hasFloor) op.floor = i64(raw.floor, "floor", opIndex);
  const ttlMs = ttlOf(raw.ttlMs, opIndex);
  if (ttlMs !== undefined) op.ttlMs = ttlMs;
  return op;
}

function setOp(raw: Json, opIndex: number): CounterOp {
  const op: CounterOp = { kind: "set", key: key(raw.key, "key", opIndex), value: i64(raw.value, "value", opIndex) };
  const ttlMs = ttlOf(raw.ttlMs, opIndex);
  if (ttlMs !== undefined) op.ttlMs = ttlMs;
  return op;
}

/** ttl_ms 0 (the proto default) = no change to the key's expiry. */
function ttlOf(raw: unknown, opIndex: number): number | undefined {
  const ttlMs = u64(raw, "ttl_ms", opIndex);
  if (ttlMs > TTL_MS_MAX) throw new InvalidArgumentError(`${fieldName("ttl_ms", opIndex)}: ${ttlMs} exceeds ${TTL_MS_MAX} (ten years)`);
  return ttlMs === 0 ? undefined : ttlMs;
}

function windowAddOp(raw: Json, opIndex: number): CounterOp {
  const op: CounterOp = { kind: "window", key: key(raw.key, "key", opIndex), delta: i64(raw.delta, "delta", opIndex) };
  const eventTimeMs = u64(raw.eventTimeMs, "event_time_ms", opIndex);
  if (eventTimeMs !== 0) op.eventTimeMs = eventTimeMs;
  const ttlMs = ttlOf(raw.ttlMs, opIndex);
  if (ttlMs !== undefined) op.ttlMs = ttlMs;
  return op;
}

function tryAcquireOp(raw: Json, opIndex: number): CounterOp {
  const op: CounterOp = {
    kind: "acquire",
    key: key(raw.key, "key", opIndex),
    n: u64(raw.n, "n", opIndex),
    limit: u64(raw.limit, "limit", opIndex),
    windowMs: u64(raw.windowMs, "window_ms", opIndex),
  };
  if (op.limit < 1) throw new InvalidArgumentError(`${fieldName("limit", opIndex)}: must be >= 1`);
  if (op.windowMs < 1 || op.windowMs > WINDOW_MS_MAX) throw new InvalidArgumentError(`${fieldName("window_ms", opIndex)}: must be 1..${WINDOW_MS_MAX}, got ${op.windowMs}`);
  if (op.n > op.limit) throw new InvalidArgumentError(`${fieldName("n", opIndex)}: ${op.n} exceeds limit ${op.limit}; it could never be granted`);
  return op;
}

function uniqueAddOp(raw: Json, opIndex: number): CounterOp {
  const items: unknown[] = Array.isArray(raw.items) ? raw.items : [];
  if (items.length === 0) throw new InvalidArgumentError(`${fieldName("items", opIndex)}: at least one item is required`);
  if (items.length > UNIQUE_ITEMS_MAX) throw new InvalidArgumentError(`${fieldName("items", opIndex)}: ${items.length} items exceed ${UNIQUE_ITEMS_MAX}`);
  const op: CounterOp = {
    kind: "unique",
    key: key(raw.key, "key", opIndex),
    items: items.map((item, i) => {
      if (!(item instanceof Uint8Array)) throw new InvalidArgumentError(`${fieldName(`items[${i}]`, opIndex)}: bytes are required`);
      return new Uint8Array(item.buffer, item.byteOffset, item.byteLength);
    }),
  };
  const ttlMs = ttlOf(raw.ttlMs, opIndex);
  if (ttlMs !== undefined) op.ttlMs = ttlMs;
  return op;
}

function windowAggregateOf(raw: unknown): WindowAggregate {
  if (raw === undefined || raw === null || raw === "") return "sum";
  if (raw === "sum" || raw === "count" || raw === "min" || raw === "max" || raw === "avg") return raw;
  throw new InvalidArgumentError(`agg: must be sum, count, min, max or avg, got ${JSON.stringify(raw)}`);
}

const WATCH_COALESCE_DEFAULT_MS = 50;
/** Changes read per poll; a backlog is sent over several polls. */
const WATCH_BATCH_MAX = 10_000;
/** An idle watch still sends its progress (the index) this often, so a resume starts near now. */
const WATCH_PROGRESS_MS = 1_000;

type KeyChangeLike = { key: Uint8Array; value: bigint; version: number; kind: string; index: number };

function shardAnswer(replica: ShardReplica, term: number, appliedIndex: number): Json {
  const { descriptor } = replica;
  return { shardId: replica.shardId, slotStart: descriptor.slotStart, slotEnd: descriptor.slotEnd, epoch: descriptor.epoch, appliedIndex, fence: fence(term, appliedIndex) };
}

function batchOp(raw: Json | undefined, i: number): CounterOp {
  switch (raw?.op) {
    case "add":
      return addOp(raw.add, i);
    case "set":
      return setOp(raw.set, i);
    case "windowAdd":
      return windowAddOp(raw.windowAdd, i);
    case "tryAcquire":
      return tryAcquireOp(raw.tryAcquire, i);
    case "uniqueAdd":
      return uniqueAddOp(raw.uniqueAdd, i);
    case "reset":
      return { kind: "reset", key: key(raw.reset.key, "key", i) };
    case "compareAndSet":
      return {
        kind: "cas",
        key: key(raw.compareAndSet.key, "key", i),
        expectedVersion: u64(raw.compareAndSet.expectedVersion, "expected_version", i),
        value: i64(raw.compareAndSet.value, "value", i),
      };
    default:
      throw new InvalidArgumentError(`ops[${i}]: no operation set (add, set, reset, compare_and_set, window_add, try_acquire or unique_add)`);
  }
}

function consistencyOf(raw: unknown): Consistency {
  if (raw === undefined || raw === null || raw === "LINEARIZABLE" || raw === 0) return "linearizable";
  if (raw === "STALE" || raw === 1) return "stale";
  throw new InvalidArgumentError(`consistency: unknown value ${JSON.stringify(raw)}`);
}

/**
 * An int64 for a reply. protobufjs encodes a JS number with exactly the bytes of its decimal
 * string (test/unit/wire-int64.test.ts) but about 3x faster, which matters for 10,000-result
 * replies; a number is exact only as a safe integer, so anything beyond stays a string.
 */
function int64Wire(value: bigint): number | string {
  return value >= -SAFE_INTEGER_MAX && value <= SAFE_INTEGER_MAX ? Number(value) : value.toString();
}

const SAFE_INTEGER_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** Log indexes and terms are safe integers (asserted in raft/), so they go out as numbers. */
function fence(term: number, index: number): Json {
  return { term, index };
}

/**
 * Top-K / aggregate over windowed counters: the range, or undefined for plain counters. The range
 * is checked here, against the tiers every windowed counter has, never against the counters a
 * shard holds: one step [from, to) that a tier answers as of now + futureMs (a counter's clock is
 * the leader time of its last write, at most that), so every shard answers the same request alike.
 */
function timeRangeOf(request: Json, nowMs: number): TimeRange | undefined {
  const fromMs = u64(request.windowFromMs, "window_from_ms");
  const toMs = u64(request.windowToMs, "window_to_ms");
  if (toMs === 0) {
    if (fromMs !== 0) throw new InvalidArgumentError("window_to_ms is required with window_from_ms");
    return undefined;
  }
  if (toMs <= fromMs) throw new InvalidArgumentError(`window_to_ms: ${toMs} must be above window_from_ms ${fromMs}`);
  try {
    rangePlan(DEFAULT_WINDOW_OPTIONS, fromMs, toMs, toMs - fromMs, nowMs + DEFAULT_WINDOW_OPTIONS.futureMs);
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    throw new InvalidArgumentError(`window_from_ms, window_to_ms: [${fromMs}, ${toMs}) is not one step of a tier: ${error.message}`);
  }
  return { fromMs, toMs };
}

function hotRouteMessage(record: HotRecord): Json {
  return { key: Buffer.from(record.key), tags: record.tags, writable: record.writable };
}

/**
 * A plain read of a hot key would see one sub-counter and pass it off as the counter. So a read of
 * a hot key must name the sub-counter count it sums (hot_sub_counters), and the count must be the
 * one this node's map has: a client with an older count refreshes its routes and reads again. A
 * count this node does not know (its map is older than the client's) is accepted: the client knows
 * better.
 */
function checkHotReads(hot: HotIndex, keys: Uint8Array[], claims: number[]): void {
  if (hot.size === 0) return;
  for (const [i, k] of keys.entries()) {
    const record = hot.lookup(k);
    if (record === undefined) continue;
    const claim = claims[i] ?? 0;
    if (claim === record.tags.length || claim > record.tags.length) continue;
    throw new FailedPreconditionError(
      `key ${describeKey(k)} ${HOT_READ_REFUSED} ${record.tags.length} sub-counters` +
        (claim === 0 ? "; a plain read sees only one of them: read it with the tally client or tallyctl, which sum them" : ` (the request sums ${claim}): refresh the routes and read again`),
    );
  }
}

/** Writes other than add (and floors, TTLs) have no meaning spread over sub-counters. */
function refuseHotMutations(hot: HotIndex, ops: CounterOp[]): void {
  for (const op of ops) {
    const record = hot.lookup(op.key);
    if (record === undefined || op.kind === "reset") continue;
    if (op.kind === "add" && op.floor === undefined && op.ttlMs === undefined) continue;
    const what = op.kind === "add" ? "an add with a floor or TTL" : `a ${op.kind}`;
    throw new FailedPreconditionError(`key ${describeKey(op.key)} is a hot counter over ${record.tags.length} sub-counters: ${what} cannot apply to a sum (only add, get and reset)`);
  }
}

const KIND_READS: Record<string, string> = {
  "windowed counter": "windowRange / windowAt (tallyctl window range|at)",
  "rate limit": "tryAcquire with n = 0 to peek (tallyctl limit KEY 0 ...)",
  "unique count": "uniqueCount (tallyctl unique count)",
};

/** A get of a windowed counter, rate limit or unique count says so instead of "does not exist". */
function refuseOtherKinds(keys: Uint8Array[], result: ReadResult): void {
  for (const [i, value] of result.values.entries()) {
    if (value.kind === undefined) continue;
    throw new FailedPreconditionError(`key ${describeKey(keys[i]!)} holds a ${value.kind}, not a counter: read it with ${KIND_READS[value.kind] ?? "its kind's read"}`);
  }
}

function readResponse(result: ReadResult, i: number): Json {
  const value = result.values[i]!;
  return {
    value: int64Wire(value.value),
    version: value.version,
    exists: value.exists,
    fence: fence(result.term, result.appliedIndex),
    appliedIndex: result.appliedIndex,
  };
}

/** A definite failure recorded by the state machine becomes the matching typed error. */
function expectOk(result: CommandResult): Exclude<CommandResult, { ok: false }> {
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
