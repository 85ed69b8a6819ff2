/**
 * The eventual-counter chaos checker (issue 21): judges the history of an eventual workload
 * (eventual-run.ts) once every node's buffer has drained.
 *
 * 1. Exactly once: per key, the value read (linearizably) after the drain must be the sum of the
 *    acknowledged deltas plus the deltas of SOME subset of the ambiguous requests, each at most
 *    once. Refused requests (a definite error) must not count. Deltas are positive, so the bounds
 *    are acknowledged <= value <= acknowledged + ambiguous, and the exact test is a subset sum
 *    (a request is all or nothing: its adds of one key form one item). Below is a lost add, above
 *    (or between reachable sums) a double count or a refused add that was buffered after all.
 * 2. Visibility (reported, never asserted): for probe adds, the milliseconds from the ack to the
 *    first linearizable read that showed them, split into quiet periods and fault windows.
 */
import { subsetSums, type FaultWindow } from "./checker.js";

export type EventualStatus = "ok" | "fail" | "ambiguous";

/** One EventualAdd request: a single `add(k, d, {mode: "eventual"})` or an `addEventual([...])` batch. */
export interface EventualOp {
  id: number;
  worker: number;
  /** The node the request was sent to first (its home node). */
  node: number;
  kind: "add" | "batch";
  adds: Array<{ key: string; delta: number }>;
  /** ok: acknowledged; fail: a definite refusal (nothing buffered); ambiguous: unknown outcome. */
  status: EventualStatus;
  /** Milliseconds since the run started. */
  invokedAt: number;
  completedAt?: number;
  /** The node that answered (ok only). */
  answeredBy?: number;
  error?: string;
  /** A probe add: its key has this worker's adds only, and its visibility is measured. */
  probe?: boolean;
}

export interface EventualKeyVerdict {
  key: string;
  final?: string;
  acknowledgedSum: string;
  ambiguousRequests: number;
  ambiguousSum: string;
  refusedSum: string;
  ok: boolean;
  problem?: string;
}

export interface EventualCheck {
  valid: boolean;
  counts: Record<EventualStatus, number>;
  /** Adds (not requests) by outcome. */
  addCounts: Record<EventualStatus, number>;
  keys: EventualKeyVerdict[];
  problems: string[];
}

/**
 * Checks the final values. `finals` maps each key to the value read after the drain (decimal
 * string), or undefined when the read failed (a problem: the key cannot be judged).
 */
export function checkEventualHistory(ops: readonly EventualOp[], finals: ReadonlyMap<string, string | undefined>): EventualCheck {
  const counts: Record<EventualStatus, number> = { ok: 0, fail: 0, ambiguous: 0 };
  const addCounts: Record<EventualStatus, number> = { ok: 0, fail: 0, ambiguous: 0 };
  const perKey = new Map<string, { ok: bigint; refused: bigint; ambiguous: number[] }>();
  for (const op of ops) {
    counts[op.status]++;
    addCounts[op.status] += op.adds.length;
    // One request's adds of one key are one item: the request is buffered whole or not at all.
    const byKey = new Map<string, number>();
    for (const { key, delta } of op.adds) {
      if (!Number.isSafeInteger(delta) || delta <= 0) throw new Error(`op ${op.id}: delta ${delta} of ${key} must be a positive integer`);
      byKey.set(key, (byKey.get(key) ?? 0) + delta);
    }
    for (const [key, delta] of byKey) {
      let entry = perKey.get(key);
      if (entry === undefined) perKey.set(key, (entry = { ok: 0n, refused: 0n, ambiguous: [] }));
      if (op.status === "ok") entry.ok += BigInt(delta);
      else if (op.status === "fail") entry.refused += BigInt(delta);
      else entry.ambiguous.push(delta);
    }
  }
  for (const key of finals.keys()) if (!perKey.has(key)) perKey.set(key, { ok: 0n, refused: 0n, ambiguous: [] });

  const problems: string[] = [];
  const keys: EventualKeyVerdict[] = [];
  for (const key of [...perKey.keys()].sort()) {
    const entry = perKey.get(key)!;
    const ambiguousSum = entry.ambiguous.reduce((a, b) => a + b, 0);
    const verdict: EventualKeyVerdict = {
      key,
      acknowledgedSum: entry.ok.toString(),
      ambiguousRequests: entry.ambiguous.length,
      ambiguousSum: String(ambiguousSum),
      refusedSum: entry.refused.toString(),
      ok: true,
    };
    const final = finals.get(key);
    verdict.final = final;
    const max = entry.ok + BigInt(ambiguousSum);
    const range = `expected ${entry.ok}..${max} (acknowledged ${entry.ok} + a subset of ${entry.ambiguous.length} ambiguous requests summing ${ambiguousSum}; refused ${entry.refused})`;
    if (final === undefined) {
      verdict.ok = false;
      verdict.problem = `${key}: no final value could be read; ${range}`;
    } else {
      const value = BigInt(final);
      if (value < entry.ok) {
        verdict.ok = false;
        verdict.problem = `${key}: LOST ${entry.ok - value}: value ${value}, ${range}`;
      } else if (value > max) {
        verdict.ok = false;
        verdict.problem = `${key}: COUNTED TWICE (or a refused add counted) ${value - max} too many: value ${value}, ${range}`;
      } else if (subsetSums(entry.ambiguous)[Number(value - entry.ok)] !== 1) {
        verdict.ok = false;
        verdict.problem = `${key}: value ${value} is in range but no subset of the ambiguous deltas [${entry.ambiguous.join(",")}] makes it: ${range}`;
      }
    }
    if (verdict.problem !== undefined) problems.push(verdict.problem);
    keys.push(verdict);
  }
  return { valid: problems.length === 0, counts, addCounts, keys, problems };
}

