/**
 * int64 fields go out as JS numbers when they are safe integers (a 3x cheaper protobufjs encode)
 * and as decimal strings otherwise. This checks that both forms give the same bytes at every edge,
 * and that the decoder gives back the exact decimal.
 */
import { describe, expect, it } from "vitest";
import { tallyProto } from "../../src/api/proto.js";
import { int64Wire } from "../../src/client/values.js";

type Codec = { serialize(value: object): Buffer; deserialize(bytes: Buffer): Record<string, unknown> };

function methods(): { batchRequest: Codec; batchResponse: Codec; addRequest: Codec } {
  const service = (tallyProto().CounterService as unknown as { service: Record<string, Record<string, (x: never) => never>> }).service;
  const addBatch = service["AddBatch"]!;
  const add = service["Add"]!;
  return {
    batchRequest: { serialize: addBatch["requestSerialize"]!, deserialize: addBatch["requestDeserialize"]! } as unknown as Codec,
    batchResponse: { serialize: addBatch["responseSerialize"]!, deserialize: addBatch["responseDeserialize"]! } as unknown as Codec,
    addRequest: { serialize: add["requestSerialize"]!, deserialize: add["requestDeserialize"]! } as unknown as Codec,
  };
}

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const signedEdges = [
  0n,
  1n,
  -1n,
  127n,
  -128n,
  1n << 31n,
  -(1n << 31n),
  (1n << 32n) + 5n,
  SAFE - 1n,
  SAFE,
  -SAFE,
  SAFE + 1n,
  -SAFE - 1n,
  SAFE + 2n,
  INT64_MAX,
  INT64_MIN,
];
const unsignedEdges = [0n, 1n, (1n << 32n) - 1n, SAFE, SAFE + 1n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n];

describe("int64 wire form (number when safe, string otherwise)", () => {
  it("chooses a number exactly for safe integers", () => {
    expect(typeof int64Wire(SAFE)).toBe("number");
    expect(typeof int64Wire(-SAFE)).toBe("number");
    expect(typeof int64Wire(SAFE + 1n)).toBe("string");
    expect(typeof int64Wire(-SAFE - 1n)).toBe("string");
    for (const value of signedEdges) expect(BigInt(int64Wire(value))).toBe(value);
  });

  it("encodes a BatchRequest with the same bytes as the decimal form, and decodes exactly", () => {
    const { batchRequest } = methods();
    const header = { shardId: 3, epoch: "7", clientId: "42", seq: "9", firstUnackedSeq: "9" };
    const key = Buffer.from("k");
    const ops = (wire: (value: bigint) => unknown) => [
      ...signedEdges.map((value) => ({ add: { key, delta: wire(value), hasFloor: true, floor: wire(value) } })),
      ...signedEdges.map((value) => ({ set: { key, value: wire(value) } })),
      ...unsignedEdges.map((version) => ({ compareAndSet: { key, expectedVersion: wire(version), value: wire(-version / 2n) } })),
    ];
    const fast = batchRequest.serialize({ header, ops: ops(int64Wire) });
    const slow = batchRequest.serialize({ header, ops: ops((value) => value.toString()) });
    expect(fast.equals(slow)).toBe(true);
    const decoded = batchRequest.deserialize(fast) as {
      ops: Array<{ add?: { delta: string }; compareAndSet?: { expectedVersion: string } }>;
    };
    expect(decoded.ops.slice(0, signedEdges.length).map((op) => BigInt(op.add!.delta))).toEqual(signedEdges);
    const cas = decoded.ops.slice(2 * signedEdges.length).map((op) => BigInt(op.compareAndSet!.expectedVersion));
    expect(cas).toEqual(unsignedEdges);
  });

  it("encodes a single AddRequest the same way", () => {
    const { addRequest } = methods();
    for (const value of signedEdges) {
      const fast = addRequest.serialize({ key: Buffer.from("x"), delta: int64Wire(value), hasFloor: false, floor: int64Wire(0n) });
      const slow = addRequest.serialize({ key: Buffer.from("x"), delta: value.toString(), hasFloor: false, floor: "0" });
      expect(fast.equals(slow)).toBe(true);
    }
  });

  it("encodes a BatchResponse with numbers (versions, fence) the same as with strings", () => {
    const { batchResponse } = methods();
    const versions = [1, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
    const fast = batchResponse.serialize({
      results: signedEdges.map((value, i) => ({ value: int64Wire(value), version: versions[i % versions.length]! })),
      fence: { term: 5, index: Number.MAX_SAFE_INTEGER },
    });
    const slow = batchResponse.serialize({
      results: signedEdges.map((value, i) => ({ value: value.toString(), version: String(versions[i % versions.length]!) })),
      fence: { term: "5", index: String(Number.MAX_SAFE_INTEGER) },
    });
    expect(fast.equals(slow)).toBe(true);
    const decoded = batchResponse.deserialize(fast) as { results: Array<{ value: string }> };
    expect(decoded.results.map((result) => BigInt(result.value))).toEqual(signedEdges);
  });
});
