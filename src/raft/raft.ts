/**
 * The Raft state machine's state (etcd-io/raft raft.go, the `raft` struct): term, vote, role, log,
 * progress, timers, and the leader's replication, ReadIndex and lease state, with the queries on it
 * and the role transitions that only reset it. Synchronous and deterministic: input is tick(),
 * step() and the local calls; output is state plus `msgs`/`readStates`, collected by RawNode into
 * a Ready. Time is ticks; randomness is config.prng.
 *
 * What the node does lives in one file per concern, as free functions that take the Raft (etcd's
 * stepLeader(r, m)). Each file imports only the ones above it in this list, so there is no cycle:
 *   read-only.ts         heartbeat rounds, ReadIndex, leases (etcd read_only.go)
 *   leader-transfer.ts   leadership transfer
 *   replication.ts       the follower's side of App/Heartbeat/Snap; the leader's acks, commit, sends
 *   proposal.ts          proposals, the uncommitted-bytes bound, leaving a joint configuration
 *   confchange-apply.ts  applying a configuration change
 *   election.ts          campaigns, votes, becoming leader
 *   tick.ts              election and heartbeat timers, CheckQuorum
 *   step.ts              step() and the step function of each role
 *
 * Invariant: log.applied <= log.committed <= log.lastIndex().
 * Invariant: term never decreases; vote is set at most once per term.
 * Invariant: at most one leader per term (Election Safety, paper Figure 3), hence at most one
 *            node with role Leader and a given term.
 */
import { assert } from "../util/assert.js";
import type { Prng } from "../util/prng.js";
import { validateConfig } from "./config.js";
import { RaftLog } from "./raft-log.js";
import { ProgressTracker } from "./tracker.js";
import {
  type HardState,
  type LogIndex,
  type Message,
  MessageType,
  NONE,
  type NodeId,
  type RaftConfig,
  type RaftTestKnobs,
  type ReadState,
  Role,
  type SoftState,
  type Term,
} from "./types.js";

/** Term written by RawNode.bootstrap; no leader ever exists in it (the first election is term 2). */
export const BOOTSTRAP_TERM: Term = 1;

/** Send ticks of the most recent heartbeat rounds (a lease is extended only from a recent round). */
export const ROUND_RING = 64;

export const emptyData = new Uint8Array(0);

export interface PendingRead {
  /** The leader's commit index when the read was accepted (thesis 6.4 step 1). */
  index: LogIndex;
  context: Uint8Array;
  /** Requester; this node's id for local reads. */
  from: NodeId;
  /** Heartbeat round whose quorum acknowledgement confirms leadership for this read. */
  round: number;
}

/**
 * Its fields are internal to src/raft (Go's package scope): the concern files above read and write
 * them, RawNode reads them, and index.ts does not export Raft. What only this class touches stays
 * private.
 */
export class Raft {
  readonly id: NodeId;
  term: Term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: Role = Role.Follower;
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;
  isLearner = false;

  /** Outgoing messages, drained by each Ready. */
  msgs: Message[] = [];
  /** Confirmed reads, drained by each Ready. */
  readStates: ReadState[] = [];

  // Configuration.
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly maxSizePerMsg: number;
  readonly maxUncommittedEntriesBytes: number;
  readonly maxCommittedSizePerReady: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly leaseDriftTicks: number;
  private readonly prng: Prng;
  readonly knobs: RaftTestKnobs;
  /** RaftConfig.asyncStorageWrites: the leader's own match advances only through RawNode.persisted(). */
  readonly asyncStorageWrites: boolean;
  /** RaftConfig.commitUpdatesOnTick. */
  readonly commitUpdatesOnTick: boolean;
  private readonly debugSink: ((line: string) => void) | undefined;

  // Timers, in ticks.
  /** Ticks since this node was created (the lease clock). */
  now = 0;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  /**
   * Ticks since this node last heard from a leader (as a follower) or was leader. While it is below
   * electionTicks the node refuses votes (thesis 4.2.3), which is what makes leases safe.
   */
  leaderContactElapsed: number;
  /** The tick this node last became leader (leaderContactTicks() before a round of its term is acknowledged). */
  leaderSinceTick = 0;

  // Leader state.
  leadTransferee: NodeId = NONE;
  /** Index of the latest ConfChange this leader may have in its log; at most one is unapplied. */
  pendingConfIndex: LogIndex = 0;
  /** Payload bytes of this leader's uncommitted entries (bounded by maxUncommittedEntriesBytes). */
  uncommittedSize = 0;
  /** An entry of the current term is committed (paper 5.4.2; thesis 6.4 for reads). */
  termCommitted = false;
  /** A TimeoutNow went out this term: a forced election may follow at any time, so no lease. */
  timeoutNowSent = false;
  /** Peers may be sent App messages (set by anything that can unblock replication). */
  appendDirty = false;
  /** With commitUpdatesOnTick: a tick came, so the next flush may send commit-only Apps. */
  commitUpdateDue = false;

