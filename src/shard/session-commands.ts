/**
 * The commands of an entry that go through a session or a request id, applied to a shard's state:
 * register, the sessionless write (request-ids.ts) and the session commands mutate and keepalive
 * (sessions.ts). Each mutation is applied at most once (Raft thesis section 6.3): a retry gets
 * the saved outcome, a reuse with other ops is refused, and the checks run in the order listed
 * in docs/architecture.md ("7. Apply").
 */
import { assert } from "../util/assert.js";
import { InvalidArgumentError, type ErrorCode } from "../util/errors.js";
import {
  requestDigest,
  sessionClientId,
  SESSION_IDS_PER_ENTRY,
  validateCommand,
  type Command,
  type CommandFailure,
  type CommandResult,
  type MutatingCommand,
} from "./commands.js";
import type { Mutation } from "./mutation.js";
import { packedRequestDigest } from "./request-digest.js";
import type { RequestIdRecord } from "./request-ids.js";
import { acknowledgeBelow, decodeOutcome, DIGEST_UNKNOWN, encodeOutcome, newSession, retainedPosition, retainOutcome } from "./sessions.js";
import type { ShardState } from "./shard-state.js";

/** The failure message of a register whose random id is taken; the proposer registers again with another. */
export const SESSION_ID_IN_USE = "session id in use";

/**
 * Decides, deterministically from replicated state only, whether a mutation may apply here; a
 * failure result (WRONG_SHARD) refuses it. Supplied by the replica that owns the shard descriptor.
 */
export type AdmitMutation = (command: MutatingCommand) => CommandFailure | undefined;

/** A command that fails validation, as the INVALID_ARGUMENT result it gets; undefined when valid. */
function invalidCommand(command: Command): CommandResult | undefined {
  try {
    validateCommand(command);
    return undefined;
  } catch (error) {
    if (error instanceof InvalidArgumentError) return failure("INVALID_ARGUMENT", error.message);
    throw error;
  }
}

export class SessionCommands {
  constructor(
    private readonly state: ShardState,
    private readonly mutation: Mutation,
  ) {}

  register(command: Extract<Command, { type: "register" }>, index: number, position: number, ordinal: number): CommandResult {
    const invalid = invalidCommand(command);
    if (invalid !== undefined) return invalid;
    const state = this.state;
    const owner = command.owner ?? "";
    let clientId: number;
    if (command.clientId === undefined) {
      // An entry from before random ids: the id is the entry's index and the register's ordinal.
      if (ordinal >= SESSION_IDS_PER_ENTRY) {
        return failure("OVERLOADED", `too many session registrations in entry ${index}; max ${SESSION_IDS_PER_ENTRY}`);
      }
      clientId = sessionClientId(index, ordinal);
    } else {
      clientId = command.clientId;
    }
    // A random id can meet a live one (2^53 ids): refused, and the proposer registers with another.
    if (state.storageIdInUse(clientId)) return failure("FAILED_PRECONDITION", SESSION_ID_IN_USE);
    const perCaller = state.options.maxSessionsPerCaller;
    if (owner !== "" && state.sessions.countOf(owner) >= perCaller) {
      return failure(
        "OVERLOADED",
        `caller "${owner}" holds ${perCaller} sessions on this shard (the most one caller may); reuse them, or let idle ones expire`,
      );
    }
    // Thesis 6.3 bounds sessions with LRU eviction: the session idle longest goes; its client
    // then sees SESSION_EXPIRED. Deterministic because the LRU order is part of the state. A loop,
    // not an if: state loaded under a larger maxSessions may hold more than the bound.
    while (state.sessions.size >= state.options.maxSessions) {
      const evicted = state.sessions.removeOldest();
      assert(evicted !== undefined, "maxSessions >= 1 but no session to evict");
    }
    state.sessions.insert(newSession(clientId, owner, state.clockMs, index, position));
    assert(state.sessions.size <= state.options.maxSessions, "session table above maxSessions");
    return { ok: true, type: "register", clientId };
  }

