/**
 * Linearizability checking for histories of concurrent operations.
 *
 * The search is Wing & Gong's (1993): walk the history's call/return events in time order, try to
 * linearize any pending call whose model step accepts its observed output, and backtrack when a
 * return is reached whose call could not be placed. Lowe ("Testing for linearizability", 2017)
 * makes it practical: a configuration is (set of linearized operations, model state), and a
 * configuration that was already explored is never explored again. Histories are split into
 * independent partitions first (Herlihy & Wing's locality; Horn & Kroening's P-compositionality),
 * e.g. one partition per counter key.
 *
 * Ambiguous operations (a client timed out and never learned the outcome) have no completion:
 * they may take effect at any time after their invocation, or never. A history is linearizable
 * once every completed operation is linearized; ambiguous ones left over simply never happened.
 * Cost: the problem is NP-complete, and the search is exponential in the number of ambiguous
 * operations pending at once (which subset took effect is a subset-sum question for counters).
 * Completed histories of thousands of operations per key check in well under a second; callers
 * should resolve ambiguity where they can (retry with the same op id until the outcome is known,
 * or drop ambiguous operations they know never took effect). A budget turns a search that runs
 * away into ok: "unknown" instead of a hang.
 *
 * Time: any clock that orders events across all clients. Operation a precedes b iff
 * a.completedAt < b.invokedAt; equal timestamps count as concurrent, so coarse clocks can only
 * hide a violation, never invent one.
 *
 * Used by the deterministic simulator (test/sim) and the chaos harness (test/chaos).
 */
import { assert } from "../../src/util/assert.js";
import { createPrng } from "../../src/util/prng.js";

export interface Operation<Input, Output> {
  /** Unique within the history; only used in reports. */
  id: string | number;
  clientId?: string | number;
  /** Operations in different partitions are independent (one counter key each); checked separately. */
  partition?: string;
  input: Input;
  /** The observed result; undefined when unknown (ambiguous operations always). */
  output?: Output;
  invokedAt: number;
  /** Undefined when ambiguous: the operation may take effect any time after invokedAt, or never. */
  completedAt?: number;
}

export interface Model<State, Input, Output> {
  init(): State;
  /**
   * The state after the operation, or undefined if the observed output is impossible in `state`.
   * `output` undefined means "any output is acceptable" (ambiguous operation).
   * Must not mutate `state`.
   */
  step(state: State, input: Input, output: Output | undefined): State | undefined;
  /** Memoization key: two states with equal keys must behave identically. */
  key(state: State): string | number | bigint;
  /** Optional one-line rendering of an operation for reports, e.g. "add(3) -> 7". */
  describe?(input: Input, output: Output | undefined): string;
  /** Optional rendering of a state for reports; String(key(state)) otherwise. */
  describeState?(state: State): string;
}

export interface CheckOptions {
  /** Budget of configurations explored per partition before giving up with ok: "unknown". */
  statesPerPartitionMax?: number;
  /** Shrink a failing history to a small counterexample (default true). */
  minimize?: boolean;
  /** Budget of searches the minimizer may run (default 200). */
  minimizeChecksMax?: number;
}

export type LinearizabilityResult<Input, Output> =
  | {
      ok: true;
      partitionsChecked: number;
      statesExplored: number;
    }
  | {
      ok: false;
      partition: string;
      /** The operation whose completion made the history non-linearizable (the shortest failing prefix ends with it). */
      failingOperation: Operation<Input, Output>;
      /**
       * Every model state (rendered by describeState, else String(key)) in which some valid
       * linearization of the other operations would let `failingOperation` take effect. Its
       * output fits none of them. Empty when its window admits no state at all.
       */
      statesBeforeFailure: string[];
      /**
       * A sub-history that still fails the same way: not linearizable, linearizable without
       * `failingOperation`, and leaving `statesBeforeFailure` unchanged, so the operations that
       * explain those states are kept and irrelevant ones dropped. Greedy and budgeted
       * (CheckOptions.minimizeChecksMax): small, not guaranteed smallest.
       */
      minimalCounterexample: Operation<Input, Output>[];
      message: string;
      statesExplored: number;
    }
  | {
      ok: "unknown";
      partition: string;
      message: string;
      statesExplored: number;
    };

