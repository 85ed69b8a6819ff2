/**
 * How the node keeps each event-loop turn short: the driver loop's apply budget follows the
 * measured apply cost (APPLY_MS_PER_ITERATION_TARGET), and background slices (checkpoints, table
 * growth, decodes) go one per turn over all shards (SlicePacer).
 */
import pino from "pino";
import { describe, expect, it } from "vitest";
import { EntryType, MessageType, type Entry, type Message, type Ready } from "../../src/raft/types.js";
import { entryBytes } from "../../src/raft/util.js";
import { APPLY_BYTES_PER_ITERATION_MAX, DriverLoop, INBOUND_APPEND_BYTES_PER_ITERATION } from "../../src/server/core/driver-loop.js";
import type { LogBatch, LoopGroup, LoopStats, RaftGroup } from "../../src/server/core/ports.js";
import { SlicePacer } from "../../src/server/core/system-clock.js";
import { copyInSlices, SLICE_BYTES_MIN, SLICE_TARGET_MS, SliceSizer, touchInSlices } from "../../src/shard/counter-table-slices.js";
import { followerGroup } from "../support/loop-group.js";

/** A Raft group whose committed entries are given up front: ready() hands them out, 16 KiB at most (or one), unless held. */
class ScriptedRaft implements RaftGroup {
  readonly term = 1;
  holdApply = false;
  private handedOut = 0;

  constructor(private readonly pending: Entry[]) {}

  /** Entry bytes of the messages stepped, summed (the test reads and resets it per iteration). */
  stepped = 0;
  steppedMessages = 0;

  tick(): void {}
  /** The index of every message stepped, in order. */
  readonly steppedIndexes: number[] = [];

  step(message: Message): void {
    this.steppedMessages++;
    this.steppedIndexes.push(message.index);
    for (const entry of message.entries) this.stepped += entry.data.byteLength;
  }
  hasReady(): boolean {
    return !this.holdApply && this.pending.length > 0;
  }
  ready(): Ready {
    const committedEntries: Entry[] = [];
    let bytes = 0;
    if (!this.holdApply) {
      while (this.pending.length > committedEntries.length) {
        const entry = this.pending[committedEntries.length]!;
        if (committedEntries.length > 0 && bytes + entryBytes(entry) > 16 * 1024) break;
        committedEntries.push(entry);
        bytes += entryBytes(entry);
      }
    }
    this.handedOut = committedEntries.length;
    return { entries: [], committedEntries, messages: [], readStates: [], mustSync: false };
  }
  advance(): void {
    this.pending.splice(0, this.handedOut);
    this.handedOut = 0;
  }
  persisted(): void {}
}

function group(shardId: number, entries: number, entryBytesEach: number): LoopGroup {
  const pending: Entry[] = [];
  for (let i = 1; i <= entries; i++) pending.push({ term: 1, index: i, type: EntryType.Normal, data: new Uint8Array(entryBytesEach) });
  return followerGroup(shardId, new ScriptedRaft(pending), entries);
}

interface Run {
  /** Committed bytes applied in each iteration, in order. */
  perIteration: number[];
  /** Entry bytes of inbound messages stepped in each iteration that stepped any, in order. */
  steppedPerIteration: number[];
  stats: LoopStats;
}

/** Drives a loop over `groups` whose apply costs `msPerByte` of (virtual) time until every entry is applied. */
async function drive(groups: LoopGroup[], msPerByte: number, inbound: Array<[number, Message]> = []): Promise<Run> {
  let nowMs = 0;
  const perIteration: number[] = [];
  const steppedPerIteration: number[] = [];
  let current = 0;
  const scripted = groups.map((g) => g.raw as ScriptedRaft);
  const takeStepped = (): void => {
    const stepped = scripted.reduce((sum, raw) => sum + raw.stepped, 0);
    for (const raw of scripted) raw.stepped = 0;
    if (stepped > 0) steppedPerIteration.push(stepped);
  };
  const stats: LoopStats = { iterations: 0, entriesWritten: 0, syncs: 0, leaderChanges: 0, appliedBytesPerIterationMax: 0 };
  const batch = (): LogBatch => ({ size: 0, appendEntries: () => {}, truncateAfter: () => {}, setHardState: () => {} });
  const loop = new DriverLoop<LoopGroup, LogBatch>(
    {
      store: { batch, write: async () => {} },
      network: { send: () => {}, flush: () => {} },
      clock: {
        monotonicMs: () => nowMs,
        wallClockMs: () => nowMs,
        setTimer: (ms, callback) => {
          const timer = setTimeout(callback, 0);
          return () => clearTimeout(timer);
        },
        yieldNow: () => {
          perIteration.push(current);
          current = 0;
          takeStepped();
          return new Promise((resolve) => setImmediate(resolve));
        },
      },
      groups: { changeGroups: async () => {}, all: () => groups, get: (id) => groups.find((g) => g.shardId === id) },
      machines: {
        installSnapshot: () => {},
        apply: (_group, entries) => {
          for (const entry of entries) {
            current += entryBytes(entry);
            nowMs += entryBytes(entry) * msPerByte;
          }
        },
      },
    },
    { nodeId: 1, tickMs: 1_000_000, logger: pino({ level: "silent" }), stats, leaderAddress: () => undefined },
  );
  loop.receive(inbound);
  loop.start();
  const deadline = Date.now() + 10_000;
  const total = inbound.length;
  const stepped = (): number => scripted.reduce((sum, raw) => sum + raw.steppedMessages, 0);
  while ((groups.some((g) => g.raw.hasReady()) || stepped() < total) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 1));
  await loop.stop();
  if (current > 0) perIteration.push(current);
  takeStepped();
  expect(stepped(), "every inbound message stepped before the deadline").toBe(total);
  expect(
    groups.some((g) => g.raw.hasReady()),
    "every entry applied before the deadline",
  ).toBe(false);
  return { perIteration: perIteration.filter((bytes) => bytes > 0), steppedPerIteration, stats };
}

