/**
 * A tally node: one LevelDB, one peer transport, and one Raft group per hosted shard. The driver
 * loop below is the only place with I/O, and each iteration follows the Ready contract:
 *
 *   1. tick every group up to the monotonic clock, step inbound messages, propose queued commands
 *      (one entry per group: leader-side batching), start ReadIndex rounds;
 *   2. collect Ready from every group; write all their snapshots, entries and hard states in ONE
 *      LevelDB batch, fsynced (group commit across groups);
 *   3. only then send their messages (one transport frame per peer);
 *   4. apply committed entries; the state changes and the applied index go into one batch, so a
 *      crash never half-applies an entry; serve reads whose index is applied;
 *   5. advance every group.
 */
import { mkdirSync } from "node:fs";
import { MemoryStorage } from "../raft/memory-storage.js";
import { decodeConfChange, RawNode } from "../raft/raw-node.js";
import {
  EntryType,
  MessageType,
  Role,
  type ConfState,
  type Message,
  type RaftConfig,
  type Ready,
} from "../raft/types.js";
import type { Command, CommandResult } from "../shard/commands.js";
import { CounterStateMachine, decodeCounterRecord, encodeCounterRecord, type ShardOptions } from "../shard/state-machine.js";
import { NodeStore, type StoreBatch } from "../storage/node-store.js";
import { PeerTransport } from "../transport/peer-transport.js";
import { assert } from "../util/assert.js";
import { monotonicMs, wallClockMs } from "../util/clock.js";
import { NotLeaderError, UnavailableError, WrongShardError } from "../util/errors.js";
import { componentLogger, type Logger } from "../util/log.js";
import { createPrng } from "../util/prng.js";
import { slotOf } from "../meta/slots.js";
import { computePlacement, findNode, type ClusterConfig, type NodeConfig, type ShardPlacement } from "./config.js";
import { ShardReplica, type ReadWaiter } from "./shard-replica.js";
import { nodeCertificateProvider } from "./tls.js";

export interface NodeOptions {
  config: ClusterConfig;
  nodeId: number;
  logger?: Logger;
}

export interface ReadResult {
  values: Array<{ value: bigint; version: number; exists: boolean }>;
  term: number;
  appliedIndex: number;
}

export interface MutationOutcome {
  result: CommandResult;
  index: number;
  term: number;
}

export type Consistency = "linearizable" | "stale";

/** Bounded: the transport drops beyond its own bound; this bounds what waits for one iteration. */
const INBOUND_MESSAGES_MAX = 200_000;
/** Never tick more than this many times in one catch-up (a long pause already expired every lease). */
const CATCH_UP_TICKS_MAX = 200;
/** Test-only planted bug (see ackBeforeCommit); read once at start-up. */
const ACK_BEFORE_COMMIT = process.env.TALLY_TEST_ACK_BEFORE_COMMIT === "1";

export class TallyNode {
  readonly nodeId: number;
  readonly self: NodeConfig;
  readonly config: ClusterConfig;
  readonly placement: ShardPlacement[];
  readonly replicas = new Map<number, ShardReplica>();
  private store!: NodeStore;
  private transport!: PeerTransport;
  private readonly log: Logger;
  private inbound: Array<[number, Message]> = [];
  private inboundDropped = 0;
  private lastTickMs = 0;
  private running = false;
  private stopped = false;
  private wakeResolve: (() => void) | undefined;
  private wakePending = false;
  private loopDone: Promise<void> | undefined;
  private fatalError: Error | undefined;
  readonly stats = { iterations: 0, entriesWritten: 0, syncs: 0, applied: 0, leaderChanges: 0, snapshotsInstalled: 0, snapshotsTaken: 0 };

  constructor(options: NodeOptions) {
    this.config = options.config;
    this.nodeId = options.nodeId;
    this.self = findNode(this.config, this.nodeId);
    this.placement = computePlacement(this.config);
    this.log = options.logger ?? componentLogger("node", { node: this.nodeId });
  }

