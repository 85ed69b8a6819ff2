// Exactly-once sessions, Raft thesis section 6.3.
import { describe, expect, it } from "vitest";
import { ByteWriter } from "../../src/shard/binary.js";
import { requestDigest, type CounterOp } from "../../src/shard/commands.js";
import { decodeOutcome, decodeSessionRecord, encodeOutcome, encodeSessionRecord } from "../../src/shard/sessions.js";
import { CounterStateMachine, SESSION_ID_IN_USE } from "../../src/shard/state-machine.js";
import { CorruptionError } from "../../src/util/errors.js";
import { add, cas, defaultOptions, expectFailure, expectOk, INT64_MAX, key, set, ShardDriver } from "./shard-harness.js";

describe("registration (thesis 6.3)", () => {
  it("the client id comes from the registering entry's index; several registers in one entry get distinct ids", () => {
    const driver = new ShardDriver();
    driver.apply([]); // index 1
    const results = driver.apply([{ type: "register" }, { type: "keepalive", clientId: 5 }, { type: "register" }]);
    expect(results[0]).toEqual({ ok: true, type: "register", clientId: 2000 });
    expectFailure(results[1], "SESSION_EXPIRED");
    expect(results[2]).toEqual({ ok: true, type: "register", clientId: 2001 });
    expect(driver.machine.sessionCount()).toBe(2);
  });

  it("more than 1000 registers in one entry: the excess fail with OVERLOADED", () => {
    const driver = new ShardDriver(new CounterStateMachine({ ...defaultOptions, maxSessions: 5000 }));
    const results = driver.apply(Array.from({ length: 1002 }, () => ({ type: "register" as const })));
    expect(results.filter((r) => r.ok)).toHaveLength(1000);
    expectFailure(results[1000], "OVERLOADED");
    expect(new Set(results.flatMap((r) => (r.ok && r.type === "register" ? [r.clientId] : []))).size).toBe(1000);
  });
});

