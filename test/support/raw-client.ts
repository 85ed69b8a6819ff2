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

  constructor(readonly address: string) {
    const proto = tallyProto();
    this.counter = new proto.CounterService(address, grpc.credentials.createInsecure());
    this.admin = new proto.AdminService(address, grpc.credentials.createInsecure());
  }

  call(method: string, request: Record<string, unknown>, timeoutMs = 5000): Promise<any> {
    const target = method === "status" || method === "transferLeader" ? this.admin : this.counter;
    return new Promise((resolve, reject) => {
      target[method](request, { deadline: Date.now() + timeoutMs }, (error: grpc.ServiceError | null, response: any) => {
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
export async function leaderClient(endpoints: string[], shardId: number, timeoutMs = 10_000): Promise<RawNodeClient> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const endpoint of endpoints) {
      const client = new RawNodeClient(endpoint);
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
