// Snapshot/restore and load-from-records equality, as a property over seeded random command streams:
// a copy made at any point must hold identical state and behave identically from then on.
import { describe, expect, it } from "vitest";
import { ByteWriter } from "../../src/shard/binary.js";
import { encodeEntry, type Command, type CommandResult, type CounterOp } from "../../src/shard/commands.js";
import { CounterStateMachine, encodeShardImage, type ShardImage, type ShardOptions } from "../../src/shard/state-machine.js";
import { CorruptionError } from "../../src/util/errors.js";
import { createPrng, type Prng } from "../../src/util/prng.js";
import { bigintJson, INT64_MAX, INT64_MIN } from "./shard-harness.js";

const options: ShardOptions = { sessionTimeoutMs: 10_000, maxSessions: 6, maxRetainedResultsPerSession: 4, maxCounters: 40 };

const encoder = new TextEncoder();
const keySpace = [
  ...Array.from({ length: 12 }, (_, i) => encoder.encode(`k${i}`)),
  new Uint8Array([0]),
  new Uint8Array([0xff, 0xfe]),
  new Uint8Array(256).fill(7),
];
const valueEdges = [0n, 1n, -1n, INT64_MAX, INT64_MIN, INT64_MAX - 3n, INT64_MIN + 3n, 2n ** 53n + 1n];

interface ClientState {
  id: number;
  nextSeq: number;
  acked: number;
  /** The request sent under each seq, so a retry resends it. */
  sent: Map<number, CounterOp[]>;
}

/** Generates entries online (it needs register results to learn client ids). */
class StreamGenerator {
  private readonly clients: ClientState[] = [];
  timestampMs = 1_700_000_000_000;

  constructor(
    private readonly prng: Prng,
    private readonly reference: CounterStateMachine,
  ) {}

  nextEntry(): Uint8Array {
    const prng = this.prng;
    if (prng.chance(0.05)) return new Uint8Array(0); // leader no-op
    const roll = prng.nextFloat();
    if (roll < 0.05)
      this.timestampMs -= prng.nextInt(30_000); // new leader, clock behind
    else if (roll < 0.1)
      this.timestampMs += options.sessionTimeoutMs + prng.nextInt(5_000); // long pause
    else this.timestampMs += prng.nextInt(1_500);
    const commands: Command[] = [];
    for (let count = 1 + prng.nextInt(6); count > 0; count--) commands.push(this.nextCommand());
    return encodeEntry({ timestampMs: this.timestampMs, commands });
  }

  learn(results: CommandResult[]): void {
    for (const result of results) {
      if (result.ok && result.type === "register") this.clients.push({ id: result.clientId, nextSeq: 1, acked: 1, sent: new Map() });
    }
    if (this.clients.length > 20) this.clients.splice(0, this.clients.length - 20);
  }

  private nextCommand(): Command {
    const prng = this.prng;
    const roll = prng.nextFloat();
    if (roll < 0.1 || this.clients.length === 0) return { type: "register" };
    const client = this.clients[prng.nextInt(this.clients.length)]!;
    const clientId = prng.chance(0.03) ? 999_999_000 : client.id;
    if (roll < 0.2) return { type: "keepalive", clientId };
    let seq: number;
    const seqRoll = prng.nextFloat();
    if (seqRoll < 0.7 || client.nextSeq === 1) seq = client.nextSeq++;
    else if (seqRoll < 0.9)
      seq = Math.max(1, client.nextSeq - 1 - prng.nextInt(3)); // retry / duplicate
    else seq = 1 + prng.nextInt(client.nextSeq); // possibly long acknowledged
    if (prng.chance(0.5)) client.acked = Math.min(client.nextSeq - 1, client.acked + prng.nextInt(3));
    const firstUnackedSeq = Math.min(seq, client.acked);
    // A retry resends the seq's request; now and then a different one (refused: INVALID_ARGUMENT).
    let ops = client.sent.get(seq);
    if (ops === undefined || prng.chance(0.05)) {
      ops = [];
      for (let count = 1 + prng.nextInt(4); count > 0; count--) ops.push(this.nextOp());
      if (!client.sent.has(seq)) client.sent.set(seq, ops);
    }
    return { type: "mutate", clientId, seq, firstUnackedSeq, ops };
  }

