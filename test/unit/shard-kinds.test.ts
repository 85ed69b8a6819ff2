/**
 * Counter kinds wired into the shard state machine (issue 8): windowed counters, rate limits,
 * unique counts, TTL, top-K and aggregates. Exactly once, atomic with other ops, one kind per key,
 * bad input changes nothing, carried by exported records (load), snapshots and shard images.
 */
import { describe, expect, it } from "vitest";
import { decodeEntryShape, encodeEntry, type CounterOp } from "../../src/shard/commands.js";
import { CounterStateMachine, encodeShardImage, EXPIRED_PER_ENTRY_MAX } from "../../src/shard/state-machine.js";
import { HyperLogLog } from "../../src/kinds/hll.js";
import { ByteWriter } from "../../src/shard/binary.js";
import { encodeOutcome } from "../../src/shard/sessions.js";
import { ChangeLog } from "../../src/shard/change-log.js";
import { add, defaultOptions, expectFailure, expectOk, key, reset, ShardDriver } from "./shard-harness.js";

const T0 = 1_700_000_000_000;

const windowAdd = (k: string, delta: bigint, eventTimeMs?: number, ttlMs?: number): CounterOp => {
  const op: CounterOp = { kind: "window", key: key(k), delta };
  if (eventTimeMs !== undefined) op.eventTimeMs = eventTimeMs;
  if (ttlMs !== undefined) op.ttlMs = ttlMs;
  return op;
};
const acquire = (k: string, n: number, limit: number, windowMs: number): CounterOp => ({
  kind: "acquire",
  key: key(k),
  n,
  limit,
  windowMs,
});
const unique = (k: string, items: string[], ttlMs?: number): CounterOp =>
  ttlMs === undefined
    ? { kind: "unique", key: key(k), items: items.map(key) }
    : { kind: "unique", key: key(k), items: items.map(key), ttlMs };

/** The machine's state as records (exportRecords), as a range split or backup restore passes them to load(). */
class Persisted {
  counters = new Map<string, [Uint8Array, { value: bigint; version: number }]>();
  sessions = new Map<number, Uint8Array>();
  kinds = new Map<string, [Uint8Array, Uint8Array]>();

  absorb(machine: CounterStateMachine): void {
    const records = machine.exportRecords();
    this.counters = new Map([...records.counters].map(([k, record]) => [Buffer.from(k).toString("hex"), [k, record]]));
    this.sessions = new Map(records.sessions);
    this.kinds = new Map([...records.kinds].map(([k, record]) => [Buffer.from(k).toString("hex"), [k, record]]));
  }

  load(machine: CounterStateMachine): CounterStateMachine {
    return CounterStateMachine.load(
      defaultOptions,
      machine.appliedIndex,
      machine.clockMs,
      this.counters.values(),
      this.sessions.entries(),
      this.kinds.values(),
    );
  }
}

