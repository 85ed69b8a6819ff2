/**
 * The shard's replicated commands and their log-entry encoding.
 *
 * One Raft entry carries many commands (leader-side batching) plus the leader's wall-clock
 * timestamp, which is the only notion of time the state machine has (sessions expire by it).
 *
 * Wire form (msgpackr, arrays rather than maps so that field names cost nothing):
 *   entry     [timestampMs, [command, ...]]
 *   register  [0]
 *   keepalive [1, clientId]
 *   mutate    [2, clientId, seq, firstUnackedSeq, [op, ...]]
 *   add       [0, key, delta] | [0, key, delta, floor]
 *   set       [1, key, value]
 *   reset     [2, key]
 *   cas       [3, key, expectedVersion, value]
 * bigints that fit a safe integer travel as msgpack ints (1-9 bytes), others as int64; decoding
 * reads every 64-bit int as bigint, so no value ever passes through a JS number that could round.
 */
import { Packr } from "msgpackr";
import { assert, unreachable } from "../util/assert.js";
import { InvalidArgumentError, type ErrorCode } from "../util/errors.js";
import { INT64_MAX, INT64_MIN } from "./binary.js";

export type CounterOp =
  /** floor: the add fails (FAILED_PRECONDITION) if the result would be < floor. */
  | { kind: "add"; key: Uint8Array; delta: bigint; floor?: bigint }
  | { kind: "set"; key: Uint8Array; value: bigint }
  /** Deletes the counter: reads then see value 0, version 0, exists false. */
  | { kind: "reset"; key: Uint8Array }
  /** expectedVersion 0 = the counter must not exist. */
  | { kind: "cas"; key: Uint8Array; expectedVersion: number; value: bigint };

export type Command =
  /** Opens a session (Raft thesis 6.3); the result carries the new clientId (see sessionClientId). */
  | { type: "register" }
  | { type: "keepalive"; clientId: number }
  /** All ops or none. firstUnackedSeq: the client holds replies for every seq below it. */
  | { type: "mutate"; clientId: number; seq: number; firstUnackedSeq: number; ops: CounterOp[] };

export interface EntryPayload {
  timestampMs: number;
  commands: Command[];
}

export type OpResult = { value: bigint; version: number };

export type CommandFailure = {
  ok: false;
  code: ErrorCode;
  message: string;
  /** The op of a mutate that failed; nothing of the mutate was applied. */
  opIndex?: number;
  /** VERSION_MISMATCH: the counter's version when the cas was evaluated (0 = did not exist). */
  currentVersion?: number;
  /** True when this is the retained result of an earlier apply of the same (clientId, seq). */
  duplicate?: boolean;
};

export type CommandResult =
  | { ok: true; type: "register"; clientId: number }
  | { ok: true; type: "keepalive" }
  | { ok: true; type: "mutate"; results: OpResult[]; duplicate: boolean }
  | CommandFailure;

/**
 * Bounds on commands and entries. The defaults are protocol constants: the state machine checks
 * committed commands against them, so every replica must use the same values (a server may admit
 * with stricter limits; it must never propose beyond these).
 */
export interface ShardLimits {
  keyBytesMax: number;
  mutateOpsMax: number;
  entryCommandsMax: number;
  /** Ops summed over all mutates of one entry. */
  entryOpsMax: number;
}

export const DEFAULT_SHARD_LIMITS: Readonly<ShardLimits> = Object.freeze({
  keyBytesMax: 256,
  mutateOpsMax: 10_000,
  entryCommandsMax: 10_000,
  entryOpsMax: 100_000,
});

/**
 * Session ids are `entryIndex * SESSION_IDS_PER_ENTRY + n` for the n-th register command of the
 * entry (n from 0). The thesis (6.3) uses the registration entry's index as the id; leader
 * batching can put several registers into one entry, so the index alone would not be unique.
 * Decimal-readable (entry 1234's first session is 1234000) and exact up to index 9e12.
 */
export const SESSION_IDS_PER_ENTRY = 1000;

export function sessionClientId(entryIndex: number, registerOrdinal: number): number {
  assert(Number.isSafeInteger(entryIndex) && entryIndex >= 1, `entry index must be >= 1: ${entryIndex}`);
  assert(Number.isInteger(registerOrdinal) && registerOrdinal >= 0, "register ordinal must be >= 0");
  assert(registerOrdinal < SESSION_IDS_PER_ENTRY, "register ordinal beyond SESSION_IDS_PER_ENTRY");
  const clientId = entryIndex * SESSION_IDS_PER_ENTRY + registerOrdinal;
  assert(Number.isSafeInteger(clientId), `client id overflows a safe integer at entry ${entryIndex}`);
  return clientId;
}

/** The entry index that registered a session (for logs and debugging). */
export function sessionEntryIndex(clientId: number): number {
  return Math.floor(clientId / SESSION_IDS_PER_ENTRY);
}

export function commandOpCount(command: Command): number {
  return command.type === "mutate" ? command.ops.length : 0;
}

function fail(message: string): never {
  throw new InvalidArgumentError(message);
}

