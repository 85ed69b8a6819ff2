/**
 * The on-disk form of a backup (tallyctl backup / restore):
 *
 *   DIR/manifest.json        what was captured: cluster, times, and per shard its slot range,
 *                            epoch, applied index, term, clock, counter count, byte size, SHA-256
 *   DIR/map.json             the partition map as the metadata leader held it (for the operator;
 *                            restore takes the layout from the shard snapshots themselves)
 *   DIR/shard-<id>.snap      the shard's snapshot bytes: exactly what its Raft snapshots carry
 *                            (wrapShardSnapshot: descriptor, then the counter state machine's
 *                            snapshot with counters, sessions, kind records and a CRC-32 trailer)
 *
 * Every shard is consistent at its own applied index (taken on its leader at or above a ReadIndex);
 * the shards are not one cluster-wide instant. verifyBackup() checks everything restore relies on
 * before anything is written: the manifest's shape, each file's size and SHA-256, that each
 * snapshot decodes (its own CRC), and that its descriptor, index and counter count agree with the
 * manifest, and that the slot ranges cover every slot exactly once.
 */
import { createHash } from "node:crypto";
import { open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { SLOT_COUNT } from "../../meta/slots.js";
import { HOT_KEY_BYTES_MAX, HOT_KEYS_MAX, hotTagsProblem } from "../../meta/hot.js";
import { CounterStateMachine, type ShardOptions } from "../../shard/state-machine.js";
import { CorruptionError } from "../../util/errors.js";
import { unwrapShardSnapshot, type ShardDescriptor } from "../descriptor.js";

export const MANIFEST_FILE = "manifest.json";
export const MAP_FILE = "map.json";
export const BACKUP_FORMAT = "tally-backup";
export const BACKUP_FORMAT_VERSION = 1;

export interface ManifestShard {
  id: number;
  file: string;
  slotStart: number;
  /** Exclusive. */
  slotEnd: number;
  epoch: number;
  /** The snapshot is the shard's state at exactly this log index. */
  appliedIndex: number;
  /** The leader's term when it took the snapshot. */
  term: number;
  /** The shard's leader-stamped clock at appliedIndex (TTLs and session expiry count from it). */
  clockMs: number;
  leaderId: number;
  /** When the backup tool received it (wall clock of the machine running tallyctl). */
  capturedAt: string;
  bytes: number;
  counters: number;
  sha256: string;
}

export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  version: typeof BACKUP_FORMAT_VERSION;
  clusterName: string;
  /** Before the first shard was asked for, and after the last one was written. */
  startedAt: string;
  finishedAt: string;
  /** The metadata group's applied index of the map in map.json. */
  mapVersion: number;
  replicationFactor: number;
  slotCount: number;
  shards: ManifestShard[];
  /**
   * The hot counters of the map (src/meta/hot.ts): the key (base64) and its sub-counter tags, so a
   * restored cluster sums the same sub-counters. Absent in backups without hot counters.
   */
  hot?: ManifestHot[];
}

export interface ManifestHot {
  key: string;
  tags: number[];
}

export function shardFileName(shardId: number): string {
  return `shard-${String(shardId).padStart(4, "0")}.snap`;
}

