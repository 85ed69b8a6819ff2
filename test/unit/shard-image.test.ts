/**
 * Shard images (src/shard/shard-image.ts): fromImage(encodeShardImage(captureImage(m))) holds m's
 * state byte for byte (snapshot()) and behaves like m from then on, over seeded random workloads
 * with every kind, TTL expiry, deletes, sessions, request ids and range splits; an image does not
 * change while the machine goes on applying; and any damage is a CorruptionError.
 */
import { crc32 as zlibCrc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { crc32 } from "../../src/shard/binary.js";
import { encodeEntry, type Command, type CommandResult, type CounterOp } from "../../src/shard/commands.js";
import {
  CounterStateMachine,
  encodeShardImage,
  SHARD_IMAGE_MAGIC,
  type ShardImage,
  type ShardOptions,
} from "../../src/shard/state-machine.js";
import { CorruptionError } from "../../src/util/errors.js";
import { createPrng, type Prng } from "../../src/util/prng.js";
import { bigintJson, INT64_MAX, INT64_MIN } from "./shard-harness.js";

const options: ShardOptions = {
  sessionTimeoutMs: 20_000,
  maxSessions: 12,
  maxRetainedResultsPerSession: 4,
  maxCounters: 200,
  requestIdRetentionMs: 15_000,
};
const T0 = 1_700_000_000_000;
const encoder = new TextEncoder();
const keySpace = [...Array.from({ length: 40 }, (_, i) => encoder.encode(`k${i}`)), new Uint8Array([0xff, 0]), new Uint8Array(256).fill(9)];
const owners = ["", "alice", "bob"];

const immediate = (): Promise<void> => Promise.resolve();

async function imageBytes(image: ShardImage): Promise<Uint8Array> {
  return Buffer.concat(await encodeShardImage(image, immediate));
}

/** A leader's entries: sessions (with owners), sessionless writes, every op kind with TTLs, and clock jumps. */
class Workload {
  private readonly clients: Array<{ id: number; owner: string; seq: number }> = [];
  private requestIds = 0;
  private chosenIds = 0;
  timestampMs = T0;

  constructor(private readonly prng: Prng) {}

  nextEntry(): Uint8Array {
    const prng = this.prng;
    const roll = prng.nextFloat();
    if (roll < 0.04)
      this.timestampMs += 25_000 + prng.nextInt(10_000); // sessions, ids and TTLs expire
    else if (roll < 0.08)
      this.timestampMs -= prng.nextInt(5_000); // a new leader's clock is behind
    else this.timestampMs += prng.nextInt(800);
    const commands: Command[] = [];
    for (let count = 1 + prng.nextInt(4); count > 0; count--) commands.push(this.nextCommand());
    return encodeEntry({ timestampMs: this.timestampMs, commands });
  }

  learn(commands: Uint8Array, results: CommandResult[], owner: (position: number) => string): void {
    void commands;
    results.forEach((result, position) => {
      if (result.ok && result.type === "register") this.clients.push({ id: result.clientId, owner: owner(position), seq: 1 });
    });
    if (this.clients.length > 16) this.clients.splice(0, this.clients.length - 16);
  }

  lastOwners: string[] = [];

  private nextCommand(): Command {
    const prng = this.prng;
    const roll = prng.nextFloat();
    if (roll < 0.1 || this.clients.length === 0) {
      const owner = owners[prng.nextInt(owners.length)]!;
      this.lastOwners.push(owner);
      // The wire carries a register's owner only with a chosen client id.
      return owner === "" ? { type: "register" } : { type: "register", clientId: 5_000_000 + ++this.chosenIds, owner };
    }
    this.lastOwners.push("");
    const ops: CounterOp[] = [];
    for (let count = 1 + prng.nextInt(3); count > 0; count--) ops.push(this.nextOp());
    if (roll < 0.3) {
      const requestId = `r-${prng.chance(0.2) ? prng.nextInt(this.requestIds + 1) : ++this.requestIds}`;
      const owner = owners[prng.nextInt(owners.length)]!;
      return owner === "" ? { type: "write", requestId, ops } : { type: "write", requestId, ops, owner };
    }
    const client = this.clients[prng.nextInt(this.clients.length)]!;
    const owner = client.owner === "" ? {} : { owner: client.owner };
    if (roll < 0.38) return { type: "keepalive", clientId: client.id, ...owner };
    const seq = prng.chance(0.1) ? Math.max(1, client.seq - 1) : client.seq++;
    const firstUnackedSeq = Math.max(1, seq - prng.nextInt(3));
    return { type: "mutate", clientId: client.id, seq, firstUnackedSeq, ops, ...owner };
  }

  private nextOp(): CounterOp {
    const prng = this.prng;
    const key = keySpace[prng.nextInt(keySpace.length)]!;
    const ttl = (): { ttlMs?: number } => (prng.chance(0.2) ? { ttlMs: 500 + prng.nextInt(20_000) } : {});
    const value = (): bigint => (prng.chance(0.1) ? [INT64_MAX, INT64_MIN, -1n][prng.nextInt(3)]! : BigInt(prng.nextInt(100) - 50));
    switch (prng.nextInt(9)) {
      case 0:
      case 1:
        return { kind: "add", key, delta: value(), ...ttl() };
      case 2:
        return { kind: "set", key, value: value(), ...ttl() };
      case 3:
        return { kind: "reset", key };
      case 4:
        return { kind: "cas", key, expectedVersion: prng.nextInt(4), value: value() };
      case 5:
        return { kind: "window", key, delta: BigInt(1 + prng.nextInt(9)), ...ttl() };
      case 6:
        return { kind: "acquire", key, n: 1 + prng.nextInt(2), limit: 5, windowMs: 2_000 };
      default:
        return { kind: "unique", key, items: [encoder.encode(`i${prng.nextInt(30)}`)], ...ttl() };
    }
  }
}

/** Loads `bytes` both ways and checks both against `expected` snapshot bytes; returns the sync copy. */
async function loadBoth(bytes: Uint8Array, expected: Uint8Array, what: string, loadOptions = options): Promise<CounterStateMachine> {
  const loaded = CounterStateMachine.fromImage(bytes, loadOptions);
  expect(Buffer.from(loaded.snapshot()).equals(Buffer.from(expected)), `${what}: fromImage differs`).toBe(true);
  let pauses = 0;
  const loadedAsync = await CounterStateMachine.fromImageAsync(bytes, loadOptions, () => {
    pauses++;
    return Promise.resolve();
  });
  expect(Buffer.from(loadedAsync.snapshot()).equals(Buffer.from(expected)), `${what}: fromImageAsync differs`).toBe(true);
  expect(pauses).toBeGreaterThan(5);
  return loaded;
}

const movesHigh = (key: Uint8Array): boolean => key[0] === 0xff || (key.length > 1 && key[1]! >= "2".charCodeAt(0));

interface Coverage {
  deleted: number;
  images: number;
  withKinds: number;
  withRequestIds: number;
  withFreeSlots: number;
  splits: number;
}

async function runWorkload(seed: number, entries: number, coverage: Coverage): Promise<void> {
  const prng = createPrng(seed);
  const workload = new Workload(prng.fork());
  const leader = new CounterStateMachine(options);
  let copies: CounterStateMachine[] = [];
  let pending: { image: ShardImage; bytes: Uint8Array; snapshot: Uint8Array } | undefined;
  let index = 0;
  for (let entry = 0; entry < entries; entry++) {
    const before = index;
    index += prng.chance(0.05) ? 2 : 1;
    workload.lastOwners = [];
    const data = workload.nextEntry();
    const owners = workload.lastOwners;
    const results = leader.applyEntry(index, data);
    workload.learn(data, results, (position) => owners[position]!);
    coverage.deleted += leader.changesSince(before, () => true, 100_000)?.filter((c) => c.kind === "deleted").length ?? 0;
    for (const copy of copies) {
      const copyResults = copy.applyEntry(index, data);
      if (JSON.stringify(copyResults, bigintJson) !== JSON.stringify(results, bigintJson)) {
        expect(copyResults, `seed ${seed} entry ${entry}: a loaded copy diverged`).toEqual(results);
      }
    }
    if (entry % 150 === 149) {
      // A range split: the moved state leaves every copy alike, and the new shard round-trips too.
      const moved = leader.removeWhere(movesHigh);
      const movedKinds = leader.removeKindsWhere(movesHigh);
      for (const copy of copies) {
        expect(copy.removeWhere(movesHigh)).toEqual(moved);
        expect(copy.removeKindsWhere(movesHigh)).toEqual(movedKinds);
      }
      const child = CounterStateMachine.load(options, index, leader.clockMs, moved, [], movedKinds);
      await loadBoth(await imageBytes(child.captureImage()), child.snapshot(), `seed ${seed} entry ${entry} split child`);
      coverage.splits++;
    }
    if (entry % 25 === 24) {
      if (pending !== undefined) {
        // Captured 25 entries ago; the leader has applied since: neither the image nor its bytes changed.
        expect(Buffer.from(await imageBytes(pending.image)).equals(Buffer.from(pending.bytes))).toBe(true);
        expect(Buffer.from(CounterStateMachine.fromImage(pending.bytes, options).snapshot()).equals(Buffer.from(pending.snapshot))).toBe(
          true,
        );
      }
      const snapshot = leader.snapshot();
      const image = leader.captureImage();
      const bytes = await imageBytes(image);
      const loaded = await loadBoth(bytes, snapshot, `seed ${seed} entry ${entry}`, { ...options, hashSeed: seed });
      expect(loaded.changesRetainedAfter).toBe(leader.appliedIndex);
      pending = { image, bytes, snapshot };
      coverage.images++;
      if (image.kinds.length > 4) coverage.withKinds++;
      if (image.requestIds.length > 0) coverage.withRequestIds++;
      if (image.counters.count < image.counters.rows.length / 24) coverage.withFreeSlots++;
      copies.push(loaded);
      if (copies.length > 3) copies = copies.slice(1);
    }
  }
  for (const copy of copies) expect(Buffer.from(copy.snapshot()).equals(Buffer.from(leader.snapshot()))).toBe(true);
}

describe("shard images round-trip", () => {
  it("fromImage(encodeShardImage(captureImage(m))) equals m and behaves like it (seeded workloads, splits, expiry)", async () => {
    const coverage: Coverage = { deleted: 0, images: 0, withKinds: 0, withRequestIds: 0, withFreeSlots: 0, splits: 0 };
    for (const seed of [1, 2, 3, 4]) await runWorkload(seed, 450, coverage);
    // The property is not vacuous: deletes, kinds, request ids, free slots and splits all happened.
    expect(coverage.images).toBe(72);
    expect(coverage.deleted).toBeGreaterThan(100);
    expect(coverage.withKinds).toBeGreaterThan(30);
    expect(coverage.withRequestIds).toBeGreaterThan(30);
    expect(coverage.withFreeSlots).toBeGreaterThan(30);
    expect(coverage.splits).toBe(12);
  });

  it("a large table spans many slices; slot layout, free slots and arena garbage need not match, the state does", async () => {
    const bigOptions = { ...options, maxCounters: 100_000 };
    const machine = new CounterStateMachine(bigOptions);
    const [registered] = machine.applyEntry(1, encodeEntry({ timestampMs: T0, commands: [{ type: "register" }] }));
    const clientId = (registered as { clientId: number }).clientId;
    let index = 1;
    const mutate = (ops: CounterOp[]): void => {
      index++;
      const [result] = machine.applyEntry(
        index,
        encodeEntry({ timestampMs: T0, commands: [{ type: "mutate", clientId, seq: index, firstUnackedSeq: index, ops }] }),
      );
      expect(result?.ok).toBe(true);
    };
    const keyOf = (i: number): Uint8Array => encoder.encode(`user:${String(i).padStart(10, "0")}:likes`);
    for (let start = 0; start < 40_000; start += 10_000) {
      mutate(
        Array.from({ length: 10_000 }, (_, i) => ({ kind: "add" as const, key: keyOf(start + i), delta: BigInt(start + i) - 20_000n })),
      );
    }
    // Deletes leave free slots and dead arena bytes.
    mutate(Array.from({ length: 5_000 }, (_, i) => ({ kind: "reset" as const, key: keyOf(i * 7) })));
    const image = machine.captureImage();
    expect(image.counters.count).toBe(35_000);
    expect(image.counters.rows.length).toBe(40_000 * 24);
    const loaded = await loadBoth(await imageBytes(image), machine.snapshot(), "large", { ...bigOptions, hashSeed: 12345 });
    expect(loaded.get(keyOf(1))).toEqual({ value: -19_999n, version: 2 });
    expect(loaded.get(keyOf(7))).toBeUndefined();
    // The loaded table reuses free slots and keeps working: same future, same state.
    const ops = Array.from({ length: 2_000 }, (_, i) => ({ kind: "add" as const, key: keyOf(i * 3), delta: 1n }));
    const data = encodeEntry({
      timestampMs: T0 + 1,
      commands: [{ type: "mutate", clientId, seq: index + 1, firstUnackedSeq: index + 1, ops }],
    });
    expect(loaded.applyEntry(index + 1, data)).toEqual(machine.applyEntry(index + 1, data));
    expect(Buffer.from(loaded.snapshot()).equals(Buffer.from(machine.snapshot()))).toBe(true);
    expect(loaded.captureImage().counters.rows.length).toBe(40_000 * 24);
  });

  it("a released image's memory is reused by the capture it is passed to, and only then", async () => {
    const machine = populated();
    const first = machine.captureImage();
    const second = machine.captureImage();
    expect(second.counters.rows.buffer).not.toBe(first.counters.rows.buffer);
    const spare = CounterStateMachine.imageBuffers(first);
    const third = machine.captureImage(spare);
    expect(third.counters.rows.buffer).toBe(first.counters.rows.buffer);
    expect(third.counters.arena.buffer).toBe(first.counters.arena.buffer);
    expect(machine.captureImage().counters.rows.buffer).not.toBe(first.counters.rows.buffer);
    expect(CounterStateMachine.fromImage(await imageBytes(third), options).snapshot()).toEqual(machine.snapshot());
    // A spare too small for the grown table is not used.
    const small = CounterStateMachine.imageBuffers(
      CounterStateMachine.fromImage(await imageBytes(new CounterStateMachine(options).captureImage()), options).captureImage(),
    );
    const grown = machine.captureImage(small);
    expect(CounterStateMachine.fromImage(await imageBytes(grown), options).snapshot()).toEqual(machine.snapshot());
  });

  it("prepareImageBuffers readies memory that the next capture copies into", async () => {
    const machine = populated();
    let pauses = 0;
    const prepared = await machine.prepareImageBuffers(undefined, () => {
      pauses++;
      return Promise.resolve();
    });
    expect(pauses).toBeGreaterThanOrEqual(2);
    const image = machine.captureImage(prepared);
    expect(image.counters.rows.buffer.byteLength).toBeGreaterThan(image.counters.rows.length);
    expect(CounterStateMachine.fromImage(await imageBytes(image), options).snapshot()).toEqual(machine.snapshot());
    // A released image large enough is kept rather than replaced.
    const again = await machine.prepareImageBuffers(CounterStateMachine.imageBuffers(image), immediate);
    expect(machine.captureImage(again).counters.rows.buffer).toBe(image.counters.rows.buffer);
  });

  it("node:zlib's crc32 (the server's) writes and reads the same bytes as the pure-JS one", async () => {
    const machine = populated();
    const bytes = await imageBytes(machine.captureImage());
    const zlibBytes = Buffer.concat(await encodeShardImage(machine.captureImage(), immediate, zlibCrc32));
    expect(Buffer.compare(zlibBytes, bytes)).toBe(0);
    const loaded = await CounterStateMachine.fromImageAsync(bytes, options, immediate, zlibCrc32);
    expect(Buffer.compare(Buffer.from(loaded.snapshot()), Buffer.from(machine.snapshot()))).toBe(0);
  });

  it("an empty machine round-trips", async () => {
    const machine = new CounterStateMachine(options);
    const bytes = await imageBytes(machine.captureImage());
    // Header, the empty table's index (2,048 entries of 8 bytes), and three empty record counts.
    expect(bytes.length).toBe(112 + 2048 * 8 + 4 + 4 + 4);
    expect(CounterStateMachine.fromImage(bytes, options).snapshot()).toEqual(machine.snapshot());
  });

  it("encodeShardImage pauses between slices of at most 1 MiB and does not copy the counter blocks", async () => {
    const machine = new CounterStateMachine({ ...options, maxCounters: 100_000 });
    const image = machine.captureImage();
    const big: ShardImage = {
      ...image,
      counters: { count: 0, rows: new Uint8Array(24 * 100_000), arena: new Uint8Array(3 << 20), index: new Int32Array(4096) },
    };
    let pauses = 0;
    const blocks = await encodeShardImage(big, () => {
      pauses++;
      return Promise.resolve();
    });
    expect(pauses).toBeGreaterThanOrEqual(3 + 3);
    expect(blocks[0]!.length).toBe(112);
    expect(blocks[1]).toBe(big.counters.rows);
    expect(blocks[2]).toBe(big.counters.arena);
    expect(new DataView(blocks[0]!.buffer, blocks[0]!.byteOffset).getUint32(0)).toBe(SHARD_IMAGE_MAGIC);
  });
});

/** A machine whose image has every block non-empty; counters k0, k1, k2 sit in slots 0, 1, 2. */
function populated(): CounterStateMachine {
  const machine = new CounterStateMachine(options);
  const [registered] = machine.applyEntry(
    1,
    encodeEntry({ timestampMs: T0, commands: [{ type: "register", clientId: 77, owner: "alice" }] }),
  );
  const clientId = (registered as { clientId: number }).clientId;
  expect(clientId).toBe(77);
  const ops: CounterOp[] = [
    { kind: "add", key: encoder.encode("k0"), delta: 5n },
    { kind: "add", key: encoder.encode("k1"), delta: -5n, ttlMs: 60_000 },
    { kind: "set", key: encoder.encode("k2"), value: INT64_MAX },
    { kind: "window", key: encoder.encode("w"), delta: 3n },
    { kind: "unique", key: encoder.encode("u"), items: [encoder.encode("x")] },
  ];
  machine.applyEntry(
    2,
    encodeEntry({ timestampMs: T0 + 1, commands: [{ type: "mutate", clientId, seq: 1, firstUnackedSeq: 1, ops, owner: "alice" }] }),
  );
  machine.applyEntry(
    3,
    encodeEntry({
      timestampMs: T0 + 2,
      commands: [{ type: "write", requestId: "req-1", ops: [{ kind: "add", key: encoder.encode("k0"), delta: 1n }] }],
    }),
  );
  return machine;
}

/** The image with its rows changed by `damage` (then encoded with valid checksums). */
async function withRows(
  machine: CounterStateMachine,
  damage: (rows: { f64: Float64Array; u32: Uint32Array; u16: Uint16Array; bytes: Uint8Array }) => void,
): Promise<Uint8Array> {
  const image = machine.captureImage();
  const bytes = image.counters.rows.slice();
  damage({ f64: new Float64Array(bytes.buffer), u32: new Uint32Array(bytes.buffer), u16: new Uint16Array(bytes.buffer), bytes });
  return imageBytes({ ...image, counters: { ...image.counters, rows: bytes } });
}

async function expectCorrupt(bytes: Uint8Array, pattern?: RegExp, loadOptions: ShardOptions = options): Promise<void> {
  expect(() => CounterStateMachine.fromImage(bytes, loadOptions)).toThrow(pattern ?? CorruptionError);
  expect(() => CounterStateMachine.fromImage(bytes, loadOptions)).toThrow(CorruptionError);
  await expect(CounterStateMachine.fromImageAsync(bytes, loadOptions, immediate)).rejects.toThrow(CorruptionError);
}

/** Options with another hash seed: the image's saved index does not apply, so every key is hashed and indexed again. */
const rehashing: ShardOptions = { ...options, hashSeed: 0x1234_5678 };

describe("damaged shard images are a CorruptionError", () => {
  it("a flipped byte anywhere: header, rows, arena, sessions, kinds, request ids", async () => {
    const blocks = await encodeShardImage(populated().captureImage(), immediate);
    expect(blocks.length).toBe(7);
    for (const block of blocks) expect(block.length).toBeGreaterThan(0);
    const bytes = Buffer.concat(blocks);
    let offset = 0;
    for (const block of blocks) {
      for (const at of new Set([0, 1, block.length >> 1, block.length - 1])) {
        for (const bit of [0x01, 0x80]) {
          const damaged = Uint8Array.from(bytes);
          damaged[offset + at]! ^= bit;
          await expectCorrupt(damaged);
          // The server's checksum (node:zlib's) sees the same damage.
          expect(() => CounterStateMachine.fromImage(damaged, options, zlibCrc32)).toThrow(CorruptionError);
        }
      }
      offset += block.length;
    }
    for (let at = 0; at < 112; at++) await expectCorrupt(Object.assign(Uint8Array.from(bytes), { [at]: bytes[at]! ^ 0x04 }));
  });

  // Every 7th length of the image, each parsed three times: ~50 s on a busy 2-core box, near the
  // suite's 60 s default, so it has a budget of its own (a timeout is not a finding here).
  it("truncated, extended, empty, or with a wrong magic", { timeout: 240_000 }, async () => {
    const bytes = await imageBytes(populated().captureImage());
    for (let length = 0; length < bytes.length; length += 7) await expectCorrupt(bytes.subarray(0, length));
    await expectCorrupt(bytes.subarray(0, bytes.length - 1));
    await expectCorrupt(Buffer.concat([bytes, new Uint8Array(1)]), /after the last block/);
    const wrongMagic = Uint8Array.from(bytes);
    wrongMagic[0] = 0x00;
    await expectCorrupt(wrongMagic, /magic/);
  });

  it("an image of the other byte order is refused, not misread", async () => {
    const bytes = Uint8Array.from(await imageBytes(populated().captureImage()));
    bytes[6] = bytes[6] === 1 ? 2 : 1;
    new DataView(bytes.buffer).setUint32(108, crc32(bytes.subarray(0, 108)));
    await expectCorrupt(bytes, /other byte order/);
  });

  it("rows that contradict the state, under valid checksums", async () => {
    const machine = populated();
    const applied = machine.appliedIndex;
    await expectCorrupt(await withRows(machine, ({ f64 }) => (f64[1] = applied + 1)), /version 4 outside \[1, applied 3\]/);
    await expectCorrupt(await withRows(machine, ({ f64 }) => (f64[3 + 1] = 0)), /version 0/);
    await expectCorrupt(await withRows(machine, ({ f64 }) => (f64[1] = 1.5)), /version 1.5/);
    await expectCorrupt(await withRows(machine, ({ f64 }) => (f64[1] = Number.NaN)), /version NaN/);
    // Row 1 names row 0's key: found when the keys are indexed again (another seed). With the saved
    // index no key is hashed: the checksums stand for the index (its checks are below).
    await expectCorrupt(await withRows(machine, ({ u32 }) => (u32[6 + 4] = u32[4]!)), /same key/, rehashing);
    await expectCorrupt(await withRows(machine, ({ u32 }) => (u32[4] = 1 << 30)), /outside the arena/);
    await expectCorrupt(await withRows(machine, ({ u16 }) => (u16[10] = 300)), /key of 300 bytes/);
    await expectCorrupt(await withRows(machine, ({ u16 }) => (u16[11] = 1)), /flags/);
    // A free row (key length 0) that still holds a value, and the count no longer matching.
    await expectCorrupt(await withRows(machine, ({ u16 }) => (u16[12 + 10] = 0)), /free counter row 1/);
    await expectCorrupt(
      await withRows(machine, ({ bytes }) => bytes.fill(0, 24, 48)),
      /2 counters in the rows; the image declares 3/,
      rehashing,
    );
    await expectCorrupt(await withRows(machine, ({ bytes }) => bytes.fill(0, 24, 48)), /names no counter row/);
    const image = machine.captureImage();
    await expectCorrupt(
      await imageBytes({ ...image, counters: { ...image.counters, rows: image.counters.rows.subarray(0, 30) } }),
      /multiple of 24/,
    );
    await expectCorrupt(
      await imageBytes({ ...image, counters: { ...image.counters, count: 2 } }),
      /more than the 2 counters the image declares/,
    );
    // A TTL record (k1's) whose counter is gone: the kinds are checked against the loaded counters.
    const rows = image.counters.rows.slice();
    rows.fill(0, 24, 48);
    await expectCorrupt(
      await imageBytes({ ...image, counters: { ...image.counters, rows, count: 2 } }),
      /TTL record of .*k1.* without its counter/,
      rehashing,
    );
    // The saved index must name every counter row once and nothing else.
    await expectCorrupt(await imageBytes({ ...image, counters: { ...image.counters, rows, count: 2 } }), /names no counter row/);
    const twice = image.counters.index.slice();
    const named = [...twice.keys()].filter((i) => i % 2 === 0 && twice[i] !== 0);
    twice[named[1]!] = twice[named[0]!]!;
    await expectCorrupt(await imageBytes({ ...image, counters: { ...image.counters, index: twice } }), /twice/);
    const dropped = image.counters.index.slice();
    dropped[named[0]!] = 0;
    await expectCorrupt(await imageBytes({ ...image, counters: { ...image.counters, index: dropped } }), /names 2 counter rows/);
    await expectCorrupt(await imageBytes({ ...image, counters: { ...image.counters, index: new Int32Array(6) } }), /power of two/);
    // Another seed: the saved index is not used, and the image still loads exactly.
    expect(CounterStateMachine.fromImage(await imageBytes(image), rehashing).snapshot()).toEqual(machine.snapshot());
    // The intact image still loads.
    expect(CounterStateMachine.fromImage(await imageBytes(image), options).snapshot()).toEqual(machine.snapshot());
  });
});
