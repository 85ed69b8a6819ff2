/**
 * The operations pieces in isolation: the metrics registry (series, values, isolation between
 * nodes), the per-client in-flight limiter, Pipeline admission through the request guard, the
 * storage write hook, and the new cluster.yaml fields.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { NodeMetrics, type NodeSample } from "../../src/server/ops/metrics.js";
import {
  CLIENT_RETRY_AFTER_MS,
  countOps,
  InflightLimiter,
  NODE_RETRY_AFTER_MS,
  RequestGuard,
  sessionOf,
} from "../../src/server/rpc/request-guard.js";
import type { Outgoing, PipelineRequestMessage, PipelineResponseMessage } from "../../src/api/proto.js";
import { ConfigError, parseClusterConfig } from "../../src/server/config/config.js";
import { NodeStore } from "../../src/storage/node-store.js";
import { OverloadedError } from "../../src/util/errors.js";
import { componentLogger } from "../../src/util/log.js";

function sample(overrides: Partial<NodeSample> = {}): NodeSample {
  return {
    groups: [
      {
        group: "meta",
        term: 2,
        isLeader: false,
        leader: 3,
        commit: 40,
        applied: 40,
        lastIndex: 40,
        leaseValid: false,
        pendingProposals: 0,
        pendingReads: 0,
      },
      {
        group: "1",
        term: 5,
        isLeader: true,
        leader: 1,
        commit: 120,
        applied: 117,
        lastIndex: 121,
        leaseValid: true,
        pendingProposals: 7,
        pendingReads: 2,
      },
    ],
    counters: {
      loopIterations: 900,
      entriesWritten: 300,
      entriesApplied: 290,
      leaderChanges: 4,
      snapshotsTaken: 1,
      snapshotsBuilt: 2,
      snapshotsInstalled: 0,
    },
    peerQueues: new Map([
      [2, 0],
      [3, 12],
    ]),
    peerMessagesDropped: 6,
    peerFramesSent: 11,
    peerMessagesSent: 12,
    peerUnauthenticated: 0,
    inboundDropped: 0,
    appliedBytesPerIterationMax: 1_048_600,
    ready: true,
    ...overrides,
  };
}

/** The value of one series in a scrape, labels in any order (prom-client orders them differently per type). */
function line(text: string, series: string): number | undefined {
  const key = (name: string, labels: string) =>
    `${name}{${[...labels.matchAll(/(\w+)="([^"]*)"/g)]
      .map((m) => `${m[1]}=${m[2]}`)
      .sort()
      .join(",")}}`;
  const wanted = /^(\w+)\{(.*)\}$/.exec(series);
  const target = wanted ? key(wanted[1]!, wanted[2]!) : `${series}{}`;
  for (const row of text.split("\n")) {
    const match = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(row);
    if (match && key(match[1]!, match[2] ?? "") === target) return Number(match[3]);
  }
  return undefined;
}

