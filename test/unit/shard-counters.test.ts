import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { encodeEntry, type CounterOp } from "../../src/shard/commands.js";
import { CounterStateMachine } from "../../src/shard/state-machine.js";
import { AssertionError } from "../../src/util/assert.js";
import { CorruptionError, InvalidArgumentError } from "../../src/util/errors.js";
import { createPrng } from "../../src/util/prng.js";
import { add, cas, defaultOptions, expectFailure, expectOk, INT64_MAX, INT64_MIN, key, reset, set, ShardDriver } from "./shard-harness.js";

function setup(): { driver: ShardDriver; client: number } {
  const driver = new ShardDriver();
  return { driver, client: driver.register() };
}

describe("counter ops", () => {
  it("add creates at 0, accumulates, and versions are the log index of the last change", () => {
    const { driver, client } = setup();
    expect(driver.value("a")).toBeUndefined();
    expect(expectOk(driver.mutate(client, 1, [add("a", 5n)]))).toEqual([{ value: 5n, version: 2 }]);
    expect(expectOk(driver.mutate(client, 2, [add("a", -8n)]))).toEqual([{ value: -3n, version: 3 }]);
    expect(driver.value("a")).toEqual({ value: -3n, version: 3 });
    driver.mutate(client, 3, [add("b", 1n)]);
    expect(driver.value("a")).toEqual({ value: -3n, version: 3 }); // other keys do not bump it
    expect(driver.machine.counterCount()).toBe(2);
  });

  it("set overwrites; reset deletes (reads as absent, op result value 0 version 0)", () => {
    const { driver, client } = setup();
    driver.mutate(client, 1, [set("a", 42n)]);
    expect(driver.value("a")).toEqual({ value: 42n, version: 2 });
    expect(expectOk(driver.mutate(client, 2, [reset("a")]))).toEqual([{ value: 0n, version: 0 }]);
    expect(driver.value("a")).toBeUndefined();
    expect(driver.machine.counterCount()).toBe(0);
    // Reset of a missing counter is a successful no-op.
    expect(expectOk(driver.mutate(client, 3, [reset("never")]))).toEqual([{ value: 0n, version: 0 }]);
    expect(driver.machine.counterCount()).toBe(0);
    // After reset the key starts over from 0.
    expect(expectOk(driver.mutate(client, 4, [add("a", 1n)]))).toEqual([{ value: 1n, version: 5 }]);
  });

  describe("int64 overflow is OUT_OF_RANGE and changes nothing", () => {
    it("upward at 2^63-1", () => {
      const { driver, client } = setup();
      expectOk(driver.mutate(client, 1, [set("k", INT64_MAX - 1n)]));
      expect(expectOk(driver.mutate(client, 2, [add("k", 1n)]))).toEqual([{ value: INT64_MAX, version: 3 }]);
      const failure = expectFailure(driver.mutate(client, 3, [add("k", 1n)]), "OUT_OF_RANGE");
      expect(failure.opIndex).toBe(0);
      expect(failure.message).toContain('"k"');
      expect(failure.message).toContain("9223372036854775808");
      expect(driver.value("k")).toEqual({ value: INT64_MAX, version: 3 });
      expectFailure(driver.mutate(client, 4, [add("k", INT64_MAX)]), "OUT_OF_RANGE");
      expect(driver.value("k")).toEqual({ value: INT64_MAX, version: 3 });
    });

    it("downward at -(2^63-1) and -2^63", () => {
      const { driver, client } = setup();
      expectOk(driver.mutate(client, 1, [set("k", -INT64_MAX)]));
      // -2^63 itself is a valid int64.
      expect(expectOk(driver.mutate(client, 2, [add("k", -1n)]))).toEqual([{ value: INT64_MIN, version: 3 }]);
      expectFailure(driver.mutate(client, 3, [add("k", -1n)]), "OUT_OF_RANGE");
      expect(driver.value("k")).toEqual({ value: INT64_MIN, version: 3 });
      // A fresh counter (0) can take either extreme delta exactly, but not past it.
      expect(expectOk(driver.mutate(client, 4, [add("z", INT64_MIN)]))[0]!.value).toBe(INT64_MIN);
      expectFailure(driver.mutate(client, 5, [add("y", INT64_MAX), add("y", 1n)]), "OUT_OF_RANGE");
      expect(driver.value("y")).toBeUndefined();
    });

    it("across the extremes: max + min = -1, exactly", () => {
      const { driver, client } = setup();
      expect(expectOk(driver.mutate(client, 1, [set("k", INT64_MAX), add("k", INT64_MIN)]))[1]!.value).toBe(-1n);
    });
  });

  describe("floor", () => {
    it("fails with FAILED_PRECONDITION below the floor and allows reaching it exactly", () => {
      const { driver, client } = setup();
      driver.mutate(client, 1, [set("stock", 3n)]);
      expect(expectOk(driver.mutate(client, 2, [add("stock", -3n, 0n)]))[0]!.value).toBe(0n);
      const failure = expectFailure(driver.mutate(client, 3, [add("stock", -1n, 0n)]), "FAILED_PRECONDITION");
      expect(failure.message).toMatch(/result -1 would be below the floor 0/);
      expect(driver.value("stock")).toEqual({ value: 0n, version: 3 });
    });

    it("applies to a missing counter as 0 and to negative floors", () => {
      const { driver, client } = setup();
      expectFailure(driver.mutate(client, 1, [add("new", -1n, 0n)]), "FAILED_PRECONDITION");
      expect(driver.value("new")).toBeUndefined();
      expect(expectOk(driver.mutate(client, 2, [add("new", -10n, -10n)]))[0]!.value).toBe(-10n);
      expectFailure(driver.mutate(client, 3, [add("new", -1n, -10n)]), "FAILED_PRECONDITION");
    });

    it("checks the result, not the delta: an increment still below the floor fails", () => {
      const { driver, client } = setup();
      driver.mutate(client, 1, [set("k", -5n)]);
      expectFailure(driver.mutate(client, 2, [add("k", 1n, 0n)]), "FAILED_PRECONDITION");
      expect(expectOk(driver.mutate(client, 3, [add("k", 5n, 0n)]))[0]!.value).toBe(0n);
    });
  });

  describe("compare-and-set", () => {
    it("succeeds on the current version and fails with VERSION_MISMATCH + currentVersion otherwise", () => {
      const { driver, client } = setup();
      driver.mutate(client, 1, [set("k", 1n)]); // version 2
      const failure = expectFailure(driver.mutate(client, 2, [cas("k", 1, 9n)]), "VERSION_MISMATCH");
      expect(failure.currentVersion).toBe(2);
      expect(failure.opIndex).toBe(0);
      expect(driver.value("k")).toEqual({ value: 1n, version: 2 });
      expect(expectOk(driver.mutate(client, 3, [cas("k", 2, 9n)]))).toEqual([{ value: 9n, version: 4 }]);
    });

    it("expectedVersion 0 means must-not-exist: creates once, then mismatches", () => {
      const { driver, client } = setup();
      expect(expectOk(driver.mutate(client, 1, [cas("lock", 0, 1n)]))).toEqual([{ value: 1n, version: 2 }]);
      expect(expectFailure(driver.mutate(client, 2, [cas("lock", 0, 2n)]), "VERSION_MISMATCH").currentVersion).toBe(2);
      // A missing counter reports currentVersion 0.
      expect(expectFailure(driver.mutate(client, 3, [cas("missing", 5, 2n)]), "VERSION_MISMATCH").currentVersion).toBe(0);
      expect(driver.value("missing")).toBeUndefined();
      // After reset the counter is gone, so version 0 matches again.
      driver.mutate(client, 4, [reset("lock")]);
      expectOk(driver.mutate(client, 5, [cas("lock", 0, 3n)]));
    });

    it("sees versions written earlier in the same mutate (the entry index)", () => {
      const { driver, client } = setup();
      const index = driver.index + 1;
      expect(expectOk(driver.mutate(client, 1, [add("k", 1n), cas("k", index, 7n)]))).toEqual([
        { value: 1n, version: index },
        { value: 7n, version: index },
      ]);
    });
  });

  describe("a mutate is atomic", () => {
    it("a batch with one bad op changes nothing, whatever the failing op's kind", () => {
      const { driver, client } = setup();
      driver.mutate(client, 1, [set("a", 1n), set("b", 2n), set("c", 3n)]);
      const before = driver.machine.snapshot();
      const bad = [
        [add("x", INT64_MAX), "OUT_OF_RANGE"], // x is 1 by then
        [add("c", 1n, 100n), "FAILED_PRECONDITION"],
        [cas("a", 2, 0n), "VERSION_MISMATCH"], // a was re-versioned by the add at op 0
      ] as const;
      let seq = 2;
      for (const [badOp, code] of bad) {
        const ops = [add("a", 10n), reset("b"), add("new-key", 5n), add("x", 1n), set("c", 30n), badOp, add("a", 1n)];
        const failure = expectFailure(driver.mutate(client, seq, ops, 1), code);
        expect(failure.opIndex).toBe(5);
        seq++;
      }
      expect(driver.value("a")).toEqual({ value: 1n, version: 2 });
      expect(driver.value("b")).toEqual({ value: 2n, version: 2 });
      expect(driver.value("c")).toEqual({ value: 3n, version: 2 });
      expect(driver.value("new-key")).toBeUndefined();
      expect(driver.value("x")).toBeUndefined();
      expect(driver.machine.counterCount()).toBe(3);
      // Same counters, versions, and no leftover transient keys: compare the counter section of a
      // snapshot taken before (only the session part may differ: it retained the failures).
      const after = CounterStateMachine.restore(driver.machine.snapshot(), defaultOptions);
      const restoredBefore = CounterStateMachine.restore(before, defaultOptions);
      for (const k of ["a", "b", "c", "new-key", "x"]) expect(after.get(key(k))).toEqual(restoredBefore.get(key(k)));
      expect(counterRecords(driver.machine)).toEqual(
        new Map([
          ["a", { value: 1n, version: 2 }],
          ["b", { value: 2n, version: 2 }],
          ["c", { value: 3n, version: 2 }],
        ]),
      );
    });

    it("later ops see earlier ones: reset then add, add then reset, repeated keys", () => {
      const { driver, client } = setup();
      driver.mutate(client, 1, [set("k", 100n)]);
      const index = driver.index + 1;
      expect(expectOk(driver.mutate(client, 2, [reset("k"), add("k", 1n), add("k", 1n), reset("j"), add("j", 2n), reset("j")]))).toEqual([
        { value: 0n, version: 0 },
        { value: 1n, version: index },
        { value: 2n, version: index },
        { value: 0n, version: 0 },
        { value: 2n, version: index },
        { value: 0n, version: 0 },
      ]);
      expect(driver.value("k")).toEqual({ value: 2n, version: index });
      expect(driver.value("j")).toBeUndefined();
      expect(driver.machine.counterCount()).toBe(1);
    });

    it("maxCounters fails creation deterministically with OVERLOADED, deletions in the same mutate count", () => {
      const driver = new ShardDriver(new CounterStateMachine({ ...defaultOptions, maxCounters: 2 }));
      const client = driver.register();
      expectOk(driver.mutate(client, 1, [add("a", 1n), add("b", 1n)]));
      const failure = expectFailure(driver.mutate(client, 2, [add("a", 1n), add("c", 1n)]), "OVERLOADED");
      expect(failure.opIndex).toBe(1);
      expect(driver.value("a")).toEqual({ value: 1n, version: 2 });
      expectOk(driver.mutate(client, 3, [reset("a"), add("c", 1n)]));
      expect(driver.machine.counterCount()).toBe(2);
    });
  });
});