describe("deduplication", () => {
  it("a retried seq returns the saved result with duplicate: true and does not count twice", () => {
    const driver = new ShardDriver();
    const client = driver.register();
    const first = driver.mutate(client, 1, [add("likes", 1n)]);
    expect(first).toMatchObject({ ok: true, duplicate: false });
    driver.mutate(client, 2, [add("likes", 10n)], 1);
    const retry = driver.mutate(client, 1, [add("likes", 1n)], 1);
    expect(retry).toEqual({ ...first, duplicate: true });
    expect(driver.value("likes")!.value).toBe(11n);
    // Also when the retry sits in the same entry as the original.
    const both = driver.apply([
      { type: "mutate", clientId: client, seq: 3, firstUnackedSeq: 1, ops: [add("likes", 100n)] },
      { type: "mutate", clientId: client, seq: 3, firstUnackedSeq: 1, ops: [add("likes", 100n)] },
    ]);
    expect(both[1]).toEqual({ ...both[0], duplicate: true });
    expect(driver.value("likes")!.value).toBe(111n);
  });

  it("a retry whose ops differ from the saved request is refused (INVALID_ARGUMENT) and changes nothing", () => {
    // Answering it with the saved result would tell the caller that a different request applied.
    const driver = new ShardDriver();
    const client = driver.register();
    const first = expectOk(driver.mutate(client, 1, [add("a", 1n)]));
    const failure = expectFailure(driver.mutate(client, 1, [add("b", 5n)]), "INVALID_ARGUMENT");
    expect(failure.message).toContain("was used for a different request");
    expect(driver.mutate(client, 1, [add("a", 2n)])).toMatchObject({ ok: false, code: "INVALID_ARGUMENT" });
    expect(driver.value("b")).toBeUndefined();
    expect(driver.value("a")!.value).toBe(1n);
    // The same request again is still answered with the saved result.
    expect(driver.mutate(client, 1, [add("a", 1n)])).toEqual({ ok: true, type: "mutate", results: first, duplicate: true });
    // The digest covers every field: a floor, a ttl, a cas's expected version, items.
    const ops: CounterOp[][] = [
      [{ kind: "add", key: key("c"), delta: 1n, floor: 0n }],
      [{ kind: "add", key: key("c"), delta: 1n, ttlMs: 5 }],
      [{ kind: "cas", key: key("c"), expectedVersion: 0, value: 1n }],
      [{ kind: "unique", key: key("u"), items: [key("x")] }],
      [{ kind: "unique", key: key("u"), items: [key("y")] }],
      [add("c", 1n), add("d", 1n)],
      [add("d", 1n), add("c", 1n)],
    ];
    expect(new Set(ops.map((o) => requestDigest(o))).size).toBe(ops.length);
  });

  it("the proposer's random id names the session; an id in use is refused and nothing changes", () => {
    const driver = new ShardDriver();
    const [first, second] = driver.apply([
      { type: "register", clientId: 987_654_321_012_345, owner: "alice" },
      { type: "register", clientId: 987_654_321_012_345, owner: "bob" },
    ]);
    expect(first).toEqual({ ok: true, type: "register", clientId: 987_654_321_012_345 });
    expect(second).toMatchObject({ ok: false, code: "FAILED_PRECONDITION", message: SESSION_ID_IN_USE });
    expect(driver.machine.sessionCount()).toBe(1);
    // Still alice's: bob's keepalive is refused.
    expect(driver.apply([{ type: "keepalive", clientId: 987_654_321_012_345, owner: "bob" }])[0]).toMatchObject({
      ok: false,
      code: "PERMISSION_DENIED",
    });
  });

  it("a session belongs to its registering caller: another caller's commands are refused before they touch it", () => {
    const driver = new ShardDriver();
    const [registered] = driver.apply([{ type: "register", clientId: 42, owner: "admin" }]);
    expect(registered).toMatchObject({ ok: true, clientId: 42 });
    const mine = (seq: number, ops: CounterOp[], firstUnackedSeq = seq, owner = "admin") =>
      driver.apply([{ type: "mutate", clientId: 42, seq, firstUnackedSeq, ops, owner }])[0]!;
    const saved = expectOk(mine(1, [add("secret:x", 100n)], 1));
    // The attacker reads nothing of the saved result, cannot advance acknowledgements or use seqs.
    const stolen = mine(1, [add("secret:x", 100n)], 1, "stats");
    expect(stolen).toMatchObject({ ok: false, code: "PERMISSION_DENIED" });
    expect(JSON.stringify(stolen, (_, v) => (typeof v === "bigint" ? v.toString() : v))).not.toContain("100");
    for (let seq = 2; seq <= 6; seq++)
      expect(mine(seq, [add("stats:3", 0n)], seq, "stats")).toMatchObject({ ok: false, code: "PERMISSION_DENIED" });
    expect(mine(7, [add("stats:3", 0n)], 7, "")).toMatchObject({ ok: false, code: "PERMISSION_DENIED" });
    expect(driver.apply([{ type: "keepalive", clientId: 42 }])[0]).toMatchObject({ ok: false, code: "PERMISSION_DENIED" });
    // The owner's seqs 2..6 apply, each once, and seq 1 is still retained.
    for (let seq = 2; seq <= 6; seq++) expectOk(mine(seq, [add("secret:x", 100n)], 1));
    expect(driver.value("secret:x")!.value).toBe(600n);
    expect(driver.value("stats:3")).toBeUndefined();
    expect(mine(1, [add("secret:x", 100n)], 1)).toEqual({ ok: true, type: "mutate", results: saved, duplicate: true });
  });

  it("a caller holds at most maxSessionsPerCaller sessions (OVERLOADED beyond); others and the LRU are unaffected", () => {
    const driver = new ShardDriver(new CounterStateMachine({ ...defaultOptions, maxSessions: 10, maxSessionsPerCaller: 3 }));
    const register = (clientId: number, owner: string) => driver.apply([{ type: "register", clientId, owner }])[0]!;
    expect(register(1, "admin")).toMatchObject({ ok: true });
    for (let id = 10; id < 13; id++) expect(register(id, "flood")).toMatchObject({ ok: true });
    const refused = register(13, "flood");
    expect(refused).toMatchObject({ ok: false, code: "OVERLOADED" });
    expect((refused as { message: string }).message).toContain('caller "flood" holds 3 sessions');
    expect(driver.machine.sessionCount()).toBe(4);
    expect(register(20, "other")).toMatchObject({ ok: true });
    // Without auth every caller is "" and only maxSessions (LRU) bounds the table.
    for (let id = 30; id < 40; id++) expect(register(id, "")).toMatchObject({ ok: true });
    expect(driver.machine.sessionCount()).toBe(10);
  });

  it("owner and request digests survive the session record and the snapshot; format 1 records still load", () => {
    const driver = new ShardDriver();
    driver.apply([{ type: "register", clientId: 77, owner: "alice" }]);
    expectOk(driver.apply([{ type: "mutate", clientId: 77, seq: 1, firstUnackedSeq: 1, ops: [add("k", 1n)], owner: "alice" }])[0]!);
    const restored = new ShardDriver(CounterStateMachine.restore(driver.machine.snapshot(), defaultOptions));
    restored.index = driver.index;
    restored.timestampMs = driver.timestampMs;
    expect(
      restored.apply([{ type: "mutate", clientId: 77, seq: 1, firstUnackedSeq: 1, ops: [add("k", 2n)], owner: "alice" }])[0],
    ).toMatchObject({ ok: false, code: "INVALID_ARGUMENT" });
    expect(
      restored.apply([{ type: "mutate", clientId: 77, seq: 2, firstUnackedSeq: 1, ops: [add("k", 2n)], owner: "bob" }])[0],
    ).toMatchObject({ ok: false, code: "PERMISSION_DENIED" });
    const record = [...driver.machine.exportRecords().sessions].find(([id]) => id === 77)![1];
    const session = decodeSessionRecord(record);
    expect(session).toMatchObject({ clientId: 77, owner: "alice", retainedSeqs: [1] });
    expect(session.retainedDigests).toEqual([requestDigest([add("k", 1n)])]);
    // Format 1: the same fields without owner and digests.
    const legacy = new ByteWriter(64);
    legacy.u8(1);
    for (const v of [77, 1000, 2]) legacy.u64(v);
    legacy.u32(0);
    legacy.u64(1);
    legacy.u32(0);
    expect(decodeSessionRecord(legacy.finish())).toMatchObject({ clientId: 77, owner: "", retainedSeqs: [], retainedDigests: [] });
  });

  it("failed mutations are retained too: a retry sees the same error, even after the state changed", () => {
    const driver = new ShardDriver();
    const client = driver.register();
    driver.mutate(client, 1, [set("k", INT64_MAX)]);
    const failure = expectFailure(driver.mutate(client, 2, [add("k", 1n)], 1), "OUT_OF_RANGE");
    driver.mutate(client, 3, [set("k", 0n)], 1); // now the add would succeed
    const retry = driver.mutate(client, 2, [add("k", 1n)], 1);
    expect(retry).toEqual({ ...failure, duplicate: true });
    expect(driver.value("k")!.value).toBe(0n);
    const mismatch = expectFailure(driver.mutate(client, 4, [cas("k", 1, 5n)], 1), "VERSION_MISMATCH");
    expect(driver.mutate(client, 4, [cas("k", 1, 5n)], 1)).toEqual({ ...mismatch, duplicate: true });
  });

  it("pipelined seqs may arrive out of order; each applies once", () => {
    const driver = new ShardDriver();
    const client = driver.register();
    driver.mutate(client, 3, [add("k", 3n)], 1);
    driver.mutate(client, 1, [add("k", 1n)], 1);
    driver.mutate(client, 2, [add("k", 2n)], 1);
    driver.mutate(client, 3, [add("k", 3n)], 1);
    driver.mutate(client, 1, [add("k", 1n)], 1);
    expect(driver.value("k")!.value).toBe(6n);
  });

  it("firstUnackedSeq forgets results; an acknowledged seq is refused (SEQ_ACKNOWLEDGED, not SESSION_EXPIRED), never re-applied", () => {
    const driver = new ShardDriver();
    const client = driver.register();
    driver.mutate(client, 1, [add("k", 1n)], 1);
    driver.mutate(client, 2, [add("k", 1n)], 1);
    driver.mutate(client, 3, [add("k", 1n)], 3); // the client has replies for 1 and 2
    const stale = expectFailure(driver.mutate(client, 1, [add("k", 1n)], 1), "SEQ_ACKNOWLEDGED");
    expect(stale.message).toMatch(/seq 1 of session \d+ was already acknowledged/);
    expect(driver.value("k")!.value).toBe(3n);
    // A late request carrying an older firstUnackedSeq does not bring forgotten seqs back.
    expectFailure(driver.mutate(client, 2, [add("k", 1n)], 2), "SEQ_ACKNOWLEDGED");
    expect(driver.value("k")!.value).toBe(3n);
    // seq 3 is still retained.
    expect(driver.mutate(client, 3, [add("k", 1n)], 3)).toMatchObject({ duplicate: true });
  });

  it("bounds retained results per session: beyond the bound a new seq fails with OVERLOADED, unapplied and not retained", () => {
    const driver = new ShardDriver(new CounterStateMachine({ ...defaultOptions, maxRetainedResultsPerSession: 3 }));
    const client = driver.register();
    for (let seq = 1; seq <= 3; seq++) expectOk(driver.mutate(client, seq, [add("k", 1n)], 1));
    const overloaded = expectFailure(driver.mutate(client, 4, [add("k", 1n)], 1), "OVERLOADED");
    expect(overloaded.message).toMatch(/holds 3 unacknowledged results \(maxRetainedResultsPerSession 3\)/);
    expect(driver.value("k")!.value).toBe(3n);
    // Duplicates of retained seqs still answer.
    expect(driver.mutate(client, 2, [add("k", 1n)], 1)).toMatchObject({ duplicate: true });
    // Once the client acknowledges, seq 4 (never applied) goes through exactly once.
    expect(driver.mutate(client, 4, [add("k", 1n)], 3)).toMatchObject({ ok: true, duplicate: false });
    expect(driver.mutate(client, 4, [add("k", 1n)], 3)).toMatchObject({ ok: true, duplicate: true });
    expect(driver.value("k")!.value).toBe(4n);
  });

  it("sessions are independent: the same seq on two sessions applies twice", () => {
    const driver = new ShardDriver();
    const a = driver.register();
    const b = driver.register();
    driver.mutate(a, 1, [add("k", 1n)]);
    driver.mutate(b, 1, [add("k", 1n)]);
    expect(driver.value("k")!.value).toBe(2n);
  });

  it("an unknown session gets SESSION_EXPIRED and nothing is applied", () => {
    const driver = new ShardDriver();
    expectFailure(driver.mutate(123_000, 1, [add("k", 1n)]), "SESSION_EXPIRED");
    expectFailure(driver.apply([{ type: "keepalive", clientId: 123_000 }])[0], "SESSION_EXPIRED");
    expect(driver.value("k")).toBeUndefined();
    expect(driver.machine.sessionCount()).toBe(0);
  });
});

