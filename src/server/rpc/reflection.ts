/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha, whose messages are the same) for the
 * client port: proto/tally.proto as written, with its snake_case field names, so a client generated
 * from reflection (grpcurl, Python grpc_reflection, grpc_cli) has the same messages as one generated
 * from the file, plus the standard health service grpc.health.v1.Health the server also runs.
 *
 * What it serves is indexed at build time (src/api/generated/reflection.ts, written by `npm run
 * gen:proto` with @grpc/reflection's own index): building that index at start-up parsed both protos
 * and decoded their descriptors, ~150 ms of every start of every node. This module only answers the
 * stream's requests, encoded and decoded by hand (src/api/proto-wire.ts): the same answers as
 * @grpc/reflection's service (test/unit/reflection.test.ts compares them byte for byte).
 */
import * as grpc from "@grpc/grpc-js";
import { REFLECTION_FILES, REFLECTION_SERVICES, REFLECTION_SYMBOLS } from "../../api/generated/reflection.js";
import { ProtoWriter, readFields, WIRE_LENGTH_DELIMITED, WIRE_VARINT, WireFormatError } from "../../api/proto-wire.js";

/** A ServerReflectionRequest: the host and the member of its message_request oneof that is set. */
export interface ReflectionRequest {
  host: string;
  /** The oneof member's field name; undefined when none is set. */
  kind?: "fileByFilename" | "fileContainingSymbol" | "fileContainingExtension" | "allExtensionNumbersOfType" | "listServices";
  /** The member's string (for fileContainingExtension: its containing_type). */
  value: string;
  /** fileContainingExtension's extension_number. */
  extensionNumber: number;
}

/** ServerReflectionRequest's oneof fields, by number. */
const REQUEST_KINDS = {
  3: "fileByFilename",
  4: "fileContainingSymbol",
  5: "fileContainingExtension",
  6: "allExtensionNumbersOfType",
  7: "listServices",
} as const;

export function decodeReflectionRequest(bytes: Uint8Array): ReflectionRequest {
  const request: ReflectionRequest = { host: "", value: "", extensionNumber: 0 };
  readFields(bytes, "grpc.reflection.v1.ServerReflectionRequest", (reader, field, wireType) => {
    if (field === 1) {
      reader.expect(WIRE_LENGTH_DELIMITED, wireType, field);
      request.host = reader.string();
      return true;
    }
    const kind = REQUEST_KINDS[field as keyof typeof REQUEST_KINDS];
    if (kind === undefined) return false;
    reader.expect(WIRE_LENGTH_DELIMITED, wireType, field);
    // A oneof: the last member on the wire wins, and its fields start from their defaults.
    request.kind = kind;
    request.value = "";
    request.extensionNumber = 0;
    if (kind !== "fileContainingExtension") {
      request.value = reader.string();
      return true;
    }
    readFields(reader.lengthDelimited(), "grpc.reflection.v1.ExtensionRequest", (inner, innerField, innerWireType) => {
      if (innerField === 1) {
        inner.expect(WIRE_LENGTH_DELIMITED, innerWireType, innerField);
        request.value = inner.string();
      } else if (innerField === 2) {
        inner.expect(WIRE_VARINT, innerWireType, innerField);
        request.extensionNumber = inner.int32();
      } else {
        return false;
      }
      return true;
    });
    return true;
  });
  return request;
}

const files = new Map(REFLECTION_FILES.map((file) => [file.name, { ...file, bytes: Buffer.from(file.descriptor, "base64") }]));
/** Every symbol reflection knows -> the file that defines it. */
export const REFLECTED_SYMBOLS: ReadonlyMap<string, string> = new Map(
  Object.entries(REFLECTION_SYMBOLS).flatMap(([file, names]) => names.map((name) => [name, file] as const)),
);

/** A file and every file it depends on, transitively (in @grpc/reflection's order). */
function withDependencies(name: string): Buffer[] {
  const visited = new Set<string>();
  const pending = [...files.get(name)!.dependencies];
  while (pending.length > 0) {
    const current = pending.pop()!;
    if (visited.has(current)) continue;
    visited.add(current);
    pending.push(...files.get(current)!.dependencies.filter((dependency) => !visited.has(dependency)));
  }
  return [name, ...visited].map((file) => files.get(file)!.bytes);
}

function fileResponse(descriptors: Buffer[]): Buffer {
  const response = new ProtoWriter();
  for (const descriptor of descriptors) response.bytes(1, descriptor);
  return response.finish();
}

function errorResponse(code: grpc.status, message: string): Buffer {
  return new ProtoWriter().varint(1, BigInt(code)).string(2, message).finish();
}

/** The ServerReflectionResponse to one request (`raw`: its bytes, echoed as original_request). */
export function answerReflection(raw: Uint8Array): Buffer {
  const response = new ProtoWriter();
  let request: ReflectionRequest;
  try {
    request = decodeReflectionRequest(raw);
  } catch (error) {
    if (!(error instanceof WireFormatError)) throw error;
    return response.bytes(7, errorResponse(grpc.status.INVALID_ARGUMENT, error.message)).finish();
  }
  response.string(1, request.host).bytes(2, raw);
  const { kind, value } = request;
  if (kind === "listServices") {
    const list = new ProtoWriter();
    for (const service of REFLECTION_SERVICES) list.bytes(1, new ProtoWriter().string(1, service).finish());
    return response.bytes(6, list.finish()).finish();
  }
  if (kind === "fileContainingSymbol" || kind === "fileByFilename") {
    const file = kind === "fileByFilename" ? (files.has(value) ? value : undefined) : REFLECTED_SYMBOLS.get(value);
    if (file !== undefined) return response.bytes(4, fileResponse(withDependencies(file))).finish();
    const message = kind === "fileByFilename" ? `Proto file not found: ${value}` : `Symbol not found: ${value}`;
    return response.bytes(7, errorResponse(grpc.status.NOT_FOUND, message)).finish();
  }
  // Neither file declares an extension (the generator checks).
  if (kind === "fileContainingExtension") {
    const message = `Extension not found for symbol ${value} at field ${request.extensionNumber || -1}`;
    return response.bytes(7, errorResponse(grpc.status.NOT_FOUND, message)).finish();
  }
  if (kind === "allExtensionNumbersOfType")
    return response.bytes(7, errorResponse(grpc.status.NOT_FOUND, `Extensions not found for symbol ${value}`)).finish();
  return response.bytes(7, errorResponse(grpc.status.UNIMPLEMENTED, "Unimplemented method for request: undefined")).finish();
}

const identity = (bytes: Buffer): Buffer => bytes;

function reflectionService(version: "v1" | "v1alpha"): grpc.ServiceDefinition {
  return {
    ServerReflectionInfo: {
      path: `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
      requestStream: true,
      responseStream: true,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
      originalName: "serverReflectionInfo",
    },
  };
}

function serverReflectionInfo(stream: grpc.ServerDuplexStream<Buffer, Buffer>): void {
  stream.on("data", (request: Buffer) => stream.write(answerReflection(request)));
  stream.on("end", () => stream.end());
  stream.on("error", () => undefined); // the client went away
}

/** Adds grpc.reflection.v1 and v1alpha ServerReflection to `server`. */
export function addReflection(server: grpc.Server): void {
  for (const version of ["v1", "v1alpha"] as const)
    server.addService(reflectionService(version), { ServerReflectionInfo: serverReflectionInfo });
}
