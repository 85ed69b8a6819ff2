/**
 * The Raft state machine (etcd-io/raft raft.go shape): roles, elections, replication, commit,
 * ReadIndex, leases, leadership transfer and membership. Synchronous and deterministic: input is
 * tick(), step() and the local calls; output is state plus `msgs`/`readStates`, collected by
 * RawNode into a Ready. Time is ticks; randomness is config.prng.
 *
 * Invariant: log.applied <= log.committed <= log.lastIndex().
 * Invariant: term never decreases; vote is set at most once per term.
 * Invariant: at most one leader per term (Election Safety, paper Figure 3), hence at most one
 *            node with role Leader and a given term.
 */
import { assert } from "../util/assert.js";
import { InvalidArgumentError } from "../util/errors.js";
import type { Prng } from "../util/prng.js";
import { ConfChangeError, applyConfChangeToSets, type ConfSets } from "./confchange.js";
import { encodeConfChange } from "./confchange-codec.js";
import { validateConfig } from "./config.js";
import type { Progress } from "./progress.js";
import { VoteResult } from "./quorum.js";
import { RaftLog } from "./raft-log.js";
import { ProgressTracker } from "./tracker.js";
import {
  CompactedError,
  type ConfChange,
  ConfChangeTransition,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type LogIndex,
  type Message,
  MessageType,
  NONE,
  type NodeId,
  ProgressState,
  ProposalDroppedError,
  type RaftConfig,
  type RaftTestKnobs,
  type ReadState,
  Role,
  type Snapshot,
  SnapshotTemporarilyUnavailableError,
  type SoftState,
  type Term,
} from "./types.js";
import { bytesEqual, newMessage, voteResponseType } from "./util.js";

/**
 * Vote/PreVote context of a campaign started by TimeoutNow (leadership transfer). Such a vote may
 * bypass the "heard from a leader recently" restriction: the leader asked for it (thesis 3.10).
 */
export const campaignTransferContext: Uint8Array = Uint8Array.from([..."CampaignTransfer"].map((c) => c.charCodeAt(0)));

/** Term written by RawNode.bootstrap; no leader ever exists in it (the first election is term 2). */
export const BOOTSTRAP_TERM: Term = 1;

/** Bound on ReadIndex requests waiting at a leader (queued plus deferred), and at a follower. */
export const MAX_PENDING_READS = 4096;

/** Send ticks of the most recent heartbeat rounds (a lease is extended only from a recent round). */
const ROUND_RING = 64;

const emptyData = new Uint8Array(0);

interface PendingRead {
  /** The leader's commit index when the read was accepted (thesis 6.4 step 1). */
  index: LogIndex;
  context: Uint8Array;
  /** Requester; this node's id for local reads. */
  from: NodeId;
  /** Heartbeat round whose quorum acknowledgement confirms leadership for this read. */
  round: number;
}

function encodeRound(round: number): Uint8Array {
  const out = new Uint8Array(8);
  const hi = Math.floor(round / 0x1_0000_0000);
  const lo = round >>> 0;
  out[0] = hi >>> 24;
  out[1] = (hi >>> 16) & 0xff;
  out[2] = (hi >>> 8) & 0xff;
  out[3] = hi & 0xff;
  out[4] = lo >>> 24;
  out[5] = (lo >>> 16) & 0xff;
  out[6] = (lo >>> 8) & 0xff;
  out[7] = lo & 0xff;
  return out;
}

