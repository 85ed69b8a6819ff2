/**
 * tallyctl restore: builds the data directories of a NEW cluster from a backup, offline. Every
 * shard file is verified (size, SHA-256, snapshot CRC and structure, agreement with the manifest)
 * and every target directory is checked to be absent or empty before anything is written; then
 * each node's store is written into `<dataDir>.restoring` and renamed into place at the end, so a
 * failed restore leaves no half-built data directory behind.
 *
 * What each node gets:
 *   - the metadata group (on the first cluster.metaReplicas nodes): bootstrapped at index 1 with
 *     an initialized partition map -- the new config's nodes, and the backup's shards with their
 *     slot ranges, epochs and new replicas -- so no controller proposes a fresh layout over it;
 *   - every shard it holds a replica of: its Raft group starting from a snapshot at the shard's
 *     backed-up applied index (term 1, voters = its replicas in the new cluster) that carries the
 *     shard's state as its data, exactly the shape a range split gives a new shard
 *     (core/apply.ts applySplit); the node's first checkpoint of the shard replaces it. The log
 *     continues above the backed-up index, so counter versions never repeat.
 * Replicas are dealt over the new nodes as the initial placement deals them (dealReplicas); the
 * placement controller rebalances from there.
 *
 * tallyctl runs this, so it imports no daemon code (node.ts, rpc/, ops/): only the store, the
 * Raft and state-machine codecs, the descriptor and config (test/unit/layering.test.ts checks it).
 */