  // ReadIndex and lease state (thesis 6.4, 6.4.1).
  /** Last heartbeat round sent; rounds are numbered for the node's lifetime. */
  round = 0;
  readonly roundIds = new Float64Array(ROUND_RING);
  readonly roundSendTicks = new Float64Array(ROUND_RING);
  quorumRoundSeen = 0;
  pendingReads: PendingRead[] = [];
  pendingReadsHead = 0;
  deferredReads: PendingRead[] = [];
  readRoundWanted = false;
  /** The lease is valid while now < leaseExpireTick. */
  leaseExpireTick = 0;

  constructor(config: RaftConfig) {
    validateConfig(config);
    this.id = config.id;
    this.electionTicks = config.electionTicks;
    this.heartbeatTicks = config.heartbeatTicks;
    this.maxSizePerMsg = config.maxSizePerMsg;
    this.maxUncommittedEntriesBytes = config.maxUncommittedEntriesBytes;
    this.maxCommittedSizePerReady = config.maxCommittedSizePerReady;
    this.preVote = config.preVote;
    this.checkQuorum = config.checkQuorum;
    this.leaseDriftTicks = config.leaseDriftTicks;
    this.prng = config.prng;
    this.knobs = config.testKnobs ?? {};
    this.asyncStorageWrites = config.asyncStorageWrites === true;
    this.commitUpdatesOnTick = config.commitUpdatesOnTick === true;
    this.debugSink = config.debug;

    this.log = new RaftLog(config.storage);
    const { hardState, confState } = config.storage.initialState();
    this.tracker = new ProgressTracker(config.maxInflightMessages, config.maxInflightBytes);
    this.tracker.restore(confState, this.log.lastIndex());
    this.isLearner = this.tracker.progress.get(this.id)?.isLearner ?? false;
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) this.loadState(hardState);
    if (config.applied !== undefined && config.applied > 0) {
      assert(config.applied >= this.log.applied, `raft: config.applied ${config.applied} is below the snapshot index ${this.log.applied}`);
      assert(
        config.applied <= this.log.committed,
        `raft: config.applied ${config.applied} is beyond the commit index ${this.log.committed}`,
      );
      this.log.appliedTo(config.applied);
    }
    this.becomeFollower(this.term, NONE);
    // A restarted node may have acknowledged a heartbeat round that some leader's lease counts on;
    // it has forgotten when, so it assumes "just now" (a quiet period of one election timeout).
    this.leaderContactElapsed = this.checkQuorum && this.term > BOOTSTRAP_TERM ? 0 : this.electionTicks;
  }

  private loadState(hs: HardState): void {
    assert(Number.isInteger(hs.term) && hs.term >= 0, "raft: bad hard state term");
    assert(hs.commit <= this.log.lastIndex(), `raft: hard state commit ${hs.commit} is beyond the last index ${this.log.lastIndex()}`);
    this.log.commitTo(Math.max(hs.commit, this.log.committed));
    this.term = hs.term;
    this.vote = hs.vote;
  }

  // --- Small queries -------------------------------------------------------------------------

  softState(): SoftState {
    return { leader: this.lead, role: this.role };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /** May this node become leader? Voters only, not while installing a snapshot (etcd promotable). */
  promotable(): boolean {
    const pr = this.tracker.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && this.log.unstable.snapshot === undefined;
  }

  leaseEnabled(): boolean {
    return this.checkQuorum && this.leaseDriftTicks > 0;
  }

  /**
   * Thesis 6.4.1: a leader may serve reads locally while a quorum acknowledged a heartbeat round
   * sent less than (electionTicks - leaseDriftTicks) ticks ago, because every member of that quorum
   * refuses votes for electionTicks after hearing from it. Never during a transfer, nor after a
   * TimeoutNow this term (its forced election bypasses that refusal), nor before an entry of this
   * term is committed (the commit index may still be stale, thesis 6.4).
   */
  leaseValid(): boolean {
    return (
      this.role === Role.Leader &&
      this.leaseEnabled() &&
      this.leadTransferee === NONE &&
      !this.timeoutNowSent &&
      this.termCommitted &&
      this.now < this.leaseExpireTick
    );
  }

  /**
   * Ticks since this replica last knew of a leader that reaches a quorum; the eventual buffer's
   * admission asks it (a node cut off from a shard's leader cannot flush that shard).
   * A follower: ticks since it last heard from its leader (MAX_SAFE_INTEGER when it knows none).
   * A leader: 0 while its lease holds; else ticks since its latest quorum-acknowledged heartbeat
   * round of this term was sent, or since it became leader when none was yet (a cut-off leader
   * ages until CheckQuorum makes it step down). A candidate: MAX_SAFE_INTEGER. Without leases
   * (no CheckQuorum or no drift margin) a leader answers 0: it cannot tell.
   */
  leaderContactTicks(): number {
    if (this.role === Role.Leader) {
      if (!this.leaseEnabled() || this.leaseValid()) return 0;
      const round = this.tracker.quorumRound();
      const slot = round % ROUND_RING;
      if (round > 0 && this.roundIds[slot] === round) return Math.max(0, this.now - this.roundSendTicks[slot]!);
      return this.now - this.leaderSinceTick; // no round of this term acknowledged yet
    }
    if (this.role !== Role.Follower || this.lead === NONE) return Number.MAX_SAFE_INTEGER;
    return this.leaderContactElapsed;
  }

  leaseRemainingTicks(): number {
    return this.leaseValid() ? this.leaseExpireTick - this.now : 0;
  }

  debug(line: string): void {
    if (this.debugSink !== undefined) this.debugSink(`${this.id} [term ${this.term} ${Role[this.role]}] ${line}`);
  }

  /**
   * Invariant: every message leaves in this node's name. Receivers answer m.from, and
   * PeerTransport.send refuses anything else (peers are authenticated per connection). etcd's
   * send() stamps From only where it is unset and relays followers' requests with the original
   * From; tally relays nothing (stepFollower) and carries a transferee in `index` instead.
   */
  send(m: Message): void {
    assert(m.from === this.id, `raft: node ${this.id} sending ${MessageType[m.type]} from ${m.from}`);
    this.msgs.push(m);
  }

  /** Votes are refused while a leader was heard from within electionTicks (thesis 4.2.3). */
  inLease(type: MessageType): boolean {
    if (!(this.checkQuorum || type === MessageType.PreVote)) return false;
    return this.leaderContactElapsed < this.electionTicks;
  }

  // --- Role transitions ----------------------------------------------------------------------

  private resetRandomizedElectionTimeout(): void {
    // Paper 5.2: randomized in [electionTicks, 2 * electionTicks) so split votes are rare.
    this.randomizedElectionTimeout = this.electionTicks + this.prng.nextInt(this.electionTicks);
  }

  reset(term: Term): void {
    if (term !== this.term) {
      assert(term > this.term, `raft: term must not decrease (${this.term} -> ${term})`);
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = NONE;
    this.tracker.resetVotes();
    const last = this.log.lastIndex();
    for (const id of this.tracker.ids) {
      const pr = this.tracker.progress.get(id)!;
      pr.resetForTerm(last);
      if (id === this.id) pr.match = last;
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.termCommitted = false;
    this.timeoutNowSent = false;
    this.appendDirty = false;
    // Reads waiting for this (former) leadership are dropped; callers time them out.
    this.pendingReads = [];
    this.pendingReadsHead = 0;
    this.deferredReads = [];
    this.readRoundWanted = false;
    this.quorumRoundSeen = this.round;
    this.leaseExpireTick = 0;
  }

  becomeFollower(term: Term, lead: NodeId): void {
    const wasLeader = this.role === Role.Leader;
    this.reset(term);
    this.lead = lead;
    this.role = Role.Follower;
    // A former leader backed no one else's lease while it led.
    if (wasLeader) this.leaderContactElapsed = this.electionTicks;
    this.debug(`became follower (leader ${lead})`);
  }

  becomePreCandidate(): void {
    assert(this.role !== Role.Leader, "raft: leader cannot become pre-candidate");
    // Thesis 9.6: a pre-candidate changes neither its term nor its vote.
    this.tracker.resetVotes();
    this.lead = NONE;
    this.role = Role.PreCandidate;
    this.debug("became pre-candidate");
  }

  becomeCandidate(): void {
    assert(this.role !== Role.Leader, "raft: leader cannot become candidate");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.Candidate;
    this.debug("became candidate");
  }

  // --- Apply ---------------------------------------------------------------------------------

  appliedTo(index: LogIndex, payloadBytes: number): void {
    this.log.appliedTo(index);
    if (this.role === Role.Leader) this.uncommittedSize = Math.max(0, this.uncommittedSize - payloadBytes);
  }

  checkInvariants(): void {
    assert(this.log.applied <= this.log.committed, "raft: applied > committed");
    assert(this.log.committed <= this.log.lastIndex(), "raft: committed > last index");
    assert(this.role !== Role.Leader || this.lead === this.id, "raft: leader does not know itself");
    assert(this.role !== Role.Candidate || this.vote === this.id, "raft: candidate did not vote for itself");
  }
}