function checkInt64(what: string, value: unknown): void {
  if (typeof value !== "bigint") fail(`${what} must be a bigint, got ${typeof value}`);
  if (value < INT64_MIN || value > INT64_MAX) fail(`${what} ${value} is outside the int64 range`);
}

function checkSafeInteger(what: string, value: unknown, min: number): void {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    fail(`${what} must be a safe integer, got ${typeof value === "number" ? value : typeof value}`);
  }
  if (value < min) fail(`${what} must be >= ${min}, got ${value}`);
}

function checkKey(what: string, key: unknown, limits: ShardLimits): void {
  if (!(key instanceof Uint8Array)) fail(`${what} must be a Uint8Array`);
  if (key.length < 1) fail(`${what} is empty; keys are 1..${limits.keyBytesMax} bytes`);
  if (key.length > limits.keyBytesMax) fail(`${what} is ${key.length} bytes; max ${limits.keyBytesMax}`);
}

function validateOp(op: CounterOp, where: string, limits: ShardLimits): void {
  if (typeof op !== "object" || op === null) fail(`${where} must be an object`);
  const kind = op.kind;
  switch (kind) {
    case "add":
      checkKey(`${where} (add) key`, op.key, limits);
      checkInt64(`${where} (add) delta`, op.delta);
      if (op.floor !== undefined) checkInt64(`${where} (add) floor`, op.floor);
      return;
    case "set":
      checkKey(`${where} (set) key`, op.key, limits);
      checkInt64(`${where} (set) value`, op.value);
      return;
    case "reset":
      checkKey(`${where} (reset) key`, op.key, limits);
      return;
    case "cas":
      checkKey(`${where} (cas) key`, op.key, limits);
      checkSafeInteger(`${where} (cas) expectedVersion`, op.expectedVersion, 0);
      checkInt64(`${where} (cas) value`, op.value);
      return;
    default:
      fail(`${where} has unknown kind ${JSON.stringify(String(kind))}`);
  }
}

/** Throws InvalidArgumentError naming the first problem (which field, which op, which bound). */
export function validateCommand(command: Command, limits: ShardLimits = DEFAULT_SHARD_LIMITS): void {
  if (typeof command !== "object" || command === null) fail("command must be an object");
  const type = command.type;
  switch (type) {
    case "register":
      return;
    case "keepalive":
      checkSafeInteger("keepalive clientId", command.clientId, 1);
      return;
    case "mutate": {
      checkSafeInteger("mutate clientId", command.clientId, 1);
      checkSafeInteger("mutate seq", command.seq, 1);
      checkSafeInteger("mutate firstUnackedSeq", command.firstUnackedSeq, 0);
      if (command.firstUnackedSeq > command.seq) {
        fail(`mutate firstUnackedSeq ${command.firstUnackedSeq} is above seq ${command.seq}`);
      }
      const ops = command.ops;
      if (!Array.isArray(ops)) fail("mutate ops must be an array");
      if (ops.length < 1) fail("mutate has no ops; 1.." + limits.mutateOpsMax + " allowed");
      if (ops.length > limits.mutateOpsMax) fail(`mutate has ${ops.length} ops; max ${limits.mutateOpsMax}`);
      for (let i = 0; i < ops.length; i++) validateOp(ops[i]!, `ops[${i}]`, limits);
      return;
    }
    default:
      fail(`unknown command type ${JSON.stringify(String(type))}`);
  }
}

/** Entry-level bounds: command count, total ops, registers (bounded by the session id scheme). */
export function validateEntry(payload: EntryPayload, limits: ShardLimits = DEFAULT_SHARD_LIMITS): void {
  checkSafeInteger("entry timestampMs", payload.timestampMs, 0);
  if (!Array.isArray(payload.commands)) fail("entry commands must be an array");
  const count = payload.commands.length;
  if (count > limits.entryCommandsMax) fail(`entry has ${count} commands; max ${limits.entryCommandsMax}`);
  let ops = 0;
  let registers = 0;
  for (let i = 0; i < count; i++) {
    const command = payload.commands[i]!;
    try {
      validateCommand(command, limits);
    } catch (error) {
      if (error instanceof InvalidArgumentError) fail(`commands[${i}]: ${error.message}`);
      throw error;
    }
    ops += commandOpCount(command);
    if (command.type === "register") registers++;
  }
  if (ops > limits.entryOpsMax) fail(`entry has ${ops} ops; max ${limits.entryOpsMax}`);
  if (registers > SESSION_IDS_PER_ENTRY) fail(`entry has ${registers} registers; max ${SESSION_IDS_PER_ENTRY}`);
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
}

const enum WireOp {
  Add = 0,
  Set = 1,
  Reset = 2,
  Cas = 3,
}

function opToWire(op: CounterOp): unknown[] {
  switch (op.kind) {
    case "add":
      return op.floor === undefined
        ? [WireOp.Add, op.key, compactBigint(op.delta)]
        : [WireOp.Add, op.key, compactBigint(op.delta), compactBigint(op.floor)];
    case "set":
      return [WireOp.Set, op.key, compactBigint(op.value)];
    case "reset":
      return [WireOp.Reset, op.key];
    case "cas":
      return [WireOp.Cas, op.key, op.expectedVersion, compactBigint(op.value)];
    default:
      return unreachable(op);
  }
}

