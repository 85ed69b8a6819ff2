/**
 * The shard's top-K index (src/shard/kinds/topk-index.ts) against a full scan: random sequences of
 * adds, decrements, sets, resets, TTLs (due but not yet deleted, and deleted), failed atomic
 * batches (rolled back), keys of other kinds under the prefix, range splits (which remove counters
 * without a change-log record), snapshot restores and loads from records, with queries of random
 * prefixes, k and read clocks in between. Every answer must equal the scan's; the index must have
 * answered most queries without scanning (else it would be a scan with extra steps).
 */
import { describe, expect, it } from "vitest";
import type { CounterOp } from "../../src/shard/commands.js";
import { decodeKindRecord } from "../../src/shard/kind-table.js";
import { CounterStateMachine } from "../../src/shard/state-machine.js";
import type { ShardOptions } from "../../src/shard/shard-options.js";
import { capacityFor, type TopKIndex } from "../../src/shard/kinds/topk-index.js";
import { createPrng, type Prng } from "../../src/util/prng.js";
import { add, key, reset, set, ShardDriver } from "./shard-harness.js";

const T0 = 1_700_000_000_000;
const INT64_MAX = (1n << 63n) - 1n;
const options: ShardOptions = { sessionTimeoutMs: 1e12, maxSessions: 100, maxRetainedResultsPerSession: 8 };
const PREFIXES = ["", "p", "p:", "p:1", "p:12", "q:", "zz"];

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1");

/** The top k by a scan of exported records: counters with the prefix whose TTL is not due at the read's clock. */
function scanTopK(machine: CounterStateMachine, prefix: string, k: number, readNowMs: number): Array<[string, bigint]> {
  const records = machine.exportRecords();
  const nowMs = Math.max(machine.clockMs, readNowMs);
  const expiresAt = new Map<string, number>();
  for (const [k2, bytes] of records.kinds) expiresAt.set(text(k2), decodeKindRecord(k2, bytes).expiresAtMs);
  const rows: Array<[string, bigint]> = [];
  for (const [k2, { value }] of records.counters) {
    const name = text(k2);
    const expiry = expiresAt.get(name) ?? 0;
    if (name.startsWith(prefix) && !(expiry !== 0 && expiry <= nowMs)) rows.push([name, value]);
  }
  rows.sort((a, b) => (a[1] !== b[1] ? (a[1] > b[1] ? -1 : 1) : Buffer.compare(Buffer.from(a[0], "latin1"), Buffer.from(b[0], "latin1"))));
  return rows.slice(0, k);
}

function indexOf(machine: CounterStateMachine): TopKIndex {
  return (machine as unknown as { reads: { topIndex: TopKIndex } }).reads.topIndex;
}

function randomKey(prng: Prng): string {
  const n = prng.nextInt(160);
  return prng.chance(0.8) ? `p:${n}` : prng.chance(0.5) ? `q:${n}` : `pz${n}`;
}

function randomOp(prng: Prng): CounterOp {
  const k = randomKey(prng);
  const roll = prng.nextInt(100);
  if (roll < 45) return add(k, BigInt(prng.nextInt(100) + 1));
  if (roll < 65) return add(k, -BigInt(prng.nextInt(100) + 1));
  if (roll < 72) return set(k, BigInt(prng.nextInt(200) - 50));
  if (roll < 80) return reset(k);
  if (roll < 88) return { kind: "add", key: key(k), delta: BigInt(prng.nextInt(20)), ttlMs: 1 + prng.nextInt(4_000) };
  if (roll < 92) return { kind: "unique", key: key(`p:u${prng.nextInt(10)}`), items: [key(`item${prng.nextInt(1000)}`)] };
  return add(k, 0n);
}

class Run {
  driver: ShardDriver;
  client: number;
  seq = 0;
  queries = 0;

  constructor(readonly prng: Prng) {
    this.driver = new ShardDriver(new CounterStateMachine(options));
    this.client = this.driver.register(T0);
  }

  get machine(): CounterStateMachine {
    return this.driver.machine;
  }

