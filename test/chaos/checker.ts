/**
 * The chaos checker: judges a recorded history of counter operations.
 *
 * 1. Final values (Jepsen's counter checker, made exact): per key, the value read after healing
 *    must equal the sum of acknowledged adds plus the deltas of SOME subset of ambiguous adds, each
 *    at most once. Below the acknowledged sum is a lost update; no subset reaching it means a
 *    double count (or a lost update hidden by ambiguity). Deltas are small positive integers, so the
 *    reachable subset sums form a bitset bounded by the sum of ambiguous deltas.
 * 2. Linearizability of adds (with the value they returned) and LINEARIZABLE reads, per key
 *    (test/support/linearizability.ts). Ambiguous adds may take effect any time after invocation,
 *    or never. The final read is part of the history.
 * 3. STALE reads: the replica's appliedIndex must be at least the minIndex the read demanded, and
 *    the value at least what the worker had seen by that index (monotonic reads).
 * 4. Availability: share of operations that succeeded while a fault was active vs. outside.
 * 5. The error contract (contract workers, `contract: true`): each such add has a key of its own,
 *    so its final value says exactly whether it was applied. An add answered with a "not applied"
 *    code (NOT_LEADER above all) whose key reads 1 was applied after all: a violation, counted in
 *    `contract.definiteButApplied`, however the per-key sums come out.
 */
import { checkLinearizable, counterModel, type CounterInput, type CounterOutput, type Operation } from "../support/linearizability.js";

export type OpKind = "add" | "read" | "stale-read" | "final-read";
export type OpStatus = "ok" | "fail" | "ambiguous";

export interface HistoryOp {
  id: number;
  worker: number;
  key: string;
  kind: OpKind;
  /** add only. */
  delta?: number;
  status: OpStatus;
  /** add: the value after the add; reads: the value read. Decimal string (exact int64). */
  value?: string;
  /** stale reads: the minIndex demanded and the appliedIndex the reply reflects. */
  minIndex?: string;
  appliedIndex?: string;
  /** stale reads: the highest value this worker had seen for the key when it chose minIndex. */
  minValue?: string;
  /** Milliseconds since the run started (one monotonic clock for every worker). */
  invokedAt: number;
  /** Undefined for ambiguous operations. */
  completedAt?: number;
  error?: string;
  /** The error code of a failed or ambiguous operation, as the server or client named it. */
  errorCode?: string;
  /** An add by a contract worker: raw protocol, the documented error contract, a key of its own. */
  contract?: boolean;
}

export interface FaultWindow {
  name: string;
  startMs: number;
  endMs: number;
  detail?: string;
}

export interface KeyVerdict {
  key: string;
  final?: string;
  acknowledgedSum: string;
  ambiguousAdds: number;
  ambiguousSum: string;
  ok: boolean;
  problem?: string;
}

export interface CheckResult {
  valid: boolean | "unknown";
  opsChecked: number;
  counts: Record<OpStatus, number>;
  finalValues: KeyVerdict[];
  linearizability: { ok: boolean | "unknown"; message?: string; statesExplored: number };
  staleReads: { checked: number; violations: string[] };
  /** Contract workers' adds: answers by code, and adds answered "not applied" that were applied. */
  contract: { adds: number; answers: Record<string, number>; definiteButApplied: number; examples: string[] };
  availability: { duringFaults: number | null; outsideFaults: number | null; opsDuringFaults: number; opsOutsideFaults: number };
  problems: string[];
}

/** Bounds the subset-sum bitset; beyond it the final-value check says "unknown" for the key. */
const AMBIGUOUS_SUM_MAX = 1_000_000;
/** Default search budget per key; past it linearizability is "unknown" (`--check-states-max` raises it). */
export const LINEARIZABILITY_STATES_MAX = 2_000_000;

