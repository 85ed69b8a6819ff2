/**
 * RawNode: the public face of the Raft core (etcd-io/raft rawnode.go). Synchronous, deterministic,
 * I/O-free: the caller feeds ticks, messages and proposals, and handles one Ready at a time in the
 * order documented on Ready (types.ts): install snapshot, persist entries + hard state, send
 * messages, apply committed entries, serve read states, advance().
 *
 * Membership follows etcd's model: a configuration takes effect when the caller APPLIES the
 * ConfChange entry and calls applyConfChange(), not when the entry is appended (the thesis 4.1
 * rule). Why: the log tail can be truncated by a new leader, and an append-time configuration
 * would then have to be rolled back; apply-time configurations only ever move forward and are
 * identical on every replica at the same applied index. Safety holds because a leader admits at
 * most one unapplied ConfChange (pendingConfIndex) and a node with a committed but unapplied
 * ConfChange does not campaign.
 *
 * The caller persists the ConfState that applyConfChange() returns (MemoryStorage.setConfState or
 * the storage layer's equivalent), in the same batch as the applied index.
 */
import { assert } from "../util/assert.js";
import { InvalidArgumentError } from "../util/errors.js";
import { applyConfChange } from "./confchange-apply.js";
import { campaignLocal } from "./election.js";
import { transferLeader } from "./leader-transfer.js";
import type { MemoryStorage } from "./memory-storage.js";
import { maybeAutoLeave, propose, proposeConfChange } from "./proposal.js";
import { BOOTSTRAP_TERM, Raft } from "./raft.js";
import { readIndex } from "./read-only.js";
import { flushPending, maybeCommit, onCommitAdvanced, reportSnapshot, reportUnreachable } from "./replication.js";
import { step } from "./step.js";
import { tick } from "./tick.js";
import {
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type LogIndex,
  type Message,
  MessageType,
  NONE,
  type NodeId,
  type PeerProgress,
  type RaftConfig,
  type RaftStatus,
  type Ready,
  Role,
  type SoftState,
  type Term,
} from "./types.js";
import { isLocalMessage, isResponseMessage, payloadBytes } from "./util.js";

export { encodeConfChange, decodeConfChange } from "./confchange-codec.js";
export { BOOTSTRAP_TERM } from "./raft.js";
export { campaignTransferContext } from "./election.js";
export { MAX_PENDING_READS } from "./read-only.js";

/** What the outstanding Ready handed out, so advance() knows what is now persisted and applied. */
interface ReadyMark {
  lastEntryIndex: LogIndex;
  lastEntryTerm: Term;
  snapshotIndex: LogIndex;
  lastCommittedIndex: LogIndex;
  committedPayloadBytes: number;
}

export class RawNode {
  private readonly raft: Raft;
  private readonly forgetVote: boolean;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private outstanding: ReadyMark | undefined = undefined;
  /**
   * While true, ready() hands out no committed entries (they stay committed and are handed out
   * once it is false again): the application holds its state machine still for a while, e.g. to
   * copy it in slices across event-loop turns. Entries are still appended, sent and committed.
   */
  holdApply = false;

  /**
   * Restores term, vote, commit and configuration from config.storage.initialState(). A node whose
   * storage holds no configuration (a new member) stays a passive follower until a leader
   * contacts it; it never campaigns while it is not a voter.
   */
  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.forgetVote = config.testKnobs?.forgetVote === true;
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  /**
   * Seeds an EMPTY storage for a brand-new group whose initial voters are `voters`. Writes exactly:
   *   - snapshot { metadata: { index: 1, term: 1, confState: { voters (sorted), learners: [],
   *     votersOutgoing: [], learnersNext: [], autoLeave: false } }, data: empty }
   *     (so firstIndex() = 2, lastIndex() = 1, term(1) = 1);
   *   - hard state { term: 1, vote: 0, commit: 1 };
   *   - conf state = the snapshot's confState.
   * Term 1 (BOOTSTRAP_TERM) has no leader; the first election is for term 2. Nodes added later
   * start from empty storage and receive a snapshot (at least this one) from the leader, like
   * TiKV's peers created by a membership change. Storage layers other than MemoryStorage must
   * write the same three things.
   */
  /** `data`: the state machine's state at index 1 (what a replica restoring this snapshot starts from). */
  static bootstrap(storage: MemoryStorage, voters: NodeId[], data: Uint8Array = new Uint8Array(0)): void {
    if (voters.length === 0) throw new InvalidArgumentError("bootstrap: at least one voter is required");
    for (const id of voters) {
      if (!Number.isSafeInteger(id) || id <= 0) throw new InvalidArgumentError(`bootstrap: bad node id ${id}`);
    }
    if (new Set(voters).size !== voters.length) throw new InvalidArgumentError("bootstrap: duplicate voter ids");
    const { hardState } = storage.initialState();
    if (storage.lastIndex() !== 0 || storage.firstIndex() !== 1 || hardState.term !== 0) {
      throw new InvalidArgumentError("bootstrap: storage is not empty");
    }
    const confState: ConfState = {
      voters: [...voters].sort((a, b) => a - b),
      learners: [],
      votersOutgoing: [],
      learnersNext: [],
      autoLeave: false,
    };
    storage.applySnapshot({ metadata: { index: 1, term: BOOTSTRAP_TERM, confState }, data });
    storage.setHardState({ term: BOOTSTRAP_TERM, vote: NONE, commit: 1 });
    storage.setConfState(confState);
  }

