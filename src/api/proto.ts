import { protoFile } from "../util/paths.js";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { MessageTypeDefinition } from "@grpc/proto-loader";
import type { ProtoGrpcType } from "./generated/tally.js";
import type { ClusterMapRequest__Output } from "./generated/tally/v1/ClusterMapRequest.js";
import type { GetRequest, GetRequest__Output } from "./generated/tally/v1/GetRequest.js";
import type { PipelineRequest, PipelineRequest__Output } from "./generated/tally/v1/PipelineRequest.js";

/**
 * proto/tally.proto loaded with the options the server uses too. `longs: String` makes every
 * (u)int64 arrive as a decimal string, so a counter value never passes through a JS number;
 * callers convert with BigInt. `oneofs: true` adds a virtual field naming the set member
 * (`op` on PipelineRequest/BatchOp, `result` on PipelineResponse).
 */
export const TALLY_PROTO_PATH = protoFile("tally.proto");

export const PROTO_LOADER_OPTIONS: protoLoader.Options = Object.freeze({
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});

/** The client constructors, typed as generated: `new CounterService(address, credentials)` is a CounterServiceClient. */
export interface TallyProto {
  packageDefinition: protoLoader.PackageDefinition;
  CounterService: ProtoGrpcType["tally"]["v1"]["CounterService"];
  AdminService: ProtoGrpcType["tally"]["v1"]["AdminService"];
}

let loaded: TallyProto | undefined;

/** Loads the proto once per process (parsing it is a few milliseconds we need not repeat). */
export function tallyProto(): TallyProto {
  if (loaded === undefined) {
    const packageDefinition = protoLoader.loadSync(TALLY_PROTO_PATH, PROTO_LOADER_OPTIONS);
    const root = grpc.loadPackageDefinition(packageDefinition) as unknown as ProtoGrpcType;
    loaded = {
      packageDefinition,
      CounterService: root.tally.v1.CounterService,
      AdminService: root.tally.v1.AdminService,
    };
  }
  return loaded;
}

// ---- Message shapes: generated from proto/tally.proto into ./generated/ by `npm run gen:proto`
// (scripts/gen-proto.ts, proto-loader-gen-types with PROTO_LOADER_OPTIONS), never written by hand.
// `FooMessage` is message Foo as proto-loader decodes it (camelCase; 64-bit integers as decimal
// strings; every scalar and repeated field present, unset message fields null; the oneof's virtual
// field naming the set member, and only that member present). `FooInput` is what the encoder
// accepts: every field optional, a (u)int64 also as a number, bytes also as a Uint8Array. Also
// ConsistencyName (the enum as decoded), and CounterServiceClient/Handlers, AdminServiceClient/Handlers.

export type * from "./generated/messages.js";

// ---- Helpers over the generated shapes (not message shapes themselves).

/** A (u)int64 on the wire: decimal string. */
export type Int64String = string;

/** RoutesRequest and ClusterMapRequest have no fields. */
export type EmptyRequestMessage = ClusterMapRequest__Output;

/** The common fields of every read request. */
export type ReadFieldsMessage = Pick<GetRequest__Output, "consistency" | "minIndex" | "shardId" | "epoch">;

/** The members of PipelineRequest.op, by field name. */
export type PipelineOpName = NonNullable<PipelineRequest__Output["op"]>;
export type PipelineOps = { [K in PipelineOpName]: NonNullable<PipelineRequest__Output[K]> };
/** The same members as the encoder accepts them (what a client sends). */
export type PipelineOpInputs = { [K in PipelineOpName]: NonNullable<PipelineRequest[K]> };
/** The common fields of every read request, as a client sends them. */
export type ReadFieldsInput = Pick<GetRequest, "consistency" | "minIndex" | "shardId" | "epoch">;

/** True when A and B are the same type. */
type Same<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;

type Definitions = ProtoGrpcType["tally"]["v1"];

/**
 * A message as the server hands it to the encoder: the generated input type of the message whose
 * decoded shape is T (`Outgoing<MutationResponseMessage>` = MutationResponseInput). Every field is
 * optional (a missing scalar encodes as its default) and a (u)int64 may be a JS number, which
 * protobufjs encodes exactly while it is a safe integer (test/unit/wire-int64.test.ts).
 */
export type Outgoing<T> = {
  [K in keyof Definitions]: Definitions[K] extends MessageTypeDefinition<infer Input, infer Output>
    ? Same<Output, T> extends true
      ? Input
      : never
    : never;
}[keyof Definitions];