  /** Opens storage, restores every hosted shard, binds the peer transport and starts the loop. */
  async start(): Promise<void> {
    const field = `nodes[${this.config.nodes.indexOf(this.self)}]`;
    try {
      mkdirSync(this.self.dataDir, { recursive: true });
      this.store = await NodeStore.open(this.self.dataDir, { logger: componentLogger("storage", { node: this.nodeId }) });
    } catch (error) {
      throw new Error(`${field}.dataDir (${this.self.dataDir}): ${(error as Error).message}`, { cause: error });
    }
    const bootstrap = this.store.batch();
    for (const placement of this.placement) {
      if (!placement.replicas.includes(this.nodeId)) continue;
      this.replicas.set(placement.shardId, await this.restoreReplica(placement, bootstrap));
    }
    if (bootstrap.size > 0) await this.store.write(bootstrap, { sync: true });

    const peers = new Map<number, string>();
    for (const node of this.config.nodes) if (node.id !== this.nodeId) peers.set(node.id, node.peer);
    this.transport = new PeerTransport({
      nodeId: this.nodeId,
      // TALLY_PEER_LISTEN (tests only): listen on a private address while peers dial the configured one (chaos proxies).
      listenAddress: process.env.TALLY_PEER_LISTEN || this.self.peer,
      peers,
      onMessages: (_from, batch) => this.receive(batch),
      onSnapshot: async (_from, groupId, message) => this.receive([[groupId, message]]),
      logger: componentLogger("transport", { node: this.nodeId }),
      tls: nodeCertificateProvider(this.config, this.self, this.log),
    });
    this.transport.onSnapshotResult = (to, groupId, ok) => {
      this.replicas.get(groupId)?.raw.reportSnapshot(to, ok);
      this.wake();
    };
    this.transport.onUnreachable = (to) => {
      for (const replica of this.replicas.values()) replica.raw.reportUnreachable(to);
    };
    try {
      await this.transport.start();
    } catch (error) {
      await this.store.close();
      const inUse = /EADDRINUSE/.test(String((error as Error).message)) ? "address already in use" : (error as Error).message;
      throw new Error(`${field}.peer (${this.self.peer}): ${inUse}`, { cause: error });
    }
    this.lastTickMs = monotonicMs();
    this.running = true;
    this.loopDone = this.runLoop();
    this.log.info({ shards: [...this.replicas.keys()], peer: this.self.peer }, "node started");
  }

