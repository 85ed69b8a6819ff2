/**
 * AdminService.ForwardWrite's messages (proto/tally.proto ForwardWriteRequest / ForwardWriteResponse)
 * and the write command and outcome they carry, both ways. The entry node encodes the write it
 * validated and the leader decodes and validates it again with the protocol bounds, as it would a
 * client's: a forwarded write is never trusted to be well formed. The ops travel as the client sent
 * them: BatchOps, or packed_adds (then the results come back as packed_results).
 */
import { decodePackedAdds, decodePackedResults, encodePackedResults } from "../../api/packed-batch.js";
import type {
  BatchOpInput,
  ForwardWriteRequestInput,
  ForwardWriteRequestMessage,
  ForwardWriteResponseInput,
  ForwardWriteResponseMessage,
  OpResultMessage,
  WriteFailureInput,
  WriteFailureMessage,
} from "../../api/proto.js";
import {
  type Command,
  type CommandFailure,
  type CounterOp,
  DEFAULT_SHARD_LIMITS,
  type OpResult,
  validateCommand,
} from "../../shard/commands.js";
import { type ErrorCode, InvalidArgumentError, TallyError } from "../../util/errors.js";
import type { MutationOutcome } from "../node.js";
import { batchOp, fence, int64Wire, opResultMessage, u32, u64 } from "./fields.js";

export type WriteCommand = Extract<Command, { type: "write" }>;

/** A forwarded write as the leader serves it. */
export interface ForwardedWrite {
  shardId: number;
  epoch: number;
  timeoutMs: number;
  command: WriteCommand;
}

// ---- the entry node's side ----

/** The request that forwards `command` (validated by the entry node) to the leader of `shardId`. */
export function forwardWriteRequest(command: WriteCommand, shardId: number, timeoutMs: number): ForwardWriteRequestInput {
  const request: ForwardWriteRequestInput = {
    shardId,
    epoch: command.epoch ?? 0,
    timeoutMs,
    requestId: command.requestId,
    owner: command.owner ?? "",
  };
  if (command.packedAdds !== undefined) request.packedAdds = command.packedAdds;
  else request.ops = command.ops.map(batchOpInput);
  return request;
}

/** One op as the BatchOp a client would have sent for it (fields.ts batchOp is the inverse). */
export function batchOpInput(op: CounterOp): BatchOpInput {
  switch (op.kind) {
    case "add":
      return {
        add: {
          key: op.key,
          delta: int64Wire(op.delta),
          hasFloor: op.floor !== undefined,
          floor: int64Wire(op.floor ?? 0n),
          ttlMs: op.ttlMs ?? 0,
        },
      };
    case "set":
      return { set: { key: op.key, value: int64Wire(op.value), ttlMs: op.ttlMs ?? 0 } };
    case "reset":
      return { reset: { key: op.key } };
    case "cas":
      return { compareAndSet: { key: op.key, expectedVersion: op.expectedVersion, value: int64Wire(op.value) } };
    case "window":
      return { windowAdd: { key: op.key, delta: int64Wire(op.delta), eventTimeMs: op.eventTimeMs ?? 0, ttlMs: op.ttlMs ?? 0 } };
    case "acquire":
      return { tryAcquire: { key: op.key, n: op.n, limit: op.limit, windowMs: op.windowMs } };
    case "unique":
      return { uniqueAdd: { key: op.key, items: op.items, ttlMs: op.ttlMs ?? 0 } };
  }
}

/** The leader's answer to `command`, as the outcome the entry node relays. */
export function forwardedOutcome(response: ForwardWriteResponseMessage, command: WriteCommand, leaderId: number): MutationOutcome {
  const term = Number(response.fence?.term ?? 0);
  const index = Number(response.fence?.index ?? 0);
  if (response.failure !== null) return { result: commandFailureOf(response.failure), term, index };
  let results: OpResult[];
  try {
    if (response.packedResults.length > 0) results = decodePackedResults(response.packedResults, command.ops.length);
    else results = response.results.map(opResultOf);
  } catch (error) {
    throw new TallyError("INTERNAL", `node ${leaderId} answered a forwarded write with malformed results: ${(error as Error).message}`);
  }
  if (results.length !== command.ops.length)
    throw new TallyError(
      "INTERNAL",
      `node ${leaderId} answered a forwarded write of ${command.ops.length} ops with ${results.length} results`,
    );
  return { result: { ok: true, type: "mutate", results, duplicate: false }, term, index };
}

