/**
 * A mutation built from a caller's arguments (makeOp, parseBatchOp: every field checked) and as
 * it travels: one op alone as its own request kind, several as one BatchRequest, plain adds
 * packed. Pure: same input, same request.
 */
import { encodePackedAddsField } from "../api/packed-batch.js";
import type { BatchOpInput, PipelineOpInputs, PipelineOpName, RequestHeaderInput } from "../api/proto.js";
import { slotOf } from "../meta/slots.js";
import { assert } from "../util/assert.js";
import { InvalidArgumentError } from "../util/errors.js";
import type { MutationKind } from "./errors.js";
import type { MutationOp, UnitEntry } from "./mutation-unit.js";
import type { BatchOp } from "./types.js";
import { encodeKey, int64Wire, toInt64, toUint64, type Key } from "./values.js";

export type KindFields = Partial<Pick<MutationOp, "ttlMs" | "eventTimeMs" | "n" | "limit" | "windowMs" | "items">>;

export function optionalUint64(value: unknown, what: string): bigint {
  return value === undefined ? 0n : toUint64(value, what);
}

/** The caller's key as given, for messages. */
export function describeKey(key: Key): string {
  return typeof key === "string" ? JSON.stringify(key) : `0x${Buffer.from(key).toString("hex")}`;
}

/** Checks and encodes one mutation's key and fields (the checks throw InvalidArgumentError). */
export function makeOp(
  kind: MutationKind,
  keyInput: Key,
  fields: { delta?: bigint; floor?: bigint | undefined; value?: bigint; expectedVersion?: bigint } & KindFields,
): MutationOp {
  const key = encodeKey(keyInput);
  return {
    kind,
    keyInput,
    key,
    slot: slotOf(key),
    delta: fields.delta ?? 0n,
    floor: fields.floor,
    value: fields.value ?? 0n,
    expectedVersion: fields.expectedVersion ?? 0n,
    ttlMs: fields.ttlMs ?? 0n,
    eventTimeMs: fields.eventTimeMs ?? 0n,
    n: fields.n ?? 0n,
    limit: fields.limit ?? 0n,
    windowMs: fields.windowMs ?? 0n,
    items: fields.items ?? NO_ITEMS,
  };
}

/** The items of every op but a uniqueAdd: one shared empty array, not one per op (never written). */
const NO_ITEMS: Buffer[] = [];

/** One addBatch op, checked; a bad field's error names the op's index. */
export function parseBatchOp(op: BatchOp, index: number): MutationOp {
  if (op === null || typeof op !== "object") throw new InvalidArgumentError(`ops[${index}] must be an object`);
  try {
    switch (op.op) {
      case undefined:
      case "add":
        return makeOp("add", op.key, {
          delta: toInt64(op.delta ?? 1n, "delta"),
          floor: op.floor === undefined ? undefined : toInt64(op.floor, "floor"),
        });
      case "windowAdd":
        return makeOp("windowAdd", op.key, {
          delta: toInt64(op.delta ?? 1n, "delta"),
          eventTimeMs: optionalUint64(op.eventTimeMs, "eventTimeMs"),
          ttlMs: optionalUint64(op.ttlMs, "ttlMs"),
        });
      case "tryAcquire":
        return makeOp("tryAcquire", op.key, {
          n: toUint64(op.n, "n"),
          limit: toUint64(op.limit, "limit"),
          windowMs: toUint64(op.windowMs, "windowMs"),
        });
      case "uniqueAdd":
        return makeOp("uniqueAdd", op.key, { items: itemsOf(op.items), ttlMs: optionalUint64(op.ttlMs, "ttlMs") });
      case "set":
        return makeOp("set", op.key, { value: toInt64(op.value, "value") });
      case "reset":
        return makeOp("reset", op.key, {});
      case "compareAndSet":
        return makeOp("compareAndSet", op.key, {
          expectedVersion: toUint64(op.expectedVersion, "expectedVersion"),
          value: toInt64(op.value, "value"),
        });
      default:
        throw new InvalidArgumentError(`unknown op ${JSON.stringify((op as { op: unknown }).op)}`);
    }
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw new InvalidArgumentError(`ops[${index}]: ${error.message}`);
    throw error;
  }
}