  private async restoreReplica(placement: ShardPlacement, bootstrap: StoreBatch): Promise<ShardReplica> {
    const { shardId } = placement;
    const loaded = await this.store.loadGroup(shardId);
    const storage = new MemoryStorage();
    const shardOptions: ShardOptions = {
      sessionTimeoutMs: this.config.cluster.sessionTimeoutMs,
      maxSessions: 100_000,
      maxRetainedResultsPerSession: 1_024,
    };
    let machine: CounterStateMachine;
    let confState: ConfState;
    const fresh = loaded.confState === undefined && loaded.snapshot === undefined && loaded.entries.length === 0 && loaded.hardState.term === 0;
    if (fresh) {
      RawNode.bootstrap(storage, placement.replicas);
      const snapshot = storage.snapshot();
      confState = snapshot.metadata.confState;
      bootstrap.putSnapshot(shardId, snapshot);
      bootstrap.setConfState(shardId, confState);
      const initial = storage.initialState().hardState;
      bootstrap.setHardState(shardId, initial);
      const last = storage.lastIndex();
      if (last > snapshot.metadata.index) bootstrap.appendEntries(shardId, storage.entries(snapshot.metadata.index + 1, last + 1, Infinity));
      machine = new CounterStateMachine(shardOptions);
    } else {
      if (loaded.snapshot) storage.applySnapshot(loaded.snapshot);
      if (loaded.entries.length > 0) storage.append(loaded.entries);
      storage.setHardState(loaded.hardState);
      confState = loaded.confState ?? loaded.snapshot?.metadata.confState ?? { voters: placement.replicas, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
      storage.setConfState(confState);
      const counters: Array<[Uint8Array, { value: bigint; version: number }]> = [];
      for await (const [key, value] of this.store.scanCounters(shardId)) counters.push([key, decodeCounterRecord(value)]);
      const sessions: Array<[number, Uint8Array]> = [];
      for await (const entry of this.store.scanSessions(shardId)) sessions.push(entry);
      machine = CounterStateMachine.load(shardOptions, loaded.applied?.index ?? 0, loaded.applied?.clockMs ?? 0, counters, sessions);
    }
    const raftConfig: RaftConfig = {
      id: this.nodeId,
      electionTicks: this.config.cluster.electionTicks,
      heartbeatTicks: this.config.cluster.heartbeatTicks,
      storage,
      applied: machine.appliedIndex,
      maxSizePerMsg: this.config.limits.maxSizePerMsgBytes,
      maxInflightMessages: this.config.limits.maxInflightMessages,
      maxInflightBytes: this.config.limits.maxInflightBytes,
      maxUncommittedEntriesBytes: 256 * 1024 * 1024,
      maxCommittedSizePerReady: 64 * 1024 * 1024,
      preVote: true,
      checkQuorum: true,
      leaseDriftTicks: this.config.cluster.leaseDriftTicks,
      prng: createPrng((this.nodeId * 7919 + shardId * 104729 + Math.floor(wallClockMs())) >>> 0),
    };
    const replica = new ShardReplica(
      shardId,
      placement,
      storage,
      raftConfig,
      machine,
      confState,
      { maxPendingProposals: this.config.limits.maxPendingProposalsPerShard, maxEntryBytes: this.config.limits.maxEntryBytes },
      shardOptions,
    );
    replica.lastSnapshotIndex = storage.firstIndex() - 1;
    return replica;
  }

  // ---- the public surface used by the gRPC services ----

  leaderAddress = (id: number): string | undefined => this.config.nodes.find((n) => n.id === id)?.client;

  /** Resolves the replica a request routed to, checking the epoch and that every key belongs to it. */
  route(shardId: number, epoch: number, keys: Uint8Array[]): ShardReplica {
    let id = shardId;
    if (id === 0) {
      const first = keys[0];
      if (first === undefined) throw new WrongShardError("request names no shard and no key", 0, 0);
      id = this.shardForKey(first).shardId;
    }
    const placement = this.placement.find((p) => p.shardId === id);
    if (placement === undefined) throw new WrongShardError(`shard ${id} does not exist`, id, 0);
    if (epoch !== 0 && epoch !== placement.epoch) {
      throw new WrongShardError(`shard ${id} is at epoch ${placement.epoch}, request routed by epoch ${epoch}`, id, placement.epoch);
    }
    for (const key of keys) {
      const slot = slotOf(key);
      if (slot < placement.slots.start || slot >= placement.slots.end) {
        throw new WrongShardError(`key in slot ${slot} does not belong to shard ${id} (slots ${placement.slots.start}-${placement.slots.end - 1})`, id, placement.epoch);
      }
    }
    const replica = this.replicas.get(id);
    if (replica === undefined) {
      const leaderHint = placement.replicas[0];
      throw new NotLeaderError(`shard ${id} has no replica on node ${this.nodeId}`, leaderHint === undefined ? undefined : String(leaderHint), leaderHint === undefined ? undefined : this.leaderAddress(leaderHint), id);
    }
    return replica;
  }

  shardForKey(key: Uint8Array): ShardPlacement {
    const slot = slotOf(key);
    const placement = this.placement.find((p) => slot >= p.slots.start && slot < p.slots.end);
    assert(placement !== undefined, "slot ranges cover every slot");
    return placement;
  }

  /** Proposes one validated command through the shard's leader; resolves when it is applied. */
  submit(replica: ShardReplica, command: Command, bytes: number, timeoutMs = this.config.limits.requestTimeoutMs): Promise<MutationOutcome> {
    this.checkAlive();
    if (!replica.isLeader) return Promise.reject(replica.notLeaderError(this.leaderAddress));
    if (ACK_BEFORE_COMMIT && command.type === "mutate") return this.ackBeforeCommit(replica, command, bytes, timeoutMs);
    return new Promise<MutationOutcome>((resolve, reject) => {
      replica.enqueue({
        command,
        bytes,
        deadlineMs: monotonicMs() + timeoutMs,
        resolve: (result, index, term) => resolve({ result, index, term }),
        reject,
      });
      this.wake();
    });
  }

  /**
   * PLANTED BUG for the chaos harness (TALLY_TEST_ACK_BEFORE_COMMIT=1, never in production): answers
   * a mutation from the leader's applied state before the entry is committed, then proposes it
   * anyway. A leader crash loses acknowledged writes and concurrent adds see stale values; the
   * chaos checker must catch both (test/chaos/planted.test.ts).
   */
  private ackBeforeCommit(replica: ShardReplica, command: Extract<Command, { type: "mutate" }>, bytes: number, timeoutMs: number): Promise<MutationOutcome> {
    const results = command.ops.map((op) => {
      const current = replica.read(op.key);
      const before = current?.value ?? 0n;
      const value = op.kind === "add" ? before + op.delta : op.kind === "reset" ? 0n : op.value;
      return { value, version: current?.version ?? 0 };
    });
    replica.enqueue({ command, bytes, deadlineMs: monotonicMs() + timeoutMs, resolve: () => undefined, reject: () => undefined });
    this.wake();
    return Promise.resolve({ result: { ok: true, type: "mutate", results, duplicate: false }, index: replica.machine.appliedIndex, term: replica.raw.term });
  }

  read(replica: ShardReplica, keys: Uint8Array[], consistency: Consistency, minIndex: number, timeoutMs = this.config.limits.requestTimeoutMs): Promise<ReadResult> {
    this.checkAlive();
    const answer = (r: ShardReplica): ReadResult => ({
      values: keys.map((key) => {
        const record = r.read(key);
        return record === undefined ? { value: 0n, version: 0, exists: false } : { value: record.value, version: record.version, exists: true };
      }),
      term: r.raw.term,
      appliedIndex: r.machine.appliedIndex,
    });
    if (consistency === "stale") {
      if (replica.machine.appliedIndex >= minIndex) return Promise.resolve(answer(replica));
      return new Promise((resolve, reject) => {
        replica.addReadAtIndex({ index: minIndex, deadlineMs: monotonicMs() + timeoutMs, serve: (r) => resolve(answer(r)), reject });
        this.wake();
      });
    }
    if (!replica.isLeader) return Promise.reject(replica.notLeaderError(this.leaderAddress));
    // Bring the lease up to the monotonic clock first: after a pause (GC, SIGSTOP) the ticks we
    // missed must count before we trust the lease.
    this.catchUpTicks();
    if (replica.canServeLeaseRead() && replica.machine.appliedIndex >= minIndex) return Promise.resolve(answer(replica));
    return new Promise((resolve, reject) => {
      const waiter: ReadWaiter = {
        index: -1,
        deadlineMs: monotonicMs() + timeoutMs,
        serve: (r) => {
          if (r.machine.appliedIndex >= minIndex) resolve(answer(r));
          else r.addReadAtIndex({ ...waiter, index: minIndex });
        },
        reject,
      };
      replica.addLinearizableRead(waiter);
      this.wake();
    });
  }

  transferLeader(shardId: number, to: number): void {
    const replica = this.replicas.get(shardId);
    if (replica === undefined) throw new WrongShardError(`shard ${shardId} has no replica on node ${this.nodeId}`, shardId, 0);
    if (!replica.isLeader) throw replica.notLeaderError(this.leaderAddress);
    replica.raw.transferLeader(to);
    this.wake();
  }

  // ---- the driver loop ----

  private receive(batch: Array<[number, Message]>): void {
    if (this.inbound.length + batch.length > INBOUND_MESSAGES_MAX) {
      this.inboundDropped += batch.length; // Raft retransmits.
      return;
    }
    for (const item of batch) this.inbound.push(item);
    this.wake();
  }

  private wake(): void {
    this.wakePending = true;
    const resolve = this.wakeResolve;
    if (resolve !== undefined) {
      this.wakeResolve = undefined;
      resolve();
    }
  }

  private waitForWork(): Promise<void> {
    if (this.wakePending) {
      this.wakePending = false;
      return Promise.resolve();
    }
    const untilTick = Math.max(1, this.lastTickMs + this.config.cluster.tickMs - monotonicMs());
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wakeResolve = undefined;
        resolve();
      }, untilTick);
      this.wakeResolve = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private catchUpTicks(): void {
    const now = monotonicMs();
    const tickMs = this.config.cluster.tickMs;
    let ticks = Math.floor((now - this.lastTickMs) / tickMs);
    if (ticks <= 0) return;
    if (ticks > CATCH_UP_TICKS_MAX) {
      this.log.warn({ missedTicks: ticks }, "driver loop was paused; catching up");
      ticks = CATCH_UP_TICKS_MAX;
      this.lastTickMs = now;
    } else {
      this.lastTickMs += ticks * tickMs;
    }
    for (const replica of this.replicas.values()) for (let i = 0; i < ticks; i++) replica.raw.tick();
    for (const replica of this.replicas.values()) replica.expire(now);
  }