const DEFAULT_STATES_PER_PARTITION_MAX = 1_000_000;
const DEFAULT_MINIMIZE_CHECKS_MAX = 200;
const REPORT_OPERATIONS_MAX = 40;
const REPORT_STATES_MAX = 20;

/** Checks `history` against `model`. Operations are not modified. */
export function checkLinearizable<State, Input, Output>(
  history: readonly Operation<Input, Output>[],
  model: Model<State, Input, Output>,
  options: CheckOptions = {},
): LinearizabilityResult<Input, Output> {
  const statesMax = options.statesPerPartitionMax ?? DEFAULT_STATES_PER_PARTITION_MAX;
  assert(statesMax > 0, "statesPerPartitionMax must be positive");
  for (const op of history) validateOperation(op);

  const partitions = new Map<string, Operation<Input, Output>[]>();
  for (const op of history) {
    const name = op.partition ?? "";
    let list = partitions.get(name);
    if (list === undefined) partitions.set(name, (list = []));
    list.push(op);
  }
  // Deterministic order, so reports do not depend on insertion order of the caller's map.
  const names = [...partitions.keys()].sort();
  let statesExplored = 0;
  let inconclusive: { partition: string; message: string } | undefined;
  for (const name of names) {
    const ops = partitions.get(name)!;
    const outcome = searchPartition(ops, model, statesMax);
    statesExplored += outcome.statesExplored;
    if (outcome.verdict === "unknown") {
      // Keep going: a definite violation in another partition is worth more than "unknown".
      inconclusive ??= {
        partition: name,
        message: `partition ${JSON.stringify(name)}: gave up after ${outcome.statesExplored} configurations (${ops.length} operations)`,
      };
      continue;
    }
    if (outcome.verdict === "violation") {
      const shrunk = shrinkCounterexample(ops, model, statesMax, options);
      const shown = [...shrunk.ops].sort((x, y) => x.invokedAt - y.invokedAt);
      const omitted = Math.max(0, shown.length - REPORT_OPERATIONS_MAX);
      const lines = [
        `partition ${JSON.stringify(name)}: not linearizable (${ops.length} operations)`,
        `failing operation: ${describeOperation(model, shrunk.failing)}`,
        `states it could have seen: ${shrunk.states.length === 0 ? "none" : shrunk.states.join(", ")}`,
        `counterexample (${shrunk.ops.length} operations${omitted > 0 ? `, first ${omitted} not shown` : ""}):`,
        formatHistory(shown.slice(omitted), model),
      ];
      return {
        ok: false,
        partition: name,
        failingOperation: shrunk.failing,
        statesBeforeFailure: shrunk.states,
        minimalCounterexample: shrunk.ops,
        message: lines.join("\n"),
        statesExplored,
      };
    }
  }
  if (inconclusive !== undefined) return { ok: "unknown", ...inconclusive, statesExplored };
  return { ok: true, partitionsChecked: names.length, statesExplored };
}

function validateOperation<Input, Output>(op: Operation<Input, Output>): void {
  assert(Number.isFinite(op.invokedAt), `operation ${op.id}: invokedAt must be finite`);
  if (op.completedAt !== undefined) {
    assert(Number.isFinite(op.completedAt), `operation ${op.id}: completedAt must be finite`);
    assert(op.completedAt >= op.invokedAt, `operation ${op.id}: completes before it is invoked`);
  } else {
    assert(op.output === undefined, `operation ${op.id}: an ambiguous operation cannot have an output`);
  }
}

// ---------------------------------------------------------------------------------------------
// The search (one partition).

type SearchOutcome<Input, Output> =
  | { verdict: "linearizable"; statesExplored: number }
  | { verdict: "unknown"; statesExplored: number }
  | {
      verdict: "violation";
      statesExplored: number;
      /** Most completed operations linearized on any path: how far the search got. */
      deepestLinearized: number;
      /** The operation whose return stopped the deepest path. */
      stuckAt: Operation<Input, Output>;
      /**
       * With a watched operation: the rendered states of every configuration in which it could
       * have been linearized next (complete, since a violation means the search was exhaustive).
       */
      watchedStates: string[];
    };

