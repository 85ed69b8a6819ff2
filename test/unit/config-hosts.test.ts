/**
 * nodes[].host in cluster.yaml (ADR 0013): validation, the host-aware initial placement and
 * metadata replicas, and that configs without hosts place exactly as before hosts existed.
 */
import { describe, expect, test } from "vitest";
import { computePlacement, ConfigError, metaReplicaIds, parseClusterConfig } from "../../src/server/config/config.js";

const node = (id: number, extra: Record<string, unknown> = {}) => ({
  id,
  client: `127.0.0.1:${7000 + id}`,
  peer: `127.0.0.1:${7100 + id}`,
  zone: `z${id}`,
  dataDir: `/tmp/tally-config-hosts-test/n${id}`,
  ...extra,
});

/** `perHost` processes on each of `hosts` hosts, host h in zone zh; ids 1.. host by host. */
const layout = (hosts: number, perHost: number) =>
  Array.from({ length: hosts * perHost }, (_, i) =>
    node(i + 1, { host: `h${Math.floor(i / perHost)}`, zone: `z${Math.floor(i / perHost)}` }),
  );

function rejects(document: unknown, fragment: string): void {
  expect(() => parseClusterConfig(document)).toThrow(ConfigError);
  expect(() => parseClusterConfig(document)).toThrow(fragment);
}

/** The placement before hosts existed: RF consecutive sorted ids per shard, dealt in turn. */
function oldPlacement(ids: number[], replicationFactor: number, shards: number): number[][] {
  return Array.from({ length: shards }, (_, i) =>
    Array.from({ length: replicationFactor }, (_, k) => ids[(i * replicationFactor + k) % ids.length]!).sort((a, b) => a - b),
  );
}

describe("nodes[].host", () => {
  test("absent: the node's own id, and placement is exactly the placement from before hosts", () => {
    for (const count of [1, 2, 3, 4, 5, 7, 9]) {
      for (const replicationFactor of [1, 2, 3].filter((rf) => rf <= count)) {
        const ids = Array.from({ length: count }, (_, i) => [5, 1, 9, 3, 7, 2, 8, 4, 6][i]!);
        const config = parseClusterConfig({ cluster: { replicationFactor, shards: 11 }, nodes: ids.map((id) => node(id)) });
        expect(config.nodes.map((n) => n.host)).toEqual(ids.map(String));
        const sorted = [...ids].sort((a, b) => a - b);
        expect(computePlacement(config).map((p) => p.replicas)).toEqual(oldPlacement(sorted, replicationFactor, 11));
        expect(metaReplicaIds(config)).toEqual(sorted.slice(0, config.cluster.metaReplicas));
      }
    }
  });

  test("3 hosts x 2 processes: every shard on 3 hosts, counts per process within one, metadata on 3 hosts", () => {
    const config = parseClusterConfig({ cluster: { replicationFactor: 3, shards: 16 }, nodes: layout(3, 2) });
    const hostOf = new Map(config.nodes.map((n) => [n.id, n.host]));
    const perNode = new Map<number, number>();
    for (const shard of computePlacement(config)) {
      expect(new Set(shard.replicas.map((id) => hostOf.get(id))).size).toBe(3);
      for (const id of shard.replicas) perNode.set(id, (perNode.get(id) ?? 0) + 1);
    }
    expect([...perNode.keys()].sort()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Math.max(...perNode.values()) - Math.min(...perNode.values())).toBeLessThanOrEqual(1);
    expect(metaReplicaIds(config)).toEqual([1, 3, 5]);
    expect(config.cluster.metaReplicas).toBe(3);
  });

  test("uneven hosts and replication factors: never two replicas of a shard on one host", () => {
    for (const sizes of [
      [1, 2, 3],
      [3, 1, 1, 2],
      [2, 2, 2, 2, 2],
      [4, 1, 1],
    ]) {
      const nodes = sizes.flatMap((size, h) => Array.from({ length: size }, () => ({ host: `h${h}`, zone: `z${h}` })));
      const document = { cluster: { replicationFactor: 3, shards: 13 }, nodes: nodes.map((extra, i) => node(i + 1, extra)) };
      const config = parseClusterConfig(document);
      const hostOf = new Map(config.nodes.map((n) => [n.id, n.host]));
      for (const shard of computePlacement(config))
        expect(new Set(shard.replicas.map((id) => hostOf.get(id))).size, `${sizes} shard ${shard.shardId}`).toBe(3);
      expect(new Set(metaReplicaIds(config).map((id) => hostOf.get(id))).size).toBe(config.cluster.metaReplicas);
    }
  });

  test("the metadata group defaults to one replica with fewer than 3 hosts", () => {
    const config = parseClusterConfig({ cluster: { replicationFactor: 2, shards: 4 }, nodes: layout(2, 2) });
    expect(config.cluster.metaReplicas).toBe(1);
  });

  test("fewer hosts than replicas, a host in two zones, a bad host: refused, naming the field", () => {
    rejects(
      { cluster: { replicationFactor: 3, shards: 4 }, nodes: layout(2, 2) },
      "cluster.replicationFactor (3) exceeds the number of hosts (2); two replicas of a group never share a host",
    );
    rejects(
      { cluster: { replicationFactor: 1, metaReplicas: 3, shards: 4 }, nodes: layout(2, 2) },
      "cluster.metaReplicas (3) exceeds the number of hosts (2)",
    );
    rejects(
      { cluster: { replicationFactor: 1, shards: 4 }, nodes: [node(1, { host: "m", zone: "a" }), node(2, { host: "m", zone: "b" })] },
      "nodes[1].host: host m is in zone a (nodes[0]), not b",
    );
    rejects({ cluster: { replicationFactor: 1, shards: 4 }, nodes: [node(1, { host: "" })] }, "nodes[0].host must be a non-empty string");
    rejects({ cluster: { replicationFactor: 1, shards: 4 }, nodes: [node(1, { host: 7 })] }, "nodes[0].host must be a non-empty string");
  });

  test("TALLY_NODE_HOST sets it from the environment", () => {
    const config = parseClusterConfig({ cluster: { replicationFactor: 1, shards: 4 }, nodes: [node(1), node(2)] }, "<inline>", {
      env: { TALLY_NODE_HOST: "rack1-a" },
      nodeId: 2,
    });
    expect(config.nodes.map((n) => n.host)).toEqual(["1", "rack1-a"]);
  });
});
