/**
 * The per-op wire work of one 10,000-op AddBatch, in process and interleaved, so the comparison
 * holds on a shared box: the client building and serializing the Pipeline request, the server
 * building and serializing the 10,000-result reply. Each runs in the form used before the hot-path
 * work (int64 fields as decimal strings) and the current one (safe integers as numbers).
 *
 *   npx tsx bench/wire-codec.ts [--rounds 40]
 */
import { tallyProto } from "../src/api/proto.js";
import { int64Wire } from "../src/client/values.js";
import { interleavedCpuMedians, parseArgs, warmupRounds } from "./lib.js";

const rounds = Number(parseArgs(process.argv.slice(2)).option("rounds", "40"));
const OPS = 10_000;

type Serialize = (value: object) => Buffer;
const service = (tallyProto().CounterService as unknown as { service: Record<string, Record<string, Serialize>> }).service;
const pipelineSerialize = service["Pipeline"]!["requestSerialize"]!;
const batchReplySerialize = service["AddBatch"]!["responseSerialize"]!;

const keys = Array.from({ length: OPS }, (_, i) => Buffer.from(`k${(i * 7919) % 100_000}`));
const deltas = Array.from({ length: OPS }, (_, i) => BigInt((i % 5) + 1));
const values = Array.from({ length: OPS }, (_, i) => BigInt(i * 31 - 5000));
const versions = Array.from({ length: OPS }, (_, i) => 1_000_000 + i);

function requestWith(wire: (value: bigint) => unknown): Buffer {
  const header = { shardId: 3, epoch: wire(1n), clientId: wire(4_000_000_001n), seq: wire(77n), firstUnackedSeq: wire(70n) };
  const ops = new Array(OPS);
  for (let i = 0; i < OPS; i++) ops[i] = { add: { key: keys[i], delta: wire(deltas[i]!), hasFloor: false, floor: wire(0n) } };
  return pipelineSerialize({ id: wire(12345n), batch: { header, ops } });
}

function replyWith(wire: (value: bigint) => unknown, version: (value: number) => unknown): Buffer {
  const results = new Array(OPS);
  for (let i = 0; i < OPS; i++) results[i] = { value: wire(values[i]!), version: version(versions[i]!) };
  return batchReplySerialize({ results, fence: { term: version(3), index: version(1_000_123) } });
}

const cases: Array<{ name: string; before: () => unknown; after: () => unknown }> = [
  {
    name: "client: build + serialize 10,000-op request",
    before: () => requestWith((v) => v.toString()),
    after: () => requestWith(int64Wire),
  },
  {
    name: "server: build + serialize 10,000-result reply",
    before: () =>
      replyWith(
        (v) => v.toString(),
        (n) => String(n),
      ),
    after: () => replyWith(int64Wire, (n) => n),
  },
];

// Same bytes either way (test/unit/wire-int64.test.ts checks the edges too).
for (const c of cases) {
  const a = c.before() as Buffer | number;
  const b = c.after() as Buffer | number;
  if (typeof a === "number" ? a !== b : !(a as Buffer).equals(b as Buffer)) throw new Error(`${c.name}: before and after differ`);
}

console.log(`per 10,000 ops, median CPU ms of ${rounds} interleaved rounds (after ${warmupRounds(rounds)} warm-up rounds)`);
for (const c of cases) {
  const { beforeMs: b, afterMs: a } = interleavedCpuMedians(c.before, c.after, rounds);
  console.log(`${c.name.padEnd(48)} before ${b.toFixed(2).padStart(7)}  after ${a.toFixed(2).padStart(7)}  (${(b / a).toFixed(1)}x)`);
}
