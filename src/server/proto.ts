/**
 * Loads proto/tally.proto once per process. The loader options matter: int64 fields arrive as
 * decimal strings (longs: String) so counter values never pass through a JS number.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { fileURLToPath } from "node:url";

export const protoDir = fileURLToPath(new URL("../../proto/", import.meta.url));
export const tallyProtoPath = `${protoDir}tally.proto`;

export const protoLoaderOptions: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

let cached: { packageDefinition: protoLoader.PackageDefinition; proto: any } | undefined;

export function loadTallyProto(): { packageDefinition: protoLoader.PackageDefinition; proto: any } {
  if (cached === undefined) {
    const packageDefinition = protoLoader.loadSync(tallyProtoPath, protoLoaderOptions);
    const loaded = grpc.loadPackageDefinition(packageDefinition) as any;
    cached = { packageDefinition, proto: loaded.tally.v1 };
  }
  return cached;
}

let errorInfoType: protobuf.Type | undefined;

/** The ErrorInfo message type, for the binary `tally-error-bin` trailer on unary calls. */
export function errorInfoMessage(): protobuf.Type {
  errorInfoType ??= protobuf.loadSync(tallyProtoPath).lookupType("tally.v1.ErrorInfo");
  return errorInfoType;
}