describe("windowed counters in the state machine", () => {
  it("adds at the entry's leader time by default, or at the given event time; range and at read them", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    const [first] = expectOk(driver.mutate(client, 1, [windowAdd("w", 5n)], 1, T0 + 1_000));
    expect(first!.eventTimeMs).toBe(T0 + 1_000);
    expect(first!.value).toBe(5n);
    expectOk(driver.mutate(client, 2, [windowAdd("w", 7n, T0 + 500)], 2, T0 + 2_000));
    expectOk(driver.mutate(client, 3, [windowAdd("w", 1n)], 3, T0 + 2_000));
    const machine = driver.machine;
    expect(machine.windowAt(key("w"), T0 + 1_000).sum).toBe(5n);
    expect(machine.windowAt(key("w"), T0 + 500).sum).toBe(7n);
    const range = machine.windowRange(key("w"), T0, T0 + 3_000, 1_000, "sum");
    expect(range.points.map((point) => point.value)).toEqual([7n, 5n, 1n]);
    expect(range.version).toBe(driver.index);
    const total = machine.windowRange(key("w"), T0, T0 + 3_000, 3_000, "sum");
    expect(total.points[0]!.value).toBe(13n);
  });

  it("a retried windowed add returns the retained result and adds nothing", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    const first = expectOk(driver.mutate(client, 1, [windowAdd("w", 5n)], 1, T0 + 10));
    const retry = driver.mutate(client, 1, [windowAdd("w", 5n)], 1, T0 + 20);
    expect(retry.ok && retry.type === "mutate" && retry.duplicate).toBe(true);
    expect(expectOk(retry)).toEqual(first);
    expect(driver.machine.windowAt(key("w"), T0 + 10).sum).toBe(5n);
  });

  it("one kind per key: a windowed op on a counter, or a counter op on a windowed key, fails and changes nothing", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    expectOk(driver.mutate(client, 1, [add("c", 3n), windowAdd("w", 2n)], 1, T0));
    const before = driver.machine.snapshot();
    const a = expectFailure(driver.mutate(client, 2, [windowAdd("c", 1n)], 2, T0), "FAILED_PRECONDITION");
    expect(a.message).toContain("holds a counter");
    expectFailure(driver.mutate(client, 3, [add("w", 1n)], 3, T0), "FAILED_PRECONDITION");
    expectFailure(driver.mutate(client, 4, [acquire("w", 1, 5, 1_000)], 4, T0), "FAILED_PRECONDITION");
    // The failed mutates moved the applied index and the session, nothing else.
    const after = CounterStateMachine.restore(driver.machine.snapshot(), defaultOptions);
    expect(after.get(key("c"))!.value).toBe(3n);
    expect(after.windowAt(key("w"), T0).sum).toBe(2n);
    expect(() => driver.machine.windowAt(key("c"), T0)).toThrow(/holds a counter/);
    expect(driver.machine.get(key("w"))).toBeUndefined();
    expect(before.length).toBeGreaterThan(0);
    // reset deletes the windowed key; then the key may become a plain counter.
    expectOk(driver.mutate(client, 5, [reset("w"), add("w", 4n)], 5, T0));
    expect(driver.machine.get(key("w"))!.value).toBe(4n);
  });

  it("an event outside the lateness window is INVALID_ARGUMENT and, inside a batch, undoes the batch", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    expectOk(driver.mutate(client, 1, [windowAdd("w", 1n)], 1, T0));
    const failed = expectFailure(
      driver.mutate(client, 2, [add("c", 1n), windowAdd("w", 9n), windowAdd("w", 1n, T0 - 3_600_000)], 2, T0),
      "INVALID_ARGUMENT",
    );
    expect(failed.opIndex).toBe(2);
    expect(driver.machine.get(key("c"))).toBeUndefined();
    expect(driver.machine.windowAt(key("w"), T0).sum).toBe(1n);
  });
});

describe("rate limits in the state machine", () => {
  it("grants up to the limit in the window, then denies with the exact retryAfterMs", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    const granted = expectOk(driver.mutate(client, 1, [acquire("r", 3, 5, 1_000)], 1, T0))[0]!;
    expect(granted).toMatchObject({ allowed: true, value: 2n, retryAfterMs: 0, version: driver.index });
    expect(expectOk(driver.mutate(client, 2, [acquire("r", 2, 5, 1_000)], 2, T0 + 100))[0]).toMatchObject({ allowed: true, value: 0n });
    const denied = expectOk(driver.mutate(client, 3, [acquire("r", 1, 5, 1_000)], 3, T0 + 200))[0]!;
    expect(denied).toMatchObject({ allowed: false, value: 0n, retryAfterMs: 800 });
    // A denial changes nothing: the version stays the last grant's.
    expect(denied.version).toBe(driver.index - 1);
    expect(expectOk(driver.mutate(client, 4, [acquire("r", 3, 5, 1_000)], 4, T0 + 1_000))[0]).toMatchObject({ allowed: true, value: 0n });
  });

  it("a retried tryAcquire returns the retained outcome and never acquires twice", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    const first = expectOk(driver.mutate(client, 1, [acquire("r", 4, 5, 60_000)], 1, T0));
    for (let i = 0; i < 3; i++) {
      const retry = driver.mutate(client, 1, [acquire("r", 4, 5, 60_000)], 1, T0 + 10 + i);
      expect(expectOk(retry)).toEqual(first);
    }
    // Only 1 left: had a retry acquired again, this would be denied at 5 of 5 used... and 4 would fit nowhere.
    expect(expectOk(driver.mutate(client, 2, [acquire("r", 1, 5, 60_000)], 2, T0 + 20))[0]).toMatchObject({ allowed: true, value: 0n });
    expect(expectOk(driver.mutate(client, 3, [acquire("r", 1, 5, 60_000)], 3, T0 + 30))[0]).toMatchObject({ allowed: false });
  });

  it("bad limits are INVALID_ARGUMENT before the log (n > limit, limit 0, window too long)", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    for (const op of [
      acquire("r", 6, 5, 1_000),
      acquire("r", 1, 0, 1_000),
      acquire("r", 1, 5, 0),
      acquire("r", 1, 5, 32 * 24 * 3_600_000),
    ]) {
      expect(() =>
        encodeEntry({ timestampMs: T0, commands: [{ type: "mutate", clientId: client, seq: 1, firstUnackedSeq: 1, ops: [op] }] }),
      ).toThrow(/ops\[0\] \(acquire\)/);
    }
    expect(driver.machine.counterCount()).toBe(0);
  });
});

