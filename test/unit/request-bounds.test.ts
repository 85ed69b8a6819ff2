/**
 * request-bounds.ts: the wire-level bounds every client request passes before protobufjs decodes
 * it, with tally.proto's own codecs producing (and a byte builder forging) the requests.
 */
import { describe, expect, test } from "vitest";
import { tallyProto } from "../../src/api/proto.js";
import { parseClusterConfig } from "../../src/server/config/config.js";
import { boundedDecoder, RefusedRequest, REQUEST_FIELDS_MAX, tallyRequestBounds } from "../../src/server/rpc/request-bounds.js";
import { UNIQUE_ITEMS_MAX } from "../../src/shard/commands.js";
import { InvalidArgumentError } from "../../src/util/errors.js";

type Json = Record<string, any>;
type Method = { requestSerialize: (value: object) => Buffer; requestDeserialize: (bytes: Buffer) => Json };

const { packageDefinition } = tallyProto();
const service = packageDefinition["tally.v1.CounterService"] as unknown as Record<string, Method>;
const defaults = parseClusterConfig({
  cluster: { replicationFactor: 1 },
  nodes: [{ id: 1, client: "127.0.0.1:7001", peer: "127.0.0.1:7101", dataDir: "/tmp/tally-bounds/n1" }],
}).limits;

/** The method's bounded decoder under `limits`, and how many times protobufjs was asked to decode. */
function decoderFor(
  method: string,
  requestType: string,
  limits = defaults,
): { decode: (bytes: Buffer) => Json | RefusedRequest; decoded: () => number } {
  let calls = 0;
  const inner = service[method]!.requestDeserialize;
  const decode = boundedDecoder(
    packageDefinition,
    `tally.v1.${requestType}`,
    (bytes: Buffer) => {
      calls++;
      return inner(bytes);
    },
    tallyRequestBounds(limits),
  );
  return { decode, decoded: () => calls };
}

function refusal(result: Json | RefusedRequest): RefusedRequest {
  expect(result).toBeInstanceOf(RefusedRequest);
  const refused = result as RefusedRequest;
  expect(refused.error).toBeInstanceOf(InvalidArgumentError);
  expect(refused.error.code).toBe("INVALID_ARGUMENT");
  return refused;
}

const varint = (value: number): number[] => {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return out;
};
const bytesField = (field: number, bytes: Buffer): Buffer =>
  Buffer.concat([Buffer.from([...varint((field << 3) | 2), ...varint(bytes.length)]), bytes]);
const varintField = (field: number, value: number): Buffer => Buffer.from([...varint(field << 3), ...varint(value)]);

