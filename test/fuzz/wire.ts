/**
 * Raw byte-level gRPC access for the fuzzer: requests leave exactly as the fuzzer built them
 * (identity serializers), so malformed protobuf reaches the server's own decoder. The server's
 * decoders (proto-loader's requestDeserialize) are used on the fuzzer's side too, to learn what
 * the server made of bytes it accepted.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { tallyProto } from "../../src/api/proto.js";
import { protoFile } from "../../src/util/paths.js";
import { ERROR_DETAILS_METADATA_KEY, decodeErrorInfo } from "../../src/api/error-details.js";

type Json = Record<string, any>;

export interface MethodCodec {
  path: string;
  service: string;
  name: string;
  streaming: boolean;
  encode(request: Json): Buffer;
  decodeRequest(bytes: Buffer): Json;
  decodeResponse(bytes: Buffer): Json;
  encodeResponse(response: Json): Buffer;
}

let tallyMethods: Map<string, MethodCodec> | undefined;

function codecsOf(definition: protoLoader.PackageDefinition, services: string[]): Map<string, MethodCodec> {
  const methods = new Map<string, MethodCodec>();
  for (const service of services) {
    const methodDefinitions = definition[service] as unknown as Record<string, protoLoader.MethodDefinition<Json, Json>>;
    for (const [name, method] of Object.entries(methodDefinitions)) {
      methods.set(name, {
        path: method.path,
        service,
        name,
        streaming: method.requestStream || method.responseStream,
        encode: (request) => method.requestSerialize(request),
        decodeRequest: (bytes) => method.requestDeserialize(bytes),
        decodeResponse: (bytes) => method.responseDeserialize(bytes),
        encodeResponse: (response) => method.responseSerialize(response),
      });
    }
  }
  return methods;
}

/** Every method of CounterService and AdminService, by proto name ("Add", "Status", ...). */
export function tallyMethodCodecs(): Map<string, MethodCodec> {
  tallyMethods ??= codecsOf(tallyProto().packageDefinition, ["tally.v1.CounterService", "tally.v1.AdminService"]);
  return tallyMethods;
}

let peerDefinition: protoLoader.PackageDefinition | undefined;

/** The peer service's methods ("Raft", "Snapshot") and message types. */
export function peerMethodCodecs(): Map<string, MethodCodec> {
  peerDefinition ??= protoLoader.loadSync(protoFile("peer.proto"), {
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return codecsOf(peerDefinition, ["tally.peer.v1.Peer"]);
}

export interface RawOutcome {
  ok: boolean;
  /** gRPC status code (0 when ok). */
  code: number;
  details: string;
  /** The tally ErrorInfo trailer, when the server sent one. */
  info?: Json;
  response?: Buffer;
}

const identity = (bytes: Buffer): Buffer => bytes;

export class RawBytesClient {
  private readonly client: grpc.Client;

  constructor(
    readonly address: string,
    credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  ) {
    this.client = new grpc.Client(address, credentials, {
      "grpc.max_send_message_length": 128 * 1024 * 1024,
      "grpc.max_receive_message_length": 128 * 1024 * 1024,
      "grpc.enable_retries": 0,
    });
  }

  unary(path: string, bytes: Buffer, timeoutMs: number): Promise<RawOutcome> {
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(
        path,
        identity,
        identity,
        bytes,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (error, response) => {
          if (error === null) resolve({ ok: true, code: 0, details: "", response });
          else resolve(outcomeOfError(error));
        },
      );
    });
  }

  /**
   * Opens a bidi stream, writes `messages` one by one, half-closes, and collects every response
   * until the status arrives (or the deadline cancels the call).
   */
  bidi(path: string, messages: Buffer[], timeoutMs: number): Promise<{ status: RawOutcome; responses: Buffer[] }> {
    return new Promise((resolve) => {
      const call = this.client.makeBidiStreamRequest(path, identity, identity, new grpc.Metadata(), { deadline: Date.now() + timeoutMs });
      const responses: Buffer[] = [];
      call.on("data", (data: Buffer) => responses.push(data));
      call.on("error", () => undefined); // the status carries it
      call.on("status", (status: grpc.StatusObject) => {
        if (status.code === grpc.status.OK) resolve({ status: { ok: true, code: 0, details: "" }, responses });
        else resolve({ status: outcomeOfError({ ...status, message: status.details } as grpc.ServiceError), responses });
      });
      for (const message of messages) call.write(message);
      call.end();
    });
  }

  /** A client-streaming call (the peer Snapshot method). */
  clientStream(path: string, messages: Buffer[], timeoutMs: number): Promise<RawOutcome> {
    return new Promise((resolve) => {
      const call = this.client.makeClientStreamRequest(
        path,
        identity,
        identity,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (error, response) => {
          if (error === null) resolve({ ok: true, code: 0, details: "", response });
          else resolve(outcomeOfError(error));
        },
      );
      call.on("error", () => undefined);
      for (const message of messages) call.write(message);
      call.end();
    });
  }

  close(): void {
    this.client.close();
  }
}

function outcomeOfError(error: grpc.ServiceError): RawOutcome {
  const raw = error.metadata?.get(ERROR_DETAILS_METADATA_KEY)?.[0];
  const info = raw instanceof Buffer ? (decodeErrorInfo(raw) as unknown as Json) : undefined;
  return { ok: false, code: error.code, details: error.details ?? error.message, info };
}
