/**
 * Where an add's latency goes (issue #18), off unless TALLY_TRACE_ADDS is set. With
 * TALLY_TRACE_ADDS=N the leader times 1 in N writes through its stages, and the driver loop times
 * its own phases; every TALLY_TRACE_EVERY_MS (5,000) one line per node goes to stderr (or is
 * appended to TALLY_TRACE_FILE) with p50/p99/max and count per stage, in microseconds, and the
 * samples start again. When off, every hook is one boolean test.
 *
 * Per sampled write, at its leader (all from performance.now()):
 *   queued       submitCommand() until proposeQueued() put it in an entry
 *   leaderWrite  proposed until this node's own batch holding the entry is written
 *   firstAck     proposed until the first follower's AppResp covering it is received (the round
 *                trip: App sent, follower stepped, fsynced, answered)
 *   ackToApply   that AppResp received until the entry is applied here (commit learned)
 *   applyToAnswer applied until the caller's promise is resolved
 *   total        submitCommand() until resolved
 * Per follower group and iteration: followerAck, an App with entries received until the AppResp
 * leaves. Per group: applyHeld, how long a background job (a checkpoint capture, a table growth)
 * held its apply (RawNode.holdApply; writes to it wait meanwhile). Per loop iteration: wake
 * (wake() until the iteration starts), iteration (its synchronous work). Per store write: write /
 * syncWrite (handed to the store until durable, queueing included). Per GC pause, by its kind
 * (perf_hooks): gcMinor (scavenge), gcMajor (mark-sweep-compact), gcIncremental (an incremental
 * marking step), gcWeak.
 *
 * Per sampled eventual add (the same 1 in N of EventualAdd requests, at the node that buffers it):
 *   evHandler    the handler started until its record was queued for the buffer file (validation)
 *   evGroupWait  queued until the group holding it started its write (the previous group's sync)
 *   evSync       that group's synchronized write
 *   evAnswer     durable until the handler returned its answer (the fold, then promise hops)
 *   evTotal      the handler started until it returned
 * Per flusher tick that looked at the pending keys: flushTick, the loop time it took.
 *
 * With the trace on, the ops port's /metrics also has them as the histogram tally_stage_seconds{stage}.
 *
 *   TALLY_TRACE_ADDS=16 TALLY_TRACE_FILE=/tmp/trace.log npx tsx bench/counter-api.ts --only latency
 */
import { appendFileSync } from "node:fs";
import { PerformanceObserver } from "node:perf_hooks";

export type TraceStage =
  | "queued"
  | "leaderWrite"
  | "firstAck"
  | "ackToApply"
  | "applyToAnswer"
  | "total"
  | "followerAck"
  | "wake"
  | "iteration"
  | "write"
  | "syncWrite"
  | "applyHeld"
  | "gcMinor"
  | "gcMajor"
  | "gcIncremental"
  | "gcWeak"
  | "evHandler"
  | "evGroupWait"
  | "evSync"
  | "evAnswer"
  | "evTotal"
  | "flushTick";

/** The timestamps of one sampled eventual add (ms, performance.now(); 0: not reached). */
export interface EventualTrace {
  startedAt: number;
  queuedAt: number;
  writeAt: number;
  durableAt: number;
}

/** The timestamps of one sampled write (ms, performance.now()). */
export interface WriteTrace {
  queuedAt: number;
  proposedAt: number;
  writtenAt: number;
  ackAt: number;
  appliedAt: number;
}

const SAMPLES_MAX = 200_000;

export class StageTrace {
  readonly enabled: boolean;
  private readonly sampleEvery: number;
  private counter = 0;
  private samples = new Map<TraceStage, number[]>();
  /** Sampled writes by group and entry index, from their proposal until their entry is applied. */
  private readonly open = new Map<number, Map<number, WriteTrace[]>>();
  /** Follower groups: when the oldest unanswered App with entries arrived. */
  private readonly appArrived = new Map<number, number>();
  /** Groups whose apply a background job holds (RawNode.holdApply), since when. */
  private readonly heldSince = new Map<number, number>();
  /** When wake() was first called since the last iteration started. */
  private wokenAt = -1;
  private timer: NodeJS.Timeout | undefined;
  private gcObserver: PerformanceObserver | undefined;
  private readonly observers: Array<(stage: TraceStage, seconds: number) => void> = [];

  constructor(
    sampleEvery: number,
    private readonly everyMs = 5000,
    private readonly file?: string,
  ) {
    this.enabled = sampleEvery > 0;
    this.sampleEvery = Math.max(1, Math.floor(sampleEvery));
  }

  /** TALLY_TRACE_ADDS (unset or 0: off), TALLY_TRACE_EVERY_MS, TALLY_TRACE_FILE; a bad value throws, naming it. */
  static fromEnv(env: NodeJS.ProcessEnv): StageTrace {
    const count = (name: string, fallback: number): number => {
      const raw = env[name];
      if (raw === undefined || raw === "") return fallback;
      const value = Number(raw);
      if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
      return value;
    };
    const every = count("TALLY_TRACE_ADDS", 0);
    const interval = count("TALLY_TRACE_EVERY_MS", 5000);
    return new StageTrace(every, interval > 0 ? interval : 5000, env.TALLY_TRACE_FILE || undefined);
  }