describe("request bounds", () => {
  test("the largest valid batch (10,000 ops, 256-byte keys, every field set) fits the default maxRequestBytes and decodes", () => {
    const key = Buffer.alloc(256, 0x61);
    const ops = Array.from({ length: 10_000 }, () => ({
      add: { key, delta: "-9223372036854775808", hasFloor: true, floor: "-9223372036854775808", ttlMs: "315619200000" },
    }));
    const header = {
      shardId: 4294967295,
      epoch: "9007199254740991",
      clientId: "9007199254740991",
      seq: "9007199254740991",
      firstUnackedSeq: "9007199254740991",
    };
    const bytes = service.AddBatch!.requestSerialize({ header, ops });
    expect(bytes.length).toBeLessThanOrEqual(defaults.maxRequestBytes);
    const { decode } = decoderFor("AddBatch", "BatchRequest");
    const decoded = decode(bytes) as Json;
    expect(decoded).not.toBeInstanceOf(RefusedRequest);
    expect(decoded.ops).toHaveLength(10_000);
  });

  test("a repeated field over its bound is refused before protobufjs decodes anything", () => {
    const { decode, decoded } = decoderFor("GetMany", "GetManyRequest");
    const keys = Array.from({ length: defaults.maxBatchOps + 1 }, () => Buffer.from("k"));
    const refused = refusal(decode(service.GetMany!.requestSerialize({ keys })));
    expect(refused.error.message).toMatch(/GetManyRequest\.keys: more than 10000 elements/);
    expect(decoded()).toBe(0);
    // At the bound it decodes.
    expect((decode(service.GetMany!.requestSerialize({ keys: keys.slice(1) })) as Json).keys).toHaveLength(defaults.maxBatchOps);
    // Packed repeated scalars count element by element.
    const packed = refusal(
      decode(service.GetMany!.requestSerialize({ keys: [Buffer.from("k")], hotSubCounters: new Array(defaults.maxBatchOps + 1).fill(3) })),
    );
    expect(packed.error.message).toMatch(/hot_sub_counters: more than 10000 elements/);
  });

  test("a unique add's items: at most UNIQUE_ITEMS_MAX per op, and their bytes at most maxEntryBytes per request", () => {
    const { decode, decoded } = decoderFor("AddBatch", "BatchRequest");
    const tooMany = { ops: [{ uniqueAdd: { key: Buffer.from("u"), items: new Array(UNIQUE_ITEMS_MAX + 1).fill(Buffer.from("i")) } }] };
    expect(refusal(decode(service.AddBatch!.requestSerialize(tooMany))).error.message).toMatch(
      /UniqueAddOp\.items: more than 10000 elements/,
    );
    // 3 ops of 40 KiB of items each: 120 KiB against a 100 KiB entry bound, though each op is small.
    const small = decoderFor("AddBatch", "BatchRequest", { ...defaults, maxEntryBytes: 100 * 1024 });
    const item = Buffer.alloc(40 * 1024, 1);
    const ops = [1, 2, 3].map((n) => ({ uniqueAdd: { key: Buffer.from(`u${n}`), items: [item] } }));
    expect(refusal(small.decode(service.AddBatch!.requestSerialize({ ops }))).error.message).toMatch(
      /more than 102400 bytes of items in one request \(limits\.maxEntryBytes\)/,
    );
    expect((small.decode(service.AddBatch!.requestSerialize({ ops: ops.slice(0, 2) })) as Json).ops).toHaveLength(2);
    expect(decoded()).toBe(0);
  });

  test("field occurrences are bounded, a singular field sent over and over and unknown fields included", () => {
    const { decode, decoded } = decoderFor("Get", "GetRequest");
    // GetRequest.key (field 1) 100,001 times: protobufjs would decode every one and keep the last.
    const occurrence = bytesField(1, Buffer.from("k"));
    const repeatedKey = Buffer.concat(new Array(REQUEST_FIELDS_MAX + 1).fill(occurrence));
    expect(refusal(decode(repeatedKey)).error.message).toMatch(/more than 100000 fields/);
    const unknown = Buffer.concat(new Array(REQUEST_FIELDS_MAX + 1).fill(varintField(99, 1)));
    expect(refusal(decode(unknown)).error.message).toMatch(/more than 100000 fields/);
    expect(decoded()).toBe(0);
    // A few unknown fields are skipped, as protobuf requires.
    const ok = decode(Buffer.concat([bytesField(1, Buffer.from("k")), varintField(99, 1), bytesField(98, Buffer.from("x"))])) as Json;
    expect(ok.key).toEqual(Buffer.from("k"));
  });

  test("malformed bytes are refused as INVALID_ARGUMENT, never thrown", () => {
    const { decode } = decoderFor("Get", "GetRequest");
    const cases: Array<[string, number[], RegExp]> = [
      ["length past the end", [0x0a, 0x05, 0x61], /length 5 runs past the end/],
      ["truncated varint", [0x18, 0x80], /truncated varint/],
      ["varint over 10 bytes", [0x18, ...new Array(10).fill(0xff), 0x01], /varint longer than 10 bytes/],
      ["group wire type", [0x0b, 0x0c], /wire type 3/],
      ["field number 0", [0x02, 0x00], /field number 0/],
      ["key sent as a varint", [0x08, 0x01], /GetRequest\.key has wire type 0, expected 2/],
      ["fixed64 cut short", [...varint((99 << 3) | 1), 1, 2, 3], /truncated fixed-width field/],
    ];
    for (const [what, bytes, message] of cases) expect(refusal(decode(Buffer.from(bytes))).error.message, what).toMatch(message);
    // Nested messages are checked too: a batch op whose key claims more bytes than the op holds.
    const batch = decoderFor("AddBatch", "BatchRequest");
    const op = Buffer.from([0x0a, 0x04, 0x0a, 0x09, 0x61, 0x62]);
    expect(refusal(batch.decode(bytesField(2, op))).error.message).toMatch(/runs past the end/);
  });

  test("a Pipeline request over a bound keeps its id, so the stream answers that op alone; a malformed one has none", () => {
    const { decode } = decoderFor("Pipeline", "PipelineRequest");
    const keys = new Array(defaults.maxBatchOps + 1).fill(Buffer.from("k"));
    const refused = refusal(decode(service.Pipeline!.requestSerialize({ id: "18446744073709551615", getMany: { keys } })));
    expect(refused.id).toBe("18446744073709551615");
    expect(refused.error.message).toMatch(/keys: more than 10000 elements/);
    const malformed = refusal(decode(Buffer.from([0x08, 0x07, 0x42, 0x05, 0x0a])));
    expect(malformed.id).toBeUndefined();
    const fine = decode(service.Pipeline!.requestSerialize({ id: "7", get: { key: Buffer.from("k") } })) as Json;
    expect(fine.id).toBe("7");
    expect(fine.op).toBe("get");
  });
});
