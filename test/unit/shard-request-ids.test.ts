// Sessionless writes: exactly once per (owner, request id) while the shard remembers the id
// (src/shard/request-ids.ts), by the state machine's clock, across snapshots and restarts.
import { describe, expect, it } from "vitest";
import { crc32 } from "../../src/shard/binary.js";
import { decodeEntry, encodeEntry, validateCommand, type Command, type CounterOp } from "../../src/shard/commands.js";
import { decodeRequestIdRecord, isRequestIdRecord } from "../../src/shard/request-ids.js";
import { CounterStateMachine, encodeShardImage, SESSION_ID_IN_USE, type ShardOptions } from "../../src/shard/state-machine.js";
import { CorruptionError, InvalidArgumentError } from "../../src/util/errors.js";
import { encodePackedAdds } from "../../src/util/packed-adds.js";
import { add, defaultOptions, expectFailure, expectOk, ShardDriver } from "./shard-harness.js";

const RETENTION_MS = 60_000;
const options: ShardOptions = { ...defaultOptions, requestIdRetentionMs: RETENTION_MS, requestIdsPerCallerMax: 3, requestIdsMax: 5 };

function write(requestId: string, ops: CounterOp[], owner?: string): Command {
  const command: Command = { type: "write", requestId, ops };
  if (owner !== undefined) command.owner = owner;
  return command;
}

function driver(machine = new CounterStateMachine(options)): ShardDriver {
  return new ShardDriver(machine);
}

describe("request ids: exactly once without a session", () => {
  it("a retry returns the saved outcome and counts once, in a later entry and in the same entry", () => {
    const shard = driver();
    const first = shard.apply([write("r-1", [add("views", 1n)])])[0]!;
    expect(first).toMatchObject({ ok: true, duplicate: false });
    expect(shard.apply([write("r-1", [add("views", 1n)])])[0]).toEqual({ ...first, duplicate: true });
    const both = shard.apply([write("r-2", [add("views", 5n)]), write("r-2", [add("views", 5n)])]);
    expect(both[1]).toEqual({ ...both[0], duplicate: true });
    expect(shard.value("views")!.value).toBe(6n);
    expect(shard.machine.requestIdCount()).toBe(2);
  });

  it("a reused id with other operations is refused (INVALID_ARGUMENT) and changes nothing", () => {
    const shard = driver();
    expectOk(shard.apply([write("order-7", [add("a", 1n)])])[0]);
    const refused = expectFailure(shard.apply([write("order-7", [add("a", 2n)])])[0], "INVALID_ARGUMENT");
    expect(refused.message).toContain('request id "order-7" was used for a different request');
    expectFailure(shard.apply([write("order-7", [add("b", 1n)])])[0], "INVALID_ARGUMENT");
    expect(shard.value("a")!.value).toBe(1n);
    expect(shard.value("b")).toBeUndefined();
  });

  it("ids are per caller: two owners may use the same id, each applied once", () => {
    const shard = driver();
    expectOk(shard.apply([write("same", [add("k", 1n)], "alice")])[0]);
    expectOk(shard.apply([write("same", [add("k", 1n)], "bob")])[0]);
    expect(shard.apply([write("same", [add("k", 1n)], "alice")])[0]).toMatchObject({ duplicate: true });
    expect(shard.value("k")!.value).toBe(2n);
  });

  it("a definite failure of the ops is remembered too: the retry gets the same answer", () => {
    const shard = driver();
    const floor = expectFailure(shard.apply([write("w", [add("stock", -1n, 0n)])])[0], "FAILED_PRECONDITION");
    expectOk(shard.apply([write("fill", [add("stock", 5n)])])[0]);
    expect(shard.apply([write("w", [add("stock", -1n, 0n)])])[0]).toEqual({ ...floor, duplicate: true });
    expect(shard.value("stock")!.value).toBe(5n);
  });

  it("a routing refusal is not remembered: nothing applied, the same id may be sent again", () => {
    const machine = new CounterStateMachine(options);
    let refuse = true;
    const admit = () => (refuse ? { ok: false as const, code: "WRONG_SHARD" as const, message: "moved", currentEpoch: 2 } : undefined);
    const entry = (index: number) =>
      machine.applyEntry(index, encodeEntry({ timestampMs: 1_000, commands: [write("x", [add("k", 1n)])] }), admit)[0];
    expectFailure(entry(1), "WRONG_SHARD");
    expect(machine.requestIdCount()).toBe(0);
    refuse = false;
    expectOk(entry(2));
    expect(machine.get(new TextEncoder().encode("k"))!.value).toBe(1n);
  });
});