/** One probe add's visibility: ack at `ackAt`, first seen by a linearizable read at `visibleAt`. */
export interface VisibilitySample {
  key: string;
  node: number;
  ackAt: number;
  /** Undefined when no read showed it before the probe's polling deadline. */
  visibleAt?: number;
  /** Polls that failed (no answer within their deadline), and the last failure or value read short (diagnostics). */
  failedReads?: number;
  lastRead?: string;
}

export interface VisibilityStats {
  samples: number;
  /** Samples never seen within the polling deadline. */
  notSeen: number;
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  /** Share of the samples (unseen ones included) visible within 1 s of their ack. */
  within1s: number | null;
}

export interface VisibilityReport {
  all: VisibilityStats;
  /** Samples whose ack..visible span touched no fault window (nor its recovery tail). */
  quiet: VisibilityStats;
  /** The others. */
  faults: VisibilityStats;
  recoveryMs: number;
}

/** How long after a fault window ends a sample still counts as "during faults" (a restarted node replays and rejoins). */
export const VISIBILITY_RECOVERY_MS = 1000;

export function summarizeVisibility(
  samples: readonly VisibilitySample[],
  faults: readonly FaultWindow[],
  recoveryMs = VISIBILITY_RECOVERY_MS,
): VisibilityReport {
  const touchesFault = (sample: VisibilitySample): boolean => {
    const end = sample.visibleAt ?? Number.POSITIVE_INFINITY;
    return faults.some((fault) => sample.ackAt <= fault.endMs + recoveryMs && end >= fault.startMs);
  };
  const quiet = samples.filter((sample) => !touchesFault(sample));
  const during = samples.filter(touchesFault);
  return { all: visibilityStats(samples), quiet: visibilityStats(quiet), faults: visibilityStats(during), recoveryMs };
}

export function visibilityStats(samples: readonly VisibilitySample[]): VisibilityStats {
  const latencies = samples
    .filter((s) => s.visibleAt !== undefined)
    .map((s) => s.visibleAt! - s.ackAt)
    .sort((a, b) => a - b);
  const at = (q: number): number | null =>
    latencies.length === 0 ? null : round(latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)]!);
  return {
    samples: samples.length,
    notSeen: samples.length - latencies.length,
    p50Ms: at(0.5),
    p90Ms: at(0.9),
    p99Ms: at(0.99),
    maxMs: latencies.length === 0 ? null : round(latencies[latencies.length - 1]!),
    within1s: samples.length === 0 ? null : latencies.filter((ms) => ms <= 1000).length / samples.length,
  };
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

export function formatVisibility(name: string, stats: VisibilityStats): string {
  if (stats.samples === 0) return `${name}: no samples`;
  const pct = stats.within1s === null ? "-" : `${(stats.within1s * 100).toFixed(1)}%`;
  return `${name}: ${stats.samples} probes, p50 ${stats.p50Ms} ms, p90 ${stats.p90Ms} ms, p99 ${stats.p99Ms} ms, max ${stats.maxMs} ms, within 1 s ${pct}, never seen ${stats.notSeen}`;
}
