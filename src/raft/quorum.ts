/**
 * Quorum arithmetic (etcd quorum package): majority and joint configurations (thesis 4.3: in a
 * joint configuration, agreement needs separate majorities of both the old and the new voters).
 * Learners never appear here: they never vote and never count toward a quorum.
 */
import { assert } from "../util/assert.js";
import type { NodeId } from "./types.js";

export enum VoteResult {
  Pending = 0,
  Lost = 1,
  Won = 2,
}

export class MajorityConfig {
  /** Sorted, unique. */
  readonly ids: readonly NodeId[];
  private readonly scratch: number[];

  constructor(ids: Iterable<NodeId>) {
    this.ids = [...new Set(ids)].sort((a, b) => a - b);
    this.scratch = new Array<number>(this.ids.length).fill(0);
  }

  get size(): number {
    return this.ids.length;
  }

  has(id: NodeId): boolean {
    return this.ids.includes(id);
  }

  /**
   * The largest value that a majority has reached (etcd CommittedIndex), given each voter's value
   * (missing voters count as 0). An empty config returns +Infinity so that it never constrains a
   * joint config's minimum.
   */
  quorumValue(valueOf: (id: NodeId) => number): number {
    const n = this.ids.length;
    if (n === 0) return Number.POSITIVE_INFINITY;
    const s = this.scratch;
    // Insertion sort, ascending: configs are small and this allocates nothing.
    for (let i = 0; i < n; i++) {
      const v = valueOf(this.ids[i]!);
      let j = i;
      while (j > 0 && s[j - 1]! > v) {
        s[j] = s[j - 1]!;
        j--;
      }
      s[j] = v;
    }
    // The value at position n - (n/2 + 1) is held by at least n/2 + 1 voters.
    return s[n - (Math.floor(n / 2) + 1)]!;
  }

  voteResult(voteOf: (id: NodeId) => boolean | undefined): VoteResult {
    const n = this.ids.length;
    if (n === 0) return VoteResult.Won;
    let yes = 0;
    let missing = 0;
    for (const id of this.ids) {
      const v = voteOf(id);
      if (v === undefined) missing++;
      else if (v) yes++;
    }
    const q = Math.floor(n / 2) + 1;
    if (yes >= q) return VoteResult.Won;
    if (yes + missing >= q) return VoteResult.Pending;
    return VoteResult.Lost;
  }
}

export class JointConfig {
  constructor(
    readonly incoming: MajorityConfig,
    readonly outgoing: MajorityConfig,
  ) {}

  isJoint(): boolean {
    return this.outgoing.size > 0;
  }

  /** Union of incoming and outgoing voters, sorted. */
  voterIds(): NodeId[] {
    if (this.outgoing.size === 0) return this.incoming.ids.slice();
    return [...new Set([...this.incoming.ids, ...this.outgoing.ids])].sort((a, b) => a - b);
  }

  isVoter(id: NodeId): boolean {
    return this.incoming.has(id) || this.outgoing.has(id);
  }

  quorumValue(valueOf: (id: NodeId) => number): number {
    const v = Math.min(this.incoming.quorumValue(valueOf), this.outgoing.quorumValue(valueOf));
    assert(v !== Number.POSITIVE_INFINITY, "joint config without voters");
    return v;
  }

  voteResult(voteOf: (id: NodeId) => boolean | undefined): VoteResult {
    const a = this.incoming.voteResult(voteOf);
    const b = this.outgoing.voteResult(voteOf);
    if (a === b) return a;
    if (a === VoteResult.Lost || b === VoteResult.Lost) return VoteResult.Lost;
    return VoteResult.Pending;
  }
}
