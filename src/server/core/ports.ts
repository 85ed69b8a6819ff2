/**
 * The ports of the driver loop (driver-loop.ts): everything it needs of the world, as small
 * interfaces, so the same loop runs over the real parts (TallyNode binds LevelDB, the gRPC peer
 * transport and the process clock) or over simulated ones (a disk that loses unsynced writes, a
 * lossy network, a virtual clock). The loop touches nothing else that does I/O or reads time.
 *
 * What each port promises is written on it; the loop's own ordering guarantees are in the header of
 * driver-loop.ts and in docs/architecture.md ("The Ready contract as implemented").
 */
import type { Entry, HardState, LogIndex, Message, NodeId, Ready, Role, Snapshot } from "../../raft/types.js";
import type { NotLeaderError } from "../../util/errors.js";

// ---- storage: the Raft log and hard state ----

/** One atomic write to the log store (StoreBatch): what the loop itself puts in it. */
export interface LogBatch {
  /** Operations in the batch; a batch of size 0 is not written. */
  readonly size: number;
  /** Appends entries to the group's log (after truncateAfter() when they replace a suffix). */
  appendEntries(groupId: number, entries: Entry[]): void;
  /** Deletes the group's log entries (index, previousLastIndex]. */
  truncateAfter(groupId: number, index: LogIndex, previousLastIndex: LogIndex): void;
  setHardState(groupId: number, hardState: HardState): void;
}

/**
 * The log and hard-state store (NodeStore). Promises: a batch is written all or nothing; with
 * `sync`, write() resolves only once the batch is durable (it survives a crash), and without it the
 * batch may be lost by a crash but never torn; writes land in the order write() was called. A write
 * that fails rejects, and the loop stops (nothing it promised can be trusted any more).
 */
export interface LogStore<TBatch extends LogBatch> {
  batch(): TBatch;
  write(batch: TBatch, options: { sync: boolean }): Promise<void>;
}

// ---- storage: checkpoints ----

/**
 * Durable whole-state images of a shard ("checkpoints"), one file per (group, index), kept beside
 * the log store (FileCheckpointStore: <dataDir>/checkpoints/g<group>/<index>.ckpt). A checkpoint
 * becomes the shard's restart point only once the log store records its index (the snapshot
 * metadata record, written in a later loop batch): that record is the commit point, so a file
 * that is torn, or written but never recorded, is never read.
 *
 * Promises: write() resolves only once the checkpoint is durable under its final name (written to
 * a temporary name, fsynced, renamed, the directory fsynced), and a crash at any step leaves either
 * no file under the final name or the whole file; read() returns exactly the bytes written or
 * rejects with CorruptionError (every checkpoint carries a checksum its reader verifies, not this
 * store); list() names only completed checkpoints, ascending; remove() is idempotent.
 */
export interface CheckpointStore {
  /** Writes the checkpoint's bytes, the concatenation of `blocks`, under (groupId, index). */
  write(groupId: number, index: LogIndex, blocks: readonly Uint8Array[]): Promise<void>;
  read(groupId: number, index: LogIndex): Promise<Uint8Array>;
  /** `length` bytes (fewer at the end) from `offset`: for streaming a checkpoint to a follower. */
  readChunk(groupId: number, index: LogIndex, offset: number, length: number): Promise<Uint8Array>;
  /** The checkpoint's size in bytes; rejects when it does not exist. */
  size(groupId: number, index: LogIndex): Promise<number>;
  list(groupId: number): Promise<LogIndex[]>;
  remove(groupId: number, index: LogIndex): Promise<void>;
  /** Removes every checkpoint of the group (its replica is gone). */
  removeGroup(groupId: number): Promise<void>;
}

// ---- the peer network ----

/**
 * Outbound Raft messages (PeerTransport). Promises: send() never blocks and never throws for an
 * unreachable or slow peer (it may drop: Raft retransmits); messages to one peer leave in the order
 * they were sent; flush() hands everything queued to the wire. Inbound messages are delivered by
 * calling DriverLoop.receive(), from the network's own callbacks, never from inside iterate().
 */
export interface PeerNetwork {
  send(to: NodeId, groupId: number, message: Message): void;
  flush(): void;
}

// ---- the clock ----

/**
 * Time and timers (the process clock, or a virtual one). Promises: monotonicMs() never goes
 * backwards (ticks, deadlines and leases are measured with it); wallClockMs() is what a leader
 * stamps into entries, the only time a state machine sees, and may jump; a timer fires at most
 * once, no earlier than `ms` after setTimer(), unless cancelled first.
 */