import { mkdir, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { MemoryStorage } from "../../raft/memory-storage.js";
import { RawNode } from "../../raft/raw-node.js";
import type { ConfState } from "../../raft/types.js";
import { encodeMetaEntry, MetaStateMachine, type ShardRecord } from "../../meta/map.js";
import { NodeStore } from "../../storage/node-store.js";
import { FailedPreconditionError, InvalidArgumentError } from "../../util/errors.js";
import { wallClockMs } from "../../util/clock.js";
import { componentLogger } from "../../util/log.js";
import { loadShard, verifyBackup, type BackupManifest, type VerifiedShard } from "./backup-format.js";
import { dealOrder, dealReplicas, META_GROUP_ID, metaReplicaIds, shardOptionsOf, type ClusterConfig } from "../config/config.js";
import { encodeDescriptor } from "../descriptor.js";

/** The term restored groups start in (as a split's new shard does); elections go above it. */
const RESTORED_TERM = 1;

export interface RestoreSummary {
  fromCluster: string;
  clusterName: string;
  shards: number;
  counters: number;
  nodes: Array<{ id: number; dataDir: string; shards: number[]; meta: boolean }>;
}

export interface RestoreOptions {
  /** The metadata map's clock (leader time) at its first entry; default now. */
  nowMs?: number;
}

export async function restoreCluster(backupDir: string, config: ClusterConfig, options: RestoreOptions = {}): Promise<RestoreSummary> {
  const shardOptions = shardOptionsOf(config);
  // Everything is checked first: a damaged backup or an occupied directory writes nothing.
  const manifest = await verifyBackup(backupDir, shardOptions);
  for (const node of config.nodes) {
    await expectEmptyOrAbsent(node.dataDir, `node ${node.id}'s data directory`);
    await expectAbsent(stagingDir(node.dataDir), `node ${node.id}'s staging directory (left by an interrupted restore? delete it)`);
  }
  const order = dealOrder(config.nodes);
  const replicationFactor = config.cluster.replicationFactor;
  const byId = [...manifest.shards].sort((a, b) => a.id - b.id);
  const placement = new Map(byId.map((shard, i) => [shard.id, dealReplicas(order, replicationFactor, i)]));
  const metaVoters = metaReplicaIds(config);

  const stores = new Map<number, NodeStore>();
  const staged: string[] = [];
  try {
    for (const node of config.nodes) {
      const dir = stagingDir(node.dataDir);
      await mkdir(dir, { recursive: true });
      staged.push(dir);
      // Quiet: tallyctl prints its own summary; the store's open/close lines are noise here.
      stores.set(
        node.id,
        await NodeStore.open(dir, { logger: componentLogger("storage", { node: node.id }).child({}, { level: "warn" }) }),
      );
    }
    // In slot order, as the map keeps its shards.
    const records: ShardRecord[] = manifest.shards.map((shard) => ({
      id: shard.id,
      slotStart: shard.slotStart,
      slotEnd: shard.slotEnd,
      epoch: shard.epoch,
      voters: placement.get(shard.id)!,
      learners: [],
      votersOutgoing: [],
    }));
    const meta = initializedMeta(config, manifest, records, metaVoters, options.nowMs ?? wallClockMs());
    for (const id of metaVoters) await writeMetaGroup(stores.get(id)!, meta, metaVoters);
    let counters = 0;
    for (const shard of byId) {
      // Loaded (and verified) again, one shard at a time, so memory stays bounded by the largest.
      const verified = await loadShard(backupDir, shard, shardOptions);
      counters += verified.machine.counterCount();
      const replicas = placement.get(shard.id)!;
      await Promise.all(replicas.map((id) => writeShardGroup(stores.get(id)!, verified, replicas)));
    }
    for (const store of stores.values()) await store.close();
    stores.clear();
    for (const node of config.nodes) {
      await rmdir(node.dataDir).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "ENOENT") throw error;
      });
      await rename(stagingDir(node.dataDir), node.dataDir);
    }
    return {
      fromCluster: manifest.clusterName,
      clusterName: config.cluster.name,
      shards: byId.length,
      counters,
      nodes: config.nodes.map((node) => ({
        id: node.id,
        dataDir: node.dataDir,
        shards: byId.filter((shard) => placement.get(shard.id)!.includes(node.id)).map((shard) => shard.id),
        meta: metaVoters.includes(node.id),
      })),
    };
  } catch (error) {
    for (const store of stores.values()) await store.close().catch(() => undefined);
    for (const dir of staged) await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function stagingDir(dataDir: string): string {
  return `${dataDir}.restoring`;
}

async function expectEmptyOrAbsent(dir: string, what: string): Promise<void> {
  let entries: string[];
  try {
    if (!(await stat(dir)).isDirectory()) throw new FailedPreconditionError(`${what} ${dir} exists and is not a directory`);
    entries = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  if (entries.length > 0)
    throw new FailedPreconditionError(`${what} ${dir} is not empty: restore builds a new cluster and never writes over data`);
}

async function expectAbsent(dir: string, what: string): Promise<void> {
  try {
    await stat(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  throw new FailedPreconditionError(`${what} ${dir} exists`);
}

/** The metadata state at index 1: the map initialized with the restored layout. */
function initializedMeta(
  config: ClusterConfig,
  manifest: BackupManifest,
  shards: ShardRecord[],
  metaVoters: number[],
  nowMs: number,
): MetaStateMachine {
  const machine = new MetaStateMachine();
  const [result] = machine.applyEntry(
    1,
    encodeMetaEntry(nowMs, [
      {
        type: "init",
        clusterName: config.cluster.name,
        replicationFactor: config.cluster.replicationFactor,
        nodes: config.nodes.map((node) => ({ id: node.id, client: node.client, peer: node.peer, zone: node.zone, host: node.host })),
        shards,
        metaVoters,
        // Hot counters keep their tags, so the restored cluster sums the same sub-counters.
        hot: (manifest.hot ?? []).map((hot) => ({ key: new Uint8Array(Buffer.from(hot.key, "base64")), tags: [...hot.tags] })),
      },
    ]),
  );
  if (result === undefined || !result.ok || !result.changed) {
    throw new InvalidArgumentError(
      `the restored partition map of ${manifest.clusterName} does not initialize: ${result !== undefined && !result.ok ? result.message : "no change"}`,
    );
  }
  return machine;
}

async function writeMetaGroup(store: NodeStore, meta: MetaStateMachine, voters: number[]): Promise<void> {
  const state = meta.snapshot();
  const storage = new MemoryStorage();
  RawNode.bootstrap(storage, voters, state);
  const snapshot = storage.snapshot();
  const batch = store.batch();
  batch.putSnapshot(META_GROUP_ID, snapshot);
  batch.setConfState(META_GROUP_ID, snapshot.metadata.confState);
  batch.setHardState(META_GROUP_ID, storage.initialState().hardState);
  batch.putGroupState(META_GROUP_ID, state);
  batch.setApplied(META_GROUP_ID, meta.appliedIndex, meta.map.clockMs);
  await store.write(batch, { sync: true });
}

async function writeShardGroup(store: NodeStore, verified: VerifiedShard, voters: number[]): Promise<void> {
  const { shard, descriptor, data } = verified;
  const batch = store.batch();
  // The shard's state is its snapshot, held by the log store with its data until the node's first
  // checkpoint of the shard replaces it (core/checkpoints.ts); the Raft state is in the shape the
  // node restores from (core/groups.ts restoreShardFromDisk).
  const confState: ConfState = { voters: [...voters], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  batch.putSnapshot(shard.id, { metadata: { index: shard.appliedIndex, term: RESTORED_TERM, confState }, data });
  batch.setConfState(shard.id, confState);
  batch.setHardState(shard.id, { term: RESTORED_TERM, vote: 0, commit: shard.appliedIndex });
  batch.putGroupState(shard.id, encodeDescriptor(descriptor));
  await store.write(batch, { sync: true });
}
