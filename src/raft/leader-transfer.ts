/**
 * Leadership transfer (thesis 3.10, etcd-io/raft raft.go MsgTransferLeader): the leader catches
 * the transferee up, then sends TimeoutNow; it takes no proposals meanwhile (proposal.ts) and
 * gives up after an election timeout (tick.ts).
 */
import type { Raft } from "./raft.js";
import { MessageType, NONE, type NodeId, Role } from "./types.js";
import { newMessage } from "./util.js";

/** Thesis 3.10: catch the transferee up, then TimeoutNow; no proposals meanwhile. */
export function leaderTransfer(r: Raft, transferee: NodeId): void {
  const pr = r.tracker.progress.get(transferee);
  if (pr === undefined || pr.isLearner || !r.tracker.voters.isVoter(transferee)) {
    r.debug(`ignoring transfer to ${transferee}: not a voter`);
    return;
  }
  if (r.leadTransferee !== NONE) {
    if (r.leadTransferee === transferee) return;
    r.leadTransferee = NONE;
  }
  if (transferee === r.id) return;
  r.electionElapsed = 0; // the transfer is abandoned after one election timeout
  r.leadTransferee = transferee;
  r.leaseExpireTick = 0; // thesis 6.4.1: the lease ends when a transfer starts
  r.debug(`transferring leadership to ${transferee}`);
  if (pr.match === r.log.lastIndex()) {
    sendTimeoutNow(r, transferee);
    return;
  }
  // Start catching the transferee up now (etcd sendAppend), even when there is nothing new to
  // send: in Replicate state next may already be past entries that were lost in flight, and
  // only an App (empty if need be) makes the transferee reveal where its log really ends.
  // Regression: test/raft/testdata/transfer-leadership.txt (transfer to a lagging follower).
  pr.nudged = true;
  r.appendDirty = true;
}

export function sendTimeoutNow(r: Raft, to: NodeId): void {
  r.timeoutNowSent = true;
  r.leaseExpireTick = 0;
  r.send(newMessage(MessageType.TimeoutNow, to, r.id, r.term));
}

export function transferLeader(r: Raft, transferee: NodeId): void {
  if (r.role === Role.Leader) {
    leaderTransfer(r, transferee);
    return;
  }
  if (r.lead === NONE) {
    r.debug(`no leader; dropping transfer to ${transferee}`);
    return;
  }
  const m = newMessage(MessageType.TransferLeader, r.lead, r.id, r.term);
  m.index = transferee; // etcd names the transferee in From; tally's From is always the sender
  r.send(m);
}
