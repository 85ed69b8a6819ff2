/**
 * The log-entry encoding of the shard's commands (command-types.ts).
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
import { InvalidArgumentError } from "../util/errors.js";
import { encodePackedAdds, type PackedAdd } from "../util/packed-adds.js";
import { attachPackedOps, checkPackedStructure } from "./packed-ops.js";
import {
  type Command,
  type CounterOp,
  DEFAULT_SHARD_LIMITS,
  type EntryPayload,
  type MutatingCommand,
  type ShardLimits,
} from "./command-types.js";
import { fail, validateEntry } from "./command-validation.js";

// useRecords false: plain msgpack, no shared structure state between calls, so the same payload
// always encodes to the same bytes. int64AsType: every 64-bit msgpack int decodes as bigint.
const packr = new Packr({ useRecords: false, int64AsType: "bigint", moreTypes: false, mapsAsObjects: true });

const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
/** A decoded command's ops before attachOps sets them. */
const NO_OPS: CounterOp[] = [];
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
      const write: MutatingCommand = { type: "write", requestId: wireString(wire[1], commandIndex, "requestId"), ops: NO_OPS };
      attachOps(write, wire[2], commandIndex);
      const epoch = wireNumber(wire[3], commandIndex, -1, "epoch");
      if (epoch !== 0) write.epoch = epoch;
      const owner = wireString(wire[4], commandIndex, "owner");
      if (owner !== "") write.owner = owner;
      return write;
    }
    case WireCommand.Mutate: {
      checkArity(wire, 5, 7, commandIndex, -1, "mutate");
      const mutate: MutatingCommand = {
        type: "mutate",
        clientId: wireNumber(wire[1], commandIndex, -1, "clientId"),
        seq: wireNumber(wire[2], commandIndex, -1, "seq"),
        firstUnackedSeq: wireNumber(wire[3], commandIndex, -1, "firstUnackedSeq"),
        ops: NO_OPS,
      };
      attachOps(mutate, wire[4], commandIndex);
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

/**
 * A mutating command's ops: a msgpack array of ops, or packed adds (binary), which the command
 * keeps as bytes (packed-ops.ts). Structure is checked here; bounds (op count, key size) are
 * validateCommand's.
 */
function attachOps(command: MutatingCommand, wireOps: unknown, commandIndex: number): void {
  if (wireOps instanceof Uint8Array) {
    // Over a plain Uint8Array view, whatever msgpackr returned (a Node Buffer): keys read from it
    // are then TypedArray subarrays, about 30 ns cheaper per op than Buffer.prototype.subarray, on
    // every replica. The shard's code reads keys as Uint8Array only.
    const bytes = new Uint8Array(wireOps.buffer, wireOps.byteOffset, wireOps.byteLength);
    try {
      checkPackedStructure(bytes);
    } catch (error) {
      if (error instanceof InvalidArgumentError) fail(`commands[${commandIndex}] packed ops: ${error.message}`);
      throw error;
    }
    attachPackedOps(command, bytes);
    return;
  }
  if (!Array.isArray(wireOps)) fail(`commands[${commandIndex}] ops must be an array or packed adds`);
  const ops: CounterOp[] = new Array(wireOps.length);
  for (let i = 0; i < wireOps.length; i++) ops[i] = opFromWire(wireOps[i], commandIndex, i);
  command.ops = ops;
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
