/**
 * Randomized safety check of the core (a miniature of the seeded simulator in test/sim): random
 * ticks, drops, reordering, partitions, restarts, proposals, reads and transfers, with the safety
 * properties of the Raft paper (Figure 3) checked after every step:
 *   Election Safety, Log Matching (on committed prefixes), State Machine Safety, Leader
 *   Completeness (every committed entry is in every later leader's log), lease exclusivity.
 * Deterministic: a seed reproduces a run.
 */
import { createPrng, type Prng } from "../../src/util/prng.js";
import { type Entry, EntryType, type Message, type RaftTestKnobs, Role } from "../../src/raft/index.js";
import { Cluster, enc } from "./raft-harness.js";

export interface FuzzOptions {
  preVote: boolean;
  checkQuorum: boolean;
  lease: boolean;
  /** RaftConfig.commitUpdatesOnTick (tally's groups run with it). */
  commitUpdatesOnTick?: boolean;
  testKnobs?: RaftTestKnobs;
}

/** How often a lease was observed valid (so a lease check that never ran is visible). */
export const fuzzStats = { leaseValidSteps: 0 };

interface Committed {
  term: number;
  data: string;
  /** Highest term of any node when the entry was first seen applied: it was committed by then. */
  seenAtTerm: number;
}

export function checkSafety(c: Cluster, leadersByTerm: Map<number, number>, committed: Map<number, Committed>): void {
  const maxTerm = Math.max(...[...c.nodes.values()].map((n) => n.node.status().term));
  for (const n of c.nodes.values()) {
    const st = n.node.status();
    // Election Safety: at most one leader per term.
    if (st.role === Role.Leader) {
      const prev = leadersByTerm.get(st.term);
      if (prev !== undefined && prev !== n.id) throw new Error(`two leaders in term ${st.term}: ${prev} and ${n.id}`);
      leadersByTerm.set(st.term, n.id);
    }
    // State Machine Safety: every node applies the same entry at each index.
    for (const e of n.applied) {
      const seen = committed.get(e.index);
      const mine: Committed = { term: e.term, data: new TextDecoder().decode(e.data), seenAtTerm: maxTerm };
      if (seen === undefined) committed.set(e.index, mine);
      else if (seen.term !== mine.term || seen.data !== mine.data) {
        throw new Error(`node ${n.id} applied ${JSON.stringify(mine)} at ${e.index}, another applied ${JSON.stringify(seen)}`);
      }
    }
  }
  // Leader Completeness: a leader of a later term than the commit holds the entry.
  for (const n of c.nodes.values()) {
    const st = n.node.status();
    if (st.role !== Role.Leader || !n.up) continue;
    for (const [index, e] of committed) {
      if (st.term <= e.seenAtTerm) continue;
      if (index < n.storage.firstIndex()) continue;
      if (index > n.storage.lastIndex()) {
        // The leader's newest entries may still be unpersisted; committed ones never are missing.
        throw new Error(`leader ${n.id} (term ${st.term}) lacks committed index ${index}`);
      }
      if (n.storage.term(index) !== e.term) throw new Error(`leader ${n.id} has a different entry at committed ${index}`);
    }
  }
  // Lease exclusivity: a valid lease means no other node leads in a higher term.
  const leaseHolders = [...c.nodes.values()].filter((n) => n.up && n.node.leaseValid());
  if (leaseHolders.length > 0) fuzzStats.leaseValidSteps++;
  for (const h of leaseHolders) {
    const t = h.node.status().term;
    for (const n of c.nodes.values()) {
      const st = n.node.status();
      if (n.up && st.role === Role.Leader && st.term > t) {
        throw new Error(`node ${h.id} holds a lease in term ${t} while ${n.id} leads term ${st.term}`);
      }
    }
  }
}

export function runFuzz(seed: number, steps: number, options: FuzzOptions, trace?: (line: string) => void): number {
  const prng: Prng = createPrng(seed);
  const ids = [1, 2, 3, 4, 5];
  const c = new Cluster(
    ids,
    {
      preVote: options.preVote,
      checkQuorum: options.checkQuorum,
      leaseDriftTicks: options.lease ? 2 : 0,
      commitUpdatesOnTick: options.commitUpdatesOnTick === true,
      maxSizePerMsg: 64,
      maxInflightMessages: 4,
      maxInflightBytes: 256,
      maxUncommittedEntriesBytes: 4096,
      debug: trace,
      testKnobs: options.testKnobs,
    },
    seed,
  );
  const leadersByTerm = new Map<number, number>();
  const committed = new Map<number, Committed>();
  let proposals = 0;
  // Reordering: messages held back for a few steps.
  let held: Message[] = [];
  c.filter = (m) => {
    if (prng.chance(0.05)) return false; // drop
    if (prng.chance(0.05)) {
      held.push(m);
      return false;
    }
    return true;
  };
  for (let step = 0; step < steps; step++) {
    const r = prng.nextInt(100);
    const id = ids[prng.nextInt(ids.length)]!;
    const n = c.get(id);
    trace?.(`--- step ${step}: r=${r} node ${id}`);
    if (r < 45) {
      if (n.up) n.node.tick();
    } else if (r < 65) {
      if (n.up) {
        try {
          n.node.propose(enc(`s${seed}-p${proposals++}`));
        } catch {
          // Refusals are expected (not leader, transfer, full).
        }
      }
    } else if (r < 70) {
      if (n.up) {
        try {
          n.node.readIndex(enc(`r${step}`));
        } catch {
          // no leader / full
        }
      }
    } else if (r < 72) {
      c.isolate(id);
    } else if (r < 75) {
      c.cutLink(id, ids[prng.nextInt(ids.length)]!);
    } else if (r < 78) {
      c.heal();
    } else if (r < 80) {
      if (n.up && n.node.status().role === Role.Leader) n.node.transferLeader(ids[prng.nextInt(ids.length)]!);
    } else if (r < 82) {
      // Crash: unpersisted state is lost (MemoryStorage holds exactly what was persisted).
      n.up = false;
    } else if (r < 86) {
      if (!n.up) {
        n.restart();
        n.up = true;
      }
    } else {
      // Deliver a round, release held messages in shuffled order.
      const release = held;
      held = [];
      for (let i = release.length - 1; i > 0; i--) {
        const j = prng.nextInt(i + 1);
        [release[i], release[j]] = [release[j]!, release[i]!];
      }
      c.queue.push(...release);
    }
    for (const node of c.nodes.values()) c.process(node.id);
    c.deliver();
    for (const node of c.nodes.values()) c.process(node.id);
    checkSafety(c, leadersByTerm, committed);
  }
  // Liveness sanity: heal, restart everyone, and the cluster commits a final entry.
  c.heal();
  c.filter = () => true;
  for (const n of c.nodes.values()) {
    if (!n.up) {
      n.restart();
      n.up = true;
    }
  }
  for (let i = 0; i < 200 && c.leader() === 0; i++) c.tickAll(1);
  c.tickAll(30);
  const leader = c.leader();
  if (leader === 0) throw new Error("no leader after healing");
  c.propose(leader, "final");
  c.stabilize();
  c.tickAll(5);
  checkSafety(c, leadersByTerm, committed);
  for (const n of c.nodes.values()) {
    const last: Entry | undefined = n.applied.filter((e) => e.type === EntryType.Normal && e.data.length > 0).at(-1);
    const got = last && new TextDecoder().decode(last.data);
    if (got !== "final") throw new Error(`node ${n.id} did not apply the final entry (last: ${got})`);
  }
  return committed.size;
}
