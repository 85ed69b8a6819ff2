/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha) for the client port: proto/tally.proto as
 * written, with its snake_case field names, so a client generated from reflection (grpcurl, Python
 * grpc_reflection, grpc_cli) has the same messages as one generated from the file, plus the
 * standard health service grpc.health.v1.Health the server also runs.
 *
 * The service's own package definition is not used for this: it is loaded with camelCase field
 * names (keepCase false, what the handlers read), which reflection would then serve. proto-loader
 * names the descriptors it synthesizes after their package (tally_v1.proto); they are renamed to
 * the files' own names (tally.proto, grpc/health/v1/health.proto), so generated modules are named
 * as if made from the files. Neither file imports another, so no dependency name needs the same.
 */
import type * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { protoPath as HEALTH_PROTO_PATH } from "grpc-health-check";
import { TALLY_PROTO_PATH } from "../../api/proto.js";

/** proto-loader's synthesized file name -> the name of the file it came from. */
const FILE_NAMES: Readonly<Record<string, string>> = {
  "tally_v1.proto": "tally.proto",
  "grpc_health_v1.proto": "grpc/health/v1/health.proto",
};

let service: ReflectionService | undefined;
/** What the reflection service adds to a server (its v1 and v1alpha services), recorded once. */
let registrations: Array<[grpc.ServiceDefinition, grpc.UntypedServiceImplementation]> | undefined;

/**
 * Parses the two files and builds the reflection service (~100 ms of one thread), and the services
 * it adds to a server: tallyd calls it before its node starts, while nothing waits on the event
 * loop yet; addReflection() reuses them.
 */
export function loadReflection(): ReflectionService {
  if (service !== undefined) return service;
  const definition = protoLoader.loadSync([TALLY_PROTO_PATH, HEALTH_PROTO_PATH], { keepCase: true });
  for (const entry of Object.values(definition)) {
    const files = (entry as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos;
    if (Array.isArray(files)) for (let i = 0; i < files.length; i++) files[i] = renamedFile(files[i]!);
  }
  // Every service of the two files is listed: tally's two and grpc.health.v1.Health.
  service = new ReflectionService(definition);
  // addToServer() parses the reflection protos on every call (~20-40 ms): record what it adds once.
  const recorded: Array<[grpc.ServiceDefinition, grpc.UntypedServiceImplementation]> = [];
  service.addToServer({ addService: (definition, implementation) => void recorded.push([definition, implementation]) } as grpc.Server);
  registrations = recorded;
  return service;
}

export function addReflection(server: grpc.Server): void {
  loadReflection();
  for (const [definition, implementation] of registrations!) server.addService(definition, implementation);
}

/**
 * A serialized FileDescriptorProto with its name (field 1, which protobufjs writes first) replaced
 * per FILE_NAMES; unchanged if it is not laid out so or not listed (then the synthesized name is
 * served: still the right fields, only the file is named after its package).
 */
export function renamedFile(bytes: Buffer): Buffer {
  if (bytes.length < 2 || bytes[0] !== 0x0a || bytes[1]! >= 0x80) return bytes;
  const length = bytes[1]!;
  if (2 + length > bytes.length) return bytes;
  const renamed = FILE_NAMES[bytes.subarray(2, 2 + length).toString("utf8")];
  if (renamed === undefined) return bytes;
  const name = Buffer.from(renamed, "utf8");
  if (name.length >= 0x80) return bytes;
  return Buffer.concat([Buffer.from([0x0a, name.length]), name, bytes.subarray(2 + length)]);
}
