/**
 * Log replication (paper 5.3, 7; etcd-io/raft raft.go): the follower's side (App, Heartbeat and
 * Snap handling), the leader's side (acknowledgements, the commit rule, sending App and Snap under
 * flow control, progress.ts) and the transport's feedback on unreachable peers and snapshots.
 */
import { assert } from "../util/assert.js";
import { sendTimeoutNow } from "./leader-transfer.js";
import type { Progress } from "./progress.js";
import type { Raft } from "./raft.js";
import { bcastHeartbeat, leaderReadIndex } from "./read-only.js";
import {
  CompactedError,
  type Entry,
  type Message,
  MessageType,
  type NodeId,
  ProgressState,
  Role,
  type Snapshot,
  SnapshotTemporarilyUnavailableError,
} from "./types.js";
import { newMessage } from "./util.js";

// --- Replication: follower side ------------------------------------------------------------

export function handleAppendEntries(r: Raft, m: Message): void {
  if (m.index < r.log.committed) {
    const resp = newMessage(MessageType.AppResp, m.from, r.id, r.term);
    resp.index = r.log.committed;
    r.send(resp);
    return;
  }
  const lastNew = r.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  const resp = newMessage(MessageType.AppResp, m.from, r.id, r.term);
  if (lastNew >= 0) {
    resp.index = lastNew;
  } else {
    // Fast backtracking (etcd): hint the largest index whose term is <= the leader's term at
    // m.index, so the leader skips every entry of a term it does not have in one round trip.
    const hintIndex = Math.min(m.index, r.log.lastIndex());
    const [index, term] = r.log.findConflictByTerm(hintIndex, m.logTerm);
    resp.index = m.index;
    resp.reject = true;
    resp.rejectHint = index;
    resp.logTerm = term;
    r.debug(`rejected App at ${m.index} (term ${m.logTerm}); hint ${index}/${term}`);
  }
  r.send(resp);
}

export function handleHeartbeat(r: Raft, m: Message): void {
  // The leader sends min(match, commit), so this never exceeds what we share with it.
  r.log.commitTo(m.commit);
  const resp = newMessage(MessageType.HeartbeatResp, m.from, r.id, r.term);
  resp.context = m.context ?? undefined;
  r.send(resp);
}

export function handleSnapshot(r: Raft, m: Message): void {
  const resp = newMessage(MessageType.AppResp, m.from, r.id, r.term);
  const s = m.snapshot;
  if (s != null && restore(r, s)) {
    resp.index = r.log.lastIndex();
    r.debug(`restored snapshot ${s.metadata.index}/${s.metadata.term}`);
  } else {
    resp.index = r.log.committed;
  }
  r.send(resp);
}

/** Paper 7: install a leader's snapshot unless the log already covers it. */
function restore(r: Raft, s: Snapshot): boolean {
  const index = s.metadata.index;
  if (index <= r.log.committed) return false;
  assert(r.role === Role.Follower, "raft: only a follower restores a snapshot");
  if (r.log.matchTerm(index, s.metadata.term)) {
    // We have the entry already: just learn that it is committed.
    r.log.commitTo(index);
    return false;
  }
  r.log.restore(s);
  // The snapshot carries the configuration as of its index (it may not include this node yet:
  // a node being added can receive a snapshot older than its own addition).
  r.tracker.restore(s.metadata.confState, r.log.lastIndex());
  r.isLearner = r.tracker.progress.get(r.id)?.isLearner ?? false;
  return true;
}

// --- Replication: leader side --------------------------------------------------------------

export function handleAppResp(r: Raft, m: Message, pr: Progress): void {
  if (m.reject) {
    let nextProbe = m.rejectHint;
    if (m.logTerm > 0) nextProbe = r.log.findConflictByTerm(m.rejectHint, m.logTerm)[0];
    if (pr.maybeDecrTo(m.index, nextProbe)) {
      r.debug(`${m.from} rejected ${m.index}; probing from ${pr.next}`);
      if (pr.state === ProgressState.Replicate) pr.becomeProbe();
      r.appendDirty = true;
    }
    return;
  }
  if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === ProgressState.Probe)) {
    if (pr.state === ProgressState.Probe) {
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= r.log.firstIndex()) {
      // The peer caught up (from the snapshot or otherwise): replicate from its match.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Replicate) {
      pr.inflights.freeLE(m.index);
    }
    if (maybeCommit(r)) onCommitAdvanced(r);
    r.appendDirty = true;
    if (m.from === r.leadTransferee && pr.match === r.log.lastIndex()) {
      r.debug(`transferee ${m.from} caught up; sending TimeoutNow`);
      sendTimeoutNow(r, m.from);
    }
  }
}

/**
 * Paper 5.4.2 / Figure 8: advance the commit index to the highest index replicated on a quorum,
 * but only if that entry is of the current term; earlier entries commit indirectly.
 */
export function maybeCommit(r: Raft): boolean {
  const mci = r.tracker.committed();
  if (mci <= r.log.committed) return false;
  if (!r.knobs.commitPreviousTermEntries && r.log.term(mci) !== r.term) return false;
  r.log.commitTo(mci);
  return true;
}

