/**
 * The shard's replicated commands and their log-entry encoding.
 *
 * One Raft entry carries many commands (leader-side batching) plus the leader's wall-clock
 * timestamp, which is the only notion of time the state machine has (sessions expire by it).
 *
 * Wire form (msgpackr, arrays rather than maps so that field names cost nothing):
 *   entry     [timestampMs, [command, ...]]
 *   register  [0, clientId, owner] | [0] (before random ids: the id came from the entry index)
 *   keepalive [1, clientId] | [1, clientId, owner]
 *   mutate    [2, clientId, seq, firstUnackedSeq, [op, ...]] | [..., epoch] | [..., epoch, owner]
 *             (epoch: the shard epoch the client routed by; 0 or absent = not checked. owner: the
 *             caller's principal name; absent = "", a cluster without auth)
 *             or [2, clientId, seq, firstUnackedSeq, packed] | [..., epoch] when there are two or
 *             more ops and every one is a plain add (no floor, no TTL): `packed` is binary in the form of src/util/packed-adds.ts,
 *             the bytes a client's packed AddBatch carried (one encoding per batch, so the bytes
 *             are the same whichever way the command was built)
 *   write     [3, requestId, [op, ...] | packed, epoch, owner]
 *             (a mutate without a session: exactly once per (owner, requestId), remembered by the
 *             shard's request-id table, request-ids.ts; epoch 0 = not checked, owner "" = no auth)
 *   add       [0, key, delta] | [0, key, delta, floor] | [0, key, delta, floor | nil, ttlMs]
 *   set       [1, key, value] | [1, key, value, ttlMs]
 *   reset     [2, key]
 *   cas       [3, key, expectedVersion, value]
 *   window    [4, key, delta, eventTimeMs, ttlMs]   (eventTimeMs 0 = the entry's timestamp; ttlMs 0 = none)
 *   acquire   [5, key, n, limit, windowMs]
 *   unique    [6, key, [item, ...], ttlMs]          (ttlMs 0 = none)
 * bigints that fit a safe integer travel as msgpack ints (1-9 bytes), others as int64; decoding
 * reads every 64-bit int as bigint, so no value ever passes through a JS number that could round.
 */
import { Packr } from "msgpackr";
import { assert, unreachable } from "../util/assert.js";
import { InvalidArgumentError, type ErrorCode } from "../util/errors.js";
import { INT64_MAX, INT64_MIN } from "./binary.js";
import { fmix32 } from "../util/hash.js";
import { decodePackedAdds, encodePackedAdds, PACKED_KEY_BYTES_MAX, type PackedAdd } from "../util/packed-adds.js";
import { ITEM_BYTES_MAX } from "./kinds/hll.js";
import { ENTRIES_MAX, WINDOW_MS_MAX } from "./kinds/ratelimit.js";

/**
 * ttlMs (add, set, window, unique): the key expires (is deleted) at the entry's leader time + ttlMs;
 * absent leaves an existing expiry as it is.
 */
export type CounterOp =
  /** floor: the add fails (FAILED_PRECONDITION) if the result would be < floor. */
  | { kind: "add"; key: Uint8Array; delta: bigint; floor?: bigint; ttlMs?: number }
  | { kind: "set"; key: Uint8Array; value: bigint; ttlMs?: number }
  /** Deletes the counter: reads then see value 0, version 0, exists false. */
  | { kind: "reset"; key: Uint8Array }
  /** expectedVersion 0 = the counter must not exist. */
  | { kind: "cas"; key: Uint8Array; expectedVersion: number; value: bigint }
  /** A windowed counter add (kinds/windows.ts); eventTimeMs absent = the entry's leader timestamp. */
  | { kind: "window"; key: Uint8Array; delta: bigint; eventTimeMs?: number; ttlMs?: number }
  /** Sliding-window rate limit (kinds/ratelimit.ts): a denial is a result, not a failure. */
  | { kind: "acquire"; key: Uint8Array; n: number; limit: number; windowMs: number }
  /** HyperLogLog adds (kinds/hll.ts). */
  | { kind: "unique"; key: Uint8Array; items: Uint8Array[]; ttlMs?: number };

/** ttlMs bound: ten years. */
export const TTL_MS_MAX = 10 * 366 * 24 * 3_600_000;
/** Items in one unique op. */
export const UNIQUE_ITEMS_MAX = 10_000;

