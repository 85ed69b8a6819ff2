/**
 * The shard's replicated commands: the ops a mutate carries, the commands of a Raft entry, their
 * results, and the protocol bounds every replica checks them against. Their validation is in
 * command-validation.ts, their log-entry encoding in entry-codec.ts (commands.ts re-exports all).
 */
import { assert } from "../util/assert.js";
import type { ErrorCode } from "../util/errors.js";

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
       * The ops in packed form (src/util/packed-adds.ts) when the request or the entry carried
       * them so: the entry takes these bytes as they are, and a decoded entry's command keeps them
       * (packed-ops.ts), so the shard applies them without an object per op. Invariant: `ops` is
       * exactly their decoding.
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
  | {
      ok: true;
      type: "mutate";
      results: OpResult[];
      duplicate: boolean;
      /**
       * A mutate of packed adds (mutation.ts mutatePacked): every op's value, each at version
       * `packedVersion`; `results` is made from them when read.
       */
      packedValues?: BigInt64Array;
      packedVersion?: number;
    }
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

/** The entry index that registered a session (for logs and debugging). */
export function sessionEntryIndex(clientId: number): number {
  return Math.floor(clientId / SESSION_IDS_PER_ENTRY);
}

export function commandOpCount(command: Command): number {
  return command.type === "mutate" || command.type === "write" ? command.ops.length : 0;
}