describe("unique counts in the state machine", () => {
  it("a failed batch puts every unique count it touched back as it was (registers, version, TTL), sparse or dense", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    const many = Array.from({ length: 6_000 }, (_, i) => `d${i}`);
    expectOk(driver.mutate(client, 1, [unique("s", ["a", "b"], 60_000), unique("d", many)], 1, T0));
    const before = driver.machine.snapshot();
    const sketches = () => [driver.machine.uniqueSketch([key("s")]).encode(), driver.machine.uniqueSketch([key("d")]).encode()];
    const [sparse, dense] = sketches();
    expect(HyperLogLog.decode(dense!).isSparse).toBe(false);
    // Several ops on the same keys, then one that fails: a unique op on a plain counter.
    expectOk(driver.mutate(client, 2, [add("plain", 1n)], 2, T0));
    const failed = expectFailure(
      driver.mutate(
        client,
        3,
        [unique("s", ["c", "d", "e"], 1_000), unique("d", ["x1", "x2", "x3"]), unique("s", ["f"]), unique("plain", ["z"])],
        3,
        T0 + 10,
      ),
      "FAILED_PRECONDITION",
    );
    expect(failed.opIndex).toBe(3);
    expect(sketches()).toEqual([sparse, dense]);
    expect(driver.machine.uniqueSketch([key("s")]).count()).toBe(2);
    // Every kind record (structure bytes, version, expiry) is what it was before the batch.
    const kindRecords = (machine: CounterStateMachine) =>
      [...machine.exportRecords().kinds].map(([k, r]) => Buffer.concat([k, r]).toString("hex"));
    expect(kindRecords(driver.machine)).toEqual(kindRecords(CounterStateMachine.restore(before, defaultOptions)));
    // And the key still expires at the first TTL, not the failed op's.
    expect(driver.machine.uniqueSketch([key("s")], T0 + 59_000).count()).toBe(2);
    expect(driver.machine.uniqueSketch([key("s")], T0 + 60_000).count()).toBe(0);
  });

  it("counts distinct items; the union over keys is the merged sketch", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    const items = Array.from({ length: 1_000 }, (_, i) => `user-${i}`);
    expectOk(driver.mutate(client, 1, [unique("u1", items.slice(0, 600))], 1, T0));
    expectOk(driver.mutate(client, 2, [unique("u2", items.slice(400))], 2, T0));
    const again = expectOk(driver.mutate(client, 3, [unique("u1", ["user-1", "user-2"])], 3, T0))[0]!;
    expect(again.value).toBe(0n); // no register changed
    const one = driver.machine.uniqueSketch([key("u1")]).count();
    const union = driver.machine.uniqueSketch([key("u1"), key("u2")]).count();
    expect(Math.abs(one - 600) / 600).toBeLessThan(0.03);
    expect(Math.abs(union - 1_000) / 1_000).toBeLessThan(0.03);
    const merged = HyperLogLog.decode(driver.machine.uniqueSketch([key("u1")]).encode());
    merged.merge(driver.machine.uniqueSketch([key("u2")]));
    expect(merged.count()).toBe(union);
  });
});

