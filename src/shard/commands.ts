/**
 * The shard's replicated commands and their log-entry encoding, in one import:
 *   - command-types.ts       the ops, commands, entries and results; the protocol bounds; session ids
 *   - command-validation.ts  validateCommand / validateEntry: every bound, checked on every replica
 *   - request-digest.ts      the digest of a mutate's ops kept with its retained outcome
 *   - entry-codec.ts         encodeEntry / decodeEntry: the msgpack wire form of an entry
 */
export {
  commandOpCount,
  DEFAULT_SHARD_LIMITS,
  OWNER_BYTES_MAX,
  REQUEST_ID_CHARS_MAX,
  SESSION_IDS_PER_ENTRY,
  sessionClientId,
  sessionEntryIndex,
  TTL_MS_MAX,
  UNIQUE_ITEMS_MAX,
  type Command,
  type CommandFailure,
  type CommandResult,
  type CounterOp,
  type EntryPayload,
  type MutatingCommand,
  type OpResult,
  type ShardLimits,
} from "./command-types.js";
export { requestIdProblem, validateCommand, validateEntry } from "./command-validation.js";
export { requestDigest } from "./request-digest.js";
export { decodeEntry, decodeEntryShape, encodeEntry } from "./entry-codec.js";