  private nextOp(): CounterOp {
    const prng = this.prng;
    const key = keySpace[prng.nextInt(keySpace.length)]!;
    const value = (): bigint => (prng.chance(0.2) ? valueEdges[prng.nextInt(valueEdges.length)]! : BigInt(prng.nextInt(200)) - 100n);
    switch (prng.nextInt(6)) {
      case 0:
      case 1:
        return { kind: "add", key, delta: value() };
      case 2:
        return { kind: "add", key, delta: value(), floor: BigInt(prng.nextInt(20)) - 10n };
      case 3:
        return { kind: "set", key, value: value() };
      case 4:
        return { kind: "reset", key };
      default: {
        const current = this.reference.get(key)?.version ?? 0;
        return { kind: "cas", key, expectedVersion: prng.chance(0.6) ? current : prng.nextInt(5), value: value() };
      }
    }
  }
}

/** A copy through the machine's records (exportRecords, in storage's key order), as a range split or backup restore loads them. */
function loadFromRecords(machine: CounterStateMachine): CounterStateMachine {
  const records = machine.exportRecords();
  const sessions = [...records.sessions].sort((a, b) => a[0] - b[0]);
  return CounterStateMachine.load(options, machine.appliedIndex, machine.clockMs, [...records.counters], sessions, [...records.kinds]);
}

async function imageBytes(image: ShardImage): Promise<Uint8Array> {
  return Buffer.concat(await encodeShardImage(image, () => Promise.resolve()));
}

async function runStream(seed: number, entries: number): Promise<{ copies: number; results: number }> {
  const prng = createPrng(seed);
  const leader = new CounterStateMachine(options);
  const generator = new StreamGenerator(prng.fork(), leader);
  const copies: CounterStateMachine[] = [];
  let index = 0;
  let compared = 0;
  /** An image captured earlier, its bytes then, and the snapshot it must load to. */
  let pending: { image: ShardImage; bytes: Uint8Array; snapshot: Uint8Array } | undefined;
  for (let entry = 0; entry < entries; entry++) {
    index += prng.chance(0.05) ? 2 : 1; // gaps: entries the shard never sees (conf changes)
    const data = generator.nextEntry();
    const results = leader.applyEntry(index, data);
    generator.learn(results);
    for (const copy of copies) {
      const copyResults = copy.applyEntry(index, data);
      if (JSON.stringify(copyResults, bigintJson) !== JSON.stringify(results, bigintJson)) {
        expect(copyResults, `seed ${seed} entry ${entry}: a copy diverged`).toEqual(results);
      }
      compared++;
    }
    if (entry % 40 === 39) {
      const snapshot = leader.snapshot();
      const restored = CounterStateMachine.restore(snapshot, options);
      expect(restored.snapshot(), `seed ${seed} entry ${entry}: restore(snapshot()) differs`).toEqual(snapshot);
      const loaded = loadFromRecords(leader);
      expect(loaded.snapshot(), `seed ${seed} entry ${entry}: load(records) differs`).toEqual(snapshot);
      // The image captured 40 entries ago did not change while the leader went on applying.
      if (pending !== undefined) {
        expect(await imageBytes(pending.image), `seed ${seed} entry ${entry}: an image changed`).toEqual(pending.bytes);
        expect(CounterStateMachine.fromImage(pending.bytes, options).snapshot()).toEqual(pending.snapshot);
      }
      const image = leader.captureImage();
      const bytes = await imageBytes(image);
      const imaged = CounterStateMachine.fromImage(bytes, { ...options, hashSeed: seed });
      expect(imaged.snapshot(), `seed ${seed} entry ${entry}: fromImage(image) differs`).toEqual(snapshot);
      pending = { image, bytes, snapshot };
      copies.push(restored, loaded, imaged);
      if (copies.length > 6) copies.splice(0, 3);
    }
  }
  const finalSnapshot = leader.snapshot();
  for (const copy of copies) expect(copy.snapshot()).toEqual(finalSnapshot);
  return { copies: copies.length, results: compared };
}