describe("NodeMetrics", () => {
  test("scrape-time series mirror the node's sample", async () => {
    const metrics = new NodeMetrics(() => sample(), { nodeId: 1, defaultMetrics: false });
    const text = await metrics.scrape();
    expect(line(text, 'tally_raft_term{group="1",node="1"}')).toBe(5);
    expect(line(text, 'tally_raft_term{group="meta",node="1"}')).toBe(2);
    expect(line(text, 'tally_raft_is_leader{group="1",node="1"}')).toBe(1);
    expect(line(text, 'tally_raft_is_leader{group="meta",node="1"}')).toBe(0);
    expect(line(text, 'tally_raft_leader_id{group="meta",node="1"}')).toBe(3);
    expect(line(text, 'tally_raft_apply_lag_entries{group="1",node="1"}')).toBe(3);
    expect(line(text, 'tally_lease_valid{group="1",node="1"}')).toBe(1);
    expect(line(text, 'tally_proposals_pending{group="1",node="1"}')).toBe(7);
    expect(line(text, 'tally_reads_pending{group="1",node="1"}')).toBe(2);
    expect(line(text, 'tally_raft_leader_changes_total{node="1"}')).toBe(4);
    expect(line(text, 'tally_peer_queue_depth{peer="3",node="1"}')).toBe(12);
    expect(line(text, 'tally_peer_messages_dropped_total{node="1"}')).toBe(6);
    expect(line(text, 'tally_peer_frames_sent_total{node="1"}')).toBe(11);
    expect(line(text, 'tally_peer_messages_sent_total{node="1"}')).toBe(12);
    expect(line(text, 'tally_node_ready{node="1"}')).toBe(1);
    expect(line(text, 'tally_apply_bytes_per_iteration_max{node="1"}')).toBe(1_048_600);
    expect(text).not.toContain("process_cpu");
  });

  test("a group that left the node leaves no stale series behind", async () => {
    let current = sample();
    const metrics = new NodeMetrics(() => current, { nodeId: 1, defaultMetrics: false });
    expect(await metrics.scrape()).toContain('tally_raft_term{group="1"');
    current = sample({ groups: current.groups.slice(0, 1) });
    expect(await metrics.scrape()).not.toContain('tally_raft_term{group="1"');
  });

  test("requests, latency, ops, overloads and storage writes are counted per label set", async () => {
    const metrics = new NodeMetrics(() => sample(), { nodeId: 2, defaultMetrics: false });
    const started = performance.now();
    for (let i = 0; i < 3; i++) metrics.request("add", "OK", started);
    metrics.request("add", "OVERLOADED", started);
    metrics.countOps("add", 3);
    metrics.countOps("add", 2);
    metrics.overloaded("client_inflight");
    metrics.storageWritten(0.002, true, 100);
    metrics.storageWritten(0.0001, false, 50);
    const text = await metrics.scrape();
    expect(line(text, 'tally_requests_total{rpc="add",code="OK",node="2"}')).toBe(3);
    expect(line(text, 'tally_requests_total{rpc="add",code="OVERLOADED",node="2"}')).toBe(1);
    expect(line(text, 'tally_request_duration_seconds_count{rpc="add",node="2"}')).toBe(4);
    expect(line(text, 'tally_ops_total{kind="add",node="2"}')).toBe(5);
    expect(line(text, 'tally_overload_rejections_total{reason="client_inflight",node="2"}')).toBe(1);
    expect(line(text, 'tally_storage_write_seconds_count{sync="true",node="2"}')).toBe(1);
    expect(line(text, 'tally_storage_write_seconds_bucket{le="0.0025",sync="true",node="2"}')).toBe(1);
    expect(line(text, 'tally_storage_write_seconds_bucket{le="0.001",sync="true",node="2"}')).toBe(0);
    expect(line(text, 'tally_storage_write_bytes_total{node="2"}')).toBe(150);
  });

  test("two nodes in one process keep separate registries", async () => {
    const a = new NodeMetrics(() => sample(), { nodeId: 1 });
    const b = new NodeMetrics(() => sample(), { nodeId: 2 });
    a.countOps("add", 10);
    expect(line(await a.scrape(), 'tally_ops_total{kind="add",node="1"}')).toBe(10);
    expect(await b.scrape()).not.toContain("tally_ops_total{");
    expect(await a.scrape()).toContain("process_cpu_user_seconds_total");
  });
});

