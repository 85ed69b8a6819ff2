/**
 * A seeded fuzzer against a real tallyd cluster (test/support/cluster.ts). It sends, on every
 * CounterService and AdminService method and on the peer port, garbage bytes, mutated valid
 * requests, hand-made edge cases (int64 limits, unknown enum values, empty oneofs, huge keys and
 * batches) and valid mutations, and checks:
 *  - every answer is a success or a proper gRPC error: never UNKNOWN, never INTERNAL (bytes that
 *    do not decode are INVALID_ARGUMENT, docs/limits.md), never a hang past the deadline;
 *  - no node exits (checked after every case) and every node answers Status (every phase);
 *  - state changes only by the mutations the server reported applied, each replayed in an oracle
 *    whose values and versions the replies must match; every tracked counter is read back and
 *    compared periodically and at the end. A forged peer message must not move any group's term.
 * Findings are collected with the seed and case number; the same seed replays the same inputs.
 */
import * as grpc from "@grpc/grpc-js";
import { createPrng, type Prng } from "../../src/util/prng.js";
import { slotOf } from "../../src/meta/slots.js";
import { computePlacement } from "../../src/server/config/config.js";
import { encodeFrame, encodeSnapshotHeader } from "../../src/transport/codec.js";
import { crc32c } from "../../src/storage/crc32c.js";
import { MessageType, type Message } from "../../src/raft/types.js";
import type { TestCluster } from "../support/cluster.js";
import { RawBytesClient, peerMethodCodecs, tallyMethodCodecs, type MethodCodec, type RawOutcome } from "./wire.js";
import { bytesField, mutate, pick, randomBytes, varint, varintField } from "./mutate.js";
import { Oracle, keyId, type ModelOp } from "./oracle.js";

type Json = Record<string, any>;

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = "18446744073709551615";
/** Terms the fuzzer forges in peer messages; no group may ever reach one. */
const FORGED_TERM = 1_000_000_000_000;
const CALL_TIMEOUT_MS = 10_000;
const MUTATIONS = new Set(["Add", "Set", "Reset", "CompareAndSet", "AddBatch"]);
const PIPELINE_MUTATIONS: Record<string, string> = {
  add: "Add",
  set: "Set",
  reset: "Reset",
  compareAndSet: "CompareAndSet",
  batch: "AddBatch",
};
/** Pipeline reads of the counter kinds; each is answered with a result of the same name. */
const PIPELINE_KIND_READS = new Set(["windowRange", "windowAt", "uniqueCount", "topK", "aggregate"]);
/** Pipeline ops that change nothing. */
const PIPELINE_READS = new Set(["get", "getMany", ...PIPELINE_KIND_READS]);

export interface FuzzOptions {
  seed: number;
  /** Upper bound on cases. */
  iterations: number;
  /** Upper bound on wall time. */
  durationMs: number;
  /** Cases between full health and state checks. */
  checkEvery?: number;
  log?: (line: string) => void;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  requests: number;
  durationMs: number;
  casesByKind: Record<string, number>;
  /** Answers by gRPC status name (OK included). */
  answers: Record<string, number>;
  validMutationsApplied: number;
  keysTracked: number;
  stateChecks: number;
  findings: string[];
}

interface Session {
  clientId: string;
  nextSeq: number;
}

export class Fuzzer {
  private readonly prng: Prng;
  private readonly oracle = new Oracle();
  private readonly methods = tallyMethodCodecs();
  private readonly peerMethods = peerMethodCodecs();
  private readonly placement;
  private readonly clients = new Map<string, RawBytesClient>();
  private readonly leaders = new Map<number, string>();
  private readonly sessions = new Map<number, Session>();
  /** Every client id a session registration returned. */
  private readonly registeredClients = new Set<string>();
  /** (clientId, seq) of every decodable mutation sent: a duplicate reply must name one of these. */
  private readonly sentSeqs = new Set<string>();
  /** Ops of mutations whose answer was ambiguous, by (clientId, seq), until a retry settles them. */
  private readonly unsettled = new Map<string, ModelOp[]>();
  private readonly keyPool = new Map<number, Buffer[]>();
  private readonly recent: string[] = [];
  private readonly report: FuzzReport;
  private caseLabel = "";

  constructor(
    private readonly cluster: TestCluster,
    private readonly options: FuzzOptions,
  ) {
    this.prng = createPrng(options.seed);
    this.placement = computePlacement(cluster.config);
    for (let i = 0; this.keyPool.size < this.placement.length || i < 48; i++) {
      const key = Buffer.from(`fz:${i}`);
      const shardId = this.shardOf(key);
      const pool = this.keyPool.get(shardId) ?? [];
      pool.push(key);
      this.keyPool.set(shardId, pool);
    }
    this.report = {
      seed: options.seed,
      cases: 0,
      requests: 0,
      durationMs: 0,
      casesByKind: {},
      answers: {},
      validMutationsApplied: 0,
      keysTracked: 0,
      stateChecks: 0,
      findings: [],
    };
  }

  async run(): Promise<FuzzReport> {
    const started = Date.now();
    const checkEvery = this.options.checkEvery ?? 250;
    const kinds: Array<[string, number, () => Promise<void>]> = [
      ["garbage", 14, () => this.garbageCase()],
      ["mutated", 30, () => this.mutatedCase()],
      ["pipeline", 10, () => this.pipelineCase()],
      ["pipeline-batch", 6, () => this.pipelineBatchCase()],
      ["edge", 18, () => this.edgeCase()],
      ["valid", 16, () => this.validCase()],
      ["peer", 12, () => this.peerCase()],
    ];
    const totalWeight = kinds.reduce((sum, [, weight]) => sum + weight, 0);
    try {
      await this.refreshLeaders();
      for (const placement of this.placement) await this.registerSession(placement.shardId);
      while (
        this.report.cases < this.options.iterations &&
        Date.now() - started < this.options.durationMs &&
        this.report.findings.length === 0
      ) {
        let roll = this.prng.nextInt(totalWeight);
        let chosen = kinds[0]!;
        for (const kind of kinds) {
          if (roll < kind[1]) {
            chosen = kind;
            break;
          }
          roll -= kind[1];
        }
        this.report.cases += 1;
        this.report.casesByKind[chosen[0]] = (this.report.casesByKind[chosen[0]] ?? 0) + 1;
        this.caseLabel = `case ${this.report.cases} (${chosen[0]})`;
        await chosen[2]();
        this.checkAlive();
        if (this.report.cases % checkEvery === 0 && this.report.findings.length === 0) {
          await this.checkHealthAndState();
          this.options.log?.(
            `fuzz seed ${this.options.seed}: ${this.report.cases} cases, ${this.report.requests} requests, ${Math.round((Date.now() - started) / 1000)} s`,
          );
        }
      }
      if (this.report.findings.length === 0) {
        await this.giantMessageCase();
        this.checkAlive();
        await this.checkHealthAndState();
      }
    } finally {
      for (const client of this.clients.values()) client.close();
      this.report.durationMs = Date.now() - started;
      this.report.validMutationsApplied = this.oracle.appliedMutations;
      this.report.keysTracked = this.oracle.keys.size;
    }
    return this.report;
  }