describe("retention: remembered for at least retentionMs of leader time; the count bounds refuse, never evict", () => {
  it("an id is remembered for exactly retentionMs of the state machine's clock, then forgotten", () => {
    const shard = driver();
    const t0 = shard.timestampMs;
    expectOk(shard.apply([write("late", [add("k", 1n)])], t0)[0]);
    expect(shard.apply([write("late", [add("k", 1n)])], t0 + RETENTION_MS)[0]).toMatchObject({ duplicate: true });
    expect(shard.value("k")!.value).toBe(1n);
    // Past the retention the id is gone: a retry this late applies again (documented in docs/protocol.md).
    expect(shard.apply([write("late", [add("k", 1n)])], t0 + RETENTION_MS + 1)[0]).toMatchObject({ ok: true, duplicate: false });
    expect(shard.value("k")!.value).toBe(2n);
  });

  it("the clock is the entries' leader timestamps: an entry stamped earlier (a new leader's slow clock) expires nothing", () => {
    const shard = driver();
    const t0 = shard.timestampMs;
    expectOk(shard.apply([write("id", [add("k", 1n)])], t0 + RETENTION_MS * 2)[0]);
    expect(shard.apply([write("id", [add("k", 1n)])], t0)[0]).toMatchObject({ duplicate: true });
  });

  it("a caller at requestIdsPerCallerMax is refused a new id with OVERLOADED and retry_after until its oldest expires", () => {
    const shard = driver();
    const t0 = shard.timestampMs;
    for (let i = 0; i < 3; i++) expectOk(shard.apply([write(`a${i}`, [add("k", 1n)], "alice")], t0 + i * 1000)[0]);
    const full = expectFailure(shard.apply([write("a3", [add("k", 1n)], "alice")], t0 + 10_000)[0], "OVERLOADED");
    expect(full.retryAfterMs).toBe(RETENTION_MS - 10_000 + 1);
    expect(full.message).toContain('caller "alice" holds 3 request ids');
    expect(shard.value("k")!.value).toBe(3n);
    // Another caller is not held back by alice's ids; her remembered ids still deduplicate.
    expectOk(shard.apply([write("b0", [add("k", 1n)], "bob")], t0 + 10_000)[0]);
    expect(shard.apply([write("a0", [add("k", 1n)], "alice")], t0 + 10_000)[0]).toMatchObject({ duplicate: true });
    // Once her oldest id expires, a new one is accepted.
    expectOk(shard.apply([write("a3", [add("k", 1n)], "alice")], t0 + RETENTION_MS + 1)[0]);
    expect(shard.value("k")!.value).toBe(5n);
  });

  it("the shard-wide bound applies to every caller, the anonymous one included", () => {
    const shard = driver();
    const t0 = shard.timestampMs;
    for (let i = 0; i < 5; i++) expectOk(shard.apply([write(`n${i}`, [add("k", 1n)])], t0)[0]);
    const full = expectFailure(shard.apply([write("n5", [add("k", 1n)])], t0 + 5_000)[0], "OVERLOADED");
    expect(full.message).toContain("this shard holds 5 request ids");
    expect(full.retryAfterMs).toBe(RETENTION_MS - 5_000 + 1);
    expect(shard.machine.requestIdCount()).toBe(5);
  });
});

