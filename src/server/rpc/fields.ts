/**
 * Request field decoders and reply encoders shared by the services. Every decoder names the field
 * at fault in its INVALID_ARGUMENT message (`ops[3].delta`, `keys[0]`), so a client learns what to
 * fix. Fields arrive as proto-loader decodes them (src/api/proto.ts: 64-bit integers as decimal
 * strings, bytes as Buffers); replies send int64 values as numbers when they are safe integers.
 */
import { type CounterOp, type OpResult, TTL_MS_MAX, UNIQUE_ITEMS_MAX } from "../../shard/commands.js";
import { WINDOW_MS_MAX } from "../../shard/kinds/ratelimit.js";
import { DEFAULT_WINDOW_OPTIONS, rangePlan, type WindowAggregate } from "../../shard/kinds/windows.js";
import type { TimeRange } from "../../shard/state-machine.js";
import type {
  AddOpMessage,
  BatchOpMessage,
  CompareAndSetOpMessage,
  FenceInput,
  OpResultInput,
  SetOpMessage,
  TryAcquireOpMessage,
  UniqueAddOpMessage,
  WindowAddOpMessage,
} from "../../api/proto.js";
import { InvalidArgumentError } from "../../util/errors.js";
import { INT64_MAX, INT64_MIN } from "../../util/int64.js";
import type { Consistency } from "../node.js";

/**
 * The name of a field in errors: `field` alone, or `ops[opIndex].field` inside a batch. Built only
 * when an error is thrown, so a 10,000-op batch makes no name strings on the success path.
 */
export function fieldName(field: string, opIndex: number): string {
  return opIndex < 0 ? field : `ops[${opIndex}].${field}`;
}

export function key(raw: unknown, field: string, opIndex = -1): Uint8Array {
  if (!(raw instanceof Uint8Array)) throw new InvalidArgumentError(`${fieldName(field, opIndex)}: bytes are required`);
  if (raw.length === 0) throw new InvalidArgumentError(`${fieldName(field, opIndex)}: keys must be 1 to 256 bytes, got an empty key`);
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
}

export function i64(raw: unknown, field: string, opIndex = -1): bigint {
  if (raw === undefined || raw === null || raw === "") return 0n;
  let value: bigint;
  try {
    value = BigInt(raw as string);
  } catch {
    throw new InvalidArgumentError(`${fieldName(field, opIndex)}: not an integer: ${JSON.stringify(raw)}`);
  }
  if (value < INT64_MIN || value > INT64_MAX)
    throw new InvalidArgumentError(`${fieldName(field, opIndex)}: ${value} is outside the signed 64-bit range`);
  return value;
}

export function u64(raw: unknown, field: string, opIndex = -1): number {
  if (raw === undefined || raw === null || raw === "") return 0;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`${fieldName(field, opIndex)}: ${JSON.stringify(raw)} is not a valid unsigned integer below 2^53`);
  }
  return value;
}

export function u32(raw: unknown, field: string): number {
  const value = u64(raw, field);
  if (value > 0xffffffff) throw new InvalidArgumentError(`${field}: ${value} does not fit 32 bits`);
  return value;
}

export function addOp(raw: AddOpMessage, opIndex: number): CounterOp {
  const op: CounterOp = { kind: "add", key: key(raw.key, "key", opIndex), delta: i64(raw.delta, "delta", opIndex) };
  if (raw.hasFloor) op.floor = i64(raw.floor, "floor", opIndex);
  const ttlMs = ttlOf(raw.ttlMs, opIndex);
  if (ttlMs !== undefined) op.ttlMs = ttlMs;
  return op;
}

export function setOp(raw: SetOpMessage, opIndex: number): CounterOp {
  const op: CounterOp = { kind: "set", key: key(raw.key, "key", opIndex), value: i64(raw.value, "value", opIndex) };
  const ttlMs = ttlOf(raw.ttlMs, opIndex);
  if (ttlMs !== undefined) op.ttlMs = ttlMs;
  return op;
}

