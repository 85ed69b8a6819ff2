/**
 * The metadata group and the placement controller with real tallyd processes, under a steady
 * stream of adds: the cluster grows from 3 to 5 nodes online, a node is drained and removed, a node
 * killed past placement.downAfterMs is re-replicated, leaders move by hand, a move survives the
 * loss of its coordinator and of its target, and a request routed by a stale epoch applies nothing.
 * Throughout, every acknowledged add is counted exactly once (ambiguous ones at most once).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import type { ClusterMapReply } from "../../src/cli/format-map.js";
import { AmbiguousError } from "../../src/util/errors.js";
import { eventually, TestCluster } from "../support/cluster.js";
import { keyInSlots } from "../support/keys.js";
import { tallyctl as runTallyctl } from "../support/tallyctl.js";
import { RawCallError, RawNodeClient } from "../support/raw-client.js";

const KEYS = Array.from({ length: 24 }, (_, i) => `placement-key-${i}`);

class SteadyLoad {
  readonly acked = new Map<string, number>();
  readonly ambiguous = new Map<string, number>();
  failures = 0;
  private running = true;
  private readonly workers: Promise<void>[] = [];

  constructor(
    private readonly client: TallyClient,
    concurrency: number,
  ) {
    for (let w = 0; w < concurrency; w++) this.workers.push(this.work(w));
  }

  private async work(worker: number): Promise<void> {
    let i = worker;
    while (this.running) {
      const key = KEYS[i++ % KEYS.length]!;
      try {
        await this.client.add(key, 1n, { deadlineMs: 8000 });
        this.acked.set(key, (this.acked.get(key) ?? 0) + 1);
      } catch (error) {
        if (error instanceof AmbiguousError) this.ambiguous.set(key, (this.ambiguous.get(key) ?? 0) + 1);
        else this.failures++;
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  get total(): number {
    let sum = 0;
    for (const n of this.acked.values()) sum += n;
    return sum;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }

  /**
   * Every acknowledged add counted once; ambiguous ones at most once. While the load runs, adds in
   * flight (at most one per worker) may already be applied but not yet acknowledged.
   */
  async check(client: TallyClient): Promise<void> {
    const inflight = BigInt(this.running ? this.workers.length : 0);
    for (const key of KEYS) {
      const ackedBefore = BigInt(this.acked.get(key) ?? 0);
      const { value } = await client.get(key, { deadlineMs: 10_000 });
      const acked = BigInt(this.acked.get(key) ?? 0);
      const ambiguous = BigInt(this.ambiguous.get(key) ?? 0);
      expect(
        value >= ackedBefore && value <= acked + ambiguous + inflight,
        `${key}: value ${value}, acked ${ackedBefore}..${acked}, ambiguous ${ambiguous}, in flight <= ${inflight}`,
      ).toBe(true);
    }
  }
}

