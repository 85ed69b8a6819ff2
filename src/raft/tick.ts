/**
 * The logical clock (etcd-io/raft raft.go tickElection, tickHeartbeat): a follower or candidate
 * campaigns after its randomized election timeout; a leader sends heartbeat rounds, checks that a
 * quorum is active (CheckQuorum, thesis 6.2) and abandons a transfer that took too long.
 */
import { hup } from "./election.js";
import { maybeAutoLeave } from "./proposal.js";
import type { Raft } from "./raft.js";
import { bcastHeartbeat } from "./read-only.js";
import { NONE, Role } from "./types.js";

/**
 * `heartbeatDue`: the node's shared heartbeat round falls on this tick (the driver sets it every
 * heartbeatTicks of its own ticks). A leader then heartbeats at once, whatever its own interval
 * says, and counts its interval from here: after its first such round it heartbeats on the node's
 * rounds only, so the heartbeats of every group a node leads leave together, one frame per peer,
 * and the followers' answers come back together. Never later than its own interval.
 */
export function tick(r: Raft, heartbeatDue = false): void {
  r.now++;
  if (r.leaderContactElapsed < Number.MAX_SAFE_INTEGER) r.leaderContactElapsed++;
  if (r.role === Role.Leader) tickHeartbeat(r, heartbeatDue);
  else tickElection(r);
}

function tickElection(r: Raft): void {
  r.electionElapsed++;
  if (r.promotable() && r.electionElapsed >= r.randomizedElectionTimeout) {
    r.electionElapsed = 0;
    hup(r, false);
  }
}

function tickHeartbeat(r: Raft, heartbeatDue: boolean): void {
  r.heartbeatElapsed++;
  r.electionElapsed++;
  r.leaderContactElapsed = 0;
  if (r.commitUpdatesOnTick) {
    // The commits of the last tick go out now, in the tick's frames (flushPending).
    r.commitUpdateDue = true;
    r.appendDirty = true;
  }
  if (r.electionElapsed >= r.electionTicks) {
    r.electionElapsed = 0;
    if (r.checkQuorum) {
      checkQuorumActive(r);
      if (r.role !== Role.Leader) return;
    }
    // A transfer that has not finished within an election timeout is abandoned (thesis 3.10).
    if (r.leadTransferee !== NONE) {
      r.debug(`leadership transfer to ${r.leadTransferee} timed out`);
      r.leadTransferee = NONE;
    }
    maybeAutoLeave(r);
  }
  if (r.heartbeatElapsed >= r.heartbeatTicks || heartbeatDue) {
    r.heartbeatElapsed = 0;
    bcastHeartbeat(r);
  }
}

/**
 * CheckQuorum (thesis 6.2): a leader that has not heard from a quorum within an election timeout
 * steps down, so a partitioned leader stops serving (and stops holding a lease).
 */
function checkQuorumActive(r: Raft): void {
  const self = r.tracker.progress.get(r.id);
  if (self !== undefined) self.recentActive = true;
  if (!r.tracker.quorumActive()) {
    r.debug("stepped down: no quorum heard within an election timeout");
    r.becomeFollower(r.term, NONE);
    return;
  }
  for (const id of r.tracker.ids) if (id !== r.id) r.tracker.progress.get(id)!.recentActive = false;
}
