/**
 * Applying a configuration change (etcd-io/raft raft.go applyConfChange, switchToConfig): the
 * caller applies the committed ConfChange entry (raw-node.ts says why at apply time), the tracker
 * takes the new sets (confchange.ts), and a leader re-judges commit, reads and its lease by the new
 * quorum.
 */
import { ConfChangeError, applyConfChangeToSets, type ConfSets } from "./confchange.js";
import type { Raft } from "./raft.js";
import { onRoundAcked } from "./read-only.js";
import { maybeCommit, onCommitAdvanced } from "./replication.js";
import { type ConfChange, type ConfState, NONE, Role } from "./types.js";

export function applyConfChange(r: Raft, cc: ConfChange): ConfState {
  let next: ConfSets;
  try {
    next = applyConfChangeToSets(r.tracker.sets, cc);
  } catch (err) {
    if (!(err instanceof ConfChangeError)) throw err;
    // Validated when proposed, so this is a change proposed under an older leader. Every
    // replica sees the same configuration here, so ignoring it is deterministic.
    r.debug(`ignoring configuration change that does not apply: ${err.message}`);
    return r.tracker.confState();
  }
  return switchToConfig(r, next);
}

function switchToConfig(r: Raft, sets: ConfSets): ConfState {
  r.tracker.setConfig(sets, r.log.lastIndex());
  const self = r.tracker.progress.get(r.id);
  r.isLearner = self?.isLearner ?? false;
  const cs = r.tracker.confState();
  r.debug(`switched to configuration ${JSON.stringify(cs)}`);
  if ((self === undefined || r.isLearner) && r.role === Role.Leader) {
    // A leader that is no longer a voter steps down (thesis 4.2.2).
    r.becomeFollower(r.term, NONE);
    return cs;
  }
  if (r.role !== Role.Leader || cs.voters.length === 0) return cs;
  // The quorum changed: the commit index may move, and new members need entries.
  if (maybeCommit(r)) onCommitAdvanced(r);
  r.appendDirty = true;
  if (r.leadTransferee !== NONE && !r.tracker.voters.isVoter(r.leadTransferee)) {
    r.leadTransferee = NONE;
  }
  // Reads and the lease are judged by a quorum of the new configuration from now on.
  onRoundAcked(r, true);
  return cs;
}
