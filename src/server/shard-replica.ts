/**
 * One replica of one Raft group on this node (a counter shard, or the metadata group): its Raft
 * group, its log cache, its state machine, and the requests waiting on it. It is the driver loop's
 * LoopGroup (core/ports.ts), and the loop (core/driver-loop.ts) is the only caller; everything
 * here is synchronous and runs inside one loop iteration, so Raft state is never touched between a
 * Ready and its advance().
 */
import { MemoryStorage } from "../raft/memory-storage.js";
import { RawNode } from "../raft/raw-node.js";
import { type ConfState, type Entry, type LogIndex, type RaftConfig, ProposalDroppedError, Role } from "../raft/types.js";
import { encodeEntry, type Command, type CommandResult } from "../shard/commands.js";
import { CounterStateMachine, type OpResult, type ShardOptions } from "../shard/state-machine.js";
import { encodeMetaEntry, type MetaCommand, type MetaResult, type MetaStateMachine } from "../meta/map.js";
import { assert } from "../util/assert.js";
import { AmbiguousError, NotLeaderError, OverloadedError, UnavailableError } from "../util/errors.js";
import type { ShardDescriptor } from "./descriptor.js";
import type { LoopGroup } from "./core/ports.js";
import { ShardStorage } from "./shard-storage.js";
import { stageTrace, type WriteTrace } from "./core/stage-trace.js";

/** Queued commands are joined into entries of at most this many bytes (see proposeQueued). */
export const PROPOSAL_ENTRY_BYTES_TARGET = 16 * 1024;

/** What the replica needs of a state machine. */
export interface ReplicaMachine<TResult> {
  readonly appliedIndex: number;
  applyEntry(index: LogIndex, data: Uint8Array, admit?: any): TResult[];
}

export interface PendingCommand<TCommand = Command, TResult = CommandResult> {
  /** Released (undefined) once it is encoded into a proposed entry: only the answer is awaited then. */
  command: TCommand | undefined;
  /** Encoded size estimate, for the entry size bound. */
  bytes: number;
  deadlineMs: number;
  resolve(result: TResult, index: LogIndex, term: number): void;
  reject(error: Error): void;
  /** Set on the writes the stage trace samples (TALLY_TRACE_ADDS). */
  trace?: WriteTrace;
}

interface InflightEntry<TCommand, TResult> {
  term: number;
  /** One per command of the entry, in order (results are matched by position); ANSWERED once a deadline passed. */
  commands: Array<PendingCommand<TCommand, TResult>>;
  /** Commands not answered yet. */
  live: number;
}

/** Stands in an inflight entry for a command already answered (its deadline passed), keeping positions. */
const ANSWERED: PendingCommand<never, never> = {
  command: undefined,
  bytes: 0,
  deadlineMs: Number.POSITIVE_INFINITY,
  resolve: () => {},
  reject: () => {},
};

export interface ReadWaiter<TReplica = ShardReplica> {
  /** Serve once applied >= index. -1 while the ReadIndex round is outstanding. */
  index: LogIndex;
  deadlineMs: number;
  serve(replica: TReplica): void;
  reject(error: Error): void;
}

export interface ReplicaLimits {
  maxPendingProposals: number;
  maxEntryBytes: number;
}

export class GroupReplica<TCommand, TResult, TMachine extends ReplicaMachine<TResult>> implements LoopGroup {
  /** The Raft group id: the shard id, or 0 for the metadata group. */
  readonly shardId: number;
  readonly storage: MemoryStorage;
  raw: RawNode;
  machine: TMachine;
  confState: ConfState;
  /** Shards: the replicated descriptor (epoch, slot range) as of the applied index. */
  descriptor: ShardDescriptor;
  /** Mutations applied while this replica led, for load reports (ops/s per shard). */
  appliedCommands = 0;
  /** Keys routed here per 1/64 of the slot range since the last load report (leaders only). */
  readonly slotLoad = new Float64Array(64);
  /** Passed to the machine's applyEntry (shards: the routing check against the descriptor). */
  admit: unknown;

  role: Role = Role.Follower;
  leader = 0;
  lastSnapshotIndex: LogIndex = 0;