  mutate(ops: CounterOp[]): void {
    const timestampMs = this.driver.timestampMs + this.prng.nextInt(1_500);
    this.seq++;
    this.driver.mutate(this.client, this.seq, ops, this.seq, timestampMs);
  }

  /** A batch that fails on its last op (a floor), so every earlier op is rolled back. */
  failingBatch(): void {
    const ops = Array.from({ length: 1 + this.prng.nextInt(4) }, () => randomOp(this.prng));
    ops.push(add(randomKey(this.prng), -(INT64_MAX >> 1n), 0n));
    this.mutate(ops);
  }

  /** A range split as core/apply.ts does it: an empty entry, then the moved keys leave (no change-log record). */
  split(): void {
    const timestampMs = this.driver.timestampMs;
    this.machine.applyEntry(++this.driver.index, new Uint8Array(0));
    this.driver.timestampMs = timestampMs;
    const moves = (k: Uint8Array) => (k[k.length - 1]! & 3) === 1;
    this.machine.removeWhere(moves);
    this.machine.removeKindsWhere(moves);
  }

  restore(): void {
    const timestampMs = this.driver.timestampMs;
    this.driver = new ShardDriver(CounterStateMachine.restore(this.machine.snapshot(), options));
    this.driver.timestampMs = timestampMs;
  }

  loadRecords(): void {
    const timestampMs = this.driver.timestampMs;
    const records = this.machine.exportRecords();
    const loaded = CounterStateMachine.load(
      options,
      this.machine.appliedIndex,
      this.machine.clockMs,
      [...records.counters],
      [...records.sessions],
      [...records.kinds],
    );
    this.driver = new ShardDriver(loaded);
    this.driver.timestampMs = timestampMs;
  }

  query(): void {
    const prefix = PREFIXES[this.prng.nextInt(PREFIXES.length)]!;
    const k = this.prng.chance(0.1) ? 1 + this.prng.nextInt(300) : 1 + this.prng.nextInt(20);
    const readNowMs = this.prng.chance(0.5) ? 0 : this.driver.timestampMs + this.prng.nextInt(3_000);
    const got = this.machine.topK(key(prefix), k, readNowMs).map((entry): [string, bigint] => [text(entry.key), entry.value]);
    expect(got, `topK(${JSON.stringify(prefix)}, ${k}) at ${readNowMs}`).toEqual(scanTopK(this.machine, prefix, k, readNowMs));
    this.queries++;
  }
}

