/**
 * Operations against real tallyd processes: `tallyctl status` and `endpoint health` through a node
 * failure and a lost quorum (their verdicts and exit codes), http:// endpoints, `tallyd --version`
 * and the tally_build_info metric, and pretty logs that still let a node stop cleanly.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, eventually } from "../support/cluster.js";
import { runNodeProcess } from "../support/run-process.js";
import { tallyctl } from "../support/tallyctl.js";

const root = resolve(import.meta.dirname, "..", "..");
const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start({
    nodes: 3,
    shards: 2,
    metrics: true,
    extraEnv: { TALLY_LOG_FORMAT: "pretty", TALLY_LOG_LEVEL: "info" },
  });
});
afterAll(async () => {
  await cluster?.destroy();
});

describe("operating a cluster", () => {
  it("tallyd --version, tally_build_info, pretty logs", async () => {
    const printed = await runNodeProcess([join(root, "bin", "tallyd.js"), "--version"], {
      cwd: root,
      env: process.env,
      deadlineMs: 30_000,
    });
    expect(printed).toMatchObject({ code: 0, killed: false, stdout: `tallyd ${version} (node ${process.version})\n` });
    const metrics = await (await fetch(`${cluster.opsUrl(1)}/metrics`)).text();
    const info = metrics.split("\n").find((line) => line.startsWith("tally_build_info{"));
    expect(info).toBeDefined();
    expect(info).toContain(`version="${version}"`);
    expect(info).toContain(`node_version="${process.version}"`);
    expect(info!.endsWith("} 1")).toBe(true);
    // TALLY_LOG_FORMAT=pretty: short readable lines, no JSON.
    expect(cluster.logs(1)).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: n1 tallyd: tallyd serving \{/m);
    expect(cluster.logs(1)).not.toMatch(/"level":/);
  });

  it("status and endpoint health: healthy (exit 0), a node down (exit 5), quorum lost (exit 6)", async () => {
    const http = cluster.endpoints().map((endpoint) => `http://${endpoint}`);
    const healthy = await tallyctl(http, "status");
    expect(healthy.code, healthy.output).toBe(0);
    expect(healthy.output.split("\n")[0]).toBe("healthy: 3/3 nodes, 2/2 shards with a leader");
    const allUp = await tallyctl(http, "endpoint", "health");
    expect(allUp.code, allUp.output).toBe(0);
    expect(
      allUp.output
        .trim()
        .split("\n")
        .map((line) => line.replace(/ took .*$/, "")),
    ).toEqual(
      [1, 2, 3].map((id) => expect.stringMatching(new RegExp(`^127\\.0\\.0\\.1:\\d+ is healthy: node ${id}, 3 groups, leads \\d,$`))),
    );

    // A graceful stop with pretty logs on: exit 0, well under tallyd's 8 s hard deadline.
    const started = Date.now();
    expect(await cluster.stop(3)).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
    const down = cluster.config.nodes[2]!.client;
    const degraded = await eventually(
      async () => {
        const result = await tallyctl(cluster.endpoints(), "status");
        return result.code === 5 ? result : undefined;
      },
      15_000,
      "status exits 5 with node 3 down",
    );
    expect(degraded.output.split("\n")[0]).toBe("degraded: node 3 unreachable (2/3 nodes, 2/2 shards with a leader)");
    expect(degraded.output).toContain(`node 3 (${down}): connection refused`);
    expect(degraded.output).not.toMatch(/ECONNREFUSED|UNAVAILABLE|Last error/);
    // The down node first in the list: admin calls move on to the next node (the map, a plan).
    const downFirst = [down, ...cluster.endpoints().filter((endpoint) => endpoint !== down)];
    const mapFromOthers = await tallyctl(downFirst, "status");
    expect(mapFromOthers.code, mapFromOthers.output).toBe(5);
    expect(mapFromOthers.output).toMatch(/^partition map version \d+, metadata leader \d/m);
    const plan = await tallyctl(downFirst, "rebalance", "--plan");
    expect(plan.code, plan.output).toBe(0);
    const oneDown = await tallyctl(cluster.endpoints(), "endpoint", "health");
    expect(oneDown.code, oneDown.output).toBe(5);
    expect(oneDown.output).toContain(`${down} is unhealthy: connection refused\n`);

    await cluster.kill(2);
    // A leader that lost its quorum steps down after an election timeout (CheckQuorum), each group
    // on its own schedule (the shards and the metadata group): wait until none has one.
    const unavailableLine =
      "unavailable: shards 1, 2 have no leader; nodes 2, 3 unreachable; the metadata group has no leader (1/3 nodes, 0/2 shards with a leader)";
    let lastStatus = "";
    const unavailable = await eventually(
      async () => {
        const result = await tallyctl(cluster.endpoints(), "--timeout", "4000", "status");
        lastStatus = result.output;
        return result.code === 6 && result.output.split("\n")[0] === unavailableLine ? result : undefined;
      },
      20_000,
      "status exits 6: no shard and no metadata group with a leader, with a quorum lost",
      () => lastStatus,
    );
    expect(unavailable.output.split("\n")[0]).toBe(unavailableLine);
    // Node 1 answers but cannot serve: its health check says NOT_SERVING (its /readyz: no quorum
    // reachable). Readiness is re-evaluated on the node's own schedule, so it may trail the status.
    let lastHealth = "";
    const noQuorum = await eventually(
      async () => {
        const result = await tallyctl(cluster.endpoints(), "endpoint", "health");
        lastHealth = result.output;
        return result.output.includes("is unhealthy: NOT_SERVING") ? result : undefined;
      },
      10_000,
      "node 1's health check saying NOT_SERVING with its quorum lost",
      () => lastHealth,
    );
    expect(noQuorum.code, noQuorum.output).toBe(5);
    expect(noQuorum.output).toContain(`${cluster.config.nodes[0]!.client} is unhealthy: NOT_SERVING: node 1 `);
  });
});
