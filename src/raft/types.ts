/**
 * The Raft core's data types and its storage contract. Shaped after etcd-io/raft (raftpb, Ready,
 * Storage) so that readers who know etcd find their way. Pure data: no I/O, no clock.
 *
 * Indexes and terms are JS numbers: exact up to 2^53, which is far beyond any log this system will
 * write (2^53 entries at 10^6 entries/s is 285 years).
 */
import type { Prng } from "../util/prng.js";

export type NodeId = number; // 0 means "none"
export type Term = number;
export type LogIndex = number;
export const NONE: NodeId = 0;

export enum EntryType {
  Normal = 0,
  /** data is encodeConfChange(ConfChange). */
  ConfChange = 1,
}

export interface Entry {
  term: Term;
  index: LogIndex;
  type: EntryType;
  /** Empty for the leader's no-op entry at the start of its term. */
  data: Uint8Array;
}

export enum MessageType {
  /** Local: start an election (campaign). */
  Hup = 0,
  /** Local: leader sends heartbeats. */
  Beat = 1,
  /** Local or forwarded proposal. */
  Prop = 2,
  App = 3,
  AppResp = 4,
  Vote = 5,
  VoteResp = 6,
  PreVote = 7,
  PreVoteResp = 8,
  Snap = 9,
  Heartbeat = 10,
  HeartbeatResp = 11,
  /** A follower asks its leader to transfer leadership to message.index (a node id). */
  TransferLeader = 12,
  TimeoutNow = 13,
  ReadIndex = 14,
  ReadIndexResp = 15,
  /** Local: the transport could not reach message.from. */
  Unreachable = 16,
  /** Local: result of sending a snapshot to message.from (reject = failed). */
  SnapStatus = 17,
  /** Local: leader checks it heard from a quorum. */
  CheckQuorum = 18,
}

export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: Term;
  /**
   * App: term of the entry at `index` (the entry preceding `entries`). Vote/PreVote: last log term.
   * AppResp reject: term of the follower's entry at rejectHint (etcd's LogTerm in the response).
   */
  logTerm: Term;
  /**
   * App: index preceding `entries`. Vote: last log index. AppResp: last index accepted, or rejected
   * index. TransferLeader: the transferee's node id.
   */
  index: LogIndex;
  entries: Entry[];
  commit: LogIndex;
  reject: boolean;
  /** AppResp reject: the follower's hint for fast backtracking (its last index or a conflict point). */
  rejectHint: LogIndex;
  /** Snap: the snapshot to install. */
  snapshot?: Snapshot;
  /**
   * ReadIndex/ReadIndexResp: the caller's request context. Heartbeat/HeartbeatResp: the heartbeat
   * round id (read confirmation and leases). Vote/PreVote: campaignTransferContext marks a campaign
   * triggered by TimeoutNow, which may bypass the follower's lease vote restriction.
   */
  context?: Uint8Array;
}

export interface HardState {
  term: Term;
  vote: NodeId;
  commit: LogIndex;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
  /** Non-empty only in a joint configuration: the outgoing voters (thesis 4.3). */
  votersOutgoing: NodeId[];
  /** Learners that become voters ... kept to mirror etcd: voters of outgoing config being demoted to learners. */
  learnersNext: NodeId[];
  /** In a joint configuration: leave it automatically once it is committed. */
  autoLeave: boolean;
}

export interface SnapshotMetadata {
  index: LogIndex;
  term: Term;
  confState: ConfState;
}

export interface Snapshot {
  metadata: SnapshotMetadata;
  /** Application state machine bytes, opaque to raft. */
  data: Uint8Array;
}

export enum ConfChangeType {
  AddNode = 0,
  AddLearnerNode = 1,
  RemoveNode = 2,
}

export interface ConfChangeSingle {
  type: ConfChangeType;
  nodeId: NodeId;
}

export enum ConfChangeTransition {
  /** Single-voter change: simple; more than one: joint, left automatically (etcd's Auto). */
  Auto = 0,
  /** Always joint, leave automatically. */
  JointImplicit = 1,
  /** Always joint, stay until an empty ConfChange (leave-joint) is proposed. */
  JointExplicit = 2,
}

/** A membership change. An empty `changes` list means "leave the joint configuration". */
export interface ConfChange {
  transition: ConfChangeTransition;
  changes: ConfChangeSingle[];
  context?: Uint8Array;
}

export enum Role {
  Follower = 0,
  PreCandidate = 1,
  Candidate = 2,
  Leader = 3,
}

export interface SoftState {
  leader: NodeId;
  role: Role;
}

export interface ReadState {
  /** The read may be served once applied >= index. */
  index: LogIndex;
  context: Uint8Array;
}

/**
 * One batch of work for the caller. Order of handling (etcd rawnode / Ready contract):
 *   1. if snapshot: install it (storage.applySnapshot) and restore the state machine from it;
 *   2. append `entries` to stable storage and persist `hardState` (sync when mustSync) -- one batch;
 *   3. only then send `messages`;
 *   4. apply `committedEntries` in order (a ConfChange entry: call applyConfChange);
 *   5. serve `readStates` once applied >= their index;
 *   6. call advance().
 * With RaftConfig.asyncStorageWrites the caller may do 3 (for messages that promise nothing
 * durable: App, Heartbeat), 4, 5 and 6 before the write of 2 completes, and the next Ready's work
 * meanwhile; every other message still waits for that write, and the caller reports it with
 * RawNode.persisted() once it is durable (src/server/core/driver-loop.ts).
 */