function batchOpMessage(op: MutationOp): BatchOpInput {
  switch (op.kind) {
    case "add":
      return {
        add: {
          key: op.key,
          delta: int64Wire(op.delta),
          hasFloor: op.floor !== undefined,
          floor: int64Wire(op.floor ?? 0n),
          ttlMs: int64Wire(op.ttlMs),
        },
      };
    case "set":
      return { set: { key: op.key, value: int64Wire(op.value), ttlMs: int64Wire(op.ttlMs) } };
    case "reset":
      return { reset: { key: op.key } };
    case "compareAndSet":
      return { compareAndSet: { key: op.key, expectedVersion: int64Wire(op.expectedVersion), value: int64Wire(op.value) } };
    case "windowAdd":
      return { windowAdd: { key: op.key, delta: int64Wire(op.delta), eventTimeMs: int64Wire(op.eventTimeMs), ttlMs: int64Wire(op.ttlMs) } };
    case "tryAcquire":
      return { tryAcquire: { key: op.key, n: int64Wire(op.n), limit: int64Wire(op.limit), windowMs: int64Wire(op.windowMs) } };
    case "uniqueAdd":
      return { uniqueAdd: { key: op.key, items: op.items, ttlMs: int64Wire(op.ttlMs) } };
  }
}

export function itemsOf(items: Key[]): Buffer[] {
  if (!Array.isArray(items) || items.length === 0) throw new InvalidArgumentError("items must be a non-empty array");
  return items.map((item, i) => {
    if (typeof item === "string") return Buffer.from(item, "utf8");
    if (item instanceof Uint8Array) return Buffer.from(item.buffer, item.byteOffset, item.byteLength);
    throw new InvalidArgumentError(`items[${i}] must be a string or bytes`);
  });
}

/** One op travels as its own request kind; several as a BatchRequest. Same input, same request. */
export function buildMutationRequest(entries: UnitEntry[], header: RequestHeaderInput): [PipelineOpName, PipelineOpInputs[PipelineOpName]] {
  // A group of packed adds (addBatch) is its request's packed_adds as it is.
  const group = entries.length === 1 ? entries[0]!.waiter.group : undefined;
  if (group !== undefined) return ["batch", { header, ops: [], packedAdds: group.bytes }];
  // Plain adds (no floor, no TTL) travel packed: one bytes field instead of a message per op.
  const adds = entries.length > 1 ? plainAdds(entries) : undefined;
  if (adds !== undefined) return ["batch", { header, ops: [], packedAdds: encodePackedAddsField(adds) }];
  // The kinds' ops exist only as BatchOps: one of them alone is a batch of one.
  if (entries.length > 1 || !SINGLE_REQUEST_KINDS.has(entries[0]!.op.kind)) {
    return ["batch", { header, ops: entries.map((entry) => batchOpMessage(entry.op)) }];
  }
  // A single op's request is its batch op's message with the header: one encoding of each op.
  const kind = entries[0]!.op.kind as SingleRequestKind;
  const body = batchOpMessage(entries[0]!.op)[kind];
  assert(body !== undefined, `${kind} travels as a batch op`);
  return [kind, { header, ...body } as PipelineOpInputs[SingleRequestKind]];
}

/** The entries' ops if every one is a plain add (no floor, no TTL), in one pass. */
function plainAdds(entries: UnitEntry[]): MutationOp[] | undefined {
  const ops: MutationOp[] = new Array(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const op = entries[i]!.op;
    if (op.kind !== "add" || op.floor !== undefined || op.ttlMs !== 0n) return undefined;
    ops[i] = op;
  }
  return ops;
}

type SingleRequestKind = "add" | "set" | "reset" | "compareAndSet";
const SINGLE_REQUEST_KINDS: ReadonlySet<MutationKind> = new Set<SingleRequestKind>(["add", "set", "reset", "compareAndSet"]);
