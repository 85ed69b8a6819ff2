/**
 * The packed add-only batch (src/util/packed-adds.ts) and its packed results (src/api/packed-batch.ts):
 * exact at the int64 edges, canonical, and every malformed input refused with a clear error. Also
 * the same bytes inside a shard's Raft entry (src/shard/commands.ts) and through the real proto.
 */
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { tallyProto } from "../../src/api/proto.js";
import {
  decodePackedResults,
  encodePackedAddsField,
  encodePackedResults,
  encodePackedValues,
  PACKED_RESULT_BYTES,
} from "../../src/api/packed-batch.js";
import { decodeEntry, encodeEntry, type Command, type CounterOp } from "../../src/shard/commands.js";
import { InvalidArgumentError } from "../../src/util/errors.js";
import { countPackedAdds, decodePackedAdds, encodePackedAdds, PACKED_KEY_BYTES_MAX } from "../../src/util/packed-adds.js";
import { createPrng } from "../../src/util/prng.js";

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const edges = [
  0n,
  1n,
  -1n,
  127n,
  -128n,
  1024n,
  -1024n,
  1025n,
  -1025n,
  (1n << 31n) - 1n,
  1n << 31n,
  -(1n << 31n),
  -(1n << 31n) - 1n,
  1n << 32n,
  -(1n << 32n),
  (1n << 32n) + 1n,
  SAFE,
  -SAFE,
  SAFE + 1n,
  -SAFE - 1n,
  INT64_MAX,
  INT64_MIN,
  INT64_MAX - 1n,
  INT64_MIN + 1n,
];
const limits = { maxOps: 10_000, maxKeyBytes: 256 };
const bytes = (text: string) => new TextEncoder().encode(text);

function refused(run: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(InvalidArgumentError);
  expect((caught as Error).message).toMatch(message);
}

