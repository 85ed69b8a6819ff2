/**
 * tallyctl backup DIR / tallyctl restore DIR --config FILE.
 *
 * backup: for every shard of the routing map, streams a snapshot from the shard's leader
 * (AdminService.ShardBackup: consistent at one applied index, no older than a linearizable read
 * started by the request), following NOT_LEADER hints and retrying across leader changes; writes
 * one file per shard, map.json and manifest.json into a staging directory beside DIR, fsyncs them
 * and renames it to DIR, so DIR is either absent or a complete backup. A shard that splits during
 * the backup is caught: the captured slot ranges must cover every slot exactly once, and the map is
 * re-read (up to LAYOUT_ROUNDS_MAX times, a second apart) for shards that appeared or changed epoch meanwhile.
 *
 * restore: offline, builds the data directories of a new cluster (src/server/backup/restore.ts).
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, open, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import type { Command } from "commander";
import type { TallyClient } from "../client/index.js";
import { monotonicMs } from "../util/clock.js";
import { FailedPreconditionError, NotLeaderError, TallyError, UnavailableError } from "../util/errors.js";
import { SLOT_COUNT } from "../meta/slots.js";
import {
  BACKUP_FORMAT,
  BACKUP_FORMAT_VERSION,
  checkTiling,
  encodeManifest,
  MANIFEST_FILE,
  MAP_FILE,
  shardFileName,
  type BackupManifest,
  type ManifestShard,
} from "../server/backup/backup-format.js";
import { loadClusterConfig } from "../server/config/config.js";
import { restoreCluster, type RestoreSummary } from "../server/backup/restore.js";
import { UsageError } from "./exit-codes.js";
import { formatTable } from "./format.js";
import type { ClusterMapReply } from "./format-map.js";
import type { ShardBackupChunkMessage } from "../api/proto.js";

export type BackupClient = Pick<TallyClient, "admin" | "routes" | "adminStream" | "hotKeys">;

export interface BackupOptions {
  /** Deadline of each admin call, and how long one shard is retried across leader changes (at least 30 s). */
  timeoutMs: number;
  /** Progress lines (stderr in tallyctl). */
  progress?: (line: string) => void;
}

/**
 * Re-reads of the map when a shard split or moved epoch during the backup, LAYOUT_PAUSE_MS apart
 * (the map mirrors a split once the shard's leader reports it, within a few heartbeats).
 */
const LAYOUT_ROUNDS_MAX = 8;
const LAYOUT_PAUSE_MS = 1_000;
const SHARD_RETRY_WINDOW_MIN_MS = 30_000;
const RETRY_PAUSE_MS = 200;
const RETRYABLE = new Set(["NOT_LEADER", "UNAVAILABLE", "TIMEOUT", "OVERLOADED", "WRONG_SHARD", "AMBIGUOUS"]);

/** One chunk of AdminService.ShardBackup (proto ShardBackupChunk). */
type ShardBackupChunk = ShardBackupChunkMessage;

