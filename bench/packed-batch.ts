/**
 * The per-batch work that packed add batches (issue 7) change, for one 10,000-op AddBatch of plain
 * adds, in process and interleaved so the comparison holds on a shared box: each stage in the form
 * used before (BatchOp / OpResult messages, msgpack op arrays in the Raft entry) and the packed one.
 * Stages: the client building and serializing the request; the server deserializing it into
 * CounterOps; the leader encoding the Raft entry; every replica decoding it; the reply, built and
 * serialized on the server, deserialized and turned into results on the client.
 *
 *   npx tsx bench/packed-batch.ts [--rounds 40]
 */
import { Packr } from "msgpackr";
import { decodePackedAdds, decodePackedResults, encodePackedAddsField, encodePackedResults } from "../src/api/packed-batch.js";
import { tallyProto } from "../src/api/proto.js";
import { int64Wire } from "../src/client/values.js";
import { decodeEntry, encodeEntry, validateEntry, type Command, type CounterOp } from "../src/shard/commands.js";
import { interleavedCpuMedians, parseArgs, warmupRounds } from "./lib.js";

const rounds = Number(parseArgs(process.argv.slice(2)).option("rounds", "40"));
const OPS = 10_000;

type Codec = { serialize(value: object): Buffer; deserialize(bytes: Buffer): Record<string, any> };
const addBatch = (tallyProto().CounterService as unknown as { service: Record<string, Record<string, unknown>> }).service["AddBatch"]!;
const request = { serialize: addBatch["requestSerialize"], deserialize: addBatch["requestDeserialize"] } as Codec;
const response = { serialize: addBatch["responseSerialize"], deserialize: addBatch["responseDeserialize"] } as Codec;
// The entry encoder's settings (src/shard/entry-codec.ts), for the form entries had before.
const packr = new Packr({ useRecords: false, int64AsType: "bigint", moreTypes: false, mapsAsObjects: true });

const keys = Array.from({ length: OPS }, (_, i) => Buffer.from(`k${(i * 7919) % 1_000_000}`));
const deltas = Array.from({ length: OPS }, (_, i) => BigInt((i % 5) + 1));
const values = Array.from({ length: OPS }, (_, i) => BigInt(i * 31 - 5000));
const header = { shardId: 3, epoch: 1, clientId: 4_000_000_001, seq: 77, firstUnackedSeq: 70 };
const clientOps = keys.map((key, i) => ({ key, delta: deltas[i]! }));

const opsRequest = request.serialize({
  header,
  ops: clientOps.map((op) => ({ add: { key: op.key, delta: int64Wire(op.delta), hasFloor: false, floor: 0 } })),
});
const packedRequest = request.serialize({ header, packedAdds: encodePackedAddsField(clientOps) });
const counterOps: CounterOp[] = clientOps.map((op) => ({ kind: "add", key: op.key, delta: op.delta }));
const packedBytes = encodePackedAddsField(clientOps);
const command = (packed?: Uint8Array): Command => ({
  type: "mutate",
  clientId: 4_000_000_001,
  seq: 77,
  firstUnackedSeq: 70,
  epoch: 1,
  ops: counterOps,
  ...(packed ? { packedAdds: packed } : {}),
});
const payload = { timestampMs: 1_700_000_000_000, commands: [command()] };

function arraysEntry(): Uint8Array {
  validateEntry(payload);
  const wireOps = counterOps.map((op) => [0, op.key, Number((op as { delta: bigint }).delta)]);
  const packed = packr.pack([payload.timestampMs, [[2, 4_000_000_001, 77, 70, wireOps, 1]]]);
  return Uint8Array.from(packed);
}
const arraysEntryBytes = arraysEntry();
const packedEntryBytes = encodeEntry({ timestampMs: payload.timestampMs, commands: [command(packedBytes)] });
const results = values.map((value) => ({ value, version: 1_000_123 }));
const opsReply = response.serialize({
  results: results.map((r) => ({ value: int64Wire(r.value), version: r.version })),
  fence: { term: 3, index: 1_000_123 },
});
const packedReply = response.serialize({ packedResults: encodePackedResults(results), fence: { term: 3, index: 1_000_123 } });