  // ---- findings and bookkeeping ----

  private finding(what: string, bytes?: Buffer): void {
    const input =
      bytes === undefined
        ? ""
        : ` input(${bytes.length} bytes)=${bytes.subarray(0, 160).toString("hex")}${bytes.length > 160 ? "..." : ""}`;
    const line = `seed ${this.options.seed} ${this.caseLabel}: ${what}${input}`;
    if (this.report.findings.length < 20) this.report.findings.push(line);
    this.options.log?.(`FINDING ${line}\n  recent cases:\n    ${this.recent.slice(-10).join("\n    ")}`);
  }

  private note(description: string): void {
    this.recent.push(`${this.caseLabel}: ${description}`);
    if (this.recent.length > 50) this.recent.shift();
  }

  private count(outcome: RawOutcome): void {
    this.report.requests += 1;
    const name = grpc.status[outcome.code] ?? String(outcome.code);
    this.report.answers[name] = (this.report.answers[name] ?? 0) + 1;
  }

  private checkAlive(): void {
    for (const node of this.cluster.config.nodes) {
      if (!this.cluster.processes.has(node.id)) {
        this.finding(`node ${node.id} exited; last output:\n${this.cluster.logs(node.id).slice(-3000)}`);
        throw new Error(this.report.findings.at(-1));
      }
    }
  }

