/**
 * The ops of one mutate, applied to a shard's state all or none (state-machine.ts invariants): ops
 * apply in order directly to the tables with an undo log, which is replayed backwards if any op
 * fails. One function per op kind, dispatched by applyOp(): add, set, reset and cas on the
 * CounterTable, window, acquire and unique (applyKindOp) on the KindTable.
 */
import { assert } from "../util/assert.js";
import { InvalidArgumentError, OutOfRangeError, type ErrorCode } from "../util/errors.js";
import { INT64_MAX, INT64_MIN } from "../util/int64.js";
import { readInt64LE } from "../util/packed-adds.js";
import type { CommandFailure, CounterOp, MutatingCommand, OpResult } from "./commands.js";
import { SLOT_TOUCHED } from "./counter-table.js";
import { describeKey } from "./keys.js";
import { KIND_NAMES, KindTag, type KindEntry } from "./kind-table.js";
import { HyperLogLog } from "../kinds/hll.js";
import { SlidingWindowLimiter } from "./kinds/ratelimit.js";
import { WindowedCounter } from "./kinds/windows.js";
import type { MutateOutcome } from "./sessions.js";
import { DELETED_VALUE, DELETED_VERSION, type ShardState } from "./shard-state.js";

const NO_KEY = new Uint8Array(0);
const NO_OPS: CounterOp[] = [];
const NO_RESULTS: OpResult[] = [];
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
  /**
   * The key each undo-log slot was first touched by, as undoKeySources[i][start, start + length):
   * an op's key, or the packed bytes holding it (no view made per op; none of the table's arena).
   */
  private readonly undoKeySources: Uint8Array[] = [];
  private readonly undoKeyStarts: number[] = [];
  private readonly undoKeyLengths: number[] = [];
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
  /** Where each packed op's key starts in its bytes (mutatePacked), by op index. */
  private keyStarts = new Int32Array(0);

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
    this.begin(index, ops.length);
    const results: OpResult[] = new Array(ops.length);
    const table = this.state.counters;
    for (let opIndex = 0; opIndex < ops.length; opIndex++) {
      // A chunk at a time, so that what warm() brings into the cache is still there when used.
      if (this.warmed && opIndex % WARM_CHUNK_OPS === 0) {
        const end = Math.min(ops.length, opIndex + WARM_CHUNK_OPS);
        for (let i = opIndex; i < end; i++) this.hashes[i] = table.hashBytes(ops[i]!.key, 0, ops[i]!.key.length);
        table.warm(this.hashes, opIndex, end);
      }
      const outcome = this.applyOp(ops[opIndex]!, opIndex);
      if ("ok" in outcome) return this.abortMutate(outcome);
      results[opIndex] = outcome;
    }
    this.commit(ops, results);
    return { ok: true, type: "mutate", results, duplicate: false };
  }

  /**
   * The command's ops as mutate() applies them: from the packed bytes when it carries packed adds
   * and the shard holds no kinds (no TTL, window, limit or unique to consult per key), else
   * through its op objects. Same outcome either way.
   */
  mutateCommand(command: MutatingCommand, index: number): MutateOutcome {
    const packed = command.packedAdds;
    return packed !== undefined && this.state.kinds.size === 0 ? this.mutatePacked(packed, index) : this.mutate(command.ops, index);
  }

  /**
   * mutate() of packed adds (src/util/packed-adds.ts, checked by validateCommand) read straight
   * from their bytes: no object, key view or result object per op. For a shard without kinds, so
   * an add is its value plus delta within int64, and the counter limit on creation.
   */
  mutatePacked(bytes: Uint8Array, index: number): MutateOutcome {
    assert(this.state.kinds.size === 0, "packed adds are applied from their bytes only in a shard without kinds");
    const count = this.layOut(bytes);
    this.begin(index, count);
    const table = this.state.counters;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const values = new BigInt64Array(count);
    const { keyStarts, hashes } = this;
    for (let opIndex = 0; opIndex < count; opIndex++) {
      if (this.warmed && opIndex % WARM_CHUNK_OPS === 0) {
        const end = Math.min(count, opIndex + WARM_CHUNK_OPS);
        for (let i = opIndex; i < end; i++) hashes[i] = table.hashBytes(bytes, keyStarts[i]!, keyLength(bytes, keyStarts[i]!));
        table.warm(hashes, opIndex, end);
      }
      const start = keyStarts[opIndex]!;
      const length = keyLength(bytes, start);
      const slot = this.touchRange(bytes, start, length, opIndex);
      const delta = readInt64LE(view, start + length);
      const base = table.version(slot) === DELETED_VERSION ? 0n : this.firstTouch ? this.undoValues[this.touched - 1]! : table.value(slot);
      const value = base + delta;
      if (value > INT64_MAX || value < INT64_MIN) {
        return this.abortMutate(
          packedFailure("OUT_OF_RANGE", opIndex, bytes, start, length, `${base} + ${delta} = ${value} is outside int64`),
        );
      }
      if (table.version(slot) === DELETED_VERSION) {
        const maxCounters = this.state.options.maxCounters;
        if (this.liveAtStart + this.liveDelta >= maxCounters) {
          const problem = `shard holds ${maxCounters} counters (maxCounters); it must split`;
          return this.abortMutate(packedFailure("OVERLOADED", opIndex, bytes, start, length, problem));
        }
        this.liveDelta++;
      }
      table.write(slot, value, index);
      values[opIndex] = value;
    }
    this.commit(NO_OPS, NO_RESULTS);
    return packedOutcome(values, index);
  }

  /** Fills keyStarts with where each packed op's key starts; returns the op count. */
  private layOut(bytes: Uint8Array): number {
    // An op takes at least 11 bytes (key length, a 1-byte key, the delta): room for every one.
    const most = Math.floor(bytes.length / 11);
    if (this.keyStarts.length < most) this.keyStarts = new Int32Array(Math.max(most, this.keyStarts.length * 2));
    const keyStarts = this.keyStarts;
    let count = 0;
    for (let at = 0; at < bytes.length; count++) {
      keyStarts[count] = at + 2;
      at += 2 + keyLength(bytes, at + 2) + 8;
    }
    return count;
  }

  /** Resets the per-mutate state for a mutate of `count` ops at `index`. */
  private begin(index: number, count: number): void {
    this.index = index;
    this.touched = 0;
    this.liveAtStart = this.state.counters.size;
    this.liveDelta = 0;
    this.kindUndo = count > 1;
    this.kindResets = undefined;
    this.warmed = count >= WARM_OPS_MIN;
    if (this.warmed && this.hashes.length < count) this.hashes = new Int32Array(Math.max(count, this.hashes.length * 2));
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
    return this.touchRange(key, 0, key.length, opIndex);
  }

  /** touch() of the key bytes[start, start + length). */
  private touchRange(bytes: Uint8Array, start: number, length: number, opIndex: number): number {
    const table = this.state.counters;
    const slot = this.warmed
      ? table.findOrInsertRange(bytes, start, length, this.hashes[opIndex]!)
      : table.findOrInsertRange(bytes, start, length);
    // A slot is saved on first touch only, so rollback restores the state before the mutate.
    this.firstTouch = table.setFlag(slot, SLOT_TOUCHED);
    if (this.firstTouch) {
      const touched = this.touched;
      this.undoSlots[touched] = slot;
      this.undoValues[touched] = table.value(slot);
      this.undoVersions[touched] = table.version(slot);
      this.undoKeySources[touched] = bytes;
      this.undoKeyStarts[touched] = start;
      this.undoKeyLengths[touched] = length;
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
    const changes = state.changeLog;
    for (let i = 0; i < this.touched; i++) {
      const slot = this.undoSlots[i]!;
      const source = this.undoKeySources[i]!;
      this.undoKeySources[i] = NO_KEY; // the entry's bytes need not outlive its apply
      const start = this.undoKeyStarts[i]!;
      const length = this.undoKeyLengths[i]!;
      table.clearFlag(slot, SLOT_TOUCHED);
      if (table.version(slot) !== DELETED_VERSION) {
        if (table.version(slot) === index) changes.appendRange(index, source, start, length, table.value(slot), index, "counter");
        continue;
      }
      if (this.undoVersions[i]! !== DELETED_VERSION)
        changes.appendRange(index, source, start, length, DELETED_VALUE, DELETED_VERSION, "deleted");
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
      this.undoKeySources[i] = NO_KEY;
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

/** The outcome of mutatePacked: its values, and result objects only if something reads them. */
function packedOutcome(values: BigInt64Array, version: number): MutateOutcome {
  let results: OpResult[] | undefined;
  return {
    ok: true,
    type: "mutate",
    duplicate: false,
    packedValues: values,
    packedVersion: version,
    get results(): OpResult[] {
      return (results ??= Array.from(values, (value) => ({ value, version })));
    },
  };
}

function keyLength(bytes: Uint8Array, keyStart: number): number {
  return (bytes[keyStart - 2]! << 8) | bytes[keyStart - 1]!;
}

/** opFailure of the packed add whose key is bytes[start, start + length). */
function packedFailure(
  code: ErrorCode,
  opIndex: number,
  bytes: Uint8Array,
  start: number,
  length: number,
  problem: string,
): CommandFailure {
  return opFailure(code, opIndex, { kind: "add", key: bytes.subarray(start, start + length), delta: 0n }, problem);
}

function opFailure(code: ErrorCode, opIndex: number, op: CounterOp, problem: string): CommandFailure {
  return { ok: false, code, message: `ops[${opIndex}] (${op.kind}) on key ${describeKey(op.key)}: ${problem}`, opIndex };
}