describe("top-K index", () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`answers exactly what a scan answers over random operations (seed ${seed})`, () => {
      const run = new Run(createPrng(seed));
      let scans = 0;
      let queries = 0;
      const account = () => {
        const stats = indexOf(run.machine).stats;
        scans += stats.scans;
        queries += stats.queries;
      };
      for (let step = 0; step < 3_000; step++) {
        const roll = run.prng.nextInt(1_000);
        if (roll < 500) run.mutate(Array.from({ length: 1 + run.prng.nextInt(4) }, () => randomOp(run.prng)));
        else if (roll < 530) run.failingBatch();
        else if (roll < 545) run.split();
        else if (roll < 548) (account(), run.restore());
        else if (roll < 551) (account(), run.loadRecords());
        else run.query();
      }
      account();
      expect(run.queries).toBeGreaterThan(1_000);
      expect(queries).toBe(run.queries);
      // Most answers come from the index, not from a scan (a scan per query would be `queries`).
      expect(scans).toBeLessThan(queries / 3);
    });
  }

  it("keeps (I) as values cross the set's edge both ways (2,000 keys, sets of 65..124)", () => {
    const run = new Run(createPrng(99));
    const n = 2_000;
    run.mutate(Array.from({ length: n }, (_, i) => add(`p:${i}`, BigInt(i))));
    for (let round = 0; round < 300; round++) {
      // Knock one to three of the current best far down (they leave the set, which shrinks), and
      // move a few others up or down around the set's last entry (~ rank 60..130).
      // (Chosen from a scan, so that only the k below reach the index and its sets stay at 124.)
      const ops: CounterOp[] = scanTopK(run.machine, "p:", 1 + run.prng.nextInt(3), 0).map(([name]) => add(name, -5_000n));
      const edge = scanTopK(run.machine, "p:", 130, 0).at(-1)![1];
      for (let j = 0; j < 4; j++) ops.push(set(`p:${run.prng.nextInt(n)}`, edge - 40n + BigInt(run.prng.nextInt(80))));
      run.mutate(ops);
      for (const k of [1, 5, 20, 60]) {
        const got = run.machine.topK(key("p:"), k).map((entry): [string, bigint] => [text(entry.key), entry.value]);
        expect(got, `round ${round}, k ${k}`).toEqual(scanTopK(run.machine, "p:", k, 0));
      }
    }
    expect(capacityFor(60)).toBe(124);
    expect(indexOf(run.machine).stats.scans).toBeLessThan(indexOf(run.machine).stats.queries / 4);
  });

  it("starts over when the change log no longer holds every change since the last query", () => {
    const run = new Run(createPrng(7));
    run.mutate(Array.from({ length: 100 }, (_, i) => add(`p:${i}`, BigInt(i))));
    expect(run.machine.topK(key("p:"), 3).map((entry) => entry.value)).toEqual([99n, 98n, 97n]);
    // 70,000 changes in 7 entries: more than the change log's 65,536.
    for (let batch = 0; batch < 7; batch++) {
      run.mutate(
        Array.from({ length: 10_000 }, (_, i) => add(`p:${batch * 10_000 + i}`, BigInt(((batch * 10_000 + i) * 7_919) % 100_003))),
      );
    }
    const scansBefore = indexOf(run.machine).stats.scans;
    const got = run.machine.topK(key("p:"), 10).map((entry): [string, bigint] => [text(entry.key), entry.value]);
    expect(got).toEqual(scanTopK(run.machine, "p:", 10, 0));
    expect(indexOf(run.machine).stats.scans).toBe(scansBefore + 1);
    // And from then on follows the changes again without a scan.
    run.mutate([add("p:5", 1_000_000n)]);
    const top = run.machine.topK(key("p:"), 1).map((entry): [string, bigint] => [text(entry.key), entry.value]);
    expect(top).toEqual(scanTopK(run.machine, "p:", 1, 0));
    expect(top[0]![0]).toBe("p:5");
    expect(indexOf(run.machine).stats.scans).toBe(scansBefore + 1);
  });
});

describe("reserved keys (\\0tally:) in listings", () => {
  it("are left out of a top-K or an aggregate unless the prefix itself is reserved", () => {
    const driver = new ShardDriver(new CounterStateMachine(options));
    const client = driver.register(T0);
    const marker = new Uint8Array(Buffer.from("\0tally:eventual:node-1:{3}", "latin1"));
    driver.mutate(client, 1, [add("a", 5n), add(marker, 9n), add("b", 3n)], 1, T0);
    const names = (rows: Array<{ key: Uint8Array }>) => rows.map((row) => text(row.key));
    // Twice each: the first query builds the index by a scan, the second answers from it.
    for (let i = 0; i < 2; i++) {
      expect(names(driver.machine.topK(new Uint8Array(0), 10, T0))).toEqual(["a", "b"]);
      expect(names(driver.machine.topK(new Uint8Array([0]), 10, T0))).toEqual([]);
      expect(names(driver.machine.topK(new Uint8Array(Buffer.from("\0tally:", "latin1")), 10, T0))).toEqual([text(marker)]);
    }
    driver.mutate(client, 2, [add(marker, 1n), add("c", 1n)], 2, T0);
    expect(names(driver.machine.topK(new Uint8Array(0), 10, T0))).toEqual(["a", "b", "c"]);
    expect(driver.machine.aggregate(new Uint8Array(0), T0)).toMatchObject({ count: 3, sum: 9n });
    expect(driver.machine.aggregate(new Uint8Array(Buffer.from("\0tally:", "latin1")), T0)).toMatchObject({ count: 1, sum: 10n });
  });
});
