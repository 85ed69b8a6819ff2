/**
 * Operations against 3 real tallyd processes: the Prometheus endpoint has the expected series with
 * sane values, /livez and /readyz follow the node's ability to serve (a survivor without quorum is
 * not ready, and is again once its peers return), the per-client in-flight limit refuses the
 * excess with RESOURCE_EXHAUSTED and a retry hint and applies exactly what it acknowledged, and an
 * oversized request is refused whole.
 */
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import * as http2 from "node:http2";
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import { slotOf } from "../../src/meta/slots.js";
import { TestCluster, eventually, withDeadline } from "../support/cluster.js";
import { RawCallError, leaderClient } from "../support/raw-client.js";
import { keyInShard } from "../support/keys.js";

const SHARDS = 2;
const MAX_INFLIGHT_PER_CLIENT = 4;
const MAX_REQUEST_BYTES = 64 * 1024;

let cluster: TestCluster;
let client: TallyClient;

beforeAll(async () => {
  cluster = await TestCluster.start({
    nodes: 3,
    shards: SHARDS,
    metrics: true,
    limits: { maxInflightPerClient: MAX_INFLIGHT_PER_CLIENT, maxRequestBytes: MAX_REQUEST_BYTES },
  });
  client = new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 15_000 });
});

afterAll(async () => {
  await client?.close();
  await cluster?.destroy();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

async function fetchText(url: string): Promise<{ status: number; body: string; contentType: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: response.status, body: await response.text(), contentType: response.headers.get("content-type") ?? "" };
}

/** The Prometheus text format, as far as these tests need it (no escaped quotes in label values). */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!match) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

async function scrape(id: number): Promise<Sample[]> {
  const { status, body, contentType } = await fetchText(`${cluster.opsUrl(id)}/metrics`);
  expect(status).toBe(200);
  expect(contentType).toContain("text/plain");
  return parseMetrics(body);
}

function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);
}

async function scrapeAll(): Promise<Sample[][]> {
  return Promise.all(cluster.config.nodes.map((n) => scrape(n.id)));
}

const addsAcknowledged = (all: Sample[][]) => all.reduce((total, samples) => total + sum(samples, "tally_ops_total", { kind: "add" }), 0);

describe("metrics", () => {
  test("/metrics: ops counted exactly, one leader per group, terms, storage and process series", async () => {
    const before = addsAcknowledged(await scrapeAll());
    const adds = 25;
    for (let i = 0; i < adds; i++) await client.add(`ops:metrics:${i % 5}`, 1n);
    const all = await scrapeAll();
    expect(addsAcknowledged(all) - before).toBe(adds);

    for (const [i, samples] of all.entries()) {
      const node = String(i + 1);
      expect(samples.every((s) => s.labels.node === node)).toBe(true);
      const terms = samples.filter((s) => s.name === "tally_raft_term");
      // Two shards and the metadata group on every node (RF 3 of 3 nodes).
      expect(terms.map((s) => s.labels.group).sort()).toEqual(["1", "2", "meta"]);
      for (const term of terms) expect(term.value).toBeGreaterThanOrEqual(1);
      for (const group of ["1", "2"]) {
        const commit = sum(samples, "tally_raft_commit_index", { group });
        const applied = sum(samples, "tally_raft_applied_index", { group });
        expect(applied).toBeGreaterThan(0);
        expect(applied).toBeLessThanOrEqual(commit);
        expect(sum(samples, "tally_raft_apply_lag_entries", { group })).toBe(commit - applied);
      }
      expect(sum(samples, "tally_storage_write_seconds_count", { sync: "true" })).toBeGreaterThan(0);
      expect(sum(samples, "tally_storage_write_bytes_total")).toBeGreaterThan(0);
      expect(sum(samples, "tally_loop_iterations_total")).toBeGreaterThan(0);
      expect(samples.some((s) => s.name === "tally_peer_queue_depth")).toBe(true);
      expect(samples.some((s) => s.name === "tally_proposals_pending")).toBe(true);
      expect(samples.some((s) => s.name === "process_cpu_user_seconds_total")).toBe(true);
      expect(samples.some((s) => s.name === "nodejs_eventloop_lag_seconds")).toBe(true);
      // The event loop's delay: sampled every 2 ms, so a running node has waited at least that long once.
      expect(sum(samples, "tally_event_loop_delay_max_seconds")).toBeGreaterThanOrEqual(0.001);
      expect(sum(samples, "tally_event_loop_delay_max_seconds")).toBeGreaterThanOrEqual(
        sum(samples, "tally_event_loop_delay_recent_seconds", { quantile: "1" }),
      );
      expect(samples.filter((s) => s.name === "tally_event_loop_delay_recent_seconds").map((s) => s.labels.quantile)).toEqual([
        "0.5",
        "0.99",
        "1",
      ]);
      expect(sum(samples, "tally_node_ready")).toBe(1);
    }
    // Pipeline adds were timed: the latency histogram counts at least as many as were acknowledged.
    const timed = all.reduce((total, samples) => total + sum(samples, "tally_request_duration_seconds_count", { rpc: "Pipeline.add" }), 0);
    expect(timed).toBeGreaterThanOrEqual(adds);

    // Exactly one leader per group across the nodes, holding a lease; a scrape races elections, so retry.
    await eventually(
      async () => {
        const now = await scrapeAll();
        for (const group of ["1", "2", "meta"]) {
          if (now.reduce((total, samples) => total + sum(samples, "tally_raft_is_leader", { group }), 0) !== 1) return undefined;
        }
        for (const group of ["1", "2"]) {
          const leaderNode = now.findIndex((samples) => sum(samples, "tally_raft_is_leader", { group }) === 1);
          if (sum(now[leaderNode]!, "tally_lease_valid", { group }) !== 1) return undefined;
        }
        return true;
      },
      10_000,
      "one leader with a lease per group",
    );
  });

  test("unknown paths are 404 and only GET/HEAD are served", async () => {
    expect((await fetchText(`${cluster.opsUrl(1)}/nope`)).status).toBe(404);
    const post = await fetch(`${cluster.opsUrl(1)}/metrics`, { method: "POST", signal: AbortSignal.timeout(5000) });
    expect(post.status).toBe(405);
    await post.body?.cancel();
  });
});