  /** Validated commands waiting for the next loop iteration to become one entry. */
  private queue: Array<PendingCommand<TCommand, TResult>> = [];
  private queueBytes = 0;
  /** Proposed entries by log index, waiting to be applied. */
  private inflight = new Map<LogIndex, InflightEntry<TCommand, TResult>>();
  private inflightCount = 0;
  /** Applied entries whose clients are answered after the apply batch is written. */
  private completions: Array<{ commands: Array<PendingCommand<TCommand, TResult>>; results: TResult[]; index: LogIndex; term: number }> =
    [];
  /** Linearizable reads waiting for the next ReadIndex round. */
  private readsToConfirm: Array<ReadWaiter<this>> = [];
  /** Reads whose ReadIndex round is out, by context. */
  private readRounds = new Map<string, Array<ReadWaiter<this>>>();
  private readRoundCounter = 0;
  /** Reads that know their index and wait for apply. */
  private readsAwaitingApply: Array<ReadWaiter<this>> = [];

  constructor(
    shardId: number,
    descriptor: ShardDescriptor,
    storage: MemoryStorage,
    raftConfig: RaftConfig,
    machine: TMachine,
    confState: ConfState,
    private readonly limits: ReplicaLimits,
    private readonly shardOptions: ShardOptions,
    private readonly encode: (timestampMs: number, commands: TCommand[]) => Uint8Array,
  ) {
    assert(raftConfig.storage === storage, "raft must read the replica's storage");
    this.shardId = shardId;
    this.descriptor = descriptor;
    this.storage = storage;
    this.raw = new RawNode(raftConfig);
    this.machine = machine;
    this.confState = confState;
  }

  get isLeader(): boolean {
    return this.role === Role.Leader;
  }

  notLeaderError(leaderAddress: (id: number) => string | undefined): NotLeaderError {
    const leader = this.leader === 0 ? undefined : this.leader;
    return new NotLeaderError(
      leader === undefined ? `shard ${this.shardId} has no known leader` : `shard ${this.shardId} is led by node ${leader}`,
      leader === undefined ? undefined : String(leader),
      leader === undefined ? undefined : leaderAddress(leader),
      this.shardId,
    );
  }

  enqueue(pending: PendingCommand<TCommand, TResult>): void {
    if (this.queue.length + this.inflightCount >= this.limits.maxPendingProposals) {
      pending.reject(new OverloadedError(`shard ${this.shardId} has ${this.limits.maxPendingProposals} mutations pending`, 20));
      return;
    }
    this.queue.push(pending);
    this.queueBytes += pending.bytes;
  }

  get hasQueued(): boolean {
    return this.queue.length > 0;
  }

  /** Mutations queued for the next entry plus proposed and not yet applied (bounded by maxPendingProposals). */
  get pendingProposals(): number {
    return this.queue.length + this.inflightCount;
  }

  /** Reads waiting for a ReadIndex round or for apply. */
  get pendingReads(): number {
    let rounds = 0;
    for (const waiters of this.readRounds.values()) rounds += waiters.length;
    return this.readsToConfirm.length + rounds + this.readsAwaitingApply.length;
  }

  /**
   * Leader-side batching: everything queued since the last iteration becomes as few entries as the
   * entry size bound allows (usually one). The leader stamps its wall clock into the entry; that is
   * the only time the state machine ever sees (session expiry is deterministic on every replica).
   */
  proposeQueued(nowWallMs: number, leaderAddress: (id: number) => string | undefined): void {
    if (this.queue.length === 0) return;
    const queue = this.queue;
    this.queue = [];
    this.queueBytes = 0;
    if (!this.isLeader) {
      const error = this.notLeaderError(leaderAddress);
      for (const pending of queue) pending.reject(error);
      return;
    }
    // Entries of at most PROPOSAL_ENTRY_BYTES_TARGET (a larger command alone): a replica applies
    // whole entries, so a burst queued behind a slow turn must not become one entry of megabytes.
    const entryBytesMax = Math.min(this.limits.maxEntryBytes, PROPOSAL_ENTRY_BYTES_TARGET);
    let start = 0;
    while (start < queue.length) {
      let end = start;
      let bytes = 0;
      while (end < queue.length && (end === start || bytes + queue[end]!.bytes <= entryBytesMax)) {
        bytes += queue[end]!.bytes;
        end++;
      }
      const group = queue.slice(start, end);
      start = end;
      const data = this.encode(
        nowWallMs,
        group.map((p) => p.command!),
      );
      // The entry holds the command now: its ops (an object per op) need not live until the commit,
      // where they would be promoted to the old generation and feed its collections.
      for (const pending of group) pending.command = undefined;
      try {
        this.raw.propose(data);
      } catch (error) {
        if (!(error instanceof ProposalDroppedError)) throw error;
        const failure =
          error.reason === "queue-full"
            ? new OverloadedError(`shard ${this.shardId}: raft proposal queue is full`, 20)
            : this.notLeaderError(leaderAddress);
        for (const pending of group) pending.reject(failure);
        continue;
      }
      this.inflight.set(this.raw.lastIndex, { term: this.raw.term, commands: group, live: group.length });
      if (stageTrace.enabled) this.traceProposed(group);
      this.inflightCount += group.length;
    }
  }