  /** Starts the periodic report and the GC observer (no-op when off). */
  start(label: string): void {
    if (!this.enabled || this.timer !== undefined) return;
    this.gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
        this.record(kind === 1 ? "gcMinor" : kind === 2 ? "gcMajor" : kind === 4 ? "gcIncremental" : "gcWeak", entry.duration);
      }
    });
    this.gcObserver.observe({ entryTypes: ["gc"] });
    this.timer = setInterval(() => this.report(label), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.gcObserver?.disconnect();
    this.gcObserver = undefined;
  }

  /** True for the write to sample (1 in N). */
  sample(): boolean {
    return this.enabled && ++this.counter % this.sampleEvery === 0;
  }

  /** Also hands every sample to `observer` (the node's tally_stage_seconds histogram); returns how to stop. */
  observe(observer: (stage: TraceStage, seconds: number) => void): () => void {
    this.observers.push(observer);
    return () => {
      const at = this.observers.indexOf(observer);
      if (at >= 0) this.observers.splice(at, 1);
    };
  }

  record(stage: TraceStage, ms: number): void {
    for (const observer of this.observers) observer(stage, ms / 1000);
    let list = this.samples.get(stage);
    if (list === undefined) this.samples.set(stage, (list = []));
    if (list.length < SAMPLES_MAX) list.push(ms * 1000);
  }

  /** A sampled eventual add was answered: its stages. */
  finishEventual(trace: EventualTrace, answeredAt: number): void {
    if (trace.durableAt === 0) return; // a deduplicated retry: nothing was written
    this.record("evHandler", trace.queuedAt - trace.startedAt);
    this.record("evGroupWait", trace.writeAt - trace.queuedAt);
    this.record("evSync", trace.durableAt - trace.writeAt);
    this.record("evAnswer", answeredAt - trace.durableAt);
    this.record("evTotal", answeredAt - trace.startedAt);
  }

  /** A sampled write was answered: its stages. */
  finish(trace: WriteTrace, answeredAt: number): void {
    this.record("queued", trace.proposedAt - trace.queuedAt);
    if (trace.writtenAt > 0) this.record("leaderWrite", trace.writtenAt - trace.proposedAt);
    if (trace.ackAt > 0) {
      this.record("firstAck", trace.ackAt - trace.proposedAt);
      this.record("ackToApply", trace.appliedAt - trace.ackAt);
    }
    this.record("applyToAnswer", answeredAt - trace.appliedAt);
    this.record("total", answeredAt - trace.queuedAt);
  }

  /** The sampled writes of `traces` went into the entry at `index` of group `groupId`. */
  proposed(groupId: number, index: number, traces: WriteTrace[], now: number): void {
    for (const trace of traces) trace.proposedAt = now;
    let group = this.open.get(groupId);
    if (group === undefined) this.open.set(groupId, (group = new Map()));
    if (group.size >= 1000) group.clear(); // entries never applied here (leadership lost)
    group.set(index, traces);
  }

  /** This node's batch holding the group's entries up to `lastIndex` is written. */
  written(groupId: number, lastIndex: number, now: number): void {
    const group = this.open.get(groupId);
    if (group === undefined) return;
    for (const [index, traces] of group) if (index <= lastIndex) for (const t of traces) if (t.writtenAt === 0) t.writtenAt = now;
  }

  /** A follower's AppResp up to `index` was received for the group. */
  acked(groupId: number, index: number, now: number): void {
    const group = this.open.get(groupId);
    if (group === undefined) return;
    for (const [at, traces] of group) if (at <= index) for (const t of traces) if (t.ackAt === 0) t.ackAt = now;
  }

  /** The entry at `index` was applied (or dropped): its sampled writes leave the open set. */
  applied(groupId: number, index: number, now: number): void {
    const group = this.open.get(groupId);
    const traces = group?.get(index);
    if (traces === undefined) return;
    group!.delete(index);
    for (const trace of traces) trace.appliedAt = now;
  }

  wake(): void {
    if (this.wokenAt < 0) this.wokenAt = performance.now();
  }

  /** An iteration starts: the wait since the first wake(). */
  iterationStarts(now: number): void {
    if (this.wokenAt >= 0) this.record("wake", now - this.wokenAt);
    this.wokenAt = -1;
  }

  /** The loop saw the group's apply held (a checkpoint capture, a table growth) or not: applyHeld is how long it stayed held. */
  applyHold(groupId: number, held: boolean, now: number): void {
    const since = this.heldSince.get(groupId);
    if (held && since === undefined) this.heldSince.set(groupId, now);
    else if (!held && since !== undefined) {
      this.heldSince.delete(groupId);
      this.record("applyHeld", now - since);
    }
  }

  appReceived(groupId: number, now: number): void {
    if (!this.appArrived.has(groupId)) this.appArrived.set(groupId, now);
  }

  appAnswered(groupId: number, now: number): void {
    const at = this.appArrived.get(groupId);
    if (at === undefined) return;
    this.appArrived.delete(groupId);
    this.record("followerAck", now - at);
  }

  /** One line: stage p50/p99/max µs (count), then the samples start again. */
  summary(): string {
    const parts: string[] = [];
    for (const [stage, values] of this.samples) {
      if (values.length === 0) continue;
      values.sort((a, b) => a - b);
      const at = (q: number) => Math.round(values[Math.min(values.length - 1, Math.floor(q * values.length))]!);
      parts.push(`${stage}=${at(0.5)}/${at(0.99)}/${Math.round(values[values.length - 1]!)}(${values.length})`);
    }
    this.samples = new Map();
    return parts.join(" ");
  }

  private report(label: string): void {
    const line = `stage-trace ${label} ${new Date().toISOString()} p50/p99/max µs: ${this.summary()}\n`;
    if (this.file === undefined) process.stderr.write(line);
    else appendFileSync(this.file, line);
  }
}

/** The process's trace (one tallyd per process; tests that run several nodes in one process share it). */
export const stageTrace = StageTrace.fromEnv(process.env);