describe("expiry by leader time (thesis 6.3)", () => {
  const timeoutMs = defaultOptions.sessionTimeoutMs;

  it("a session idle longer than the timeout expires at the first entry past it, not before", () => {
    const driver = new ShardDriver();
    const t0 = driver.timestampMs;
    const client = driver.register(t0);
    driver.apply([], t0 + timeoutMs); // idle exactly the timeout: still alive
    expect(driver.machine.sessionCount()).toBe(1);
    expectOk(driver.mutate(client, 1, [add("k", 1n)], 1, t0 + timeoutMs));
    driver.apply([], t0 + 2 * timeoutMs + 1);
    expect(driver.machine.sessionCount()).toBe(0);
    expectFailure(driver.mutate(client, 2, [add("k", 1n)], 1), "SESSION_EXPIRED");
    // Its retained results are gone with it: a retry of seq 1 cannot double-apply.
    expectFailure(driver.mutate(client, 1, [add("k", 1n)], 1), "SESSION_EXPIRED");
    expect(driver.value("k")!.value).toBe(1n);
  });

  it("the entry that crosses the timeout expires the session before its own commands run", () => {
    const driver = new ShardDriver();
    const client = driver.register(driver.timestampMs);
    const late = driver.timestampMs + timeoutMs + 1;
    expectFailure(driver.mutate(client, 1, [add("k", 1n)], 1, late), "SESSION_EXPIRED");
  });

  it("keepalive and every command refresh activity", () => {
    const driver = new ShardDriver();
    const t0 = driver.timestampMs;
    const client = driver.register(t0);
    for (let step = 1; step <= 5; step++) {
      expect(driver.apply([{ type: "keepalive", clientId: client }], t0 + step * (timeoutMs - 1))[0]).toEqual({
        ok: true,
        type: "keepalive",
      });
    }
    // A refused (already acknowledged) seq still counts as activity.
    driver.mutate(client, 2, [add("k", 1n)], 2, t0 + 6 * (timeoutMs - 1));
    expectFailure(driver.mutate(client, 1, [add("k", 1n)], 1, t0 + 7 * (timeoutMs - 1)), "SEQ_ACKNOWLEDGED");
    expectOk(driver.mutate(client, 3, [add("k", 1n)], 3, t0 + 8 * (timeoutMs - 1)));
  });

  it("the clock never goes back: a new leader with a slow clock neither revives nor delays expiry", () => {
    const driver = new ShardDriver();
    const t0 = driver.timestampMs;
    const client = driver.register(t0);
    driver.apply([], t0 + timeoutMs - 10);
    expect(driver.machine.clockMs).toBe(t0 + timeoutMs - 10);
    // The next leader's clock is an hour behind: time stands still rather than running back.
    driver.apply([{ type: "keepalive", clientId: client }], t0 - 3_600_000);
    expect(driver.machine.clockMs).toBe(t0 + timeoutMs - 10);
    // The keepalive above happened at the machine clock, so expiry is measured from there.
    driver.apply([], t0 + 2 * timeoutMs - 10);
    expect(driver.machine.sessionCount()).toBe(1);
    driver.apply([], t0 + 2 * timeoutMs - 9);
    expect(driver.machine.sessionCount()).toBe(0);
  });

  it("a backward clock does not expire a session that forward time would keep", () => {
    const driver = new ShardDriver();
    const t0 = driver.timestampMs;
    driver.register(t0);
    for (let i = 0; i < 10; i++) driver.apply([], t0 - i * 1_000_000);
    expect(driver.machine.sessionCount()).toBe(1);
    expect(driver.machine.clockMs).toBe(t0);
  });

  it("expires oldest-first and only the idle ones", () => {
    const driver = new ShardDriver();
    const t0 = driver.timestampMs;
    const a = driver.register(t0);
    const b = driver.register(t0 + 100);
    const c = driver.register(t0 + 200);
    driver.apply([{ type: "keepalive", clientId: a }], t0 + 300);
    driver.apply([], t0 + 150 + timeoutMs);
    // b (last active t0+100) expired; c (t0+200) and a (t0+300) live.
    expectFailure(driver.apply([{ type: "keepalive", clientId: b }])[0], "SESSION_EXPIRED");
    expect(
      driver
        .apply([
          { type: "keepalive", clientId: a },
          { type: "keepalive", clientId: c },
        ])
        .every((r) => r.ok),
    ).toBe(true);
  });
});