/** The set of values `sum(subset)` over subsets of `deltas` (each used at most once). */
export function subsetSums(deltas: readonly number[]): Uint8Array {
  let total = 0;
  for (const delta of deltas) {
    if (!Number.isSafeInteger(delta) || delta < 0) throw new Error(`subsetSums: delta ${delta} must be a non-negative integer`);
    total += delta;
  }
  if (total > AMBIGUOUS_SUM_MAX) throw new Error(`subsetSums: ambiguous sum ${total} exceeds ${AMBIGUOUS_SUM_MAX}`);
  const reachable = new Uint8Array(total + 1);
  reachable[0] = 1;
  let high = 0;
  for (const delta of deltas) {
    // Descending, so each delta is used at most once (0/1 knapsack).
    for (let s = high; s >= 0; s--) if (reachable[s] === 1) reachable[s + delta] = 1;
    high += delta;
  }
  return reachable;
}

export function checkHistory(
  history: readonly HistoryOp[],
  faults: readonly FaultWindow[] = [],
  linearizabilityStatesMax = LINEARIZABILITY_STATES_MAX,
): CheckResult {
  const problems: string[] = [];
  const counts: Record<OpStatus, number> = { ok: 0, fail: 0, ambiguous: 0 };
  for (const op of history) counts[op.status]++;

  // 1. Final values.
  const byKey = new Map<string, HistoryOp[]>();
  for (const op of history) {
    const ops = byKey.get(op.key);
    if (ops === undefined) byKey.set(op.key, [op]);
    else ops.push(op);
  }
  const keys = [...byKey.keys()].sort();
  const finalValues: KeyVerdict[] = [];
  let finalUnknown = false;
  for (const key of keys) {
    const ops = byKey.get(key)!;
    let acknowledged = 0n;
    const ambiguous: number[] = [];
    for (const op of ops) {
      if (op.kind !== "add") continue;
      if (op.status === "ok") acknowledged += BigInt(op.delta!);
      else if (op.status === "ambiguous") ambiguous.push(op.delta!);
    }
    const ambiguousSum = ambiguous.reduce((a, b) => a + b, 0);
    const finals = ops.filter((op) => op.kind === "final-read" && op.status === "ok");
    const verdict: KeyVerdict = {
      key,
      acknowledgedSum: acknowledged.toString(),
      ambiguousAdds: ambiguous.length,
      ambiguousSum: String(ambiguousSum),
      ok: true,
    };
    if (finals.length === 0) {
      verdict.ok = false;
      verdict.problem = "no final read succeeded";
      finalUnknown = true;
    } else {
      const final = BigInt(finals[finals.length - 1]!.value!);
      verdict.final = final.toString();
      const extra = final - acknowledged;
      if (extra < 0n) {
        verdict.ok = false;
        verdict.problem = `lost update: final ${final} < acknowledged sum ${acknowledged}`;
      } else if (extra > BigInt(ambiguousSum)) {
        verdict.ok = false;
        verdict.problem = `double count: final ${final} exceeds acknowledged ${acknowledged} + every ambiguous add (${ambiguousSum})`;
      } else if (subsetSums(ambiguous)[Number(extra)] !== 1) {
        verdict.ok = false;
        verdict.problem = `final ${final} - acknowledged ${acknowledged} = ${extra} is no sum of a subset of the ambiguous deltas [${ambiguous.join(",")}]`;
      }
    }
    if (!verdict.ok && verdict.problem !== "no final read succeeded") problems.push(`key ${key}: ${verdict.problem}`);
    finalValues.push(verdict);
  }
  if (finalUnknown) problems.push("some keys have no successful final read");

  // 2. Linearizability of adds and linearizable reads, one partition per key.
  const linearOps: Operation<CounterInput, CounterOutput>[] = [];
  for (const op of history) {
    if (op.status === "fail") continue;
    if (op.kind === "stale-read") continue;
    if ((op.kind === "read" || op.kind === "final-read") && op.status !== "ok") continue;
    const input: CounterInput = op.kind === "add" ? { kind: "add", delta: BigInt(op.delta!) } : { kind: "read" };
    linearOps.push({
      id: op.id,
      clientId: op.worker,
      partition: op.key,
      input,
      output: op.status === "ok" ? BigInt(op.value!) : undefined,
      invokedAt: op.invokedAt,
      completedAt: op.status === "ok" ? op.completedAt : undefined,
    });
  }
  const linear = checkLinearizable(linearOps, counterModel, { statesPerPartitionMax: linearizabilityStatesMax });
  const linearizability =
    linear.ok === true
      ? { ok: true as const, statesExplored: linear.statesExplored }
      : { ok: linear.ok, message: linear.message, statesExplored: linear.statesExplored };
  if (linear.ok === false) problems.push(`not linearizable: ${linear.message}`);

  // 3. STALE reads honour their minIndex.
  const staleViolations: string[] = [];
  let staleChecked = 0;
  for (const op of history) {
    if (op.kind !== "stale-read" || op.status !== "ok") continue;
    staleChecked++;
    if (op.minIndex !== undefined && op.appliedIndex !== undefined && BigInt(op.appliedIndex) < BigInt(op.minIndex)) {
      staleViolations.push(`op ${op.id} key ${op.key}: appliedIndex ${op.appliedIndex} < minIndex ${op.minIndex}`);
    }
    // Counters only grow (deltas are positive): a replica at or past minIndex has applied the
    // write or read that produced minValue, so it cannot show less.
    if (op.minValue !== undefined && op.value !== undefined && BigInt(op.value) < BigInt(op.minValue)) {
      staleViolations.push(`op ${op.id} key ${op.key}: value ${op.value} < ${op.minValue} already seen at index <= ${op.minIndex}`);
    }
  }
  for (const violation of staleViolations) problems.push(`stale read violation: ${violation}`);

  // 4. Availability, by invocation time.
  let duringOk = 0;
  let during = 0;
  let outsideOk = 0;
  let outside = 0;
  for (const op of history) {
    if (op.kind === "final-read") continue;
    const inFault = faults.some((f) => op.invokedAt >= f.startMs && op.invokedAt < f.endMs);
    if (inFault) {
      during++;
      if (op.status === "ok") duringOk++;
    } else {
      outside++;
      if (op.status === "ok") outsideOk++;
    }
  }

  // 5. The error contract, add by add.
  const contract = { adds: 0, answers: {} as Record<string, number>, definiteButApplied: 0, examples: [] as string[] };
  for (const op of history) {
    if (!op.contract || op.kind !== "add") continue;
    contract.adds++;
    const answer = op.status === "ok" ? "OK" : (op.errorCode ?? "unknown");
    contract.answers[answer] = (contract.answers[answer] ?? 0) + 1;
    if (op.status !== "fail") continue;
    const final = byKey.get(op.key)!.find((other) => other.kind === "final-read" && other.status === "ok");
    if (final !== undefined && BigInt(final.value!) !== 0n) {
      contract.definiteButApplied++;
      if (contract.examples.length < 10)
        contract.examples.push(`op ${op.id} key ${op.key}: answered ${answer} (${op.error ?? ""}) but applied`);
    }
  }
  if (contract.definiteButApplied > 0)
    problems.push(`${contract.definiteButApplied} contract adds were answered "not applied" but applied: ${contract.examples.join("; ")}`);

  const definiteFailure = problems.length > (finalUnknown ? 1 : 0) || linear.ok === false;
  const valid: boolean | "unknown" = definiteFailure ? false : finalUnknown || linear.ok === "unknown" ? "unknown" : true;
  return {
    valid,
    opsChecked: history.length,
    counts,
    finalValues,
    linearizability,
    staleReads: { checked: staleChecked, violations: staleViolations },
    contract,
    availability: {
      duringFaults: during === 0 ? null : duringOk / during,
      outsideFaults: outside === 0 ? null : outsideOk / outside,
      opsDuringFaults: during,
      opsOutsideFaults: outside,
    },
    problems,
  };
}