describe("overload protection", () => {
  test("per-client in-flight limit: the excess gets RESOURCE_EXHAUSTED with a retry hint; exactly the acknowledged adds apply", async () => {
    const raw = await leaderClient(cluster.endpoints(), 1);
    try {
      const { clientId } = await raw.call("registerSession", { shardId: 1 });
      const key = Buffer.from(keyInShard("ops:limit", 1, SHARDS));
      const attempts = 200;
      const outcomes = await Promise.allSettled(
        Array.from({ length: attempts }, (_, i) =>
          raw.call("add", { header: { shardId: 1, clientId, seq: String(i + 1), firstUnackedSeq: "1" }, key, delta: "3" }),
        ),
      );
      const acknowledged = outcomes.filter((o) => o.status === "fulfilled").length;
      const refused = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason as RawCallError] : []));
      expect(acknowledged).toBeGreaterThanOrEqual(1);
      expect(refused.length).toBeGreaterThan(0);
      expect(acknowledged + refused.length).toBe(attempts);
      for (const error of refused) {
        expect(error).toBeInstanceOf(RawCallError);
        expect(error.grpcCode).toBe(grpc.status.RESOURCE_EXHAUSTED);
        expect(error.code).toBe("OVERLOADED");
        expect(error.info?.retryAfterMs).toBeGreaterThan(0);
        expect(error.message).toMatch(/maxInflightPerClient/);
      }
      // Nothing half-applied: the counter is exactly 3 x the acknowledged adds.
      const read = await raw.call("get", { key });
      expect(BigInt(read.value)).toBe(BigInt(3 * acknowledged));

      // A refused seq was never applied: retrying it now (within the limit) applies it once.
      const firstRefused = outcomes.findIndex((o) => o.status === "rejected");
      const retried = await raw.call("add", {
        header: { shardId: 1, clientId, seq: String(firstRefused + 1), firstUnackedSeq: "1" },
        key,
        delta: "3",
      });
      expect(BigInt(retried.value)).toBe(BigInt(3 * (acknowledged + 1)));

      const samples = await scrape(Number((await raw.call("status", { localOnly: true })).nodes[0].nodeId));
      expect(sum(samples, "tally_overload_rejections_total", { reason: "client_inflight" })).toBeGreaterThanOrEqual(refused.length);
      expect(sum(samples, "tally_requests_total", { rpc: "add", code: "OVERLOADED" })).toBeGreaterThanOrEqual(refused.length);
    } finally {
      raw.close();
    }
  });

  test("per-client limit on a Pipeline stream: the excess ops answer OVERLOADED with a retry hint", async () => {
    const raw = await leaderClient(cluster.endpoints(), 1);
    const leaderAddress = raw.address;
    const { clientId } = await raw.call("registerSession", { shardId: 1 });
    raw.close();
    const { tallyProto } = await import("../../src/api/proto.js");
    const stub = new (tallyProto().CounterService)(leaderAddress, grpc.credentials.createInsecure()) as any;
    const key = Buffer.from(keyInShard("ops:pipeline-limit", 1, SHARDS));
    const ops = 100;
    try {
      const stream = stub.pipeline();
      const responses: any[] = [];
      const done = new Promise<void>((resolve, reject) => {
        stream.on("data", (response: any) => responses.push(response));
        stream.on("end", resolve);
        stream.on("error", reject);
      });
      for (let i = 0; i < ops; i++) {
        stream.write({
          id: String(i),
          add: { header: { shardId: 1, clientId, seq: String(i + 1), firstUnackedSeq: "1" }, key, delta: "1" },
        });
      }
      stream.end();
      await done;
      expect(responses.length).toBe(ops);
      const ok = responses.filter((r) => r.mutation !== undefined && r.mutation !== null);
      const overloaded = responses.filter((r) => r.error?.code === "OVERLOADED");
      expect(ok.length + overloaded.length).toBe(ops);
      expect(overloaded.length).toBeGreaterThan(0);
      for (const r of overloaded) expect(r.error.retryAfterMs).toBeGreaterThan(0);
      const read = await client.get(key.toString());
      expect(read.value).toBe(BigInt(ok.length));
    } finally {
      stub.close();
    }
  });

  test("an oversized request is refused with a clear error and nothing is applied", async () => {
    const raw = await leaderClient(cluster.endpoints(), 1);
    try {
      const { clientId } = await raw.call("registerSession", { shardId: 1 });
      // Keys of 200 bytes in shard 1: 100 of them fit under 64 KiB, 400 do not.
      const keys: Buffer[] = [];
      const width = 16384 / SHARDS;
      for (let i = 0; keys.length < 500; i++) {
        const key = Buffer.from(`ops:big:${i}:`.padEnd(200, "x"));
        if (slotOf(key) < width) keys.push(key);
      }
      const batch = (slice: Buffer[], seq: number) => ({
        header: { shardId: 1, clientId, seq: String(seq), firstUnackedSeq: "1" },
        ops: slice.map((key) => ({ add: { key, delta: "1" } })),
      });
      const small = await raw.call("addBatch", batch(keys.slice(0, 100), 1));
      expect(small.results.length).toBe(100);

      let refusal: RawCallError | undefined;
      try {
        await raw.call("addBatch", batch(keys.slice(100, 500), 2));
      } catch (error) {
        refusal = error as RawCallError;
      }
      expect(refusal).toBeInstanceOf(RawCallError);
      expect(refusal!.grpcCode).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(refusal!.message).toMatch(/larger than max/i);
      const read = await raw.call("getMany", { keys: [keys[0], keys[100], keys[499]] });
      expect(read.values.map((v: any) => [Number(v.value), v.exists])).toEqual([
        [1, true],
        [0, false],
        [0, false],
      ]);
    } finally {
      raw.close();
    }
  });
});