describe("InflightLimiter", () => {
  test("bounds requests per connection and per session; release frees the slot and forgets idle clients", () => {
    const limiter = new InflightLimiter({ maxInflightPerClient: 2, maxInflightPerNode: 100 });
    expect(limiter.acquire("ipv4:10.0.0.1:5000")).toBeUndefined();
    expect(limiter.acquire("ipv4:10.0.0.1:5000")).toBeUndefined();
    expect(limiter.acquire("ipv4:10.0.0.1:5000")).toBe("client_inflight");
    const refused = limiter.refusal("client_inflight");
    expect(refused).toBeInstanceOf(OverloadedError);
    expect(refused.retryAfterMs).toBe(CLIENT_RETRY_AFTER_MS);
    expect(refused.message).toContain("limits.maxInflightPerClient (2)");
    // Sessions are bounded alike, across connections.
    expect(limiter.acquireSession("7")).toBe(true);
    expect(limiter.acquireSession("7")).toBe(true);
    expect(limiter.acquireSession("7")).toBe(false);
    expect(limiter.refusal("session_inflight", "7").message).toContain("session 7 has limits.maxInflightPerClient (2)");
    expect(limiter.total).toBe(2);
    limiter.release("ipv4:10.0.0.1:5000");
    limiter.release("ipv4:10.0.0.1:5000");
    limiter.releaseSession("7");
    limiter.releaseSession("7");
    expect(limiter.total).toBe(0);
    expect(limiter.trackedClients).toBe(0);
    expect(() => limiter.release("ipv4:10.0.0.1:5000")).toThrow("released more than acquired");
    expect(() => new InflightLimiter({ maxInflightPerClient: 0, maxInflightPerNode: 1 })).toThrow(RangeError);
    expect(() => new InflightLimiter({ maxInflightPerClient: 1, maxInflightPerNode: 0 })).toThrow(RangeError);
  });

  test("bounds requests on the whole node, whatever connection they come over", () => {
    const limiter = new InflightLimiter({ maxInflightPerClient: 2, maxInflightPerNode: 3 });
    expect(limiter.acquire("ipv4:10.0.0.1:5000")).toBeUndefined();
    expect(limiter.acquire("ipv4:10.0.0.2:5000")).toBeUndefined();
    expect(limiter.acquire("ipv4:10.0.0.3:5000")).toBeUndefined();
    expect(limiter.acquire("ipv4:10.0.0.4:5000")).toBe("node_inflight");
    const refused = limiter.refusal("node_inflight");
    expect(refused).toBeInstanceOf(OverloadedError);
    expect(refused.retryAfterMs).toBe(NODE_RETRY_AFTER_MS);
    expect(refused.message).toContain("limits.maxInflightPerNode (3)");
    expect(limiter.total).toBe(3);
    limiter.release("ipv4:10.0.0.2:5000");
    expect(limiter.acquire("ipv4:10.0.0.4:5000")).toBeUndefined();
  });

  test("sessionOf and countOps read the request as decoded by proto-loader", () => {
    expect(sessionOf({ header: { clientId: "42" } })).toBe("42");
    expect(sessionOf({ header: { clientId: "0" } })).toBeUndefined();
    expect(sessionOf({})).toBeUndefined();
    const counted: Array<[string, number]> = [];
    countOps("addBatch", { ops: [{ op: "add" }, { op: "add" }, { op: "windowAdd" }, { op: "compareAndSet" }] }, (kind, n) =>
      counted.push([kind, n]),
    );
    countOps("Pipeline.add", {}, (kind, n) => counted.push([kind, n]));
    countOps("get", {}, (kind, n) => counted.push([kind, n]));
    expect(counted).toEqual([
      ["add", 2],
      ["window", 1],
      ["cas", 1],
      ["add", 1],
    ]);
  });
});

describe("RequestGuard.pipelineOp", () => {
  test("admits up to the per-client bound, answers the excess OVERLOADED with a hint, and counts both", async () => {
    const metrics = new NodeMetrics(() => sample(), { nodeId: 1, defaultMetrics: false });
    const guard = new RequestGuard({ maxInflightPerClient: 2, maxInflightPerNode: 100 }, metrics, componentLogger("test"));
    const gates: Array<() => void> = [];
    const run = (request: PipelineRequestMessage) =>
      new Promise<Outgoing<PipelineResponseMessage>>((resolve) => gates.push(() => resolve({ id: request.id, mutation: { value: 1 } })));
    // Only the fields admission reads: the op, its id and its session.
    const op = (id: string) => ({ id, op: "add", add: { header: { clientId: "9" } } }) as unknown as PipelineRequestMessage;
    const first = guard.pipelineOp("peer-a", op("1"), run);
    const second = guard.pipelineOp("peer-a", op("2"), run);
    const third = await guard.pipelineOp("peer-a", op("3"), run);
    expect(third.id).toBe("3");
    expect(third.error?.code).toBe("OVERLOADED");
    expect(third.error?.retryAfterMs).toBe(CLIENT_RETRY_AFTER_MS);
    expect(metrics.inflightRequests).toBe(2);
    for (const open of gates.splice(0)) open();
    expect((await first).mutation?.value).toBe(1);
    await second;
    expect(metrics.inflightRequests).toBe(0);
    // Slots freed: admitted again.
    const again = guard.pipelineOp("peer-a", op("4"), run);
    gates.splice(0).forEach((open) => open());
    expect((await again).error).toBeUndefined();
    const text = await metrics.scrape();
    expect(line(text, 'tally_requests_total{rpc="Pipeline.add",code="OK",node="1"}')).toBe(3);
    expect(line(text, 'tally_requests_total{rpc="Pipeline.add",code="OVERLOADED",node="1"}')).toBe(1);
    expect(line(text, 'tally_ops_total{kind="add",node="1"}')).toBe(3);
  });

  test("an op that fails is counted by its error code and releases its slot", async () => {
    const metrics = new NodeMetrics(() => sample(), { nodeId: 1, defaultMetrics: false });
    const guard = new RequestGuard({ maxInflightPerClient: 1, maxInflightPerNode: 100 }, metrics, componentLogger("test"));
    const get = { id: "1", op: "get", get: {} } as unknown as PipelineRequestMessage;
    const failed = await guard.pipelineOp("peer-b", get, async (r) => ({ id: r.id, error: { code: "NOT_LEADER", message: "x" } }));
    expect(failed.error?.code).toBe("NOT_LEADER");
    expect(guard.limiter.total).toBe(0);
    expect(line(await metrics.scrape(), 'tally_requests_total{rpc="Pipeline.get",code="NOT_LEADER",node="1"}')).toBe(1);
  });
});