  private async runLoop(): Promise<void> {
    try {
      while (this.running) {
        await this.iterate();
        if (this.running) await this.waitForWork();
      }
    } catch (error) {
      this.fatalError = error as Error;
      this.running = false;
      this.log.fatal({ err: error }, "driver loop failed; the node stops serving");
      for (const replica of this.replicas.values()) replica.failInflight(new UnavailableError(`node ${this.nodeId} stopped: ${(error as Error).message}`));
      this.onHealthChange?.(false);
      this.onFatal?.(error as Error);
    }
  }

  /** Called when the loop dies (storage corruption, fsync failure): the process should exit. */
  onFatal: ((error: Error) => void) | undefined;
  /** Called when the node's ability to serve changes (health service). */
  onHealthChange: ((serving: boolean) => void) | undefined;

  private checkAlive(): void {
    if (this.fatalError) throw new UnavailableError(`node ${this.nodeId} has stopped: ${this.fatalError.message}`);
    if (!this.running) throw new UnavailableError(`node ${this.nodeId} is not running`);
  }

  private async iterate(): Promise<void> {
    this.stats.iterations++;
    this.catchUpTicks();
    if (this.inbound.length > 0) {
      const inbound = this.inbound;
      this.inbound = [];
      for (const [groupId, message] of inbound) {
        const replica = this.replicas.get(groupId);
        if (replica === undefined) continue;
        replica.raw.step(message);
      }
    }
    const nowWall = wallClockMs();
    for (const replica of this.replicas.values()) {
      replica.proposeQueued(nowWall, this.leaderAddress);
      replica.issueReadIndex(this.leaderAddress);
    }

    const readies: Array<[ShardReplica, Ready]> = [];
    for (const replica of this.replicas.values()) if (replica.raw.hasReady()) readies.push([replica, replica.raw.ready()]);
    if (readies.length === 0) return;

    // Thesis 10.2.1: a leader may write its log in parallel with replicating it, so its App and
    // Heartbeat messages leave before the fsync. Safe here because iterations are sequential: the
    // leader's own write completes before it steps any acknowledgement, so it never counts itself
    // toward a commit before its entries are durable. Everything else (votes, acknowledgements)
    // promises durable state and waits for the write.
    const late: Array<[number, Message]> = [];
    for (const [replica, ready] of readies) {
      for (const message of ready.messages) {
        if (message.type === MessageType.App || message.type === MessageType.Heartbeat) this.transport.send(message.to, replica.shardId, message);
        else late.push([replica.shardId, message]);
      }
    }
    this.transport.flush();

    // 2. Build ONE batch for every group: snapshots, new entries, hard states, and the effects of
    // applying committed entries together with the applied index (so a crash never half-applies).
    // Applying in memory before the write is safe: committed entries are durable on a quorum. What
    // anyone outside can observe of them -- replies to clients, ReadIndex reads -- waits for the
    // write below.
    const batch = this.store.batch();
    let mustSync = false;
    for (const [replica, ready] of readies) {
      if (ready.snapshot !== undefined && ready.snapshot.metadata.index > 0) this.installSnapshot(replica, ready, batch);
      if (ready.entries.length > 0) {
        const first = ready.entries[0]!.index;
        const previousLast = replica.storage.lastIndex();
        replica.storage.append(ready.entries);
        if (first <= previousLast) batch.truncateAfter(replica.shardId, first - 1, previousLast);
        batch.appendEntries(replica.shardId, ready.entries);
        this.stats.entriesWritten += ready.entries.length;
      }
      if (ready.hardState !== undefined) {
        replica.storage.setHardState(ready.hardState);
        batch.setHardState(replica.shardId, ready.hardState);
      }
      mustSync ||= ready.mustSync;
      if (ready.softState !== undefined) this.onSoftState(replica, ready.softState.role, ready.softState.leader);
      this.apply(replica, ready, batch);
    }
    if (batch.size > 0) {
      await this.store.write(batch, { sync: mustSync });
      if (mustSync) this.stats.syncs++;
    }

    // 3. Send the rest, now that what they promise is durable; answer clients and reads.
    for (const [shardId, message] of late) this.transport.send(message.to, shardId, message);
    if (late.length > 0) this.transport.flush();
    for (const [replica, ready] of readies) {
      replica.completeApplied();
      for (const readState of ready.readStates) replica.onReadState(readState.index, readState.context);
      replica.serveAppliedReads();
    }

    // 4. Advance.
    for (const [replica] of readies) replica.raw.advance();
    if (readies.some(([replica]) => replica.raw.hasReady())) this.wakePending = true;
  }

