/**
 * Several tallyd per host (ADR 0013), with real processes: 6 tallyd as 3 hosts x 2 processes (each
 * with its own data directory and ports; a zone per host). No shard and not the metadata group keeps
 * two replicas on one host, so killing both processes of a host (host a, which also holds a
 * metadata replica and the first endpoints the client knows) leaves every shard a quorum: each
 * one still takes adds and reads them back, and the controller, unable to re-replicate without
 * breaking the rule, moves nothing and says why in `tallyctl rebalance --plan`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import type { ClusterMapReply } from "../../src/cli/format-map.js";
import { eventually, TestCluster } from "../support/cluster.js";
import { keyInSlots } from "../support/keys.js";
import { tallyctl as runTallyctl } from "../support/tallyctl.js";

const SHARDS = 8;
/** Node id -> host: 1,2 on host-a, 3,4 on host-b, 5,6 on host-c. */
const hostOf = (id: number) => `host-${"abc"[Math.floor((id - 1) / 2)]}`;

describe("3 hosts x 2 tallyd: a host failure costs no shard its quorum (real processes)", () => {
  let cluster: TestCluster;
  let client: TallyClient;
  const tallyctl = (...args: string[]) => runTallyctl(cluster.endpoints(), ...args);
  /** The map from the metadata leader (liveness and plans come from there). */
  const leaderMap = async (): Promise<ClusterMapReply> => {
    const map = await client.admin<ClusterMapReply>("ClusterMap", {}, { deadlineMs: 5000 });
    const leader = map.nodes.find((n) => n.nodeId === map.metaLeaderId);
    if (map.fromMetaLeader || leader === undefined) return map;
    return client.admin<ClusterMapReply>("ClusterMap", {}, { deadlineMs: 5000, address: leader.clientAddress });
  };
  const keyOf = (shard: { slotStart: number; slotEnd: number }) => keyInSlots("hosts", shard.slotStart, shard.slotEnd);

  beforeAll(async () => {
    cluster = await TestCluster.start({
      nodes: 6,
      shards: SHARDS,
      nodeLayout: (id) => ({ host: hostOf(id), zone: `zone-${hostOf(id)}` }),
      placement: { autoRebalance: true, downAfterMs: 3000, heartbeatMs: 200, leaderTransferCooldownMs: 2000 },
    });
    client = new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 10_000 });
    await client.connect();
  }, 90_000);

  afterAll(async () => {
    await client?.close();
    await cluster?.destroy();
  });

  it("every shard and the metadata group sit on 3 distinct hosts; status shows each node's host", async () => {
    const map = await eventually(
      async () => {
        const candidate = await leaderMap();
        return candidate.shards.length === SHARDS && candidate.fromMetaLeader ? candidate : undefined;
      },
      20_000,
      "the partition map from the metadata leader",
    );
    expect(map.nodes.map((n) => [n.nodeId, n.host])).toEqual([1, 2, 3, 4, 5, 6].map((id) => [String(id), hostOf(id)]));
    for (const shard of map.shards) expect(new Set(shard.voters.map((id) => hostOf(Number(id)))).size, `shard ${shard.shardId}`).toBe(3);
    expect(new Set((map.metaVoters ?? []).map((id) => hostOf(Number(id)))).size).toBe(3);
    // Both processes of every host hold replicas: the cluster uses all six.
    for (let id = 1; id <= 6; id++) expect(map.nodes.find((n) => n.nodeId === String(id))!.replicas).toBeGreaterThan(0);
    const { code, output } = await tallyctl("status");
    expect(code).toBe(0);
    expect(output).toMatch(/ZONE\s+HOST\s+STATE/);
    expect(output).toMatch(/^4\s+\S+\s+zone-host-b\s+host-b\s/m);
  });

  it("killing both processes of host a: every shard still has a quorum, takes adds and reads them back", async () => {
    const before = await leaderMap();
    for (const shard of before.shards) await client.add(keyOf(shard), 5n);
    await cluster.kill(1);
    await cluster.kill(2);
    for (const shard of before.shards) {
      const key = keyOf(shard);
      // A shard that was led from host a elects a new leader among its other two replicas first.
      await eventually(
        async () => (await client.add(key, 2n, { deadlineMs: 3000 })) !== undefined,
        20_000,
        `an add to shard ${shard.shardId} (voters ${shard.voters.join(",")})`,
      );
      expect((await client.get(key, { deadlineMs: 5000 })).value, `shard ${shard.shardId}`).toBeGreaterThanOrEqual(7n);
    }
    // The metadata group lost one of its three replicas, not two: it still answers from a leader.
    const after = await eventually(
      async () => {
        const map = await leaderMap();
        const down = map.nodes.filter((n) => n.state === "down").map((n) => n.nodeId);
        return map.fromMetaLeader && down.join(",") === "1,2" ? map : undefined;
      },
      20_000,
      "nodes 1 and 2 marked down by the metadata leader",
    );
    expect(after.shards.every((s) => s.voters.length === 3)).toBe(true);
  });

  it("with host a down the controller moves nothing onto a used host, and the plan says why", async () => {
    // A few controller rounds (heartbeatMs 200) with both nodes down: no move may start.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const map = await leaderMap();
    expect(map.operations.filter((op) => op.kind === "move")).toEqual([]);
    for (const shard of map.shards) {
      const hosts = [...shard.voters, ...shard.learners].map((id) => hostOf(Number(id)));
      expect(new Set(hosts).size, `shard ${shard.shardId}: ${hosts}`).toBe(hosts.length);
    }
    const plan = await tallyctl("rebalance", "--plan");
    expect(plan.code).toBe(0);
    expect(plan.output).toMatch(/would make 0 moves and \d+ leader transfers; \d+ replicas have nowhere to go/);
    expect(plan.output).toContain("two replicas of a shard never share a host");
    // An operator's move onto a host the shard uses is refused by the metadata state machine.
    const shard = map.shards.find((s) => s.voters.includes("1"))!;
    const onHostB = shard.voters.find((id) => hostOf(Number(id)) === "host-b")!;
    const otherOnB = onHostB === "3" ? "4" : "3";
    const move = await tallyctl("shard", "move", String(shard.shardId), "--from", "1", "--to", otherOnB);
    expect(move.code).not.toBe(0);
    expect(move.output).toContain(`node ${otherOnB} is on host host-b, which already holds a replica of shard ${shard.shardId}`);
  });

  it("tallyctl node add --host: a host keeps its zone; the map and status show the new node's host", async () => {
    const address = (port: number) => `127.0.0.1:${port}`;
    const addNode7 = (zone: string) =>
      tallyctl("node", "add", "7", "--client", address(1), "--peer", address(2), "--host", "host-c", "--zone", zone);
    const wrongZone = await addNode7("elsewhere");
    expect(wrongZone.code).not.toBe(0);
    expect(wrongZone.output).toContain("host host-c is in zone zone-host-c (node 5), not elsewhere");
    const added = await addNode7("zone-host-c");
    expect(added.code, added.output).toBe(0);
    expect(added.output).toContain("host host-c");
    const map = await leaderMap();
    expect(map.nodes.find((n) => n.nodeId === "7")?.host).toBe("host-c");
    const unnamed = await tallyctl("node", "add", "8", "--client", address(3), "--peer", address(4));
    expect(unnamed.code, unnamed.output).toBe(0);
    expect((await leaderMap()).nodes.find((n) => n.nodeId === "8")?.host).toBe("8");
  });
});