export function encodeManifest(manifest: BackupManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** Parses and checks manifest.json text; every problem is a CorruptionError naming the field. */
export function parseManifest(text: string, where = MANIFEST_FILE): BackupManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new CorruptionError(`${where}: not JSON (${(error as Error).message}); the backup is damaged or incomplete`);
  }
  const fail = (problem: string): never => {
    throw new CorruptionError(`${where}: ${problem}`);
  };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return fail("not an object");
  const m = raw as Record<string, unknown>;
  if (m.format !== BACKUP_FORMAT) fail(`format is ${JSON.stringify(m.format)}, not "${BACKUP_FORMAT}"`);
  if (m.version !== BACKUP_FORMAT_VERSION)
    fail(`version ${JSON.stringify(m.version)} is not ${BACKUP_FORMAT_VERSION} (written by another tally version?)`);
  const text_ = (field: string, value: unknown): string =>
    typeof value === "string" && value.length > 0 ? value : fail(`${field} must be a non-empty string`);
  const count = (field: string, value: unknown, min = 0): number =>
    typeof value === "number" && Number.isSafeInteger(value) && value >= min
      ? value
      : fail(`${field} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  const time = (field: string, value: unknown): string =>
    Number.isNaN(Date.parse(text_(field, value))) ? fail(`${field} is not a time`) : (value as string);
  if (m.slotCount !== SLOT_COUNT) fail(`slotCount ${JSON.stringify(m.slotCount)} is not ${SLOT_COUNT}`);
  if (!Array.isArray(m.shards) || m.shards.length === 0) fail("shards must be a non-empty list");
  const shards = (m.shards as unknown[]).map((value, i): ManifestShard => {
    const f = `shards[${i}]`;
    if (typeof value !== "object" || value === null) return fail(`${f} is not an object`);
    const s = value as Record<string, unknown>;
    const shard: ManifestShard = {
      id: count(`${f}.id`, s.id, 1),
      file: text_(`${f}.file`, s.file),
      slotStart: count(`${f}.slotStart`, s.slotStart),
      slotEnd: count(`${f}.slotEnd`, s.slotEnd, 1),
      epoch: count(`${f}.epoch`, s.epoch, 1),
      appliedIndex: count(`${f}.appliedIndex`, s.appliedIndex, 1),
      term: count(`${f}.term`, s.term),
      clockMs: count(`${f}.clockMs`, s.clockMs),
      leaderId: count(`${f}.leaderId`, s.leaderId),
      capturedAt: time(`${f}.capturedAt`, s.capturedAt),
      bytes: count(`${f}.bytes`, s.bytes, 1),
      counters: count(`${f}.counters`, s.counters),
      sha256: text_(`${f}.sha256`, s.sha256),
    };
    if (shard.file !== shardFileName(shard.id)) fail(`${f}.file must be ${shardFileName(shard.id)}, got ${JSON.stringify(shard.file)}`);
    if (!/^[0-9a-f]{64}$/.test(shard.sha256)) fail(`${f}.sha256 is not a hex SHA-256`);
    if (shard.slotEnd > SLOT_COUNT || shard.slotStart >= shard.slotEnd)
      fail(`${f} slot range [${shard.slotStart}, ${shard.slotEnd}) is invalid`);
    return shard;
  });
  if (new Set(shards.map((s) => s.id)).size !== shards.length) fail("a shard id appears twice");
  checkTiling(shards, fail);
  const hot = m.hot === undefined ? undefined : parseManifestHot(m.hot, fail);
  return {
    format: BACKUP_FORMAT,
    version: BACKUP_FORMAT_VERSION,
    clusterName: text_("clusterName", m.clusterName),
    startedAt: time("startedAt", m.startedAt),
    finishedAt: time("finishedAt", m.finishedAt),
    mapVersion: count("mapVersion", m.mapVersion),
    replicationFactor: count("replicationFactor", m.replicationFactor, 1),
    slotCount: SLOT_COUNT,
    shards: shards.sort((a, b) => a.slotStart - b.slotStart),
    ...(hot === undefined ? {} : { hot }),
  };
}

function parseManifestHot(raw: unknown, fail: (problem: string) => never): ManifestHot[] {
  if (!Array.isArray(raw) || raw.length > HOT_KEYS_MAX) return fail(`hot must be a list of at most ${HOT_KEYS_MAX} entries`);
  const seen = new Set<string>();
  return raw.map((value, i): ManifestHot => {
    const f = `hot[${i}]`;
    const h = (typeof value === "object" && value !== null ? value : fail(`${f} is not an object`)) as Record<string, unknown>;
    const key = typeof h.key === "string" ? Buffer.from(h.key, "base64") : fail(`${f}.key must be base64 text`);
    if (key.length < 1 || key.length > HOT_KEY_BYTES_MAX || key.toString("base64") !== h.key)
      fail(`${f}.key must be the base64 of 1..${HOT_KEY_BYTES_MAX} bytes`);
    if (seen.has(h.key as string)) fail(`${f}.key appears twice`);
    seen.add(h.key as string);
    const problem = hotTagsProblem(h.tags);
    if (problem !== undefined) fail(`${f}.tags ${problem}`);
    return { key: h.key as string, tags: [...(h.tags as number[])] };
  });
}

/**
 * The slot ranges must cover [0, SLOT_COUNT) exactly once. Returns the first problem, or
 * undefined; `fail` (when given) throws it instead.
 */
export function checkTiling(
  ranges: Array<{ id: number; slotStart: number; slotEnd: number }>,
  fail?: (problem: string) => never,
): string | undefined {
  let next = 0;
  let problem: string | undefined;
  for (const range of [...ranges].sort((a, b) => a.slotStart - b.slotStart)) {
    if (range.slotStart > next) problem ??= `slots ${next}-${range.slotStart - 1} belong to no shard`;
    if (range.slotStart < next) problem ??= `shard ${range.id} (slots ${range.slotStart}-${range.slotEnd - 1}) overlaps another shard`;
    next = Math.max(next, range.slotEnd);
  }
  if (next !== SLOT_COUNT) problem ??= `slots ${next}-${SLOT_COUNT - 1} belong to no shard`;
  if (problem !== undefined && fail !== undefined) fail(problem);
  return problem;
}

export async function sha256OfFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  const handle = await open(path, "r");
  let bytes = 0;
  try {
    const buffer = Buffer.alloc(1 << 20);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      bytes += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return { sha256: hash.digest("hex"), bytes };
}

export interface VerifiedShard {
  shard: ManifestShard;
  descriptor: ShardDescriptor;
  /** The wrapped snapshot bytes, checked. */
  data: Uint8Array;
  machine: CounterStateMachine;
}

/** Reads manifest.json of a backup directory (CorruptionError when missing or damaged). */
export async function readManifest(dir: string): Promise<BackupManifest> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST_FILE), "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CorruptionError(
      `${join(dir, MANIFEST_FILE)}: ${code === "ENOENT" ? "missing: not a tally backup, or an unfinished one" : (error as Error).message}`,
    );
  }
  return parseManifest(text, join(dir, MANIFEST_FILE));
}

/**
 * Loads one shard of a backup and checks it against the manifest: size, SHA-256, the snapshot's
 * own structure and CRC, descriptor, applied index and counter count.
 */
export async function loadShard(dir: string, shard: ManifestShard, options: ShardOptions): Promise<VerifiedShard> {
  const path = join(dir, shard.file);
  const where = `shard ${shard.id} (${path})`;
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    throw new CorruptionError(
      `${where}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "file missing" : (error as Error).message}`,
    );
  }
  if (size !== shard.bytes) throw new CorruptionError(`${where}: ${size} bytes, the manifest says ${shard.bytes} (truncated or replaced)`);
  const data = new Uint8Array(await readFile(path));
  const sha256 = createHash("sha256").update(data).digest("hex");
  if (sha256 !== shard.sha256)
    throw new CorruptionError(`${where}: SHA-256 ${sha256} does not match the manifest's ${shard.sha256} (the file is damaged)`);
  let descriptor: ShardDescriptor;
  let machine: CounterStateMachine;
  try {
    const unwrapped = unwrapShardSnapshot(data);
    descriptor = unwrapped.descriptor;
    machine = CounterStateMachine.restore(unwrapped.machine, options);
  } catch (error) {
    throw new CorruptionError(`${where}: snapshot does not decode: ${(error as Error).message}`);
  }
  const mismatch = (what: string, found: number, expected: number): never => {
    throw new CorruptionError(`${where}: snapshot ${what} is ${found}, the manifest says ${expected}`);
  };
  if (descriptor.epoch !== shard.epoch) mismatch("epoch", descriptor.epoch, shard.epoch);
  if (descriptor.slotStart !== shard.slotStart) mismatch("first slot", descriptor.slotStart, shard.slotStart);
  if (descriptor.slotEnd !== shard.slotEnd) mismatch("slot end", descriptor.slotEnd, shard.slotEnd);
  if (machine.appliedIndex !== shard.appliedIndex) mismatch("applied index", machine.appliedIndex, shard.appliedIndex);
  if (machine.counterCount() !== shard.counters) mismatch("counter count", machine.counterCount(), shard.counters);
  if (machine.clockMs !== shard.clockMs) mismatch("clock", machine.clockMs, shard.clockMs);
  return { shard, descriptor, data, machine };
}

/** Checks every shard of a backup (one at a time, so memory is bounded by the largest shard). */
export async function verifyBackup(dir: string, options: ShardOptions): Promise<BackupManifest> {
  const manifest = await readManifest(dir);
  for (const shard of manifest.shards) await loadShard(dir, shard, options);
  return manifest;
}