/**
 * A TCP relay whose server-to-client direction can be frozen: a client that stops reading at the
 * socket level, as a stuck process or a congested link does. (A grpc-js client that merely pauses
 * its stream keeps reading from the socket and buffers on its own side.)
 */
async function freezableProxy(target: string): Promise<{ address: string; freeze(): void; thaw(): void; close(): Promise<void> }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  const upstreams = new Set<Socket>();
  const sockets = new Set<Socket>();
  let frozen = false;
  const server = createNetServer((downstream) => {
    const upstream = connect(port, host);
    upstreams.add(upstream);
    for (const socket of [downstream, upstream]) {
      sockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => {
        sockets.delete(socket);
        upstreams.delete(upstream);
        downstream.destroy();
        upstream.destroy();
      });
    }
    downstream.pipe(upstream);
    upstream.pipe(downstream);
    if (frozen) upstream.pause();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${address.port}`,
    freeze: () => {
      frozen = true;
      for (const upstream of upstreams) {
        upstream.unpipe();
        upstream.pause();
      }
    },
    thaw: () => {
      frozen = false;
      for (const upstream of upstreams) {
        const downstream = [...sockets].find((socket) => socket !== upstream && !upstreams.has(socket));
        if (downstream !== undefined) upstream.pipe(downstream);
        upstream.resume();
      }
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("slow consumers cannot grow a node's memory", () => {
  /** Keys of ~200 bytes in shard 1, written in batches that fit under maxRequestBytes. */
  async function writeManyKeys(raw: Awaited<ReturnType<typeof leaderClient>>, prefix: string, count: number): Promise<void> {
    const { clientId } = await raw.call("registerSession", { shardId: 1 });
    const keys: Buffer[] = [];
    for (let i = 0; keys.length < count; i++) {
      const key = Buffer.from(`${prefix}:${i}:`.padEnd(200, "y"));
      if (slotOf(key) < 16384 / SHARDS) keys.push(key);
    }
    for (let start = 0, seq = 1; start < keys.length; start += 200, seq++) {
      await raw.call("addBatch", {
        header: { shardId: 1, clientId, seq: String(seq), firstUnackedSeq: String(seq) },
        ops: keys.slice(start, start + 200).map((key) => ({ add: { key, delta: "1" } })),
      });
    }
  }

  test("a Watch consumer that stops reading is ended with RESOURCE_EXHAUSTED after the request timeout", async () => {
    const raw = await leaderClient(cluster.endpoints(), 1);
    const nodeId = Number((await raw.call("status", { localOnly: true })).nodes[0].nodeId);
    const proxy = await freezableProxy(raw.address);
    const { tallyProto } = await import("../../src/api/proto.js");
    const stub = new (tallyProto().CounterService)(proxy.address, grpc.credentials.createInsecure()) as any;
    try {
      const stalledBefore = sum(await scrape(nodeId), "tally_overload_rejections_total", { reason: "watch_stalled" });
      const stream = stub.watch({ key: Buffer.from("ops:watch-stall"), prefix: true, shardId: 1, coalesceMs: 10 });
      let events = 0;
      const first = new Promise<void>((resolve) => stream.once("data", () => resolve()));
      stream.on("data", (batch: any) => {
        events += batch.events.length;
      });
      const ended = new Promise<grpc.ServiceError | undefined>((resolve) => {
        stream.on("error", (error: grpc.ServiceError) => resolve(error));
        stream.on("end", () => resolve(undefined));
      });
      await withDeadline(first, 5000, "the watch's first progress message");
      proxy.freeze();
      // ~1.7 MB of changes, far beyond the HTTP/2 windows: the node's write cannot complete.
      await writeManyKeys(raw, "ops:watch-stall", 8000);
      // requestTimeoutMs is 4000 in test clusters: the node gives up on the consumer on its own.
      await eventually(
        async () => sum(await scrape(nodeId), "tally_overload_rejections_total", { reason: "watch_stalled" }) > stalledBefore || undefined,
        10_000,
        "the node to end the stalled watch",
      );
      proxy.thaw();
      const error = await withDeadline(ended, 10_000, "watch stream to end");
      expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(error?.details).toMatch(/watch consumer has not read for 4000 ms; resume from index \d+/);
      expect(events).toBeGreaterThan(0);
    } finally {
      stub.close();
      raw.close();
      await proxy.close();
    }
  });

  test("a Watch the node refuses or ends gets its error status at once (no hang until the client's deadline)", async () => {
    const { tallyProto } = await import("../../src/api/proto.js");
    const stub = new (tallyProto().CounterService)(cluster.endpoints()[0]!, grpc.credentials.createInsecure()) as any;
    try {
      const stream = stub.watch({ key: Buffer.from("ops:watch-bad"), coalesceMs: 5 });
      const error = await withDeadline(
        new Promise<grpc.ServiceError>((resolve) => stream.on("error", resolve)),
        5000,
        "the refused watch's status",
      );
      expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(error.details).toMatch(/coalesce_ms: must be 10..10000, got 5/);
    } finally {
      stub.close();
    }
  });

  test("a Pipeline client that does not read its replies stops the node reading its requests", async () => {
    // A client with stream-level flow control (grpc-java/go style, here raw node:http2): it keeps
    // sending requests while it does not read replies, so only the node's own backpressure can
    // keep the replies from piling up in the node's memory.
    const raw = await leaderClient(cluster.endpoints(), 1);
    const nodeId = Number((await raw.call("status", { localOnly: true })).nodes[0].nodeId);
    raw.close();
    const { tallyProto } = await import("../../src/api/proto.js");
    const method = (tallyProto().packageDefinition["tally.v1.CounterService"] as any).Pipeline;
    const frame = (request: Record<string, unknown>) => {
      const body: Buffer = method.requestSerialize(request);
      const header = Buffer.alloc(5);
      header.writeUInt32BE(body.length, 1);
      return Buffer.concat([header, body]);
    };
    const answered = async () => sum(await scrape(nodeId), "tally_requests_total", { rpc: "Pipeline.get" });
    const session = http2.connect(`http://${raw.address}`);
    session.on("error", () => undefined);
    try {
      const before = await answered();
      const stream = session.request({
        ":method": "POST",
        ":path": "/tally.v1.CounterService/Pipeline",
        "content-type": "application/grpc",
        te: "trailers",
      });
      stream.on("error", () => undefined);
      stream.pause();
      const key = Buffer.from(`ops:pipeline-unread:${"z".repeat(200)}`);
      const sent = 20_000;
      const chunk: Buffer[] = [];
      for (let i = 0; i < sent; i++) {
        chunk.push(frame({ id: String(i + 1), get: { key } }));
        if (chunk.length === 1000) stream.write(Buffer.concat(chunk.splice(0)));
      }
      await new Promise((r) => setTimeout(r, 3000));
      const whileUnread = (await answered()) - before;
      expect(whileUnread).toBeGreaterThan(0);
      expect(whileUnread).toBeLessThan(sent / 2);
      // Reading again lets every request through: one reply frame (5-byte header + message) each.
      let pending = Buffer.alloc(0);
      let replies = 0;
      stream.on("data", (data: Buffer) => {
        pending = Buffer.concat([pending, data]);
        while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
          pending = pending.subarray(5 + pending.readUInt32BE(1));
          replies++;
        }
      });
      stream.resume();
      await eventually(() => replies === sent || undefined, 60_000, `all ${sent} replies (${replies} so far)`);
      expect((await answered()) - before).toBe(sent);
      stream.close();
    } finally {
      session.destroy();
    }
  }, 120_000);
});

