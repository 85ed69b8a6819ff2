/**
 * The standard gRPC health check (grpc.health.v1.Health/Check) of one node, as orchestrators ask
 * it: SERVING exactly when the node's /readyz says 200 (it runs, knows the partition map, and
 * every shard replica it hosts has a leader it can reach; src/server/ops/ops-http.ts). Health checks
 * pass tally's admission untouched, so no token or role is needed; the token is sent anyway.
 */
import * as grpc from "@grpc/grpc-js";
import { service } from "grpc-health-check";
import { clientTlsCredentials } from "../client/tls-credentials.js";
import { UnavailableError } from "../util/errors.js";
import type { ClientTlsOptions } from "../util/tls.js";

export type ServingStatus = "SERVING" | "NOT_SERVING" | "UNKNOWN" | "SERVICE_UNKNOWN";

export type HealthCheck = (
  address: string,
  options: { tls?: ClientTlsOptions; token?: string; deadlineMs: number },
) => Promise<ServingStatus>;

const HealthClient = grpc.makeGenericClientConstructor(service, "Health");

/** Rejects with an UnavailableError holding grpc-js's text when the node does not answer. */
export const grpcHealthCheck: HealthCheck = (address, options) =>
  new Promise((resolve, reject) => {
    const client = new HealthClient(
      address,
      options.tls === undefined ? grpc.credentials.createInsecure() : clientTlsCredentials(options.tls),
    );
    const metadata = new grpc.Metadata();
    if (options.token !== undefined) metadata.set("authorization", `Bearer ${options.token}`);
    client.makeUnaryRequest<{ service: string }, { status: ServingStatus }>(
      "/grpc.health.v1.Health/Check",
      (request) => Buffer.from(service["Check"]!.requestSerialize(request)),
      (bytes) => service["Check"]!.responseDeserialize(bytes) as { status: ServingStatus },
      { service: "" },
      metadata,
      { deadline: Date.now() + options.deadlineMs },
      (error, response) => {
        client.close();
        if (error) reject(new UnavailableError(`${error.code} ${grpc.status[error.code]}: ${error.details || error.message}`));
        else resolve(response?.status ?? "UNKNOWN");
      },
    );
  });