describe("entries", () => {
  it("one result per command, commands apply in order within an entry", () => {
    const driver = new ShardDriver();
    const client = driver.register();
    const results = driver.apply([
      { type: "mutate", clientId: client, seq: 1, firstUnackedSeq: 1, ops: [add("k", 1n)] },
      { type: "keepalive", clientId: client },
      { type: "mutate", clientId: client, seq: 2, firstUnackedSeq: 1, ops: [cas("k", driver.index + 1, 5n)] },
      { type: "register" },
    ]);
    expect(results.map((r) => r.ok)).toEqual([true, true, true, true]);
    expect(driver.value("k")!.value).toBe(5n);
  });

  it("an empty entry (leader no-op) only advances appliedIndex; gaps in indexes are allowed", () => {
    const machine = new CounterStateMachine(defaultOptions);
    expect(machine.applyEntry(1, new Uint8Array(0))).toEqual([]);
    expect(machine.appliedIndex).toBe(1);
    expect(machine.clockMs).toBe(0);
    machine.applyEntry(5, encodeEntry({ timestampMs: 10, commands: [{ type: "register" }] }));
    expect(machine.appliedIndex).toBe(5);
  });

  it("asserts on an index that does not advance (a driver bug)", () => {
    const machine = new CounterStateMachine(defaultOptions);
    machine.applyEntry(3, new Uint8Array(0));
    expect(() => machine.applyEntry(3, new Uint8Array(0))).toThrow(AssertionError);
    expect(() => machine.applyEntry(2, new Uint8Array(0))).toThrow(AssertionError);
  });

  it("an undecodable entry throws CorruptionError and changes nothing, not even appliedIndex", () => {
    const driver = new ShardDriver();
    const client = driver.register();
    driver.mutate(client, 1, [add("k", 1n)]);
    const before = driver.machine.snapshot();
    expect(() => driver.machine.applyEntry(driver.index + 1, new Uint8Array([0x92, 0xff]))).toThrow(CorruptionError);
    const badTimestamp = new Packr({ useRecords: false }).pack([-1, []]);
    expect(() => driver.machine.applyEntry(driver.index + 1, badTimestamp)).toThrow(/bad timestamp/);
    expect(driver.machine.snapshot()).toEqual(before);
  });

  it("a committed command that breaks a bound gets INVALID_ARGUMENT; the rest of the entry applies", () => {
    const driver = new ShardDriver();
    const client = driver.register();
    // Built by hand: encodeEntry would refuse it, but a buggy or older leader might have logged it.
    const data = new Packr({ useRecords: false }).pack([
      driver.timestampMs,
      [
        [2, client, 1, 1, [[0, new Uint8Array(300), 1]]],
        [2, client, 2, 1, [[0, key("ok"), 1]]],
      ],
    ]);
    const results = driver.machine.applyEntry(++driver.index, data);
    expect(expectFailure(results[0], "INVALID_ARGUMENT").message).toMatch(/300 bytes; max 256/);
    expectOk(results[1]);
    expect(driver.value("ok")!.value).toBe(1n);
  });

  it("rejects bad options at construction", () => {
    expect(() => new CounterStateMachine({ ...defaultOptions, sessionTimeoutMs: 0 })).toThrow(InvalidArgumentError);
    expect(() => new CounterStateMachine({ ...defaultOptions, maxSessions: 1.5 })).toThrow(/maxSessions/);
    expect(() => new CounterStateMachine({ ...defaultOptions, maxCounters: 10 ** 12 })).toThrow(/maxCounters/);
  });
});

