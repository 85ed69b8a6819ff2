/**
 * The counter workload: closed-loop clients that add to counters (unique op id = clientId.seq,
 * retried with the same id after a timeout or a refusal, so exactly-once is exercised), read
 * through ReadIndex, and read through the leader lease. Every operation is recorded with virtual
 * timestamps: invocation, completion, and its outcome (acknowledged, failed for certain, or
 * ambiguous: the client gave up without knowing).
 */
import { assert } from "../../src/util/assert.js";
import type { Prng } from "../../src/util/prng.js";
import type { NodeId } from "../../src/raft/types.js";
import { type CounterCommand, opIdOf } from "./counter-state-machine.js";

export interface WorkloadOptions {
  clients: number;
  keys: string[];
  /** Mix of operations; the rest are adds. */
  readIndexRate: number;
  leaseReadRate: number;
  thinkMsMax: number;
  attemptTimeoutMs: number;
  /** A client gives up on an operation after this long (during the fault phase). */
  operationDeadlineMs: number;
  retryBackoffMsMax: number;
  /** Chance a read goes to a random node instead of the presumed leader. */
  randomTargetRate: number;
}

export type ClientRequest =
  | { kind: "add"; attempt: number; command: CounterCommand }
  | { kind: "read"; attempt: number; clientId: number; opId: string; key: string; lease: boolean };

export type ClientResponse =
  | { kind: "ok"; opId: string; attempt: number; value: bigint; node: NodeId; path: string }
  /** The attempt did nothing (for an add: it was definitely not proposed). */
  | { kind: "rejected"; opId: string; attempt: number; node: NodeId; leaderHint: NodeId; reason: string };

export type Outcome = "pending" | "ok" | "failed" | "ambiguous";

export interface HistoryRecord {
  opId: string;
  clientId: number;
  kind: "add" | "read";
  key: string;
  /** add only */
  seq: number;
  delta: number;
  /** read only */
  lease: boolean;
  invokedAtMs: number;
  /** Global event counter at invocation: a total order across clients. */
  invokedStep: number;
  completedAtMs?: number;
  completedStep?: number;
  outcome: Outcome;
  value?: bigint;
  attempts: number;
  /** Some attempt may have reached a node and been proposed (timed out rather than refused). */
  maybeApplied: boolean;
  servedBy?: NodeId;
  path?: string;
}

export interface ClientHost {
  nowMs(): number;
  step(): number;
  schedule(delayMs: number, run: () => void): void;
  /** Nodes a client may contact (started and not decommissioned). */
  members(): NodeId[];
  sendRequest(node: NodeId, request: ClientRequest, onResponse: (response: ClientResponse) => void): void;
  acceptingNewOperations(): boolean;
  /** A quiet period: new operations are reads. */
  writesPaused(): boolean;
  /** True while operations may be abandoned at their deadline (not in the final, healed phase). */
  deadlinesApply(): boolean;
  record(text: string): void;
}

interface InFlight {
  record: HistoryRecord;
  command?: CounterCommand;
  attempt: number;
  deadlineMs: number;
}

export class SimClient {
  private seq = 0;
  private leaderHint: NodeId = 0;
  private current: InFlight | undefined;
  private readonly readIds: () => number;

  constructor(
    readonly id: number,
    private readonly host: ClientHost,
    private readonly prng: Prng,
    private readonly options: WorkloadOptions,
    private readonly history: HistoryRecord[],
    readIds: () => number,
  ) {
    assert(options.keys.length > 0, "workload needs at least one key");
    this.readIds = readIds;
  }

  get idle(): boolean {
    return this.current === undefined;
  }

  start(): void {
    this.host.schedule(this.prng.nextFloat() * this.options.thinkMsMax, () => this.next());
  }