  /**
   * A sessionless write (request-ids.ts): the saved outcome when its (owner, requestId) is
   * remembered with the same ops, INVALID_ARGUMENT when with other ops; else the routing check,
   * the table's bounds, then the ops all or none, and the outcome is remembered (a definite
   * failure of the ops too: a retry gets the same answer). Refusals before the ops ran (routing,
   * bounds) are not remembered: nothing applied, so the same id may be sent again.
   */
  applyWrite(
    command: Extract<Command, { type: "write" }>,
    index: number,
    position: number,
    admit: AdmitMutation | undefined,
  ): CommandResult {
    const invalid = invalidCommand(command);
    if (invalid !== undefined) return invalid;
    const state = this.state;
    const owner = command.owner ?? "";
    const digest = commandDigest(command);
    const known = state.requestIds.get(owner, command.requestId);
    if (known !== undefined) {
      if (known.digest !== digest) {
        // Answering with the saved result would tell this caller that a different request applied.
        return failure(
          "INVALID_ARGUMENT",
          `request id ${JSON.stringify(command.requestId)} was used for a different request at index ${known.index}; ` +
            "a retry must resend the same operations (use a new request id for a new request)",
        );
      }
      return decodeOutcome(known.outcome);
    }
    if (admit !== undefined) {
      const refusal = admit(command);
      if (refusal !== undefined) return refusal;
    }
    const full = this.requestIdsFull(owner);
    if (full !== undefined) return full;
    if (state.kinds.size > 0) {
      for (const op of command.ops) if (state.kinds.isDue(op.key, state.clockMs)) state.deleteKey(op.key);
    }
    const outcome = this.mutation.mutateCommand(command, index);
    const storageId = this.freeStorageId(index, position);
    state.requestIds.insert({
      storageId,
      owner,
      requestId: command.requestId,
      appliedAtMs: state.clockMs,
      index,
      ordinal: position,
      digest,
      outcome: encodeOutcome(outcome),
    });
    return outcome;
  }

  /** OVERLOADED (with the wait until an id frees up) when a new id would pass a bound, else undefined. */
  private requestIdsFull(owner: string): CommandFailure | undefined {
    const { requestIdsPerCallerMax, requestIdsMax, requestIdRetentionMs } = this.state.options;
    const requestIds = this.state.requestIds;
    let oldest: RequestIdRecord | undefined;
    let what: string;
    if (owner !== "" && requestIds.countOf(owner) >= requestIdsPerCallerMax) {
      oldest = requestIds.oldest(owner);
      what = `caller "${owner}" holds ${requestIdsPerCallerMax} request ids on this shard (requestIdsPerCallerMax)`;
    } else if (requestIds.size >= requestIdsMax) {
      oldest = requestIds.oldest();
      what = `this shard holds ${requestIdsMax} request ids (requestIdsMax)`;
    } else {
      return undefined;
    }
    assert(oldest !== undefined, "a full request-id table has an oldest id");
    const retryAfterMs = Math.max(1, oldest.appliedAtMs + requestIdRetentionMs - this.state.clockMs + 1);
    return {
      ok: false,
      code: "OVERLOADED",
      message: `${what}, each remembered for ${requestIdRetentionMs} ms; nothing was applied: retry after ${retryAfterMs} ms, or use a session for a higher rate`,
      retryAfterMs,
    };
  }

  /**
   * The storage id of the request id written by command `position` of entry `index`: the id a
   * register of that entry position would get (sessionClientId), or the next free one above it.
   * Deterministic: every replica holds the same sessions and request ids.
   */
  private freeStorageId(index: number, position: number): number {
    let id = index * SESSION_IDS_PER_ENTRY + position;
    while (this.state.storageIdInUse(id)) id++;
    assert(Number.isSafeInteger(id), "request id storage id overflows a safe integer");
    return id;
  }

