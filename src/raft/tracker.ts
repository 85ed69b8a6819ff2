/**
 * The leader's bookkeeping of the configuration and every member's progress (etcd tracker).
 * Followers keep it too, for the configuration and for tallying votes as candidates.
 */
import { assert } from "../util/assert.js";
import { type ConfSets, checkConfSets, confSetsFromState, confStateFromSets, isJoint, memberIds } from "./confchange.js";
import { Progress } from "./progress.js";
import { JointConfig, MajorityConfig, VoteResult } from "./quorum.js";
import type { ConfState, LogIndex, NodeId } from "./types.js";

export class ProgressTracker {
  sets: ConfSets;
  voters: JointConfig;
  progress = new Map<NodeId, Progress>();
  /** Every member, sorted: iteration order is deterministic on every replica. */
  ids: NodeId[] = [];
  private votes = new Map<NodeId, boolean>();

  private readonly matchOf = (id: NodeId): number => this.progress.get(id)?.match ?? 0;
  private readonly roundOf = (id: NodeId): number => this.progress.get(id)?.ackedRound ?? 0;
  private readonly activeOf = (id: NodeId): boolean | undefined => (this.progress.get(id)?.recentActive ? true : undefined);
  private readonly voteOf = (id: NodeId): boolean | undefined => this.votes.get(id);

  constructor(
    readonly maxInflightMessages: number,
    readonly maxInflightBytes: number,
  ) {
    this.sets = confSetsFromState({ voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false });
    this.voters = new JointConfig(new MajorityConfig([]), new MajorityConfig([]));
  }

  /**
   * Switches to a new configuration. Existing members keep their Progress; new ones start probing
   * at lastIndex + 1 and count as recently active (etcd initProgress), so CheckQuorum gives them
   * an election timeout before judging.
   */
  setConfig(sets: ConfSets, lastIndex: LogIndex): void {
    checkConfSets(sets);
    const next = new Map<NodeId, Progress>();
    for (const id of memberIds(sets)) {
      const isLearner = sets.learners.has(id);
      let pr = this.progress.get(id);
      if (pr === undefined) {
        pr = new Progress(lastIndex + 1, isLearner, this.maxInflightMessages, this.maxInflightBytes);
        pr.recentActive = true;
      } else {
        pr.isLearner = isLearner;
      }
      next.set(id, pr);
    }
    this.sets = sets;
    this.voters = new JointConfig(new MajorityConfig(sets.incoming), new MajorityConfig(sets.outgoing));
    this.progress = next;
    this.ids = [...next.keys()];
    for (const id of this.votes.keys()) if (!this.voters.isVoter(id)) this.votes.delete(id);
  }

  restore(cs: ConfState, lastIndex: LogIndex): void {
    const sets = confSetsFromState(cs);
    try {
      checkConfSets(sets);
    } catch (err) {
      assert(false, `tracker: invalid ConfState from storage or snapshot: ${(err as Error).message}`);
    }
    this.progress = new Map();
    this.setConfig(sets, lastIndex);
  }

  confState(): ConfState {
    return confStateFromSets(this.sets);
  }

  isJoint(): boolean {
    return isJoint(this.sets);
  }

  isSingleton(): boolean {
    return this.sets.incoming.size === 1 && this.sets.outgoing.size === 0;
  }

  /** Highest index replicated on a quorum (both halves of a joint config). */
  committed(): LogIndex {
    return this.voters.quorumValue(this.matchOf);
  }

  /** Highest heartbeat round acknowledged by a quorum. */
  quorumRound(): number {
    return this.voters.quorumValue(this.roundOf);
  }

  /** CheckQuorum (thesis 6.2): a quorum was heard from since the last check. */
  quorumActive(): boolean {
    return this.voters.voteResult(this.activeOf) === VoteResult.Won;
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const [id, v] of this.votes) {
      if (!this.voters.isVoter(id)) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: this.voters.voteResult(this.voteOf) };
  }
}