export type Command =
  /**
   * Opens a session (Raft thesis 6.3) owned by `owner`. The proposer picks `clientId` at random
   * (cluster-unique and unguessable; the state machine refuses one in use). Absent only in entries
   * written before random ids, where the id came from the entry index (sessionClientId).
   */
  | { type: "register"; clientId?: number; owner?: string }
  | { type: "keepalive"; clientId: number; owner?: string }
  /** All ops or none. firstUnackedSeq: the client holds replies for every seq below it. */
  | {
      type: "mutate";
      clientId: number;
      seq: number;
      firstUnackedSeq: number;
      ops: CounterOp[];
      epoch?: number;
      /** The caller's principal name; absent = "" (no auth). Must be the session's owner. */
      owner?: string;
      /**
       * The ops in packed form (src/util/packed-adds.ts) when the request carried them so: the
       * entry takes these bytes as they are. Invariant: `ops` is exactly their decoding. Only an
       * encoding shortcut: decoding never sets it.
       */
      packedAdds?: Uint8Array;
    }
  /**
   * A mutate without a session (proto RequestHeader.request_id): applied at most once per
   * (owner, requestId) while the shard remembers the id (request-ids.ts); a retry gets the saved
   * outcome, a reuse with other ops is refused. epoch, owner and packedAdds as in mutate.
   */
  | {
      type: "write";
      requestId: string;
      ops: CounterOp[];
      epoch?: number;
      owner?: string;
      packedAdds?: Uint8Array;
    };

/** The commands that carry ops: a session's mutate, or a sessionless write. */
export type MutatingCommand = Extract<Command, { type: "mutate" | "write" }>;

export interface EntryPayload {
  timestampMs: number;
  commands: Command[];
}

/**
 * value and version: the counter's after the op. For the kinds: window -> the sum of the finest
 * bucket holding the event, and eventTimeMs; acquire -> value = remaining, plus allowed and
 * retryAfterMs; unique -> value 1 if a register changed, else 0. version = the key's last change.
 */
export type OpResult = { value: bigint; version: number; eventTimeMs?: number; allowed?: boolean; retryAfterMs?: number };

export type CommandFailure = {
  ok: false;
  code: ErrorCode;
  message: string;
  /** The op of a mutate that failed; nothing of the mutate was applied. */
  opIndex?: number;
  /** VERSION_MISMATCH: the counter's version when the cas was evaluated (0 = did not exist). */
  currentVersion?: number;
  /** WRONG_SHARD: the shard's epoch when the command was refused. */
  currentEpoch?: number;
  /** OVERLOADED: how long until retrying can succeed (a full request-id table). */
  retryAfterMs?: number;
  /** True when this is the retained result of an earlier apply of the same (clientId, seq). */
  duplicate?: boolean;
};

export type CommandResult =
  | { ok: true; type: "register"; clientId: number }
  | { ok: true; type: "keepalive" }
  | { ok: true; type: "mutate"; results: OpResult[]; duplicate: boolean }
  | CommandFailure;

/**
 * Bounds on one command. The defaults are protocol constants: the state machine checks committed
 * commands against them, so every replica must use the same values (a server may admit with
 * stricter limits; it must never propose beyond these). Entries have no count bound here: the
 * server bounds them in bytes (maxEntryBytes), which is what bounds decoding memory.
 */
export interface ShardLimits {
  /** Key length in bytes; keys are 1..maxKeyBytes. */
  maxKeyBytes: number;
  /** Ops in one mutate; 1..maxOps. */
  maxOps: number;
}

export const DEFAULT_SHARD_LIMITS: Readonly<ShardLimits> = Object.freeze({ maxKeyBytes: 256, maxOps: 10_000 });

/**
 * Session ids are `entryIndex * SESSION_IDS_PER_ENTRY + n` for the n-th register command of the
 * entry (n from 0). The thesis (6.3) uses the registration entry's index as the id; leader
 * batching can put several registers into one entry, so the index alone would not be unique.
 * Decimal-readable (entry 1234's first session is 1234000) and exact up to index 9e12.
 * Registers beyond this many in one entry fail with OVERLOADED (the client retries).
 */
export const SESSION_IDS_PER_ENTRY = 1000;

export function sessionClientId(entryIndex: number, registerOrdinal: number): number {
  assert(Number.isSafeInteger(entryIndex) && entryIndex >= 1, "entry index must be a safe integer >= 1");
  assert(Number.isInteger(registerOrdinal) && registerOrdinal >= 0, "register ordinal must be >= 0");
  assert(registerOrdinal < SESSION_IDS_PER_ENTRY, "register ordinal beyond SESSION_IDS_PER_ENTRY");
  const clientId = entryIndex * SESSION_IDS_PER_ENTRY + registerOrdinal;
  assert(Number.isSafeInteger(clientId), "client id overflows a safe integer");
  return clientId;
}

/** Bytes of a principal name a command may carry as its owner. */
export const OWNER_BYTES_MAX = 256;

/**
 * A request id is 1..REQUEST_ID_CHARS_MAX printable ASCII characters (a UUID, a ULID,
 * "order-1234/charge"): it appears in error messages and logs as it is, and JSON carries it
 * without escaping.
 */
