/**
 * Access control against a real 3-node cluster with an auth section: no token and unknown tokens
 * are UNAUTHENTICATED, a read-only token cannot write, a prefix-scoped writer cannot leave its
 * prefix (a mixed batch is refused whole, on the Pipeline and on unary AddBatch), admin RPCs
 * need admin (tallyctl status, shard move, leader transfer, split), nothing refused is ever
 * applied, and Routes shows each caller only the hot counters it holds a role on. The cluster's
 * own node-to-node calls keep working: heartbeats keep every node alive on the metadata leader,
 * and a split runs through the controller's ShardChange. Finally no node log holds a raw token.
 */
import * as grpc from "@grpc/grpc-js";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tallyProto } from "../../src/api/proto.js";
import { PermissionDeniedError, TallyClient, TallyError, UnauthenticatedError } from "../../src/client/index.js";
import { generateToken } from "../../src/util/auth-token.js";
import { eventually, TestCluster, type TestToken } from "../support/cluster.js";
import { keyInShard } from "../support/keys.js";
import { tallyctl } from "../support/tallyctl.js";

const tokens = {
  admin: { name: "ops", token: generateToken(), grants: [{ prefix: "", roles: ["read", "write", "admin"] }] },
  reader: { name: "dashboard", token: generateToken(), grants: [{ prefix: "", roles: ["read"] }] },
  pages: { name: "web", token: generateToken(), grants: [{ prefix: "page:", roles: ["read", "write"] }] },
} satisfies Record<string, TestToken>;

type Json = Record<string, any>;

/**
 * Waits until the metadata leader has heard every node's heartbeat recently (ClusterMap's
 * `alive`, asked of the leader itself): proof that node-to-node AdminService calls get through.
 */
async function everyNodeAlive(admin: TallyClient, nodes: number): Promise<void> {
  await eventually(
    async () => {
      const map = await admin.admin<Json>("ClusterMap", {});
      const leaderAddress = map.fromMetaLeader ? undefined : map.nodes.find((n: Json) => n.nodeId === map.metaLeaderId)?.clientAddress;
      const view = leaderAddress ? await admin.admin<Json>("ClusterMap", {}, { address: leaderAddress }) : map;
      return view.fromMetaLeader && view.nodes.length === nodes && view.nodes.every((n: Json) => n.alive) ? true : undefined;
    },
    10_000,
    "every node alive on the metadata leader",
  );
}

