/**
 * The ops of one mutate, applied to a shard's state all or none (state-machine.ts invariants): ops
 * apply in order directly to the tables with an undo log, which is replayed backwards if any op
 * fails. One function per op kind, dispatched by applyOp(): add, set, reset and cas on the
 * CounterTable, window, acquire and unique (applyKindOp) on the KindTable.
 */
import { assert } from "../util/assert.js";
import { InvalidArgumentError, OutOfRangeError, type ErrorCode } from "../util/errors.js";
import { INT64_MAX, INT64_MIN } from "../util/int64.js";
import type { CommandFailure, CounterOp, OpResult } from "./commands.js";
import { SLOT_TOUCHED } from "./counter-table.js";
import { describeKey } from "./keys.js";
import { KIND_NAMES, KindTag, type KindEntry } from "./kind-table.js";
import { HyperLogLog } from "../kinds/hll.js";
import { SlidingWindowLimiter } from "./kinds/ratelimit.js";
import { WindowedCounter } from "./kinds/windows.js";
import type { MutateOutcome } from "./sessions.js";
import { DELETED_VALUE, DELETED_VERSION, type ShardState } from "./shard-state.js";

const NO_KEY = new Uint8Array(0);
/**
 * A mutate of at least WARM_OPS_MIN ops warms the table's cache lines for its keys
 * (CounterTable.warm) a chunk of WARM_CHUNK_OPS at a time, just before the chunk applies: a whole
 * 1,000-op mutate's lines are no longer all cached by the time its last ops apply. Measured on
 * the shared 2-core box (1,250-op mutates over 1 M counters, CPU per op applied): ~0.8-0.9 µs in
 * 128-op chunks, ~1.0-1.2 µs warming the whole mutate first, ~1.1-1.5 µs without warming.
 */
const WARM_OPS_MIN = 16;
const WARM_CHUNK_OPS = 128;

type OpOf<Kind extends CounterOp["kind"]> = Extract<CounterOp, { kind: Kind }>;
type KindOp = OpOf<"window" | "acquire" | "unique">;

/** Applies the mutates of one shard; one per CounterStateMachine (apply is synchronous). */
export class Mutation {
  /**
   * Undo log of the mutate being applied, reused across mutates (apply is synchronous) so the hot
   * path allocates nothing for it: the touched slots in first-touch order (each carries the
   * SLOT_TOUCHED flag meanwhile) and their prior state. Holds at most maxOps entries.
   */
  private readonly undoSlots: number[] = [];
  private readonly undoValues: bigint[] = [];
  private readonly undoVersions: number[] = [];
  /** The key each undo-log slot was first touched by (the op's own bytes: no view of the table's arena). */
  private readonly undoKeys: Uint8Array[] = [];
  /** The last touch() was the slot's first in this mutate: its value is the newest undo-log value. */
  private firstTouch = false;
  /** The mutate being applied: its entry index and the length of its undo log. */
  private index = 0;
  private touched = 0;
  /** Counters when the mutate began, and how many it has created (+) and deleted (-) since. */
  private liveAtStart = 0;
  private liveDelta = 0;
  /** False for a single op, which needs no kind undo: each structure checks everything before it writes. */
  private kindUndo = false;
  /** Keys holding a kind (not a plain counter) that the mutate reset. */
  private kindResets: Uint8Array[] | undefined;
  /** The ops' key hashes, by op index, when the mutate warmed the table (CounterTable.warm). */
  private hashes = new Int32Array(0);
  private warmed = false;

  constructor(private readonly state: ShardState) {}

  /**
   * Applies ops in order directly to the table, saving each touched slot's prior state first; if
   * an op fails, every touched slot is put back and the failure returned, so a mutate applies all
   * or nothing. Later ops see earlier ones. Version of every changed counter = index.
   *
   * Slots stay put for the whole mutate: a key that does not exist gets a transient version-0
   * slot, and a reset writes version 0 rather than removing; slots left at version 0 are removed
   * at the end (commit or rollback).
   */
  mutate(ops: CounterOp[], index: number): MutateOutcome {
    this.index = index;
    this.touched = 0;
    this.liveAtStart = this.state.counters.size;
    this.liveDelta = 0;
    this.kindUndo = ops.length > 1;
    this.kindResets = undefined;
    this.warmed = ops.length >= WARM_OPS_MIN;
    if (this.warmed && this.hashes.length < ops.length) this.hashes = new Int32Array(Math.max(ops.length, this.hashes.length * 2));
    const results: OpResult[] = new Array(ops.length);
    for (let opIndex = 0; opIndex < ops.length; opIndex++) {
      // A chunk at a time, so that what warm() brings into the cache is still there when used.
      if (this.warmed && opIndex % WARM_CHUNK_OPS === 0)
        this.state.counters.warm(ops, this.hashes, opIndex, Math.min(ops.length, opIndex + WARM_CHUNK_OPS));
      const outcome = this.applyOp(ops[opIndex]!, opIndex);
      if ("ok" in outcome) return this.abortMutate(outcome);
      results[opIndex] = outcome;
    }
    this.commit(ops, results);
    return { ok: true, type: "mutate", results, duplicate: false };
  }