describe("maxSessions", () => {
  it("registering at the bound evicts the least recently active session", () => {
    const driver = new ShardDriver(new CounterStateMachine({ ...defaultOptions, maxSessions: 3 }));
    const a = driver.register();
    const b = driver.register();
    const c = driver.register();
    driver.apply([{ type: "keepalive", clientId: a }]); // b is now the idlest
    const d = driver.register();
    expect(driver.machine.sessionCount()).toBe(3);
    expectFailure(driver.apply([{ type: "keepalive", clientId: b }])[0], "SESSION_EXPIRED");
    expect(
      driver
        .apply([
          { type: "keepalive", clientId: a },
          { type: "keepalive", clientId: c },
          { type: "keepalive", clientId: d },
        ])
        .every((r) => r.ok),
    ).toBe(true);
    // The evicted session is gone from the state itself (records, snapshot), not just refused.
    const ids = [...driver.machine.exportRecords().sessions].map(([id]) => id);
    expect(ids).not.toContain(b);
    expect(ids.sort((x, y) => x - y)).toEqual([a, c, d].sort((x, y) => x - y));
  });

  it("state restored under a larger maxSessions is evicted down to the new bound on the next register", () => {
    const big = new ShardDriver(new CounterStateMachine({ ...defaultOptions, maxSessions: 10 }));
    const ids = Array.from({ length: 6 }, () => big.register());
    const small = new ShardDriver(CounterStateMachine.restore(big.machine.snapshot(), { ...defaultOptions, maxSessions: 3 }));
    const fresh = small.register();
    expect(small.machine.sessionCount()).toBe(3);
    const alive = small.apply([...ids, fresh].map((clientId) => ({ type: "keepalive" as const, clientId })));
    expect(alive.map((r) => r.ok)).toEqual([false, false, false, false, true, true, true]);
  });
});