export interface Ready {
  softState?: SoftState;
  /** Present when it changed since the last Ready. */
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
  /** True when hardState (term/vote) or entries changed: the write must be fsynced. */
  mustSync: boolean;
}

export enum ProgressState {
  Probe = 0,
  Replicate = 1,
  Snapshot = 2,
}

export interface PeerProgress {
  match: LogIndex;
  next: LogIndex;
  state: ProgressState;
  recentActive: boolean;
  inflightMessages: number;
  inflightBytes: number;
  isLearner: boolean;
  pendingSnapshot: LogIndex;
}

export interface RaftStatus {
  id: NodeId;
  term: Term;
  vote: NodeId;
  commit: LogIndex;
  applied: LogIndex;
  lastIndex: LogIndex;
  role: Role;
  leader: NodeId;
  leadTransferee: NodeId;
  /** Leader only: true while a lease read may be served without a round trip (thesis 6.4.1). */
  leaseValid: boolean;
  /** Leader only: ticks left on the lease (0 when not valid). */
  leaseRemainingTicks: number;
  config: ConfState;
  /** Leader only: per-peer replication progress (including itself). */
  progress: Map<NodeId, PeerProgress>;
}

/**
 * Test-only switches that plant known bugs, so the simulator's checkers can be shown to bite.
 * Never set outside tests.
 */
export interface RaftTestKnobs {
  /** Count replicas of previous-term entries toward commit (violates paper 5.4.2 / Figure 8). */
  commitPreviousTermEntries?: boolean;
  /** Emit hard states with the vote zeroed, so a restart forgets who it voted for. */
  forgetVote?: boolean;
  /** Grant votes even while a live leader was heard from recently, but keep serving lease reads. */
  leaseWithoutVoteRestriction?: boolean;
}

export interface RaftConfig {
  id: NodeId;
  /** Minimum election timeout; the actual timeout is random in [electionTicks, 2*electionTicks). */
  electionTicks: number;
  heartbeatTicks: number;
  storage: LogStorage;
  /** Last applied index when restarting; committed entries at or below it are not re-delivered. */
  applied?: LogIndex;
  /** Upper bound on the bytes of entries in one App message. */
  maxSizePerMsg: number;
  /** Upper bound on App messages in flight to one peer in Replicate state. */
  maxInflightMessages: number;
  /** Upper bound on entry bytes in flight to one peer (0 = unlimited). */
  maxInflightBytes: number;
  /** Upper bound on bytes of proposed-but-uncommitted entries on the leader; beyond it proposals are dropped. */
  maxUncommittedEntriesBytes: number;
  /** Upper bound on committed entry bytes handed out in one Ready. */
  maxCommittedSizePerReady: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Lease reads: lease length is electionTicks - leaseDriftTicks (requires checkQuorum). */
  leaseDriftTicks: number;
  /** Election jitter source. */
  prng: Prng;
  /**
   * etcd's AsyncStorageWrites, for a driver that writes Ready N while it already steps messages and
   * builds Ready N+1: a leader counts its own log toward commit only up to what the driver reported
   * durable with RawNode.persisted(), never at append time. Without it (the default) a leader
   * counts an entry as soon as it appends it, which is safe only when the driver steps nothing
   * before that Ready's write completes.
   */
  asyncStorageWrites?: boolean;
  /**
   * A leader tells its followers of a new commit index on its next tick (or with the next entries
   * or heartbeat it sends them), not at once in an App of its own. A lone write then costs one
   * round of messages instead of two (the commit-only App and its answer); a follower applies up
   * to a tick later. Commit itself is unchanged: it is the leader's, from the quorum's acks.
   */
  commitUpdatesOnTick?: boolean;
  testKnobs?: RaftTestKnobs;
  /** Optional debug sink; the core never prints by itself. */
  debug?: (line: string) => void;
}

/**
 * Stable storage as the core sees it (etcd's Storage). Synchronous: the node keeps the un-compacted
 * log tail in memory and persists through the driver's batches; see storage/ for the LevelDB side.
 */
export interface LogStorage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at most maxBytes in total but always at least one if lo < hi. Throws CompactedError / UnavailableIndexError. */
  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[];
  /** Term of the entry at index; valid for [firstIndex()-1, lastIndex()]. Throws CompactedError / UnavailableIndexError. */
  term(index: LogIndex): Term;
  /** Index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): LogIndex;
  lastIndex(): LogIndex;
  /** The most recent snapshot. Throws SnapshotTemporarilyUnavailableError when not ready yet. */
  snapshot(): Snapshot;
}

/** Raised by LogStorage for an index that was compacted into a snapshot. */
export class CompactedError extends Error {
  override name = "CompactedError";
}

/** Raised by LogStorage for an index beyond lastIndex. */
export class UnavailableIndexError extends Error {
  override name = "UnavailableIndexError";
}

export class SnapshotTemporarilyUnavailableError extends Error {
  override name = "SnapshotTemporarilyUnavailableError";
}

/** Why a proposal was refused. The caller gets it synchronously from propose(); nothing is ever lost silently. */
export class ProposalDroppedError extends Error {
  override name = "ProposalDroppedError";
  constructor(
    readonly reason: "not-leader" | "transferring" | "queue-full" | "conf-change-pending" | "no-leader",
    readonly leaderHint: NodeId,
  ) {
    super(`proposal dropped: ${reason}${leaderHint ? ` (leader ${leaderHint})` : ""}`);
  }
}

export const emptyConfState = (): ConfState => ({
  voters: [],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
});

export const emptyHardState = (): HardState => ({ term: 0, vote: NONE, commit: 0 });