describe("TTL", () => {
  it("a counter with ttlMs expires at leader time + ttl: reads hide it at once, the next entry deletes it", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    expectOk(
      driver.mutate(client, 1, [{ kind: "add", key: key("t"), delta: 5n, ttlMs: 1_000 }, windowAdd("tw", 1n, undefined, 1_000)], 1, T0),
    );
    expectOk(driver.mutate(client, 2, [add("keep", 1n)], 2, T0 + 999));
    expect(driver.value("t")!.value).toBe(5n);
    const persisted = new Persisted();
    persisted.absorb(driver.machine);
    expect(persisted.kinds.size).toBe(2);
    driver.apply([{ type: "keepalive", clientId: client }], T0 + 1_000);
    expect(driver.value("t")).toBeUndefined();
    expect(driver.machine.windowAt(key("tw"), T0 + 1_000).sum).toBe(0n);
    persisted.absorb(driver.machine);
    expect(persisted.counters.has(Buffer.from("t").toString("hex"))).toBe(false);
    expect(persisted.kinds.size).toBe(0);
    expect(driver.value("keep")!.value).toBe(1n);
    // add without ttl on a key with one keeps the expiry; set with ttl moves it.
    expectOk(driver.mutate(client, 3, [{ kind: "set", key: key("s"), value: 1n, ttlMs: 500 }], 3, T0 + 2_000));
    expectOk(driver.mutate(client, 4, [add("s", 1n)], 4, T0 + 2_100));
    expectOk(driver.mutate(client, 5, [{ kind: "set", key: key("s"), value: 9n, ttlMs: 1_000 }], 5, T0 + 2_400));
    driver.apply([{ type: "keepalive", clientId: client }], T0 + 3_000);
    expect(driver.value("s")!.value).toBe(9n);
    driver.apply([{ type: "keepalive", clientId: client }], T0 + 3_400);
    expect(driver.value("s")).toBeUndefined();
  });

  it(`deletes at most ${EXPIRED_PER_ENTRY_MAX} due keys per entry, and due keys read as absent meanwhile`, () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    const count = EXPIRED_PER_ENTRY_MAX + 200;
    const ops: CounterOp[] = Array.from({ length: count }, (_, i) => ({ kind: "add", key: key(`k${i}`), delta: 1n, ttlMs: 10 }));
    expectOk(driver.mutate(client, 1, ops, 1, T0));
    const before = driver.index;
    driver.apply([{ type: "keepalive", clientId: client }], T0 + 10);
    const deleted = driver.machine.changesSince(before, () => true, 10_000)!.filter((change) => change.kind === "deleted");
    expect(deleted.length).toBe(EXPIRED_PER_ENTRY_MAX);
    expect(driver.machine.counterCount()).toBe(200);
    expect([...driver.machine.exportRecords().kinds].length).toBe(200);
    expect(driver.machine.aggregate(key("k")).count).toBe(0);
    driver.apply([{ type: "keepalive", clientId: client }], T0 + 11);
    expect(driver.machine.counterCount()).toBe(0);
  });

  it("a ttl of 0 or above the bound is INVALID_ARGUMENT", () => {
    expect(() =>
      encodeEntry({
        timestampMs: T0,
        commands: [
          { type: "mutate", clientId: 1000, seq: 1, firstUnackedSeq: 1, ops: [{ kind: "add", key: key("a"), delta: 1n, ttlMs: 0 }] },
        ],
      }),
    ).toThrow(/ttlMs/);
  });
});

describe("top-K and aggregates over a shard", () => {
  it("answer over plain counters with the prefix only", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    expectOk(driver.mutate(client, 1, [add("p:a", 5n), add("p:b", 9n), add("p:c", -2n), add("q:z", 100n), windowAdd("p:w", 50n)], 1, T0));
    expect(driver.machine.topK(key("p:"), 2).map((entry) => [Buffer.from(entry.key).toString(), entry.value])).toEqual([
      ["p:b", 9n],
      ["p:a", 5n],
    ]);
    const aggregate = driver.machine.aggregate(key("p:"));
    expect(aggregate).toMatchObject({ count: 3, sum: 12n, min: -2n, max: 9n });
    expect(aggregate.avg).toEqual({ quotient: 4n, remainder: 0n, divisor: 3n });
  });
});