  private traceProposed(group: Array<PendingCommand<TCommand, TResult>>): void {
    const traces: WriteTrace[] = [];
    for (const pending of group) if (pending.trace !== undefined) traces.push(pending.trace);
    if (traces.length > 0) stageTrace.proposed(this.shardId, this.raw.lastIndex, traces, performance.now());
  }

  /** Applies one committed normal entry and completes the requests that proposed it. */
  applyNormal(entry: Entry): void {
    const results = this.machine.applyEntry(entry.index, entry.data, this.admit);
    const waiting = this.inflight.get(entry.index);
    if (waiting === undefined) return;
    if (stageTrace.enabled) stageTrace.applied(this.shardId, entry.index, performance.now());
    this.inflight.delete(entry.index);
    this.inflightCount -= waiting.live;
    if (waiting.term !== entry.term) {
      // Our entry at this index was overwritten by another leader's: it was never applied, but the
      // client cannot tell from here whether a retry already landed. It retries with the same seq.
      const error = new UnavailableError(`shard ${this.shardId}: leadership changed before the write committed; retry`);
      for (const pending of waiting.commands) pending.reject(error);
      return;
    }
    assert(results.length === waiting.commands.length, "one result per command");
    this.appliedCommands += waiting.live;
    this.completions.push({ commands: waiting.commands, results, index: entry.index, term: entry.term });
  }

  /**
   * Answers the clients whose entries were applied, up to `throughIndex`. An applied entry is
   * committed, so it is durable on a quorum and replaying the log rebuilds its effects after a
   * crash: its answer need not wait for the batch holding the applied state. It must wait for this
   * node's own copy only where that copy is part of the batch being written (a single-voter group
   * commits an entry in the Ready that appends it), so the driver passes the index below the
   * Ready's first new entry before the write, and everything after it.
   */
  completeApplied(throughIndex = Number.POSITIVE_INFINITY): void {
    if (this.completions.length === 0) return;
    let done = 0;
    while (done < this.completions.length && this.completions[done]!.index <= throughIndex) done++;
    if (done === 0) return;
    const completions = done === this.completions.length ? this.completions : this.completions.slice(0, done);
    this.completions = done === this.completions.length ? [] : this.completions.slice(done);
    for (const { commands, results, index, term } of completions) {
      commands.forEach((pending, i) => pending.resolve(results[i]!, index, term));
    }
    if (stageTrace.enabled) {
      const now = performance.now();
      for (const { commands } of completions) for (const pending of commands) if (pending.trace) stageTrace.finish(pending.trace, now);
    }
  }

  /**
   * Leadership lost, or the replica is going away. Requests still queued never entered the log and
   * get `error` (NOT_LEADER when leadership moved: safe to resend). Proposed ones may still commit
   * under the next leader, so they are AMBIGUOUS (retry with the same seq) unless `error` itself is
   * ambiguous-safe (an UNAVAILABLE or AMBIGUOUS error already says "unknown"). The contract:
   * NOT_LEADER only for a write that provably never entered the log.
   * `plantedNotLeaderAfterPropose` is the chaos harness's planted bug (the old behaviour).
   */
  failInflight(error: Error, plantedNotLeaderAfterPropose = false): void {
    const proposedError =
      error instanceof NotLeaderError && !plantedNotLeaderAfterPropose
        ? new AmbiguousError(
            `shard ${this.shardId}: leadership moved after the write was proposed (${error.message}); it may still commit: retry with the same seq`,
          )
        : error;
    for (const entry of this.inflight.values()) for (const pending of entry.commands) pending.reject(proposedError);
    this.inflight.clear();
    this.inflightCount = 0;
    for (const pending of this.queue) pending.reject(error);
    this.queue = [];
    this.queueBytes = 0;
    for (const waiters of this.readRounds.values()) for (const waiter of waiters) waiter.reject(error);
    this.readRounds.clear();
    for (const waiter of this.readsToConfirm) waiter.reject(error);
    this.readsToConfirm = [];
  }