const NIL = -1;

function searchPartition<State, Input, Output>(
  ops: readonly Operation<Input, Output>[],
  model: Model<State, Input, Output>,
  statesMax: number,
  watched?: Operation<Input, Output>,
): SearchOutcome<Input, Output> {
  const opCount = ops.length;
  if (opCount === 0) return { verdict: "linearizable", statesExplored: 0 };

  // Events: entry e < opCount is the call of ops[e]; entry opCount + e is its return (if any).
  // Sorted by time; at equal times calls come first, which makes equal timestamps concurrent.
  const eventOrder: number[] = [];
  for (let i = 0; i < opCount; i++) {
    eventOrder.push(i);
    if (ops[i]!.completedAt !== undefined) eventOrder.push(opCount + i);
  }
  const eventTime = (entry: number): number => (entry < opCount ? ops[entry]!.invokedAt : ops[entry - opCount]!.completedAt!);
  eventOrder.sort((a, b) => {
    const dt = eventTime(a) - eventTime(b);
    if (dt !== 0) return dt;
    const callA = a < opCount ? 0 : 1;
    const callB = b < opCount ? 0 : 1;
    if (callA !== callB) return callA - callB;
    return a - b;
  });

  // Doubly linked list over entries (dancing links), head sentinel at index 2 * opCount.
  const head = 2 * opCount;
  const next = new Int32Array(2 * opCount + 1).fill(NIL);
  const prev = new Int32Array(2 * opCount + 1).fill(NIL);
  let last = head;
  for (const entry of eventOrder) {
    next[last] = entry;
    prev[entry] = last;
    last = entry;
  }
  const hasReturn = (call: number): boolean => ops[call]!.completedAt !== undefined;
  const unlink = (entry: number): void => {
    next[prev[entry]!] = next[entry]!;
    if (next[entry]! !== NIL) prev[next[entry]!] = prev[entry]!;
  };
  const relink = (entry: number): void => {
    next[prev[entry]!] = entry;
    if (next[entry]! !== NIL) prev[next[entry]!] = entry;
  };
  // Removing a call and its return, and restoring them in reverse order, keeps the list exact.
  const lift = (call: number): void => {
    unlink(call);
    if (hasReturn(call)) unlink(opCount + call);
  };
  const unlift = (call: number): void => {
    if (hasReturn(call)) relink(opCount + call);
    relink(call);
  };

  // The operations that may be linearized next: every pending call before the first pending
  // return (an operation whose return comes first must precede them all). Completed operations
  // are tried first, in time order; ambiguous ones last and newest first. The order only steers
  // the search: an ambiguous operation that never took effect stays pending forever, and trying
  // old ones first would enumerate subsets of them before the recent one a read actually needs.
  const candidatesNow = (): { calls: number[]; firstReturn: number } => {
    const completed: number[] = [];
    const ambiguous: number[] = [];
    let entry = next[head]!;
    while (entry !== NIL && entry < opCount) {
      (hasReturn(entry) ? completed : ambiguous).push(entry);
      entry = next[entry]!;
    }
    for (let i = ambiguous.length - 1; i >= 0; i--) completed.push(ambiguous[i]!);
    return { calls: completed, firstReturn: entry === NIL ? NIL : entry - opCount };
  };

  // Lowe's memo: configurations (linearized set, model state) already explored. The set is
  // identified by a 96-bit Zobrist hash (three independent 32-bit lanes updated by XOR) rather
  // than stored: with a million configurations the chance of any collision is below 1e-16, and
  // storing thousands-of-bits sets per configuration would cost hundreds of megabytes.
  const zobristPrng = createPrng(0x5eed_11ea);
  const zobrist = new Uint32Array(3 * opCount);
  for (let i = 0; i < zobrist.length; i++) zobrist[i] = zobristPrng.nextU32();
  let hashA = 0;
  let hashB = 0;
  let hashC = 0;
  const toggle = (call: number): void => {
    hashA = (hashA ^ zobrist[3 * call]!) >>> 0;
    hashB = (hashB ^ zobrist[3 * call + 1]!) >>> 0;
    hashC = (hashC ^ zobrist[3 * call + 2]!) >>> 0;
  };
  const explored = new ConfigurationSet();
  const stateIds = new Map<string | number | bigint, number>();
  const rememberIfNew = (stateKey: string | number | bigint): boolean => {
    let stateId = stateIds.get(stateKey);
    if (stateId === undefined) stateIds.set(stateKey, (stateId = stateIds.size));
    return explored.add(hashA, hashB, hashC, stateId);
  };

  let remainingReturns = 0;
  for (let i = 0; i < opCount; i++) if (hasReturn(i)) remainingReturns++;

  // One frame per configuration on the current path. Frame 0 is the empty linearization.
  interface Frame {
    /** The call linearized to reach this configuration (NIL for the root). */
    via: number;
    /** The model state before `via` took effect. */
    stateBefore: State;
    calls: number[];
    tried: number;
    firstReturn: number;
  }
  const watchedCall = watched === undefined ? NIL : ops.indexOf(watched);
  const watchedStates = new Set<string>();
  const watch = (calls: number[], state: State): void => {
    if (watchedCall !== NIL && calls.includes(watchedCall)) {
      watchedStates.add(model.describeState ? model.describeState(state) : String(model.key(state)));
    }
  };
  let state = model.init();
  const root = candidatesNow();
  watch(root.calls, state);
  const stack: Frame[] = [{ via: NIL, stateBefore: state, calls: root.calls, tried: 0, firstReturn: root.firstReturn }];
  let statesExplored = 0;
  let linearizedCompleted = 0;
  let deepest = -1;
  let stuckAt = NIL;

  while (remainingReturns > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.tried < frame.calls.length) {
      const call = frame.calls[frame.tried++]!;
      const op = ops[call]!;
      const nextState = model.step(state, op.input, op.output);
      if (nextState === undefined) continue;
      toggle(call);
      if (!rememberIfNew(model.key(nextState))) {
        toggle(call);
        continue;
      }
      statesExplored++;
      if (statesExplored > statesMax) return { verdict: "unknown", statesExplored };
      lift(call);
      if (hasReturn(call)) {
        remainingReturns--;
        linearizedCompleted++;
      }
      const stateBefore = state;
      state = nextState;
      const candidates = candidatesNow();
      watch(candidates.calls, state);
      stack.push({ via: call, stateBefore, calls: candidates.calls, tried: 0, firstReturn: candidates.firstReturn });
      continue;
    }
    // Every candidate failed: a dead end. Remember how far the deepest path got, for the report.
    // Invariant: remainingReturns > 0, so some return is pending and blocks this configuration.
    assert(frame.firstReturn !== NIL, "dead end without a pending return");
    if (linearizedCompleted > deepest) {
      deepest = linearizedCompleted;
      stuckAt = frame.firstReturn;
    }
    stack.pop();
    if (frame.via === NIL) {
      assert(stack.length === 0, "the root frame is the last one");
      return {
        verdict: "violation",
        statesExplored,
        deepestLinearized: deepest,
        stuckAt: ops[stuckAt]!,
        watchedStates: [...watchedStates].sort(),
      };
    }
    state = frame.stateBefore;
    toggle(frame.via);
    unlift(frame.via);
    if (hasReturn(frame.via)) {
      remainingReturns++;
      linearizedCompleted--;
    }
  }
  return { verdict: "linearizable", statesExplored };
}