describe("request ids in storage and snapshots", () => {
  function populated(): ShardDriver {
    const shard = driver();
    shard.register();
    expectOk(shard.apply([write("p-1", [add("k", 1n)], "alice"), write("p-2", [add("j", 2n)])])[0]);
    expectOk(shard.apply([write("p-3", [add("k", 3n)], "bob")])[0]);
    return shard;
  }

  it("a load from the exported records, a restore from a snapshot and a shard image keep every id (same snapshot bytes)", async () => {
    const shard = populated();
    const stored = new Map<number, Uint8Array>(shard.machine.exportRecords().sessions);
    expect([...stored.values()].filter(isRequestIdRecord)).toHaveLength(3);
    const counters = [...shard.machine.exportRecords().counters];
    const loaded = CounterStateMachine.load(
      options,
      shard.machine.appliedIndex,
      shard.machine.clockMs,
      counters,
      [...stored].sort(([a], [b]) => a - b),
      [],
    );
    const restored = CounterStateMachine.restore(shard.machine.snapshot(), options);
    const imaged = CounterStateMachine.fromImage(
      Buffer.concat(await encodeShardImage(shard.machine.captureImage(), () => Promise.resolve())),
      options,
    );
    expect(loaded.snapshot()).toEqual(shard.machine.snapshot());
    expect(restored.snapshot()).toEqual(shard.machine.snapshot());
    expect(imaged.snapshot()).toEqual(shard.machine.snapshot());
    expect(imaged.requestIdCount()).toBe(3);
    for (const machine of [loaded, restored, imaged]) {
      const copy = driver(machine);
      expect(copy.apply([write("p-3", [add("k", 3n)], "bob")])[0]).toMatchObject({ duplicate: true });
      expectFailure(copy.apply([write("p-1", [add("k", 9n)], "alice")])[0], "INVALID_ARGUMENT");
      expect(copy.value("k")!.value).toBe(4n);
    }
  });

  it("expired ids leave the state (gone from the exported records and from snapshots)", () => {
    const shard = populated();
    const ids = [...shard.machine.exportRecords().sessions].filter(([, record]) => isRequestIdRecord(record)).map(([id]) => id);
    expect(ids).toHaveLength(3);
    shard.apply([], shard.timestampMs + RETENTION_MS + 1);
    const left = [...shard.machine.exportRecords().sessions].map(([id]) => id);
    for (const id of ids) expect(left).not.toContain(id);
    expect(shard.machine.requestIdCount()).toBe(0);
    expect(CounterStateMachine.restore(shard.machine.snapshot(), options).requestIdCount()).toBe(0);
  });

  it("a format-3 snapshot (before request ids) still restores, with no ids", () => {
    const shard = driver();
    shard.register();
    expectOk(shard.mutate(shard.register(), 1, [add("k", 7n)]));
    const v4 = shard.machine.snapshot();
    // Format 4 = format 3 + u32 request-id count (0 here) before the CRC trailer.
    const body = Buffer.from(v4.subarray(0, v4.length - 8));
    body.writeUInt16BE(3, 4);
    const v3 = Buffer.concat([body, Buffer.alloc(4)]);
    v3.writeUInt32BE(crc32(v3.subarray(0, v3.length - 4)), v3.length - 4);
    const restored = CounterStateMachine.restore(v3, options);
    expect(restored.get(new TextEncoder().encode("k"))!.value).toBe(7n);
    expect(restored.sessionCount()).toBe(2);
    expect(restored.requestIdCount()).toBe(0);
    expect(() => CounterStateMachine.restore(Object.assign(Buffer.from(v3), { 4: 0, 5: 9 }), options)).toThrow(CorruptionError);
  });

  it("a stored record under the wrong storage id is corruption", () => {
    const shard = populated();
    const [id, record] = [...shard.machine.exportRecords().sessions].find(([, r]) => isRequestIdRecord(r))!;
    expect(decodeRequestIdRecord(record).storageId).toBe(id);
    expect(() => CounterStateMachine.load(options, shard.machine.appliedIndex, shard.machine.clockMs, [], [[id + 1, record]], [])).toThrow(
      CorruptionError,
    );
  });

  it("a session register never takes a request id's storage id", () => {
    const shard = driver();
    expectOk(shard.apply([write("x", [add("k", 1n)])])[0]);
    const [storageId] = [...shard.machine.exportRecords().sessions][0]!;
    expectFailure(shard.apply([{ type: "register", clientId: storageId }])[0], "FAILED_PRECONDITION");
    expect(shard.apply([{ type: "register", clientId: storageId }])[0]).toMatchObject({ message: SESSION_ID_IN_USE });
  });
});

describe("the write command on the wire", () => {
  it("encodes and decodes (plain ops and packed adds), owner and epoch included", () => {
    const commands: Command[] = [
      { type: "write", requestId: "a", ops: [add("k", -3n)] },
      { type: "write", requestId: "0f8fad5b-d9cb-469f-a165-70867728950e", ops: [add("x", 1n), add("y", 2n)], epoch: 4, owner: "svc" },
    ];
    // Two or more plain adds travel packed: the decoded command keeps the bytes beside its ops.
    const packed = encodePackedAdds([add("x", 1n), add("y", 2n)] as Array<{ key: Uint8Array; delta: bigint }>);
    expect(decodeEntry(encodeEntry({ timestampMs: 5, commands })).commands).toEqual([commands[0], { ...commands[1], packedAdds: packed }]);
  });

  it("refuses bad request ids by name", () => {
    for (const [requestId, problem] of [
      ["", "must be 1..64 characters"],
      ["x".repeat(65), "must be 1..64 characters"],
      ["caf\u00e9", "printable ASCII"],
      ["tab\there", "printable ASCII"],
    ] as const) {
      expect(() => validateCommand({ type: "write", requestId, ops: [add("k", 1n)] })).toThrow(InvalidArgumentError);
      expect(() => validateCommand({ type: "write", requestId, ops: [add("k", 1n)] })).toThrow(problem);
    }
  });
});