export const REQUEST_ID_CHARS_MAX = 64;
const REQUEST_ID_PATTERN = /^[\x20-\x7e]+$/;

/** Why `requestId` is not a valid request id, or undefined. */
export function requestIdProblem(requestId: unknown): string | undefined {
  if (typeof requestId !== "string") return `must be a string, got ${typeof requestId}`;
  if (requestId.length < 1 || requestId.length > REQUEST_ID_CHARS_MAX)
    return `must be 1..${REQUEST_ID_CHARS_MAX} characters, got ${requestId.length}`;
  if (!REQUEST_ID_PATTERN.test(requestId)) return "must be printable ASCII (0x20..0x7e)";
  return undefined;
}

/**
 * A digest of what a mutate asks for (its ops, not its routing or acknowledgements), kept with the
 * retained outcome: a retry of a seq must carry the same ops, or it is refused. A 32-bit FNV-1a
 * style mix with a final avalanche, allocation-free (it runs for every mutate on every replica):
 * a guard against a client reusing a seq by mistake, not against a forger (a session is usable
 * only by its owner). Deterministic, so every replica decides alike.
 */
export function requestDigest(ops: readonly CounterOp[]): number {
  let h = FNV_OFFSET;
  for (let o = 0; o < ops.length; o++) {
    const op = ops[o]!;
    h = mixWord(h, OP_TAGS[op.kind]);
    h = mixBytes(h, op.key);
    switch (op.kind) {
      case "add":
        h = mixOptional(mixBigint(h, op.delta), op.floor);
        h = mixOptional(h, op.ttlMs);
        break;
      case "set":
        h = mixOptional(mixBigint(h, op.value), op.ttlMs);
        break;
      case "reset":
        break;
      case "cas":
        h = mixBigint(mixNumber(h, op.expectedVersion), op.value);
        break;
      case "window":
        h = mixOptional(mixOptional(mixBigint(h, op.delta), op.eventTimeMs), op.ttlMs);
        break;
      case "acquire":
        h = mixNumber(mixNumber(mixNumber(h, op.n), op.limit), op.windowMs);
        break;
      case "unique":
        h = mixWord(mixOptional(h, op.ttlMs), op.items.length);
        for (const item of op.items) h = mixBytes(h, item);
        break;
      default:
        unreachable(op);
    }
  }
  // Avalanche, so digests of near-equal requests differ in many bits.
  return fmix32(h);
}

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;
const OP_TAGS: Readonly<Record<CounterOp["kind"], number>> = { add: 1, set: 2, reset: 3, cas: 4, window: 5, acquire: 6, unique: 7 };

function mixWord(h: number, word: number): number {
  h = Math.imul(h ^ (word & 0xff), FNV_PRIME);
  h = Math.imul(h ^ ((word >>> 8) & 0xff), FNV_PRIME);
  h = Math.imul(h ^ ((word >>> 16) & 0xff), FNV_PRIME);
  return Math.imul(h ^ (word >>> 24), FNV_PRIME);
}

/** The length, then every byte: ("ab","c") and ("a","bc") differ. */
function mixBytes(h: number, bytes: Uint8Array): number {
  h = mixWord(h, bytes.length);
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, FNV_PRIME);
  return h;
}

/** An exact 64-bit integer as two words; small values (the common case) take no bigint arithmetic. */
function mixBigint(h: number, value: bigint): number {
  if (value >= -0x8000_0000n && value <= 0x7fff_ffffn) return mixWord(mixWord(h, Number(value)), Number(value) < 0 ? -1 : 0);
  return mixWord(mixWord(h, Number(BigInt.asUintN(32, value))), Number(BigInt.asIntN(32, value >> 32n)));
}

/** A safe integer (counts, times, versions) as two words. */
function mixNumber(h: number, value: number): number {
  return mixWord(mixWord(h, value | 0), Math.floor(value / 0x1_0000_0000) | 0);
}

/** Absent and 0 differ: a presence word, then the value. */
function mixOptional(h: number, value: bigint | number | undefined): number {
  if (value === undefined) return mixWord(h, 0);
  h = mixWord(h, 1);
  return typeof value === "bigint" ? mixBigint(h, value) : mixNumber(h, value);
}

/** The entry index that registered a session (for logs and debugging). */
export function sessionEntryIndex(clientId: number): number {
  return Math.floor(clientId / SESSION_IDS_PER_ENTRY);
}

export function commandOpCount(command: Command): number {
  return command.type === "mutate" || command.type === "write" ? command.ops.length : 0;
}

function fail(message: string): never {
  throw new InvalidArgumentError(message);
}