/** Every counter of the machine's state, by key text (exportRecords). */
function counterRecords(machine: CounterStateMachine): Map<string, { value: bigint; version: number }> {
  return new Map([...machine.exportRecords().counters].map(([k, v]) => [new TextDecoder().decode(k), v]));
}

/** The watch log's changes after `afterIndex`, as [index, key, kind, value, version]. */
function changesAfter(machine: CounterStateMachine, afterIndex: number): Array<[number, string, string, bigint, number]> {
  return machine
    .changesSince(afterIndex, () => true, 1_000)!
    .map((c) => [c.index, new TextDecoder().decode(c.key), c.kind, c.value, c.version]);
}

// Applying tracks no changes for storage (durability is the log plus shard images): what changed
// is checked on the state itself and on the watch log.
describe("changes reach the state and the watch log", () => {
  it("each changed counter holds its current state, deleted ones are gone", () => {
    const driver = new ShardDriver();
    const client = driver.register();
    const start = driver.index;
    driver.mutate(client, 1, [add("a", 1n), add("b", 1n)]);
    driver.mutate(client, 2, [add("a", 1n), reset("b"), reset("never")]);
    expect(counterRecords(driver.machine)).toEqual(new Map([["a", { value: 2n, version: 3 }]]));
    expect(changesAfter(driver.machine, start)).toEqual([
      [2, "a", "counter", 1n, 2],
      [2, "b", "counter", 1n, 2],
      [3, "a", "counter", 2n, 3],
      [3, "b", "deleted", 0n, 0],
    ]);
    expect(driver.machine.sessionCount()).toBe(1);
  });

  it("a delete then a re-create of the same key leaves the new counter", () => {
    const driver = new ShardDriver();
    const client = driver.register();
    driver.mutate(client, 1, [add("a", 1n)]);
    const start = driver.index;
    driver.mutate(client, 2, [reset("a")]);
    driver.mutate(client, 3, [add("a", 7n)]);
    expect(counterRecords(driver.machine)).toEqual(new Map([["a", { value: 7n, version: driver.index }]]));
    expect(changesAfter(driver.machine, start)).toEqual([
      [start + 1, "a", "deleted", 0n, 0],
      [start + 2, "a", "counter", 7n, start + 2],
    ]);
  });

  it("leaves no trace of a key created and deleted within one mutate, nor of failed mutates", () => {
    const driver = new ShardDriver();
    const client = driver.register();
    const start = driver.index;
    driver.mutate(client, 1, [add("tmp", 1n), reset("tmp")]);
    driver.mutate(client, 2, [add("x", 1n), add("y", INT64_MAX), add("y", 1n)]);
    expect(counterRecords(driver.machine)).toEqual(new Map());
    expect(driver.machine.counterCount()).toBe(0);
    expect(changesAfter(driver.machine, start)).toEqual([]);
  });
});