describe("snapshot, restore and load", () => {
  it("copies made at any point (restore, load from records, shard image) hold identical state and behave identically afterwards (seeded streams)", async () => {
    for (const seed of [1, 2, 3, 4]) {
      const { copies, results } = await runStream(seed, 300);
      expect(copies).toBeGreaterThan(0);
      expect(results).toBeGreaterThan(500);
    }
  });

  it("the stream exercises what it claims to (so the property is not vacuous)", () => {
    const prng = createPrng(7);
    const machine = new CounterStateMachine(options);
    const generator = new StreamGenerator(prng.fork(), machine);
    const seen = new Map<string, number>();
    for (let index = 1; index <= 600; index++) {
      const results = machine.applyEntry(index, generator.nextEntry());
      generator.learn(results);
      for (const result of results) {
        const label = result.ok ? `${result.type}${result.type === "mutate" && result.duplicate ? "-duplicate" : ""}` : result.code;
        seen.set(label, (seen.get(label) ?? 0) + 1);
      }
    }
    for (const label of [
      "register",
      "keepalive",
      "mutate",
      "mutate-duplicate",
      "SESSION_EXPIRED",
      "OUT_OF_RANGE",
      "FAILED_PRECONDITION",
      "VERSION_MISMATCH",
      "OVERLOADED",
      "INVALID_ARGUMENT",
    ]) {
      expect(seen.get(label) ?? 0, `${label} never happened`).toBeGreaterThan(0);
    }
  });

  it("snapshot bytes are deterministic: equal states give equal bytes regardless of history", () => {
    const build = (order: string[]): Uint8Array => {
      const machine = new CounterStateMachine(options);
      machine.applyEntry(1, encodeEntry({ timestampMs: 5, commands: [{ type: "register" }] }));
      // Keys are inserted in different orders, and "tmp" is created and deleted, in one entry
      // so that every counter gets the same version.
      const ops: CounterOp[] = order.map((k) => ({ kind: "set", key: encoder.encode(k), value: 7n }));
      ops.push({ kind: "add", key: encoder.encode("tmp"), delta: 1n }, { kind: "reset", key: encoder.encode("tmp") });
      machine.applyEntry(
        2,
        encodeEntry({ timestampMs: 6, commands: [{ type: "mutate", clientId: 1000, seq: 1, firstUnackedSeq: 1, ops }] }),
      );
      // Seq 1's request differed (its digest is retained with its result); acknowledging it with a
      // request that changes nothing leaves equal states.
      const same: CounterOp[] = [{ kind: "cas", key: encoder.encode("a"), expectedVersion: 99, value: 1n }];
      machine.applyEntry(
        3,
        encodeEntry({ timestampMs: 7, commands: [{ type: "mutate", clientId: 1000, seq: 2, firstUnackedSeq: 2, ops: same }] }),
      );
      return machine.snapshot();
    };
    expect(build(["b", "a", "c", "ab"])).toEqual(build(["c", "ab", "a", "b"]));
  });

  it("the counter rows are the documented layout byte for byte (u16 key length, key, i64 value, u64 version, big-endian, key order)", () => {
    // The rows are written straight from the table's memory; this pins them to what ByteWriter
    // writes, including int64 extremes, versions above 2^32, and keys longer than the copy loop's 32 bytes.
    const appliedIndex = 2 ** 52;
    const rows: Array<[Uint8Array, bigint, number]> = [
      [encoder.encode("z"), INT64_MAX, appliedIndex],
      [encoder.encode("a"), INT64_MIN, 1],
      [encoder.encode("ab"), -1n, 2 ** 32],
      [Uint8Array.of(0, 255, 0), 0n, 2 ** 32 + 1],
      [new Uint8Array(200).fill(0x6b), 123_456_789_012n, 77],
      [encoder.encode("k".repeat(33)), -(2n ** 40n), 2 ** 33 - 1],
    ];
    const machine = CounterStateMachine.load(
      options,
      appliedIndex,
      9,
      rows.map(([key, value, version]) => [key, { value, version }]),
      [],
    );
    const snapshot = machine.snapshot();
    const expected = new ByteWriter();
    for (const [key, value, version] of [...rows].sort(([a], [b]) => Buffer.compare(a, b))) {
      expected.u16(key.length);
      expected.raw(key);
      expected.i64(value);
      expected.u64(version);
    }
    const body = expected.finish();
    // Header: magic u32, format u16, applied u64, clock u64, count u32.
    expect(Buffer.from(snapshot.subarray(26, 26 + body.length)).equals(Buffer.from(body))).toBe(true);
    const restored = CounterStateMachine.restore(snapshot, options);
    for (const [key, value, version] of rows) expect(restored.get(key)).toMatchObject({ value, version });
  });

  it("restore rejects damaged snapshots with CorruptionError", () => {
    const machine = new CounterStateMachine(options);
    machine.applyEntry(1, encodeEntry({ timestampMs: 5, commands: [{ type: "register" }] }));
    machine.applyEntry(
      2,
      encodeEntry({
        timestampMs: 6,
        commands: [
          { type: "mutate", clientId: 1000, seq: 1, firstUnackedSeq: 1, ops: [{ kind: "add", key: encoder.encode("k"), delta: 1n }] },
        ],
      }),
    );
    const snapshot = machine.snapshot();
    for (let i = 0; i < snapshot.length; i++) {
      const damaged = snapshot.slice();
      damaged[i]! ^= 0x10;
      expect(() => CounterStateMachine.restore(damaged, options)).toThrow(CorruptionError);
    }
    expect(() => CounterStateMachine.restore(snapshot.subarray(0, snapshot.length - 1), options)).toThrow(CorruptionError);
    expect(() => CounterStateMachine.restore(new Uint8Array(3), options)).toThrow(CorruptionError);
  });

  it("load rejects records that contradict the applied state", () => {
    const key = encoder.encode("k");
    expect(() => CounterStateMachine.load(options, 5, 0, [[key, { value: 1n, version: 6 }]], [])).toThrow(
      /version 6 outside \[1, applied 5\]/,
    );
    expect(() =>
      CounterStateMachine.load(
        options,
        5,
        0,
        [
          [key, { value: 1n, version: 2 }],
          [key, { value: 1n, version: 3 }],
        ],
        [],
      ),
    ).toThrow(/twice/);
    const machine = new CounterStateMachine(options);
    machine.applyEntry(1, encodeEntry({ timestampMs: 5, commands: [{ type: "register" }] }));
    const [clientId, record] = [...machine.exportRecords().sessions][0]!;
    expect(() => CounterStateMachine.load(options, 1, 5, [], [[clientId + 1, record]])).toThrow(/stored under id/);
    expect(() => CounterStateMachine.load(options, 1, 4, [], [[clientId, record]])).toThrow(/after the clock/);
    expect(CounterStateMachine.load(options, 1, 5, [], [[clientId, record]]).sessionCount()).toBe(1);
  });

  it("restore and a shard image bring every counter and session back (nothing is left to rewrite)", async () => {
    const machine = new CounterStateMachine(options);
    machine.applyEntry(1, encodeEntry({ timestampMs: 5, commands: [{ type: "register" }] }));
    machine.applyEntry(
      2,
      encodeEntry({
        timestampMs: 6,
        commands: [
          { type: "mutate", clientId: 1000, seq: 1, firstUnackedSeq: 1, ops: [{ kind: "add", key: encoder.encode("k"), delta: 1n }] },
        ],
      }),
    );
    const restored = CounterStateMachine.restore(machine.snapshot(), options);
    const imaged = CounterStateMachine.fromImage(await imageBytes(machine.captureImage()), options);
    for (const copy of [restored, imaged]) {
      const records = copy.exportRecords();
      expect([...records.counters]).toEqual([[encoder.encode("k"), { value: 1n, version: 2 }]]);
      expect([...records.sessions].map(([id]) => id)).toEqual([1000]);
      expect(copy.changesRetainedAfter).toBe(2);
    }
  });
});