const cases: Array<{ name: string; before: () => unknown; after: () => unknown }> = [
  {
    name: "client: build + serialize the request",
    before: () =>
      request.serialize({
        header,
        ops: clientOps.map((op) => ({ add: { key: op.key, delta: int64Wire(op.delta), hasFloor: false, floor: 0 } })),
      }),
    after: () => request.serialize({ header, packedAdds: encodePackedAddsField(clientOps) }),
  },
  {
    name: "server: deserialize into CounterOps",
    before: () =>
      (request.deserialize(opsRequest).ops as any[]).map((op) => ({
        kind: "add",
        key: new Uint8Array(op.add.key.buffer, op.add.key.byteOffset, op.add.key.byteLength),
        delta: BigInt(op.add.delta),
      })),
    after: () => decodePackedAdds(request.deserialize(packedRequest).packedAdds, { maxOps: OPS, maxKeyBytes: 256 }),
  },
  {
    name: "leader: encode the Raft entry",
    before: arraysEntry,
    after: () => encodeEntry({ timestampMs: payload.timestampMs, commands: [command(packedBytes)] }),
  },
  { name: "every replica: decode the Raft entry", before: () => decodeEntry(arraysEntryBytes), after: () => decodeEntry(packedEntryBytes) },
  {
    name: "server: build + serialize the reply",
    before: () =>
      response.serialize({
        results: results.map((r) => ({ value: int64Wire(r.value), version: r.version })),
        fence: { term: 3, index: 1_000_123 },
      }),
    after: () => response.serialize({ packedResults: encodePackedResults(results), fence: { term: 3, index: 1_000_123 } }),
  },
  {
    name: "client: deserialize the reply into results",
    before: () => (response.deserialize(opsReply).results as any[]).map((r) => ({ value: BigInt(r.value), version: BigInt(r.version) })),
    after: () =>
      decodePackedResults(response.deserialize(packedReply).packedResults, OPS).map((r) => ({
        value: r.value,
        version: BigInt(r.version),
      })),
  },
];

// Both forms carry the same ops.
const decodedBefore = decodeEntry(arraysEntryBytes).commands[0] as Extract<Command, { type: "mutate" }>;
const decodedAfter = decodeEntry(packedEntryBytes).commands[0] as Extract<Command, { type: "mutate" }>;
for (let i = 0; i < OPS; i += 997) {
  const [a, b] = [decodedBefore.ops[i] as { key: Uint8Array; delta: bigint }, decodedAfter.ops[i] as { key: Uint8Array; delta: bigint }];
  if (a.delta !== b.delta || !Buffer.from(a.key).equals(Buffer.from(b.key))) throw new Error(`op ${i} differs between the forms`);
}

console.log(`per 10,000-op batch, median CPU ms of ${rounds} interleaved rounds (after ${warmupRounds(rounds)} warm-up rounds)`);
console.log(
  `request bytes: ops ${opsRequest.length}, packed ${packedRequest.length}; reply bytes: results ${opsReply.length}, packed ${packedReply.length}; entry bytes: arrays ${arraysEntryBytes.length}, packed ${packedEntryBytes.length}`,
);
let totalBefore = 0;
let totalAfter = 0;
for (const c of cases) {
  const { beforeMs: b, afterMs: a } = interleavedCpuMedians(c.before, c.after, rounds);
  totalBefore += b;
  totalAfter += a;
  console.log(`${c.name.padEnd(44)} before ${b.toFixed(2).padStart(7)}  after ${a.toFixed(2).padStart(7)}  (${(b / a).toFixed(1)}x)`);
}
console.log(
  `${"sum (decode counted once)".padEnd(44)} before ${totalBefore.toFixed(2).padStart(7)}  after ${totalAfter.toFixed(2).padStart(7)}  (${(totalBefore / totalAfter).toFixed(1)}x)`,
);
