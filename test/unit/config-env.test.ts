import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { stringify } from "yaml";
import { ConfigError, listenAddress, loadClusterConfig, parseClusterConfig, type ConfigSources } from "../../src/server/config/config.js";
import { CONFIG_SETTINGS, envVarName } from "../../src/server/config/config-settings.js";

const node = (id: number, extra: Record<string, unknown> = {}) => ({
  id,
  client: `tally-${id}:7000`,
  peer: `tally-${id}:7100`,
  dataDir: `/tmp/tally-config-env-test/n${id}`,
  ...extra,
});
const base = () => ({ cluster: { shards: 4 }, nodes: [node(1), node(2), node(3)] });

function rejects(document: unknown, sources: ConfigSources, fragment: string): void {
  expect(() => parseClusterConfig(document, "/etc/tally/cluster.yaml", sources)).toThrow(ConfigError);
  expect(() => parseClusterConfig(document, "/etc/tally/cluster.yaml", sources)).toThrow(fragment);
}

describe("listen vs advertise", () => {
  test("listen addresses default to the advertised ones", () => {
    const config = parseClusterConfig(base());
    expect(listenAddress(config.nodes[0]!, "client")).toBe("tally-1:7000");
    expect(listenAddress(config.nodes[0]!, "peer")).toBe("tally-1:7100");
    expect(listenAddress(config.nodes[0]!, "metrics")).toBeUndefined();
  });

  test("every node may bind 0.0.0.0 on the same ports (each on its own host) and still advertise distinct names", () => {
    const listen = { clientListen: "0.0.0.0:7000", peerListen: "0.0.0.0:7100", metricsListen: "0.0.0.0:7200" };
    const config = parseClusterConfig({ ...base(), nodes: [node(1, listen), node(2, listen), node(3, listen)] });
    expect(config.nodes.map((n) => [n.client, listenAddress(n, "client"), listenAddress(n, "metrics")])).toEqual([
      ["tally-1:7000", "0.0.0.0:7000", "0.0.0.0:7200"],
      ["tally-2:7000", "0.0.0.0:7000", "0.0.0.0:7200"],
      ["tally-3:7000", "0.0.0.0:7000", "0.0.0.0:7200"],
    ]);
  });

  test("one node's listeners cannot share a port on overlapping hosts", () => {
    rejects(
      { ...base(), nodes: [node(1, { clientListen: "0.0.0.0:7100" }), node(2), node(3)] },
      {},
      "nodes[0].peer: tally-1:7100 would bind the port of nodes[0].clientListen (0.0.0.0:7100)",
    );
    rejects(
      { ...base(), nodes: [node(1, { clientListen: "0.0.0.0:9000", peerListen: "127.0.0.1:9000" }), node(2), node(3)] },
      {},
      "nodes[0].peerListen",
    );
    // Different specific hosts may use the same port.
    expect(() =>
      parseClusterConfig({ ...base(), nodes: [node(1, { clientListen: "10.0.0.1:9000", peerListen: "10.0.0.2:9000" }), node(2), node(3)] }),
    ).not.toThrow();
  });

  test("a bad listen address names the field", () => {
    rejects({ ...base(), nodes: [node(1, { peerListen: "0.0.0.0" }), node(2), node(3)] }, {}, 'nodes[0].peerListen must be "host:port"');
    rejects({ ...base(), nodes: [node(1, { listen: "0.0.0.0:1" }), node(2), node(3)] }, {}, 'nodes[0]: unknown field "listen"');
  });
});