// The checks return a problem description or undefined, and callers build the message (naming the
// field and op) only on failure: validation runs for every op of every entry on every replica.

function int64Problem(value: unknown): string | undefined {
  if (typeof value !== "bigint") return `must be a bigint, got ${typeof value}`;
  if (value < INT64_MIN || value > INT64_MAX) return `${value} is outside the int64 range`;
  return undefined;
}

function safeIntegerProblem(value: unknown, min: number): string | undefined {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    return `must be a safe integer, got ${typeof value === "number" ? value : typeof value}`;
  }
  if (value < min) return `must be >= ${min}, got ${value}`;
  return undefined;
}

function keyProblem(key: unknown, limits: ShardLimits): string | undefined {
  if (!(key instanceof Uint8Array)) return "must be a Uint8Array";
  if (key.length < 1) return `is empty; keys are 1..${limits.maxKeyBytes} bytes`;
  if (key.length > limits.maxKeyBytes) return `is ${key.length} bytes; max ${limits.maxKeyBytes}`;
  return undefined;
}

function boundedProblem(value: unknown, min: number, max: number): string | undefined {
  const problem = safeIntegerProblem(value, min);
  if (problem !== undefined) return problem;
  return (value as number) > max ? `must be <= ${max}, got ${value as number}` : undefined;
}

function ttlProblem(ttlMs: unknown): string | undefined {
  return ttlMs === undefined ? undefined : boundedProblem(ttlMs, 1, TTL_MS_MAX);
}

function acquireProblem(op: Extract<CounterOp, { kind: "acquire" }>): [string, string] | undefined {
  let problem = boundedProblem(op.limit, 1, Number.MAX_SAFE_INTEGER);
  if (problem !== undefined) return ["limit", problem];
  problem = boundedProblem(op.windowMs, 1, WINDOW_MS_MAX);
  if (problem !== undefined) return ["windowMs", problem];
  problem = boundedProblem(op.n, 0, op.limit);
  if (problem !== undefined) return ["n", `${problem} (n above limit can never be granted)`];
  if (Math.min(op.limit, op.windowMs) > ENTRIES_MAX) return ["limit", `min(limit, windowMs) must be <= ${ENTRIES_MAX}`];
  return undefined;
}

function itemsProblem(items: unknown): string | undefined {
  if (!Array.isArray(items)) return "must be an array";
  if (items.length < 1 || items.length > UNIQUE_ITEMS_MAX) return `has ${items.length} items; 1..${UNIQUE_ITEMS_MAX} allowed`;
  for (let i = 0; i < items.length; i++) {
    const item: unknown = items[i];
    if (!(item instanceof Uint8Array)) return `[${i}] must be a Uint8Array`;
    if (item.length > ITEM_BYTES_MAX) return `[${i}] is ${item.length} bytes; max ${ITEM_BYTES_MAX}`;
  }
  return undefined;
}

function checkSafeInteger(what: string, value: unknown, min: number): void {
  const problem = safeIntegerProblem(value, min);
  if (problem !== undefined) fail(`${what} ${problem}`);
}

function validateOp(op: CounterOp, opIndex: number, limits: ShardLimits): void {
  if (typeof op !== "object" || op === null) fail(`ops[${opIndex}] must be an object`);
  const kind = op.kind;
  let field = "key";
  let problem = keyProblem(op.key, limits);
  if (problem === undefined) {
    switch (kind) {
      case "add":
        field = "delta";
        problem = int64Problem(op.delta);
        if (problem === undefined && op.floor !== undefined) {
          field = "floor";
          problem = int64Problem(op.floor);
        }
        if (problem === undefined) {
          field = "ttlMs";
          problem = ttlProblem(op.ttlMs);
        }
        break;
      case "set":
        field = "value";
        problem = int64Problem(op.value);
        if (problem === undefined) {
          field = "ttlMs";
          problem = ttlProblem(op.ttlMs);
        }
        break;
      case "window":
        field = "delta";
        problem = int64Problem(op.delta);
        if (problem === undefined && op.eventTimeMs !== undefined) {
          field = "eventTimeMs";
          problem = boundedProblem(op.eventTimeMs, 1, Number.MAX_SAFE_INTEGER);
        }
        if (problem === undefined) {
          field = "ttlMs";
          problem = ttlProblem(op.ttlMs);
        }
        break;
      case "acquire": {
        const found = acquireProblem(op);
        if (found !== undefined) [field, problem] = found;
        break;
      }
      case "unique":
        field = "items";
        problem = itemsProblem(op.items);
        if (problem === undefined) {
          field = "ttlMs";
          problem = ttlProblem(op.ttlMs);
        }
        break;
      case "reset":
        break;
      case "cas":
        field = "expectedVersion";
        problem = safeIntegerProblem(op.expectedVersion, 0);
        if (problem === undefined) {
          field = "value";
          problem = int64Problem(op.value);
        }
        break;
      default:
        fail(`ops[${opIndex}] has unknown kind ${JSON.stringify(String(kind))}`);
    }
  }
  if (problem !== undefined) fail(`ops[${opIndex}] (${String(kind)}) ${field} ${problem}`);
}

