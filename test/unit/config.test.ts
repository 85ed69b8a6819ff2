import { describe, expect, test } from "vitest";
import { computePlacement, ConfigError, loadClusterConfig, parseClusterConfig } from "../../src/server/config/config.js";
import { SLOT_COUNT } from "../../src/meta/slots.js";

const node = (id: number, extra: Record<string, unknown> = {}) => ({
  id,
  client: `127.0.0.1:${7000 + id}`,
  peer: `127.0.0.1:${7100 + id}`,
  zone: `z${id}`,
  dataDir: `/tmp/tally-config-test/n${id}`,
  ...extra,
});
const base = () => ({ cluster: { replicationFactor: 3, shards: 4 }, nodes: [node(1), node(2), node(3)] });

function rejects(document: unknown, fragment: string): void {
  expect(() => parseClusterConfig(document)).toThrow(ConfigError);
  expect(() => parseClusterConfig(document)).toThrow(fragment);
}

describe("cluster.yaml validation names the bad field", () => {
  test("the shipped cluster.yaml is valid: 3 nodes, 3 replicas", () => {
    const config = loadClusterConfig("cluster.yaml");
    expect(config.nodes.map((n) => n.id)).toEqual([1, 2, 3]);
    expect(config.cluster.replicationFactor).toBe(3);
    expect(config.nodes[0]!.dataDir.endsWith("data/n1")).toBe(true);
  });

  test("unknown top-level, cluster, limits and node fields", () => {
    rejects({ ...base(), clusterr: {} }, 'unknown field "clusterr"');
    rejects({ ...base(), cluster: { shardz: 3 } }, 'cluster: unknown field "shardz"');
    rejects({ ...base(), limits: { maxKeys: 3 } }, 'limits: unknown field "maxKeys"');
    rejects({ ...base(), nodes: [node(1, { port: 3 }), node(2), node(3)] }, 'nodes[0]: unknown field "port"');
  });

  test("duplicate node ids and addresses", () => {
    rejects(
      { ...base(), nodes: [node(1), node(1, { client: "127.0.0.1:9001", peer: "127.0.0.1:9002", dataDir: "/tmp/x" }), node(3)] },
      "duplicate node id 1",
    );
    rejects(
      { ...base(), nodes: [node(1), node(2, { client: "127.0.0.1:7001" }), node(3)] },
      "nodes[1].client: address 127.0.0.1:7001 is already used by nodes[0].client",
    );
    rejects(
      { ...base(), nodes: [node(1), node(2, { peer: "127.0.0.1:7001" }), node(3)] },
      "nodes[1].peer: address 127.0.0.1:7001 is already used",
    );
    rejects({ ...base(), nodes: [node(1), node(2, { dataDir: "/tmp/tally-config-test/n1" }), node(3)] }, "nodes[1].dataDir");
  });

  test("timing relationships", () => {
    rejects(
      { ...base(), cluster: { electionTicks: 5, heartbeatTicks: 5 } },
      "electionTicks (5) must be greater than cluster.heartbeatTicks (5)",
    );
    rejects(
      { ...base(), cluster: { electionTicks: 10, heartbeatTicks: 2, leaseDriftTicks: 10 } },
      "leaseDriftTicks (10) must be less than",
    );
    rejects({ ...base(), cluster: { replicationFactor: 5 } }, "replicationFactor (5) exceeds the number of nodes (3)");
  });

  test("bad values", () => {
    rejects({ ...base(), cluster: { shards: 0 } }, "cluster.shards must be a positive integer, got 0");
    rejects({ ...base(), cluster: { tickMs: "fast" } }, 'cluster.tickMs must be a positive integer, got "fast"');
    rejects({ ...base(), nodes: [node(1, { client: "localhost" }), node(2), node(3)] }, 'nodes[0].client must be "host:port"');
    rejects({ ...base(), nodes: [node(1, { client: "127.0.0.1:70000" }), node(2), node(3)] }, "port in 1..65535");
    rejects({ ...base(), nodes: [] }, "nodes must be a non-empty list");
    rejects({ ...base(), limits: { maxKeyBytes: 1000 } }, "maxKeyBytes (1000) must be at most 256");
  });

  test("unreadable file", () => {
    expect(() => loadClusterConfig("/nonexistent/cluster.yaml")).toThrow("cannot read cluster config /nonexistent/cluster.yaml");
  });
});

describe("placement from config", () => {
  test("every shard has replicationFactor distinct replicas and the slot ranges tile the slot space", () => {
    const config = parseClusterConfig({ cluster: { replicationFactor: 3, shards: 7 }, nodes: [1, 2, 3, 4, 5].map((id) => node(id)) });
    const placement = computePlacement(config);
    expect(placement).toHaveLength(7);
    let next = 0;
    for (const shard of placement) {
      expect(new Set(shard.replicas).size).toBe(3);
      expect(shard.slots.start).toBe(next);
      next = shard.slots.end;
    }
    expect(next).toBe(SLOT_COUNT);
    const perNode = new Map<number, number>();
    for (const shard of placement) for (const id of shard.replicas) perNode.set(id, (perNode.get(id) ?? 0) + 1);
    // 21 replicas over 5 nodes: balanced within one.
    expect(Math.max(...perNode.values()) - Math.min(...perNode.values())).toBeLessThanOrEqual(1);
  });
});
