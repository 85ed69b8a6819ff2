/**
 * The client's options: defaults, and the checks of each option and of their relationships, run
 * once at construction (etcd Config.validate style). Every later module reads ResolvedOptions.
 */
import { InvalidArgumentError } from "../util/errors.js";
import type { TallyClientOptions } from "./types.js";
import { BATCH_OPS_MAX } from "./values.js";

const DEFAULTS = {
  deadlineMs: 10_000,
  attemptTimeoutMs: 2_000,
  connectTimeoutMs: 1_000,
  autoBatch: true,
  batchWindowMs: 0,
  maxBatchOps: 1_000,
  maxInflightOps: 65_536,
  keepAliveIntervalMs: 10_000,
  retryBackoffMs: 10,
  retryBackoffMaxMs: 1_000,
} as const;

export type ResolvedOptions = Required<Omit<TallyClientOptions, "credentials" | "logger" | "tls" | "token" | "addressMap">>;

/** TallyClientOptions.addressMap: host:port -> host:port, copied. */
export function validateAddressMap(map: unknown): Record<string, string> | undefined {
  if (map === undefined) return undefined;
  if (typeof map !== "object" || map === null || Array.isArray(map))
    throw new InvalidArgumentError("addressMap must be an object host:port -> host:port");
  const copy: Record<string, string> = {};
  for (const [from, to] of Object.entries(map)) {
    if (!/^[^\s,]+:\d{1,5}$/.test(from) || typeof to !== "string" || !/^[^\s,]+:\d{1,5}$/.test(to))
      throw new InvalidArgumentError(
        `addressMap entries must be host:port -> host:port, got ${JSON.stringify(from)} -> ${JSON.stringify(to)}`,
      );
    copy[from] = to;
  }
  return copy;
}

/** Checks options and their relationships once, at construction (etcd Config.validate style). */
export function validateOptions(options: TallyClientOptions): ResolvedOptions {
  if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) {
    throw new InvalidArgumentError("endpoints must be a non-empty array of host:port");
  }
  for (const endpoint of options.endpoints) {
    if (typeof endpoint !== "string" || !/^[^\s,]+:\d{1,5}$/.test(endpoint)) {
      throw new InvalidArgumentError(`endpoint must be host:port, got ${JSON.stringify(endpoint)}`);
    }
  }
  const resolved: ResolvedOptions = {
    endpoints: [...options.endpoints],
    deadlineMs: options.deadlineMs ?? DEFAULTS.deadlineMs,
    attemptTimeoutMs: options.attemptTimeoutMs ?? DEFAULTS.attemptTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    autoBatch: options.autoBatch ?? DEFAULTS.autoBatch,
    batchWindowMs: options.batchWindowMs ?? DEFAULTS.batchWindowMs,
    maxBatchOps: options.maxBatchOps ?? DEFAULTS.maxBatchOps,
    maxInflightOps: options.maxInflightOps ?? DEFAULTS.maxInflightOps,
    keepAliveIntervalMs: options.keepAliveIntervalMs ?? DEFAULTS.keepAliveIntervalMs,
    retryBackoffMs: options.retryBackoffMs ?? DEFAULTS.retryBackoffMs,
    retryBackoffMaxMs: options.retryBackoffMaxMs ?? DEFAULTS.retryBackoffMaxMs,
  };
  const positive = [
    "deadlineMs",
    "attemptTimeoutMs",
    "connectTimeoutMs",
    "maxBatchOps",
    "maxInflightOps",
    "keepAliveIntervalMs",
    "retryBackoffMs",
    "retryBackoffMaxMs",
  ] as const;
  for (const name of positive) {
    const value = resolved[name];
    if (!(typeof value === "number" && Number.isFinite(value) && value > 0)) {
      throw new InvalidArgumentError(`${name} must be a positive number, got ${String(value)}`);
    }
  }
  if (typeof resolved.autoBatch !== "boolean")
    throw new InvalidArgumentError(`autoBatch must be a boolean, got ${String(resolved.autoBatch)}`);
  if (!(typeof resolved.batchWindowMs === "number" && Number.isFinite(resolved.batchWindowMs) && resolved.batchWindowMs >= 0)) {
    throw new InvalidArgumentError(`batchWindowMs must be >= 0, got ${String(resolved.batchWindowMs)}`);
  }
  if (!(Number.isInteger(resolved.maxBatchOps) && resolved.maxBatchOps <= BATCH_OPS_MAX)) {
    throw new InvalidArgumentError(`maxBatchOps must be an integer in 1..${BATCH_OPS_MAX}`);
  }
  if (!Number.isInteger(resolved.maxInflightOps)) throw new InvalidArgumentError("maxInflightOps must be an integer");
  if (resolved.retryBackoffMaxMs < resolved.retryBackoffMs) {
    throw new InvalidArgumentError("retryBackoffMaxMs must be >= retryBackoffMs");
  }
  return resolved;
}

/** A bearer token goes into a header as is: printable ASCII without spaces. */
export function validateToken(token: string | undefined): string | undefined {
  if (token !== undefined && (typeof token !== "string" || !/^[\x21-\x7e]+$/.test(token))) {
    // The message never repeats the token.
    throw new InvalidArgumentError("token must be a non-empty string of printable ASCII without spaces");
  }
  return token;
}