describe("metadata group and placement controller (real processes)", () => {
  let cluster: TestCluster;
  let client: TallyClient;
  let load: SteadyLoad;

  const tallyctl = (...args: string[]) => runTallyctl(cluster.endpoints(), ...args);
  const clusterMap = async (): Promise<ClusterMapReply> => {
    let map = await client.admin<ClusterMapReply>("ClusterMap", {}, { deadlineMs: 5000 });
    const leader = map.nodes.find((n) => n.nodeId === map.metaLeaderId);
    if (!map.fromMetaLeader && leader)
      map = await client.admin<ClusterMapReply>("ClusterMap", {}, { deadlineMs: 5000, address: leader.clientAddress });
    return map;
  };
  const replicasOf = (map: ClusterMapReply, node: number) =>
    map.shards.filter((s) => [...s.voters, ...s.learners].includes(String(node))).length;
  const describeMap = (map: ClusterMapReply | undefined): string => {
    if (!map) return "no map read";
    const nodes = map.nodes.map((n) => `${n.nodeId} ${n.state} leading ${n.leaders}`).join(", ");
    const shards = map.shards
      .map((s) => `shard ${s.shardId}: leader ${s.leaderId} voters ${s.voters} learners ${s.learners} outgoing ${s.votersOutgoing}`)
      .join("; ");
    const operations = map.operations
      .slice(-8)
      .map((op) => `${op.id} ${op.state}: ${op.step}`)
      .join("; ");
    return `last map (meta leader ${map.metaLeaderId}, nodes ${nodes}): ${shards}\nlast operations: ${operations}\n${controllerLog()}`;
  };
  /** The last controller decisions any node logged, oldest first. */
  const controllerLog = (): string => {
    const wanted = /"msg":"(move started|operation finished|map updated|leader transfer|hot shard split started)"/;
    const lines: string[] = [];
    for (const node of cluster.config.nodes) {
      for (const line of cluster.logs(node.id).split("\n")) if (wanted.test(line)) lines.push(`node ${node.id}: ${line}`);
    }
    const time = (line: string) => Number(/"time":(\d+)/.exec(line)?.[1] ?? 0);
    return `controller log (last 30):\n${lines
      .sort((a, b) => time(a) - time(b))
      .slice(-30)
      .join("\n")}`;
  };
  const settled = (map: ClusterMapReply) =>
    map.operations.every((op) => op.state !== "running") &&
    map.shards.every((s) => s.learners.length === 0 && s.votersOutgoing.length === 0 && s.voters.length === 3);

  beforeAll(async () => {
    cluster = await TestCluster.start({
      nodes: 3,
      shards: 4,
      placement: { downAfterMs: 4000, heartbeatMs: 200, maxConcurrentMoves: 2, catchUpTimeoutMs: 20_000, leaderTransferCooldownMs: 2000 },
      // The controller's decisions (moves started and finished, nodes marked down or up) are logged
      // at info: a timeout below quotes them.
      extraEnv: { TALLY_LOG_LEVEL: "info" },
    });
    client = new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 10_000 });
    await client.connect();
    load = new SteadyLoad(client, 4);
  }, 60_000);

  afterAll(async () => {
    await load?.stop();
    await client?.close();
    await cluster?.destroy();
  });

  it("the map is bootstrapped from cluster.yaml: 3 nodes, 4 shards at epoch 1, and tallyctl status shows it", async () => {
    const map = await eventually(
      async () => ((await clusterMap()).fromMetaLeader ? clusterMap() : undefined),
      15_000,
      "the metadata leader's map",
    );
    expect(map.nodes.map((n) => [n.nodeId, n.zone, n.state])).toEqual([
      ["1", "z1", "up"],
      ["2", "z2", "up"],
      ["3", "z3", "up"],
    ]);
    expect(map.shards.map((s) => s.voters.join(","))).toEqual(["1,2,3", "1,2,3", "1,2,3", "1,2,3"]);
    const { code, output } = await tallyctl("status");
    expect(code).toBe(0);
    expect(output).toMatch(/partition map version \d+, metadata leader \d/);
    expect(output).toMatch(/ZONE\s+HOST\s+STATE\s+ALIVE/);
    // Replicas are where they belong; at most leader transfers are planned (elections put leaders anywhere).
    const plan = await tallyctl("rebalance", "--plan");
    expect(plan.code).toBe(0);
    expect(plan.output).toMatch(/balanced: nothing to do|would make 0 moves and \d+ leader transfers/);
  }, 30_000);

  it("grows online: node 4 added to cluster.yaml, node 5 by tallyctl node add, both started, get replicas and leaders while adds run", async () => {
    const before = load.total;
    const four = await cluster.addNode("z4");
    cluster.startNode(four);
    // Node 5 is registered with tallyctl first (the other way in), then started.
    const five = await cluster.addNode("z5");
    const fiveConfig = cluster.config.nodes.find((n) => n.id === five)!;
    const bad = await tallyctl("node", "add", String(five), "--client", "nowhere", "--peer", fiveConfig.peer);
    expect(bad.code).not.toBe(0);
    expect(bad.output).toContain("client_address");
    const added = await tallyctl("node", "add", String(five), "--client", fiveConfig.client, "--peer", fiveConfig.peer, "--zone", "z5");
    expect(added.code, added.output).toBe(0);
    expect(added.output).toContain(`node ${five} added (${fiveConfig.client}`);
    cluster.startNode(five);
    // On a timeout, the last map says why (a move stuck in catch-up, a rollback, an unbalanced count).
    let last: ClusterMapReply | undefined;
    const map = await eventually(
      async () => {
        const m = (last = await clusterMap());
        const counts = m.nodes.filter((n) => n.state === "up").map((n) => replicasOf(m, Number(n.nodeId)));
        return m.nodes.length === 5 &&
          settled(m) &&
          Math.max(...counts) - Math.min(...counts) <= 1 &&
          replicasOf(m, four) >= 2 &&
          replicasOf(m, five) >= 2
          ? m
          : undefined;
      },
      150_000,
      "replicas balanced over 5 nodes",
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${describeMap(last)}`, { cause: error });
    });
    expect(map.operations.filter((op) => op.state === "done").length).toBeGreaterThanOrEqual(4);
    // 4 leaderships over 5 nodes: the controller evens leader counts as far as the replicas allow
    // (chains of transfers where no single one helps), which here is one each on 4 nodes.
    const spreadStart = Date.now();
    await eventually(
      async () => {
        const m = (last = await clusterMap());
        return m.nodes.filter((n) => n.leaders > 0).length >= 4 ? m : undefined;
      },
      30_000,
      "leaders spread over at least 4 nodes",
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${describeMap(last)}`, { cause: error });
    });
    console.log(`placement: leaders spread over 4 nodes ${Date.now() - spreadStart} ms after replicas balanced`);
    expect(load.total).toBeGreaterThan(before + 50);
    await load.check(client);
  }, 240_000);

  it("a request routed by a stale epoch is refused with WRONG_SHARD and applies nothing", async () => {
    const map = await clusterMap();
    const moved = map.shards.find((s) => Number(s.epoch) > 1)!;
    expect(moved).toBeDefined();
    const raw = new RawNodeClient(cluster.config.nodes.find((n) => n.id === Number(moved.leaderId))!.client);
    try {
      const session = await raw.call("registerSession", { shardId: moved.shardId, epoch: moved.epoch });
      // A key of this shard: find one by asking the routes (slot ranges) through the client.
      const routes = await client.routes();
      const slotStart = routes.shards.find((s) => s.shardId === moved.shardId)!.slotStart;
      const key = keyInSlots("stale-epoch", slotStart, routes.shards.find((s) => s.shardId === moved.shardId)!.slotEnd);
      const before = (await client.get(key)).value;
      const header = { shardId: moved.shardId, epoch: "1", clientId: session.clientId, seq: "1", firstUnackedSeq: "1" };
      const error = await raw.call("add", { header, key: Buffer.from(key), delta: "1000" }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RawCallError);
      expect((error as RawCallError).code).toBe("WRONG_SHARD");
      expect(String((error as RawCallError).info?.currentEpoch)).toBe(String(moved.epoch));
      expect((await client.get(key)).value).toBe(before);
    } finally {
      raw.close();
    }
  }, 30_000);

  it("tallyctl leader transfer hands a shard's leadership to the named voter", async () => {
    const map = await clusterMap();
    const shard = map.shards[0]!;
    const target = shard.voters.find((v) => v !== shard.leaderId)!;
    const { code, output } = await tallyctl("leader", "transfer", String(shard.shardId), "--to", target);
    expect(code, output).toBe(0);
    expect(output).toContain(`leadership transfer to node ${target}`);
    let last: ClusterMapReply | undefined;
    await eventually(
      async () => ((last = await clusterMap()).shards[0]!.leaderId === target ? true : undefined),
      10_000,
      `node ${target} leading shard ${shard.shardId}`,
      () => describeMap(last),
    );
    const bad = await tallyctl("leader", "transfer", String(shard.shardId), "--to", "99");
    expect(bad.code).not.toBe(0);
    expect(bad.output).toContain("not a voter");
  }, 30_000);

  it("tallyctl node drain moves every replica off a node; node remove then takes it out", async () => {
    const refused = await tallyctl("node", "remove", "2");
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain("drain it first");
    const drained = await tallyctl("node", "drain", "2");
    expect(drained.code, drained.output).toBe(0);
    expect(drained.output).toContain("node 2 draining");
    await eventually(
      async () => {
        const m = await clusterMap();
        return replicasOf(m, 2) === 0 &&
          !m.metaVoters.includes("2") &&
          m.metaVoters.length === 3 &&
          settled(m) &&
          m.nodes.find((n) => n.nodeId === "2")!.leaders === 0
          ? m
          : undefined;
      },
      90_000,
      "node 2 holding no replica, of a shard or of the metadata group",
    );
    const removed = await tallyctl("node", "remove", "2");
    expect(removed.code, removed.output).toBe(0);
    expect((await clusterMap()).nodes.find((n) => n.nodeId === "2")!.state).toBe("removed");
    await load.check(client);
  }, 120_000);

  it("a move survives killing its coordinator (the metadata leader) and its target midway", async () => {
    // The controller may start a move of its own between our look at the map and our request
    // ("shard N already has operation M running"): then wait for it to settle and choose again.
    // On a timeout, the last map and the last refusal say why (a move that never settles, a busy shard).
    let last: ClusterMapReply | undefined;
    let lastRefusal = "";
    const { coordinator, target, shard } = await eventually(
      async () => {
        const map = (last = await clusterMap());
        if (!settled(map)) return undefined;
        const coordinator = Number(map.metaLeaderId);
        // A shard without a replica on some up node other than the coordinator (node 4 when it can be:
        // earlier steps decide where replicas sit), moved there from a voter that is not the coordinator.
        const candidates = map.nodes.filter((n) => n.state === "up" && Number(n.nodeId) !== coordinator).map((n) => n.nodeId);
        candidates.sort((a, b) => (a === "4" ? -1 : b === "4" ? 1 : 0));
        const target = candidates.find((t) =>
          map.shards.some((s) => !s.voters.includes(t) && s.voters.some((v) => Number(v) !== coordinator)),
        );
        expect(target, JSON.stringify(map.shards.map((s) => s.voters))).toBeDefined();
        const shard = map.shards.find((s) => !s.voters.includes(target!) && s.voters.some((v) => Number(v) !== coordinator))!;
        const from = shard.voters.find((v) => Number(v) !== coordinator)!;
        const moved = await tallyctl("shard", "move", String(shard.shardId), "--from", from, "--to", target!);
        if (moved.code !== 0 && /already has operation \d+ running/.test(moved.output)) {
          lastRefusal = moved.output.trim();
          return undefined;
        }
        expect(moved.code, moved.output).toBe(0);
        expect(moved.output).toMatch(/operation \d+: move shard/);
        return { coordinator, target: target!, shard };
      },
      60_000,
      "a settled map and a move request accepted",
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${describeMap(last)}\nlast refusal: ${lastRefusal || "none"}`, { cause: error });
    });
    await cluster.kill(coordinator);
    await cluster.kill(Number(target));
    await new Promise((r) => setTimeout(r, 1500));
    cluster.startNode(coordinator);
    cluster.startNode(Number(target));
    const map = await eventually(
      async () => {
        const m = await clusterMap();
        const op = m.operations.filter((o) => o.shardId === shard.shardId).at(-1);
        return op && op.state !== "running" && settled(m) ? m : undefined;
      },
      90_000,
      "the interrupted move to finish or roll back",
    );
    const final = map.shards.find((s) => s.shardId === shard.shardId)!;
    expect(final.voters.length).toBe(3);
    expect(final.learners).toEqual([]);
    await load.check(client);
  }, 150_000);

  it("a node killed for longer than placement.downAfterMs is marked down and its replicas re-created elsewhere", async () => {
    const victim = 5;
    await cluster.kill(victim);
    const map = await eventually(
      async () => {
        const m = await clusterMap();
        return m.nodes.find((n) => n.nodeId === String(victim))!.state === "down" && replicasOf(m, victim) === 0 && settled(m)
          ? m
          : undefined;
      },
      90_000,
      `node ${victim} down and re-replicated`,
    );
    expect(map.shards.every((s) => s.voters.length === 3)).toBe(true);
    await load.stop();
    await load.check(client);
    expect(load.total).toBeGreaterThan(200);
  }, 150_000);
});