describe("driver loop apply budget", () => {
  it("applies up to the byte bound per iteration when applying is cheap", async () => {
    const groups = Array.from({ length: 8 }, (_, i) => group(i + 1, 40, 4000));
    const run = await drive(groups, 0);
    expect(Math.max(...run.perIteration)).toBeGreaterThan(APPLY_BYTES_PER_ITERATION_MAX / 2);
    expect(run.stats.appliedBytesPerIterationMax).toBeLessThanOrEqual(APPLY_BYTES_PER_ITERATION_MAX + 16 * 1024 + 64);
  });

  it("shrinks the budget to the time target when applying is dear, never below one Ready", async () => {
    // 0.001 ms per byte: 128 KiB would take 131 ms; the target allows ~4 KB, less than one 16 KB entry (one Ready).
    const msPerByte = 0.001;
    const groups = Array.from({ length: 8 }, (_, i) => group(i + 1, 20, 16_000));
    const run = await drive(groups, msPerByte);
    const oneEntry = entryBytes({ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(16_000) });
    expect(run.perIteration.reduce((a, b) => a + b, 0)).toBe(8 * 20 * oneEntry);
    // The first iteration runs on the starting budget; after it, every iteration applies one Ready (one entry) and goes on.
    const later = run.perIteration.slice(1);
    expect(later.length).toBeGreaterThan(140);
    for (const bytes of later) expect(bytes).toBe(oneEntry);
  });
});

describe("driver loop inbound bound", () => {
  it("steps at most INBOUND_APPEND_BYTES_PER_ITERATION of appended entries per iteration (one message at least), in order", async () => {
    const groups = [group(1, 0, 0), group(2, 0, 0)];
    const app = (groupId: number, index: number): [number, Message] => [
      groupId,
      {
        type: MessageType.App,
        from: 2,
        to: 1,
        term: 1,
        logTerm: 1,
        index,
        commit: 0,
        entries: [{ term: 1, index: index + 1, type: EntryType.Normal, data: new Uint8Array(768 * 1024) }],
      } as unknown as Message,
    ];
    const inbound = Array.from({ length: 12 }, (_, i) => app((i % 2) + 1, i));
    const run = await drive(groups, 0, inbound);
    expect(run.steppedPerIteration.reduce((a, b) => a + b, 0)).toBe(12 * 768 * 1024);
    expect(run.steppedPerIteration.length).toBeGreaterThanOrEqual(4);
    for (const bytes of run.steppedPerIteration) expect(bytes).toBeLessThan(INBOUND_APPEND_BYTES_PER_ITERATION + 768 * 1024);
    expect((groups[0]!.raw as ScriptedRaft).steppedIndexes).toEqual([0, 2, 4, 6, 8, 10]);
    expect((groups[1]!.raw as ScriptedRaft).steppedIndexes).toEqual([1, 3, 5, 7, 9, 11]);
  });
});

describe("SlicePacer", () => {
  it("releases one slice per event-loop turn over all jobs, in turn", async () => {
    const pacer = new SlicePacer();
    let turn = 0;
    let ticking = true;
    const tick = (): void => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const seen: Array<[number, number]> = [];
    const job = async (id: number): Promise<void> => {
      for (let slice = 0; slice < 5; slice++) {
        await pacer.pause();
        seen.push([id, turn]);
      }
    };
    await Promise.all([job(1), job(2), job(3)]);
    ticking = false;
    expect(seen).toHaveLength(15);
    const turns = seen.map(([, at]) => at);
    expect(new Set(turns).size, "no two slices in one turn").toBe(15);
    expect(seen.slice(0, 3).map(([id]) => id)).toEqual([1, 2, 3]);
    expect(pacer.waitingCount).toBe(0);
  });
});