  private onSoftState(replica: ShardReplica, role: Role, leader: number): void {
    const wasLeader = replica.isLeader;
    replica.role = role;
    if (leader !== replica.leader) this.stats.leaderChanges++;
    replica.leader = leader;
    if (role === Role.Leader && !wasLeader) {
      this.log.info({ shard: replica.shardId, term: replica.raw.term }, "became leader");
    } else if (role !== Role.Leader && wasLeader) {
      replica.failInflight(replica.notLeaderError(this.leaderAddress));
    }
  }

  private apply(replica: ShardReplica, ready: Ready, batch: StoreBatch): void {
    if (ready.committedEntries.length === 0) return;
    for (const entry of ready.committedEntries) {
      if (entry.type === EntryType.ConfChange) {
        const change = decodeConfChange(entry.data);
        replica.confState = replica.raw.applyConfChange(change);
        replica.storage.setConfState(replica.confState);
        batch.setConfState(replica.shardId, replica.confState);
        replica.machine.applyEntry(entry.index, new Uint8Array(0));
      } else {
        replica.applyNormal(entry);
      }
      this.stats.applied++;
    }
    const changes = replica.machine.takeChanges();
    for (const [key, record] of changes.counters) {
      batch.putCounter(replica.shardId, key, record === undefined ? undefined : encodeCounterRecord(record));
    }
    for (const [clientId, record] of changes.sessions) batch.putSession(replica.shardId, clientId, record);
    batch.setApplied(replica.shardId, replica.machine.appliedIndex, replica.machine.clockMs);
    this.maybeSnapshot(replica, batch);
  }

