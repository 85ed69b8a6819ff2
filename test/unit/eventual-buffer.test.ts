/**
 * The eventual buffer (src/server/eventual): durable appends with group commit, replay after a
 * torn tail, trimming only after a flush is answered, and the exactly-once re-send of a flush
 * after a crash with the same session and seq (against a fake shard that dedupes like a session).
 */
import { appendFileSync, constants, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { open as fsOpen } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigError, parseClusterConfig } from "../../src/server/config/config.js";
import { EventualBuffer } from "../../src/server/eventual/buffer.js";
import { decodeRecord, encodeRecord, type BufferRecord } from "../../src/server/eventual/buffer-records.js";
import { readFrames } from "../../src/server/eventual/buffer-log.js";
import { Flusher, markerKey } from "../../src/server/eventual/flusher.js";
import { slotOf } from "../../src/meta/slots.js";
import { eventualMetrics } from "../../src/server/eventual/metrics.js";
import type { ShardWriter } from "../../src/server/eventual/shard-writer.js";
import type { TallyNode } from "../../src/server/node.js";
import { SessionExpiredError, UnavailableError } from "../../src/util/errors.js";
import { componentLogger } from "../../src/util/log.js";
import type { PackedAdd } from "../../src/util/packed-adds.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tally-eventual-"));
  dirs.push(dir);
  return dir;
}

const key = (text: string) => new TextEncoder().encode(text);
/** The target of a /proc fd link, or undefined once the fd closed. */
function readlinkSafe(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}
let clock = 1_000;

function open(dir: string, compactBytes = 1 << 30): Promise<EventualBuffer> {
  return EventualBuffer.open({ dataDir: dir, fsync: true, compactBytes, nowMs: () => clock });
}

function pendingOf(buffer: EventualBuffer, text: string): bigint {
  const unflushed = buffer.state.unflushed(key(text));
  return unflushed.pending + unflushed.inflight;
}