describe("packed adds", () => {
  it("round-trip every int64 edge exactly, keys byte for byte", () => {
    const ops = edges.map((delta, i) => ({ key: bytes(`k${i}-${"x".repeat(i * 7)}`), delta }));
    const packed = encodePackedAdds(ops);
    expect(packed.length).toBe(ops.reduce((sum, op) => sum + 2 + op.key.length + 8, 0));
    const decoded = decodePackedAdds(packed, limits);
    expect(decoded.map((op) => op.delta)).toEqual(edges);
    expect(decoded.map((op) => Buffer.from(op.key).toString())).toEqual(ops.map((op) => Buffer.from(op.key).toString()));
    expect(decoded.every((op) => op.kind === "add")).toBe(true);
    expect(countPackedAdds(packed)).toBe(ops.length);
  });

  it("round-trip random batches (seeded), and encoding is canonical", () => {
    const prng = createPrng(7);
    for (let round = 0; round < 50; round++) {
      const ops = Array.from({ length: 1 + prng.nextInt(300) }, () => ({
        key: Uint8Array.from({ length: 1 + prng.nextInt(40) }, () => prng.nextInt(256)),
        delta: BigInt.asIntN(64, (BigInt(prng.nextInt(2 ** 30)) << 34n) ^ BigInt(prng.nextInt(2 ** 30))),
      }));
      const packed = encodePackedAdds(ops);
      const decoded = decodePackedAdds(packed, limits);
      expect(decoded.map((op) => ({ key: Array.from(op.key), delta: op.delta }))).toEqual(
        ops.map((op) => ({ key: Array.from(op.key), delta: op.delta })),
      );
      expect(encodePackedAdds(decoded)).toEqual(packed);
    }
  });

  it("keys of exactly the limit pass; one byte more, and empty keys, are refused by name", () => {
    const atLimit = encodePackedAdds([{ key: new Uint8Array(256).fill(7), delta: 1n }]);
    expect(decodePackedAdds(atLimit, limits)[0]!.key.length).toBe(256);
    refused(
      () =>
        decodePackedAdds(
          encodePackedAdds([
            { key: bytes("a"), delta: 1n },
            { key: new Uint8Array(257), delta: 1n },
          ]),
          limits,
        ),
      /^ops\[1\]\.key: keys must be 1 to 256 bytes, got 257$/,
    );
    const emptyKey = Uint8Array.from([0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    refused(() => decodePackedAdds(emptyKey, limits), /^ops\[0\]\.key: .*got an empty key$/);
    refused(() => encodePackedAdds([{ key: new Uint8Array(0), delta: 1n }]), /ops\[0\]\.key: keys must be 1 to 65535 bytes, got 0/);
    refused(() => encodePackedAdds([{ key: new Uint8Array(PACKED_KEY_BYTES_MAX + 1), delta: 1n }]), /got 65536/);
  });

  it("deltas outside int64 are refused at encoding", () => {
    refused(() => encodePackedAdds([{ key: bytes("a"), delta: INT64_MAX + 1n }]), /ops\[0\]\.delta: .* outside the signed 64-bit range/);
    refused(() => encodePackedAdds([{ key: bytes("a"), delta: INT64_MIN - 1n }]), /outside the signed 64-bit range/);
  });

  it("truncated, empty and oversized batches are refused, naming the op", () => {
    const packed = encodePackedAdds([
      { key: bytes("abc"), delta: 5n },
      { key: bytes("de"), delta: 6n },
    ]);
    for (let cut = 1; cut < packed.length; cut++) {
      if (cut === 13) continue; // a whole first op: one valid op
      refused(() => decodePackedAdds(packed.subarray(0, cut), limits), /^packed_adds: ops\[[01]\] is truncated/);
    }
    expect(decodePackedAdds(packed.subarray(0, 13), limits)).toHaveLength(1);
    refused(() => decodePackedAdds(new Uint8Array(0), limits), /needs at least one operation/);
    refused(() => decodePackedAdds(packed, { maxOps: 1, maxKeyBytes: 256 }), /more than 1 operations exceed the batch limit/);
  });
});

describe("packed results", () => {
  it("round-trip int64 values and versions up to 2^53 - 1", () => {
    const results = edges.map((value, i) => ({ value, version: i === 0 ? Number.MAX_SAFE_INTEGER : i * 2 ** 33 + i }));
    const packed = encodePackedResults(results);
    expect(packed.length).toBe(results.length * PACKED_RESULT_BYTES);
    expect(decodePackedResults(packed, results.length)).toEqual(results);
  });

  it("are the same bytes from a shard's packed values (one version) as from result objects", () => {
    for (const version of [1, 2 ** 33 + 7, Number.MAX_SAFE_INTEGER]) {
      const values = BigInt64Array.from(edges);
      const objects = edges.map((value) => ({ value, version }));
      expect(encodePackedValues(values, version).equals(encodePackedResults(objects))).toBe(true);
    }
    expect(encodePackedValues(new BigInt64Array(0), 5).length).toBe(0);
    refused(() => encodePackedValues(BigInt64Array.from([1n]), -1), /version: -1 is not a log index/);
  });

  it("refuse a wrong size, a version of 2^53 or more, and bad versions at encoding", () => {
    const packed = encodePackedResults([{ value: 1n, version: 2 }]);
    refused(() => decodePackedResults(packed, 2), /^packed_results: 16 bytes for 2 ops \(want 32\)$/);
    const big = Buffer.from(packed);
    big.writeBigUInt64LE(2n ** 53n, 8);
    refused(() => decodePackedResults(big, 1), /results\[0\]\.version is 2\^53 or more/);
    refused(() => encodePackedResults([{ value: 1n, version: -1 }]), /results\[0\]\.version: -1 is not a log index/);
    refused(() => encodePackedResults([{ value: 1n, version: 2 ** 53 }]), /is not a log index/);
  });
});

describe("through the proto and the Raft entry", () => {
  it("BatchRequest.packed_adds and BatchResponse.packed_results survive the real proto encoding", () => {
    type Codec = { serialize(value: object): Buffer; deserialize(bytes: Buffer): Record<string, unknown> };
    const addBatch = (tallyProto().CounterService as unknown as { service: Record<string, Record<string, unknown>> }).service["AddBatch"]!;
    const request = { serialize: addBatch["requestSerialize"], deserialize: addBatch["requestDeserialize"] } as Codec;
    const response = { serialize: addBatch["responseSerialize"], deserialize: addBatch["responseDeserialize"] } as Codec;
    const ops = edges.map((delta, i) => ({ key: bytes(`p${i}`), delta }));
    const decodedRequest = request.deserialize(request.serialize({ header: { shardId: 1 }, packedAdds: encodePackedAddsField(ops) }));
    expect(decodedRequest.ops).toEqual([]);
    expect(decodePackedAdds(decodedRequest.packedAdds as Buffer, limits).map((op) => op.delta)).toEqual(edges);
    const results = edges.map((value, i) => ({ value, version: 1000 + i }));
    const decodedResponse = response.deserialize(
      response.serialize({ packedResults: encodePackedResults(results), fence: { term: 1, index: 2 } }),
    );
    expect(decodedResponse.results).toEqual([]);
    expect(decodePackedResults(decodedResponse.packedResults as Buffer, results.length)).toEqual(results);
    // A request without the packed form decodes with an empty packed_adds (the old form).
    expect((request.deserialize(request.serialize({ ops: [{ add: { key: bytes("a"), delta: "1" } }] })).packedAdds as Buffer).length).toBe(
      0,
    );
  });

  it("an entry of plain adds carries the packed bytes; with or without the hint, the same bytes", () => {
    const ops: CounterOp[] = edges.map((delta, i) => ({ kind: "add", key: bytes(`e${i}`), delta }));
    const command: Command = { type: "mutate", clientId: 3, seq: 2, firstUnackedSeq: 1, ops, epoch: 4 };
    const plain = encodeEntry({ timestampMs: 1_700_000_000_000, commands: [command] });
    const packed = encodePackedAdds(ops as Array<{ key: Uint8Array; delta: bigint }>);
    const hinted = encodeEntry({ timestampMs: 1_700_000_000_000, commands: [{ ...command, packedAdds: packed }] });
    expect(hinted).toEqual(plain);
    expect(Buffer.from(plain).includes(Buffer.from(packed))).toBe(true);
    const decoded = decodeEntry(plain);
    expect(decoded.commands).toEqual([
      {
        type: "mutate",
        clientId: 3,
        seq: 2,
        firstUnackedSeq: 1,
        ops: ops.map((op) => ({ ...op, key: expect.anything() })),
        epoch: 4,
        packedAdds: packed,
      },
    ]);
    const decodedOps = (decoded.commands[0] as Extract<Command, { type: "mutate" }>).ops;
    expect(decodedOps.map((op) => Buffer.from(op.key).toString())).toEqual(ops.map((op) => Buffer.from(op.key).toString()));
  });

  it("a malformed packed op list in an entry is refused with the command named", () => {
    const ops: CounterOp[] = [
      { kind: "add", key: bytes("a"), delta: 1n },
      { kind: "add", key: bytes("b"), delta: 2n },
    ];
    const packed = encodePackedAdds(ops as Array<{ key: Uint8Array; delta: bigint }>);
    const entry = encodeEntry({
      timestampMs: 1,
      commands: [{ type: "mutate", clientId: 3, seq: 2, firstUnackedSeq: 1, ops, packedAdds: packed }],
    });
    // Cut the last byte of the packed field inside the entry: msgpack still parses (bin length
    // rewritten), the packed form does not.
    const at = Buffer.from(entry).indexOf(Buffer.from(packed));
    const broken = Buffer.concat([entry.subarray(0, at - 1), Buffer.from([packed.length - 1]), packed.subarray(0, packed.length - 1)]);
    let caught: unknown;
    try {
      decodeEntry(broken);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidArgumentError);
    expect((caught as Error).message).toMatch(/^commands\[0\] packed ops: packed_adds: ops\[1\] is truncated/);
  });

  it("an entry of plain adds in the form written before (msgpack op arrays) still decodes", () => {
    const packr = new Packr({ useRecords: false, int64AsType: "bigint", moreTypes: false, mapsAsObjects: true });
    const old = Uint8Array.from(
      packr.pack([
        7,
        [
          [
            2,
            3,
            2,
            1,
            [
              [0, Buffer.from("a"), 5],
              [0, Buffer.from("b"), INT64_MIN],
            ],
            4,
          ],
        ],
      ]),
    );
    const command = decodeEntry(old).commands[0] as Extract<Command, { type: "mutate" }>;
    expect(command).toMatchObject({ type: "mutate", clientId: 3, seq: 2, firstUnackedSeq: 1, epoch: 4 });
    expect(command.ops.map((op) => [Buffer.from(op.key).toString(), (op as { delta: bigint }).delta])).toEqual([
      ["a", 5n],
      ["b", INT64_MIN],
    ]);
  });

  it("floors, TTLs and single ops keep the msgpack form", () => {
    const withFloor: CounterOp[] = [
      { kind: "add", key: bytes("a"), delta: 1n, floor: 0n },
      { kind: "add", key: bytes("b"), delta: 1n },
    ];
    const single: CounterOp[] = [{ kind: "add", key: bytes("a"), delta: 1n }];
    for (const ops of [withFloor, single]) {
      const payload = { timestampMs: 5, commands: [{ type: "mutate", clientId: 1, seq: 1, firstUnackedSeq: 1, ops } as Command] };
      expect(decodeEntry(encodeEntry(payload)).commands[0]).toEqual(payload.commands[0]);
    }
  });
});