  private next(): void {
    if (this.current !== undefined || !this.host.acceptingNewOperations()) return;
    const { keys, readIndexRate, leaseReadRate } = this.options;
    const key = keys[this.prng.nextInt(keys.length)]!;
    const roll = this.prng.nextFloat();
    const kind = roll < readIndexRate + leaseReadRate || this.host.writesPaused() ? "read" : "add";
    const record: HistoryRecord = {
      opId: "",
      clientId: this.id,
      kind,
      key,
      seq: 0,
      delta: 0,
      lease: roll < leaseReadRate,
      invokedAtMs: this.host.nowMs(),
      invokedStep: this.host.step(),
      outcome: "pending",
      attempts: 0,
      maybeApplied: false,
    };
    const inFlight: InFlight = { record, attempt: 0, deadlineMs: this.host.nowMs() + this.options.operationDeadlineMs };
    if (kind === "add") {
      this.seq++;
      record.seq = this.seq;
      // Small deltas of both signs; zero is allowed and harmless.
      record.delta = this.prng.nextInt(9) - 2;
      record.opId = opIdOf(this.id, this.seq);
      // Closed loop: this op is the only unacknowledged one, so it is also the floor.
      inFlight.command = { clientId: this.id, seq: this.seq, floorSeq: this.seq, key, delta: record.delta };
    } else {
      record.opId = `c${this.id}.r${this.readIds()}`;
    }
    this.history.push(record);
    this.current = inFlight;
    this.host.record(
      `client ${this.id} invoke ${record.opId} ${kind === "add" ? `add(${key}, ${record.delta})` : `read(${key}${record.lease ? ", lease" : ""})`}`,
    );
    this.attempt();
  }

  private attempt(): void {
    const inFlight = this.current!;
    const members = this.host.members();
    assert(members.length > 0, "no node to send to");
    let target = this.leaderHint;
    const random = inFlight.record.kind === "read" && this.prng.chance(this.options.randomTargetRate);
    if (target === 0 || random || !members.includes(target)) target = members[this.prng.nextInt(members.length)]!;
    inFlight.attempt++;
    inFlight.record.attempts++;
    const attempt = inFlight.attempt;
    const request: ClientRequest =
      inFlight.command !== undefined
        ? { kind: "add", attempt, command: inFlight.command }
        : {
            kind: "read",
            attempt,
            clientId: this.id,
            opId: inFlight.record.opId,
            key: inFlight.record.key,
            lease: inFlight.record.lease,
          };
    this.host.sendRequest(target, request, (response) => this.onResponse(response));
    this.host.schedule(this.options.attemptTimeoutMs, () => this.onTimeout(inFlight, attempt));
  }

  private onResponse(response: ClientResponse): void {
    const inFlight = this.current;
    if (inFlight === undefined || inFlight.record.opId !== response.opId) return; // late, already done
    if (response.kind === "ok") {
      // Any attempt's success completes the operation: all attempts carry the same op id.
      this.leaderHint = response.node;
      this.finish("ok", response);
      return;
    }
    if (response.attempt !== inFlight.attempt) return;
    this.leaderHint = response.leaderHint;
    this.retryLater(inFlight);
  }

  private onTimeout(inFlight: InFlight, attempt: number): void {
    if (this.current !== inFlight || inFlight.attempt !== attempt) return;
    // Unknown fate: the request or its reply may be lost, or the proposal may still commit.
    inFlight.record.maybeApplied = true;
    this.leaderHint = 0;
    this.retryLater(inFlight);
  }

  private retryLater(inFlight: InFlight): void {
    if (this.host.deadlinesApply() && this.host.nowMs() >= inFlight.deadlineMs) {
      const outcome = inFlight.record.kind === "add" && inFlight.record.maybeApplied ? "ambiguous" : "failed";
      this.finish(outcome, undefined);
      return;
    }
    const attempt = inFlight.attempt;
    this.host.schedule(1 + this.prng.nextFloat() * this.options.retryBackoffMsMax, () => {
      if (this.current === inFlight && inFlight.attempt === attempt) this.attempt();
    });
  }

  private finish(outcome: Outcome, response: ClientResponse | undefined): void {
    const record = this.current!.record;
    record.outcome = outcome;
    if (outcome === "ok" || outcome === "failed") {
      record.completedAtMs = this.host.nowMs();
      record.completedStep = this.host.step();
    }
    if (response !== undefined && response.kind === "ok") {
      record.value = response.value;
      record.servedBy = response.node;
      record.path = response.path;
    }
    this.host.record(
      `client ${this.id} ${outcome} ${record.opId}${record.value !== undefined ? ` -> ${record.value}` : ""}` +
        `${record.servedBy !== undefined ? ` from ${record.servedBy} (${record.path})` : ""}`,
    );
    this.current = undefined;
    this.host.schedule(this.prng.nextFloat() * this.options.thinkMsMax, () => this.next());
  }

  /** End of the run: whatever is still in flight becomes ambiguous (an add) or failed (a read). */
  abandon(): void {
    const inFlight = this.current;
    if (inFlight === undefined) return;
    inFlight.record.maybeApplied = true;
    const outcome = inFlight.record.kind === "add" ? "ambiguous" : "failed";
    inFlight.record.outcome = outcome;
    this.current = undefined;
  }
}
