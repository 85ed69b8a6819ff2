/**
 * Membership changes (etcd confchange.Changer), as pure functions on configuration sets.
 *
 * Joint consensus (thesis 4.3): a change of more than one voter first enters the joint
 * configuration C_old,new (outgoing = old voters, incoming = new voters; decisions need a majority
 * of each) and later leaves it for C_new. A single-voter change may be applied directly
 * (thesis 4.1): any majority of the old and any majority of the new configuration overlap.
 *
 * Learners never vote. A voter of the outgoing config that is demoted to learner cannot become a
 * learner while it still votes in C_old; it waits in learnersNext until the joint config is left.
 */
import { assert } from "../util/assert.js";
import { type ConfChange, ConfChangeTransition, type ConfChangeSingle, ConfChangeType, type ConfState, type NodeId } from "./types.js";

export interface ConfSets {
  incoming: Set<NodeId>;
  outgoing: Set<NodeId>;
  learners: Set<NodeId>;
  learnersNext: Set<NodeId>;
  autoLeave: boolean;
}

/** A change that cannot be applied to the current configuration. */
export class ConfChangeError extends Error {
  override name = "ConfChangeError";
}

export function confSetsFromState(cs: ConfState): ConfSets {
  return {
    incoming: new Set(cs.voters),
    outgoing: new Set(cs.votersOutgoing),
    learners: new Set(cs.learners),
    learnersNext: new Set(cs.learnersNext),
    autoLeave: cs.autoLeave,
  };
}

const sorted = (s: Set<NodeId>): NodeId[] => [...s].sort((a, b) => a - b);

export function confStateFromSets(c: ConfSets): ConfState {
  return {
    voters: sorted(c.incoming),
    learners: sorted(c.learners),
    votersOutgoing: sorted(c.outgoing),
    learnersNext: sorted(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

function copySets(c: ConfSets): ConfSets {
  return {
    incoming: new Set(c.incoming),
    outgoing: new Set(c.outgoing),
    learners: new Set(c.learners),
    learnersNext: new Set(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

export function isJoint(c: ConfSets): boolean {
  return c.outgoing.size > 0;
}

/** Every node that needs a Progress: voters of either half, learners, and learners-to-be. */
export function memberIds(c: ConfSets): NodeId[] {
  return sorted(new Set([...c.incoming, ...c.outgoing, ...c.learners, ...c.learnersNext]));
}

/** Throws ConfChangeError when the sets break an invariant (etcd checkInvariants). */
export function checkConfSets(c: ConfSets): void {
  for (const id of c.learners) {
    if (c.incoming.has(id)) throw new ConfChangeError(`${id} is in learners and voters`);
    if (c.outgoing.has(id)) throw new ConfChangeError(`${id} is in learners and outgoing voters`);
  }
  for (const id of c.learnersNext) {
    if (!c.outgoing.has(id)) throw new ConfChangeError(`${id} is in learnersNext but not an outgoing voter`);
    if (c.learners.has(id)) throw new ConfChangeError(`${id} is in learnersNext and learners`);
  }
  if (!isJoint(c)) {
    if (c.learnersNext.size > 0) throw new ConfChangeError("learnersNext must be empty outside a joint config");
    if (c.autoLeave) throw new ConfChangeError("autoLeave must be false outside a joint config");
  }
}

function makeVoter(c: ConfSets, id: NodeId): void {
  c.learners.delete(id);
  c.learnersNext.delete(id);
  c.incoming.add(id);
}

function makeLearner(c: ConfSets, id: NodeId): void {
  if (c.learners.has(id)) return;
  remove(c, id);
  // A voter of C_old keeps voting there until the joint config is left (thesis 4.3).
  if (c.outgoing.has(id)) c.learnersNext.add(id);
  else c.learners.add(id);
}

function remove(c: ConfSets, id: NodeId): void {
  c.incoming.delete(id);
  c.learners.delete(id);
  c.learnersNext.delete(id);
}

function applyChanges(c: ConfSets, changes: readonly ConfChangeSingle[]): void {
  for (const ch of changes) {
    assert(Number.isSafeInteger(ch.nodeId) && ch.nodeId > 0, `conf change: bad node id ${ch.nodeId}`);
    switch (ch.type) {
      case ConfChangeType.AddNode:
        makeVoter(c, ch.nodeId);
        break;
      case ConfChangeType.AddLearnerNode:
        makeLearner(c, ch.nodeId);
        break;
      case ConfChangeType.RemoveNode:
        remove(c, ch.nodeId);
        break;
      default:
        throw new ConfChangeError(`unknown change type ${String(ch.type)}`);
    }
  }
  if (c.incoming.size === 0) throw new ConfChangeError("removed all voters");
}

export function enterJoint(cur: ConfSets, autoLeave: boolean, changes: readonly ConfChangeSingle[]): ConfSets {
  if (isJoint(cur)) throw new ConfChangeError("config is already joint");
  if (cur.incoming.size === 0) throw new ConfChangeError("can't make a zero-voter config joint");
  const c = copySets(cur);
  c.outgoing = new Set(c.incoming);
  applyChanges(c, changes);
  c.autoLeave = autoLeave;
  checkConfSets(c);
  return c;
}

export function leaveJoint(cur: ConfSets): ConfSets {
  if (!isJoint(cur)) throw new ConfChangeError("can't leave a non-joint config");
  const c = copySets(cur);
  for (const id of c.learnersNext) c.learners.add(id);
  c.learnersNext.clear();
  c.outgoing.clear();
  c.autoLeave = false;
  checkConfSets(c);
  return c;
}

export function simple(cur: ConfSets, changes: readonly ConfChangeSingle[]): ConfSets {
  if (isJoint(cur)) throw new ConfChangeError("can't apply a simple config change in a joint config");
  const c = copySets(cur);
  applyChanges(c, changes);
  let diff = 0;
  for (const id of c.incoming) if (!cur.incoming.has(id)) diff++;
  for (const id of cur.incoming) if (!c.incoming.has(id)) diff++;
  if (diff > 1) throw new ConfChangeError("more than one voter changed without entering a joint config");
  checkConfSets(c);
  return c;
}

/** How a ConfChange is carried out (etcd ConfChangeV2.EnterJoint / LeaveJoint). */
export function confChangeKind(cc: ConfChange): { kind: "leave" } | { kind: "joint"; autoLeave: boolean } | { kind: "simple" } {
  if (cc.changes.length === 0) return { kind: "leave" };
  if (cc.transition !== ConfChangeTransition.Auto || cc.changes.length > 1) {
    return { kind: "joint", autoLeave: cc.transition !== ConfChangeTransition.JointExplicit };
  }
  return { kind: "simple" };
}

/** The configuration after cc; throws ConfChangeError when cc does not apply to cur. */
export function applyConfChangeToSets(cur: ConfSets, cc: ConfChange): ConfSets {
  const k = confChangeKind(cc);
  if (k.kind === "leave") return leaveJoint(cur);
  if (k.kind === "joint") return enterJoint(cur, k.autoLeave, cc.changes);
  return simple(cur, cc.changes);
}