  private client(address: string): RawBytesClient {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new RawBytesClient(address);
      this.clients.set(address, client);
    }
    return client;
  }

  private shardOf(key: Uint8Array): number {
    const slot = slotOf(key);
    return this.placement.find((p) => slot >= p.slots.start && slot < p.slots.end)!.shardId;
  }

  private randomNodeAddress(): string {
    return pick(this.prng, this.cluster.config.nodes).client;
  }

  private leaderAddress(shardId: number): string {
    return this.leaders.get(shardId) ?? this.randomNodeAddress();
  }

  private async refreshLeaders(): Promise<void> {
    const status = this.methods.get("Status")!;
    for (const node of this.cluster.config.nodes) {
      const outcome = await this.client(node.client).unary(status.path, status.encode({ localOnly: true }), 3000);
      if (!outcome.ok) continue;
      const response = status.decodeResponse(outcome.response!);
      for (const group of response.nodes?.[0]?.groups ?? []) if (group.role === "leader") this.leaders.set(group.groupId, node.client);
    }
  }

  private async registerSession(shardId: number): Promise<void> {
    const method = this.methods.get("RegisterSession")!;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const outcome = await this.client(this.leaderAddress(shardId)).unary(
        method.path,
        method.encode({ shardId, epoch: "0" }),
        CALL_TIMEOUT_MS,
      );
      this.count(outcome);
      if (outcome.ok) {
        const clientId = method.decodeResponse(outcome.response!).clientId as string;
        this.sessions.set(shardId, { clientId, nextSeq: 1 });
        this.registeredClients.add(clientId);
        return;
      }
      await sleep(100);
      await this.refreshLeaders();
    }
    this.finding(`could not register a session on shard ${shardId} within 20 s`);
    throw new Error(this.report.findings.at(-1));
  }

  /** A header for a fresh request on the shard's session: every seq below it is acknowledged. */
  private header(shardId: number): Json {
    const session = this.sessions.get(shardId)!;
    const seq = session.nextSeq++;
    return {
      shardId,
      epoch: this.prng.chance(0.5) ? "0" : "1",
      clientId: session.clientId,
      seq: String(seq),
      firstUnackedSeq: String(seq),
    };
  }

  private poolKey(shardId: number): Buffer {
    return pick(this.prng, this.keyPool.get(shardId)!);
  }

  private smallInt(): string {
    return String(this.prng.nextInt(201) - 100);
  }

  private randomOp(shardId: number): Json {
    const key = this.poolKey(shardId);
    switch (this.prng.nextInt(4)) {
      case 0:
        return this.prng.chance(0.3)
          ? { key, delta: this.smallInt(), hasFloor: true, floor: this.smallInt() }
          : { key, delta: this.smallInt() };
      case 1:
        return { key, value: this.smallInt() };
      case 2:
        return { key };
      default: {
        const version = this.oracle.get(key)?.version ?? 0;
        return { key, expectedVersion: String(this.prng.chance(0.7) ? version : this.prng.nextInt(1000)), value: this.smallInt() };
      }
    }
  }

  private batchOp(op: Json): Json {
    if ("delta" in op) return { add: op };
    if ("expectedVersion" in op) return { compareAndSet: op };
    if ("value" in op) return { set: op };
    return { reset: op };
  }

  private methodForOp(op: Json): string {
    return "delta" in op ? "Add" : "expectedVersion" in op ? "CompareAndSet" : "value" in op ? "Set" : "Reset";
  }

  /** A well-formed request for `name` aimed at a real shard, session and keys. */
  private baseRequest(name: string, shardId: number): Json {
    const consistency = this.prng.chance(0.8) ? "LINEARIZABLE" : "STALE";
    switch (name) {
      case "RegisterSession":
        return { shardId, epoch: "0" };
      case "KeepAlive":
        return { header: this.header(shardId) };
      case "Add":
      case "Set":
      case "Reset":
      case "CompareAndSet": {
        let op = this.randomOp(shardId);
        while (this.methodForOp(op) !== name) op = this.randomOp(shardId);
        return { header: this.header(shardId), ...op };
      }
      case "AddBatch": {
        const ops = [];
        for (let n = 1 + this.prng.nextInt(8); n > 0; n--) ops.push(this.batchOp(this.randomOp(shardId)));
        return { header: this.header(shardId), ops };
      }
      case "Get":
        return { key: this.poolKey(shardId), consistency, minIndex: "0", shardId, epoch: "0" };
      case "GetMany":
        return { keys: [this.poolKey(shardId), this.poolKey(shardId)], consistency, minIndex: "0", shardId, epoch: "0" };
      case "Status":
        return { localOnly: this.prng.chance(0.8) };
      case "TransferLeader":
        return { shardId, toNode: String(1 + this.prng.nextInt(this.cluster.config.nodes.length)) };
      default:
        return {};
    }
  }

  private pipelineRequest(shardId: number): Json {
    const id = String(this.prng.nextInt(1_000_000));
    const choice = pick(this.prng, ["add", "set", "reset", "compareAndSet", "batch", "get", "getMany"]);
    const unary: Record<string, string> = {
      add: "Add",
      set: "Set",
      reset: "Reset",
      compareAndSet: "CompareAndSet",
      batch: "AddBatch",
      get: "Get",
      getMany: "GetMany",
    };
    return { id, [choice]: this.baseRequest(unary[choice]!, shardId) };
  }

  // ---- sending and judging ----

  /** Sends bytes to a unary method and judges the answer. */
  private async unary(method: MethodCodec, bytes: Buffer, address: string, timeoutMs = CALL_TIMEOUT_MS): Promise<RawOutcome> {
    const outcome = await this.client(address).unary(method.path, bytes, timeoutMs);
    this.count(outcome);
    this.judgeStatus(method.name, outcome, bytes);
    const request = tryDecode(method, bytes);
    if (request !== undefined) await this.judgeEffect(method.name, request, outcome, bytes);
    return outcome;
  }

  private judgeStatus(name: string, outcome: RawOutcome, bytes: Buffer): void {
    if (outcome.ok) return;
    const codeName = grpc.status[outcome.code] ?? String(outcome.code);
    if (outcome.code === grpc.status.UNKNOWN) this.finding(`${name}: UNKNOWN status (an unhandled error): ${outcome.details}`, bytes);
    else if (outcome.code === grpc.status.INTERNAL) {
      this.finding(`${name}: INTERNAL from the server: ${outcome.details}`, bytes);
    } else if (outcome.info?.code === "INTERNAL" || outcome.info?.code === "CORRUPTION") {
      this.finding(`${name}: ${outcome.info.code}: ${outcome.info.message}`, bytes);
    } else if (outcome.code === grpc.status.DEADLINE_EXCEEDED && !MUTATIONS.has(name)) {
      this.finding(`${name}: no answer within the deadline (${codeName})`, bytes);
    }
  }

  /** What a decodable request did: a reported success is replayed in the oracle and checked. */
  private async judgeEffect(name: string, request: Json, outcome: RawOutcome, bytes: Buffer): Promise<void> {
    const outside = outOfModelKeys(name, request);
    if (outside !== undefined) {
      // Valid perhaps, but beyond the model (TTL, counter kinds): its keys leave the oracle.
      for (const key of outside) this.oracle.makeVolatile(key);
      if (request.header) this.noteSeq(request.header);
      return;
    }
    const mutation = mutationOf(name, request);
    if (mutation?.header && mutation.header.shardId === 0 && mutation.ops?.[0] !== undefined) {
      // Shard 0 means "route by the first key": the request lands on that key's shard.
      mutation.header = { ...mutation.header, shardId: this.shardOf(mutation.ops[0].key) };
    }
    if (mutation !== undefined) {
      for (const op of mutation.ops ?? []) this.oracle.track(op.key);
      this.noteSeq(mutation.header);
      if (outcome.ok) {
        await this.applied(name, mutation, this.methods.get(name)!.decodeResponse(outcome.response!), bytes);
      } else if (isAmbiguous(outcome)) {
        if (mutation.header && mutation.ops) this.unsettled.set(seqKeyOf(mutation.header), mutation.ops);
        await this.resolveAmbiguous(name, request, mutation, bytes);
      } else if (outcome.info?.code === "SESSION_EXPIRED" && mutation.header) {
        const shardId = mutation.header.shardId as number;
        if (mutation.header.clientId === this.sessions.get(shardId)?.clientId) await this.registerSession(shardId);
      }
      return;
    }
    if (name === "Get" || name === "GetMany") {
      const keys: Buffer[] = name === "Get" ? [request.key] : (request.keys ?? []);
      for (const key of keys) if (key instanceof Buffer) this.oracle.track(key);
      if (outcome.ok && request.consistency === "LINEARIZABLE") {
        const response = this.methods.get(name)!.decodeResponse(outcome.response!);
        const values: Json[] = name === "Get" ? [response] : response.values;
        keys.forEach((key, i) => this.compareRead(key, values[i], bytes));
      }
    }
  }

  private compareRead(key: Buffer, value: Json | undefined, bytes: Buffer): void {
    if (this.oracle.isVolatile(key)) return;
    const model = this.oracle.get(key);
    const got = value === undefined ? "missing" : value.exists ? `${value.value}@${value.version}` : "absent";
    const want = model === undefined ? "absent" : `${model.value}@${model.version}`;
    if (got !== want) this.finding(`linearizable read of ${printable(key)} returned ${got}, the oracle has ${want}`, bytes);
  }

  private noteSeq(header: Json | null | undefined): void {
    if (!header) return;
    this.sentSeqs.add(seqKeyOf(header));
    const session = this.sessions.get(header.shardId);
    if (session === undefined || header.clientId !== session.clientId) return;
    // A mutated header may have moved the session's acknowledged point or used a future seq.
    const highest = Math.max(Number(header.seq), Number(header.firstUnackedSeq));
    if (Number.isSafeInteger(highest) && highest >= session.nextSeq) session.nextSeq = highest + 1;
    if (session.nextSeq > 2 ** 50) session.nextSeq = Number.MAX_SAFE_INTEGER; // forces a new session below
  }

  /** A reported success: fresh (replayed in the oracle and checked) or a duplicate (no change). */
  private async applied(name: string, mutation: Mutation, response: Json, bytes: Buffer): Promise<void> {
    const ops = mutation.ops;
    const header = mutation.header;
    if (ops === undefined || header === undefined || header === null) {
      this.finding(`${name}: the server applied a request the model calls invalid`, bytes);
      return;
    }
    if (!this.registeredClients.has(header.clientId))
      this.finding(`${name}: applied with client id ${header.clientId}, which has no session`, bytes);
    const results: Json[] = name === "AddBatch" ? (response.results ?? []) : [response];
    const index = Number(response.fence?.index ?? 0);
    if (results.length !== ops.length) {
      this.finding(`${name}: ${results.length} results for ${ops.length} ops`, bytes);
      return;
    }
    if (ops.some((op) => this.oracle.isVolatile(op.key))) {
      for (const op of ops) this.oracle.makeVolatile(op.key);
      return;
    }
    const allResets = ops.every((op) => op.kind === "reset");
    const fresh = ops.some((op, i) => op.kind !== "reset" && Number(results[i]!.version) === index);
    const seqKey = seqKeyOf(header);
    const unsettled = this.unsettled.get(seqKey);
    this.unsettled.delete(seqKey);
    if (!fresh && !allResets && unsettled === undefined) {
      if (!this.sentSeqs.has(seqKey)) this.finding(`${name}: a duplicate reply for seq ${header.seq}, never sent before`, bytes);
      return;
    }
    // A duplicate reply to a retry of an ambiguous attempt: that attempt applied, at the index
    // its saved result names; replay it there.
    const appliedOps = fresh || allResets ? ops : unsettled!;
    const appliedIndex = fresh || allResets ? index : Number(results.find((_, i) => appliedOps[i]?.kind !== "reset")?.version ?? 0);
    const simulated = this.oracle.simulate(appliedOps, appliedIndex);
    if (!simulated.ok) {
      if (allResets) return;
      this.finding(`${name}: applied, but the model says ${simulated.code} at op ${simulated.opIndex}`, bytes);
      return;
    }
    if (allResets) {
      // A reset replies (0, 0) whether it applied now or is a duplicate: read back to tell.
      const keys = ops.map((op) => op.key);
      const values = await this.readKeys(header.shardId, keys);
      if (values === undefined) return;
      const wasApplied = values.every((value) => !value.exists);
      if (wasApplied) this.oracle.commit(simulated.writes);
      else if (!this.sentSeqs.has(seqKey)) this.finding(`${name}: reset reported applied but the counters remain`, bytes);
      return;
    }
    for (const [i, result] of simulated.results.entries()) {
      const got = `${results[i]!.value}@${results[i]!.version}`;
      const want = `${result.value}@${result.version}`;
      if (appliedOps[i]!.kind !== "reset" && got !== want) {
        this.finding(`${name}: op ${i} on ${printable(appliedOps[i]!.key)} replied ${got}, the oracle expects ${want}`, bytes);
        return;
      }
    }
    this.oracle.commit(simulated.writes);
  }

  /** An ambiguous answer to a mutation: retry the same request (same seq) until it is definite. */
  private async resolveAmbiguous(name: string, request: Json, mutation: Mutation, bytes: Buffer): Promise<void> {
    const method = this.methods.get(name)!;
    const shardId = (mutation.header?.shardId ?? 0) as number;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      await sleep(100);
      await this.refreshLeaders();
      const outcome = await this.client(this.leaderAddress(shardId)).unary(method.path, method.encode(request), CALL_TIMEOUT_MS);
      this.count(outcome);
      if (isAmbiguous(outcome)) continue;
      if (outcome.ok) await this.applied(name, mutation, method.decodeResponse(outcome.response!), bytes);
      return;
    }
    this.finding(`${name}: still ambiguous after 30 s of retries`, bytes);
  }

  private async readKeys(shardId: number, keys: Buffer[]): Promise<Json[] | undefined> {
    const method = this.methods.get("GetMany")!;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const outcome = await this.client(this.leaderAddress(shardId)).unary(
        method.path,
        method.encode({ keys, consistency: "LINEARIZABLE", shardId, epoch: "0" }),
        CALL_TIMEOUT_MS,
      );
      this.count(outcome);
      if (outcome.ok) return method.decodeResponse(outcome.response!).values;
      await sleep(100);
      await this.refreshLeaders();
    }
    this.finding(`could not read ${keys.length} keys of shard ${shardId} within 20 s`);
    return undefined;
  }

  // ---- cases ----

  private async garbageCase(): Promise<void> {
    const method = pick(this.prng, [...this.methods.values()]);
    const bytes = randomBytes(this.prng, this.prng.chance(0.1) ? 0 : this.prng.nextInt(512));
    this.note(`${method.name} garbage ${bytes.length} bytes`);
    if (method.streaming) await this.pipelineCall([bytes], this.randomNodeAddress());
    else await this.unary(method, bytes, this.randomNodeAddress());
  }

  private async mutatedCase(): Promise<void> {
    const method = pick(
      this.prng,
      [...this.methods.values()].filter((m) => !m.streaming),
    );
    const shardId = pick(this.prng, this.placement).shardId;
    const bytes = mutate(this.prng, method.encode(this.baseRequest(method.name, shardId)));
    this.note(`${method.name} mutated ${bytes.length} bytes`);
    await this.unary(method, bytes, this.prng.chance(0.7) ? this.leaderAddress(shardId) : this.randomNodeAddress());
  }

  private async pipelineCase(): Promise<void> {
    const method = this.methods.get("Pipeline")!;
    const shardId = pick(this.prng, this.placement).shardId;
    let bytes = method.encode(this.pipelineRequest(shardId));
    if (this.prng.chance(0.7)) bytes = mutate(this.prng, bytes);
    this.note(`Pipeline ${bytes.length} bytes`);
    await this.pipelineCall([bytes], this.prng.chance(0.7) ? this.leaderAddress(shardId) : this.randomNodeAddress());
  }

  /**
   * A PipelineBatch message of reads (plain and counter kinds) and malformed requests (no op, an
   * empty key, an unknown field), its bytes mutated or not. A message whose bytes decode into a
   * mutation is not sent (the oracle follows mutations through pipelineCase). The stream ends OK or
   * refused (INVALID_ARGUMENT, RESOURCE_EXHAUSTED), never with an internal error, and no request is
   * answered INTERNAL or CORRUPTION.
   */
  private async pipelineBatchCase(): Promise<void> {
    const method = this.methods.get("PipelineBatch")!;
    const shardId = pick(this.prng, this.placement).shardId;
    const key = (): Buffer => Buffer.from(`fuzz-batch-${this.prng.nextInt(50)}`);
    const requests = Array.from({ length: 1 + this.prng.nextInt(6) }, (_, i): Json => {
      const id = String(i + 1);
      switch (this.prng.nextInt(6)) {
        case 0:
          return { id, get: { key: key(), shardId, consistency: pick(this.prng, ["LINEARIZABLE", "STALE"]) } };
        case 1:
          return { id, getMany: { keys: [key(), key()], shardId } };
        case 2:
          return { id, topK: { prefix: Buffer.from("fuzz-batch-"), k: this.prng.nextInt(20), shardId } };
        case 3:
          return { id };
        case 4:
          return { id, get: { key: Buffer.alloc(0), shardId } };
        default:
          return { id, windowRange: { key: key(), fromMs: "10", toMs: "5", stepMs: "0", shardId } };
      }
    });
    let bytes = method.encode({ requests });
    if (this.prng.chance(0.6)) bytes = mutate(this.prng, bytes);
    const decoded = tryDecode(method, bytes);
    const ops: unknown[] = decoded === undefined ? [] : ((decoded.requests as Json[] | undefined) ?? []).map((request) => request.op);
    if (ops.some((op) => typeof op === "string" && !PIPELINE_READS.has(op))) {
      this.note(`PipelineBatch: mutated into a mutation, not sent`);
      return;
    }
    this.note(`PipelineBatch ${requests.length} requests, ${bytes.length} bytes`);
    const address = this.prng.chance(0.7) ? this.leaderAddress(shardId) : this.randomNodeAddress();
    const { status, responses } = await this.client(address).bidi(method.path, [bytes], CALL_TIMEOUT_MS);
    this.count(status);
    this.judgeStatus("PipelineBatch", status, bytes);
    if (!status.ok && status.code !== grpc.status.INVALID_ARGUMENT && status.code !== grpc.status.RESOURCE_EXHAUSTED)
      this.finding(`PipelineBatch: the stream ended ${grpc.status[status.code]}: ${status.details}`, bytes);
    for (const reply of responses) {
      for (const response of (method.decodeResponse(reply).responses as Json[] | undefined) ?? []) {
        if (response.result === "error" && (response.error?.code === "INTERNAL" || response.error?.code === "CORRUPTION"))
          this.finding(`PipelineBatch: ${response.error.code}: ${response.error.message}`, bytes);
      }
    }
  }

  /** One Pipeline stream carrying one request; its one answer is judged like a unary one. */
  private async pipelineCall(messages: Buffer[], address: string): Promise<void> {
    const method = this.methods.get("Pipeline")!;
    const { status, responses } = await this.client(address).bidi(method.path, messages, CALL_TIMEOUT_MS);
    this.count(status);
    this.judgeStatus("Pipeline", status, messages[0]!);
    const request = messages.length === 1 ? tryDecode(method, messages[0]!) : undefined;
    if (request === undefined) return;
    const unaryName = PIPELINE_MUTATIONS[request.op] ?? (request.op === "get" ? "Get" : request.op === "getMany" ? "GetMany" : undefined);
    if (unaryName === undefined) {
      const response = responses[0] === undefined ? undefined : method.decodeResponse(responses[0]);
      if (request.op !== undefined && PIPELINE_KIND_READS.has(request.op)) {
        // A read of a counter kind (window, unique, top-K, aggregate): any answer but an internal
        // error, and the same kind back; it changes nothing, which the state checks verify.
        if (response?.result === "error" && (response.error?.code === "INTERNAL" || response.error?.code === "CORRUPTION"))
          this.finding(`Pipeline: ${response.error.code}: ${response.error.message}`, messages[0]);
        else if (response !== undefined && response.result !== "error" && response.result !== request.op)
          this.finding(`Pipeline: a ${request.op} request answered ${response.result}`, messages[0]);
        return;
      }
      if (response !== undefined && response.result !== "error")
        this.finding(`Pipeline: a request without an operation answered ${response.result}`, messages[0]);
      return;
    }
    const inner = request[request.op] as Json;
    const response = responses[0] === undefined ? undefined : method.decodeResponse(responses[0]);
    let outcome: RawOutcome;
    if (response === undefined) {
      outcome = status.ok ? { ok: false, code: grpc.status.UNAVAILABLE, details: "no pipeline response" } : status;
      if (status.ok && !MUTATIONS.has(unaryName)) this.finding(`Pipeline: the stream ended OK without an answer`, messages[0]);
    } else if (response.result === "error") {
      if (response.error?.code === "INTERNAL" || response.error?.code === "CORRUPTION")
        this.finding(`Pipeline: ${response.error.code}: ${response.error.message}`, messages[0]);
      outcome = { ok: false, code: grpc.status.FAILED_PRECONDITION, details: response.error?.message ?? "", info: response.error };
    } else {
      // Re-encoded as the unary method's response, so judgeEffect reads both paths alike.
      const unaryResponse = response.mutation ?? response.batch ?? response.get ?? response.getMany;
      outcome = { ok: true, code: 0, details: "", response: this.methods.get(unaryName)!.encodeResponse(unaryResponse) };
    }
    await this.judgeEffect(unaryName, inner ?? {}, outcome, messages[0]!);
  }

  private async edgeCase(): Promise<void> {
    const shardId = pick(this.prng, this.placement).shardId;
    const address = this.leaderAddress(shardId);
    const key = this.poolKey(shardId);
    const m = (name: string) => this.methods.get(name)!;
    const hugeKey = Buffer.alloc(pick(this.prng, [257, 4096, 65536, 1 << 20]), 0x61);
    const cases: Array<[string, () => Promise<unknown>]> = [
      [
        "empty key",
        () => this.unary(m("Add"), m("Add").encode({ header: this.header(shardId), key: Buffer.alloc(0), delta: "1" }), address),
      ],
      [
        `huge key (${hugeKey.length})`,
        () => this.unary(m("Add"), m("Add").encode({ header: this.header(shardId), key: hugeKey, delta: "1" }), address),
      ],
      ["huge get key", () => this.unary(m("Get"), m("Get").encode({ key: hugeKey, shardId }), address)],
      ["empty get key", () => this.unary(m("Get"), m("Get").encode({ key: Buffer.alloc(0), shardId }), address)],
      [
        "unknown consistency enum",
        () => {
          const value = pick(this.prng, [2n, 7n, 2n ** 31n - 1n, 2n ** 64n - 1n]);
          return this.unary(m("Get"), Buffer.concat([bytesField(1, key), varintField(2, value), varintField(4, BigInt(shardId))]), address);
        },
      ],
      [
        "unknown consistency in GetMany",
        () => this.unary(m("GetMany"), Buffer.concat([bytesField(1, key), varintField(2, 5n), varintField(4, BigInt(shardId))]), address),
      ],
      [
        "batch op with an empty oneof",
        () =>
          this.unary(
            m("AddBatch"),
            m("AddBatch").encode({ header: this.header(shardId), ops: [{ add: { key, delta: "1" } }, {}] }),
            address,
          ),
      ],
      ["batch without ops", () => this.unary(m("AddBatch"), m("AddBatch").encode({ header: this.header(shardId), ops: [] }), address)],
      ["pipeline without an op", () => this.pipelineCall([m("Pipeline").encode({ id: "7" })], address)],
      ["mutation without a header", () => this.unary(m("Add"), m("Add").encode({ key, delta: "1" }), address)],
      [
        "header edge values",
        () => {
          const header = this.header(shardId);
          const field = pick(this.prng, ["shardId", "epoch", "clientId", "seq", "firstUnackedSeq"]);
          header[field] =
            field === "shardId"
              ? pick(this.prng, [0, 999, 4294967295])
              : pick(this.prng, ["0", UINT64_MAX, "9007199254740993", "123456789"]);
          return this.unary(m("Set"), m("Set").encode({ header, key, value: "5" }), address);
        },
      ],
      [
        "cas expected version 2^64-1",
        () =>
          this.unary(
            m("CompareAndSet"),
            m("CompareAndSet").encode({ header: this.header(shardId), key, expectedVersion: UINT64_MAX, value: "1" }),
            address,
          ),
      ],
      [
        "over-long varint for delta",
        () => {
          const header = m("Add").encode({ header: this.header(shardId) });
          return this.unary(m("Add"), Buffer.concat([header, bytesField(2, key), Buffer.from([0x18]), varint(2n ** 69n + 5n)]), address);
        },
      ],
      [
        "GetMany with 10,001 keys",
        () => this.unary(m("GetMany"), m("GetMany").encode({ keys: new Array(10_001).fill(key), shardId }), address),
      ],
      ["GetMany without keys", () => this.unary(m("GetMany"), m("GetMany").encode({ keys: [], shardId }), address)],
      [
        "batch of 10,001 ops",
        () =>
          this.unary(
            m("AddBatch"),
            m("AddBatch").encode({ header: this.header(shardId), ops: new Array(10_001).fill({ add: { key, delta: "1" } }) }),
            address,
          ),
      ],
      [
        "register on a missing shard",
        () => this.unary(m("RegisterSession"), m("RegisterSession").encode({ shardId: pick(this.prng, [0, 999, 4294967295]) }), address),
      ],
      [
        "keepalive of an unknown client",
        () => this.unary(m("KeepAlive"), m("KeepAlive").encode({ header: { shardId, clientId: "987654321", seq: "1" } }), address),
      ],
      [
        "transfer to a bad node",
        () =>
          this.unary(
            m("TransferLeader"),
            m("TransferLeader").encode({
              shardId: pick(this.prng, [0, shardId, 999]),
              toNode: pick(this.prng, ["", "abc", "-1", "99", "1e3", "0x1"]),
            }),
            address,
          ),
      ],
    ];
    const [description, run] = pick(this.prng, cases);
    this.note(`edge: ${description}`);
    await run();
  }

  /** Valid mutations, including int64 limits and full batches: the outcome must be exactly the oracle's. */
  private async validCase(): Promise<void> {
    const shardId = pick(this.prng, this.placement).shardId;
    const key = this.poolKey(shardId);
    const limit = () => pick(this.prng, [INT64_MAX, INT64_MIN, 1n, -1n, 0n, 2n ** 62n, -(2n ** 62n)]).toString();
    let name: string;
    let request: Json;
    switch (this.prng.nextInt(6)) {
      case 0:
        name = "Add";
        request = { header: this.header(shardId), key, delta: limit() };
        break;
      case 1:
        name = "Add";
        request = { header: this.header(shardId), key, delta: this.smallInt(), hasFloor: true, floor: limit() };
        break;
      case 2:
        name = "Set";
        request = { header: this.header(shardId), key, value: limit() };
        break;
      case 3:
        name = "CompareAndSet";
        request = { header: this.header(shardId), key, expectedVersion: String(this.oracle.get(key)?.version ?? 0), value: limit() };
        break;
      case 4: {
        // A full batch; sometimes its last op overflows, and then none of it may apply.
        name = "AddBatch";
        const ops: Json[] = [];
        const size = this.prng.chance(0.2) ? 10_000 : 1 + this.prng.nextInt(100);
        for (let i = 0; i < size - 2; i++) ops.push({ add: { key: this.poolKey(shardId), delta: this.smallInt() } });
        ops.push({ set: { key, value: INT64_MAX.toString() } });
        ops.push({ add: { key, delta: this.prng.chance(0.5) ? "1" : "-1" } });
        request = { header: this.header(shardId), ops };
        break;
      }
      default:
        name = this.prng.chance(0.5) ? "Reset" : "Add";
        request = name === "Reset" ? { header: this.header(shardId), key } : { header: this.header(shardId), key, delta: this.smallInt() };
    }
    const touched: Buffer[] = request.ops ? request.ops.map((op: Json) => (op.add ?? op.set).key) : [key];
    if (touched.some((k) => this.oracle.isVolatile(k))) return; // beyond the model since a TTL or kind op
    this.note(`valid ${name} ${request.ops ? `${request.ops.length} ops` : `${printable(key)} ${request.delta ?? request.value ?? ""}`}`);
    const method = this.methods.get(name)!;
    const bytes = method.encode(request);
    const before = this.oracle.appliedMutations;
    const expected = this.oracle.simulate(mutationOf(name, method.decodeRequest(bytes))!.ops!, 0);
    for (let attempt = 0; attempt < 50; attempt++) {
      const outcome = await this.unary(method, bytes, this.leaderAddress(shardId));
      if (outcome.info?.code === "NOT_LEADER" || (!outcome.ok && outcome.code === grpc.status.UNAVAILABLE)) {
        await sleep(50);
        await this.refreshLeaders();
        continue;
      }
      if (outcome.info?.code === "SESSION_EXPIRED" || outcome.info?.code === "SEQ_ACKNOWLEDGED") return;
      const got = outcome.ok ? "OK" : (outcome.info?.code ?? grpc.status[outcome.code]);
      const want = expected.ok ? "OK" : expected.code;
      if (got !== want) this.finding(`valid ${name}: answered ${got} (${outcome.details}), the oracle expects ${want}`, bytes);
      else if (expected.ok && this.oracle.appliedMutations === before) {
        const reply = JSON.stringify(method.decodeResponse(outcome.response!));
        this.finding(`valid ${name}: answered OK (${reply}) after ${attempt + 1} attempts, but was not a fresh apply`, bytes);
      }
      return;
    }
    this.finding(`valid ${name}: no leader accepted it in 50 attempts`, bytes);
  }

  /** Garbage on the peer port: raw bytes, damaged frames, forged and misaddressed messages, bad snapshots. */
  private async peerCase(): Promise<void> {
    const target = pick(this.prng, this.cluster.config.nodes);
    const client = this.client(target.peer);
    const raft = this.peerMethods.get("Raft")!;
    const snapshot = this.peerMethods.get("Snapshot")!;
    const other = this.cluster.config.nodes.find((n) => n.id !== target.id)?.id ?? 2;
    const forged = (type: MessageType, from: number, to: number): Message => ({
      type,
      to,
      from,
      term: this.prng.chance(0.5) ? FORGED_TERM + this.prng.nextInt(1000) : this.prng.nextInt(3),
      logTerm: this.prng.nextInt(3),
      index: this.prng.nextInt(1000),
      entries:
        type === MessageType.App
          ? [{ term: FORGED_TERM, index: 1 + this.prng.nextInt(1000), type: 0, data: randomBytes(this.prng, 8) }]
          : [],
      commit: this.prng.nextInt(1000),
      reject: false,
      rejectHint: 0,
    });
    const frame = (fromNode: string, messages: Array<[number, Message]>, damage: boolean): Buffer => {
      const encoded = encodeFrame(messages);
      let payload: Buffer = Buffer.from(encoded.payload);
      let checksum = encoded.crc32c;
      if (damage) {
        payload = mutate(this.prng, payload);
        if (this.prng.chance(0.7)) checksum = crc32c(payload);
      }
      return raft.encode({ fromNode, payload, crc32c: checksum });
    };
    const groupId = () => pick(this.prng, [0, 1, 2, 999, 4294967295]);
    // Frames in a real peer's name go to groups no node hosts. Without mTLS a frame that survives
    // its damage IS that peer speaking, and Raft trusts its peers (a forged App can truncate a
    // log): such frames must test the decoder without reaching a Raft group.
    const absentGroup = () => pick(this.prng, [999, 4294967295]);
    const anyType = () => this.prng.nextInt(19) as MessageType;
    const variant = this.prng.nextInt(8);
    let description: string;
    if (variant === 0) {
      description = "raw garbage frames";
      const frames = Array.from({ length: 1 + this.prng.nextInt(3) }, () => randomBytes(this.prng, this.prng.nextInt(300)));
      const { status } = await client.bidi(raft.path, frames, 5000);
      this.report.requests += frames.length;
      this.note(`${description}: ${grpc.status[status.code]}`);
    } else if (variant <= 2) {
      // A real peer's id on damaged frames (what a corrupting network or a buggy peer sends).
      description = "damaged frames";
      const bytes = frame(String(other), [[absentGroup(), forged(anyType(), other, target.id)]], true);
      const { status } = await client.bidi(raft.path, [this.prng.chance(0.3) ? mutate(this.prng, bytes) : bytes], 5000);
      this.report.requests += 1;
      this.note(`${description}: ${grpc.status[status.code]}`);
    } else if (variant <= 4) {
      // Well-formed frames that must be refused: unknown sender, misaddressed, sender mismatch,
      // local-only message types, messages without a term.
      const from = pick(this.prng, [99, 12345, 0]);
      const shape = this.prng.nextInt(4);
      const message =
        shape === 0
          ? forged(anyType(), from, target.id)
          : shape === 1
            ? forged(anyType(), other, other)
            : shape === 2
              ? forged(anyType(), from, target.id)
              : {
                  ...forged(
                    pick(this.prng, [
                      MessageType.Hup,
                      MessageType.Beat,
                      MessageType.Prop,
                      MessageType.CheckQuorum,
                      MessageType.App,
                      MessageType.Heartbeat,
                    ]),
                    other,
                    target.id,
                  ),
                  term: 0,
                };
      const fromNode = shape === 2 ? String(other) : shape === 3 ? String(other) : String(message.from);
      description = `forged frame type ${MessageType[message.type]} from ${message.from} (claims ${fromNode}) to ${message.to} term ${message.term}`;
      if (shape === 3 || shape === 1) {
        // term 0 or misaddressed from a real id must not change the target's terms either.
        message.term = shape === 3 ? 0 : FORGED_TERM;
      }
      const { status } = await client.bidi(raft.path, [frame(fromNode, [[groupId(), message]], false)], 5000);
      this.report.requests += 1;
      this.note(`${description}: ${grpc.status[status.code]}`);
    } else {
      description = "bad snapshot chunks";
      const from = pick(this.prng, [99, other]);
      const message = forged(MessageType.Snap, from, pick(this.prng, [target.id, target.id, other]));
      message.term = from === other ? 0 : FORGED_TERM;
      message.snapshot = {
        metadata: {
          index: 5000 + this.prng.nextInt(1000),
          term: FORGED_TERM,
          confState: { voters: [target.id, 99], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
        },
        data: randomBytes(this.prng, 64),
      };
      const data = message.snapshot.data;
      const chunks: Buffer[] = [];
      const shape = this.prng.nextInt(4);
      const header = Buffer.from(encodeSnapshotHeader(message));
      chunks.push(
        snapshot.encode({
          fromNode: String(from),
          groupId: from === other ? absentGroup() : groupId(),
          header: shape === 0 ? mutate(this.prng, header) : header,
          data: shape === 1 ? data.subarray(0, 10) : data,
          offset: shape === 2 ? 7 : 0,
          last: shape !== 1,
          crc32c: shape === 3 ? 1 : crc32c(shape === 1 ? data.subarray(0, 10) : data),
        }),
      );
      if (this.prng.chance(0.3)) chunks.push(randomBytes(this.prng, this.prng.nextInt(100)));
      description = `snapshot from ${from} shape ${shape}`;
      const outcome = await client.clientStream(snapshot.path, chunks, 5000);
      this.report.requests += chunks.length;
      this.note(`${description}: ${grpc.status[outcome.code]}`);
      if (outcome.ok && from === 99) {
        const ack = snapshot.decodeResponse(outcome.response!);
        if (ack.ok) this.finding(`a snapshot from unknown node 99 was accepted`);
      }
    }
  }

  /** One message far over the server's limit (limits.maxRequestBytes): RESOURCE_EXHAUSTED, and the node lives on. */
  private async giantMessageCase(): Promise<void> {
    const shardId = this.placement[0]!.shardId;
    const method = this.methods.get("Add")!;
    const bytes = Buffer.concat([
      method.encode({ header: this.header(shardId), delta: "1" }),
      bytesField(2, Buffer.alloc(65 * 1024 * 1024, 0x62)),
    ]);
    this.caseLabel = "giant message";
    this.note(`Add of ${bytes.length} bytes`);
    const outcome = await this.client(this.leaderAddress(shardId)).unary(method.path, bytes, 30_000);
    this.count(outcome);
    if (outcome.code !== grpc.status.RESOURCE_EXHAUSTED)
      this.finding(`a 65 MiB request answered ${grpc.status[outcome.code]} (${outcome.details}), not RESOURCE_EXHAUSTED`);
  }

  // ---- checks ----

  async checkHealthAndState(): Promise<void> {
    this.report.stateChecks += 1;
    const label = this.caseLabel;
    this.caseLabel = `state check after case ${this.report.cases}`;
    try {
      const status = this.methods.get("Status")!;
      for (const node of this.cluster.config.nodes) {
        const outcome = await this.client(node.client).unary(status.path, status.encode({ localOnly: true }), 5000);
        this.count(outcome);
        if (!outcome.ok) {
          this.finding(`node ${node.id} does not answer Status: ${grpc.status[outcome.code]} ${outcome.details}`);
          continue;
        }
        for (const group of status.decodeResponse(outcome.response!).nodes?.[0]?.groups ?? []) {
          if (Number(group.term) >= FORGED_TERM) this.finding(`node ${node.id} group ${group.groupId} reached forged term ${group.term}`);
        }
      }
      await this.cluster.waitReady(30_000);
      await this.refreshLeaders();
      for (const placement of this.placement) {
        const session = this.sessions.get(placement.shardId)!;
        if (session.nextSeq > 2 ** 50) await this.registerSession(placement.shardId);
      }
      const byShard = new Map<number, Buffer[]>();
      for (const key of this.oracle.keys.values()) {
        const shardId = this.shardOf(key);
        byShard.set(shardId, [...(byShard.get(shardId) ?? []), key]);
      }
      for (const [shardId, keys] of byShard) {
        for (let start = 0; start < keys.length; start += 5000) {
          const chunk = keys.slice(start, start + 5000);
          const values = await this.readKeys(shardId, chunk);
          if (values === undefined) return;
          chunk.forEach((key, i) => this.compareRead(key, values[i], Buffer.alloc(0)));
          if (this.report.findings.length > 0) {
            this.options.log?.(`state differs from the oracle; recent cases:\n  ${this.recent.join("\n  ")}`);
            return;
          }
        }
      }
    } finally {
      this.caseLabel = label;
    }
  }
}