  private maybeSnapshot(replica: ShardReplica, batch: StoreBatch): void {
    const applied = replica.machine.appliedIndex;
    if (applied - replica.lastSnapshotIndex < this.config.cluster.snapshotEveryEntries) return;
    const snapshot = replica.storage.createSnapshot(applied, replica.confState, replica.machine.snapshot());
    const firstIndex = replica.storage.firstIndex();
    // Keep a tail of the log so briefly lagging followers catch up by log, not by snapshot.
    const keep = Math.min(1000, Math.floor(this.config.cluster.snapshotEveryEntries / 2));
    const compactTo = applied - keep;
    batch.putSnapshot(replica.shardId, snapshot);
    if (compactTo >= firstIndex) {
      replica.storage.compact(compactTo);
      batch.compactLog(replica.shardId, compactTo, firstIndex);
    }
    replica.lastSnapshotIndex = applied;
    this.stats.snapshotsTaken++;
  }

  private installSnapshot(replica: ShardReplica, ready: Ready, batch: StoreBatch): void {
    const snapshot = ready.snapshot!;
    const previousFirst = replica.storage.firstIndex();
    const previousLast = replica.storage.lastIndex();
    replica.storage.applySnapshot(snapshot);
    const machine = CounterStateMachine.restore(snapshot.data, replica.options);
    assert(machine.appliedIndex === snapshot.metadata.index, "snapshot state matches its index");
    replica.machine = machine;
    replica.confState = snapshot.metadata.confState;
    replica.lastSnapshotIndex = snapshot.metadata.index;
    batch.clearShardState(replica.shardId);
    if (previousLast >= previousFirst) batch.compactLog(replica.shardId, previousLast, previousFirst);
    batch.putSnapshot(replica.shardId, snapshot);
    batch.setConfState(replica.shardId, replica.confState);
    // The restored machine reports every counter and session as a change.
    const changes = machine.takeChanges();
    for (const [key, record] of changes.counters) batch.putCounter(replica.shardId, key, record === undefined ? undefined : encodeCounterRecord(record));
    for (const [clientId, record] of changes.sessions) batch.putSession(replica.shardId, clientId, record);
    batch.setApplied(replica.shardId, machine.appliedIndex, machine.clockMs);
    this.stats.snapshotsInstalled++;
    this.log.info({ shard: replica.shardId, index: snapshot.metadata.index }, "installed snapshot");
  }

