/**
 * One simulated tally node built from the production parts, as TallyNode.start() builds it: the
 * real NodeStore (over a SimDisk instead of LevelDB), the real NodeGroups registry (restore, the
 * map's replica creations, the metadata group), the real GroupApplier over the real
 * CounterStateMachine and MetaStateMachine, and the real DriverLoop, bound to a virtual Clock and
 * a simulated PeerNetwork. A crash drops the incarnation (its disk handle, timers and network
 * endpoint die with it); a restart builds a new one over the same disks.
 *
 * The harness observes without replacing anything: the store port hands out the real StoreBatch
 * with appendEntries() wrapped to see every entry the loop persists (log matching), and the
 * machines port calls the real GroupApplier and then looks at what it applied (committed-prefix
 * agreement, state equality).
 */
import { pino } from "pino";
import type { Entry, Message, Snapshot } from "../../../src/raft/types.js";
import { GroupApplier } from "../../../src/server/core/apply.js";
import { Checkpointer } from "../../../src/server/core/checkpoints.js";
import { DriverLoop } from "../../../src/server/core/driver-loop.js";
import { NodeGroups, type AnyReplica } from "../../../src/server/core/groups.js";
import { newNodeStats } from "../../../src/server/core/node-types.js";
import type { Clock, LogStore, PeerNetwork, ReplicatedStateMachines } from "../../../src/server/core/ports.js";
import type { RequestContext, RoutingView } from "../../../src/server/core/requests.js";
import { shardOptionsOf, type ClusterConfig } from "../../../src/server/config/config.js";
import { SnapshotExchange } from "../../../src/server/core/snapshot-exchange.js";
import type { ShardReplica } from "../../../src/server/shard-replica.js";
import { emptyMap, type ClusterMap } from "../../../src/meta/map.js";
import { NodeStore, type StoreBatch } from "../../../src/storage/node-store.js";
import type { Logger } from "../../../src/util/log.js";
import { SimCheckpointDisk } from "./sim-checkpoints.js";
import { SimDisk } from "./sim-kv.js";

export const silentLogger: Logger = pino({ level: "silent" });

/** What a node needs of the simulation. */
export interface NodeHost {
  nowMs(): number;
  /** Runs `run` after `delayMs` of virtual time (an event in the queue). */
  schedule(delayMs: number, run: () => void): void;
  /** A message leaves node `from` (already checked and encoded by the network). */
  send(from: number, to: number, groupId: number, message: Message): void;
  record(text: string): void;
  /** A node's loop died (a thrown assertion, a failed write): always a finding. */
  fatal(node: number, error: Error): void;
  observeAppend(node: number, groupId: number, entries: Entry[]): void;
  observeApply(node: number, replica: AnyReplica, entries: Entry[]): void;
  observeInstall(node: number, replica: AnyReplica, snapshot: Snapshot): void;
  onLeaderChange(node: number): void;
  /** The planted checkpoint defect (Checkpointer.plantedCompactAboveCheckpoint) is on. */
  readonly plantCompactAboveCheckpoint: boolean;
  /** Timer lateness for this node (clock skew): extra ms on top of a timer's delay. */
  timerSkew(node: number, ms: number): number;
  /** Wall-clock offset of this node (a jump moves it). */
  wallOffset(node: number): number;
}

/** One running incarnation of a node. */
export interface Incarnation {
  readonly number: number;
  store: NodeStore;
  groups: NodeGroups;
  applier: GroupApplier;
  checkpointer: Checkpointer;
  /** Shard snapshots to and from peers (checkpoints streamed from the checkpoint store). */
  snapshots: SnapshotExchange;
  loop: DriverLoop<AnyReplica, StoreBatch>;
  context: RequestContext;
  view: RoutingView;
}

export class SimNode {
  readonly disk: SimDisk;
  readonly checkpoints: SimCheckpointDisk;
  /** Bumped by every crash and start: an old incarnation's timers, sends and callbacks are void. */
  generation = 0;
  current: Incarnation | undefined;
  starting = false;
  /** The newest map this node knows (its metadata replica's, or one handed over by "heartbeat"). */
  map: ClusterMap = emptyMap();
  private adoptedMapVersion = -1;
  /** Rejects the client requests open on this incarnation (a crash drops their connections). */
  readonly openRequests = new Set<(reason: string) => void>();
  starts = 0;

  constructor(
    readonly id: number,
    private readonly config: ClusterConfig,
    private readonly host: NodeHost,
    disk: SimDisk,
    checkpoints: SimCheckpointDisk,
  ) {
    this.disk = disk;
    this.checkpoints = checkpoints;
  }

  get alive(): boolean {
    return this.current !== undefined;
  }