describe("top-K and aggregates over windowed counters", () => {
  it("rank windowed counters with an add in the range by their sum over it; plain counters stay out", () => {
    const driver = new ShardDriver();
    // Three writers at three leader times (an event may be at most latenessMs behind its entry).
    expectOk(driver.mutate(driver.register(T0 - 120_000), 1, [windowAdd("p:u", 3n)], 1, T0 - 120_000));
    expectOk(driver.mutate(driver.register(T0 - 70_000), 1, [windowAdd("p:v", 2n)], 1, T0 - 70_000));
    expectOk(
      driver.mutate(
        driver.register(T0),
        1,
        [add("p:plain", 1_000n), windowAdd("p:w", 50n), windowAdd("p:v", 7n, T0 - 5_000), windowAdd("q:x", 99n)],
        1,
        T0,
      ),
    );
    const window = { fromMs: T0 - 60_000, toMs: T0 + 1_000 };
    expect(driver.machine.topK(key("p:"), 5, 0, window).map((entry) => [Buffer.from(entry.key).toString(), entry.value])).toEqual([
      ["p:w", 50n],
      ["p:v", 7n],
    ]);
    expect(driver.machine.aggregate(key("p:"), 0, window)).toMatchObject({ count: 2, sum: 57n, min: 7n, max: 50n });
    expect(driver.machine.aggregate(key("p:"), 0, { fromMs: T0 - 180_000, toMs: T0 + 1_000 })).toMatchObject({ count: 3, sum: 62n });
    expect(driver.machine.aggregate(key("p:"))).toMatchObject({ count: 1, sum: 1_000n });
    // A range no tier holds is refused, not answered with zeros.
    expect(() => driver.machine.topK(key("p:"), 5, 0, { fromMs: T0 - 60_500, toMs: T0 + 500 })).toThrow(/no tier holds/);
  });
});

