/**
 * tallyd's server reflection answers from an index built at `npm run gen:proto`
 * (src/api/generated/reflection.ts) with a hand-written codec (src/server/rpc/reflection.ts). Here
 * every answer is compared with what @grpc/reflection's own service answers over the same protos
 * (what tallyd ran before): every symbol, every file, the misses and the errors. Compared decoded,
 * field by field: protobufjs also writes fields at their default (an empty host), which proto3
 * leaves out and every decoder reads the same.
 */
import * as protoLoader from "@grpc/proto-loader";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { reflectionOracle } from "../../scripts/gen-proto.js";
import { REFLECTION_FILES } from "../../src/api/generated/reflection.js";
import { answerReflection, decodeReflectionRequest, REFLECTED_SYMBOLS } from "../../src/server/rpc/reflection.js";

type Codec = { serialize(value: object): Buffer; deserialize(bytes: Buffer): object };

const require = createRequire(import.meta.url);
// The options @grpc/reflection loads its own protos with (its PROTO_LOADER_OPTS).
const reflectionOptions = { longs: String, enums: String, bytes: Array, defaults: true, oneofs: true };
const reflectionProto = protoLoader.loadSync(
  join(require.resolve("@grpc/reflection/package.json"), "..", "build", "proto", "grpc", "reflection", "v1", "reflection.proto"),
  reflectionOptions,
);
const method = (reflectionProto["grpc.reflection.v1.ServerReflection"] as protoLoader.ServiceDefinition).ServerReflectionInfo!;
const requestCodec: Codec = { serialize: method.requestSerialize, deserialize: method.requestDeserialize } as Codec;
const responseCodec: Codec = { serialize: method.responseSerialize, deserialize: method.responseDeserialize } as Codec;

describe("server reflection", () => {
  const library = (reflectionOracle() as unknown as { v1: { handleServerReflectionRequest(request: object): object } }).v1;
  const expected = (request: object): object => {
    const raw = requestCodec.serialize(request);
    return responseCodec.deserialize(responseCodec.serialize(library.handleServerReflectionRequest(requestCodec.deserialize(raw))));
  };
  const ours = (request: object): object => responseCodec.deserialize(answerReflection(requestCodec.serialize(request)));

  const requests: Array<[string, object]> = [
    ["list services (*)", { listServices: "*" }],
    ["list services (empty string)", { listServices: "" }],
    ["list services with a host", { host: "localhost:7001", listServices: "*" }],
    ["an unknown symbol", { fileContainingSymbol: "tally.v1.NoSuchThing" }],
    ["an empty symbol", { fileContainingSymbol: "" }],
    ["an unknown file", { fileByFilename: "nope.proto" }],
    ["an extension", { fileContainingExtension: { containingType: "tally.v1.GetRequest", extensionNumber: 100 } }],
    ["an extension numbered 0", { fileContainingExtension: { containingType: "tally.v1.GetRequest", extensionNumber: 0 } }],
    ["all extension numbers", { allExtensionNumbersOfType: "tally.v1.GetRequest" }],
    ["no request at all", {}],
    ["only a host", { host: "h" }],
    ...REFLECTION_FILES.map((file): [string, object] => [`file ${file.name}`, { fileByFilename: file.name }]),
  ];

  test.each(requests)("%s: the same answer as @grpc/reflection", (_name, request) => {
    expect(ours(request)).toEqual(expected(request));
  });

  test(`every one of the ${REFLECTED_SYMBOLS.size} symbols: the same answer as @grpc/reflection`, () => {
    expect(REFLECTED_SYMBOLS.size).toBeGreaterThan(100);
    for (const symbol of REFLECTED_SYMBOLS.keys()) {
      const request = { fileContainingSymbol: symbol };
      expect(ours(request), symbol).toEqual(expected(request));
    }
  });

  test("serves tally.proto under its own name, with its snake_case fields", () => {
    const response = ours({ fileContainingSymbol: "tally.v1.RequestHeader" }) as {
      fileDescriptorResponse: { fileDescriptorProto: number[][] };
    };
    const bytes = Buffer.from(response.fileDescriptorResponse.fileDescriptorProto[0]!);
    expect(bytes.subarray(2, 2 + bytes[1]!).toString()).toBe("tally.proto");
    expect(bytes.includes(Buffer.from("first_unacked_seq"))).toBe(true);
  });

  test("the last oneof member on the wire wins", () => {
    const both = Buffer.concat([requestCodec.serialize({ fileByFilename: "tally.proto" }), requestCodec.serialize({ listServices: "*" })]);
    expect(decodeReflectionRequest(both)).toMatchObject({ kind: "listServices", value: "*" });
  });

  test("a malformed request gets an error response, not a crash", () => {
    // A string past the end, a truncated varint, the host as a varint.
    for (const bad of [Buffer.from([0x22, 0x05, 0x61]), Buffer.from([0xff]), Buffer.from([0x08, 0x01])]) {
      const response = responseCodec.deserialize(answerReflection(bad)) as { errorResponse?: { errorCode: number } };
      expect(response.errorResponse?.errorCode, bad.toString("hex")).toBe(3); // INVALID_ARGUMENT
    }
  });
});