function checkOwner(what: string, owner: unknown): void {
  if (owner === undefined) return;
  if (typeof owner !== "string") fail(`${what} owner must be a string`);
  // UTF-16 units * 3 bounds the UTF-8 bytes: most names never need encoding here.
  if (owner.length > OWNER_BYTES_MAX || (owner.length * 3 > OWNER_BYTES_MAX && new TextEncoder().encode(owner).length > OWNER_BYTES_MAX))
    fail(`${what} owner is longer than ${OWNER_BYTES_MAX} bytes`);
}

function validateOps(what: string, ops: unknown, limits: ShardLimits): void {
  if (!Array.isArray(ops)) fail(`${what} ops must be an array`);
  if (ops.length < 1) fail(`${what} has no ops; 1..${limits.maxOps} allowed`);
  if (ops.length > limits.maxOps) fail(`${what} has ${ops.length} ops; max ${limits.maxOps}`);
  for (let i = 0; i < ops.length; i++) validateOp(ops[i] as CounterOp, i, limits);
}

/** Throws InvalidArgumentError naming the first problem (which field, which op, which bound). */
export function validateCommand(command: Command, limits: ShardLimits = DEFAULT_SHARD_LIMITS): void {
  if (typeof command !== "object" || command === null) fail("command must be an object");
  const type = command.type;
  switch (type) {
    case "register":
      if (command.clientId !== undefined) checkSafeInteger("register clientId", command.clientId, 1);
      checkOwner("register", command.owner);
      return;
    case "keepalive":
      checkSafeInteger("keepalive clientId", command.clientId, 1);
      checkOwner("keepalive", command.owner);
      return;
    case "mutate": {
      checkSafeInteger("mutate clientId", command.clientId, 1);
      checkOwner("mutate", command.owner);
      checkSafeInteger("mutate seq", command.seq, 1);
      checkSafeInteger("mutate firstUnackedSeq", command.firstUnackedSeq, 0);
      if (command.epoch !== undefined) checkSafeInteger("mutate epoch", command.epoch, 0);
      if (command.firstUnackedSeq > command.seq) {
        fail(`mutate firstUnackedSeq ${command.firstUnackedSeq} is above seq ${command.seq}`);
      }
      validateOps("mutate", command.ops, limits);
      return;
    }
    case "write": {
      const problem = requestIdProblem(command.requestId);
      if (problem !== undefined) fail(`write requestId ${problem}`);
      checkOwner("write", command.owner);
      if (command.epoch !== undefined) checkSafeInteger("write epoch", command.epoch, 0);
      validateOps("write", command.ops, limits);
      return;
    }
    default:
      fail(`unknown command type ${JSON.stringify(String(type))}`);
  }
}

/** The timestamp and every command of an entry; throws InvalidArgumentError naming the command. */
export function validateEntry(payload: EntryPayload, limits: ShardLimits = DEFAULT_SHARD_LIMITS): void {
  checkSafeInteger("entry timestampMs", payload.timestampMs, 0);
  if (!Array.isArray(payload.commands)) fail("entry commands must be an array");
  for (let i = 0; i < payload.commands.length; i++) {
    try {
      validateCommand(payload.commands[i]!, limits);
    } catch (error) {
      if (error instanceof InvalidArgumentError) fail(`commands[${i}]: ${error.message}`);
      throw error;
    }
  }
}

// useRecords false: plain msgpack, no shared structure state between calls, so the same payload
// always encodes to the same bytes. int64AsType: every 64-bit msgpack int decodes as bigint.
const packr = new Packr({ useRecords: false, int64AsType: "bigint", moreTypes: false, mapsAsObjects: true });

const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

function compactBigint(value: bigint): number | bigint {
  return value >= SAFE_MIN && value <= SAFE_MAX ? Number(value) : value;
}

const enum WireCommand {
  Register = 0,
  Keepalive = 1,
  Mutate = 2,
  Write = 3,
}

const enum WireOp {
  Add = 0,
  Set = 1,
  Reset = 2,
  Cas = 3,
  Window = 4,
  Acquire = 5,
  Unique = 6,
}