export interface Clock {
  monotonicMs(): number;
  wallClockMs(): number;
  /** Runs `callback` once after `ms`; the returned function cancels it. */
  setTimer(ms: number, callback: () => void): () => void;
  /**
   * Resolves after everything already waiting (I/O callbacks, due timers) has had its turn
   * (setImmediate): the loop yields here between back-to-back iterations, so a long replay never
   * holds the event loop for more than one iteration.
   */
  yieldNow(): Promise<void>;
}

// ---- the groups ----

/** What the loop drives of a Raft group: the RawNode. */
export interface RaftGroup {
  readonly term: number;
  /** `heartbeatDue`: the node's shared heartbeat round is on this tick (src/raft/tick.ts). */
  tick(heartbeatDue?: boolean): void;
  step(message: Message): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(): void;
  /**
   * This node's log is durable up to (index, term): a leader counts it toward commit
   * (RawNode.persisted()). The loop steps acknowledgements while its write is in flight, so every
   * group it drives must run with RaftConfig.asyncStorageWrites (NodeGroups.raftConfig() sets it).
   */
  persisted(index: LogIndex, term: number): void;
  /** While true, ready() hands out no committed entries (they wait, still committed): see RawNode.holdApply. */
  holdApply: boolean;
}

/** The group's in-memory log that Raft reads (MemoryStorage); the loop keeps it equal to what it writes. */
export interface LogCache {
  lastIndex(): LogIndex;
  append(entries: Entry[]): void;
  setHardState(hardState: HardState): void;
}

/**
 * One hosted replica of a group as the loop sees it (GroupReplica): its Raft group, its log cache,
 * and the requests waiting on it. Every method is synchronous and runs inside one iteration.
 */
export interface LoopGroup {
  /** The Raft group id: the shard id, or 0 for the metadata group. */
  readonly shardId: number;
  readonly raw: RaftGroup;
  readonly storage: LogCache;
  /** Soft state as of the last Ready, set by the loop. */
  role: Role;
  leader: NodeId;
  readonly isLeader: boolean;
  notLeaderError(leaderAddress: (id: NodeId) => string | undefined): NotLeaderError;
  /** Fails the requests past their deadline and drops what is kept past its time. */
  expire(nowMs: number): void;
  /** Turns the queued commands into entries stamped with `nowWallMs` (leader), or refuses them. */
  proposeQueued(nowWallMs: number, leaderAddress: (id: NodeId) => string | undefined): void;
  /** Starts one ReadIndex round for the reads waiting for one. */
  issueReadIndex(leaderAddress: (id: NodeId) => string | undefined): void;
  /** Answers the applied writes up to `throughIndex` (all when omitted). */
  completeApplied(throughIndex?: LogIndex): void;
  onReadState(index: LogIndex, context: Uint8Array): void;
  serveAppliedReads(): void;
  /** Fails every waiting request (leadership lost, the replica going away, the loop stopping). */
  failInflight(error: Error, plantedNotLeaderAfterPropose?: boolean): void;
}

/**
 * The groups this node hosts. changeGroups() carries out the creations and removals decided since
 * the last iteration (from the map, a split, a removal from the group), writing and syncing its own
 * batch; all() and get() see the result.
 */
export interface GroupRegistry<TGroup extends LoopGroup> {
  changeGroups(): Promise<void>;
  /** Every hosted group, the metadata group first. */
  all(): Iterable<TGroup>;
  get(groupId: number): TGroup | undefined;
}

/**
 * The replicated state machines. Both calls change memory and add their effects to `batch` only,
 * so what a crash leaves is all of an iteration or none of it; apply() records the applied index in
 * the same batch as the effects (docs/adr/0004-apply-before-write.md).
 */
export interface ReplicatedStateMachines<TGroup extends LoopGroup, TBatch extends LogBatch> {
  /** Replaces the group's log and state with a Raft snapshot (index > 0). */
  installSnapshot(group: TGroup, snapshot: Snapshot, batch: TBatch): void;
  /** Applies committed entries in order; their waiting writes are answered by completeApplied(). */
  apply(group: TGroup, committedEntries: Entry[], batch: TBatch): void;
}

/** The counters the loop keeps (TallyNode.stats holds them, for metrics). */
export interface LoopStats {
  iterations: number;
  entriesWritten: number;
  syncs: number;
  leaderChanges: number;
  /** The most committed entry bytes one iteration handed out for applying, over all groups. */
  appliedBytesPerIterationMax: number;
}

/** Every port of one driver loop. */
export interface LoopPorts<TGroup extends LoopGroup, TBatch extends LogBatch> {
  store: LogStore<TBatch>;
  network: PeerNetwork;
  clock: Clock;
  groups: GroupRegistry<TGroup>;
  machines: ReplicatedStateMachines<TGroup, TBatch>;
}