describe("sliced copies", () => {
  it("do nothing in the caller's turn: every slice waits for its pause first", async () => {
    const never = (): Promise<void> => new Promise(() => {});
    const target = new Uint8Array(8);
    void copyInSlices(new Uint8Array(8).fill(1), target, never, 4);
    const touched = new Int32Array(8).fill(7);
    void touchInSlices(touched, never, 16);
    expect([...target]).toEqual(new Array(8).fill(0));
    expect([...touched]).toEqual(new Array(8).fill(7));
    let pauses = 0;
    await copyInSlices(new Uint8Array(8).fill(1), target, async () => void pauses++, 4);
    expect([...target]).toEqual(new Array(8).fill(1));
    expect(pauses).toBe(2);
  });
});

describe("slices sized by their time", () => {
  it("shrink to the time target on slow memory, never below the minimum, and grow back (at most doubling) up to the maximum", () => {
    const max = 4 * 1024 * 1024;
    const sizer = new SliceSizer(max);
    expect(sizer.next()).toBe(max / 4);
    // Slow memory: 1 MiB took 10 ms, so the next aims at SLICE_TARGET_MS.
    sizer.took(max / 4, 10);
    expect(sizer.next()).toBe(Math.floor(((max / 4) * SLICE_TARGET_MS) / 10));
    for (let i = 0; i < 20; i++) sizer.took(sizer.next(), 1000);
    expect(sizer.next()).toBe(SLICE_BYTES_MIN);
    // A short last slice says nothing.
    sizer.took(10, 1000);
    expect(sizer.next()).toBe(SLICE_BYTES_MIN);
    // Fast again: doubling per slice, capped at max.
    const sizes: number[] = [];
    for (let i = 0; i < 10; i++) {
      sizer.took(sizer.next(), 0.01);
      sizes.push(sizer.next());
    }
    expect(sizes.slice(0, 3)).toEqual([SLICE_BYTES_MIN * 2, SLICE_BYTES_MIN * 4, SLICE_BYTES_MIN * 8]);
    expect(sizes[sizes.length - 1]).toBe(max);
  });

  it("copy and touch in slices whose time stays near the target when each byte is dear", async () => {
    // A fake clock: every byte copied (or element touched) costs 1 us, so a 4 ms slice is 4,000.
    let clock = 0;
    const now = () => clock;
    const source = new Uint8Array(3 * 1024 * 1024).map((_, i) => i & 0xff);
    const target = new Uint8Array(source.length);
    const spans: number[] = [];
    let last = 0;
    const original = target.set.bind(target);
    target.set = (array: ArrayLike<number>, offset?: number) => {
      clock += array.length / 1000;
      spans.push(clock - last);
      last = clock;
      original(array, offset);
    };
    await copyInSlices(
      source,
      target,
      Object.assign(async () => {}, { now }),
      4 * 1024 * 1024,
    );
    expect(Buffer.from(target.buffer).equals(Buffer.from(source.buffer))).toBe(true);
    expect(spans[0]).toBeCloseTo((1024 * 1024) / 1000, 3); // the first slice: a quarter of the maximum
    for (const ms of spans.slice(2)) expect(ms).toBeLessThanOrEqual(SLICE_BYTES_MIN / 1000 + 0.001);
    const buffer = new Int32Array(1024 * 1024).fill(7);
    const fills: number[] = [];
    const fill = buffer.fill.bind(buffer);
    buffer.fill = (value: number, start?: number, end?: number) => {
      clock += (end! - start!) / 1000;
      fills.push(end! - start!);
      return fill(value, start, end);
    };
    await touchInSlices(
      buffer,
      Object.assign(async () => {}, { now }),
      4 * 1024 * 1024,
    );
    expect(buffer.every((v) => v === 0)).toBe(true);
    // Without a clock (the simulator's pause) every slice has the fixed maximum size: a seeded run stays the same run.
    const fixed: number[] = [];
    const plain = new Uint8Array(10 * 1024 * 1024);
    const plainSet = plain.set.bind(plain);
    plain.set = (array: ArrayLike<number>, offset?: number) => {
      fixed.push(array.length);
      plainSet(array, offset);
    };
    await copyInSlices(new Uint8Array(plain.length), plain, async () => {}, 4 * 1024 * 1024);
    expect(fixed).toEqual([4 * 1024 * 1024, 4 * 1024 * 1024, 2 * 1024 * 1024]);
    expect(fills[0]).toBe((1024 * 1024) / 4);
    expect(Math.max(...fills.slice(2))).toBeLessThanOrEqual(SLICE_BYTES_MIN / 4);
  });
});