  /** A session command (mutate, keepalive); the order of its checks is the one in docs/architecture.md. */
  applyCommand(command: Command, index: number, position: number, admit: AdmitMutation | undefined): CommandResult {
    const invalid = invalidCommand(command);
    if (invalid !== undefined) return invalid;
    assert(command.type !== "register" && command.type !== "write", "register and write are handled by applyEntry");
    const state = this.state;
    const session = state.sessions.get(command.clientId);
    if (session === undefined) {
      return failure("SESSION_EXPIRED", `session ${command.clientId} is unknown or expired; register a new one`);
    }
    // Before anything touches the session: another caller may not keep it alive, read its retained
    // results, or advance its acknowledgements.
    if (session.owner !== (command.owner ?? "")) {
      return failure("PERMISSION_DENIED", `session ${command.clientId} belongs to another caller; register a session of your own`);
    }
    state.sessions.touch(session, state.clockMs, index, position);
    if (command.type === "keepalive") return { ok: true, type: "keepalive" };

    // Thesis 6.3: the client's lowest unacknowledged seq lets the state machine forget replies.
    acknowledgeBelow(session, command.firstUnackedSeq);
    if (command.seq < session.firstUnackedSeq) {
      // The outcome is forgotten, so we can neither replay it nor safely apply again. This is a
      // stale duplicate (the client already has the reply): refused, with its own code so a client
      // can tell it from an expired session (which needs a new registration; this one does not).
      return failure(
        "SEQ_ACKNOWLEDGED",
        `seq ${command.seq} of session ${command.clientId} was already acknowledged ` +
          `(results below seq ${session.firstUnackedSeq} are forgotten)`,
      );
    }
    const digest = commandDigest(command);
    const retained = retainedPosition(session, command.seq);
    if (retained >= 0) {
      const was = session.retainedDigests[retained]!;
      if (was !== DIGEST_UNKNOWN && was !== digest) {
        // Answering with the saved result would tell this caller that a different request applied.
        return failure(
          "INVALID_ARGUMENT",
          `seq ${command.seq} of session ${command.clientId} was used for a different request; a retry must resend the same operations (use a new seq for a new request)`,
        );
      }
      return decodeOutcome(session.retainedOutcomes[retained]!);
    }
    // The routing check, at apply time so that it is ordered with the shard's own descriptor
    // changes in the log: a mutation routed by a stale epoch, or naming a key outside the range,
    // changes nothing and is not retained (the client retries the same seq after a refresh).
    if (admit !== undefined) {
      const refusal = admit(command);
      if (refusal !== undefined) return refusal;
    }
    const retainedCount = session.retainedSeqs.length;
    if (retainedCount >= state.options.maxRetainedResultsPerSession) {
      // Not retained: nothing was applied, so a retry of this seq after acknowledgements is safe.
      return failure(
        "OVERLOADED",
        `session ${command.clientId} holds ${retainedCount} unacknowledged results ` +
          `(maxRetainedResultsPerSession ${state.options.maxRetainedResultsPerSession}); ` +
          `advance firstUnackedSeq before sending seq ${command.seq}`,
      );
    }
    if (state.kinds.size > 0) {
      for (const op of command.ops) if (state.kinds.isDue(op.key, state.clockMs)) state.deleteKey(op.key);
    }
    const outcome = this.mutation.mutateCommand(command, index);
    retainOutcome(session, command.seq, digest, encodeOutcome(outcome));
    assert(session.retainedSeqs.length <= state.options.maxRetainedResultsPerSession, "retained results above bound");
    return outcome;
  }
}

/** requestDigest of the command's ops, from its packed bytes when it has them (the same digest). */
function commandDigest(command: MutatingCommand): number {
  return command.packedAdds !== undefined ? packedRequestDigest(command.packedAdds) : requestDigest(command.ops);
}

function failure(code: ErrorCode, message: string): CommandFailure {
  return { ok: false, code, message };
}