interface Mutation {
  header: Json | null | undefined;
  /** undefined: the request is invalid as a whole (an op without a kind, a version beyond 2^53). */
  ops: ModelOp[] | undefined;
}

function mutationOf(name: string, request: Json): Mutation | undefined {
  if (!MUTATIONS.has(name)) return undefined;
  const raw: Json[] =
    name === "AddBatch"
      ? (request.ops ?? []).map((op: Json) => (op.op === undefined ? undefined : { kind: op.op, ...op[op.op] }))
      : [{ kind: name, ...request }];
  const ops: ModelOp[] = [];
  for (const op of raw) {
    const model = op === undefined ? undefined : modelOp(op);
    if (model === undefined) return { header: request.header, ops: undefined };
    ops.push(model);
  }
  return { header: request.header, ops };
}

/** Op kinds of the counter kinds (issue 8) and TTLs: requests the model does not predict. */
const KIND_OPS = new Set(["windowAdd", "tryAcquire", "uniqueAdd"]);

function outOfModelKeys(name: string, request: Json): Buffer[] | undefined {
  if (!MUTATIONS.has(name) || request === null || typeof request !== "object") return undefined;
  const raw: Json[] =
    name === "AddBatch"
      ? (request.ops ?? []).map((op: Json) => (op?.op === undefined ? undefined : { kind: op.op, ...op[op.op] }))
      : [{ kind: name, ...request }];
  const beyond = raw.some(
    (op) => op !== undefined && (KIND_OPS.has(op.kind) || (op.ttlMs !== undefined && op.ttlMs !== null && String(op.ttlMs) !== "0")),
  );
  if (!beyond) return undefined;
  return raw.filter((op) => op !== undefined && op.key instanceof Buffer).map((op) => op.key as Buffer);
}