/**
 * Open-addressing hash set of (96-bit set hash, state id) tuples in typed arrays: the memo is the
 * search's hot path, and string keys in a Set cost several times more per configuration.
 */
class ConfigurationSet {
  private slots = new Uint32Array(4 * 1024);
  private used = new Uint8Array(1024);
  private count = 0;

  /** Adds the tuple; false if it was already present. */
  add(a: number, b: number, c: number, stateId: number): boolean {
    if (2 * (this.count + 1) > this.used.length) this.grow();
    const inserted = this.insert(a, b, c, stateId);
    if (inserted) this.count++;
    return inserted;
  }

  private insert(a: number, b: number, c: number, stateId: number): boolean {
    const mask = this.used.length - 1;
    let slot = (Math.imul(a ^ Math.imul(stateId, 0x9e3779b1), 0x85ebca6b) >>> 0) & mask;
    for (;;) {
      if (this.used[slot] === 0) {
        this.used[slot] = 1;
        const base = 4 * slot;
        this.slots[base] = a;
        this.slots[base + 1] = b;
        this.slots[base + 2] = c;
        this.slots[base + 3] = stateId;
        return true;
      }
      const base = 4 * slot;
      if (this.slots[base] === a && this.slots[base + 1] === b && this.slots[base + 2] === c && this.slots[base + 3] === stateId) {
        return false;
      }
      slot = (slot + 1) & mask;
    }
  }

