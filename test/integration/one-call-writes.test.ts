/**
 * The protocol a client in any language can use in one call (issue 19), on real tallyd processes:
 * a write with a request_id sent to a node that does not lead its shard is forwarded to the leader
 * and applied exactly once, a retry of the id (across a leader change and a full restart) returns
 * the first result, a reused id with other operations is refused, `{hash tag}` keys share a shard
 * and one atomic batch, and reflection serves proto/tally.proto's snake_case fields and the health
 * service. With auth on, the caller's identity survives the forward and no client can forge it.
 */
import { resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import descriptor from "protobufjs/ext/descriptor/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ForwardWriteRequestInput, tallyProto } from "../../src/api/proto.js";
import { generateToken } from "../../src/util/auth-token.js";
import { eventually, TestCluster, type TestToken } from "../support/cluster.js";
import { keyInShard } from "../support/keys.js";
import { RawCallError, RawNodeClient } from "../support/raw-client.js";

const SHARDS = 2;
const codeOf = (error: unknown): string => (error instanceof RawCallError ? error.code : `not a RawCallError: ${String(error)}`);
const add = (key: string, delta: number, requestId: string) => ({ header: { requestId }, key: Buffer.from(key), delta: String(delta) });

/** Node ids by role for a shard, from each node's own status. */
async function roles(cluster: TestCluster, shardId: number, token?: string): Promise<{ leader: number; followers: number[] }> {
  return eventually(
    async () => {
      let leader = 0;
      const followers: number[] = [];
      for (const node of cluster.config.nodes) {
        const raw = new RawNodeClient(node.client, token === undefined ? {} : { token });
        try {
          const status = await raw.call("status", { localOnly: true }, 2000);
          const group = status.nodes[0]?.groups.find((g: any) => g.groupId === shardId);
          if (group?.role === "leader") leader = node.id;
          else if (group !== undefined && group.leaderId !== "") followers.push(node.id);
        } finally {
          raw.close();
        }
      }
      return leader !== 0 && followers.length === cluster.config.nodes.length - 1 ? { leader, followers } : undefined;
    },
    20_000,
    `a leader and caught-up followers of shard ${shardId}`,
  );
}

describe("one-call writes (3 real nodes, no auth)", () => {
  let cluster: TestCluster;
  const clients = new Map<number, RawNodeClient>();
  const on = (nodeId: number): RawNodeClient => {
    let client = clients.get(nodeId);
    if (client === undefined) {
      client = new RawNodeClient(cluster.config.nodes.find((n) => n.id === nodeId)!.client);
      clients.set(nodeId, client);
    }
    return client;
  };
  const value = async (nodeId: number, key: string): Promise<string> =>
    (await on(nodeId).call("get", { key: Buffer.from(key) }, 10_000)).value;

  beforeAll(async () => {
    cluster = await TestCluster.start({ nodes: 3, shards: SHARDS });
  }, 60_000);

  afterAll(async () => {
    for (const client of clients.values()) client.close();
    await cluster?.destroy();
  });

  it("a follower forwards a request_id write to the leader; concurrent duplicates count exactly once", async () => {
    const key = keyInShard("fwd", 1, SHARDS);
    const { leader, followers } = await roles(cluster, 1);
    const follower = followers[0]!;
    const first = await on(follower).call("add", add(key, 3, "fwd-1"));
    expect(first.value).toBe("3");
    // 40 logical increments, each sent twice at once through both followers: 40 applied.
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => [
        on(followers[0]!).call("add", add(key, 1, `fwd-burst-${i}`), 10_000),
        on(followers[1]!).call("add", add(key, 1, `fwd-burst-${i}`), 10_000),
      ]).flat(),
    );
    expect(await value(leader, key)).toBe("43");
    // A retry of the first id anywhere returns its first result and changes nothing.
    for (const node of [leader, ...followers]) {
      const retry = await on(node).call("add", add(key, 3, "fwd-1"));
      expect(retry.value).toBe("3");
      expect(retry.version).toBe(first.version);
    }
    expect(await value(leader, key)).toBe("43");
  }, 60_000);

  it("a reused request_id with another payload is refused (INVALID_ARGUMENT) and changes nothing", async () => {
    const key = keyInShard("reuse", 2, SHARDS);
    const { leader, followers } = await roles(cluster, 2);
    await on(followers[0]!).call("add", add(key, 1, "reuse-1"));
    const error = await on(followers[1]!)
      .call("add", add(key, 2, "reuse-1"))
      .catch((e: unknown) => e);
    expect(codeOf(error)).toBe("INVALID_ARGUMENT");
    expect((error as RawCallError).message).toContain('request id "reuse-1" was used for a different request');
    expect(await value(leader, key)).toBe("1");
  }, 30_000);

  it("a mutation with neither a session nor a request_id is refused, saying what to send", async () => {
    const { followers } = await roles(cluster, 1);
    const error = await on(followers[0]!)
      .call("add", { key: Buffer.from("x"), delta: "1" })
      .catch((e: unknown) => e);
    expect(codeOf(error)).toBe("INVALID_ARGUMENT");
    expect((error as RawCallError).message).toContain("a request_id");
    const both = await on(followers[0]!)
      .call("add", { header: { requestId: "r", clientId: "5", seq: "1" }, key: Buffer.from("x"), delta: "1" })
      .catch((e: unknown) => e);
    expect(codeOf(both)).toBe("INVALID_ARGUMENT");
    const bad = await on(followers[0]!)
      .call("add", add("x", 1, "caf\u00e9"))
      .catch((e: unknown) => e);
    expect((bad as RawCallError).message).toContain("header.request_id must be printable ASCII");
  }, 30_000);

  it("{hash tag} keys share a shard and apply in one atomic batch, through a follower", async () => {
    const { leader, followers } = await roles(cluster, 1);
    // Find a tag on shard 1: every key with it lands there.
    const tag = keyInShard("user", 1, SHARDS);
    const [a, b] = [`{${tag}}:views`, `{${tag}}:clicks`];
    const batch = (requestId: string, floor?: string) => ({
      header: { requestId },
      ops: [
        { add: { key: Buffer.from(a), delta: "2" } },
        { add: { key: Buffer.from(b), delta: floor === undefined ? "1" : "-1", hasFloor: floor !== undefined, floor: floor ?? "0" } },
      ],
    });
    const applied = await on(followers[0]!).call("addBatch", batch("tag-1"));
    expect(applied.results.map((r: any) => r.value)).toEqual(["2", "1"]);
    // All or none: the second op fails its floor, so the first is not applied either.
    const refused = await on(followers[1]!)
      .call("addBatch", batch("tag-2", "1"))
      .catch((e: unknown) => e);
    expect(codeOf(refused)).toBe("FAILED_PRECONDITION");
    expect((refused as RawCallError).info?.opIndex).toBe(1);
    expect([await value(leader, a), await value(leader, b)]).toEqual(["2", "1"]);
  }, 30_000);

  it("a request_id is remembered across a leader change and a restart of every node", async () => {
    const key = keyInShard("survive", 1, SHARDS);
    const before = await roles(cluster, 1);
    const first = await on(before.followers[0]!).call("add", add(key, 7, "survive-1"));
    expect(first.value).toBe("7");
    // Leadership moves to the node that forwarded the write.
    const target = before.followers[0]!;
    await on(before.leader).call("transferLeader", { shardId: 1, toNode: String(target) });
    await eventually(async () => (await roles(cluster, 1)).leader === target || undefined, 20_000, `node ${target} leading shard 1`);
    expect((await on(before.leader).call("add", add(key, 7, "survive-1"))).value).toBe("7");
    expect(await value(target, key)).toBe("7");
    // Every node restarts from its own storage.
    for (const client of clients.values()) client.close();
    clients.clear();
    for (const node of cluster.config.nodes) await cluster.stop(node.id);
    await cluster.startAll();
    const after = await roles(cluster, 1);
    const retry = await on(after.followers[1]!).call("add", add(key, 7, "survive-1"), 10_000);
    expect(retry.value).toBe("7");
    expect(retry.version).toBe(first.version);
    expect(await value(after.leader, key)).toBe("7");
    expect((await on(after.followers[0]!).call("add", add(key, 1, "survive-2"))).value).toBe("8");
    cluster.assertNoUnexpectedExit();
  }, 90_000);

  it("a forward to a leader that just died is UNAVAILABLE (unknown), and retrying the same id counts once", async () => {
    const key = keyInShard("dead", 2, SHARDS);
    const { leader, followers } = await roles(cluster, 2);
    await cluster.kill(leader);
    // The followers still believe in the dead leader until an election timeout passes.
    const first = await on(followers[0]!)
      .call("add", add(key, 4, "dead-1"))
      .catch((e: unknown) => e);
    expect(codeOf(first)).toBe("UNAVAILABLE");
    expect((first as RawCallError).message).toMatch(/forwarding to node \d+ .* failed: .*retry with the same request_id/);
    const answers = await eventually(
      async () => {
        const reply = await on(followers[1]!).call("add", add(key, 4, "dead-1"), 5_000);
        return reply.value as string;
      },
      20_000,
      "the retried write answered by the new leader",
    );
    expect(answers).toBe("4");
    const { leader: next } = await eventually(
      async () => {
        const status = await on(followers[0]!).call("status", { localOnly: true });
        const group = status.nodes[0]?.groups.find((g: any) => g.groupId === 2);
        return group?.leaderId ? { leader: Number(group.leaderId) } : undefined;
      },
      20_000,
      "a new leader of shard 2",
    );
    expect(await value(next, key)).toBe("4");
    cluster.startNode(leader);
    await cluster.waitReady();
  }, 60_000);

  it("reflection serves proto/tally.proto as written (snake_case) and lists the health service", async () => {
    const address = cluster.config.nodes[0]!.client;
    const reflectionProto = resolve(
      import.meta.dirname,
      "..",
      "..",
      "node_modules",
      "@grpc",
      "reflection",
      "build",
      "proto",
      "grpc",
      "reflection",
      "v1",
      "reflection.proto",
    );
    const definition = protoLoader.loadSync(reflectionProto, { keepCase: true, longs: String, defaults: true, oneofs: true });
    const Reflection = (grpc.loadPackageDefinition(definition) as any).grpc.reflection.v1.ServerReflection as grpc.ServiceClientConstructor;
    const client = new Reflection(address, grpc.credentials.createInsecure()) as any;
    const ask = (request: object): Promise<any> =>
      new Promise((resolvePromise, reject) => {
        const stream = client.ServerReflectionInfo({ deadline: Date.now() + 10_000 });
        stream.on("data", (response: any) => {
          resolvePromise(response);
          stream.end();
        });
        stream.on("error", reject);
        stream.write(request);
      });
    try {
      const services = (await ask({ list_services: "" })).list_services_response.service.map((s: any) => s.name);
      expect(services).toEqual(expect.arrayContaining(["tally.v1.CounterService", "tally.v1.AdminService", "grpc.health.v1.Health"]));
      const files = (await ask({ file_containing_symbol: "tally.v1.RequestHeader" })).file_descriptor_response.file_descriptor_proto.map(
        (bytes: Buffer) => descriptor.FileDescriptorProto.decode(bytes),
      ) as any[];
      const file = files.find((f) => f.package === "tally.v1");
      expect(file.name).toBe("tally.proto");
      const header = file.messageType.find((m: any) => m.name === "RequestHeader");
      expect(header.field.map((f: any) => f.name)).toEqual(["shard_id", "epoch", "client_id", "seq", "first_unacked_seq", "request_id"]);
      const health = (await ask({ file_containing_symbol: "grpc.health.v1.Health" })).file_descriptor_response.file_descriptor_proto.map(
        (bytes: Buffer) => descriptor.FileDescriptorProto.decode(bytes),
      ) as any[];
      expect(health.map((f) => f.name)).toContain("grpc/health/v1/health.proto");
    } finally {
      client.close();
    }
  }, 30_000);
});