describe("storage write hook", () => {
  test("NodeStore reports every batch write with its sync flag and size", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tally-ops-store-"));
    const writes: Array<{ seconds: number; sync: boolean; bytes: number }> = [];
    const store = await NodeStore.open(dir, { onWrite: (seconds, sync, bytes) => writes.push({ seconds, sync, bytes }) });
    try {
      const batch = store.batch();
      batch.setApplied(1, 5, 1000);
      await store.write(batch, { sync: true });
      const second = store.batch();
      second.setApplied(1, 6, 1001);
      await store.write(second, { sync: false });
      expect(writes.map((w) => w.sync)).toEqual([true, false]);
      for (const write of writes) {
        expect(write.seconds).toBeGreaterThanOrEqual(0);
        expect(write.bytes).toBeGreaterThan(0);
      }
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("cluster.yaml: metrics address and overload limits", () => {
  const node = (id: number, extra: Record<string, unknown> = {}) => ({
    id,
    client: `127.0.0.1:${7000 + id}`,
    peer: `127.0.0.1:${7100 + id}`,
    dataDir: `/tmp/tally-ops-config/n${id}`,
    ...extra,
  });

  test("defaults, and a metrics address per node", () => {
    const config = parseClusterConfig({ cluster: { replicationFactor: 1 }, nodes: [node(1, { metrics: "127.0.0.1:7201" }), node(2)] });
    expect(config.limits.maxInflightPerClient).toBe(500);
    expect(config.limits.maxInflightPerNode).toBe(1_000);
    expect(config.limits.maxRequestBytes).toBe(4 * 1024 * 1024);
    expect(config.nodes[0]!.metrics).toBe("127.0.0.1:7201");
    expect(config.nodes[1]!.metrics).toBeUndefined();
  });

  test("bad values name the field", () => {
    expect(() => parseClusterConfig({ cluster: { replicationFactor: 1 }, nodes: [node(1, { metrics: "nope" })] })).toThrow(
      /nodes\[0\]\.metrics must be "host:port"/,
    );
    expect(() => parseClusterConfig({ cluster: { replicationFactor: 1 }, nodes: [node(1, { metrics: "127.0.0.1:7001" })] })).toThrow(
      /nodes\[0\]\.metrics: address 127\.0\.0\.1:7001 is already used by nodes\[0\]\.client/,
    );
    expect(() => parseClusterConfig({ cluster: { replicationFactor: 1 }, limits: { maxRequestBytes: 100 }, nodes: [node(1)] })).toThrow(
      /limits\.maxRequestBytes \(100\) must be between 4096 and 256 MiB/,
    );
    expect(() => parseClusterConfig({ cluster: { replicationFactor: 1 }, limits: { maxInflightPerClient: 0 }, nodes: [node(1)] })).toThrow(
      ConfigError,
    );
    expect(() =>
      parseClusterConfig({
        cluster: { replicationFactor: 1 },
        limits: { maxInflightPerClient: 500, maxInflightPerNode: 100 },
        nodes: [node(1)],
      }),
    ).toThrow(/limits\.maxInflightPerClient \(500\) must not exceed limits\.maxInflightPerNode \(100\)/);
  });
});