function opToWire(op: CounterOp): unknown[] {
  switch (op.kind) {
    case "add":
      if (op.ttlMs !== undefined) {
        return [WireOp.Add, op.key, compactBigint(op.delta), op.floor === undefined ? null : compactBigint(op.floor), op.ttlMs];
      }
      return op.floor === undefined
        ? [WireOp.Add, op.key, compactBigint(op.delta)]
        : [WireOp.Add, op.key, compactBigint(op.delta), compactBigint(op.floor)];
    case "set":
      return op.ttlMs === undefined
        ? [WireOp.Set, op.key, compactBigint(op.value)]
        : [WireOp.Set, op.key, compactBigint(op.value), op.ttlMs];
    case "window":
      return [WireOp.Window, op.key, compactBigint(op.delta), op.eventTimeMs ?? 0, op.ttlMs ?? 0];
    case "acquire":
      return [WireOp.Acquire, op.key, op.n, op.limit, op.windowMs];
    case "unique":
      return [WireOp.Unique, op.key, op.items, op.ttlMs ?? 0];
    case "reset":
      return [WireOp.Reset, op.key];
    case "cas":
      return [WireOp.Cas, op.key, op.expectedVersion, compactBigint(op.value)];
    default:
      return unreachable(op);
  }
}

/** An add that the packed form can carry. */
function isPlainAdd(op: CounterOp): boolean {
  return op.kind === "add" && op.floor === undefined && op.ttlMs === undefined;
}

/** One op stays a msgpack array: its varint delta is smaller than the packed form's 8 bytes. */
function opsToWire(command: MutatingCommand): unknown {
  const packable = command.ops.length > 1 && command.ops.every(isPlainAdd);
  return packable ? (command.packedAdds ?? encodePackedAdds(command.ops as PackedAdd[])) : command.ops.map(opToWire);
}

function commandToWire(command: Command): unknown[] {
  switch (command.type) {
    case "register":
      return command.clientId === undefined ? [WireCommand.Register] : [WireCommand.Register, command.clientId, command.owner ?? ""];
    case "keepalive":
      return command.owner ? [WireCommand.Keepalive, command.clientId, command.owner] : [WireCommand.Keepalive, command.clientId];
    case "write":
      return [WireCommand.Write, command.requestId, opsToWire(command), command.epoch ?? 0, command.owner ?? ""];
    case "mutate": {
      const ops = opsToWire(command);
      if (command.owner)
        return [WireCommand.Mutate, command.clientId, command.seq, command.firstUnackedSeq, ops, command.epoch ?? 0, command.owner];
      return command.epoch
        ? [WireCommand.Mutate, command.clientId, command.seq, command.firstUnackedSeq, ops, command.epoch]
        : [WireCommand.Mutate, command.clientId, command.seq, command.firstUnackedSeq, ops];
    }
    default:
      return unreachable(command);
  }
}

/** Validates (throws InvalidArgumentError) and encodes one entry. The result is a fresh array. */
export function encodeEntry(payload: EntryPayload, limits: ShardLimits = DEFAULT_SHARD_LIMITS): Uint8Array {
  validateEntry(payload, limits);
  const packed = packr.pack([payload.timestampMs, payload.commands.map(commandToWire)]);
  // msgpackr returns a view into a buffer it reuses for later calls; hand out an owned copy.
  const out = new Uint8Array(packed.length);
  out.set(packed);
  assert(out.length > 0, "an encoded entry is never empty (empty data is the leader's no-op)");
  return out;
}

/**
 * Wire -> typed payload, checking structure and types only (arrays, tags, field kinds); ranges and
 * bounds are validateCommand's job. Throws InvalidArgumentError.
 */
export function decodeEntryShape(data: Uint8Array): EntryPayload {
  if (!(data instanceof Uint8Array)) fail("entry data must be a Uint8Array");
  if (data.length === 0) fail("entry data is empty (a leader no-op carries no payload)");
  let wire: unknown;
  try {
    wire = packr.unpack(data);
  } catch (error) {
    throw new InvalidArgumentError(`entry is not valid msgpack: ${(error as Error).message}`, { cause: error });
  }
  if (!Array.isArray(wire) || wire.length !== 2) fail("entry must be a 2-element array [timestampMs, commands]");
  const timestampMs = wireNumber(wire[0], -1, -1, "timestampMs");
  const wireCommands: unknown = wire[1];
  if (!Array.isArray(wireCommands)) fail("entry commands must be an array");
  const commands: Command[] = new Array(wireCommands.length);
  for (let i = 0; i < wireCommands.length; i++) commands[i] = commandFromWire(wireCommands[i], i);
  return { timestampMs, commands };
}

/** Strict decode: shape, then every bound of validateEntry. Throws InvalidArgumentError. */
export function decodeEntry(data: Uint8Array, limits: ShardLimits = DEFAULT_SHARD_LIMITS): EntryPayload {
  const payload = decodeEntryShape(data);
  validateEntry(payload, limits);
  return payload;
}