describe("one-call writes with auth on: the forward keeps the caller, and only nodes may forward", () => {
  const tokens = {
    admin: { name: "ops", token: generateToken(), grants: [{ prefix: "", roles: ["read", "write", "admin"] }] },
    alice: { name: "alice", token: generateToken(), grants: [{ prefix: "", roles: ["read", "write"] }] },
    bob: { name: "bob", token: generateToken(), grants: [{ prefix: "", roles: ["read", "write"] }] },
  } satisfies Record<string, TestToken>;
  let cluster: TestCluster;
  const opened: RawNodeClient[] = [];
  const as = (nodeId: number, token: string): RawNodeClient => {
    const client = new RawNodeClient(cluster.config.nodes.find((n) => n.id === nodeId)!.client, { token });
    opened.push(client);
    return client;
  };

  beforeAll(async () => {
    cluster = await TestCluster.start({
      nodes: 3,
      shards: SHARDS,
      auth: { tokens: Object.values(tokens), readyToken: tokens.admin.token },
    });
  }, 60_000);

  afterAll(async () => {
    for (const client of opened) client.close();
    await cluster?.destroy();
  });

  it("request ids are per caller through a forward: alice's and bob's same id both apply, each once", async () => {
    const key = keyInShard("owned", 2, SHARDS);
    const { leader, followers } = await roles(cluster, 2, tokens.admin.token);
    expect((await as(followers[0]!, tokens.alice.token).call("add", add(key, 1, "same-id"))).value).toBe("1");
    expect((await as(followers[1]!, tokens.bob.token).call("add", add(key, 1, "same-id"))).value).toBe("2");
    expect((await as(leader, tokens.alice.token).call("add", add(key, 1, "same-id"))).value).toBe("1");
    expect((await as(followers[1]!, tokens.bob.token).call("add", add(key, 1, "same-id"))).value).toBe("2");
    expect((await as(leader, tokens.admin.token).call("get", { key: Buffer.from(key) })).value).toBe("2");
  }, 30_000);

  it("ForwardWrite is for nodes: a client token (even admin) naming an owner is PERMISSION_DENIED and applies nothing", async () => {
    const key = keyInShard("forged", 1, SHARDS);
    const { leader } = await roles(cluster, 1, tokens.admin.token);
    const address = cluster.config.nodes.find((n) => n.id === leader)!.client;
    const admin = new (tallyProto().AdminService)(address, grpc.credentials.createInsecure()) as any;
    // A well-formed forward that names an owner: only the caller's token keeps it from applying.
    const request: ForwardWriteRequestInput = {
      shardId: 1,
      epoch: 0,
      timeoutMs: 2000,
      requestId: "forged-1",
      owner: "alice",
      ops: [{ add: { key: Buffer.from(key), delta: 1 } }],
    };
    try {
      for (const token of [tokens.admin.token, tokens.bob.token]) {
        const metadata = new grpc.Metadata();
        metadata.set("authorization", `Bearer ${token}`);
        const code = await new Promise<number>((resolvePromise) =>
          admin.forwardWrite(request, metadata, { deadline: Date.now() + 5000 }, (error: grpc.ServiceError | null) =>
            resolvePromise(error?.code ?? grpc.status.OK),
          ),
        );
        expect(code).toBe(grpc.status.PERMISSION_DENIED);
      }
    } finally {
      admin.close();
    }
    expect((await as(leader, tokens.admin.token).call("get", { key: Buffer.from(key) })).exists).toBe(false);
  }, 30_000);
});
