/**
 * cluster.yaml's `eventual:` section (docs/eventual.md): the key prefixes whose adds are eventual by
 * default, how often a node flushes its buffer into the shards, and whether a buffered add waits for
 * an fsync. Every node reads the same file; clients learn the prefixes from RoutesResponse
 * (eventual_prefixes) and apply them to adds in `mode: "auto"`.
 */
import { ConfigError } from "./config-env.js";

export interface EventualSettings {
  /** Keys starting with one of these (UTF-8 bytes) are eventual counters: see docs/eventual.md. */
  prefixes: string[];
  /** Upper bound on the time between a durable add and the start of its flush to the shard. */
  flushIntervalMs: number;
  /** false: an add is answered before its fsync (a machine crash loses up to one group commit of acknowledged adds). */
  fsync: boolean;
  /** The buffer file is rewritten without acknowledged flushes when it grows past this many bytes. */
  bufferCompactBytes: number;
  /**
   * A node refuses eventual adds (UNAVAILABLE, before buffering) for a shard it hosts whose leader
   * it has not heard from for this long, so the client sends them to a node that can flush them; a
   * request with accept_unflushable is buffered anyway. 0: never refuse.
   */
  refuseAfterLeaderSilenceMs: number;
}

export const EVENTUAL_DEFAULTS: Readonly<EventualSettings> = Object.freeze({
  prefixes: [],
  flushIntervalMs: 100,
  fsync: true,
  bufferCompactBytes: 4 * 1024 * 1024,
  refuseAfterLeaderSilenceMs: 300,
});

export const FLUSH_INTERVAL_MS_MAX = 10_000;
export const LEADER_SILENCE_MS_MAX = 600_000;
const PREFIXES_MAX = 1024;

/** The `eventual:` section, validated; absent means the defaults (eventual adds still work per call). */
export function parseEventualSettings(raw: unknown, where: (field: string) => string): EventualSettings {
  if (raw === undefined || raw === null) return { ...EVENTUAL_DEFAULTS, prefixes: [] };
  if (typeof raw !== "object" || Array.isArray(raw)) throw new ConfigError(`${where("eventual")} must be a mapping`);
  const section = raw as Record<string, unknown>;
  const known = ["prefixes", "flushIntervalMs", "fsync", "bufferCompactBytes", "refuseAfterLeaderSilenceMs"];
  for (const key of Object.keys(section)) {
    if (!known.includes(key)) throw new ConfigError(`${where("eventual")}: unknown field "${key}" (known: ${known.join(", ")})`);
  }
  const settings: EventualSettings = { ...EVENTUAL_DEFAULTS, prefixes: parsePrefixes(section.prefixes, where("eventual.prefixes")) };
  if (section.flushIntervalMs !== undefined)
    settings.flushIntervalMs = boundedInteger(section.flushIntervalMs, 1, FLUSH_INTERVAL_MS_MAX, where("eventual.flushIntervalMs"));
  if (section.bufferCompactBytes !== undefined)
    settings.bufferCompactBytes = boundedInteger(section.bufferCompactBytes, 4096, 2 ** 40, where("eventual.bufferCompactBytes"));
  if (section.refuseAfterLeaderSilenceMs !== undefined)
    settings.refuseAfterLeaderSilenceMs = boundedInteger(
      section.refuseAfterLeaderSilenceMs,
      0,
      LEADER_SILENCE_MS_MAX,
      where("eventual.refuseAfterLeaderSilenceMs"),
    );
  if (section.fsync !== undefined) {
    if (typeof section.fsync !== "boolean")
      throw new ConfigError(`${where("eventual.fsync")} must be true or false, got ${JSON.stringify(section.fsync)}`);
    settings.fsync = section.fsync;
  }
  return settings;
}

function parsePrefixes(raw: unknown, where: string): string[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new ConfigError(`${where} must be a list of non-empty strings`);
  if (raw.length > PREFIXES_MAX) throw new ConfigError(`${where}: ${raw.length} prefixes, at most ${PREFIXES_MAX}`);
  return raw.map((prefix, i) => {
    if (typeof prefix !== "string" || prefix.length === 0) throw new ConfigError(`${where}[${i}] must be a non-empty string`);
    return prefix;
  });
}

function boundedInteger(value: unknown, min: number, max: number, where: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max)
    throw new ConfigError(`${where} must be an integer between ${min} and ${max}, got ${JSON.stringify(value)}`);
  return value;
}
