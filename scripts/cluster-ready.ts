/**
 * Polls AdminService.Status on every node until every shard has a leader that all of its replicas
 * agree on. Used by `npm start`, the integration tests and the benchmarks. Every wait has a deadline.
 */
import type { ClusterConfig } from "../src/server/config/config.js";
import { tallyProto } from "../src/api/proto.js";
import * as grpc from "@grpc/grpc-js";
import { toolCredentials } from "../src/server/config/tls.js";

/** `token`: a bearer token with the admin role, for a cluster with an auth section. */
export async function waitForClusterReady(
  config: ClusterConfig,
  timeoutMs: number,
  token?: string,
): Promise<{ shards: number; leaders: Map<number, string> }> {
  const proto = tallyProto();
  const credentials = toolCredentials(config);
  const metadata = new grpc.Metadata();
  if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
  const clients = config.nodes.map((n) => new proto.AdminService(n.client, credentials) as any);
  const deadline = Date.now() + timeoutMs;
  let lastProblem = "no node answered yet";
  try {
    while (Date.now() < deadline) {
      const statuses = await Promise.all(
        clients.map(
          (client: any) =>
            new Promise<any>((resolve) =>
              client.status({ localOnly: true }, metadata, { deadline: Date.now() + 1000 }, (error: Error | null, response: any) =>
                resolve(error ? undefined : response),
              ),
            ),
        ),
      );
      const views = new Map<number, Set<string>>();
      const hosted = new Map<number, number>();
      for (const status of statuses) {
        for (const group of status?.nodes?.[0]?.groups ?? []) {
          hosted.set(group.groupId, (hosted.get(group.groupId) ?? 0) + 1);
          const seen = views.get(group.groupId) ?? new Set<string>();
          seen.add(group.leaderId);
          views.set(group.groupId, seen);
        }
      }
      const expectedShards = config.cluster.shards;
      const leaders = new Map<number, string>();
      lastProblem = "";
      for (let shard = 1; shard <= expectedShards; shard++) {
        const seen = views.get(shard);
        if ((hosted.get(shard) ?? 0) < config.cluster.replicationFactor) {
          lastProblem = `shard ${shard}: ${hosted.get(shard) ?? 0} of ${config.cluster.replicationFactor} replicas answering`;
          break;
        }
        const leader = seen && seen.size === 1 ? [...seen][0]! : "";
        if (leader === "") {
          lastProblem = `shard ${shard}: no agreed leader yet`;
          break;
        }
        leaders.set(shard, leader);
      }
      if (lastProblem === "") return { shards: expectedShards, leaders };
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`timed out after ${timeoutMs} ms: ${lastProblem}`);
  } finally {
    for (const client of clients) client.close();
  }
}