describe("access control", () => {
  let cluster: TestCluster;
  const clients: TallyClient[] = [];
  // Two keys of one shard (of 2): a batch of both is one request to one shard leader.
  const pageKey = keyInShard("page:batch", 1, 2);
  const orderKey = keyInShard("orders:batch", 1, 2);

  beforeAll(async () => {
    cluster = await TestCluster.start({
      nodes: 3,
      shards: 2,
      auth: { tokens: Object.values(tokens), readyToken: tokens.admin.token },
      placement: { autoRebalance: false, heartbeatMs: 200, downAfterMs: 5_000 },
      extraEnv: { TALLY_LOG_LEVEL: "info" },
    });
  }, 60_000);
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await cluster?.destroy();
  });

  function client(token?: string): TallyClient {
    const created = new TallyClient({
      endpoints: cluster.endpoints(),
      deadlineMs: 8_000,
      attemptTimeoutMs: 2_000,
      connectTimeoutMs: 1_000,
      ...(token === undefined ? {} : { token }),
    });
    clients.push(created);
    return created;
  }

  async function rejection(promise: Promise<unknown>): Promise<TallyError> {
    try {
      await promise;
    } catch (error) {
      return error as TallyError;
    }
    throw new Error("expected a rejection");
  }

  /** One raw unary call (no client library), to see the gRPC status itself. */
  function rawUnary(
    service: "CounterService" | "AdminService",
    method: string,
    request: Json,
    token?: string,
  ): Promise<{ code: number; response?: Json }> {
    const stub = new (tallyProto()[service])(cluster.endpoints()[0]!, grpc.credentials.createInsecure()) as any;
    const metadata = new grpc.Metadata();
    if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
    return new Promise((resolve) => {
      stub[method](request, metadata, { deadline: Date.now() + 5_000 }, (error: grpc.ServiceError | null, response: Json) => {
        stub.close();
        resolve(error ? { code: error.code } : { code: grpc.status.OK, response });
      });
    });
  }

  const value = async (key: string) => (await client(tokens.admin.token).get(key)).value;
  const exists = async (key: string) => (await client(tokens.admin.token).get(key)).exists;

  it("no token, or an unknown one: UNAUTHENTICATED, and the counter is unchanged", async () => {
    await client(tokens.admin.token).set("page:home", 5n);
    const anonymous = await rejection(client().add("page:home", 1n));
    expect(anonymous).toBeInstanceOf(UnauthenticatedError);
    expect(anonymous.code).toBe("UNAUTHENTICATED");
    const unknown = await rejection(client(generateToken()).add("page:home", 1n));
    expect(unknown).toBeInstanceOf(UnauthenticatedError);
    expect(unknown.message).toMatch(/unknown token/);
    expect((await rawUnary("CounterService", "add", { header: { shardId: 0 }, key: Buffer.from("page:home"), delta: 1 })).code).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    expect((await rawUnary("CounterService", "get", { key: Buffer.from("page:home") })).code).toBe(grpc.status.UNAUTHENTICATED);
    expect(await value("page:home")).toBe(5n);
  });

  it("a read-only token reads but cannot write (PERMISSION_DENIED, value unchanged)", async () => {
    const reader = client(tokens.reader.token);
    expect((await reader.get("page:home")).value).toBe(5n);
    expect((await reader.getMany(["page:home", "orders:none"])).map((read) => read.value)).toEqual([5n, 0n]);
    const denied = await rejection(reader.add("page:home", 1n));
    expect(denied).toBeInstanceOf(PermissionDeniedError);
    expect(denied.code).toBe("PERMISSION_DENIED");
    expect(
      (await rawUnary("CounterService", "set", { header: { shardId: 0 }, key: Buffer.from("page:home"), value: 99 }, tokens.reader.token))
        .code,
    ).toBe(grpc.status.PERMISSION_DENIED);
    expect(await value("page:home")).toBe(5n);
  });

  it("a prefix-scoped writer writes its prefix only; a mixed batch is refused whole", async () => {
    const web = client(tokens.pages.token);
    expect((await web.add("page:home", 2n)).value).toBe(7n);
    const denied = await rejection(web.add("orders:1", 1n));
    expect(denied.code).toBe("PERMISSION_DENIED");
    expect(denied.message).toContain('"orders:1"');
    expect(await exists("orders:1")).toBe(false);
    expect((await rejection(web.get("orders:1"))).code).toBe("PERMISSION_DENIED");

    // Through the client library: the Pipeline's batch op.
    const mixed = await rejection(
      web.addBatch([
        { key: pageKey, delta: 1n },
        { key: orderKey, delta: 1n },
      ]),
    );
    expect(mixed.code).toBe("PERMISSION_DENIED");
    // Unary AddBatch with the shard's routing header.
    const routes = await client(tokens.admin.token).routes();
    const shard = routes.shards.find((s) => s.shardId === 1)!;
    const leader = shard.leaderAddress ?? shard.replicas[0]!.address;
    const stub = new (tallyProto().CounterService)(leader, grpc.credentials.createInsecure()) as any;
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${tokens.pages.token}`);
    const batch = {
      header: { shardId: 1, epoch: 0, clientId: 0, seq: 0 },
      ops: [{ add: { key: Buffer.from(pageKey), delta: 1 } }, { add: { key: Buffer.from(orderKey), delta: 1 } }],
    };
    const code = await new Promise<number>((resolve) =>
      stub.addBatch(batch, metadata, { deadline: Date.now() + 5_000 }, (error: grpc.ServiceError | null) => resolve(error?.code ?? 0)),
    );
    stub.close();
    expect(code).toBe(grpc.status.PERMISSION_DENIED);
    expect(await exists(pageKey)).toBe(false);
    expect(await exists(orderKey)).toBe(false);
    // The same writer's batch inside its prefix goes through.
    const ok = await web.addBatch([
      { key: pageKey, delta: 1n },
      { key: "page:other", delta: 2n },
    ]);
    expect(ok.map((result) => result.value)).toEqual([1n, 2n]);
  });

  it("a watch outside the caller's prefix is refused", async () => {
    const stub = new (tallyProto().CounterService)(cluster.endpoints()[0]!, grpc.credentials.createInsecure()) as any;
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${tokens.pages.token}`);
    const call = stub.watch({ key: Buffer.from("orders:"), prefix: true, shardId: 1 }, metadata);
    const code = await new Promise<number>((resolve) => {
      call.on("error", (error: grpc.ServiceError) => resolve(error.code));
      call.on("data", () => resolve(-1));
    });
    stub.close();
    expect(code).toBe(grpc.status.PERMISSION_DENIED);
    // A watch refused for bad input (not auth) ends with its status too, instead of hanging.
    const reader = new (tallyProto().CounterService)(cluster.endpoints()[0]!, grpc.credentials.createInsecure()) as any;
    const readerMetadata = new grpc.Metadata();
    readerMetadata.set("authorization", `Bearer ${tokens.reader.token}`);
    const badCall = reader.watch({ key: Buffer.from("page:"), prefix: true, shardId: 1, coalesceMs: 5 }, readerMetadata);
    const badCode = await new Promise<number>((resolve) => {
      badCall.on("error", (error: grpc.ServiceError) => resolve(error.code));
      badCall.on("data", () => resolve(-1));
    });
    reader.close();
    expect(badCode).toBe(grpc.status.INVALID_ARGUMENT);
    // The client library's watch ends with the typed error instead of reconnecting.
    const watch = client(tokens.pages.token).watch("orders:", { prefix: true });
    expect(await rejection(watch.next())).toBeInstanceOf(PermissionDeniedError);
  });

  it("admin RPCs need admin: tallyctl status and shard move are refused without it, allowed with it", async () => {
    const endpoints = cluster.endpoints();
    const anonymous = await tallyctl(endpoints, "status");
    expect(anonymous.code).toBe(1);
    expect(anonymous.output).toContain("UNAUTHENTICATED");
    const reader = await tallyctl(endpoints, "--token", tokens.reader.token, "status");
    expect(reader.code).toBe(1);
    expect(reader.output).toContain("PERMISSION_DENIED");
    const move = await tallyctl(endpoints, "--token", tokens.pages.token, "shard", "move", "1", "--from", "1", "--to", "2");
    expect(move.code).toBe(1);
    expect(move.output).toContain("PERMISSION_DENIED");
    const map = (await rawUnary("AdminService", "clusterMap", {}, tokens.admin.token)).response!;
    expect(map.operations).toEqual([]);

    const admin = await tallyctl(endpoints, "--token", tokens.admin.token, "status");
    expect(admin.code).toBe(0);
    expect(admin.output).toContain("3 nodes (3 reachable)");
    // Heartbeats and node-to-node status fan-out are the cluster's own: a human admin cannot send them.
    expect((await rawUnary("AdminService", "heartbeat", { body: Buffer.from([0x80]) }, tokens.admin.token)).code).toBe(
      grpc.status.PERMISSION_DENIED,
    );
  });

  it("Routes lists only the hot counters the caller holds a role on", async () => {
    const admin = client(tokens.admin.token);
    await admin.declareHot("page:hot", 2);
    await admin.declareHot("orders:hot", 2);
    const hotKeys = async (token: string): Promise<string[]> => {
      const { code, response } = await rawUnary("CounterService", "routes", {}, token);
      expect(code).toBe(grpc.status.OK);
      return (response!.hot as Json[]).map((route) => Buffer.from(route.key).toString()).sort();
    };
    await eventually(
      async () => ((await hotKeys(tokens.admin.token)).length === 2 ? true : undefined),
      10_000,
      "both hot counters in the routes",
    );
    expect(await hotKeys(tokens.admin.token)).toEqual(["orders:hot", "page:hot"]);
    expect(await hotKeys(tokens.reader.token)).toEqual(["orders:hot", "page:hot"]);
    // The prefix-scoped writer learns of its own hot counter (it must, to spread its adds), not of others'.
    expect(await hotKeys(tokens.pages.token)).toEqual(["page:hot"]);
    expect((await rawUnary("CounterService", "routes", {})).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("the cluster's own calls keep working: every node heartbeats, a leader transfer and a split complete", async () => {
    // Every node alive on the metadata leader: their heartbeats (AdminService.Heartbeat) got through.
    await everyNodeAlive(client(tokens.admin.token), 3);
    // Status from one node fans out to the others with the internal token.
    const status = await client(tokens.admin.token).status();
    expect(status.nodes.map((n) => n.reachable)).toEqual([true, true, true]);

    const routes = await client(tokens.admin.token).routes();
    const shard = routes.shards.find((s) => s.shardId === 2)!;
    const target = shard.replicas.find((r) => r.nodeId !== shard.leaderId && r.role === "voter")!.nodeId;
    const denied = await tallyctl(cluster.endpoints(), "--token", tokens.reader.token, "leader", "transfer", "2", "--to", target);
    expect(denied.code).toBe(1);
    const transfer = await tallyctl(cluster.endpoints(), "--token", tokens.admin.token, "leader", "transfer", "2", "--to", target);
    expect(transfer.code, transfer.output).toBe(0);
    await eventually(
      async () => ((await client(tokens.admin.token).routes()).shards.find((s) => s.shardId === 2)?.leaderId === target ? true : undefined),
      10_000,
      `node ${target} to lead shard 2`,
    );

    // A split: the controller on the metadata leader asks the shard leader (ShardChange, node to node).
    const split = await tallyctl(cluster.endpoints(), "--token", tokens.admin.token, "shard", "split", "1");
    expect(split.code, split.output).toBe(0);
    await eventually(
      async () => ((await client(tokens.admin.token).routes()).shards.length === 3 ? true : undefined),
      20_000,
      "the split to finish",
    );
    expect((await client(tokens.pages.token).add("page:home", 1n)).value).toBe(8n);
  });

  it("no node log holds a raw token; denials are logged by name", async () => {
    expect(cluster.internalToken).toBeDefined();
    const secrets = [...Object.values(tokens).map((t) => t.token), cluster.internalToken!];
    let denials = 0;
    for (const node of cluster.config.nodes) {
      const log = cluster.logs(node.id);
      for (const secret of secrets) expect(log.includes(secret), `node ${node.id} logged a token`).toBe(false);
      // The random part alone must not appear either (e.g. logged without its prefix).
      for (const secret of secrets) expect(log.includes(secret.slice(4))).toBe(false);
      denials += log.split("request denied").length - 1;
    }
    expect(denials).toBeGreaterThan(0);
    const all = cluster.config.nodes.map((n) => cluster.logs(n.id)).join("");
    expect(all).toContain('"principal":"dashboard"');
  });
});

describe("access control with mTLS: certificate identities, nodes known by their certificates", () => {
  let cluster: TestCluster;
  const clients: TallyClient[] = [];
  const reader = { name: "dashboard", token: generateToken(), grants: [{ prefix: "", roles: ["read"] }] } satisfies TestToken;

  beforeAll(async () => {
    cluster = await TestCluster.start({
      nodes: 3,
      shards: 1,
      tls: { clientAuth: "require" },
      // No internal token file: the nodes' own certificates (tally://node/<id>) identify them.
      auth: {
        tokens: [reader],
        certificates: [{ name: "operator", identity: "tally-client", grants: [{ prefix: "", roles: ["read", "write", "admin"] }] }],
        internalToken: false,
      },
      placement: { autoRebalance: false, heartbeatMs: 200, downAfterMs: 5_000 },
    });
  }, 60_000);
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await cluster?.destroy();
  });

  function client(token?: string): TallyClient {
    const certs = join(cluster.dir, "certs");
    const tls = { ca: join(certs, "ca.pem"), cert: join(certs, "client.pem"), key: join(certs, "client-key.pem") };
    const created = new TallyClient({
      endpoints: cluster.endpoints(),
      deadlineMs: 8_000,
      attemptTimeoutMs: 2_000,
      connectTimeoutMs: 1_000,
      tls,
      ...(token === undefined ? {} : { token }),
    });
    clients.push(created);
    return created;
  }

  it("the mapped client certificate is the operator; a token on top of it speaks for its own name", async () => {
    expect(cluster.internalToken).toBeUndefined();
    expect((await client().add("page:tls", 3n)).value).toBe(3n);
    const denied = await client(reader.token)
      .add("page:tls", 1n)
      .catch((error: unknown) => error);
    expect(denied).toBeInstanceOf(PermissionDeniedError);
    expect((await client(reader.token).get("page:tls")).value).toBe(3n);
  });

  it("heartbeats and status fan-out between nodes pass on the nodes' certificates", async () => {
    await everyNodeAlive(client(), 3);
    const status = await client().status();
    expect(status.nodes.map((n) => n.reachable)).toEqual([true, true, true]);
  });
});
