/**
 * Read-only requests and leases (etcd-io/raft read_only.go, thesis 6.4 and 6.4.1): the leader's
 * numbered heartbeat rounds, the ReadIndex requests waiting on them, and the lease a
 * quorum-acknowledged round starts. The state lives on Raft (round ring, pending and deferred
 * reads, leaseExpireTick); Raft.leaseValid() is the query.
 */
import { type PendingRead, type Raft, ROUND_RING } from "./raft.js";
import { MessageType, NONE, type NodeId, ProposalDroppedError, Role } from "./types.js";
import { newMessage } from "./util.js";

/** Bound on ReadIndex requests waiting at a leader (queued plus deferred), and at a follower. */
export const MAX_PENDING_READS = 4096;

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
export function decodeRound(ctx: Uint8Array | undefined | null): number {
  if (ctx == null || ctx.byteLength !== 8) return -1;
  const hi = ((ctx[0]! << 24) | (ctx[1]! << 16) | (ctx[2]! << 8) | ctx[3]!) >>> 0;
  const lo = ((ctx[4]! << 24) | (ctx[5]! << 16) | (ctx[6]! << 8) | ctx[7]!) >>> 0;
  const v = hi * 0x1_0000_0000 + lo;
  return Number.isSafeInteger(v) ? v : -1;
}

/**
 * One heartbeat round: every member gets a Heartbeat carrying the round id and
 * min(match, commit). Quorum acknowledgement of a round confirms leadership at its send time
 * (thesis 6.4 step 3) and starts a lease from that send tick (thesis 6.4.1).
 */
export function bcastHeartbeat(r: Raft): void {
  r.readRoundWanted = false;
  r.round++;
  const slot = r.round % ROUND_RING;
  r.roundIds[slot] = r.round;
  r.roundSendTicks[slot] = r.now;
  const ctx = encodeRound(r.round);
  const ids = r.tracker.ids;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    const pr = r.tracker.progress.get(id)!;
    if (id === r.id) {
      pr.ackedRound = r.round;
      continue;
    }
    const commit = Math.min(pr.match, r.log.committed);
    const m = newMessage(MessageType.Heartbeat, id, r.id, r.term);
    m.commit = commit;
    m.context = ctx;
    r.send(m);
    pr.sentCommitTo(commit);
  }
  onRoundAcked(r);
}

/**
 * Recomputes the highest round acknowledged by a quorum. With `configChanged`, the lease is
 * recomputed from scratch under the new configuration's quorum: acknowledgements stay valid
 * evidence (each acker refuses votes for an election timeout after its ack), but only a quorum
 * of the configuration that now elects leaders counts.
 */
export function onRoundAcked(r: Raft, configChanged = false): void {
  const q = r.tracker.quorumRound();
  if (configChanged) {
    r.leaseExpireTick = 0;
    extendLease(r, q);
  }
  if (q <= r.quorumRoundSeen) return;
  r.quorumRoundSeen = q;
  // Release every read that waited for this round or an earlier one, in arrival order.
  const reads = r.pendingReads;
  let head = r.pendingReadsHead;
  while (head < reads.length && reads[head]!.round <= q) {
    respondRead(r, reads[head]!);
    head++;
  }
  if (head === reads.length) {
    r.pendingReads = [];
    r.pendingReadsHead = 0;
  } else {
    r.pendingReadsHead = head;
  }
  extendLease(r, q);
}

/** Thesis 6.4.1: the lease runs from the send tick of a quorum-acknowledged round. */
function extendLease(r: Raft, round: number): void {
  if (!r.leaseEnabled() || round <= 0) return;
  const slot = round % ROUND_RING;
  if (r.roundIds[slot] !== round) return;
  const expire = r.roundSendTicks[slot]! + r.electionTicks - r.leaseDriftTicks;
  if (expire > r.leaseExpireTick) r.leaseExpireTick = expire;
}

function respondRead(r: Raft, read: PendingRead): void {
  if (read.from === r.id || read.from === NONE) {
    r.readStates.push({ index: read.index, context: read.context });
    return;
  }
  const m = newMessage(MessageType.ReadIndexResp, read.from, r.id, r.term);
  m.index = read.index;
  m.context = read.context;
  r.send(m);
}

function pendingReadCount(r: Raft): number {
  return r.pendingReads.length - r.pendingReadsHead + r.deferredReads.length;
}

/**
 * ReadIndex at the leader (thesis 6.4): record the commit index, confirm leadership with a
 * heartbeat round, then release. Reads that arrive before the round is sent share it.
 */
export function leaderReadIndex(r: Raft, from: NodeId, context: Uint8Array, local: boolean): void {
  const read: PendingRead = { index: r.log.committed, context, from, round: 0 };
  if (r.tracker.isSingleton() && r.tracker.voters.isVoter(r.id)) {
    // A single voter is its own quorum.
    if (r.termCommitted) {
      respondRead(r, read);
      return;
    }
  }
  if (pendingReadCount(r) >= MAX_PENDING_READS) {
    if (local) throw new ProposalDroppedError("queue-full", r.id);
    r.debug(`dropping ReadIndex from ${from}: ${MAX_PENDING_READS} reads pending`);
    return;
  }
  if (!r.termCommitted) {
    // Thesis 6.4 step 1: until an entry of this term commits, the commit index may be stale.
    r.deferredReads.push(read);
    return;
  }
  read.round = r.round + 1;
  r.pendingReads.push(read);
  r.readRoundWanted = true;
}

export function readIndex(r: Raft, context: Uint8Array): void {
  if (r.role === Role.Leader) {
    leaderReadIndex(r, r.id, context, true);
    return;
  }
  if (r.lead === NONE) throw new ProposalDroppedError("no-leader", NONE);
  const m = newMessage(MessageType.ReadIndex, r.lead, r.id, 0);
  m.context = context;
  r.send(m);
}
