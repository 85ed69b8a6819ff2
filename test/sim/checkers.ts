/**
 * Safety checkers, run by the simulator after every event (the step-wise ones) and at the end
 * of a run (exactly-once). Each one is a property from the Raft paper, Figure 3, or from tally's
 * design card, checked on what the nodes actually did:
 *
 *   election safety        at most one leader per term                          (paper 5.2)
 *   log matching           same (index, term) => same entry and same previous term, hence the
 *                          same prefix, in every log ever written                (paper 5.3)
 *   no committed overwrite no node replaces an entry some node applied (committed) with another
 *   leader completeness    a new leader of term t holds every entry known committed in a term < t
 *                                                                                (paper 5.4)
 *   state machine safety   every replica applies the same entry at each index, and reaches the
 *                          same state (hash chain), including through snapshots  (paper 5.4.3)
 *   lease exclusivity      no leader's lease is valid once a leader of a higher term was elected
 *                          (thesis 6.4.1; the design card: "no new leader can exist while a
 *                          lease is valid")
 *   exactly once           checked at the end against the applied sequence (see checkExactlyOnce)
 *
 * A violation throws SimViolation; the simulator prints the seed and the trace tail.
 */
import { type Entry, type LogIndex, type LogStorage, type NodeId, type Term } from "../../src/raft/types.js";
import { entryFingerprint } from "./counter-state-machine.js";

export type ViolationKind =
  | "election-safety"
  | "log-matching"
  | "committed-overwrite"
  | "leader-completeness"
  | "state-machine-safety"
  | "lease-exclusivity"
  | "exactly-once"
  | "linearizability"
  | "liveness"
  | "exception";

export class SimViolation extends Error {
  override name = "SimViolation";
  constructor(
    readonly kind: ViolationKind,
    message: string,
    /** For violations found after the fact: the virtual time span worth showing from the trace. */
    readonly focusMs?: [number, number],
  ) {
    super(`${kind}: ${message}`);
  }
}

interface SeenEntry {
  fingerprint: number;
  /** Term of the entry before it in the log that carried it; -1 when that log had it compacted. */
  prevTerm: number;
  node: NodeId;
}

export interface AppliedRecord {
  term: Term;
  fingerprint: number;
  /** The applier's state-machine hash chain after this entry. */
  hash: number;
  node: NodeId;
  entry: Entry;
}

// (index, term) packed in one number: terms stay far below 2^20 in any simulation.
const TERM_LIMIT = 1 << 20;
const entryKey = (index: LogIndex, term: Term): number => index * TERM_LIMIT + term;

export class SafetyChecker {
  private readonly leaderOfTerm = new Map<Term, NodeId>();
  private highestLeaderTerm = 0;
  private readonly seenEntries = new Map<number, SeenEntry>();
  /** The canonical applied sequence: applied[index], filled by whichever replica applied it first. */
  readonly applied: (AppliedRecord | undefined)[] = [];
  /** Highest index applied by a replica whose term was u at the time: committed in a term <= u. */
  private readonly appliedIndexByTerm = new Map<Term, LogIndex>();
  checks = 0;

  /** `node` is leader in `term` right now. Returns true the first time this (node, term) is seen. */
  observeLeader(node: NodeId, term: Term): boolean {
    this.checks++;
    const existing = this.leaderOfTerm.get(term);
    if (existing === undefined) {
      this.leaderOfTerm.set(term, node);
      if (term > this.highestLeaderTerm) this.highestLeaderTerm = term;
      return true;
    }
    if (existing !== node) {
      throw new SimViolation("election-safety", `nodes ${existing} and ${node} are both leaders of term ${term}`);
    }
    return false;
  }

  /** `node`, leader of `term`, holds a valid lease right now. */
  observeLease(node: NodeId, term: Term): void {
    this.checks++;
    if (this.highestLeaderTerm > term) {
      throw new SimViolation(
        "lease-exclusivity",
        `node ${node} holds a valid lease for term ${term}, but node ${this.leaderOfTerm.get(this.highestLeaderTerm)} ` +
          `was elected leader of term ${this.highestLeaderTerm}`,
      );
    }
  }