  /** One op; its failure is the mutate's (the caller rolls back what earlier ops changed). */
  private applyOp(op: CounterOp, opIndex: number): OpResult | CommandFailure {
    switch (op.kind) {
      case "window":
      case "acquire":
      case "unique":
        return this.applyKindOp(op, opIndex, this.index, this.kindUndo, this.liveAtStart + this.liveDelta);
    }
    const kinds = this.state.kinds;
    const kind = kinds.size === 0 ? undefined : kinds.get(op.key);
    if (kind !== undefined && kind.tag !== KindTag.Ttl) {
      if (op.kind === "reset") return this.resetKind(op);
      return opFailure(
        "FAILED_PRECONDITION",
        opIndex,
        op,
        `the key holds a ${KIND_NAMES[kind.tag]}; a key holds one kind (reset it first)`,
      );
    }
    // From here on `kind` is the key's TTL-only entry, if it has one.
    const slot = this.touch(op.key, opIndex);
    switch (op.kind) {
      case "add":
        return this.add(op, opIndex, slot, kind);
      case "set":
        return this.store(op, opIndex, slot, op.value, op.ttlMs, kind);
      case "reset":
        return this.reset(op, slot, kind);
      case "cas":
        return this.cas(op, opIndex, slot);
    }
  }

  /** The key's slot (a transient version-0 slot if the counter does not exist), in the undo log. */
  private touch(key: Uint8Array, opIndex: number): number {
    const table = this.state.counters;
    const slot = this.warmed ? table.findOrInsert(key, this.hashes[opIndex]!) : table.findOrInsert(key);
    // A slot is saved on first touch only, so rollback restores the state before the mutate.
    this.firstTouch = table.setFlag(slot, SLOT_TOUCHED);
    if (this.firstTouch) {
      const touched = this.touched;
      this.undoSlots[touched] = slot;
      this.undoValues[touched] = table.value(slot);
      this.undoVersions[touched] = table.version(slot);
      this.undoKeys[touched] = key;
      this.touched = touched + 1;
    }
    return slot;
  }

  /** add: the counter (0 if it does not exist) plus delta, within int64 and not below the floor. */
  private add(op: OpOf<"add">, opIndex: number, slot: number, kind: KindEntry | undefined): OpResult | CommandFailure {
    const table = this.state.counters;
    // A first touch has just read the value into the undo log: one bigint read per op, not two.
    const base = table.version(slot) === DELETED_VERSION ? 0n : this.firstTouch ? this.undoValues[this.touched - 1]! : table.value(slot);
    const value = base + op.delta;
    if (value > INT64_MAX || value < INT64_MIN) {
      return opFailure("OUT_OF_RANGE", opIndex, op, `${base} + ${op.delta} = ${value} is outside int64`);
    } else if (op.floor !== undefined && value < op.floor) {
      return opFailure("FAILED_PRECONDITION", opIndex, op, `result ${value} would be below the floor ${op.floor}`);
    }
    return this.store(op, opIndex, slot, value, op.ttlMs, kind);
  }

  /** cas: the value, if the counter is at expectedVersion (0: does not exist). */
  private cas(op: OpOf<"cas">, opIndex: number, slot: number): OpResult | CommandFailure {
    const currentVersion = this.state.counters.version(slot);
    if (currentVersion !== op.expectedVersion) {
      const failed = opFailure(
        "VERSION_MISMATCH",
        opIndex,
        op,
        `expected version ${op.expectedVersion}, counter is at version ${currentVersion}`,
      );
      failed.currentVersion = currentVersion;
      return failed;
    }
    return this.store(op, opIndex, slot, op.value, undefined, undefined);
  }