function commandToWire(command: Command): unknown[] {
  switch (command.type) {
    case "register":
      return [WireCommand.Register];
    case "keepalive":
      return [WireCommand.Keepalive, command.clientId];
    case "mutate":
      return [WireCommand.Mutate, command.clientId, command.seq, command.firstUnackedSeq, command.ops.map(opToWire)];
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
  const timestampMs = wireNumber("entry timestampMs", wire[0]);
  const wireCommands: unknown = wire[1];
  if (!Array.isArray(wireCommands)) fail("entry commands must be an array");
  const commands: Command[] = new Array(wireCommands.length);
  for (let i = 0; i < wireCommands.length; i++) commands[i] = commandFromWire(wireCommands[i], `commands[${i}]`);
  return { timestampMs, commands };
}

/** Strict decode: shape, then every bound of validateEntry. Throws InvalidArgumentError. */
export function decodeEntry(data: Uint8Array, limits: ShardLimits = DEFAULT_SHARD_LIMITS): EntryPayload {
  const payload = decodeEntryShape(data);
  validateEntry(payload, limits);
  return payload;
}

/** A JS-number field: a msgpack int that decoded as number or bigint. Unsafe values stay unsafe. */
function wireNumber(what: string, value: unknown): number {
  if (typeof value === "number") {
    if (!Number.isInteger(value)) fail(`${what} must be an integer, got ${value}`);
    return value;
  }
  if (typeof value === "bigint") {
    // An unsafe value becomes an unsafe number, which validateCommand then rejects by name.
    return value >= SAFE_MIN && value <= SAFE_MAX ? Number(value) : Number.MAX_SAFE_INTEGER + 2;
  }
  return fail(`${what} must be an integer, got ${typeof value}`);
}

function wireBigint(what: string, value: unknown): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  return fail(`${what} must be an integer, got ${typeof value === "number" ? value : typeof value}`);
}

function wireKey(what: string, value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) fail(`${what} must be binary`);
  return value;
}

function wireArity(what: string, wire: unknown[], ...allowed: number[]): void {
  if (!allowed.includes(wire.length)) fail(`${what} has ${wire.length} fields; expected ${allowed.join(" or ")}`);
}

function commandFromWire(wire: unknown, where: string): Command {
  if (!Array.isArray(wire) || wire.length === 0) fail(`${where} must be a non-empty array`);
  const tag: unknown = wire[0];
  switch (tag) {
    case WireCommand.Register:
      wireArity(`${where} (register)`, wire, 1);
      return { type: "register" };
    case WireCommand.Keepalive:
      wireArity(`${where} (keepalive)`, wire, 2);
      return { type: "keepalive", clientId: wireNumber(`${where} clientId`, wire[1]) };
    case WireCommand.Mutate: {
      wireArity(`${where} (mutate)`, wire, 5);
      const wireOps: unknown = wire[4];
      if (!Array.isArray(wireOps)) fail(`${where} ops must be an array`);
      const ops: CounterOp[] = new Array(wireOps.length);
      for (let i = 0; i < wireOps.length; i++) ops[i] = opFromWire(wireOps[i], `${where} ops[${i}]`);
      return {
        type: "mutate",
        clientId: wireNumber(`${where} clientId`, wire[1]),
        seq: wireNumber(`${where} seq`, wire[2]),
        firstUnackedSeq: wireNumber(`${where} firstUnackedSeq`, wire[3]),
        ops,
      };
    }
    default:
      return fail(`${where} has unknown command tag ${String(tag)}`);
  }
}

function opFromWire(wire: unknown, where: string): CounterOp {
  if (!Array.isArray(wire) || wire.length === 0) fail(`${where} must be a non-empty array`);
  const tag: unknown = wire[0];
  switch (tag) {
    case WireOp.Add: {
      wireArity(`${where} (add)`, wire, 3, 4);
      const op: CounterOp = { kind: "add", key: wireKey(`${where} key`, wire[1]), delta: wireBigint(`${where} delta`, wire[2]) };
      if (wire.length === 4) op.floor = wireBigint(`${where} floor`, wire[3]);
      return op;
    }
    case WireOp.Set:
      wireArity(`${where} (set)`, wire, 3);
      return { kind: "set", key: wireKey(`${where} key`, wire[1]), value: wireBigint(`${where} value`, wire[2]) };
    case WireOp.Reset:
      wireArity(`${where} (reset)`, wire, 2);
      return { kind: "reset", key: wireKey(`${where} key`, wire[1]) };
    case WireOp.Cas:
      wireArity(`${where} (cas)`, wire, 4);
      return {
        kind: "cas",
        key: wireKey(`${where} key`, wire[1]),
        expectedVersion: wireNumber(`${where} expectedVersion`, wire[2]),
        value: wireBigint(`${where} value`, wire[3]),
      };
    default:
      return fail(`${where} has unknown op tag ${String(tag)}`);
  }
}