/** ttl_ms 0 (the proto default) = no change to the key's expiry. */
export function ttlOf(raw: unknown, opIndex: number): number | undefined {
  const ttlMs = u64(raw, "ttl_ms", opIndex);
  if (ttlMs > TTL_MS_MAX) throw new InvalidArgumentError(`${fieldName("ttl_ms", opIndex)}: ${ttlMs} exceeds ${TTL_MS_MAX} (ten years)`);
  return ttlMs === 0 ? undefined : ttlMs;
}

export function windowAddOp(raw: WindowAddOpMessage, opIndex: number): CounterOp {
  const op: CounterOp = { kind: "window", key: key(raw.key, "key", opIndex), delta: i64(raw.delta, "delta", opIndex) };
  const eventTimeMs = u64(raw.eventTimeMs, "event_time_ms", opIndex);
  if (eventTimeMs !== 0) op.eventTimeMs = eventTimeMs;
  const ttlMs = ttlOf(raw.ttlMs, opIndex);
  if (ttlMs !== undefined) op.ttlMs = ttlMs;
  return op;
}

export function tryAcquireOp(raw: TryAcquireOpMessage, opIndex: number): CounterOp {
  const op: CounterOp = {
    kind: "acquire",
    key: key(raw.key, "key", opIndex),
    n: u64(raw.n, "n", opIndex),
    limit: u64(raw.limit, "limit", opIndex),
    windowMs: u64(raw.windowMs, "window_ms", opIndex),
  };
  if (op.limit < 1) throw new InvalidArgumentError(`${fieldName("limit", opIndex)}: must be >= 1`);
  if (op.windowMs < 1 || op.windowMs > WINDOW_MS_MAX)
    throw new InvalidArgumentError(`${fieldName("window_ms", opIndex)}: must be 1..${WINDOW_MS_MAX}, got ${op.windowMs}`);
  if (op.n > op.limit)
    throw new InvalidArgumentError(`${fieldName("n", opIndex)}: ${op.n} exceeds limit ${op.limit}; it could never be granted`);
  return op;
}

export function uniqueAddOp(raw: UniqueAddOpMessage, opIndex: number): CounterOp {
  const items: unknown[] = Array.isArray(raw.items) ? raw.items : [];
  if (items.length === 0) throw new InvalidArgumentError(`${fieldName("items", opIndex)}: at least one item is required`);
  if (items.length > UNIQUE_ITEMS_MAX)
    throw new InvalidArgumentError(`${fieldName("items", opIndex)}: ${items.length} items exceed ${UNIQUE_ITEMS_MAX}`);
  const op: CounterOp = {
    kind: "unique",
    key: key(raw.key, "key", opIndex),
    items: items.map((item, i) => {
      if (!(item instanceof Uint8Array)) throw new InvalidArgumentError(`${fieldName(`items[${i}]`, opIndex)}: bytes are required`);
      return new Uint8Array(item.buffer, item.byteOffset, item.byteLength);
    }),
  };
  const ttlMs = ttlOf(raw.ttlMs, opIndex);
  if (ttlMs !== undefined) op.ttlMs = ttlMs;
  return op;
}

export function windowAggregateOf(raw: unknown): WindowAggregate {
  if (raw === undefined || raw === null || raw === "") return "sum";
  if (raw === "sum" || raw === "count" || raw === "min" || raw === "max" || raw === "avg") return raw;
  throw new InvalidArgumentError(`agg: must be sum, count, min, max or avg, got ${JSON.stringify(raw)}`);
}

export function batchOp(raw: BatchOpMessage | undefined, i: number): CounterOp {
  switch (raw?.op) {
    case "add":
      return addOp(raw.add!, i);
    case "set":
      return setOp(raw.set!, i);
    case "windowAdd":
      return windowAddOp(raw.windowAdd!, i);
    case "tryAcquire":
      return tryAcquireOp(raw.tryAcquire!, i);
    case "uniqueAdd":
      return uniqueAddOp(raw.uniqueAdd!, i);
    case "reset":
      return { kind: "reset", key: key(raw.reset!.key, "key", i) };
    case "compareAndSet":
      return casOp(raw.compareAndSet!, i);
    default:
      throw new InvalidArgumentError(
        `ops[${i}]: no operation set (add, set, reset, compare_and_set, window_add, try_acquire or unique_add)`,
      );
  }
}