/** Names a wire field in an error message, e.g. "commands[3] ops[7] delta". Built only on failure. */
function wireField(commandIndex: number, opIndex: number, field: string): string {
  if (commandIndex < 0) return `entry ${field}`;
  if (opIndex < 0) return `commands[${commandIndex}] ${field}`;
  return `commands[${commandIndex}] ops[${opIndex}] ${field}`;
}

/** A JS-number field: a msgpack int that decoded as number or bigint. Unsafe values stay unsafe. */
function wireNumber(value: unknown, commandIndex: number, opIndex: number, field: string): number {
  if (typeof value === "number") {
    if (!Number.isInteger(value)) fail(`${wireField(commandIndex, opIndex, field)} must be an integer, got ${value}`);
    return value;
  }
  if (typeof value === "bigint") {
    // An unsafe value becomes an unsafe number, which validateCommand then rejects by name.
    return value >= SAFE_MIN && value <= SAFE_MAX ? Number(value) : Number.MAX_SAFE_INTEGER + 2;
  }
  return fail(`${wireField(commandIndex, opIndex, field)} must be an integer, got ${typeof value}`);
}

function wireString(value: unknown, commandIndex: number, field: string): string {
  if (typeof value !== "string") fail(`${wireField(commandIndex, -1, field)} must be a string, got ${typeof value}`);
  return value;
}

function wireBigint(value: unknown, commandIndex: number, opIndex: number, field: string): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  const got = typeof value === "number" ? value : typeof value;
  return fail(`${wireField(commandIndex, opIndex, field)} must be an integer, got ${got}`);
}

function wireKey(value: unknown, commandIndex: number, opIndex: number): Uint8Array {
  if (!(value instanceof Uint8Array)) fail(`${wireField(commandIndex, opIndex, "key")} must be binary`);
  return value;
}

function checkArity(wire: unknown[], min: number, max: number, commandIndex: number, opIndex: number, what: string): void {
  if (wire.length < min || wire.length > max) {
    const expected = min === max ? `${min}` : `${min} or ${max}`;
    fail(`${wireField(commandIndex, opIndex, `(${what})`)} has ${wire.length} fields; expected ${expected}`);
  }
}

function commandFromWire(wire: unknown, commandIndex: number): Command {
  if (!Array.isArray(wire) || wire.length === 0) fail(`commands[${commandIndex}] must be a non-empty array`);
  const tag: unknown = wire[0];
  switch (tag) {
    case WireCommand.Register:
      if (wire.length === 1) return { type: "register" };
      checkArity(wire, 3, 3, commandIndex, -1, "register");
      return {
        type: "register",
        clientId: wireNumber(wire[1], commandIndex, -1, "clientId"),
        owner: wireString(wire[2], commandIndex, "owner"),
      };
    case WireCommand.Keepalive: {
      checkArity(wire, 2, 3, commandIndex, -1, "keepalive");
      const keepalive: Command = { type: "keepalive", clientId: wireNumber(wire[1], commandIndex, -1, "clientId") };
      if (wire.length === 3) keepalive.owner = wireString(wire[2], commandIndex, "owner");
      return keepalive;
    }
    case WireCommand.Write: {
      checkArity(wire, 5, 5, commandIndex, -1, "write");
      const write: Command = {
        type: "write",
        requestId: wireString(wire[1], commandIndex, "requestId"),
        ops: opsFromWire(wire[2], commandIndex),
      };
      const epoch = wireNumber(wire[3], commandIndex, -1, "epoch");
      if (epoch !== 0) write.epoch = epoch;
      const owner = wireString(wire[4], commandIndex, "owner");
      if (owner !== "") write.owner = owner;
      return write;
    }
    case WireCommand.Mutate: {
      checkArity(wire, 5, 7, commandIndex, -1, "mutate");
      const ops = opsFromWire(wire[4], commandIndex);
      const mutate: Command = {
        type: "mutate",
        clientId: wireNumber(wire[1], commandIndex, -1, "clientId"),
        seq: wireNumber(wire[2], commandIndex, -1, "seq"),
        firstUnackedSeq: wireNumber(wire[3], commandIndex, -1, "firstUnackedSeq"),
        ops,
      };
      if (wire.length >= 6) {
        const epoch = wireNumber(wire[5], commandIndex, -1, "epoch");
        if (epoch !== 0 || wire.length === 6) mutate.epoch = epoch;
      }
      if (wire.length === 7) mutate.owner = wireString(wire[6], commandIndex, "owner");
      return mutate;
    }
    default:
      return fail(`commands[${commandIndex}] has unknown command tag ${String(tag)}`);
  }
}

