/**
 * Small helpers shared by the Raft core. Pure functions; no allocation beyond what they return.
 */
import type { ConfState, Entry, Message, NodeId } from "./types.js";
import { MessageType } from "./types.js";

/**
 * Bytes an entry costs in a message (flow control, maxSizePerMsg, maxCommittedSizePerReady): its
 * payload plus a fixed header, so empty entries (the leader's no-op) still count for something.
 */
export const ENTRY_OVERHEAD_BYTES = 16;

export function entryBytes(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

/** Bytes an entry counts toward maxUncommittedEntriesBytes: the payload only (etcd), so the no-op is never refused. */
export function payloadBytes(e: Entry): number {
  return e.data.byteLength;
}

export function cloneConfState(cs: ConfState): ConfState {
  return {
    voters: cs.voters.slice(),
    learners: cs.learners.slice(),
    votersOutgoing: cs.votersOutgoing.slice(),
    learnersNext: cs.learnersNext.slice(),
    autoLeave: cs.autoLeave,
  };
}

/** True for message types that only the node itself may step (never from the network). */
export function isLocalMessage(type: MessageType): boolean {
  return (
    type === MessageType.Hup ||
    type === MessageType.Beat ||
    type === MessageType.Prop ||
    type === MessageType.Unreachable ||
    type === MessageType.SnapStatus ||
    type === MessageType.CheckQuorum
  );
}

export function isResponseMessage(type: MessageType): boolean {
  return (
    type === MessageType.AppResp ||
    type === MessageType.VoteResp ||
    type === MessageType.HeartbeatResp ||
    type === MessageType.PreVoteResp ||
    type === MessageType.ReadIndexResp
  );
}

export function voteResponseType(type: MessageType): MessageType {
  if (type === MessageType.Vote) return MessageType.VoteResp;
  if (type === MessageType.PreVote) return MessageType.PreVoteResp;
  throw new Error(`not a vote message: ${MessageType[type]}`);
}

const emptyEntries: Entry[] = [];
Object.freeze(emptyEntries);

/**
 * Every message is built here so all Message objects share one shape (one hidden class in V8),
 * which keeps the hot paths monomorphic.
 */
export function newMessage(type: MessageType, to: NodeId, from: NodeId, term: number): Message {
  return {
    type,
    to,
    from,
    term,
    logTerm: 0,
    index: 0,
    entries: emptyEntries,
    commit: 0,
    reject: false,
    rejectHint: 0,
    snapshot: undefined,
    context: undefined,
  };
}

export function sortedUnique(ids: Iterable<NodeId>): NodeId[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}

/** Byte equality; null (what some decoders make of an absent field) counts as absent. */
export function bytesEqual(a: Uint8Array | undefined | null, b: Uint8Array | undefined | null): boolean {
  if (a == null || b == null) return (a == null) === (b == null);
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
