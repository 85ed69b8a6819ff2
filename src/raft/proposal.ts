/**
 * Proposals at the leader (etcd-io/raft raft.go stepLeader MsgProp): appending entries of its
 * term, the bound on uncommitted bytes, at most one configuration change in flight, and leaving
 * an auto-leave joint configuration once it is applied.
 */
import { assert } from "../util/assert.js";
import { InvalidArgumentError } from "../util/errors.js";
import { ConfChangeError, applyConfChangeToSets } from "./confchange.js";
import { encodeConfChange } from "./confchange-codec.js";
import type { Raft } from "./raft.js";
import { maybeCommit, onCommitAdvanced } from "./replication.js";
import { type ConfChange, ConfChangeTransition, type Entry, EntryType, NONE, ProposalDroppedError, Role } from "./types.js";

/**
 * Appends one entry of this leader's term and counts it on the leader (thesis 10.2.1), at once, or
 * with asyncStorageWrites once the driver reports it durable (RawNode.persisted()).
 */
export function appendLocal(r: Raft, e: Entry): void {
  assert(e.index === r.log.lastIndex() + 1 && e.term === r.term, "raft: leader entry out of place");
  r.log.unstable.truncateAndAppend([e]);
  const self = r.tracker.progress.get(r.id);
  if (self !== undefined && !r.asyncStorageWrites) self.maybeUpdate(e.index);
  if (maybeCommit(r)) onCommitAdvanced(r);
  r.appendDirty = true;
}

function increaseUncommittedSize(r: Raft, bytes: number): boolean {
  // A single entry is always admitted when nothing is outstanding, so an entry larger than the
  // bound still gets through (etcd).
  if (r.uncommittedSize > 0 && bytes > 0 && r.uncommittedSize + bytes > r.maxUncommittedEntriesBytes) {
    return false;
  }
  r.uncommittedSize += bytes;
  return true;
}

function checkCanPropose(r: Raft): void {
  if (r.role !== Role.Leader) {
    throw new ProposalDroppedError(r.lead === NONE ? "no-leader" : "not-leader", r.lead);
  }
  if (!r.tracker.progress.has(r.id)) throw new ProposalDroppedError("not-leader", NONE);
  if (r.leadTransferee !== NONE) throw new ProposalDroppedError("transferring", r.leadTransferee);
}

export function propose(r: Raft, data: Uint8Array): void {
  checkCanPropose(r);
  if (!increaseUncommittedSize(r, data.byteLength)) throw new ProposalDroppedError("queue-full", r.id);
  appendLocal(r, { term: r.term, index: r.log.lastIndex() + 1, type: EntryType.Normal, data });
}

export function proposeConfChange(r: Raft, cc: ConfChange): void {
  checkCanPropose(r);
  // Thesis 4.1/4.3 via etcd: at most one configuration change in flight.
  if (r.pendingConfIndex > r.log.applied) {
    throw new ProposalDroppedError("conf-change-pending", r.id);
  }
  try {
    applyConfChangeToSets(r.tracker.sets, cc);
  } catch (err) {
    if (err instanceof ConfChangeError) {
      throw new InvalidArgumentError(`invalid configuration change: ${err.message}`, { cause: err });
    }
    throw err;
  }
  const data = encodeConfChange(cc);
  if (!increaseUncommittedSize(r, data.byteLength)) throw new ProposalDroppedError("queue-full", r.id);
  const index = r.log.lastIndex() + 1;
  appendLocal(r, { term: r.term, index, type: EntryType.ConfChange, data });
  r.pendingConfIndex = index;
}

/** Leave an auto-leave joint configuration once it is applied (etcd appliedTo). */
export function maybeAutoLeave(r: Raft): void {
  if (r.role !== Role.Leader || !r.tracker.sets.autoLeave) return;
  if (r.log.applied < r.pendingConfIndex) return;
  try {
    proposeConfChange(r, { transition: ConfChangeTransition.Auto, changes: [] });
    r.debug("proposed leaving the joint configuration");
  } catch (err) {
    if (!(err instanceof ProposalDroppedError)) throw err;
    r.debug(`leaving the joint configuration postponed: ${err.reason}`);
  }
}
