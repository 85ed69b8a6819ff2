/**
 * A restart restores a shard from its checkpoint and then replays the log above it, which may add
 * many keys. Restored exactly sized (plus 1/8), the table then had to grow its rows, arena and
 * index during the replay, each growth in slices with the shard's apply held: a restarted
 * cluster's first linearizable reads waited 1-2 s for them (bench/scale.ts at 10 M counters, 114
 * growths in one restart of 1 M counters). Now the restore leaves room in the rows and the arena for
 * the keys the log's bytes can add (newKeysBound: untouched memory until used), and a shard with
 * no checkpoint yet is presized for its whole log; the state is the same either way.
 */
import { describe, expect, it } from "vitest";
import type { Entry } from "../../src/raft/types.js";
import { EntryType } from "../../src/raft/types.js";
import { LOG_BYTES_PER_NEW_KEY, newKeysBound } from "../../src/server/core/groups.js";
import { encodeEntry } from "../../src/shard/commands.js";
import { CounterStateMachine, encodeShardImage, type ShardOptions } from "../../src/shard/state-machine.js";
import { encodePackedAdds } from "../../src/util/packed-adds.js";

const options: ShardOptions = { sessionTimeoutMs: 60_000, maxSessions: 16, maxRetainedResultsPerSession: 4 };
const pause = (): Promise<void> => Promise.resolve();
const encoder = new TextEncoder();

/** Entries that add 1 to keys [from, to), 1,000 per entry (as packed adds, what AddBatch proposes). */
function insertEntries(from: number, to: number): Uint8Array[] {
  const entries: Uint8Array[] = [];
  for (let start = from; start < to; start += 1000) {
    const adds = [];
    for (let i = start; i < Math.min(to, start + 1000); i++) adds.push({ key: encoder.encode(`key:${i}`), delta: BigInt(i) });
    const ops = adds.map((add) => ({ kind: "add" as const, ...add }));
    entries.push(
      encodeEntry({
        timestampMs: 1_000 + start,
        commands: [{ type: "write", requestId: `r${start}`, ops, packedAdds: encodePackedAdds(adds) }],
      }),
    );
  }
  return entries;
}

function applyAll(machine: CounterStateMachine, entries: Uint8Array[]): void {
  for (const data of entries) {
    const results = machine.applyEntry(machine.appliedIndex + 1, data);
    expect(results.every((result) => result.ok)).toBe(true);
  }
}

async function imageOf(machine: CounterStateMachine): Promise<Uint8Array> {
  return Buffer.concat(await encodeShardImage(machine.captureImage(), pause));
}

describe("a restore leaves room for the log it will replay", () => {
  // 100,000 keys loaded (rows and arena past the sizes growthDue watches), then 30,000 new ones
  // replayed: more than the 1/8 of room a load always leaves.
  const base = insertEntries(0, 100_000);
  const replay = insertEntries(100_000, 130_000);
  const bytesOf = (entries: Uint8Array[]): number => entries.reduce((sum, data) => sum + data.length, 0);

  /** Applies `entries` one by one; whether a growth was due after any of them. */
  const growthDuring = (machine: CounterStateMachine, entries: Uint8Array[]): boolean => {
    let due = false;
    for (const data of entries) {
      applyAll(machine, [data]);
      due ||= machine.growthDue();
    }
    return due;
  };

  it("with room for the keys the log's bytes bound, replaying them grows nothing, and the state is the one without", async () => {
    const original = new CounterStateMachine(options);
    applyAll(original, base);
    const bytes = await imageOf(original);
    const reserve = Math.floor(bytesOf(replay) / LOG_BYTES_PER_NEW_KEY);
    expect(reserve).toBeGreaterThanOrEqual(30_000); // the bound covers the keys the log adds

    const roomy = await CounterStateMachine.fromImageAsync(bytes, options, pause, undefined, reserve);
    const tight = CounterStateMachine.fromImage(bytes, options);
    for (const machine of [roomy, tight]) {
      expect(Buffer.from(machine.snapshot()).equals(Buffer.from(original.snapshot()))).toBe(true);
      expect(machine.growthDue()).toBe(false);
    }
    expect(growthDuring(tight, replay)).toBe(true); // the defect: the replay needed a growth
    expect(growthDuring(roomy, replay)).toBe(false);
    applyAll(original, replay);
    for (const machine of [roomy, tight]) expect(Buffer.from(machine.snapshot()).equals(Buffer.from(original.snapshot()))).toBe(true);
  });

  it("before its first checkpoint, a shard replays its whole log into a table presized for it", () => {
    const log = [...base, ...replay];
    const grows = (presize: boolean): boolean => {
      const machine = new CounterStateMachine(options);
      if (presize) machine.presize(Math.floor(bytesOf(log) / LOG_BYTES_PER_NEW_KEY), bytesOf(log));
      const due = growthDuring(machine, log);
      expect(machine.counterCount()).toBe(130_000);
      return due;
    };
    expect(grows(false)).toBe(true);
    expect(grows(true)).toBe(false);
  });

  it("newKeysBound counts only the entries above the checkpoint's index", () => {
    const entry = (index: number, bytes: number): Entry => ({ term: 1, index, type: EntryType.Normal, data: new Uint8Array(bytes) });
    const log = [entry(10, 1600), entry(11, 3200), entry(12, 1600), entry(13, 0)];
    expect(newKeysBound(log, 10)).toBe(4800 / LOG_BYTES_PER_NEW_KEY);
    expect(newKeysBound(log, 13)).toBe(0);
    expect(newKeysBound([], 0)).toBe(0);
  });
});