  /**
   * One logical clock tick (election and heartbeat timeouts, leases are counted in ticks).
   * `heartbeatDue`: the node's shared heartbeat round is on this tick (tick.ts).
   */
  tick(heartbeatDue = false): void {
    tick(this.raft, heartbeatDue);
  }

  /**
   * Starts an election now (PreVote first when enabled). Ignored by a non-voter, by a leader, and
   * (with checkQuorum) by a node that heard from a leader within electionTicks: its own vote is a
   * vote, and that leader may hold a lease that counts on it (thesis 4.2.3, 6.4.1).
   */
  campaign(): void {
    campaignLocal(this.raft);
  }

  /** Appends a normal entry. Throws ProposalDroppedError (not-leader, no-leader, transferring, queue-full). */
  propose(data: Uint8Array): void {
    propose(this.raft, data);
  }

  /**
   * Appends a ConfChange entry. Throws ProposalDroppedError as propose(), plus conf-change-pending
   * while an earlier one is unapplied; throws InvalidArgumentError when the change cannot apply to
   * the current configuration (e.g. removes every voter, changes several voters without a joint
   * transition, enters a joint config twice, leaves a non-joint config).
   */
  proposeConfChange(cc: ConfChange): void {
    proposeConfChange(this.raft, cc);
  }

  /**
   * The caller invokes this when it applies a committed ConfChange entry (Ready step 4); the new
   * configuration takes effect now. Returns the ConfState to persist. A change that no longer
   * applies is ignored deterministically (the current ConfState is returned).
   */
  applyConfChange(cc: ConfChange): ConfState {
    return applyConfChange(this.raft, cc);
  }

  /**
   * Feeds a message from the network. Throws InvalidArgumentError for a message addressed to
   * another node or of a local-only type (Hup, Beat, Prop, Unreachable, SnapStatus, CheckQuorum).
   * Responses from nodes that are not members are dropped.
   */
  step(message: Message): void {
    if (!(message.type in MessageType)) throw new InvalidArgumentError(`raft step: unknown message type ${message.type}`);
    if (isLocalMessage(message.type)) {
      throw new InvalidArgumentError(`raft step: ${MessageType[message.type]} is a local message type`);
    }
    // Only forwarded ReadIndex requests travel without a term; anything else would skip the
    // term checks of paper 5.1.
    if (message.term === 0 && message.type !== MessageType.ReadIndex) {
      throw new InvalidArgumentError(`raft step: ${MessageType[message.type]} without a term`);
    }
    if (!Array.isArray(message.entries)) throw new InvalidArgumentError("raft step: entries must be an array");
    if (message.to !== this.raft.id) {
      throw new InvalidArgumentError(`raft step: message for ${message.to} delivered to ${this.raft.id}`);
    }
    if (isResponseMessage(message.type) && !this.raft.tracker.progress.has(message.from)) {
      if (message.type !== MessageType.ReadIndexResp) return;
    }
    step(this.raft, message);
  }

  /**
   * Requests a linearizable read point (thesis 6.4). A ReadState { index, context } appears in a
   * later Ready; serve the read once applied >= index. Throws ProposalDroppedError('no-leader')
   * when no leader is known and ('queue-full') when MAX_PENDING_READS are waiting. Reads pending
   * when leadership changes are dropped: callers wait with a deadline.
   */
  readIndex(context: Uint8Array): void {
    readIndex(this.raft, context);
  }

  /** Hands leadership to `transferee` (thesis 3.10); forwarded to the leader when called on a follower. */
  transferLeader(transferee: NodeId): void {
    transferLeader(this.raft, transferee);
  }

  /** The transport failed to deliver to `id`: the leader falls back to probing it. */
  reportUnreachable(id: NodeId): void {
    reportUnreachable(this.raft, id);
  }