  /**
   * Writes a counter's new value at the mutate's index (add, set, cas), and its expiry if ttlMs is
   * set (add, set). OVERLOADED if it creates a counter beyond maxCounters.
   */
  private store(
    op: CounterOp,
    opIndex: number,
    slot: number,
    value: bigint,
    ttlMs: number | undefined,
    kind: KindEntry | undefined,
  ): OpResult | CommandFailure {
    const { counters: table, kinds, options } = this.state;
    const version = this.index;
    if (table.version(slot) === DELETED_VERSION) {
      if (this.liveAtStart + this.liveDelta + kinds.structured >= options.maxCounters) {
        return opFailure("OVERLOADED", opIndex, op, `shard holds ${options.maxCounters} counters (maxCounters); it must split`);
      }
      this.liveDelta++;
    }
    table.write(slot, value, version);
    const result = { value, version };
    if (ttlMs !== undefined) {
      if (this.kindUndo) kinds.saveUndo(op.key);
      const expiresAtMs = this.state.clockMs + ttlMs;
      if (kind === undefined) {
        kinds.put({ key: op.key.slice(), tag: KindTag.Ttl, structure: undefined, version: 0, expiresAtMs });
      } else {
        kind.expiresAtMs = expiresAtMs;
        kinds.touched(kind);
      }
    }
    return result;
  }

  /** reset of a plain counter: version 0 (the slot goes at the end of the mutate), and its expiry with it. */
  private reset(op: OpOf<"reset">, slot: number, kind: KindEntry | undefined): OpResult {
    const table = this.state.counters;
    if (table.version(slot) !== DELETED_VERSION) this.liveDelta--;
    table.write(slot, DELETED_VALUE, DELETED_VERSION);
    if (kind !== undefined) {
      if (this.kindUndo) this.state.kinds.saveUndo(op.key);
      this.state.kinds.remove(op.key);
    }
    return { value: DELETED_VALUE, version: DELETED_VERSION };
  }

  /** reset of a key holding a windowed counter, rate limit or unique count. */
  private resetKind(op: OpOf<"reset">): OpResult {
    const kinds = this.state.kinds;
    if (this.kindUndo) kinds.saveUndo(op.key);
    kinds.remove(op.key);
    (this.kindResets ??= []).push(op.key);
    return { value: DELETED_VALUE, version: DELETED_VERSION };
  }

  /** Ends a mutate whose ops all applied: logs the changes for watches, and removes the slots left at version 0. */
  private commit(ops: CounterOp[], results: OpResult[]): void {
    const state = this.state;
    const table = state.counters;
    const index = this.index;
    for (let i = 0; i < this.touched; i++) {
      const slot = this.undoSlots[i]!;
      const key = this.undoKeys[i]!;
      this.undoKeys[i] = NO_KEY; // the entry's bytes need not outlive its apply
      table.clearFlag(slot, SLOT_TOUCHED);
      if (table.version(slot) !== DELETED_VERSION) {
        if (table.version(slot) === index) state.changed(index, key, table.value(slot), index, "counter");
        continue;
      }
      if (this.undoVersions[i]! !== DELETED_VERSION) state.changed(index, key, DELETED_VALUE, DELETED_VERSION, "deleted");
      table.remove(slot);
    }
    for (let opIndex = 0; opIndex < ops.length; opIndex++) {
      const op = ops[opIndex]!;
      if (op.kind === "window" || op.kind === "acquire" || op.kind === "unique") {
        const result = results[opIndex]!;
        if (result.version === index) state.changed(index, op.key, result.value, index, op.kind === "acquire" ? "limit" : op.kind);
      }
    }
    // Resets of kinded keys (a counter's reset is recorded above).
    const kindResets = this.kindResets;
    if (kindResets !== undefined) {
      for (const key of kindResets)
        if (state.kinds.get(key) === undefined) state.changed(index, key, DELETED_VALUE, DELETED_VERSION, "deleted");
    }
    state.kinds.endMutate();
    assert(table.size === this.liveAtStart + this.liveDelta, "counter count drifted during a mutate");
  }

  /** Undoes a failed mutate (counters and kinds) and returns its failure. */
  private abortMutate(failed: CommandFailure): CommandFailure {
    this.rollback(this.touched);
    this.state.kinds.rollback();
    return failed;
  }

  /** Puts back the first `touched` undo-log slots, newest first; removes slots the mutate created. */
  private rollback(touched: number): void {
    const table = this.state.counters;
    for (let i = touched - 1; i >= 0; i--) {
      const slot = this.undoSlots[i]!;
      const version = this.undoVersions[i]!;
      this.undoKeys[i] = NO_KEY;
      table.clearFlag(slot, SLOT_TOUCHED);
      if (version === DELETED_VERSION) table.remove(slot);
      else table.write(slot, this.undoValues[i]!, version);
    }
  }