describe("settings from the environment", () => {
  test("the naming rule", () => {
    expect(envVarName("cluster.shards")).toBe("TALLY_CLUSTER_SHARDS");
    expect(envVarName("limits.maxSizePerMsgBytes")).toBe("TALLY_LIMITS_MAX_SIZE_PER_MSG_BYTES");
    expect(envVarName("tls.client.cert")).toBe("TALLY_TLS_CLIENT_CERT");
    expect(envVarName("nodes[].peerListen")).toBe("TALLY_NODE_PEER_LISTEN");
    expect(envVarName("nodes[].id")).toBe("TALLY_NODE_ID");
    expect(envVarName("nodes")).toBe("TALLY_NODES");
    const names = CONFIG_SETTINGS.map((spec) => envVarName(spec.path));
    expect(new Set(names).size).toBe(names.length);
  });

  test("variables override the file: sections, and the selected node's own fields only", () => {
    const env = {
      TALLY_CLUSTER_SHARDS: "16",
      TALLY_PLACEMENT_AUTO_REBALANCE: "false",
      TALLY_LIMITS_MAX_REQUEST_BYTES: "8388608",
      TALLY_NODE_CLIENT_LISTEN: "0.0.0.0:7000",
      TALLY_NODE_DATA_DIR: "/data",
      TALLY_NODE_ZONE: "rack-2",
      TALLY_LOG_LEVEL: "debug", // not a setting of the file: ignored here
    };
    const config = parseClusterConfig(base(), "/etc/tally/cluster.yaml", { env, nodeId: 2 });
    expect(config.cluster.shards).toBe(16);
    expect(config.placement.autoRebalance).toBe(false);
    expect(config.limits.maxRequestBytes).toBe(8 * 1024 * 1024);
    expect(config.nodes[1]).toMatchObject({
      id: 2,
      client: "tally-2:7000",
      clientListen: "0.0.0.0:7000",
      dataDir: "/data",
      zone: "rack-2",
    });
    expect(config.nodes[0]!.clientListen).toBeUndefined();
    expect(config.nodes[0]!.dataDir).toBe("/tmp/tally-config-env-test/n1");
  });

  test("an empty variable counts as unset", () => {
    expect(parseClusterConfig(base(), "<inline>", { env: { TALLY_CLUSTER_SHARDS: "" } }).cluster.shards).toBe(4);
  });

  test("bad values get the validator's message, naming the variable", () => {
    rejects(
      base(),
      { env: { TALLY_CLUSTER_SHARDS: "many" } },
      'environment variable TALLY_CLUSTER_SHARDS: cluster.shards must be a positive integer, got "many"',
    );
    rejects(
      base(),
      { env: { TALLY_LIMITS_MAX_KEY_BYTES: "1000" } },
      "environment variable TALLY_LIMITS_MAX_KEY_BYTES: limits.maxKeyBytes (1000) must be at most 256",
    );
    rejects(
      base(),
      { env: { TALLY_PLACEMENT_AUTO_REBALANCE: "yes" } },
      'environment variable TALLY_PLACEMENT_AUTO_REBALANCE: placement.autoRebalance must be true or false, got "yes"',
    );
    rejects(
      base(),
      { env: { TALLY_NODE_PEER_LISTEN: "nowhere" }, nodeId: 3 },
      'environment variable TALLY_NODE_PEER_LISTEN: nodes[2].peerListen must be "host:port"',
    );
    rejects(
      base(),
      { env: { TALLY_TLS_CLIENT_AUTH: "maybe", TALLY_TLS_CA: "ca.pem" } },
      'environment variable TALLY_TLS_CLIENT_AUTH: tls.clientAuth must be "require" or "none"',
    );
    // A relationship broken by a variable says which variables were in play.
    rejects(
      base(),
      { env: { TALLY_CLUSTER_REPLICATION_FACTOR: "5" } },
      "/etc/tally/cluster.yaml with TALLY_CLUSTER_REPLICATION_FACTOR from the environment: cluster.replicationFactor (5) exceeds",
    );
  });

  test("a misspelt variable is an error, not silently ignored", () => {
    rejects(base(), { env: { TALLY_CLUSTER_SHRADS: "16" } }, "environment variable TALLY_CLUSTER_SHRADS: no such setting");
    rejects(base(), { env: { TALLY_NODE_PEER_LISTN: "0.0.0.0:1" }, nodeId: 1 }, "TALLY_NODE_PEER_LISTN: no such setting");
  });

  test("node variables need to know which node, and that node must exist", () => {
    rejects(base(), { env: { TALLY_NODE_DATA_DIR: "/data" } }, "TALLY_NODE_DATA_DIR: needs TALLY_NODE_ID");
    rejects(base(), { env: { TALLY_NODE_DATA_DIR: "/data" }, nodeId: 9 }, "node 9 (TALLY_NODE_ID or --node) is not in nodes");
  });

  test("a whole cluster from the environment, no file", () => {
    const env = {
      TALLY_NODES:
        '[{id: 1, client: "a:7000", peer: "a:7100"}, {id: 2, client: "b:7000", peer: "b:7100"}, {id: 3, client: "c:7000", peer: "c:7100"}]',
      TALLY_NODE_PEER_LISTEN: "0.0.0.0:7100",
      TALLY_CLUSTER_NAME: "from-env",
    };
    const config = loadClusterConfig(undefined, { env, nodeId: 3 });
    expect(config.source).toBe("<environment>");
    expect(config.cluster.name).toBe("from-env");
    expect(config.nodes.map((n) => n.client)).toEqual(["a:7000", "b:7000", "c:7000"]);
    expect(config.nodes[2]!.peerListen).toBe("0.0.0.0:7100");
    expect(() => loadClusterConfig(undefined, { env: { TALLY_NODES: "[{id: 1" } })).toThrow(
      "environment variable TALLY_NODES: not valid YAML",
    );
    expect(() => loadClusterConfig(undefined, { env: { TALLY_NODES: "[{id: 1, client: x}]" } })).toThrow(
      'environment variable TALLY_NODES: nodes[0].client must be "host:port"',
    );
  });

  const dir = mkdtempSync(join(tmpdir(), "tally-config-env-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("a file plus variables, as tallyd loads it; the file itself is not changed", () => {
    const path = join(dir, "cluster.yaml");
    writeFileSync(path, stringify(base()));
    const config = loadClusterConfig(path, { env: { TALLY_NODE_METRICS_LISTEN: "0.0.0.0:7200" }, nodeId: 1 });
    expect(listenAddress(config.nodes[0]!, "metrics")).toBe("0.0.0.0:7200");
    expect(loadClusterConfig(path).nodes[0]!.metricsListen).toBeUndefined();
  });
});