  /** Outcome of sending a Snap message to `id`. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    reportSnapshot(this.raft, id, ok);
  }

  /** True when ready() would return something. False while a Ready is outstanding (before advance()). */
  hasReady(): boolean {
    if (this.outstanding !== undefined) return false;
    const r = this.raft;
    flushPending(r);
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.log.unstable.length > 0 || r.log.unstable.snapshot !== undefined) return true;
    if (!this.holdApply && r.log.hasNextCommittedEntries()) return true;
    const ss = r.softState();
    if (ss.leader !== this.prevSoftState.leader || ss.role !== this.prevSoftState.role) return true;
    const hs = this.prevHardState;
    return r.term !== hs.term || r.vote !== hs.vote || r.log.committed !== hs.commit;
  }

  /** The next batch of work. Must be followed by advance() before the next ready(). */
  ready(): Ready {
    assert(this.outstanding === undefined, "raft: ready() called again before advance()");
    const r = this.raft;
    flushPending(r);
    r.checkInvariants();

    const rd: Ready = {
      softState: undefined,
      hardState: undefined,
      entries: r.log.unstable.all(),
      snapshot: r.log.unstable.snapshot,
      committedEntries: this.holdApply ? [] : r.log.nextCommittedEntries(r.maxCommittedSizePerReady),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: false,
    };
    r.msgs = [];
    r.readStates = [];

    const ss = r.softState();
    if (ss.leader !== this.prevSoftState.leader || ss.role !== this.prevSoftState.role) {
      rd.softState = ss;
      this.prevSoftState = ss;
    }
    const hs = r.hardState();
    const prev = this.prevHardState;
    if (hs.term !== prev.term || hs.vote !== prev.vote || hs.commit !== prev.commit) {
      rd.hardState = this.forgetVote ? { term: hs.term, vote: NONE, commit: hs.commit } : hs;
      this.prevHardState = hs;
    }
    // Term and vote must be durable before any message that depends on them leaves (paper
    // Figure 2: "respond to RPCs only after updating stable storage").
    rd.mustSync = rd.entries.length > 0 || hs.term !== prev.term || hs.vote !== prev.vote;

    const lastEntry: Entry | undefined = rd.entries[rd.entries.length - 1];
    let committedPayloadBytes = 0;
    for (let i = 0; i < rd.committedEntries.length; i++) committedPayloadBytes += payloadBytes(rd.committedEntries[i]!);
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    this.outstanding = {
      lastEntryIndex: lastEntry?.index ?? 0,
      lastEntryTerm: lastEntry?.term ?? 0,
      snapshotIndex: rd.snapshot?.metadata.index ?? 0,
      lastCommittedIndex: lastCommitted?.index ?? 0,
      committedPayloadBytes,
    };
    return rd;
  }

  /** The caller handled the last Ready: its entries are stable and its committed entries applied. */
  advance(): void {
    const mark = this.outstanding;
    assert(mark !== undefined, "raft: advance() without a Ready");
    this.outstanding = undefined;
    const r = this.raft;
    if (mark.lastEntryIndex > 0) r.log.stableTo(mark.lastEntryIndex, mark.lastEntryTerm);
    if (mark.snapshotIndex > 0) {
      r.log.stableSnapTo(mark.snapshotIndex);
      if (mark.snapshotIndex > r.log.applied) r.log.appliedTo(mark.snapshotIndex);
    }
    if (mark.lastCommittedIndex > 0 && mark.lastCommittedIndex > r.log.applied) {
      r.appliedTo(mark.lastCommittedIndex, mark.committedPayloadBytes);
    }
    maybeAutoLeave(r);
    r.checkInvariants();
  }

  /**
   * With asyncStorageWrites: this node's log up to (index, term) is durable. A leader counts it
   * toward commit now (a follower's acknowledgement is its AppResp, sent by the driver after the
   * same write). Ignored when not leading or when the entry at index is no longer that one.
   */
  persisted(index: LogIndex, term: Term): void {
    const r = this.raft;
    if (r.role !== Role.Leader || index > r.log.lastIndex() || !r.log.matchTerm(index, term)) return;
    const self = r.tracker.progress.get(r.id);
    if (self === undefined) return;
    if (self.maybeUpdate(index) && maybeCommit(r)) onCommitAdvanced(r);
  }

  status(): RaftStatus {
    const r = this.raft;
    const progress = new Map<NodeId, PeerProgress>();
    if (r.role === Role.Leader) {
      for (const id of r.tracker.ids) progress.set(id, r.tracker.progress.get(id)!.toPeerProgress());
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      role: r.role,
      leader: r.lead,
      leadTransferee: r.leadTransferee,
      leaseValid: r.leaseValid(),
      leaseRemainingTicks: r.leaseRemainingTicks(),
      config: r.tracker.confState(),
      progress,
    };
  }

  /** Cheap accessors for hot paths (status() builds the whole progress map). */
  get term(): Term {
    return this.raft.term;
  }

  get commitIndex(): LogIndex {
    return this.raft.log.committed;
  }

  get lastIndex(): LogIndex {
    return this.raft.log.lastIndex();
  }

  /** Leader with a valid lease and no transfer in progress (thesis 6.4.1). */
  leaseValid(): boolean {
    return this.raft.leaseValid();
  }

  /** Ticks since this replica last knew a leader that reaches a quorum (Raft.leaderContactTicks). */
  leaderContactTicks(): number {
    return this.raft.leaderContactTicks();
  }
}
