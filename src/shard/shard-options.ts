/**
 * The options of a shard's state machine (state-machine.ts), their validation and their defaults.
 * Every replica of a shard must use the same values: they decide results (OVERLOADED, expiry).
 */
import { InvalidArgumentError } from "../util/errors.js";
import { COUNTERS_MAX } from "./counter-table.js";
import { DEFAULT_REQUEST_ID_OPTIONS } from "./request-ids.js";

export interface ShardOptions {
  /** A session with no command for longer than this (by leader-stamped time) expires. */
  sessionTimeoutMs: number;
  /** Registering beyond this evicts the least recently active session. */
  maxSessions: number;
  /**
   * Sessions one authenticated caller may hold on this shard; registering beyond it fails with
   * OVERLOADED (RESOURCE_EXHAUSTED), so one caller cannot evict everyone else's sessions. Not
   * applied to the anonymous owner "" of a cluster without auth. Default DEFAULT_SESSIONS_PER_CALLER_MAX.
   */
  maxSessionsPerCaller?: number;
  /** Unacknowledged outcomes one session may hold; a mutate beyond it fails with OVERLOADED. */
  maxRetainedResultsPerSession: number;
  /** Counters one shard may hold (default and ceiling COUNTERS_MAX); creating more fails with OVERLOADED. */
  maxCounters?: number;
  /**
   * Sessionless writes (request-ids.ts): an id is remembered at least requestIdRetentionMs (by
   * leader-stamped time); a named caller holds at most requestIdsPerCallerMax and the shard at most
   * requestIdsMax, beyond which a new id is OVERLOADED. Defaults DEFAULT_REQUEST_ID_OPTIONS. Like
   * every option here, all replicas must use the same values.
   */
  requestIdRetentionMs?: number;
  requestIdsPerCallerMax?: number;
  requestIdsMax?: number;
  /**
   * Seed of the in-memory key hash. Not observable (replicas may differ); a per-process random
   * value from the server makes hash-flooding by chosen keys impractical.
   */
  hashSeed?: number;
}

/** Throws InvalidArgumentError naming the bad option (etcd Config.validate style). */
export function validateShardOptions(options: ShardOptions): void {
  const positive = (name: string, value: unknown, max = Number.MAX_SAFE_INTEGER): void => {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1 || value > max) {
      throw new InvalidArgumentError(`shard option ${name} must be an integer in [1, ${max}], got ${String(value)}`);
    }
  };
  positive("sessionTimeoutMs", options.sessionTimeoutMs);
  positive("maxSessions", options.maxSessions);
  positive("maxRetainedResultsPerSession", options.maxRetainedResultsPerSession);
  if (options.maxSessionsPerCaller !== undefined) positive("maxSessionsPerCaller", options.maxSessionsPerCaller);
  if (options.maxCounters !== undefined) positive("maxCounters", options.maxCounters, COUNTERS_MAX);
  if (options.requestIdRetentionMs !== undefined) positive("requestIdRetentionMs", options.requestIdRetentionMs);
  if (options.requestIdsPerCallerMax !== undefined) positive("requestIdsPerCallerMax", options.requestIdsPerCallerMax);
  if (options.requestIdsMax !== undefined) positive("requestIdsMax", options.requestIdsMax);
  if (options.hashSeed !== undefined && !(Number.isInteger(options.hashSeed) && options.hashSeed >= 0 && options.hashSeed <= 0xffff_ffff)) {
    throw new InvalidArgumentError(`shard option hashSeed must be a u32, got ${String(options.hashSeed)}`);
  }
}

export const DEFAULT_SESSIONS_PER_CALLER_MAX = 10_000;

/** Validated options with every default filled in, frozen. */
export function resolveShardOptions(options: ShardOptions): Readonly<Required<ShardOptions>> {
  validateShardOptions(options);
  return Object.freeze({
    ...options,
    maxCounters: options.maxCounters ?? COUNTERS_MAX,
    maxSessionsPerCaller: options.maxSessionsPerCaller ?? DEFAULT_SESSIONS_PER_CALLER_MAX,
    requestIdRetentionMs: options.requestIdRetentionMs ?? DEFAULT_REQUEST_ID_OPTIONS.retentionMs,
    requestIdsPerCallerMax: options.requestIdsPerCallerMax ?? DEFAULT_REQUEST_ID_OPTIONS.perCallerMax,
    requestIdsMax: options.requestIdsMax ?? DEFAULT_REQUEST_ID_OPTIONS.totalMax,
    hashSeed: options.hashSeed ?? 0x9e3779b9,
  });
}