  // ---- status and shutdown ----

  groupStatus(): Array<{ shardId: number; status: ReturnType<RawNode["status"]>; applied: number; epoch: number }> {
    return [...this.replicas.values()].map((replica) => ({
      shardId: replica.shardId,
      status: replica.raw.status(),
      applied: replica.machine.appliedIndex,
      epoch: replica.placement.epoch,
    }));
  }

  get inboundDroppedCount(): number {
    return this.inboundDropped;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Graceful stop: hand every leadership to an up-to-date follower (so clients see a transfer, not
   * an election timeout), then stop the loop, flush and close.
   */
  async stop(options: { transferLeadership?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const deadline = monotonicMs() + (options.timeoutMs ?? 3000);
    if (this.running && options.transferLeadership !== false) {
      for (const replica of this.replicas.values()) {
        if (!replica.isLeader) continue;
        const status = replica.raw.status();
        let best = 0;
        let bestMatch = -1;
        for (const [id, progress] of status.progress) {
          if (id === this.nodeId || progress.isLearner) continue;
          if (progress.match > bestMatch) {
            best = id;
            bestMatch = progress.match;
          }
        }
        if (best !== 0) replica.raw.transferLeader(best);
      }
      this.wake();
      while (monotonicMs() < deadline && [...this.replicas.values()].some((r) => r.isLeader)) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
    this.running = false;
    this.wake();
    await this.loopDone;
    for (const replica of this.replicas.values()) replica.failInflight(new UnavailableError(`node ${this.nodeId} is shutting down`));
    await this.transport?.close();
    await this.store?.close();
    this.log.info("node stopped");
  }
}