describe("persistence of the kinds", () => {
  function stream(seed: number, entries: number, driver: ShardDriver, client: number): void {
    let state = seed;
    const next = (n: number): number => {
      state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
      return state % n;
    };
    for (let i = 0; i < entries; i++) {
      const seq = i + 2;
      const k = `k${next(6)}`;
      const choice = next(5);
      const op: CounterOp =
        choice === 0
          ? windowAdd(`w${k}`, BigInt(next(10)), undefined, next(3) === 0 ? 5_000 : undefined)
          : choice === 1
            ? acquire(`r${k}`, 1 + next(3), 5, 2_000)
            : choice === 2
              ? unique(`u${k}`, [`i${next(50)}`, `i${next(50)}`])
              : choice === 3
                ? { kind: "add", key: key(`c${k}`), delta: 1n, ttlMs: 30_000 }
                : reset(`${"wruc"[next(4)]}${k}`);
      driver.mutate(client, seq, [op], seq, driver.timestampMs + next(700));
    }
  }

  it("snapshot, restore, load from records and a shard image give identical state and identical futures", async () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    const persisted = new Persisted();
    stream(7, 400, driver, client);
    persisted.absorb(driver.machine);
    const snapshot = driver.machine.snapshot();
    const restored = CounterStateMachine.restore(snapshot, defaultOptions);
    const loaded = persisted.load(driver.machine);
    const image = Buffer.concat(await encodeShardImage(driver.machine.captureImage(), () => Promise.resolve()));
    const imaged = CounterStateMachine.fromImage(image, defaultOptions);
    expect(restored.snapshot()).toEqual(snapshot);
    expect(loaded.snapshot()).toEqual(snapshot);
    expect(imaged.snapshot()).toEqual(snapshot);
    // The same future on each copy gives the same bytes (determinism).
    const copies = [driver, new ShardDriver(restored), new ShardDriver(loaded), new ShardDriver(imaged)];
    const startMs = driver.timestampMs;
    for (const copy of copies) {
      copy.timestampMs = startMs;
      stream(11, 200, copy, client);
    }
    for (const copy of copies.slice(1)) expect(copy.machine.snapshot()).toEqual(copies[0]!.machine.snapshot());
  });

  it("the stream creates every kind (so the property is not vacuous)", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    stream(7, 400, driver, client);
    const kinds = [...driver.machine.exportRecords().kinds].map(([, record]) => record[1]);
    expect(new Set(kinds)).toEqual(new Set([0, 1, 2, 3]));
  });

  it("restore still reads format 1 and 2 snapshots (sessions without owners or request digests)", () => {
    // The layout of formats 1 and 2 (state-machine.ts snapshot()), written by hand: one counter, one
    // session retaining seq 1's outcome; format 2 adds the (empty) kind count.
    const outcome = encodeOutcome({ ok: true, type: "mutate", results: [{ value: 7n, version: 3 }], duplicate: false });
    for (const format of [1, 2]) {
      const writer = new ByteWriter(256);
      writer.u32(0x544c5953);
      writer.u16(format);
      writer.u64(3); // appliedIndex
      writer.u64(T0); // clockMs
      writer.u32(1);
      writer.u16(1);
      writer.raw(key("a"));
      writer.i64(7n);
      writer.u64(3);
      writer.u32(1);
      writer.u64(2000); // clientId
      writer.u64(T0);
      writer.u64(3);
      writer.u32(0);
      writer.u64(1); // firstUnackedSeq
      writer.u32(1);
      writer.u64(1);
      writer.u32(outcome.length);
      writer.raw(outcome);
      if (format === 2) writer.u32(0);
      writer.crc32Trailer();
      const restored = CounterStateMachine.restore(writer.finish(), defaultOptions);
      expect(restored.get(key("a"))!.value).toBe(7n);
      // The session has no owner (a cluster without auth) and its retained outcome no digest: a
      // retry is answered as before; the next snapshot is the current format and restores alike.
      const driver = new ShardDriver(restored);
      driver.index = 3;
      driver.timestampMs = T0;
      expect(driver.mutate(2000, 1, [add("a", 5n)], 1)).toEqual({
        ok: true,
        type: "mutate",
        results: [{ value: 7n, version: 3 }],
        duplicate: true,
      });
      expect(CounterStateMachine.restore(restored.snapshot(), defaultOptions).snapshot()).toEqual(restored.snapshot());
    }
  });

  it("removeKindsWhere moves kinded keys to a new machine (range split)", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    expectOk(driver.mutate(client, 1, [windowAdd("a", 1n), windowAdd("b", 2n), unique("c", ["x"])], 1, T0));
    const moved = driver.machine.removeKindsWhere((k) => k[0]! >= "b".charCodeAt(0));
    expect(moved.map(([k]) => Buffer.from(k).toString())).toEqual(["b", "c"]);
    expect([...driver.machine.exportRecords().kinds].map(([k]) => Buffer.from(k).toString())).toEqual(["a"]);
    expect(driver.machine.kindOf(key("b"))).toBeUndefined();
    expect(driver.machine.kindOf(key("c"))).toBeUndefined();
    const child = CounterStateMachine.load(defaultOptions, driver.index, driver.machine.clockMs, [], [], moved);
    expect(child.windowAt(key("b"), T0).sum).toBe(2n);
    expect(driver.machine.windowAt(key("b"), T0).sum).toBe(0n);
  });

  it("retained kind outcomes survive a restart (sessions encode them)", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    const first = expectOk(driver.mutate(client, 1, [acquire("r", 2, 3, 10_000), windowAdd("w", 4n)], 1, T0));
    const persisted = new Persisted();
    persisted.absorb(driver.machine);
    const after = new ShardDriver(persisted.load(driver.machine));
    after.timestampMs = driver.timestampMs;
    const retry = after.mutate(client, 1, [acquire("r", 2, 3, 10_000), windowAdd("w", 4n)], 1, T0 + 5);
    expect(expectOk(retry)).toEqual(first);
    expect(after.machine.windowAt(key("w"), T0).sum).toBe(4n);
  });

  it("a damaged kind record is a CorruptionError on load", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    expectOk(driver.mutate(client, 1, [windowAdd("w", 1n)], 1, T0));
    const persisted = new Persisted();
    persisted.absorb(driver.machine);
    const [[k, record]] = [...persisted.kinds.values()] as [[Uint8Array, Uint8Array]];
    const damaged = record.slice();
    damaged[damaged.length - 6]! ^= 0x40;
    persisted.kinds.set("x", [k, damaged]);
    persisted.kinds.delete(Buffer.from(k).toString("hex"));
    expect(() => persisted.load(driver.machine)).toThrow(/kind record/);
  });
});

describe("wire form", () => {
  it("every new op round-trips through the entry encoding", () => {
    const ops: CounterOp[] = [
      windowAdd("w", -3n, T0, 60_000),
      windowAdd("w", 3n),
      acquire("r", 0, 10, 1_000),
      unique("u", ["a", "b"], 5),
      { kind: "add", key: key("a"), delta: 1n, ttlMs: 7 },
      { kind: "add", key: key("a"), delta: 1n, floor: 0n, ttlMs: 7 },
      { kind: "set", key: key("s"), value: 2n, ttlMs: 9 },
    ];
    const payload = { timestampMs: T0, commands: [{ type: "mutate" as const, clientId: 1000, seq: 1, firstUnackedSeq: 1, ops }] };
    expect(decodeEntryShape(encodeEntry(payload))).toEqual(payload);
  });
});