  /**
   * `node` is about to append `entries` to `storage` (not yet appended). Checks log matching
   * against every entry any node ever wrote, and that no applied (committed) entry is replaced.
   */
  observeAppend(node: NodeId, entries: Entry[], storage: LogStorage): void {
    this.checks++;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      let prevTerm = -1;
      if (i > 0) {
        prevTerm = entries[i - 1]!.term;
      } else if (entry.index - 1 >= storage.firstIndex() - 1 && entry.index - 1 <= storage.lastIndex()) {
        prevTerm = storage.term(entry.index - 1);
      }
      const fingerprint = entryFingerprint(entry);
      // A stale leader may append at an index that is committed elsewhere (it is truncated later),
      // but a node that holds a committed entry must never replace it (paper 5.3, 5.4).
      const committed = this.applied[entry.index];
      if (
        committed !== undefined &&
        committed.term !== entry.term &&
        entry.index >= storage.firstIndex() &&
        entry.index <= storage.lastIndex() &&
        storage.term(entry.index) === committed.term
      ) {
        throw new SimViolation(
          "committed-overwrite",
          `node ${node} replaces committed entry ${entry.index} (term ${committed.term}, applied by node ` +
            `${committed.node}) with one of term ${entry.term}`,
        );
      }
      const key = entryKey(entry.index, entry.term);
      const seen = this.seenEntries.get(key);
      if (seen === undefined) {
        this.seenEntries.set(key, { fingerprint, prevTerm, node });
        continue;
      }
      if (seen.fingerprint !== fingerprint) {
        throw new SimViolation(
          "log-matching",
          `entry ${entry.index} term ${entry.term} differs between node ${seen.node} and node ${node}`,
        );
      }
      if (seen.prevTerm >= 0 && prevTerm >= 0 && seen.prevTerm !== prevTerm) {
        throw new SimViolation(
          "log-matching",
          `entry ${entry.index} term ${entry.term} follows term ${seen.prevTerm} on node ${seen.node} ` +
            `but term ${prevTerm} on node ${node}`,
        );
      }
    }
  }

  /**
   * Called when the log of `node`, leader of `term`, is fully in `storage` for the first time
   * (its first Ready as leader). Paper 5.4: it must hold every entry committed in earlier terms.
   */
  checkLeaderCompleteness(node: NodeId, term: Term, storage: LogStorage): void {
    this.checks++;
    let required = 0;
    for (const [appliedTerm, index] of this.appliedIndexByTerm) {
      if (appliedTerm < term && index > required) required = index;
    }
    if (required === 0) return;
    const committed = this.applied[required]!;
    if (storage.lastIndex() < required) {
      throw new SimViolation(
        "leader-completeness",
        `node ${node} became leader of term ${term} with last index ${storage.lastIndex()}, ` +
          `missing committed entry ${required} (term ${committed.term})`,
      );
    }
    if (required >= storage.firstIndex() - 1) {
      const term2 = storage.term(required);
      if (term2 !== committed.term) {
        throw new SimViolation(
          "leader-completeness",
          `node ${node} became leader of term ${term} holding entry ${required} of term ${term2}, ` +
            `but the committed entry there has term ${committed.term}`,
        );
      }
    }
  }

  /** `node` (currently in `nodeTerm`) applied `entry`, reaching state hash `hashAfter`. */
  observeApply(node: NodeId, entry: Entry, hashAfter: number, nodeTerm: Term): void {
    this.checks++;
    const fingerprint = entryFingerprint(entry);
    const existing = this.applied[entry.index];
    if (existing === undefined) {
      this.applied[entry.index] = { term: entry.term, fingerprint, hash: hashAfter, node, entry };
    } else if (existing.term !== entry.term || existing.fingerprint !== fingerprint) {
      throw new SimViolation(
        "state-machine-safety",
        `node ${node} applied entry ${entry.index} term ${entry.term}, but node ${existing.node} applied ` +
          `entry ${entry.index} term ${existing.term}`,
      );
    } else if (existing.hash !== hashAfter) {
      throw new SimViolation(
        "state-machine-safety",
        `node ${node} and node ${existing.node} applied the same entry ${entry.index} but their states differ`,
      );
    }
    const previous = this.appliedIndexByTerm.get(nodeTerm) ?? 0;
    if (entry.index > previous) this.appliedIndexByTerm.set(nodeTerm, entry.index);
  }

  /** `node` restored its state machine from a snapshot at (index, term) with state hash `hash`. */
  observeRestore(node: NodeId, index: LogIndex, term: Term, hash: number): void {
    this.checks++;
    const existing = this.applied[index];
    if (existing === undefined) return; // the bootstrap snapshot: nothing applied there
    if (existing.term !== term || existing.hash !== hash) {
      throw new SimViolation(
        "state-machine-safety",
        `node ${node} restored a snapshot at ${index} (term ${term}) whose state differs from what ` +
          `node ${existing.node} applied there (term ${existing.term})`,
      );
    }
  }

  leaderCount(): number {
    return this.leaderOfTerm.size;
  }

  highestTerm(): Term {
    return this.highestLeaderTerm;
  }

  appliedLength(): LogIndex {
    return this.applied.length - 1;
  }
}