/** A command's ops: a msgpack array of ops, or packed adds (binary). */
function opsFromWire(wireOps: unknown, commandIndex: number): CounterOp[] {
  if (wireOps instanceof Uint8Array) {
    // Bounds (op count, key size) are validateCommand's; this checks the structure.
    try {
      return decodePackedAdds(wireOps, { maxOps: Number.POSITIVE_INFINITY, maxKeyBytes: PACKED_KEY_BYTES_MAX });
    } catch (error) {
      if (error instanceof InvalidArgumentError) fail(`commands[${commandIndex}] packed ops: ${error.message}`);
      throw error;
    }
  }
  if (!Array.isArray(wireOps)) fail(`commands[${commandIndex}] ops must be an array or packed adds`);
  const ops: CounterOp[] = new Array(wireOps.length);
  for (let i = 0; i < wireOps.length; i++) ops[i] = opFromWire(wireOps[i], commandIndex, i);
  return ops;
}

function opFromWire(wire: unknown, commandIndex: number, opIndex: number): CounterOp {
  if (!Array.isArray(wire) || wire.length === 0) fail(`${wireField(commandIndex, opIndex, "op")} must be a non-empty array`);
  const tag: unknown = wire[0];
  switch (tag) {
    case WireOp.Add: {
      checkArity(wire, 3, 5, commandIndex, opIndex, "add");
      const key = wireKey(wire[1], commandIndex, opIndex);
      const delta = wireBigint(wire[2], commandIndex, opIndex, "delta");
      const op: CounterOp = { kind: "add", key, delta };
      if (wire.length >= 4 && wire[3] !== null) op.floor = wireBigint(wire[3], commandIndex, opIndex, "floor");
      if (wire.length === 5) op.ttlMs = wireNumber(wire[4], commandIndex, opIndex, "ttlMs");
      return op;
    }
    case WireOp.Set: {
      checkArity(wire, 3, 4, commandIndex, opIndex, "set");
      const op: CounterOp = {
        kind: "set",
        key: wireKey(wire[1], commandIndex, opIndex),
        value: wireBigint(wire[2], commandIndex, opIndex, "value"),
      };
      if (wire.length === 4) op.ttlMs = wireNumber(wire[3], commandIndex, opIndex, "ttlMs");
      return op;
    }
    case WireOp.Window: {
      checkArity(wire, 5, 5, commandIndex, opIndex, "window");
      const op: CounterOp = {
        kind: "window",
        key: wireKey(wire[1], commandIndex, opIndex),
        delta: wireBigint(wire[2], commandIndex, opIndex, "delta"),
      };
      const eventTimeMs = wireNumber(wire[3], commandIndex, opIndex, "eventTimeMs");
      const ttlMs = wireNumber(wire[4], commandIndex, opIndex, "ttlMs");
      if (eventTimeMs !== 0) op.eventTimeMs = eventTimeMs;
      if (ttlMs !== 0) op.ttlMs = ttlMs;
      return op;
    }
    case WireOp.Acquire:
      checkArity(wire, 5, 5, commandIndex, opIndex, "acquire");
      return {
        kind: "acquire",
        key: wireKey(wire[1], commandIndex, opIndex),
        n: wireNumber(wire[2], commandIndex, opIndex, "n"),
        limit: wireNumber(wire[3], commandIndex, opIndex, "limit"),
        windowMs: wireNumber(wire[4], commandIndex, opIndex, "windowMs"),
      };
    case WireOp.Unique: {
      checkArity(wire, 4, 4, commandIndex, opIndex, "unique");
      const items: unknown = wire[2];
      if (!Array.isArray(items) || !items.every((item) => item instanceof Uint8Array)) {
        fail(`${wireField(commandIndex, opIndex, "items")} must be an array of binary items`);
      }
      const op: CounterOp = { kind: "unique", key: wireKey(wire[1], commandIndex, opIndex), items: items as Uint8Array[] };
      const ttlMs = wireNumber(wire[3], commandIndex, opIndex, "ttlMs");
      if (ttlMs !== 0) op.ttlMs = ttlMs;
      return op;
    }
    case WireOp.Reset:
      checkArity(wire, 2, 2, commandIndex, opIndex, "reset");
      return { kind: "reset", key: wireKey(wire[1], commandIndex, opIndex) };
    case WireOp.Cas:
      checkArity(wire, 4, 4, commandIndex, opIndex, "cas");
      return {
        kind: "cas",
        key: wireKey(wire[1], commandIndex, opIndex),
        expectedVersion: wireNumber(wire[2], commandIndex, opIndex, "expectedVersion"),
        value: wireBigint(wire[3], commandIndex, opIndex, "value"),
      };
    default:
      return fail(`${wireField(commandIndex, opIndex, "op")} has unknown op tag ${String(tag)}`);
  }
}