  /** TallyNode.start(): open the store, restore the groups, bind the network, start the loop. */
  async start(): Promise<void> {
    const generation = ++this.generation;
    this.starting = true;
    this.starts++;
    this.map = emptyMap();
    this.adoptedMapVersion = -1;
    const alive = () => this.generation === generation;
    const stats = newNodeStats();
    let loop: DriverLoop<AnyReplica, StoreBatch> | undefined;
    const wake = () => {
      if (alive()) loop?.wake();
    };
    const host = this.host;
    const store = await NodeStore.openWith(this.disk.open(), `sim/n${this.id}`, { logger: silentLogger });
    if (!alive()) return;
    const checkpointStore = this.checkpoints.open();
    // Yielding to the event loop is a turn of the event queue here.
    const pause = () => new Promise<void>((resolve) => host.schedule(0, resolve));
    const groups = new NodeGroups({
      nodeId: this.id,
      config: this.config,
      stats,
      logger: silentLogger,
      currentMap: () => this.map,
      wake,
      onMetaReplica: () => undefined,
      checkpoints: checkpointStore,
      pause,
    });
    const checkpointer = new Checkpointer({
      store: checkpointStore,
      stats,
      logger: silentLogger,
      everyEntries: this.config.cluster.snapshotEveryEntries,
      replicaOf: (shardId) => groups.replicas.get(shardId),
      queueWrite: (write, afterDurable) => {
        if (alive()) loop?.queueWrite(write, afterDurable);
      },
      pause,
      wake,
      nowMs: () => host.nowMs(),
      // Uncompressed: zlib's thread pool completes in real time, which would make a run depend on it.
      compress: false,
      plantedCompactAboveCheckpoint: host.plantCompactAboveCheckpoint,
    });
    const snapshots = new SnapshotExchange({
      checkpoints: checkpointStore,
      shardOptions: shardOptionsOf(this.config),
      logger: silentLogger,
      pause,
      storedSnapshot: async (groupId) => (await store.loadGroup(groupId)).snapshot,
    });
    const applier = new GroupApplier({
      nodeId: this.id,
      config: this.config,
      stats,
      logger: silentLogger,
      groups,
      adoptMap: (map) => {
        if (alive()) this.adoptMap(map);
      },
      wake,
      checkpointer,
      takePrepared: (shardId, index) => snapshots.takePrepared(shardId, index),
    });
    await groups.restore(store);
    if (!alive()) return;
    if (groups.meta !== undefined) this.map = groups.meta.machine.map as ClusterMap;

    const id = this.id;
    const clock: Clock = {
      monotonicMs: () => host.nowMs(),
      wallClockMs: () => Math.floor(host.nowMs() + host.wallOffset(id)),
      setTimer(ms, callback) {
        let cancelled = false;
        host.schedule(ms + host.timerSkew(id, ms), () => {
          if (!cancelled && alive()) callback();
        });
        return () => {
          cancelled = true;
        };
      },
      yieldNow: () => new Promise<void>((resolve) => host.schedule(0, resolve)),
    };
    let outbox: Array<[number, number, Message]> = [];
    const network: PeerNetwork = {
      send(to, groupId, message) {
        if (alive()) outbox.push([to, groupId, message]);
      },
      flush() {
        if (!alive()) return;
        const out = outbox;
        outbox = [];
        for (const [to, groupId, message] of out) host.send(id, to, groupId, message);
      },
    };
    const observedStore: LogStore<StoreBatch> = {
      batch: () => {
        const batch = store.batch();
        const append = batch.appendEntries.bind(batch);
        batch.appendEntries = (groupId: number, entries: Entry[]) => {
          host.observeAppend(id, groupId, entries);
          append(groupId, entries);
        };
        return batch;
      },
      write: (batch, options) => store.write(batch, options),
    };
    const machines: ReplicatedStateMachines<AnyReplica, StoreBatch> = {
      installSnapshot(replica, snapshot, batch) {
        applier.installSnapshot(replica, snapshot, batch);
        host.observeInstall(id, replica, snapshot);
      },
      apply(replica, entries, batch) {
        applier.apply(replica, entries, batch);
        if (entries.length > 0) host.observeApply(id, replica, entries);
      },
    };
    loop = new DriverLoop<AnyReplica, StoreBatch>(
      { store: observedStore, network, clock, groups, machines },
      {
        nodeId: this.id,
        tickMs: this.config.cluster.tickMs,
        heartbeatTicks: this.config.cluster.heartbeatTicks,
        logger: silentLogger,
        stats,
        leaderAddress: (node) => `n${node}`,
        onLeaderChange: () => {
          if (alive()) host.onLeaderChange(id);
        },
        onFatal: (error) => {
          if (alive()) host.fatal(id, error);
        },
      },
    );
    const running = loop;
    const context: RequestContext = {
      leaderAddress: (node) => `n${node}`,
      wake,
      catchUpTicks: () => running.catchUpTicks(),
    };
    const node = this;
    const view: RoutingView = {
      nodeId: this.id,
      get replicas(): ReadonlyMap<number, ShardReplica> {
        return groups.replicas;
      },
      get map(): ClusterMap {
        return node.map;
      },
      stats,
      leaderAddress: (n) => `n${n}`,
    };
    this.current = { number: generation, store, groups, applier, checkpointer, snapshots, loop, context, view };
    this.starting = false;
    loop.start();
    groups.reconcile();
    host.record(`n${this.id} started (incarnation ${this.starts}): groups ${[...groups.all()].map((g) => g.shardId).join(",") || "none"}`);
  }

  /** TallyNode.adoptMap(): a newer map; the registry creates or removes replicas to match. */
  adoptMap(map: ClusterMap): void {
    if (map.version < this.map.version || map.version === this.adoptedMapVersion) return;
    this.map = map;
    this.adoptedMapVersion = map.version;
    this.current?.groups.reconcile();
  }

  /** Power loss: memory is gone, unsynced writes may be lost, open requests see their connection drop. */
  crash(): string {
    this.generation++;
    this.current = undefined;
    this.starting = false;
    const kv = this.disk.crash();
    const files = this.checkpoints.crash();
    for (const reject of [...this.openRequests]) reject(`node ${this.id} crashed`);
    this.openRequests.clear();
    return `unsynced batches at risk ${kv.atRisk} (in flight ${kv.inFlight}), kept ${kv.kept}; checkpoint writes lost ${files.lost}, torn ${files.torn}`;
  }
}
