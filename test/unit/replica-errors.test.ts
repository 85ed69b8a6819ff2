/**
 * The error contract at the replica: when leadership moves, a write that never entered the log is
 * answered NOT_LEADER (safe to resend), and a write that was proposed is AMBIGUOUS (it may still
 * commit under the next leader: retry with the same seq). Answering NOT_LEADER for a proposed
 * write made contract-following clients double count (a chaos run saw 7-32 per run).
 */
import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../src/raft/memory-storage.js";
import { RawNode } from "../../src/raft/raw-node.js";
import { MessageType, Role } from "../../src/raft/types.js";
import { newMessage } from "../../src/raft/util.js";
import { GroupReplica, encodeShardEntry, type PendingCommand, type ShardReplica } from "../../src/server/shard-replica.js";
import type { Command, CommandResult } from "../../src/shard/commands.js";
import { CounterStateMachine } from "../../src/shard/state-machine.js";
import { AmbiguousError, NotLeaderError } from "../../src/util/errors.js";
import { makeConfig } from "./raft-harness.js";

const shardOptions = { sessionTimeoutMs: 60_000, maxSessions: 100, maxRetainedResultsPerSession: 16 };

/** A replica of shard 1 on node 1 of {1, 2, 3} that has won an election. */
function leaderReplica(): ShardReplica {
  const storage = new MemoryStorage();
  RawNode.bootstrap(storage, [1, 2, 3]);
  const confState = { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  const replica = new GroupReplica(
    1,
    { epoch: 1, slotStart: 0, slotEnd: 16384 },
    storage,
    makeConfig(1, storage, 1),
    new CounterStateMachine(shardOptions),
    confState,
    { maxPendingProposals: 100, maxEntryBytes: 1 << 20 },
    shardOptions,
    encodeShardEntry,
  ) as ShardReplica;
  replica.raw.campaign();
  const term = replica.raw.term;
  for (const voter of [2, 3]) replica.raw.step({ ...newMessage(MessageType.VoteResp, 1, voter, term), reject: false });
  expect(replica.raw.term).toBe(term);
  replica.role = Role.Leader;
  replica.leader = 1;
  return replica;
}

function pending(seq: number, outcome: Map<number, Error | "ok">): PendingCommand<Command, CommandResult> {
  const command: Command = {
    type: "mutate",
    clientId: 7,
    seq,
    firstUnackedSeq: 1,
    ops: [{ kind: "add", key: new TextEncoder().encode(`k${seq}`), delta: 1n }],
  };
  return {
    command,
    bytes: 64,
    deadlineMs: Number.MAX_SAFE_INTEGER,
    resolve: () => outcome.set(seq, "ok"),
    reject: (error) => outcome.set(seq, error),
  };
}

describe("answers when leadership moves", () => {
  for (const planted of [false, true]) {
    it(
      planted
        ? "the planted bug (old behaviour) answers proposed writes NOT_LEADER"
        : "proposed writes are AMBIGUOUS; writes still queued are NOT_LEADER",
      () => {
        const replica = leaderReplica();
        const outcome = new Map<number, Error | "ok">();
        replica.enqueue(pending(1, outcome));
        replica.enqueue(pending(2, outcome));
        replica.proposeQueued(1_000, () => undefined);
        expect(replica.pendingProposals).toBe(2);
        replica.enqueue(pending(3, outcome)); // queued for the next entry, never proposed
        // A higher term arrives: node 2 won an election.
        replica.raw.step({ ...newMessage(MessageType.Heartbeat, 1, 2, replica.raw.term + 1) });
        replica.role = Role.Follower;
        replica.leader = 2;
        replica.failInflight(
          replica.notLeaderError(() => "127.0.0.1:7002"),
          planted,
        );
        for (const seq of [1, 2]) {
          const error = outcome.get(seq);
          if (planted) {
            expect(error).toBeInstanceOf(NotLeaderError);
          } else {
            expect(error, `seq ${seq}`).toBeInstanceOf(AmbiguousError);
            expect((error as Error).message).toContain("retry with the same seq");
          }
        }
        expect(outcome.get(3)).toBeInstanceOf(NotLeaderError);
        expect((outcome.get(3) as NotLeaderError).leaderId).toBe("2");
        expect(replica.pendingProposals).toBe(0);
      },
    );
  }
});

describe("a write that misses its deadline inside a shared entry", () => {
  it("is answered AMBIGUOUS, and the entry's other writes still get their own results when it commits", () => {
    const replica = leaderReplica();
    const outcome = new Map<number, Error | "ok">();
    const values = new Map<number, bigint>();
    // Request-id writes (no session needed): each adds to its own key.
    const write = (n: number, delta: bigint, deadlineMs: number): PendingCommand<Command, CommandResult> => ({
      command: { type: "write", requestId: `r${n}`, ops: [{ kind: "add", key: new TextEncoder().encode(`k${n}`), delta }] },
      bytes: 64,
      deadlineMs,
      resolve: (result) => {
        outcome.set(n, "ok");
        if (result.ok && result.type === "mutate") values.set(n, result.results[0]!.value);
      },
      reject: (error) => outcome.set(n, error),
    });
    const early = write(1, 5n, 100);
    const late = write(2, 7n, Number.MAX_SAFE_INTEGER);
    replica.enqueue(early);
    replica.enqueue(late);
    replica.proposeQueued(1_000, () => undefined);
    // One entry holds both writes; the first one's deadline passes before it commits.
    replica.expire(150);
    expect(outcome.get(1)).toBeInstanceOf(AmbiguousError);
    expect(outcome.has(2)).toBe(false);
    // Persist, then a follower acknowledges: the entry commits and is applied.
    const appended = replica.raw.ready();
    replica.storage.append(appended.entries);
    replica.raw.advance();
    replica.raw.step({ ...newMessage(MessageType.AppResp, 1, 2, replica.raw.term), index: replica.raw.lastIndex });
    const committed = replica.raw.ready();
    expect(committed.committedEntries.length).toBeGreaterThan(0);
    for (const entry of committed.committedEntries) replica.applyNormal(entry);
    replica.raw.advance();
    replica.completeApplied();
    expect(outcome.get(1)).toBeInstanceOf(AmbiguousError); // answered once, not again
    expect(outcome.get(2)).toBe("ok");
    expect(values.get(2)).toBe(7n); // its own result: key k2, added once
    expect(replica.pendingProposals).toBe(0);
  });
});