describe("eventual buffer", () => {
  it("sums appended adds per key and replays them after a restart", async () => {
    const dir = dataDir();
    const buffer = await open(dir);
    await buffer.add([
      { key: key("a"), delta: 2n },
      { key: key("b"), delta: -5n },
    ]);
    await buffer.add([{ key: key("a"), delta: 3n }]);
    expect(pendingOf(buffer, "a")).toBe(5n);
    await buffer.close();
    const again = await open(dir);
    expect(pendingOf(again, "a")).toBe(5n);
    expect(pendingOf(again, "b")).toBe(-5n);
    expect(again.tornBytes).toBe(0);
    await again.close();
  });

  it("group-commits: adds that arrive during one fsync share the next", async () => {
    const buffer = await open(dataDir());
    await Promise.all(Array.from({ length: 200 }, (_, i) => buffer.add([{ key: key(`k${i % 7}`), delta: 1n }])));
    expect(buffer.groupsWritten).toBeLessThanOrEqual(3);
    expect(buffer.state.unflushedAdds()).toBe(200);
    await buffer.close();
  });

  it("with fsync on, writes each group synchronized (O_DSYNC: one write, no fdatasync); with it off, neither", async () => {
    // The file's open flags from /proc (Linux); O_DSYNC is 0o10000 there.
    const flagsOf = (dir: string): number => {
      const target = join(dir, "eventual", "buffer.log");
      for (const fd of readdirSync("/proc/self/fd"))
        if (readlinkSafe(`/proc/self/fd/${fd}`) === target)
          return Number.parseInt(/^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))![1]!, 8);
      throw new Error(`${target} is not open`);
    };
    const probe = await fsOpen(tmpdir(), "r");
    const fileHandle = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
    await probe.close();
    const datasync = vi.spyOn(fileHandle, "datasync");
    try {
      for (const fsync of [true, false]) {
        const dir = dataDir();
        const buffer = await EventualBuffer.open({ dataDir: dir, fsync, compactBytes: 1 << 30, nowMs: () => clock });
        await Promise.all(Array.from({ length: 20 }, (_, i) => buffer.add([{ key: key(`k${i}`), delta: 1n }])));
        if (process.platform === "linux") expect((flagsOf(dir) & constants.O_DSYNC) !== 0).toBe(fsync);
        await buffer.close();
        const again = await EventualBuffer.open({ dataDir: dir, fsync, compactBytes: 1 << 30, nowMs: () => clock });
        expect(again.state.unflushedAdds()).toBe(20);
        await again.close();
      }
      if (process.platform === "linux") expect(datasync).not.toHaveBeenCalled();
    } finally {
      datasync.mockRestore();
    }
  });

  it("cuts a torn tail off on replay and keeps every complete record", async () => {
    const dir = dataDir();
    const buffer = await open(dir);
    await buffer.add([{ key: key("a"), delta: 7n }]);
    await buffer.close();
    const path = join(dir, "eventual", "buffer.log");
    const whole = statSync(path).size;
    // A crash in the middle of the next write: a frame header that promises more than was written.
    const torn = Buffer.alloc(12);
    torn.writeUInt32LE(40, 0);
    appendFileSync(path, torn);
    const again = await open(dir);
    expect(again.tornBytes).toBe(12);
    expect(statSync(path).size).toBe(whole);
    expect(pendingOf(again, "a")).toBe(7n);
    await again.add([{ key: key("a"), delta: 1n }]);
    await again.close();
    const third = await open(dir);
    expect(pendingOf(third, "a")).toBe(8n);
    await third.close();
  });

  it("trims a flush only after it is answered, and keeps the session's last seq", async () => {
    const dir = dataDir();
    const buffer = await open(dir, 4096);
    await buffer.setSession(1, 42);
    await buffer.add(Array.from({ length: 200 }, (_, i) => ({ key: key(`key-${i}`), delta: BigInt(i + 1) })));
    const adds: PackedAdd[] = [...buffer.pendingKeys()].map((entry) => ({ key: entry.key, delta: entry.delta }));
    const flush = await buffer.beginFlush(1, adds);
    expect(flush.seq).toBe(1);
    // Cut but unanswered: still unflushed (in flight), still in the file.
    expect(buffer.state.pending.size).toBe(0);
    expect(pendingOf(buffer, "key-9")).toBe(10n);
    const before = statSync(join(dir, "eventual", "buffer.log")).size;
    await buffer.finishFlush(flush.flushId, false);
    await buffer.add([{ key: key("late"), delta: 1n }]); // lets the compaction (between groups) run first
    expect(pendingOf(buffer, "key-9")).toBe(0n);
    expect(statSync(join(dir, "eventual", "buffer.log")).size).toBeLessThan(before);
    await buffer.close();
    const again = await open(dir);
    expect(again.state.flushes.size).toBe(0);
    expect(again.state.sessions.get(1)).toEqual({ clientId: 42, lastSeq: 1 });
    expect(pendingOf(again, "late")).toBe(1n);
    const next = await again.beginFlush(1, [{ key: key("late"), delta: 1n }]);
    expect(next.seq).toBe(2);
    await again.close();
  });

  it("encodes every record kind so that it decodes to itself", () => {
    const records: BufferRecord[] = [
      { type: "adds", atMs: 5, adds: [{ key: key("x"), delta: -(2n ** 63n) }] },
      {
        type: "flush",
        flush: { flushId: 3, shardId: 2, clientId: 2 ** 52, seq: 9, oldestMs: 1, cutMs: 2, adds: [{ key: key("y"), delta: 1n }] },
      },
      {
        type: "flush",
        flush: {
          flushId: 4,
          shardId: 2,
          clientId: 5,
          seq: 10,
          oldestMs: 1,
          cutMs: 2,
          adds: [{ key: key("y"), delta: -3n }],
          marker: { key: key("\0m{1}"), before: 2n ** 40n },
        },
      },
      { type: "done", flushId: 3, requeue: true },
      { type: "session", shardId: 7, clientId: 11, lastSeq: 12 },
    ];
    for (const record of records) expect(decodeRecord(encodeRecord(record))).toEqual(record);
  });
});

/** A shard that applies a (clientId, seq) once, like the state machine's session table. */
class FakeShard {
  readonly applied = new Map<string, PackedAdd[]>();
  values = new Map<string, bigint>();
  loseReplies = false;
  /** No leader: nothing applies, nothing answers. */
  down = false;
  sessions = 0;
  expired = new Set<number>();

  writer(): ShardWriter {
    return {
      registerSession: async () => ++this.sessions + 1000,
      addBatch: async (_shard: number, clientId: number, seq: number, adds: PackedAdd[]) => {
        if (this.down) throw new UnavailableError("no leader");
        if (this.expired.has(clientId)) throw new SessionExpiredError("expired");
        const id = `${clientId}/${seq}`;
        if (!this.applied.has(id)) {
          this.applied.set(id, adds);
          for (const add of adds) {
            const k = Buffer.from(add.key).toString();
            this.values.set(k, (this.values.get(k) ?? 0n) + add.delta);
          }
        }
        if (this.loseReplies) throw new UnavailableError("reply lost");
      },
      get: async (_shard: number, k: Uint8Array) => ({ value: String(this.values.get(Buffer.from(k).toString()) ?? 0n) }),
      close: () => undefined,
    } as unknown as ShardWriter;
  }
}