function opResultOf(message: OpResultMessage): OpResult {
  const result: OpResult = { value: BigInt(message.value), version: Number(message.version) };
  if (message.eventTimeMs !== "0") result.eventTimeMs = Number(message.eventTimeMs);
  if (message.hasAcquire) {
    result.allowed = message.allowed;
    result.retryAfterMs = Number(message.retryAfterMs);
  }
  return result;
}

function commandFailureOf(message: WriteFailureMessage): CommandFailure {
  const failure: CommandFailure = { ok: false, code: message.code as ErrorCode, message: message.message };
  if (message.hasOpIndex) failure.opIndex = message.opIndex;
  if (message.currentVersion !== "0") failure.currentVersion = Number(message.currentVersion);
  if (message.currentEpoch !== "0") failure.currentEpoch = Number(message.currentEpoch);
  if (message.hasRetryAfterMs) failure.retryAfterMs = Number(message.retryAfterMs);
  if (message.duplicate) failure.duplicate = true;
  return failure;
}

// ---- the leader's side ----

/**
 * The forwarded write in `request`, checked like a client's write (the protocol bounds; nothing
 * about it is taken on trust). `trustOwner`: the cluster authenticates its nodes, so the owner the
 * request names is a verified name; otherwise it is dropped (every caller is anonymous).
 */
export function forwardedWrite(request: ForwardWriteRequestMessage, trustOwner: boolean): ForwardedWrite {
  const shardId = u32(request.shardId, "shard_id");
  const epoch = u64(request.epoch, "epoch");
  const timeoutMs = u32(request.timeoutMs, "timeout_ms");
  // An older node's msgpack body (field 1, reserved) decodes as an empty request: refused, never misread.
  if (shardId < 1 || timeoutMs < 1)
    throw new InvalidArgumentError("forwarded write: shard_id and timeout_ms are required (does the entry node run an older version?)");
  const packed = request.packedAdds;
  let ops: CounterOp[];
  if (packed.length > 0) {
    if (request.ops.length > 0) throw new InvalidArgumentError("forwarded write: give ops or packed_adds, not both");
    ops = decodePackedAdds(packed, DEFAULT_SHARD_LIMITS);
  } else {
    if (request.ops.length === 0) throw new InvalidArgumentError("forwarded write: at least one op is required");
    if (request.ops.length > DEFAULT_SHARD_LIMITS.maxOps)
      throw new InvalidArgumentError(`forwarded write: ${request.ops.length} ops exceed ${DEFAULT_SHARD_LIMITS.maxOps}`);
    ops = request.ops.map((op, i) => batchOp(op, i));
  }
  const command: WriteCommand = { type: "write", requestId: request.requestId, ops };
  if (epoch !== 0) command.epoch = epoch;
  if (trustOwner && request.owner !== "") command.owner = request.owner;
  if (packed.length > 0) command.packedAdds = packed;
  validateCommand(command);
  return { shardId, epoch, timeoutMs, command };
}

/** The leader's reply: the outcome of the write it submitted (results in the request's form). */
export function forwardWriteResponse(outcome: MutationOutcome, packed: boolean): ForwardWriteResponseInput {
  const reply: ForwardWriteResponseInput = { fence: fence(outcome.term, outcome.index) };
  const result = outcome.result;
  if (!result.ok) reply.failure = writeFailureInput(result);
  else if (result.type !== "mutate") throw new TallyError("INTERNAL", `unexpected result type ${result.type}`);
  else if (packed) reply.packedResults = encodePackedResults(result.results);
  else reply.results = result.results.map(opResultMessage);
  return reply;
}

function writeFailureInput(failure: CommandFailure): WriteFailureInput {
  const message: WriteFailureInput = { code: failure.code, message: failure.message };
  if (failure.opIndex !== undefined) Object.assign(message, { hasOpIndex: true, opIndex: failure.opIndex });
  if (failure.currentVersion !== undefined) message.currentVersion = failure.currentVersion;
  if (failure.currentEpoch !== undefined) message.currentEpoch = failure.currentEpoch;
  if (failure.retryAfterMs !== undefined) Object.assign(message, { hasRetryAfterMs: true, retryAfterMs: failure.retryAfterMs });
  if (failure.duplicate === true) message.duplicate = true;
  return message;
}