export function onCommitAdvanced(r: Raft): void {
  r.appendDirty = true;
  if (!r.termCommitted && r.log.term(r.log.committed) === r.term) {
    r.termCommitted = true;
    // Thesis 6.4: reads deferred until this term's first commit may proceed now.
    const deferred = r.deferredReads;
    r.deferredReads = [];
    for (const read of deferred) leaderReadIndex(r, read.from, read.context, false);
  }
}

/** Sends App messages wherever replication can progress (called before a Ready is built). */
export function flushPending(r: Raft): void {
  if (r.role !== Role.Leader) {
    r.appendDirty = false;
    r.readRoundWanted = false;
    return;
  }
  if (r.readRoundWanted) bcastHeartbeat(r);
  if (!r.appendDirty) return;
  r.appendDirty = false;
  const commitUpdates = !r.commitUpdatesOnTick || r.commitUpdateDue;
  r.commitUpdateDue = false;
  const ids = r.tracker.ids;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id === r.id) continue;
    const pr = r.tracker.progress.get(id)!;
    // Bounded: Replicate stops when inflights are full; Probe after one message.
    for (let n = 0; n <= r.tracker.maxInflightMessages && maybeSendAppend(r, id, pr, commitUpdates); n++);
  }
}

/**
 * Sends one App (or a Snap) to `to` if there is something to send and flow control allows it.
 * `commitUpdate`: an App with no entries may go out only to tell a new commit index.
 */
function maybeSendAppend(r: Raft, to: NodeId, pr: Progress, commitUpdate: boolean): boolean {
  if (pr.isPaused()) return false;
  const lastIndex = r.log.lastIndex();
  const prevIndex = pr.next - 1;
  const prevTerm = r.log.term(prevIndex);
  if (prevTerm < 0) return maybeSendSnapshot(r, to, pr);
  let entries: Entry[] | undefined;
  let bytes = 0;
  // With full inflights, only an empty App goes out (a nudge): its answer frees the window.
  const throttled = pr.state === ProgressState.Replicate && pr.inflights.full();
  if (pr.next <= lastIndex && !throttled) {
    try {
      entries = r.log.slice(pr.next, lastIndex + 1, r.maxSizePerMsg);
    } catch (err) {
      if (err instanceof CompactedError) return maybeSendSnapshot(r, to, pr);
      throw err;
    }
    bytes = r.log.lastSliceBytes;
  }
  const committed = r.log.committed;
  const nudged = pr.nudged;
  pr.nudged = false;
  if (entries === undefined && !nudged && !(commitUpdate && pr.canBumpCommit(committed))) return false;
  const m = newMessage(MessageType.App, to, r.id, r.term);
  m.index = prevIndex;
  m.logTerm = prevTerm;
  if (entries !== undefined) m.entries = entries;
  m.commit = committed;
  r.send(m);
  pr.sentEntries(entries === undefined ? 0 : entries.length, bytes);
  pr.sentCommitTo(committed);
  return entries !== undefined;
}

/** The peer needs entries we compacted: send the latest snapshot (paper 7). */
function maybeSendSnapshot(r: Raft, to: NodeId, pr: Progress): boolean {
  if (!pr.recentActive) {
    r.debug(`not sending a snapshot to ${to}: not recently active`);
    return false;
  }
  let snap: Snapshot;
  try {
    snap = r.log.unstable.snapshot ?? r.log.storage.snapshot();
  } catch (err) {
    if (err instanceof SnapshotTemporarilyUnavailableError) {
      r.debug(`snapshot for ${to} temporarily unavailable`);
      return false;
    }
    throw err;
  }
  const index = snap.metadata.index;
  assert(index > 0, "raft: need a non-empty snapshot to catch up a peer");
  assert(index >= r.log.firstIndex() - 1, `raft: storage compacted to ${r.log.firstIndex() - 1} beyond its snapshot ${index}`);
  pr.becomeSnapshot(index);
  const m = newMessage(MessageType.Snap, to, r.id, r.term);
  m.snapshot = snap;
  r.send(m);
  r.debug(`sent snapshot ${index}/${snap.metadata.term} to ${to}`);
  return false;
}

// --- Transport and snapshot feedback -------------------------------------------------------

export function reportUnreachable(r: Raft, id: NodeId): void {
  if (r.role !== Role.Leader) return;
  const pr = r.tracker.progress.get(id);
  if (pr === undefined) return;
  // The pipeline to it is broken: fall back to probing (etcd).
  if (pr.state === ProgressState.Replicate) pr.becomeProbe();
  r.appendDirty = true;
}

export function reportSnapshot(r: Raft, id: NodeId, ok: boolean): void {
  if (r.role !== Role.Leader) return;
  const pr = r.tracker.progress.get(id);
  if (pr === undefined || pr.state !== ProgressState.Snapshot) return;
  if (!ok) pr.pendingSnapshot = 0;
  pr.becomeProbe();
  // Wait for the peer's answer (or a heartbeat response) before the next App.
  pr.msgAppFlowPaused = true;
  r.debug(`snapshot to ${id} ${ok ? "finished" : "failed"}; probing from ${pr.next}`);
}