describe("against a reference model (seeded)", () => {
  type Model = Map<string, { value: bigint; version: number }>;

  /** The counter rules written the plain way: copy the map, apply ops, keep the copy only on success. */
  function modelMutate(
    model: Model,
    ops: CounterOp[],
    index: number,
  ): { model: Model; results?: Array<{ value: bigint; version: number }>; code?: string; opIndex?: number } {
    const scratch: Model = new Map(model);
    const results: Array<{ value: bigint; version: number }> = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const name = Array.from(op.key).join(",");
      const current = scratch.get(name);
      if (op.kind === "reset") {
        scratch.delete(name);
        results.push({ value: 0n, version: 0 });
        continue;
      }
      let value: bigint;
      if (op.kind === "add") {
        value = (current?.value ?? 0n) + op.delta;
        if (value > INT64_MAX || value < INT64_MIN) return { model, code: "OUT_OF_RANGE", opIndex: i };
        if (op.floor !== undefined && value < op.floor) return { model, code: "FAILED_PRECONDITION", opIndex: i };
      } else if (op.kind === "set" || op.kind === "cas") {
        if (op.kind === "cas" && (current?.version ?? 0) !== op.expectedVersion) return { model, code: "VERSION_MISMATCH", opIndex: i };
        value = op.value;
      } else {
        throw new Error(`the model has no ${op.kind} ops`);
      }
      scratch.set(name, { value, version: index });
      results.push({ value, version: index });
    }
    return { model: scratch, results };
  }

  it("every result and every counter agree with the model over 2,000 random mutates", () => {
    const prng = createPrng(99);
    const driver = new ShardDriver();
    const client = driver.register();
    let model: Model = new Map();
    const keys = ["a", "b", "c", "d", "e"].map(key);
    const pickValue = (): bigint => [0n, 1n, -1n, 7n, -50n, INT64_MAX, INT64_MIN, INT64_MAX - 1n][prng.nextInt(8)]!;
    const outcomes = new Map<string, number>();
    for (let seq = 1; seq <= 2000; seq++) {
      const ops: CounterOp[] = [];
      for (let n = 1 + prng.nextInt(4); n > 0; n--) {
        const k = keys[prng.nextInt(keys.length)]!;
        const current = model.get(Array.from(k).join(","));
        switch (prng.nextInt(5)) {
          case 0:
            ops.push({ kind: "add", key: k, delta: pickValue() });
            break;
          case 1:
            ops.push({ kind: "add", key: k, delta: pickValue(), floor: pickValue() });
            break;
          case 2:
            ops.push({ kind: "set", key: k, value: pickValue() });
            break;
          case 3:
            ops.push({ kind: "reset", key: k });
            break;
          default:
            ops.push({
              kind: "cas",
              key: k,
              expectedVersion: prng.chance(0.7) ? (current?.version ?? 0) : prng.nextInt(4),
              value: pickValue(),
            });
        }
      }
      const result = driver.mutate(client, seq, ops);
      const expected = modelMutate(model, ops, driver.index);
      if (expected.results !== undefined) {
        expect(expectOk(result)).toEqual(expected.results);
        outcomes.set("ok", (outcomes.get("ok") ?? 0) + 1);
      } else {
        const failure = expectFailure(result, expected.code as "OUT_OF_RANGE");
        expect(failure.opIndex).toBe(expected.opIndex);
        outcomes.set(expected.code!, (outcomes.get(expected.code!) ?? 0) + 1);
      }
      model = expected.model;
      expect(keys.map((k) => driver.machine.get(k))).toEqual(keys.map((k) => model.get(Array.from(k).join(","))));
    }
    expect(driver.machine.counterCount()).toBe(model.size);
    for (const code of ["ok", "OUT_OF_RANGE", "FAILED_PRECONDITION", "VERSION_MISMATCH"])
      expect(outcomes.get(code) ?? 0).toBeGreaterThan(50);
  });
});
