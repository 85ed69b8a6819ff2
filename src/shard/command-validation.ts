/**
 * Validation of the shard's commands against the protocol bounds (ShardLimits, TTL_MS_MAX, ...).
 * It runs on the proposer before an entry is written and on every replica for every committed
 * entry, so every replica refuses the same commands alike.
 */
import { InvalidArgumentError } from "../util/errors.js";
import { INT64_MAX, INT64_MIN } from "../util/int64.js";
import {
  type Command,
  type CounterOp,
  DEFAULT_SHARD_LIMITS,
  type EntryPayload,
  OWNER_BYTES_MAX,
  REQUEST_ID_CHARS_MAX,
  type ShardLimits,
  TTL_MS_MAX,
  UNIQUE_ITEMS_MAX,
} from "./command-types.js";
import { ITEM_BYTES_MAX } from "../kinds/hll.js";
import { ENTRIES_MAX, WINDOW_MS_MAX } from "./kinds/ratelimit.js";

const REQUEST_ID_PATTERN = /^[\x20-\x7e]+$/;

/** Why `requestId` is not a valid request id, or undefined. */
export function requestIdProblem(requestId: unknown): string | undefined {
  if (typeof requestId !== "string") return `must be a string, got ${typeof requestId}`;
  if (requestId.length < 1 || requestId.length > REQUEST_ID_CHARS_MAX)
    return `must be 1..${REQUEST_ID_CHARS_MAX} characters, got ${requestId.length}`;
  if (!REQUEST_ID_PATTERN.test(requestId)) return "must be printable ASCII (0x20..0x7e)";
  return undefined;
}

/** Throws InvalidArgumentError(message); the decoder (entry-codec.ts) fails the same way. */
export function fail(message: string): never {
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

/**
 * validateOps of packed adds (packed-ops.ts), from the bytes, with the same verdicts and messages:
 * the structure (no truncated op) was checked when they were decoded, so what is left is the
 * bounds. Every add of the packed form is otherwise valid (an int64 delta, no floor, no TTL).
 */
function validatePackedOps(what: string, bytes: Uint8Array, limits: ShardLimits): void {
  let count = 0;
  let badKey = -1;
  let badLength = 0;
  for (let at = 0; at + 1 < bytes.length; count++) {
    const length = (bytes[at]! << 8) | bytes[at + 1]!;
    if (badKey < 0 && (length < 1 || length > limits.maxKeyBytes)) [badKey, badLength] = [count, length];
    at += 2 + length + 8;
  }
  if (count < 1) fail(`${what} has no ops; 1..${limits.maxOps} allowed`);
  if (count > limits.maxOps) fail(`${what} has ${count} ops; max ${limits.maxOps}`);
  if (badKey >= 0) {
    const problem =
      badLength < 1 ? `is empty; keys are 1..${limits.maxKeyBytes} bytes` : `is ${badLength} bytes; max ${limits.maxKeyBytes}`;
    fail(`ops[${badKey}] (add) key ${problem}`);
  }
}

function validateOpsOf(what: string, command: { ops: unknown; packedAdds?: Uint8Array }, limits: ShardLimits): void {
  if (command.packedAdds instanceof Uint8Array) validatePackedOps(what, command.packedAdds, limits);
  else validateOps(what, command.ops, limits);
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
      validateOpsOf("mutate", command, limits);
      return;
    }
    case "write": {
      const problem = requestIdProblem(command.requestId);
      if (problem !== undefined) fail(`write requestId ${problem}`);
      checkOwner("write", command.owner);
      if (command.epoch !== undefined) checkSafeInteger("write epoch", command.epoch, 0);
      validateOpsOf("write", command, limits);
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