  /** Fails the requests past their deadline; a shard's storage drops a built snapshot past its time. */
  expire(nowMs: number): void {
    for (const [index, entry] of this.inflight) {
      let error: AmbiguousError | undefined;
      const commands = entry.commands;
      for (let i = 0; i < commands.length; i++) {
        if (commands[i]!.deadlineMs > nowMs) continue;
        error ??= new AmbiguousError(`shard ${this.shardId}: write at index ${index} not known to be committed before its deadline`);
        commands[i]!.reject(error);
        // Kept in place: the entry may still commit, and its results are matched by position.
        commands[i] = ANSWERED;
        entry.live--;
        this.inflightCount--;
      }
      if (entry.live === 0) this.inflight.delete(index);
    }
    const keep = (list: Array<ReadWaiter<this>>) => {
      if (!list.some((waiter) => waiter.deadlineMs <= nowMs)) return list;
      return list.filter((waiter) => {
        if (waiter.deadlineMs > nowMs) return true;
        waiter.reject(new UnavailableError(`shard ${this.shardId}: read not served before its deadline`));
        return false;
      });
    };
    this.readsToConfirm = keep(this.readsToConfirm);
    this.readsAwaitingApply = keep(this.readsAwaitingApply);
    for (const [context, waiters] of this.readRounds) {
      const left = keep(waiters);
      if (left.length === 0) this.readRounds.delete(context);
      else this.readRounds.set(context, left);
    }
  }

  // ---- reads ----

  /**
   * True when a linearizable read may be answered from applied state right now (thesis 6.4.1):
   * we hold a valid lease (no other leader can exist), and we have applied everything committed,
   * which includes every write any leader ever acknowledged.
   */
  canServeLeaseRead(): boolean {
    return this.isLeader && this.raw.leaseValid() && this.machine.appliedIndex >= this.raw.commitIndex;
  }

  addLinearizableRead(waiter: ReadWaiter<this>): void {
    this.readsToConfirm.push(waiter);
  }

  addReadAtIndex(waiter: ReadWaiter<this>): void {
    if (this.machine.appliedIndex >= waiter.index) waiter.serve(this);
    else this.readsAwaitingApply.push(waiter);
  }

  /** One ReadIndex round for every read that arrived since the last iteration (thesis 6.4, batched). */
  issueReadIndex(leaderAddress: (id: number) => string | undefined): void {
    if (this.readsToConfirm.length === 0) return;
    const waiters = this.readsToConfirm;
    this.readsToConfirm = [];
    const context = `${this.shardId}:${++this.readRoundCounter}`;
    try {
      this.raw.readIndex(new TextEncoder().encode(context));
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      const failure =
        error.reason === "queue-full"
          ? new OverloadedError(`shard ${this.shardId}: too many reads waiting for a ReadIndex round`, 10)
          : this.notLeaderError(leaderAddress);
      for (const waiter of waiters) waiter.reject(failure);
      return;
    }
    this.readRounds.set(context, waiters);
  }

  onReadState(index: LogIndex, context: Uint8Array): void {
    const key = new TextDecoder().decode(context);
    const waiters = this.readRounds.get(key);
    if (waiters === undefined) return;
    this.readRounds.delete(key);
    for (const waiter of waiters) {
      waiter.index = index;
      this.addReadAtIndex(waiter);
    }
  }

  serveAppliedReads(): void {
    if (this.readsAwaitingApply.length === 0) return;
    const applied = this.machine.appliedIndex;
    const still: Array<ReadWaiter<this>> = [];
    for (const waiter of this.readsAwaitingApply) {
      if (waiter.index <= applied) waiter.serve(this);
      else still.push(waiter);
    }
    this.readsAwaitingApply = still;
  }

  get options(): ShardOptions {
    return this.shardOptions;
  }
}

/** A shard's replica: its storage is a ShardStorage (checkpoint progress beside the log). */
export type ShardReplica = GroupReplica<Command, CommandResult, CounterStateMachine> & { readonly storage: ShardStorage };
export type MetaReplica = GroupReplica<MetaCommand, MetaResult, MetaStateMachine>;

/** A counter as a read sees it: a key whose TTL is due by this replica's wall clock reads as absent. */
export function readCounter(replica: ShardReplica, key: Uint8Array): OpResult | undefined {
  return replica.machine.get(key, Date.now());
}

export const encodeShardEntry = (timestampMs: number, commands: Command[]): Uint8Array => encodeEntry({ timestampMs, commands });
export const encodeMetaCommands = (timestampMs: number, commands: MetaCommand[]): Uint8Array => encodeMetaEntry(timestampMs, commands);
