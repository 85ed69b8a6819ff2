/**
 * Elections (paper 5.2, 5.4.1; thesis 9.6 PreVote; etcd-io/raft raft.go campaign, poll): starting
 * a campaign, granting or refusing votes, and becoming leader when one is won.
 */
import { assert } from "../util/assert.js";
import { appendLocal } from "./proposal.js";
import { VoteResult } from "./quorum.js";
import { emptyData, type Raft } from "./raft.js";
import { EntryType, type Message, MessageType, NONE, type NodeId, Role, type Term } from "./types.js";
import { newMessage, voteResponseType } from "./util.js";

/**
 * Vote/PreVote context of a campaign started by TimeoutNow (leadership transfer). Such a vote may
 * bypass the "heard from a leader recently" restriction: the leader asked for it (thesis 3.10).
 */
export const campaignTransferContext: Uint8Array = Uint8Array.from([..."CampaignTransfer"].map((c) => c.charCodeAt(0)));

export function becomeLeader(r: Raft): void {
  assert(r.role !== Role.Follower, "raft: follower cannot become leader directly");
  r.reset(r.term);
  r.lead = r.id;
  r.role = Role.Leader;
  r.leaderContactElapsed = 0;
  r.leaderSinceTick = r.now;
  const self = r.tracker.progress.get(r.id);
  assert(self !== undefined, "raft: leader must be a member");
  self.becomeReplicate();
  self.recentActive = true;
  // Conservatively treat any unapplied entry as a possible ConfChange (etcd): no new ConfChange
  // until everything this leader inherited is applied.
  r.pendingConfIndex = r.log.lastIndex();
  // Paper 8 / thesis 6.4: a no-op entry of the new term lets the leader learn the commit index
  // (it may only commit entries of its own term by counting, paper 5.4.2).
  appendLocal(r, { term: r.term, index: r.log.lastIndex() + 1, type: EntryType.Normal, data: emptyData });
  r.debug("became leader");
}

/** Start an election: PreVote first when enabled, unless this is a leadership transfer. */
export function hup(r: Raft, transfer: boolean): void {
  if (r.role === Role.Leader) {
    r.debug("ignoring campaign: already leader");
    return;
  }
  if (!r.promotable()) {
    r.debug("ignoring campaign: not a voter");
    return;
  }
  // A configuration change that is committed but not applied could make this node a non-voter
  // (etcd: campaigning then could elect a leader under a stale configuration).
  if (r.log.hasUnappliedConfChanges()) {
    r.debug("ignoring campaign: committed configuration changes are not applied yet");
    return;
  }
  if (r.preVote && !transfer) campaign(r, true, false);
  else campaign(r, false, transfer);
}

/** Local campaign(): refused while this node still backs a leader's lease (its vote is a vote). */
export function campaignLocal(r: Raft): void {
  if (r.role !== Role.Leader && r.checkQuorum && r.leaderContactElapsed < r.electionTicks) {
    r.debug("ignoring campaign: heard from a leader within the election timeout");
    return;
  }
  hup(r, false);
}

export function campaign(r: Raft, pre: boolean, transfer: boolean): void {
  let term: Term;
  let voteType: MessageType;
  if (pre) {
    r.becomePreCandidate();
    voteType = MessageType.PreVote;
    term = r.term + 1; // the term we would campaign in; not adopted yet
  } else {
    r.becomeCandidate();
    voteType = MessageType.Vote;
    term = r.term;
  }
  if (poll(r, r.id, true) === VoteResult.Won) {
    // Single voter: won outright.
    if (pre) campaign(r, false, transfer);
    else becomeLeader(r);
    return;
  }
  const lastIndex = r.log.lastIndex();
  const lastTerm = r.log.lastTerm();
  for (const id of r.tracker.voters.voterIds()) {
    if (id === r.id) continue;
    const m = newMessage(voteType, id, r.id, term);
    m.index = lastIndex;
    m.logTerm = lastTerm;
    if (transfer) m.context = campaignTransferContext;
    r.send(m);
  }
  r.debug(`sent ${MessageType[voteType]} at term ${term}`);
}

export function poll(r: Raft, id: NodeId, granted: boolean): VoteResult {
  r.tracker.recordVote(id, granted);
  return r.tracker.tallyVotes().result;
}

export function handleVote(r: Raft, m: Message): void {
  // Paper 5.2/5.4.1: one vote per term, only for a log at least as up-to-date as ours. A
  // pre-vote for a future term does not bind (thesis 9.6).
  const canVote = r.vote === m.from || (r.vote === NONE && r.lead === NONE) || (m.type === MessageType.PreVote && m.term > r.term);
  const respType = voteResponseType(m.type);
  if (canVote && r.log.isUpToDate(m.index, m.logTerm)) {
    const resp = newMessage(respType, m.from, r.id, m.term);
    r.send(resp);
    if (m.type === MessageType.Vote) {
      assert(r.vote === NONE || r.vote === m.from, "raft: second vote in one term");
      r.electionElapsed = 0;
      r.vote = m.from;
    }
    r.debug(`granted ${MessageType[m.type]} to ${m.from} at term ${m.term}`);
  } else {
    const resp = newMessage(respType, m.from, r.id, r.term);
    resp.reject = true;
    r.send(resp);
    r.debug(`rejected ${MessageType[m.type]} from ${m.from} at term ${m.term}`);
  }
}
