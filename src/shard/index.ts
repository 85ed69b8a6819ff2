/** The shard's public surface: what the server uses. */
export {
  commandOpCount,
  decodeEntry,
  decodeEntryShape,
  DEFAULT_SHARD_LIMITS,
  encodeEntry,
  SESSION_IDS_PER_ENTRY,
  sessionClientId,
  sessionEntryIndex,
  validateCommand,
  validateEntry,
  type Command,
  type CommandFailure,
  type CommandResult,
  type CounterOp,
  type EntryPayload,
  type OpResult,
  type ShardLimits,
} from "./commands.js";
export { COUNTERS_MAX } from "./counter-table.js";
export { describeKey } from "./keys.js";
export {
  CounterStateMachine,
  encodeShardImage,
  SHARD_IMAGE_MAGIC,
  validateShardOptions,
  type ShardImage,
  type ShardOptions,
} from "./state-machine.js";