  private grow(): void {
    const oldSlots = this.slots;
    const oldUsed = this.used;
    this.slots = new Uint32Array(oldSlots.length * 2);
    this.used = new Uint8Array(oldUsed.length * 2);
    for (let slot = 0; slot < oldUsed.length; slot++) {
      if (oldUsed[slot] === 0) continue;
      const base = 4 * slot;
      this.insert(oldSlots[base]!, oldSlots[base + 1]!, oldSlots[base + 2]!, oldSlots[base + 3]!);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Counterexample shrinking.

function shrinkCounterexample<State, Input, Output>(
  ops: readonly Operation<Input, Output>[],
  model: Model<State, Input, Output>,
  statesMax: number,
  options: CheckOptions,
): { failing: Operation<Input, Output>; states: string[]; ops: Operation<Input, Output>[] } {
  let checksLeft = options.minimizeChecksMax ?? DEFAULT_MINIMIZE_CHECKS_MAX;
  // "Violates" is conservative: a search that runs out of budget does not count as a violation.
  const violates = (candidate: readonly Operation<Input, Output>[]): boolean => {
    checksLeft--;
    return searchPartition(candidate, model, statesMax).verdict === "violation";
  };
  const linearizable = (candidate: readonly Operation<Input, Output>[]): boolean => {
    checksLeft--;
    return searchPartition(candidate, model, statesMax).verdict === "linearizable";
  };

  // 1. The shortest failing prefix. Cutting the history at time T keeps every operation invoked
  //    at or before T; one still running at T becomes ambiguous. Prefixes of a linearizable
  //    history are linearizable, so "fails" is monotone in T and binary search applies.
  const cutTimes = [...new Set(ops.filter((op) => op.completedAt !== undefined).map((op) => op.completedAt!))].sort((a, b) => a - b);
  assert(cutTimes.length > 0, "a violation needs at least one completed operation");
  let low = 0;
  let high = cutTimes.length - 1;
  // Invariant: the prefix cut at cutTimes[high] fails (the full history does).
  while (low < high && checksLeft > 0) {
    const middle = (low + high) >>> 1;
    if (violates(cutAt(ops, cutTimes[middle]!))) high = middle;
    else low = middle + 1;
  }
  const cutTime = cutTimes[high]!;
  let current = cutAt(ops, cutTime);
  // The failing operation completes exactly at the cut; with ties, take one whose removal
  // repairs the prefix.
  const candidates = current.filter((op) => op.completedAt === cutTime);
  let failing = candidates[0]!;
  let repaired = false;
  for (const op of candidates) {
    if (checksLeft <= 0) break;
    if (linearizable(current.filter((other) => other !== op))) {
      failing = op;
      repaired = true;
      break;
    }
  }
  const statesOf = (candidate: readonly Operation<Input, Output>[]): string[] | undefined => {
    checksLeft--;
    const outcome = searchPartition(candidate, model, statesMax, failing);
    return outcome.verdict === "violation" ? outcome.watchedStates : undefined;
  };
  const baseline = statesOf(current) ?? [];
  const states = baseline.length > REPORT_STATES_MAX ? [...baseline.slice(0, REPORT_STATES_MAX), "..."] : baseline;
  // With two culprits tied at the cut there is no single operation to explain; report the prefix.
  if (options.minimize === false || !repaired) return { failing, states, ops: current };

  // 2. Greedy reduction (delta debugging over chunks, latest first). A reduction is kept only if
  //    the history still fails, becomes linearizable without the failing operation, and leaves
  //    the states the failing operation could have seen unchanged. Without the last condition
  //    the shrinker would happily delete the writes a stale read missed and "explain" the read
  //    by an empty history.
  const baselineKey = baseline.join("\u0000");
  const acceptable = (candidate: Operation<Input, Output>[]): boolean => {
    const candidateStates = statesOf(candidate);
    if (candidateStates === undefined || candidateStates.join("\u0000") !== baselineKey) return false;
    return linearizable(candidate.filter((op) => op !== failing));
  };
  // Operations that leave the initial state unchanged (reads, in most models) go first: they are
  // the bulk of a history and the cheapest to drop in large chunks.
  const initial = model.init();
  const initialKey = model.key(initial);
  const observesOnly = (op: Operation<Input, Output>): boolean => {
    const after = model.step(initial, op.input, undefined);
    return after !== undefined && model.key(after) === initialKey;
  };
  const removeInChunks = (eligible: (op: Operation<Input, Output>) => boolean): void => {
    const pool = current.filter((op) => op !== failing && eligible(op));
    for (let chunk = Math.max(1, pool.length >> 1); pool.length > 0 && checksLeft > 0; chunk >>= 1) {
      let end = pool.length;
      while (end > 0 && checksLeft > 0) {
        const start = Math.max(0, end - chunk);
        const slice = new Set(pool.slice(start, end));
        end = start;
        if (![...slice].some((op) => current.includes(op))) continue;
        const removed = current.filter((op) => !slice.has(op));
        if (acceptable(removed)) current = removed;
      }
      if (chunk === 1) break;
    }
  };
  removeInChunks(observesOnly);
  removeInChunks(() => true);
  return { failing, states, ops: current };
}

function cutAt<Input, Output>(ops: readonly Operation<Input, Output>[], time: number): Operation<Input, Output>[] {
  const result: Operation<Input, Output>[] = [];
  for (const op of ops) {
    if (op.invokedAt > time) continue;
    if (op.completedAt !== undefined && op.completedAt > time) {
      result.push({ ...op, output: undefined, completedAt: undefined });
    } else {
      result.push(op);
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Reporting.

export function describeOperation<State, Input, Output>(model: Model<State, Input, Output>, op: Operation<Input, Output>): string {
  const body = model.describe
    ? model.describe(op.input, op.output)
    : `${safeJson(op.input)} -> ${op.output === undefined ? "?" : safeJson(op.output)}`;
  const window = `[${op.invokedAt}, ${op.completedAt === undefined ? "..." : op.completedAt}]`;
  const client = op.clientId === undefined ? "" : ` client ${op.clientId}`;
  return `#${op.id}${client} ${window} ${body}`;
}

/** One operation per line, sorted by invocation time. */
export function formatHistory<State, Input, Output>(ops: readonly Operation<Input, Output>[], model: Model<State, Input, Output>): string {
  return [...ops]
    .sort((a, b) => a.invokedAt - b.invokedAt)
    .map((op) => `  ${describeOperation(model, op)}`)
    .join("\n");
}

function safeJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
}

// ---------------------------------------------------------------------------------------------
// The counter model: add(delta) -> new value, read() -> value. Exact (bigint).

export type CounterInput = { kind: "add"; delta: bigint } | { kind: "read" };
export type CounterOutput = bigint;

export const counterModel: Model<bigint, CounterInput, CounterOutput> = {
  init: () => 0n,
  step(state, input, output) {
    if (input.kind === "add") {
      const next = state + input.delta;
      return output === undefined || output === next ? next : undefined;
    }
    return output === undefined || output === state ? state : undefined;
  },
  key: (state) => state,
  describe(input, output) {
    const result = output === undefined ? "?" : output.toString();
    return input.kind === "add" ? `add(${input.delta}) -> ${result}` : `read() -> ${result}`;
  },
};
