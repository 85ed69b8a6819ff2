/**
 * Message handling (etcd-io/raft raft.go Step, stepLeader, stepCandidate, stepFollower): step()
 * settles the term (paper 5.1; thesis 4.2.3 and 9.6 for votes), answers votes, then hands the
 * message to the step function of the node's role.
 */
import { becomeLeader, campaign, campaignTransferContext, handleVote, hup, poll } from "./election.js";
import { leaderTransfer } from "./leader-transfer.js";
import { VoteResult } from "./quorum.js";
import { emptyData, type Raft } from "./raft.js";
import { decodeRound, leaderReadIndex, onRoundAcked } from "./read-only.js";
import { handleAppendEntries, handleAppResp, handleHeartbeat, handleSnapshot } from "./replication.js";
import { type Message, MessageType, NONE, type NodeId, ProgressState, Role } from "./types.js";
import { bytesEqual, newMessage } from "./util.js";

export function step(r: Raft, m: Message): void {
  if (m.term === 0) {
    // Term-less messages: forwarded ReadIndex requests.
  } else if (m.term > r.term) {
    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      const force = bytesEqual(m.context, campaignTransferContext);
      if (!force && !r.knobs.leaseWithoutVoteRestriction && r.inLease(m.type)) {
        // Thesis 4.2.3: ignore (do not even adopt the term) while a leader is live.
        r.debug(`ignored ${MessageType[m.type]} from ${m.from} at term ${m.term}: leader heard recently`);
        return;
      }
    }
    if (m.type === MessageType.PreVote) {
      // Never adopt a term from a pre-vote request (thesis 9.6).
    } else if (m.type === MessageType.PreVoteResp && !m.reject) {
      // The term is adopted when the pre-vote is won.
    } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
      r.becomeFollower(m.term, m.from);
    } else {
      r.becomeFollower(m.term, NONE);
    }
  } else if (m.term < r.term) {
    if ((r.checkQuorum || r.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
      // A stale leader (e.g. back from a partition) learns the term and steps down; otherwise
      // with checkQuorum/preVote nobody would ever tell it (etcd).
      r.send(newMessage(MessageType.AppResp, m.from, r.id, r.term));
    } else if (m.type === MessageType.PreVote) {
      const resp = newMessage(MessageType.PreVoteResp, m.from, r.id, r.term);
      resp.reject = true;
      r.send(resp);
    }
    return;
  }

  if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
    handleVote(r, m);
    return;
  }
  switch (r.role) {
    case Role.Leader:
      stepLeader(r, m);
      break;
    case Role.Candidate:
    case Role.PreCandidate:
      stepCandidate(r, m);
      break;
    case Role.Follower:
      stepFollower(r, m);
      break;
  }
}

function stepLeader(r: Raft, m: Message): void {
  if (m.type === MessageType.ReadIndex) {
    leaderReadIndex(r, m.from, m.context ?? emptyData, false);
    return;
  }
  if (m.type === MessageType.TransferLeader) {
    leaderTransfer(r, m.index);
    return;
  }
  const pr = r.tracker.progress.get(m.from);
  if (pr === undefined) {
    r.debug(`no progress for ${m.from}; dropping ${MessageType[m.type]}`);
    return;
  }
  switch (m.type) {
    case MessageType.AppResp:
      pr.recentActive = true;
      handleAppResp(r, m, pr);
      break;
    case MessageType.HeartbeatResp: {
      pr.recentActive = true;
      // A heartbeat response proves the peer is reachable: resume a paused probe, and nudge a
      // stalled pipeline (etcd): if every in-flight App was lost, only a new App restarts it.
      pr.msgAppFlowPaused = false;
      if (pr.match < r.log.lastIndex() || pr.state === ProgressState.Probe) {
        pr.nudged = true;
        r.appendDirty = true;
      }
      const round = decodeRound(m.context);
      if (round > pr.ackedRound && round <= r.round) {
        pr.ackedRound = round;
        onRoundAcked(r);
      }
      break;
    }
    default:
      r.debug(`leader ignores ${MessageType[m.type]} from ${m.from}`);
  }
}

function stepCandidate(r: Raft, m: Message): void {
  const myRespType = r.role === Role.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
  switch (m.type) {
    case MessageType.App:
    case MessageType.Heartbeat:
    case MessageType.Snap:
      // Paper 5.2: a candidate that hears from a leader of its term (or newer) steps down.
      r.becomeFollower(m.term, m.from);
      stepFollower(r, m);
      return;
    case myRespType: {
      const result = poll(r, m.from, !m.reject);
      if (result === VoteResult.Won) {
        if (r.role === Role.PreCandidate) campaign(r, false, false);
        else becomeLeader(r);
      } else if (result === VoteResult.Lost) {
        // Pre-vote lost: stay in the current term (thesis 9.6).
        r.becomeFollower(r.term, NONE);
      }
      return;
    }
    default:
      r.debug(`candidate ignores ${MessageType[m.type]} from ${m.from}`);
  }
}

function stepFollower(r: Raft, m: Message): void {
  switch (m.type) {
    case MessageType.App:
      heardFromLeader(r, m.from);
      handleAppendEntries(r, m);
      return;
    case MessageType.Heartbeat:
      heardFromLeader(r, m.from);
      handleHeartbeat(r, m);
      return;
    case MessageType.Snap:
      heardFromLeader(r, m.from);
      handleSnapshot(r, m);
      return;
    case MessageType.TransferLeader:
    case MessageType.ReadIndex:
      // Sent by a node that takes this one for its leader (it lags, e.g. after a pause). Only
      // a node's own requests go to the leader (readIndex, transferLeader; thesis 6.4 has the
      // follower ask the leader itself). Relayed, this one would leave with another node's id
      // as `from`, or, restamped, bring the answer here. The requester's caller times out and
      // retries where it now finds the leader, as for reads lost in a leadership change.
      r.debug(`dropping ${MessageType[m.type]} from ${m.from}: not the leader (leader ${r.lead})`);
      return;
    case MessageType.TimeoutNow:
      // Thesis 3.10: the leader asks us to start an election now, skipping PreVote.
      r.debug(`TimeoutNow from ${m.from}: campaigning`);
      hup(r, true);
      return;
    case MessageType.ReadIndexResp:
      r.readStates.push({ index: m.index, context: m.context ?? emptyData });
      return;
    default:
      r.debug(`follower ignores ${MessageType[m.type]} from ${m.from}`);
  }
}

function heardFromLeader(r: Raft, from: NodeId): void {
  r.electionElapsed = 0;
  r.leaderContactElapsed = 0;
  r.lead = from;
}