describe("session records", () => {
  it("round-trip with retained successes and failures, and reject damage", () => {
    const driver = new ShardDriver();
    const client = driver.register();
    driver.mutate(client, 1, [add("k", 5n), add("j", -1n)], 1);
    driver.mutate(client, 2, [cas("k", 77, 1n)], 1);
    const record = [...driver.machine.exportRecords().sessions].find(([id]) => id === client)![1];
    const session = decodeSessionRecord(record);
    expect(session.clientId).toBe(client);
    expect(session.retainedSeqs).toEqual([1, 2]);
    expect(encodeSessionRecord(session)).toEqual(record);
    expect(() => decodeSessionRecord(record.subarray(0, record.length - 1))).toThrow(CorruptionError);
    const trailing = new Uint8Array(record.length + 1);
    trailing.set(record);
    expect(() => decodeSessionRecord(trailing)).toThrow(/trailing/);
    const badFormat = record.slice();
    badFormat[0] = 9;
    expect(() => decodeSessionRecord(badFormat)).toThrow(/format 9/);
  });

  it("single-result outcomes take the fast encoder and decode the same as the general one", () => {
    for (const value of [0n, -1n, INT64_MAX, -INT64_MAX - 1n]) {
      for (const version of [0, 1, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
        const bytes = encodeOutcome({ ok: true, type: "mutate", results: [{ value, version }], duplicate: false });
        expect(bytes.length).toBe(21);
        expect(decodeOutcome(bytes)).toEqual({ ok: true, type: "mutate", results: [{ value, version }], duplicate: true });
        const two = encodeOutcome({
          ok: true,
          type: "mutate",
          results: [
            { value, version },
            { value, version },
          ],
          duplicate: false,
        });
        expect(two.subarray(5, 21)).toEqual(bytes.subarray(5, 21));
      }
    }
  });

  it("retained outcomes cost 16 bytes per op result", () => {
    const one = encodeOutcome({ ok: true, type: "mutate", results: [{ value: 1n, version: 1 }], duplicate: false });
    const many = encodeOutcome({
      ok: true,
      type: "mutate",
      results: Array.from({ length: 101 }, () => ({ value: 1n, version: 1 })),
      duplicate: false,
    });
    expect(many.length - one.length).toBe(100 * 16);
  });
});