export function casOp(raw: CompareAndSetOpMessage, opIndex: number): CounterOp {
  return {
    kind: "cas",
    key: key(raw.key, "key", opIndex),
    expectedVersion: u64(raw.expectedVersion, "expected_version", opIndex),
    value: i64(raw.value, "value", opIndex),
  };
}

export function consistencyOf(raw: unknown): Consistency {
  if (raw === undefined || raw === null || raw === "LINEARIZABLE" || raw === 0) return "linearizable";
  if (raw === "STALE" || raw === 1) return "stale";
  throw new InvalidArgumentError(`consistency: unknown value ${JSON.stringify(raw)}`);
}

/**
 * An int64 for a reply. protobufjs encodes a JS number with exactly the bytes of its decimal
 * string (test/unit/wire-int64.test.ts) but about 3x faster, which matters for 10,000-result
 * replies; a number is exact only as a safe integer, so anything beyond stays a string.
 */
export function int64Wire(value: bigint): number | string {
  return value >= -SAFE_INTEGER_MAX && value <= SAFE_INTEGER_MAX ? Number(value) : value.toString();
}

const SAFE_INTEGER_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** One op's result for a reply (BatchResponse.results, ForwardWriteResponse.results). */
export function opResultMessage(result: OpResult): OpResultInput {
  const reply: OpResultInput = { value: int64Wire(result.value), version: result.version };
  if (result.eventTimeMs !== undefined) reply.eventTimeMs = result.eventTimeMs;
  if (result.allowed !== undefined) {
    reply.hasAcquire = true;
    reply.allowed = result.allowed;
    reply.retryAfterMs = result.retryAfterMs ?? 0;
  }
  return reply;
}

/** Log indexes and terms are safe integers (asserted in raft/), so they go out as numbers. */
export function fence(term: number, index: number): FenceInput {
  return { term, index };
}

/**
 * Top-K / aggregate over windowed counters: the range, or undefined for plain counters. The range
 * is checked here, against the tiers every windowed counter has, never against the counters a
 * shard holds: one step [from, to) that a tier answers as of now + futureMs (a counter's clock is
 * the leader time of its last write, at most that), so every shard answers the same request alike.
 */
export function timeRangeOf(request: { windowFromMs?: unknown; windowToMs?: unknown }, nowMs: number): TimeRange | undefined {
  const fromMs = u64(request.windowFromMs, "window_from_ms");
  const toMs = u64(request.windowToMs, "window_to_ms");
  if (toMs === 0) {
    if (fromMs !== 0) throw new InvalidArgumentError("window_to_ms is required with window_from_ms");
    return undefined;
  }
  if (toMs <= fromMs) throw new InvalidArgumentError(`window_to_ms: ${toMs} must be above window_from_ms ${fromMs}`);
  try {
    rangePlan(DEFAULT_WINDOW_OPTIONS, fromMs, toMs, toMs - fromMs, nowMs + DEFAULT_WINDOW_OPTIONS.futureMs);
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    throw new InvalidArgumentError(`window_from_ms, window_to_ms: [${fromMs}, ${toMs}) is not one step of a tier: ${error.message}`);
  }
  return { fromMs, toMs };
}

/** A key no longer than limits.maxKeyBytes (reads check it here; writes in validateCommand). */
export function boundedKey(raw: unknown, field: string, maxKeyBytes: number): Uint8Array {
  const k = key(raw, field);
  if (k.length > maxKeyBytes) throw new InvalidArgumentError(`${field}: ${k.length} bytes exceed the limit of ${maxKeyBytes}`);
  return k;
}

/** A key prefix: may be empty (every key), at most limits.maxKeyBytes. */
export function prefixOf(raw: unknown, maxKeyBytes: number): Uint8Array {
  if (raw === undefined || raw === null) return new Uint8Array(0);
  if (!(raw instanceof Uint8Array)) throw new InvalidArgumentError("prefix: bytes are required");
  if (raw.length > maxKeyBytes) throw new InvalidArgumentError(`prefix: ${raw.length} bytes exceed the key limit of ${maxKeyBytes}`);
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
}