function flusherFor(buffer: EventualBuffer, shard: FakeShard): Flusher {
  const node = {
    replicas: new Map([[1, { shardId: 1, descriptor: { slotStart: 0, slotEnd: 16384 } }]]),
    map: { shards: [] },
  } as unknown as TallyNode;
  const options = { flushIntervalMs: 20, requestTimeoutMs: 1000, maxBatchOps: 10_000, maxEntryBytes: 4 << 20, sessionTimeoutMs: 600_000 };
  return new Flusher(
    node,
    buffer,
    shard.writer(),
    options,
    eventualMetrics(buffer, undefined, () => clock),
    componentLogger("test"),
  );
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("eventual flusher", () => {
  it("re-sends an unanswered flush after a crash with the same session and seq, and it counts once", async () => {
    const dir = dataDir();
    const shard = new FakeShard();
    const buffer = await open(dir);
    await buffer.add([
      { key: key("views"), delta: 5n },
      { key: key("clicks"), delta: 2n },
    ]);
    shard.loseReplies = true; // applied by the shard, but the node never hears so
    const flusher = flusherFor(buffer, shard);
    flusher.start();
    await until(() => shard.applied.size === 1);
    const [sent] = [...buffer.state.flushes.values()];
    // "Crash": stop without answering the flush (close returns while the retry backs off).
    await flusher.close();
    shard.loseReplies = false;
    await buffer.close();
    const log = readFileSync(join(dir, "eventual", "buffer.log"));
    expect(readFrames(log).records.length).toBeGreaterThan(0);

    const restarted = await open(dir);
    const [replayed] = [...restarted.state.flushes.values()];
    expect(replayed).toBeDefined();
    expect({ clientId: replayed!.clientId, seq: replayed!.seq }).toEqual({ clientId: sent!.clientId, seq: sent!.seq });
    const again = flusherFor(restarted, shard);
    again.start();
    await until(() => restarted.state.flushes.size === 0 && restarted.state.pending.size === 0);
    expect(shard.values.get("views")).toBe(5n);
    expect(shard.values.get("clicks")).toBe(2n);
    expect(shard.applied.size).toBe(1);
    await restarted.add([{ key: key("views"), delta: 1n }]);
    await again.awaitFlushed(key("views"));
    expect(shard.values.get("views")).toBe(6n);
    await again.close();
    await restarted.close();
  });

  // A node down longer than the session timeout with a flush in flight: the session is gone, so
  // the shard's marker counter (in the flush's own atomic batch) says whether it applied.
  for (const applied of [false, true]) {
    it(`after its session expired, a replayed flush that ${applied ? "had" : "had not"} applied counts exactly once`, async () => {
      const dir = dataDir();
      const shard = new FakeShard();
      const buffer = await open(dir);
      await buffer.add([{ key: key("v"), delta: 3n }]);
      // The flush reaches the shard and applies, or the shard is unreachable; either way no answer.
      shard.loseReplies = applied;
      shard.down = !applied;
      const flusher = flusherFor(buffer, shard);
      flusher.start();
      await until(() => buffer.state.flushes.size === 1 && (applied ? shard.applied.size === 1 : true));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await flusher.close();
      await buffer.close();
      shard.loseReplies = false;
      shard.down = false;
      shard.expired.add(1001); // down past sessionTimeoutMs: the session is gone
      expect(shard.applied.size).toBe(applied ? 1 : 0);

      const restarted = await open(dir);
      const [replayed] = [...restarted.state.flushes.values()];
      expect(replayed?.marker?.before).toBe(0n);
      const again = flusherFor(restarted, shard);
      again.start();
      await until(() => restarted.state.flushes.size === 0 && restarted.state.pending.size === 0);
      expect(shard.values.get("v")).toBe(3n);
      expect(pendingOf(restarted, "v")).toBe(0n);
      // The next flush continues from the marker's value (1 flush applied so far).
      await restarted.add([{ key: key("v"), delta: 1n }]);
      await again.awaitFlushed(key("v"));
      expect(shard.values.get("v")).toBe(4n);
      const marker = [...shard.values.keys()].find((k) => k.startsWith("\0tally:eventual:"));
      expect(shard.values.get(marker!)).toBe(2n);
      await again.close();
      await restarted.close();
    });
  }

  it("re-sends two replayed flushes of one shard in order (the first applied, its done record lost)", async () => {
    const dir = dataDir();
    const shard = new FakeShard();
    const buffer = await open(dir);
    await buffer.setSession(1, 77);
    await buffer.add([{ key: key("v"), delta: 3n }]);
    const marker = (before: bigint) => ({ key: key("\0tally:eventual:node-0:{0}"), before });
    await buffer.beginFlush(1, [{ key: key("v"), delta: 3n }], marker(0n));
    await buffer.add([{ key: key("v"), delta: 4n }]);
    await buffer.beginFlush(1, [{ key: key("v"), delta: 4n }], marker(1n));
    await buffer.close();
    // The shard applied the first (seq 1) and answered; the node cut the second, then crashed.
    shard.applied.set("77/1", []);
    shard.values.set("v", 3n);
    shard.values.set("\0tally:eventual:node-0:{0}", 1n);
    const restarted = await open(dir);
    expect([...restarted.state.flushes.values()].map((flush) => flush.seq)).toEqual([1, 2]);
    const flusher = flusherFor(restarted, shard);
    flusher.start();
    await until(() => restarted.state.flushes.size === 0);
    expect(shard.values.get("v")).toBe(7n);
    await restarted.add([{ key: key("v"), delta: 1n }]);
    await flusher.awaitFlushed(key("v"));
    expect(shard.values.get("v")).toBe(8n);
    await flusher.close();
    await restarted.close();
  });

  it("still drops a replayed flush without a marker (an older version's) whose session expired", async () => {
    const dir = dataDir();
    const shard = new FakeShard();
    const buffer = await open(dir);
    await buffer.setSession(1, 77);
    await buffer.add([{ key: key("v"), delta: 3n }]);
    await buffer.beginFlush(1, [{ key: key("v"), delta: 3n }]);
    await buffer.close();
    shard.expired.add(77);
    const restarted = await open(dir);
    const flusher = flusherFor(restarted, shard);
    flusher.start();
    await until(() => restarted.state.flushes.size === 0);
    expect(shard.values.get("v")).toBeUndefined();
    await flusher.close();
    await restarted.close();
  });

  it("picks a marker key whose slot is in the shard's range", () => {
    for (const range of [
      { start: 0, end: 16384 },
      { start: 100, end: 101 },
      { start: 8192, end: 10240 },
    ]) {
      const slot = slotOf(markerKey(3, range));
      expect(slot).toBeGreaterThanOrEqual(range.start);
      expect(slot).toBeLessThan(range.end);
    }
  });
});

describe("cluster.yaml eventual:", () => {
  const node = (id: number) => ({ id, client: `127.0.0.1:${7000 + id}`, peer: `127.0.0.1:${7100 + id}`, dataDir: `/tmp/n${id}` });
  const config = (eventual: unknown) => ({ nodes: [node(1)], cluster: { replicationFactor: 1, shards: 1 }, eventual });

  it("defaults when absent, and takes prefixes, interval, fsync and compaction size", () => {
    expect(parseClusterConfig(config(undefined)).eventual).toEqual({
      prefixes: [],
      flushIntervalMs: 100,
      fsync: true,
      bufferCompactBytes: 4 << 20,
      refuseAfterLeaderSilenceMs: 300,
    });
    const parsed = parseClusterConfig(
      config({ prefixes: ["views:"], flushIntervalMs: 50, fsync: false, bufferCompactBytes: 8192, refuseAfterLeaderSilenceMs: 0 }),
    );
    expect(parsed.eventual).toEqual({
      prefixes: ["views:"],
      flushIntervalMs: 50,
      fsync: false,
      bufferCompactBytes: 8192,
      refuseAfterLeaderSilenceMs: 0,
    });
    const fromEnv = parseClusterConfig(config(undefined), "<inline>", { env: { TALLY_EVENTUAL_PREFIXES: '["a:", "b:"]' } });
    expect(fromEnv.eventual.prefixes).toEqual(["a:", "b:"]);
  });

  it("refuses bad values with a message naming the field", () => {
    for (const [bad, fragment] of [
      [{ prefixes: "views:" }, "eventual.prefixes must be a list"],
      [{ prefixes: [""] }, "eventual.prefixes[0] must be a non-empty string"],
      [{ flushIntervalMs: 0 }, "eventual.flushIntervalMs must be an integer between 1 and 10000"],
      [{ fsync: "yes" }, "eventual.fsync must be true or false"],
      [{ refuseAfterLeaderSilenceMs: -1 }, "eventual.refuseAfterLeaderSilenceMs must be an integer between 0 and 600000"],
      [{ flush: 1 }, 'unknown field "flush"'],
      [[1], "eventual must be a mapping"],
    ] as const) {
      expect(() => parseClusterConfig(config(bad))).toThrow(ConfigError);
      expect(() => parseClusterConfig(config(bad))).toThrow(fragment);
    }
  });
});
