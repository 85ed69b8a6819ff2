/**
 * A thin promise wrapper over the generated gRPC stubs, talking to ONE node, with the server's
 * ErrorInfo trailer decoded. The integration tests use it to poke at the wire protocol directly
 * (the client library has its own tests and hides redirects).
 */
import * as grpc from "@grpc/grpc-js";
import { tallyProto } from "../../src/api/proto.js";
import { ERROR_DETAILS_METADATA_KEY, decodeErrorInfo } from "../../src/api/error-details.js";

export class RawCallError extends Error {
  constructor(
    readonly grpcCode: number,
    readonly info: Record<string, any> | undefined,
    message: string,
  ) {
    super(message);
  }
  get code(): string {
    return this.info?.code ?? `GRPC_${this.grpcCode}`;
  }
}

export class RawNodeClient {
  private readonly counter: any;
  private readonly admin: any;

  private readonly metadata = new grpc.Metadata();

  /** `token`: sent as "authorization: Bearer <token>" on every call (a cluster with auth:). */
  constructor(
    readonly address: string,
    options: { token?: string } = {},
  ) {
    const proto = tallyProto();
    this.counter = new proto.CounterService(address, grpc.credentials.createInsecure());
    this.admin = new proto.AdminService(address, grpc.credentials.createInsecure());
    if (options.token !== undefined) this.metadata.set("authorization", `Bearer ${options.token}`);
  }

  call(method: string, request: Record<string, unknown>, timeoutMs = 5000): Promise<any> {
    const target = method === "status" || method === "transferLeader" ? this.admin : this.counter;
    return new Promise((resolve, reject) => {
      target[method](request, this.metadata, { deadline: Date.now() + timeoutMs }, (error: grpc.ServiceError | null, response: any) => {
        if (!error) return resolve(response);
        const raw = error.metadata?.get(ERROR_DETAILS_METADATA_KEY)?.[0];
        const info = raw instanceof Buffer ? (decodeErrorInfo(raw) as unknown as Record<string, any>) : undefined;
        reject(new RawCallError(error.code, info, error.details || error.message));
      });
    });
  }

  close(): void {
    this.counter.close();
    this.admin.close();
  }
}

/** Finds the node that leads `shardId` and returns a client for it. */
export async function leaderClient(
  endpoints: string[],
  shardId: number,
  timeoutMs = 10_000,
  options: { token?: string } = {},
): Promise<RawNodeClient> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const endpoint of endpoints) {
      const client = new RawNodeClient(endpoint, options);
      try {
        const status = await client.call("status", { localOnly: true }, 1000);
        const group = status.nodes[0]?.groups.find((g: any) => g.groupId === shardId);
        if (group?.role === "leader") return client;
      } catch {
        // unreachable node: try the next one
      }
      client.close();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no leader for shard ${shardId} within ${timeoutMs} ms`);
}

export interface RawBytesOutcome {
  /** gRPC status code (0 = OK). */
  code: number;
  details: string;
  /** The server's ErrorInfo trailer, when it sent one. */
  info?: Record<string, any>;
  response?: Buffer;
}

/**
 * One unary call whose request bytes leave exactly as given (an identity serializer), so a test
 * can send what no encoder would: malformed protobuf, or a message far over the server's limit.
 * `token` adds `authorization: Bearer <token>`.
 */
export function rawBytesCall(
  address: string,
  path: string,
  bytes: Buffer,
  options: { token?: string; timeoutMs?: number } = {},
): Promise<RawBytesOutcome> {
  const identity = (value: Buffer): Buffer => value;
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), {
    "grpc.max_send_message_length": 128 * 1024 * 1024,
    "grpc.max_receive_message_length": 128 * 1024 * 1024,
    "grpc.enable_retries": 0,
  });
  const metadata = new grpc.Metadata();
  if (options.token !== undefined) metadata.set("authorization", `Bearer ${options.token}`);
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      identity,
      identity,
      bytes,
      metadata,
      { deadline: Date.now() + (options.timeoutMs ?? 5000) },
      (error, response) => {
        client.close();
        if (error === null) return resolve({ code: grpc.status.OK, details: "", ...(response === undefined ? {} : { response }) });
        const raw = error.metadata?.get(ERROR_DETAILS_METADATA_KEY)?.[0];
        const info = raw instanceof Buffer ? (decodeErrorInfo(raw) as unknown as Record<string, any>) : undefined;
        resolve({ code: error.code, details: error.details ?? error.message, ...(info === undefined ? {} : { info }) });
      },
    );
  });
}