/** The round in a heartbeat context, or -1 when the context is not one. */
function decodeRound(ctx: Uint8Array | undefined | null): number {
  if (ctx == null || ctx.byteLength !== 8) return -1;
  const hi = ((ctx[0]! << 24) | (ctx[1]! << 16) | (ctx[2]! << 8) | ctx[3]!) >>> 0;
  const lo = ((ctx[4]! << 24) | (ctx[5]! << 16) | (ctx[6]! << 8) | ctx[7]!) >>> 0;
  const v = hi * 0x1_0000_0000 + lo;
  return Number.isSafeInteger(v) ? v : -1;
}

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
  private readonly knobs: RaftTestKnobs;
  private readonly debugSink: ((line: string) => void) | undefined;

  // Timers, in ticks.
  /** Ticks since this node was created (the lease clock). */
  now = 0;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /**
   * Ticks since this node last heard from a leader (as a follower) or was leader. While it is below
   * electionTicks the node refuses votes (thesis 4.2.3), which is what makes leases safe.
   */
  private leaderContactElapsed: number;

  // Leader state.
  leadTransferee: NodeId = NONE;
  /** Index of the latest ConfChange this leader may have in its log; at most one is unapplied. */
  pendingConfIndex: LogIndex = 0;
  /** Payload bytes of this leader's uncommitted entries (bounded by maxUncommittedEntriesBytes). */
  uncommittedSize = 0;
  /** An entry of the current term is committed (paper 5.4.2; thesis 6.4 for reads). */
  private termCommitted = false;
  /** A TimeoutNow went out this term: a forced election may follow at any time, so no lease. */
  private timeoutNowSent = false;
  /** Peers may be sent App messages (set by anything that can unblock replication). */
  private appendDirty = false;

  // ReadIndex and lease state (thesis 6.4, 6.4.1).
  /** Last heartbeat round sent; rounds are numbered for the node's lifetime. */
  private round = 0;
  private readonly roundIds = new Float64Array(ROUND_RING);
  private readonly roundSendTicks = new Float64Array(ROUND_RING);
  private quorumRoundSeen = 0;
  private pendingReads: PendingRead[] = [];
  private pendingReadsHead = 0;
  private deferredReads: PendingRead[] = [];
  private readRoundWanted = false;
  /** The lease is valid while now < leaseExpireTick. */
  private leaseExpireTick = 0;

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

  leaseRemainingTicks(): number {
    return this.leaseValid() ? this.leaseExpireTick - this.now : 0;
  }

  private debug(line: string): void {
    if (this.debugSink !== undefined) this.debugSink(`${this.id} [term ${this.term} ${Role[this.role]}] ${line}`);
  }

  /**
   * Invariant: every message leaves in this node's name. Receivers answer m.from, and
   * PeerTransport.send refuses anything else (peers are authenticated per connection). etcd's
   * send() stamps From only where it is unset and relays followers' requests with the original
   * From; tally relays nothing (stepFollower) and carries a transferee in `index` instead.
   */
  private send(m: Message): void {
    assert(m.from === this.id, `raft: node ${this.id} sending ${MessageType[m.type]} from ${m.from}`);
    this.msgs.push(m);
  }

  /** Votes are refused while a leader was heard from within electionTicks (thesis 4.2.3). */
  private inLease(type: MessageType): boolean {
    if (!(this.checkQuorum || type === MessageType.PreVote)) return false;
    return this.leaderContactElapsed < this.electionTicks;
  }

  // --- Role transitions ----------------------------------------------------------------------

  private resetRandomizedElectionTimeout(): void {
    // Paper 5.2: randomized in [electionTicks, 2 * electionTicks) so split votes are rare.
    this.randomizedElectionTimeout = this.electionTicks + this.prng.nextInt(this.electionTicks);
  }

  private reset(term: Term): void {
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

  private becomePreCandidate(): void {
    assert(this.role !== Role.Leader, "raft: leader cannot become pre-candidate");
    // Thesis 9.6: a pre-candidate changes neither its term nor its vote.
    this.tracker.resetVotes();
    this.lead = NONE;
    this.role = Role.PreCandidate;
    this.debug("became pre-candidate");
  }

  private becomeCandidate(): void {
    assert(this.role !== Role.Leader, "raft: leader cannot become candidate");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.Candidate;
    this.debug("became candidate");
  }

  private becomeLeader(): void {
    assert(this.role !== Role.Follower, "raft: follower cannot become leader directly");
    this.reset(this.term);
    this.lead = this.id;
    this.role = Role.Leader;
    this.leaderContactElapsed = 0;
    const self = this.tracker.progress.get(this.id);
    assert(self !== undefined, "raft: leader must be a member");
    self.becomeReplicate();
    self.recentActive = true;
    // Conservatively treat any unapplied entry as a possible ConfChange (etcd): no new ConfChange
    // until everything this leader inherited is applied.
    this.pendingConfIndex = this.log.lastIndex();
    // Paper 8 / thesis 6.4: a no-op entry of the new term lets the leader learn the commit index
    // (it may only commit entries of its own term by counting, paper 5.4.2).
    this.appendLocal({ term: this.term, index: this.log.lastIndex() + 1, type: EntryType.Normal, data: emptyData });
    this.debug("became leader");
  }

  // --- Ticks ---------------------------------------------------------------------------------

  tick(): void {
    this.now++;
    if (this.leaderContactElapsed < Number.MAX_SAFE_INTEGER) this.leaderContactElapsed++;
    if (this.role === Role.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    this.leaderContactElapsed = 0;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        this.checkQuorumActive();
        if (this.role !== Role.Leader) return;
      }
      // A transfer that has not finished within an election timeout is abandoned (thesis 3.10).
      if (this.leadTransferee !== NONE) {
        this.debug(`leadership transfer to ${this.leadTransferee} timed out`);
        this.leadTransferee = NONE;
      }
      this.maybeAutoLeave();
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  /**
   * CheckQuorum (thesis 6.2): a leader that has not heard from a quorum within an election timeout
   * steps down, so a partitioned leader stops serving (and stops holding a lease).
   */
  private checkQuorumActive(): void {
    const self = this.tracker.progress.get(this.id);
    if (self !== undefined) self.recentActive = true;
    if (!this.tracker.quorumActive()) {
      this.debug("stepped down: no quorum heard within an election timeout");
      this.becomeFollower(this.term, NONE);
      return;
    }
    for (const id of this.tracker.ids) if (id !== this.id) this.tracker.progress.get(id)!.recentActive = false;
  }

  // --- Elections -----------------------------------------------------------------------------

  /** Start an election: PreVote first when enabled, unless this is a leadership transfer. */
  hup(transfer: boolean): void {
    if (this.role === Role.Leader) {
      this.debug("ignoring campaign: already leader");
      return;
    }
    if (!this.promotable()) {
      this.debug("ignoring campaign: not a voter");
      return;
    }
    // A configuration change that is committed but not applied could make this node a non-voter
    // (etcd: campaigning then could elect a leader under a stale configuration).
    if (this.log.hasUnappliedConfChanges()) {
      this.debug("ignoring campaign: committed configuration changes are not applied yet");
      return;
    }
    if (this.preVote && !transfer) this.campaign(true, false);
    else this.campaign(false, transfer);
  }

  /** Local campaign(): refused while this node still backs a leader's lease (its vote is a vote). */
  campaignLocal(): void {
    if (this.role !== Role.Leader && this.checkQuorum && this.leaderContactElapsed < this.electionTicks) {
      this.debug("ignoring campaign: heard from a leader within the election timeout");
      return;
    }
    this.hup(false);
  }

  private campaign(pre: boolean, transfer: boolean): void {
    let term: Term;
    let voteType: MessageType;
    if (pre) {
      this.becomePreCandidate();
      voteType = MessageType.PreVote;
      term = this.term + 1; // the term we would campaign in; not adopted yet
    } else {
      this.becomeCandidate();
      voteType = MessageType.Vote;
      term = this.term;
    }
    if (this.poll(this.id, true) === VoteResult.Won) {
      // Single voter: won outright.
      if (pre) this.campaign(false, transfer);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.tracker.voters.voterIds()) {
      if (id === this.id) continue;
      const m = newMessage(voteType, id, this.id, term);
      m.index = lastIndex;
      m.logTerm = lastTerm;
      if (transfer) m.context = campaignTransferContext;
      this.send(m);
    }
    this.debug(`sent ${MessageType[voteType]} at term ${term}`);
  }

  private poll(id: NodeId, granted: boolean): VoteResult {
    this.tracker.recordVote(id, granted);
    return this.tracker.tallyVotes().result;
  }

  private handleVote(m: Message): void {
    // Paper 5.2/5.4.1: one vote per term, only for a log at least as up-to-date as ours. A
    // pre-vote for a future term does not bind (thesis 9.6).
    const canVote =
      this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (m.type === MessageType.PreVote && m.term > this.term);
    const respType = voteResponseType(m.type);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      const resp = newMessage(respType, m.from, this.id, m.term);
      this.send(resp);
      if (m.type === MessageType.Vote) {
        assert(this.vote === NONE || this.vote === m.from, "raft: second vote in one term");
        this.electionElapsed = 0;
        this.vote = m.from;
      }
      this.debug(`granted ${MessageType[m.type]} to ${m.from} at term ${m.term}`);
    } else {
      const resp = newMessage(respType, m.from, this.id, this.term);
      resp.reject = true;
      this.send(resp);
      this.debug(`rejected ${MessageType[m.type]} from ${m.from} at term ${m.term}`);
    }
  }

  // --- Step ----------------------------------------------------------------------------------

  step(m: Message): void {
    if (m.term === 0) {
      // Term-less messages: forwarded ReadIndex requests.
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = bytesEqual(m.context, campaignTransferContext);
        if (!force && !this.knobs.leaseWithoutVoteRestriction && this.inLease(m.type)) {
          // Thesis 4.2.3: ignore (do not even adopt the term) while a leader is live.
          this.debug(`ignored ${MessageType[m.type]} from ${m.from} at term ${m.term}: leader heard recently`);
          return;
        }
      }
      if (m.type === MessageType.PreVote) {
        // Never adopt a term from a pre-vote request (thesis 9.6).
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // The term is adopted when the pre-vote is won.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // A stale leader (e.g. back from a partition) learns the term and steps down; otherwise
        // with checkQuorum/preVote nobody would ever tell it (etcd).
        this.send(newMessage(MessageType.AppResp, m.from, this.id, this.term));
      } else if (m.type === MessageType.PreVote) {
        const resp = newMessage(MessageType.PreVoteResp, m.from, this.id, this.term);
        resp.reject = true;
        this.send(resp);
      }
      return;
    }

    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      this.handleVote(m);
      return;
    }
    switch (this.role) {
      case Role.Leader:
        this.stepLeader(m);
        break;
      case Role.Candidate:
      case Role.PreCandidate:
        this.stepCandidate(m);
        break;
      case Role.Follower:
        this.stepFollower(m);
        break;
    }
  }

  private stepLeader(m: Message): void {
    if (m.type === MessageType.ReadIndex) {
      this.leaderReadIndex(m.from, m.context ?? emptyData, false);
      return;
    }
    if (m.type === MessageType.TransferLeader) {
      this.leaderTransfer(m.index);
      return;
    }
    const pr = this.tracker.progress.get(m.from);
    if (pr === undefined) {
      this.debug(`no progress for ${m.from}; dropping ${MessageType[m.type]}`);
      return;
    }
    switch (m.type) {
      case MessageType.AppResp:
        pr.recentActive = true;
        this.handleAppResp(m, pr);
        break;
      case MessageType.HeartbeatResp: {
        pr.recentActive = true;
        // A heartbeat response proves the peer is reachable: resume a paused probe, and nudge a
        // stalled pipeline (etcd): if every in-flight App was lost, only a new App restarts it.
        pr.msgAppFlowPaused = false;
        if (pr.match < this.log.lastIndex() || pr.state === ProgressState.Probe) {
          pr.nudged = true;
          this.appendDirty = true;
        }
        const round = decodeRound(m.context);
        if (round > pr.ackedRound && round <= this.round) {
          pr.ackedRound = round;
          this.onRoundAcked();
        }
        break;
      }
      default:
        this.debug(`leader ignores ${MessageType[m.type]} from ${m.from}`);
    }
  }

  private stepCandidate(m: Message): void {
    const myRespType = this.role === Role.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.App:
      case MessageType.Heartbeat:
      case MessageType.Snap:
        // Paper 5.2: a candidate that hears from a leader of its term (or newer) steps down.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case myRespType: {
        const result = this.poll(m.from, !m.reject);
        if (result === VoteResult.Won) {
          if (this.role === Role.PreCandidate) this.campaign(false, false);
          else this.becomeLeader();
        } else if (result === VoteResult.Lost) {
          // Pre-vote lost: stay in the current term (thesis 9.6).
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        this.debug(`candidate ignores ${MessageType[m.type]} from ${m.from}`);
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.heardFromLeader(m.from);
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.heardFromLeader(m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.heardFromLeader(m.from);
        this.handleSnapshot(m);
        return;
      case MessageType.TransferLeader:
      case MessageType.ReadIndex:
        // Sent by a node that takes this one for its leader (it lags, e.g. after a pause). Only
        // a node's own requests go to the leader (readIndex, transferLeader; thesis 6.4 has the
        // follower ask the leader itself). Relayed, this one would leave with another node's id
        // as `from`, or, restamped, bring the answer here. The requester's caller times out and
        // retries where it now finds the leader, as for reads lost in a leadership change.
        this.debug(`dropping ${MessageType[m.type]} from ${m.from}: not the leader (leader ${this.lead})`);
        return;
      case MessageType.TimeoutNow:
        // Thesis 3.10: the leader asks us to start an election now, skipping PreVote.
        this.debug(`TimeoutNow from ${m.from}: campaigning`);
        this.hup(true);
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, context: m.context ?? emptyData });
        return;
      default:
        this.debug(`follower ignores ${MessageType[m.type]} from ${m.from}`);
    }
  }

  private heardFromLeader(from: NodeId): void {
    this.electionElapsed = 0;
    this.leaderContactElapsed = 0;
    this.lead = from;
  }

  // --- Replication: follower side ------------------------------------------------------------

  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      const resp = newMessage(MessageType.AppResp, m.from, this.id, this.term);
      resp.index = this.log.committed;
      this.send(resp);
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    const resp = newMessage(MessageType.AppResp, m.from, this.id, this.term);
    if (lastNew >= 0) {
      resp.index = lastNew;
    } else {
      // Fast backtracking (etcd): hint the largest index whose term is <= the leader's term at
      // m.index, so the leader skips every entry of a term it does not have in one round trip.
      const hintIndex = Math.min(m.index, this.log.lastIndex());
      const [index, term] = this.log.findConflictByTerm(hintIndex, m.logTerm);
      resp.index = m.index;
      resp.reject = true;
      resp.rejectHint = index;
      resp.logTerm = term;
      this.debug(`rejected App at ${m.index} (term ${m.logTerm}); hint ${index}/${term}`);
    }
    this.send(resp);
  }

  private handleHeartbeat(m: Message): void {
    // The leader sends min(match, commit), so this never exceeds what we share with it.
    this.log.commitTo(m.commit);
    const resp = newMessage(MessageType.HeartbeatResp, m.from, this.id, this.term);
    resp.context = m.context ?? undefined;
    this.send(resp);
  }

  private handleSnapshot(m: Message): void {
    const resp = newMessage(MessageType.AppResp, m.from, this.id, this.term);
    const s = m.snapshot;
    if (s != null && this.restore(s)) {
      resp.index = this.log.lastIndex();
      this.debug(`restored snapshot ${s.metadata.index}/${s.metadata.term}`);
    } else {
      resp.index = this.log.committed;
    }
    this.send(resp);
  }

  /** Paper 7: install a leader's snapshot unless the log already covers it. */
  private restore(s: Snapshot): boolean {
    const index = s.metadata.index;
    if (index <= this.log.committed) return false;
    assert(this.role === Role.Follower, "raft: only a follower restores a snapshot");
    if (this.log.matchTerm(index, s.metadata.term)) {
      // We have the entry already: just learn that it is committed.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(s);
    // The snapshot carries the configuration as of its index (it may not include this node yet:
    // a node being added can receive a snapshot older than its own addition).
    this.tracker.restore(s.metadata.confState, this.log.lastIndex());
    this.isLearner = this.tracker.progress.get(this.id)?.isLearner ?? false;
    return true;
  }

  // --- Replication: leader side --------------------------------------------------------------

  private handleAppResp(m: Message, pr: Progress): void {
    if (m.reject) {
      let nextProbe = m.rejectHint;
      if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm)[0];
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        this.debug(`${m.from} rejected ${m.index}; probing from ${pr.next}`);
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.appendDirty = true;
      }
      return;
    }
    if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === ProgressState.Probe)) {
      if (pr.state === ProgressState.Probe) {
        pr.becomeReplicate();
      } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= this.log.firstIndex()) {
        // The peer caught up (from the snapshot or otherwise): replicate from its match.
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.state === ProgressState.Replicate) {
        pr.inflights.freeLE(m.index);
      }
      if (this.maybeCommit()) this.onCommitAdvanced();
      this.appendDirty = true;
      if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
        this.debug(`transferee ${m.from} caught up; sending TimeoutNow`);
        this.sendTimeoutNow(m.from);
      }
    }
  }

  /**
   * Paper 5.4.2 / Figure 8: advance the commit index to the highest index replicated on a quorum,
   * but only if that entry is of the current term; earlier entries commit indirectly.
   */
  private maybeCommit(): boolean {
    const mci = this.tracker.committed();
    if (mci <= this.log.committed) return false;
    if (!this.knobs.commitPreviousTermEntries && this.log.term(mci) !== this.term) return false;
    this.log.commitTo(mci);
    return true;
  }

  private onCommitAdvanced(): void {
    this.appendDirty = true;
    if (!this.termCommitted && this.log.term(this.log.committed) === this.term) {
      this.termCommitted = true;
      // Thesis 6.4: reads deferred until this term's first commit may proceed now.
      const deferred = this.deferredReads;
      this.deferredReads = [];
      for (const r of deferred) this.leaderReadIndex(r.from, r.context, false);
    }
  }

  /** Appends one entry of this leader's term and counts it on the leader (thesis 10.2.1). */
  private appendLocal(e: Entry): void {
    assert(e.index === this.log.lastIndex() + 1 && e.term === this.term, "raft: leader entry out of place");
    this.log.unstable.truncateAndAppend([e]);
    const self = this.tracker.progress.get(this.id);
    if (self !== undefined) self.maybeUpdate(e.index);
    if (this.maybeCommit()) this.onCommitAdvanced();
    this.appendDirty = true;
  }

  private increaseUncommittedSize(bytes: number): boolean {
    // A single entry is always admitted when nothing is outstanding, so an entry larger than the
    // bound still gets through (etcd).
    if (this.uncommittedSize > 0 && bytes > 0 && this.uncommittedSize + bytes > this.maxUncommittedEntriesBytes) {
      return false;
    }
    this.uncommittedSize += bytes;
    return true;
  }

  private checkCanPropose(): void {
    if (this.role !== Role.Leader) {
      throw new ProposalDroppedError(this.lead === NONE ? "no-leader" : "not-leader", this.lead);
    }
    if (!this.tracker.progress.has(this.id)) throw new ProposalDroppedError("not-leader", NONE);
    if (this.leadTransferee !== NONE) throw new ProposalDroppedError("transferring", this.leadTransferee);
  }

  propose(data: Uint8Array): void {
    this.checkCanPropose();
    if (!this.increaseUncommittedSize(data.byteLength)) throw new ProposalDroppedError("queue-full", this.id);
    this.appendLocal({ term: this.term, index: this.log.lastIndex() + 1, type: EntryType.Normal, data });
  }

  proposeConfChange(cc: ConfChange): void {
    this.checkCanPropose();
    // Thesis 4.1/4.3 via etcd: at most one configuration change in flight.
    if (this.pendingConfIndex > this.log.applied) {
      throw new ProposalDroppedError("conf-change-pending", this.id);
    }
    try {
      applyConfChangeToSets(this.tracker.sets, cc);
    } catch (err) {
      if (err instanceof ConfChangeError) {
        throw new InvalidArgumentError(`invalid configuration change: ${err.message}`, { cause: err });
      }
      throw err;
    }
    const data = encodeConfChange(cc);
    if (!this.increaseUncommittedSize(data.byteLength)) throw new ProposalDroppedError("queue-full", this.id);
    const index = this.log.lastIndex() + 1;
    this.appendLocal({ term: this.term, index, type: EntryType.ConfChange, data });
    this.pendingConfIndex = index;
  }

  /** Leave an auto-leave joint configuration once it is applied (etcd appliedTo). */
  maybeAutoLeave(): void {
    if (this.role !== Role.Leader || !this.tracker.sets.autoLeave) return;
    if (this.log.applied < this.pendingConfIndex) return;
    try {
      this.proposeConfChange({ transition: ConfChangeTransition.Auto, changes: [] });
      this.debug("proposed leaving the joint configuration");
    } catch (err) {
      if (!(err instanceof ProposalDroppedError)) throw err;
      this.debug(`leaving the joint configuration postponed: ${err.reason}`);
    }
  }

  /** Sends App messages wherever replication can progress (called before a Ready is built). */
  flushPending(): void {
    if (this.role !== Role.Leader) {
      this.appendDirty = false;
      this.readRoundWanted = false;
      return;
    }
    if (this.readRoundWanted) this.bcastHeartbeat();
    if (!this.appendDirty) return;
    this.appendDirty = false;
    const ids = this.tracker.ids;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id === this.id) continue;
      const pr = this.tracker.progress.get(id)!;
      // Bounded: Replicate stops when inflights are full; Probe after one message.
      for (let n = 0; n <= this.tracker.maxInflightMessages && this.maybeSendAppend(id, pr); n++);
    }
  }

  /** Sends one App (or a Snap) to `to` if there is something to send and flow control allows it. */
  private maybeSendAppend(to: NodeId, pr: Progress): boolean {
    if (pr.isPaused()) return false;
    const lastIndex = this.log.lastIndex();
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm < 0) return this.maybeSendSnapshot(to, pr);
    let entries: Entry[] | undefined;
    let bytes = 0;
    // With full inflights, only an empty App goes out (a nudge): its answer frees the window.
    const throttled = pr.state === ProgressState.Replicate && pr.inflights.full();
    if (pr.next <= lastIndex && !throttled) {
      try {
        entries = this.log.slice(pr.next, lastIndex + 1, this.maxSizePerMsg);
      } catch (err) {
        if (err instanceof CompactedError) return this.maybeSendSnapshot(to, pr);
        throw err;
      }
      bytes = this.log.lastSliceBytes;
    }
    const committed = this.log.committed;
    const nudged = pr.nudged;
    pr.nudged = false;
    if (entries === undefined && !nudged && !pr.canBumpCommit(committed)) return false;
    const m = newMessage(MessageType.App, to, this.id, this.term);
    m.index = prevIndex;
    m.logTerm = prevTerm;
    if (entries !== undefined) m.entries = entries;
    m.commit = committed;
    this.send(m);
    pr.sentEntries(entries === undefined ? 0 : entries.length, bytes);
    pr.sentCommitTo(committed);
    return entries !== undefined;
  }

  /** The peer needs entries we compacted: send the latest snapshot (paper 7). */
  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) {
      this.debug(`not sending a snapshot to ${to}: not recently active`);
      return false;
    }
    let snap: Snapshot;
    try {
      snap = this.log.unstable.snapshot ?? this.log.storage.snapshot();
    } catch (err) {
      if (err instanceof SnapshotTemporarilyUnavailableError) {
        this.debug(`snapshot for ${to} temporarily unavailable`);
        return false;
      }
      throw err;
    }
    const index = snap.metadata.index;
    assert(index > 0, "raft: need a non-empty snapshot to catch up a peer");
    assert(index >= this.log.firstIndex() - 1, `raft: storage compacted to ${this.log.firstIndex() - 1} beyond its snapshot ${index}`);
    pr.becomeSnapshot(index);
    const m = newMessage(MessageType.Snap, to, this.id, this.term);
    m.snapshot = snap;
    this.send(m);
    this.debug(`sent snapshot ${index}/${snap.metadata.term} to ${to}`);
    return false;
  }

  // --- Heartbeats, ReadIndex, leases ---------------------------------------------------------

  /**
   * One heartbeat round: every member gets a Heartbeat carrying the round id and
   * min(match, commit). Quorum acknowledgement of a round confirms leadership at its send time
   * (thesis 6.4 step 3) and starts a lease from that send tick (thesis 6.4.1).
   */
  private bcastHeartbeat(): void {
    this.readRoundWanted = false;
    this.round++;
    const slot = this.round % ROUND_RING;
    this.roundIds[slot] = this.round;
    this.roundSendTicks[slot] = this.now;
    const ctx = encodeRound(this.round);
    const ids = this.tracker.ids;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const pr = this.tracker.progress.get(id)!;
      if (id === this.id) {
        pr.ackedRound = this.round;
        continue;
      }
      const commit = Math.min(pr.match, this.log.committed);
      const m = newMessage(MessageType.Heartbeat, id, this.id, this.term);
      m.commit = commit;
      m.context = ctx;
      this.send(m);
      pr.sentCommitTo(commit);
    }
    this.onRoundAcked();
  }

  /**
   * Recomputes the highest round acknowledged by a quorum. With `configChanged`, the lease is
   * recomputed from scratch under the new configuration's quorum: acknowledgements stay valid
   * evidence (each acker refuses votes for an election timeout after its ack), but only a quorum
   * of the configuration that now elects leaders counts.
   */
  private onRoundAcked(configChanged = false): void {
    const q = this.tracker.quorumRound();
    if (configChanged) {
      this.leaseExpireTick = 0;
      this.extendLease(q);
    }
    if (q <= this.quorumRoundSeen) return;
    this.quorumRoundSeen = q;
    // Release every read that waited for this round or an earlier one, in arrival order.
    const reads = this.pendingReads;
    let head = this.pendingReadsHead;
    while (head < reads.length && reads[head]!.round <= q) {
      this.respondRead(reads[head]!);
      head++;
    }
    if (head === reads.length) {
      this.pendingReads = [];
      this.pendingReadsHead = 0;
    } else {
      this.pendingReadsHead = head;
    }
    this.extendLease(q);
  }

  /** Thesis 6.4.1: the lease runs from the send tick of a quorum-acknowledged round. */
  private extendLease(round: number): void {
    if (!this.leaseEnabled() || round <= 0) return;
    const slot = round % ROUND_RING;
    if (this.roundIds[slot] !== round) return;
    const expire = this.roundSendTicks[slot]! + this.electionTicks - this.leaseDriftTicks;
    if (expire > this.leaseExpireTick) this.leaseExpireTick = expire;
  }

  private respondRead(r: PendingRead): void {
    if (r.from === this.id || r.from === NONE) {
      this.readStates.push({ index: r.index, context: r.context });
      return;
    }
    const m = newMessage(MessageType.ReadIndexResp, r.from, this.id, this.term);
    m.index = r.index;
    m.context = r.context;
    this.send(m);
  }

  private pendingReadCount(): number {
    return this.pendingReads.length - this.pendingReadsHead + this.deferredReads.length;
  }

  /**
   * ReadIndex at the leader (thesis 6.4): record the commit index, confirm leadership with a
   * heartbeat round, then release. Reads that arrive before the round is sent share it.
   */
  leaderReadIndex(from: NodeId, context: Uint8Array, local: boolean): void {
    const read: PendingRead = { index: this.log.committed, context, from, round: 0 };
    if (this.tracker.isSingleton() && this.tracker.voters.isVoter(this.id)) {
      // A single voter is its own quorum.
      if (this.termCommitted) {
        this.respondRead(read);
        return;
      }
    }
    if (this.pendingReadCount() >= MAX_PENDING_READS) {
      if (local) throw new ProposalDroppedError("queue-full", this.id);
      this.debug(`dropping ReadIndex from ${from}: ${MAX_PENDING_READS} reads pending`);
      return;
    }
    if (!this.termCommitted) {
      // Thesis 6.4 step 1: until an entry of this term commits, the commit index may be stale.
      this.deferredReads.push(read);
      return;
    }
    read.round = this.round + 1;
    this.pendingReads.push(read);
    this.readRoundWanted = true;
  }

  readIndex(context: Uint8Array): void {
    if (this.role === Role.Leader) {
      this.leaderReadIndex(this.id, context, true);
      return;
    }
    if (this.lead === NONE) throw new ProposalDroppedError("no-leader", NONE);
    const m = newMessage(MessageType.ReadIndex, this.lead, this.id, 0);
    m.context = context;
    this.send(m);
  }

  // --- Leadership transfer -------------------------------------------------------------------

  /** Thesis 3.10: catch the transferee up, then TimeoutNow; no proposals meanwhile. */
  private leaderTransfer(transferee: NodeId): void {
    const pr = this.tracker.progress.get(transferee);
    if (pr === undefined || pr.isLearner || !this.tracker.voters.isVoter(transferee)) {
      this.debug(`ignoring transfer to ${transferee}: not a voter`);
      return;
    }
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return;
      this.leadTransferee = NONE;
    }
    if (transferee === this.id) return;
    this.electionElapsed = 0; // the transfer is abandoned after one election timeout
    this.leadTransferee = transferee;
    this.leaseExpireTick = 0; // thesis 6.4.1: the lease ends when a transfer starts
    this.debug(`transferring leadership to ${transferee}`);
    if (pr.match === this.log.lastIndex()) {
      this.sendTimeoutNow(transferee);
      return;
    }
    // Start catching the transferee up now (etcd sendAppend), even when there is nothing new to
    // send: in Replicate state next may already be past entries that were lost in flight, and
    // only an App (empty if need be) makes the transferee reveal where its log really ends.
    // Regression: test/raft/testdata/transfer-leadership.txt (transfer to a lagging follower).
    pr.nudged = true;
    this.appendDirty = true;
  }

  private sendTimeoutNow(to: NodeId): void {
    this.timeoutNowSent = true;
    this.leaseExpireTick = 0;
    this.send(newMessage(MessageType.TimeoutNow, to, this.id, this.term));
  }

  transferLeader(transferee: NodeId): void {
    if (this.role === Role.Leader) {
      this.leaderTransfer(transferee);
      return;
    }
    if (this.lead === NONE) {
      this.debug(`no leader; dropping transfer to ${transferee}`);
      return;
    }
    const m = newMessage(MessageType.TransferLeader, this.lead, this.id, this.term);
    m.index = transferee; // etcd names the transferee in From; tally's From is always the sender
    this.send(m);
  }

  // --- Transport and snapshot feedback -------------------------------------------------------

  reportUnreachable(id: NodeId): void {
    if (this.role !== Role.Leader) return;
    const pr = this.tracker.progress.get(id);
    if (pr === undefined) return;
    // The pipeline to it is broken: fall back to probing (etcd).
    if (pr.state === ProgressState.Replicate) pr.becomeProbe();
    this.appendDirty = true;
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    if (this.role !== Role.Leader) return;
    const pr = this.tracker.progress.get(id);
    if (pr === undefined || pr.state !== ProgressState.Snapshot) return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the peer's answer (or a heartbeat response) before the next App.
    pr.msgAppFlowPaused = true;
    this.debug(`snapshot to ${id} ${ok ? "finished" : "failed"}; probing from ${pr.next}`);
  }

  // --- Configuration -------------------------------------------------------------------------

  applyConfChange(cc: ConfChange): ConfState {
    let next: ConfSets;
    try {
      next = applyConfChangeToSets(this.tracker.sets, cc);
    } catch (err) {
      if (!(err instanceof ConfChangeError)) throw err;
      // Validated when proposed, so this is a change proposed under an older leader. Every
      // replica sees the same configuration here, so ignoring it is deterministic.
      this.debug(`ignoring configuration change that does not apply: ${err.message}`);
      return this.tracker.confState();
    }
    return this.switchToConfig(next);
  }

  private switchToConfig(sets: ConfSets): ConfState {
    this.tracker.setConfig(sets, this.log.lastIndex());
    const self = this.tracker.progress.get(this.id);
    this.isLearner = self?.isLearner ?? false;
    const cs = this.tracker.confState();
    this.debug(`switched to configuration ${JSON.stringify(cs)}`);
    if ((self === undefined || this.isLearner) && this.role === Role.Leader) {
      // A leader that is no longer a voter steps down (thesis 4.2.2).
      this.becomeFollower(this.term, NONE);
      return cs;
    }
    if (this.role !== Role.Leader || cs.voters.length === 0) return cs;
    // The quorum changed: the commit index may move, and new members need entries.
    if (this.maybeCommit()) this.onCommitAdvanced();
    this.appendDirty = true;
    if (this.leadTransferee !== NONE && !this.tracker.voters.isVoter(this.leadTransferee)) {
      this.leadTransferee = NONE;
    }
    // Reads and the lease are judged by a quorum of the new configuration from now on.
    this.onRoundAcked(true);
    return cs;
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
