/** The simulator's building blocks: the event queue's order and each step-wise checker firing. */
import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../src/raft/memory-storage.js";
import { type Entry, EntryType, MessageType } from "../../src/raft/types.js";
import { newMessage } from "../../src/raft/util.js";
import { SafetyChecker, SimViolation } from "./checkers.js";
import { EventQueue } from "./event-queue.js";
import { SimNetwork } from "./network.js";
import { createPrng } from "../../src/util/prng.js";

const entry = (index: number, term: number, text = ""): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: new TextEncoder().encode(text),
});

function violationOf(run: () => void): string {
  try {
    run();
  } catch (error) {
    if (error instanceof SimViolation) return error.kind;
    throw error;
  }
  return "none";
}

describe("EventQueue", () => {
  it("orders by time, then by scheduling order", () => {
    const queue = new EventQueue(100);
    const seen: string[] = [];
    queue.push(5, () => seen.push("b"));
    queue.push(1, () => seen.push("a"));
    queue.push(5, () => seen.push("c"));
    queue.push(3, () => seen.push("x"));
    for (let e = queue.pop(); e !== undefined; e = queue.pop()) e.run();
    expect(seen).toEqual(["a", "x", "b", "c"]);
  });

  it("is bounded", () => {
    const queue = new EventQueue(2);
    queue.push(1, () => {});
    queue.push(1, () => {});
    expect(() => queue.push(1, () => {})).toThrow(/full/);
  });
});

describe("SimNetwork", () => {
  it("drops across cuts, one way and both ways, and heals", () => {
    const net = new SimNetwork(createPrng(1), { delayMinMs: 1, delayMaxMs: 2, dropRate: 0, duplicateRate: 0, spikeRate: 0, spikeMaxMs: 0 });
    expect(net.plan(1, 2)).toHaveLength(1);
    net.cut(1, 2);
    expect(net.plan(1, 2)).toHaveLength(0);
    expect(net.plan(2, 1)).toHaveLength(1);
    net.partition([[1], [2, 3]]);
    expect(net.plan(3, 1)).toHaveLength(0);
    expect(net.plan(2, 3)).toHaveLength(1);
    net.healNode(1);
    expect(net.plan(3, 1)).toHaveLength(1);
    net.isolate(3, [1, 2, 3]);
    expect(net.plan(2, 3)).toHaveLength(0);
    net.heal();
    expect(net.plan(2, 3)).toHaveLength(1);
  });

  it("refuses a message whose from is not the sending node, like PeerTransport.send", () => {
    const net = new SimNetwork(createPrng(1), { delayMinMs: 1, delayMaxMs: 2, dropRate: 0, duplicateRate: 0, spikeRate: 0, spikeMaxMs: 0 });
    expect(() => net.checkSender(2, newMessage(MessageType.ReadIndex, 1, 2, 0))).not.toThrow();
    // A follower relaying node 3's ReadIndex to its leader unchanged.
    expect(() => net.checkSender(2, newMessage(MessageType.ReadIndex, 1, 3, 0))).toThrow(/message.from 3 is not the sending node 2/);
    expect(() => net.checkSender(2, newMessage(MessageType.Heartbeat, 2, 2, 5))).toThrow(/sent a message to itself/);
  });
});

describe("SafetyChecker", () => {
  it("election safety: two leaders in one term", () => {
    const checker = new SafetyChecker();
    expect(checker.observeLeader(1, 2)).toBe(true);
    expect(checker.observeLeader(1, 2)).toBe(false);
    expect(checker.observeLeader(2, 3)).toBe(true);
    expect(violationOf(() => checker.observeLeader(3, 3))).toBe("election-safety");
  });

  it("lease exclusivity: a lease of an older term after a newer leader", () => {
    const checker = new SafetyChecker();
    checker.observeLeader(1, 2);
    checker.observeLease(1, 2);
    checker.observeLeader(2, 3);
    expect(violationOf(() => checker.observeLease(1, 2))).toBe("lease-exclusivity");
  });

  it("log matching: same index and term, different entry or different predecessor", () => {
    const checker = new SafetyChecker();
    const storage = new MemoryStorage();
    checker.observeAppend(1, [entry(1, 1, "a"), entry(2, 2, "b")], storage);
    expect(violationOf(() => checker.observeAppend(2, [entry(2, 2, "other")], new MemoryStorage()))).toBe("log-matching");
    const other = new MemoryStorage();
    other.append([entry(1, 2, "z")]);
    expect(violationOf(() => checker.observeAppend(3, [entry(2, 2, "b")], other))).toBe("log-matching");
    checker.observeAppend(4, [entry(1, 1, "a"), entry(2, 2, "b"), entry(3, 2, "c")], new MemoryStorage());
  });

  it("state machine safety and committed overwrite", () => {
    const checker = new SafetyChecker();
    checker.observeApply(1, entry(1, 1, "a"), 11, 1);
    checker.observeApply(2, entry(1, 1, "a"), 11, 1);
    expect(violationOf(() => checker.observeApply(3, entry(1, 2, "x"), 99, 2))).toBe("state-machine-safety");
    expect(violationOf(() => checker.observeApply(3, entry(1, 1, "a"), 12, 2))).toBe("state-machine-safety");
    expect(violationOf(() => checker.observeRestore(3, 1, 1, 12))).toBe("state-machine-safety");
    const holder = new MemoryStorage();
    holder.append([entry(1, 1, "a")]);
    // A stale leader writing elsewhere is fine; replacing the committed entry is not.
    checker.observeAppend(5, [entry(1, 3, "stale")], new MemoryStorage());
    expect(violationOf(() => checker.observeAppend(6, [entry(1, 3, "stale")], holder))).toBe("committed-overwrite");
  });

  it("leader completeness: a new leader missing an entry committed in an earlier term", () => {
    const checker = new SafetyChecker();
    checker.observeApply(1, entry(1, 1, "a"), 1, 1);
    checker.observeApply(1, entry(2, 2, "b"), 2, 2);
    const complete = new MemoryStorage();
    complete.append([entry(1, 1, "a"), entry(2, 2, "b")]);
    checker.checkLeaderCompleteness(2, 3, complete);
    const short = new MemoryStorage();
    short.append([entry(1, 1, "a")]);
    expect(violationOf(() => checker.checkLeaderCompleteness(3, 3, short))).toBe("leader-completeness");
    const wrong = new MemoryStorage();
    wrong.append([entry(1, 1, "a"), entry(2, 1, "q")]);
    expect(violationOf(() => checker.checkLeaderCompleteness(3, 3, wrong))).toBe("leader-completeness");
    // Committed in term 2 (as far as anyone knows): a leader of term 2 itself is not bound by it.
    checker.checkLeaderCompleteness(3, 2, short);
  });
});