function modelOp(op: Json): ModelOp | undefined {
  const key = op.key instanceof Buffer ? op.key : Buffer.alloc(0);
  switch (op.kind) {
    case "Add":
    case "add":
      return op.hasFloor
        ? { kind: "add", key, delta: BigInt(op.delta), floor: BigInt(op.floor) }
        : { kind: "add", key, delta: BigInt(op.delta) };
    case "Set":
    case "set":
      return { kind: "set", key, value: BigInt(op.value) };
    case "Reset":
    case "reset":
      return { kind: "reset", key };
    case "CompareAndSet":
    case "compareAndSet": {
      const expectedVersion = Number(op.expectedVersion);
      return Number.isSafeInteger(expectedVersion) ? { kind: "cas", key, expectedVersion, value: BigInt(op.value) } : undefined;
    }
    default:
      return undefined;
  }
}

/** Exactly-once identity of a mutation: sessions live per shard, and their ids may repeat across shards. */
function seqKeyOf(header: Json): string {
  return `${header.shardId}/${header.clientId}/${header.seq}`;
}

function tryDecode(method: MethodCodec, bytes: Buffer): Json | undefined {
  try {
    return method.decodeRequest(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Whether a mutation's answer leaves its outcome open. NOT_LEADER is among them: a leader that
 * loses leadership answers NOT_LEADER for proposals already in its log, which the next leader may
 * still commit (the client library treats it the same way; found when seed 7 saw such an Add land).
 */
function isAmbiguous(outcome: RawOutcome): boolean {
  if (outcome.ok) return false;
  const code = outcome.info?.code;
  if (code !== undefined) return code === "AMBIGUOUS" || code === "TIMEOUT" || code === "UNAVAILABLE" || code === "NOT_LEADER";
  return (
    outcome.code === grpc.status.DEADLINE_EXCEEDED || outcome.code === grpc.status.UNAVAILABLE || outcome.code === grpc.status.CANCELLED
  );
}

function printable(key: Uint8Array): string {
  const text = Buffer.from(key).toString("latin1");
  return /^[\x20-\x7e]*$/.test(text) && key.length <= 40 ? JSON.stringify(text) : `0x${keyId(key).slice(0, 40)}(${key.length})`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