/** Writes a complete backup of the cluster to `dir` (absent or empty) and returns its manifest. */
export async function backupCluster(client: BackupClient, dir: string, options: BackupOptions): Promise<BackupManifest> {
  await expectEmptyTarget(dir);
  await mkdir(dirname(dir), { recursive: true });
  const staging = await mkdtemp(join(dirname(dir), `.${basename(dir)}.partial-`));
  try {
    const startedAt = new Date().toISOString();
    const captured = new Map<number, ManifestShard>();
    let clusterName = "";
    let map: ClusterMapReply | undefined;
    for (let round = 1; ; round++) {
      map = await metaLeaderMap(client, options.timeoutMs);
      const routes = await client.routes();
      const current = new Set(routes.shards.map((route) => route.shardId));
      for (const id of [...captured.keys()]) if (!current.has(id)) captured.delete(id);
      for (const route of routes.shards) {
        const previous = captured.get(route.shardId);
        if (previous !== undefined && BigInt(previous.epoch) >= route.epoch) continue;
        const { shard, cluster } = await fetchShard(
          client,
          route.shardId,
          [route.leaderAddress, ...route.replicas.map((r) => r.address)],
          staging,
          options,
        );
        clusterName = cluster;
        captured.set(shard.id, shard);
        options.progress?.(
          `shard ${shard.id}: slots ${shard.slotStart}-${shard.slotEnd - 1}, epoch ${shard.epoch}, index ${shard.appliedIndex}, ${shard.counters} counters, ${shard.bytes} bytes`,
        );
      }
      const problem = checkTiling([...captured.values()]);
      if (problem === undefined) break;
      if (round >= LAYOUT_ROUNDS_MAX)
        throw new FailedPreconditionError(`the shard layout kept changing during the backup (${problem}); run it again`);
      options.progress?.(`the layout changed during the backup (${problem}); reading the map again`);
      await new Promise((resolve) => setTimeout(resolve, LAYOUT_PAUSE_MS));
    }
    const shards = [...captured.values()].sort((a, b) => a.slotStart - b.slotStart);
    for (const file of await readdir(staging)) {
      if (!shards.some((shard) => shard.file === file)) await rm(join(staging, file)); // a shard captured before it split
    }
    const hot = (await client.hotKeys()).map((route) => ({ key: Buffer.from(route.key).toString("base64"), tags: [...route.tags] }));
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      version: BACKUP_FORMAT_VERSION,
      clusterName,
      startedAt,
      finishedAt: new Date().toISOString(),
      mapVersion: Number(map.version),
      replicationFactor: Math.max(1, ...map.shards.map((shard) => shard.voters.length)),
      slotCount: SLOT_COUNT,
      shards,
      ...(hot.length > 0 ? { hot } : {}),
    };
    await writeDurably(join(staging, MAP_FILE), `${JSON.stringify(map, null, 2)}\n`);
    await writeDurably(join(staging, MANIFEST_FILE), encodeManifest(manifest));
    await rmdir(dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
    await rename(staging, dir);
    return manifest;
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

async function expectEmptyTarget(dir: string): Promise<void> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new UsageError(`${dir} exists and is not a directory`);
    if ((await readdir(dir)).length > 0) throw new UsageError(`${dir} is not empty: a backup goes into a new or empty directory`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}

/** The partition map from the metadata leader (any node's copy names it). */
async function metaLeaderMap(client: BackupClient, timeoutMs: number): Promise<ClusterMapReply> {
  const map = await client.admin<ClusterMapReply>("ClusterMap", {}, { deadlineMs: timeoutMs });
  if (map.fromMetaLeader) return map;
  const leaderAddress = map.nodes.find((n) => n.nodeId === map.metaLeaderId)?.clientAddress;
  if (leaderAddress === undefined) return map;
  return client.admin<ClusterMapReply>("ClusterMap", {}, { deadlineMs: timeoutMs, address: leaderAddress }).catch(() => map);
}

/** One shard from its leader, into its file in `dir`, retried (other replicas, leader hints) until the window closes. */
async function fetchShard(
  client: BackupClient,
  shardId: number,
  addresses: Array<string | undefined>,
  dir: string,
  options: BackupOptions,
): Promise<{ shard: ManifestShard; cluster: string }> {
  const known = [...new Set(addresses.filter((a): a is string => a !== undefined && a !== ""))];
  const queue = [...known];
  const windowMs = Math.max(SHARD_RETRY_WINDOW_MIN_MS, options.timeoutMs);
  const giveUpAtMs = monotonicMs() + windowMs;
  let lastError: unknown;
  while (monotonicMs() < giveUpAtMs) {
    const address = queue.shift();
    if (address === undefined) {
      queue.push(...known);
      await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
      continue;
    }
    try {
      return await streamShard(client, shardId, address, join(dir, shardFileName(shardId)));
    } catch (error) {
      lastError = error;
      if (!(error instanceof TallyError) || !RETRYABLE.has(error.code)) throw error;
      const hint = error instanceof NotLeaderError ? error.leaderAddress : undefined;
      if (hint !== undefined && hint !== "" && hint !== address) {
        queue.unshift(hint);
        if (!known.includes(hint)) known.push(hint);
      }
    }
  }
  throw new UnavailableError(
    `shard ${shardId}: no leader streamed its snapshot within ${Math.round(windowMs / 1000)} s (last: ${(lastError as Error | undefined)?.message ?? "no node answered"})`,
    { cause: lastError },
  );
}

/** Streams one snapshot to `path`, checking that the chunks are contiguous, complete and match the sender's SHA-256. */
async function streamShard(
  client: BackupClient,
  shardId: number,
  address: string,
  path: string,
): Promise<{ shard: ManifestShard; cluster: string }> {
  const file = await open(path, "w");
  try {
    const hash = createHash("sha256");
    let first: ShardBackupChunk | undefined;
    let written = 0;
    for await (const chunk of client.adminStream<ShardBackupChunk>("ShardBackup", { shardId }, address)) {
      first ??= chunk;
      const same =
        chunk.shardId === shardId &&
        chunk.appliedIndex === first.appliedIndex &&
        chunk.totalBytes === first.totalBytes &&
        chunk.epoch === first.epoch;
      if (!same || Number(chunk.offset) !== written)
        throw new UnavailableError(
          `shard ${shardId}: chunk at offset ${chunk.offset} does not continue the snapshot (expected ${written}); retrying`,
        );
      const data = chunk.data ?? new Uint8Array(0);
      await file.write(data, 0, data.length, written);
      hash.update(data);
      written += data.length;
      if (!chunk.last) continue;
      const sha256 = hash.digest("hex");
      if (written !== Number(first.totalBytes))
        throw new UnavailableError(`shard ${shardId}: received ${written} of ${first.totalBytes} bytes; retrying`);
      if (sha256 !== chunk.sha256)
        throw new UnavailableError(`shard ${shardId}: received bytes hash to ${sha256}, the leader sent ${chunk.sha256}; retrying`);
      await file.sync();
      const shard: ManifestShard = {
        id: shardId,
        file: shardFileName(shardId),
        slotStart: first.slotStart,
        slotEnd: first.slotEnd,
        epoch: Number(first.epoch),
        appliedIndex: Number(first.appliedIndex),
        term: Number(first.term),
        clockMs: Number(first.clockMs),
        leaderId: Number(first.leaderId),
        capturedAt: new Date().toISOString(),
        bytes: written,
        counters: Number(first.counters),
        sha256,
      };
      return { shard, cluster: first.clusterName };
    }
    throw new UnavailableError(
      `shard ${shardId}: the stream from ${address} ended after ${written} bytes without its last chunk; retrying`,
    );
  } finally {
    await file.close();
  }
}

async function writeDurably(path: string, text: string): Promise<void> {
  const file = await open(path, "w");
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
}

// ---- the commands ----

interface GlobalBackupOptions {
  config?: string;
  json?: boolean;
  timeout: number;
}

type WithClient = (
  command: Command,
  run: (client: BackupClient, options: GlobalBackupOptions) => Promise<string | object>,
) => Promise<void>;
type Offline = (command: Command, run: (options: GlobalBackupOptions) => Promise<string | object>) => Promise<void>;

export function addBackupCommands(
  program: Command,
  withClient: WithClient,
  offline: Offline,
  io: { cwd: string; stderr(text: string): void },
): void {
  const at = (path: string): string => (isAbsolute(path) ? path : resolve(io.cwd, path));
  program
    .command("backup")
    .description(
      "write a backup of every shard (each consistent at its own applied index, taken on its leader) and the partition map to DIR (new or empty)",
    )
    .argument("<dir>", "target directory; written whole or not at all")
    .action(async (dir: string, _options: object, command: Command) =>
      withClient(command, async (client, options) => {
        const manifest = await backupCluster(client, at(dir), { timeoutMs: options.timeout, progress: (line) => io.stderr(`${line}\n`) });
        return options.json ? manifest : formatManifest(manifest, at(dir));
      }),
    );
  program
    .command("restore")
    .description(
      "build the data directories of a NEW cluster from backup DIR (offline; every node's dataDir must be absent or empty), then start tallyd on each node; --config names the new cluster's cluster.yaml",
    )
    .argument("<dir>", "a directory written by tallyctl backup")
    .action(async (dir: string, _options: object, command: Command) =>
      offline(command, async (options) => {
        // The global --config: here it names the NEW cluster, which is never guessed.
        if (options.config === undefined) throw new UsageError("restore needs --config FILE: the cluster.yaml of the new cluster");
        const config = loadClusterConfig(at(options.config));
        const summary = await restoreCluster(at(dir), config);
        return options.json ? summary : formatRestore(summary);
      }),
    );
}

export function formatManifest(manifest: BackupManifest, dir: string): string {
  const counters = manifest.shards.reduce((sum, shard) => sum + shard.counters, 0);
  const bytes = manifest.shards.reduce((sum, shard) => sum + shard.bytes, 0);
  const rows = manifest.shards.map((s) => [
    String(s.id),
    `${s.slotStart}-${s.slotEnd - 1}`,
    String(s.epoch),
    String(s.appliedIndex),
    String(s.term),
    String(s.leaderId),
    String(s.counters),
    String(s.bytes),
    s.sha256.slice(0, 12),
  ]);
  return [
    `backup of cluster ${manifest.clusterName} in ${dir}: ${manifest.shards.length} shards, ${counters} counters, ${bytes} bytes (map version ${manifest.mapVersion}, ${manifest.startedAt} to ${manifest.finishedAt})`,
    "each shard is consistent at its own applied index; the shards are not one cluster-wide instant",
    formatTable(["SHARD", "SLOTS", "EPOCH", "INDEX", "TERM", "LEADER", "COUNTERS", "BYTES", "SHA256"], rows),
  ].join("\n");
}

function formatRestore(summary: RestoreSummary): string {
  const rows = summary.nodes.map((node) => [String(node.id), node.dataDir, node.meta ? "yes" : "no", node.shards.join(",") || "-"]);
  return [
    `restored ${summary.shards} shards, ${summary.counters} counters of cluster ${summary.fromCluster} as cluster ${summary.clusterName}; start tallyd on every node`,
    formatTable(["NODE", "DATA DIR", "META", "SHARDS"], rows),
  ].join("\n");
}