describe("change log (watch streams)", () => {
  it("records every change with its index, kinds and deletions included, and answers since an index", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    expectOk(driver.mutate(client, 1, [add("a", 1n), windowAdd("w", 2n)], 1, T0));
    const first = driver.index;
    expectOk(driver.mutate(client, 2, [add("a", 5n), { kind: "add", key: key("t"), delta: 1n, ttlMs: 10 }], 2, T0));
    expectOk(driver.mutate(client, 3, [reset("w"), reset("nothing")], 3, T0 + 5));
    driver.apply([{ type: "keepalive", clientId: client }], T0 + 20); // t expires
    const all = driver.machine.changesSince(0, () => true, 100)!;
    expect(all.map((change) => [Buffer.from(change.key).toString(), change.kind, change.value])).toEqual([
      ["a", "counter", 1n],
      ["w", "window", 2n],
      ["a", "counter", 6n],
      ["t", "counter", 1n],
      ["w", "deleted", 0n],
      ["t", "deleted", 0n],
    ]);
    const later = driver.machine.changesSince(first, (k) => k[0] === "a".charCodeAt(0), 100)!;
    expect(later.map((change) => change.value)).toEqual([6n]);
    // A failed mutate records nothing.
    expectFailure(driver.mutate(client, 4, [add("a", 1n), windowAdd("a", 1n)], 4, T0 + 30), "FAILED_PRECONDITION");
    expect(driver.machine.changesSince(driver.index - 1, () => true, 100)).toEqual([]);
  });

  it("a resume from before the retained changes is compacted (undefined); load and restore start a new log", () => {
    const driver = new ShardDriver();
    const client = driver.register(T0);
    expectOk(driver.mutate(client, 1, [add("a", 1n)], 1, T0));
    const restored = CounterStateMachine.restore(driver.machine.snapshot(), defaultOptions);
    expect(restored.changesSince(0, () => true, 10)).toBeUndefined();
    expect(restored.changesSince(restored.appliedIndex, () => true, 10)).toEqual([]);
  });
});

describe("ChangeLog ring", () => {
  it("drops the oldest changes beyond capacity and reports compaction by index", () => {
    const log = new ChangeLog(0, 4);
    for (let index = 1; index <= 6; index++)
      log.record({ index, key: key(`k${index}`), value: BigInt(index), version: index, kind: "counter" });
    expect(log.retainedAfter).toBe(2);
    expect(log.since(1, () => true, 10)).toBeUndefined();
    expect(log.since(2, () => true, 10)!.map((change) => change.index)).toEqual([3, 4, 5, 6]);
    expect(log.since(4, () => true, 10)!.map((change) => change.index)).toEqual([5, 6]);
    expect(log.since(2, () => true, 2)!.map((change) => change.index)).toEqual([3, 4]);
  });

  it("keeps every retained key's bytes intact when the key arena wraps, dropping only the changes it overwrites", () => {
    // Arena of 131,072 bytes: 40,000-byte keys fit three at a time, so the fourth wraps to 0.
    const log = new ChangeLog(0, 16);
    const big = (fill: number) => new Uint8Array(40_000).fill(fill);
    const reused = big(1);
    log.append(1, reused, 1n, 1, "counter");
    reused.fill(9); // the log copied the bytes
    log.append(2, big(2), 2n, 2, "window");
    log.append(3, big(3), 2n ** 70n, 3, "window"); // outside int64
    log.append(4, big(4), -5n, 4, "limit");
    // Key 4 overwrote key 1's bytes: change 1 is gone, the rest are whole.
    expect(log.retainedAfter).toBe(1);
    const changes = log.since(1, () => true, 10)!;
    expect(changes.map((change) => [change.index, change.key[0], change.key[39_999], change.value, change.kind])).toEqual([
      [2, 2, 2, 2n, "window"],
      [3, 3, 3, 2n ** 70n, "window"],
      [4, 4, 4, -5n, "limit"],
    ]);
    for (let i = 5; i < 40; i++) log.append(i, new Uint8Array([i]), BigInt(i), i, i % 2 === 0 ? "deleted" : "counter");
    const tail = log.since(0, () => true, 100) ?? log.since(log.retainedAfter, () => true, 100)!;
    expect(tail.length).toBe(16);
    expect(tail.map((change) => change.key[0])).toEqual(tail.map((change) => change.index));
    expect(
      tail.every((change) => change.value === BigInt(change.index) && change.kind === (change.index % 2 === 0 ? "deleted" : "counter")),
    ).toBe(true);
  });
});