  /**
   * One windowed / rate-limit / unique op. Refused (FAILED_PRECONDITION) when the key holds
   * another kind; the structure's own checks (InvalidArgumentError, OutOfRangeError) become the
   * op's failure and have changed nothing. A denied acquire is a result, and changes nothing.
   */
  private applyKindOp(op: KindOp, opIndex: number, index: number, kindUndo: boolean, plainCounters: number): OpResult | CommandFailure {
    const { kinds, options } = this.state;
    const tag = op.kind === "window" ? KindTag.Window : op.kind === "acquire" ? KindTag.Limit : KindTag.Unique;
    const existing = kinds.get(op.key);
    const holder = existing?.tag ?? (this.state.counterExists(op.key) ? KindTag.Ttl : undefined);
    if (holder !== undefined && holder !== tag) {
      return opFailure("FAILED_PRECONDITION", opIndex, op, `the key holds a ${KIND_NAMES[holder]}; a key holds one kind (reset it first)`);
    }
    if (existing === undefined && op.kind === "acquire" && op.n === 0) {
      return { value: BigInt(op.limit), version: DELETED_VERSION, allowed: true, retryAfterMs: 0 };
    }
    if (existing === undefined && plainCounters + kinds.structured >= options.maxCounters) {
      return opFailure("OVERLOADED", opIndex, op, `shard holds ${options.maxCounters} counters (maxCounters); it must split`);
    }
    const structure = existing?.structure ?? newStructure(tag);
    const nowMs = this.state.clockMs;
    if (kindUndo && existing !== undefined) kinds.saveUndo(op.key);
    let result: OpResult;
    let changed: boolean;
    try {
      switch (op.kind) {
        case "window": {
          const window = structure as WindowedCounter;
          const eventTimeMs = op.eventTimeMs ?? nowMs;
          window.add(eventTimeMs, op.delta, nowMs);
          result = { value: window.at(eventTimeMs).sum, version: index, eventTimeMs };
          changed = true;
          break;
        }
        case "acquire": {
          const acquired = (structure as SlidingWindowLimiter).tryAcquire(op.n, op.limit, op.windowMs, nowMs);
          changed = acquired.allowed && op.n > 0;
          const version = changed ? index : (existing?.version ?? DELETED_VERSION);
          result = { value: BigInt(acquired.remaining), version, allowed: acquired.allowed, retryAfterMs: acquired.retryAfterMs };
          break;
        }
        case "unique": {
          const sketch = structure as HyperLogLog;
          changed = false;
          for (const item of op.items) if (sketch.add(item)) changed = true;
          result = { value: changed ? 1n : 0n, version: changed ? index : (existing?.version ?? index) };
          break;
        }
      }
    } catch (error) {
      if (error instanceof InvalidArgumentError) return opFailure("INVALID_ARGUMENT", opIndex, op, error.message);
      if (error instanceof OutOfRangeError) return opFailure("OUT_OF_RANGE", opIndex, op, error.message);
      throw error;
    }
    const ttlMs = op.kind === "acquire" ? undefined : op.ttlMs;
    if (!changed && ttlMs === undefined) return result;
    const expiresAtMs = ttlMs === undefined ? (existing?.expiresAtMs ?? 0) : nowMs + ttlMs;
    if (existing === undefined) {
      if (kindUndo) kinds.saveUndo(op.key);
      kinds.put({ key: op.key.slice(), tag, structure, version: index, expiresAtMs });
    } else {
      if (changed) existing.version = index;
      existing.expiresAtMs = expiresAtMs;
      kinds.touched(existing);
    }
    return result;
  }
}

function newStructure(tag: KindTag): WindowedCounter | SlidingWindowLimiter | HyperLogLog {
  switch (tag) {
    case KindTag.Window:
      return new WindowedCounter();
    case KindTag.Limit:
      return new SlidingWindowLimiter();
    case KindTag.Unique:
      return new HyperLogLog();
    default:
      return assert(false, `no structure for kind tag ${tag}`) as never;
  }
}

function opFailure(code: ErrorCode, opIndex: number, op: CounterOp, problem: string): CommandFailure {
  return { ok: false, code, message: `ops[${opIndex}] (${op.kind}) on key ${describeKey(op.key)}: ${problem}`, opIndex };
}