describe("health", () => {
  /** grpc.health.v1 Check on a node: 1 SERVING, 2 NOT_SERVING (the proto is loaded without enum names). */
  async function grpcHealth(id: number): Promise<number> {
    const require = createRequire(import.meta.url);
    const healthPackage = grpc.loadPackageDefinition(
      protoLoader.loadSync(require.resolve("grpc-health-check/proto/health/v1/health.proto")),
    ) as any;
    const address = cluster.config.nodes.find((n) => n.id === id)!.client;
    const stub = new healthPackage.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
    try {
      const response = await new Promise<any>((resolve, reject) =>
        stub.check({ service: "tally.v1.CounterService" }, { deadline: Date.now() + 3000 }, (error: Error | null, reply: any) =>
          error ? reject(error) : resolve(reply),
        ),
      );
      return response.status;
    } finally {
      stub.close();
    }
  }

  async function health(id: number, path: "/livez" | "/readyz"): Promise<{ status: number; reasons: string[] }> {
    const { status, body } = await fetchText(`${cluster.opsUrl(id)}${path}`);
    return { status, reasons: (JSON.parse(body) as { reasons: string[] }).reasons };
  }

  test("/livez and /readyz: 200 when healthy, /readyz 503 on a survivor without quorum, 200 again when peers return", async () => {
    for (const node of cluster.config.nodes) {
      expect((await health(node.id, "/livez")).status).toBe(200);
      await eventually(async () => (await health(node.id, "/readyz")).status === 200 || undefined, 10_000, `node ${node.id} ready`);
    }

    await Promise.all([cluster.stop(2), cluster.stop(3)]);
    const unready = await eventually(
      async () => {
        const state = await health(1, "/readyz");
        return state.status === 503 ? state : undefined;
      },
      15_000,
      "node 1 not ready without quorum",
    );
    expect(unready.reasons.join("; ")).toMatch(/shard \d+: leader node \d+ is not reachable|shard \d+ has no leader/);
    // Alive all the while: liveness never depends on peers.
    expect((await health(1, "/livez")).status).toBe(200);
    expect(sum(await scrape(1), "tally_node_ready")).toBe(0);
    // The gRPC health service follows readiness (checked on leader changes and every 100 ms).
    await eventually(async () => (await grpcHealth(1)) === 2 || undefined, 5000, "gRPC health NOT_SERVING on node 1");

    cluster.startNode(2);
    cluster.startNode(3);
    await cluster.waitReady(30_000);
    for (const node of cluster.config.nodes) {
      await eventually(async () => (await health(node.id, "/readyz")).status === 200 || undefined, 20_000, `node ${node.id} ready again`);
    }
    await eventually(async () => (await grpcHealth(1)) === 1 || undefined, 5000, "gRPC health SERVING on node 1 again");
    // And it serves again.
    expect((await client.add("ops:after-quorum", 1n)).value).toBe(1n);
  });
});
