/**
 * src/api/generated/ is what proto-loader-gen-types makes of proto/tally.proto with the options the
 * code loads it with (scripts/gen-proto.ts), and the types it names are the objects the code gets.
 */
import { describe, expect, test } from "vitest";
import { generatorFlags, staleGeneratedFiles } from "../../scripts/gen-proto.js";
import {
  tallyProto,
  type ForwardWriteRequestInput,
  type ForwardWriteRequestMessage,
  type GetResponseMessage,
} from "../../src/api/proto.js";

describe("the generated proto types", () => {
  test("src/api/generated is up to date with proto/ (else: npm run gen:proto)", () => {
    expect(staleGeneratedFiles(), "src/api/generated is stale: run npm run gen:proto").toEqual([]);
  }, 60_000);

  test("they are generated with the load options of src/api/proto.ts", () => {
    expect(generatorFlags()).toEqual(expect.arrayContaining(["--longs=String", "--enums=String", "--defaults", "--oneofs"]));
    expect(generatorFlags()).not.toContain("--keepCase");
  });

  test("a decoded message has the generated output shape: int64 as strings, every field present", () => {
    const type = tallyProto().packageDefinition["tally.v1.GetResponse"] as {
      serialize(value: object): Buffer;
      deserialize(bytes: Buffer): GetResponseMessage;
    };
    const decoded = type.deserialize(type.serialize({ value: -5, exists: true }));
    const expected: GetResponseMessage = { value: "-5", version: "0", exists: true, fence: null, appliedIndex: "0" };
    expect(decoded).toEqual(expected);
  });

  test("ForwardWriteRequest round-trips through the wire as the generated types say", () => {
    const type = tallyProto().packageDefinition["tally.v1.ForwardWriteRequest"] as {
      serialize(value: ForwardWriteRequestInput): Buffer;
      deserialize(bytes: Buffer): ForwardWriteRequestMessage;
    };
    const decoded = type.deserialize(
      type.serialize({
        shardId: 3,
        epoch: 7,
        timeoutMs: 2000,
        requestId: "r-1",
        owner: "alice",
        ops: [{ reset: { key: Buffer.from("k") } }],
      }),
    );
    expect(decoded).toMatchObject({ shardId: 3, epoch: "7", timeoutMs: 2000, requestId: "r-1", owner: "alice" });
    expect(decoded.ops[0]).toMatchObject({ op: "reset", reset: { key: Buffer.from("k") } });
    expect(decoded.packedAdds).toEqual(Buffer.alloc(0));
  });
});
