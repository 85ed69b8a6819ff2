import { describe, expect, it } from "vitest";
import { emptyMap, encodeMetaEntry, MetaStateMachine, type ClusterMap, type MetaCommand, type ShardRecord } from "../../src/meta/map.js";
import { planAll, planOneMove, planTransfers, withMove, type PlacementView } from "../../src/meta/placement.js";
import { evenSlotRanges } from "../../src/meta/slots.js";

const node = (id: number, zone: string) => ({ id, client: `127.0.0.1:${7000 + id}`, peer: `127.0.0.1:${7100 + id}`, zone });
const shards = (count: number, voters: number[]): ShardRecord[] =>
  evenSlotRanges(count).map((range, i) => ({
    id: i + 1,
    slotStart: range.start,
    slotEnd: range.end,
    epoch: 1,
    voters,
    learners: [],
    votersOutgoing: [],
  }));

function machineWith(commands: MetaCommand[]): { machine: MetaStateMachine; results: ReturnType<MetaStateMachine["applyEntry"]> } {
  const machine = new MetaStateMachine();
  const results = machine.applyEntry(1, encodeMetaEntry(1000, commands));
  return { machine, results };
}

const init: MetaCommand = {
  type: "init",
  clusterName: "t",
  replicationFactor: 3,
  nodes: [node(1, "a"), node(2, "b"), node(3, "c")],
  shards: shards(4, [1, 2, 3]),
  metaVoters: [1, 2, 3],
};

describe("the metadata state machine (partition map)", () => {
  it("init once from the config; a second init changes nothing", () => {
    const { machine, results } = machineWith([init, { ...init, clusterName: "other" }]);
    expect(results).toEqual([
      { ok: true, changed: true },
      { ok: true, changed: false },
    ]);
    expect(machine.map.clusterName).toBe("t");
    expect(machine.map.nodes.map((n) => n.state)).toEqual(["up", "up", "up"]);
    expect(machine.map.version).toBe(1);
  });

  it("refuses everything before init, and an init whose slot ranges leave a gap", () => {
    const before = machineWith([{ type: "node-state", nodeId: 1, state: "draining" }]).results[0]!;
    expect(before).toMatchObject({ ok: false, code: "FAILED_PRECONDITION" });
    const gap = { ...init, shards: shards(4, [1, 2, 3]).slice(1) } as MetaCommand;
    expect(machineWith([gap]).results[0]).toMatchObject({ ok: false, code: "INVALID_ARGUMENT" });
  });

  it("node-add admits a new node; ids and addresses are never reused", () => {
    const { machine, results } = machineWith([
      init,
      { type: "node-add", node: node(4, "d") },
      { type: "node-add", node: node(4, "d") },
      { type: "node-add", node: { ...node(5, "e"), client: node(1, "a").client } },
    ]);
    expect(results.slice(1)).toEqual([
      { ok: true, changed: true },
      { ok: true, changed: false },
      { ok: false, code: "FAILED_PRECONDITION", message: "address already used by node 1" },
    ]);
    expect(machine.map.nodes.map((n) => n.id)).toEqual([1, 2, 3, 4]);
  });

  it("remove is refused while the node holds replicas and is final once done", () => {
    const { machine, results } = machineWith([
      init,
      { type: "node-add", node: node(4, "d") },
      { type: "node-state", nodeId: 1, state: "removed" },
      { type: "node-state", nodeId: 4, state: "removed" },
      { type: "node-state", nodeId: 4, state: "up" },
    ]);
    expect(results[2]).toMatchObject({ ok: false, message: expect.stringContaining("drain it first") });
    expect(results[3]).toEqual({ ok: true, changed: true });
    expect(results[4]).toMatchObject({ ok: false, message: expect.stringContaining("removal is final") });
    expect(machine.map.nodes.find((n) => n.id === 4)!.state).toBe("removed");
  });

  it("shard reports move the map forward only (a stale epoch is ignored)", () => {
    const newer: ShardRecord = { ...shards(4, [1, 2, 3])[0]!, epoch: 4, voters: [2, 3, 4] };
    const older: ShardRecord = { ...newer, epoch: 3, voters: [1, 2, 3] };
    const { machine, results } = machineWith([
      init,
      { type: "node-add", node: node(4, "d") },
      { type: "shard-report", shard: newer },
      { type: "shard-report", shard: older },
    ]);
    expect(results.slice(2).map((r) => r.ok && r.changed)).toEqual([true, false]);
    expect(machine.map.shards[0]).toMatchObject({ epoch: 4, voters: [2, 3, 4] });
  });

  it("one operation per shard; a move must name a voter and a non-member up node", () => {
    const { machine, results } = machineWith([
      init,
      { type: "node-add", node: node(4, "d") },
      { type: "op-start", op: { kind: "move", shardId: 1, from: 1, to: 4, reason: "test" } },
      { type: "op-start", op: { kind: "move", shardId: 1, from: 2, to: 4, reason: "test" } },
      { type: "op-start", op: { kind: "move", shardId: 2, from: 4, to: 1, reason: "test" } },
      { type: "op-start", op: { kind: "move", shardId: 2, from: 1, to: 2, reason: "test" } },
      { type: "op-update", id: 1, state: "done", step: "moved" },
    ]);
    expect(results[2]).toEqual({ ok: true, opId: 1, changed: true });
    expect(results[3]).toMatchObject({ ok: false, message: expect.stringContaining("already has operation 1") });
    expect(results[4]).toMatchObject({ ok: false, message: expect.stringContaining("not a voter") });
    expect(results[5]).toMatchObject({ ok: false, message: expect.stringContaining("already holds a replica") });
    expect(machine.map.operations[0]).toMatchObject({ state: "done", step: "moved" });
  });

  it("snapshot and restore give the same map; undecodable entries are corruption", () => {
    const { machine } = machineWith([init, { type: "node-add", node: node(4, "d") }]);
    const copy = MetaStateMachine.restore(machine.snapshot());
    expect(copy.map).toEqual(machine.map);
    expect(() => new MetaStateMachine().applyEntry(1, Uint8Array.of(0xc1))).toThrow(/does not decode|wrong shape/);
  });
});

function mapOf(
  nodes: Array<{ id: number; zone: string; state?: "up" | "down" | "draining" | "removed" }>,
  shardVoters: number[][],
): ClusterMap {
  return {
    ...emptyMap(),
    initialized: true,
    replicationFactor: 3,
    nodes: nodes.map((n) => ({ ...node(n.id, n.zone), state: n.state ?? "up", sinceMs: 0 })),
    shards: shardVoters.map((voters, i) => ({
      id: i + 1,
      slotStart: i,
      slotEnd: i + 1,
      epoch: 1,
      voters,
      learners: [],
      votersOutgoing: [],
    })),
  };
}

/** The smallest (most - least) leader count any choice of one leader per shard among its voters reaches. */
function bestSpread(ids: number[], voters: number[][]): number {
  let best = Infinity;
  const counts = new Map(ids.map((id) => [id, 0]));
  const choose = (shard: number): void => {
    if (shard === voters.length) {
      const values = [...counts.values()];
      best = Math.min(best, Math.max(...values) - Math.min(...values));
      return;
    }
    for (const voter of voters[shard]!) {
      counts.set(voter, counts.get(voter)! + 1);
      choose(shard + 1);
      counts.set(voter, counts.get(voter)! - 1);
    }
  };
  choose(0);
  return best;
}

const allAlive = (map: ClusterMap, leaders = new Map<number, number>()): PlacementView => ({
  alive: new Set(map.nodes.map((n) => n.id)),
  leaders,
  busyShards: new Set(),
});

describe("the placement planner", () => {
  it("a balanced cluster needs nothing", () => {
    const map = mapOf(
      [
        { id: 1, zone: "a" },
        { id: 2, zone: "b" },
        { id: 3, zone: "c" },
      ],
      [
        [1, 2, 3],
        [1, 2, 3],
      ],
    );
    expect(
      planAll(
        map,
        allAlive(
          map,
          new Map([
            [1, 1],
            [2, 2],
          ]),
        ),
      ),
    ).toEqual({ moves: [], transfers: [] });
  });

  it("new nodes get replicas until counts differ by at most one, never two replicas in one zone", () => {
    const map = mapOf(
      [
        { id: 1, zone: "a" },
        { id: 2, zone: "b" },
        { id: 3, zone: "c" },
        { id: 4, zone: "d" },
        { id: 5, zone: "e" },
      ],
      [
        [1, 2, 3],
        [1, 2, 3],
        [1, 2, 3],
        [1, 2, 3],
        [1, 2, 3],
      ],
    );
    const plan = planAll(map, allAlive(map));
    let after = map;
    for (const move of plan.moves) after = withMove(after, move);
    const counts = after.nodes.map((n) => after.shards.filter((s) => s.voters.includes(n.id)).length);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    for (const shard of after.shards) expect(new Set(shard.voters.map((id) => after.nodes.find((n) => n.id === id)!.zone)).size).toBe(3);
  });

  it("replicas on a down or draining node move first, to a node in a zone the shard lacks", () => {
    const map = mapOf(
      [
        { id: 1, zone: "a" },
        { id: 2, zone: "b" },
        { id: 3, zone: "c", state: "down" },
        { id: 4, zone: "a" },
        { id: 5, zone: "c" },
      ],
      [[1, 2, 3]],
    );
    const view = { ...allAlive(map), alive: new Set([1, 2, 4, 5]) };
    expect(planOneMove(map, view)).toEqual({ shardId: 1, from: 3, to: 5, reason: "down node 3" });
  });

  it("a shard with a running operation is not planned again; dead nodes never receive replicas", () => {
    const map = mapOf(
      [
        { id: 1, zone: "a" },
        { id: 2, zone: "b" },
        { id: 3, zone: "c", state: "draining" },
        { id: 4, zone: "c" },
      ],
      [[1, 2, 3]],
    );
    expect(planOneMove(map, { ...allAlive(map), busyShards: new Set([1]) })).toBeUndefined();
    expect(planOneMove(map, { ...allAlive(map), alive: new Set([1, 2, 3]) })).toBeUndefined();
  });

  it("a move planned while another runs counts the running one as done: two at once do not swap the imbalance", () => {
    // Seen with real processes: node 4 held 4 replicas, node 3 held 2; with two moves allowed at a
    // time, both moved a replica from 4 to 3 (3 then held 4), and the next pair moved them back.
    const nodes = [
      { id: 1, zone: "a" },
      { id: 3, zone: "c" },
      { id: 4, zone: "d" },
      { id: 5, zone: "e" },
    ];
    const map = mapOf(nodes, [
      [1, 4, 5],
      [1, 4, 5],
      [3, 4, 5],
      [1, 3, 4],
    ]);
    const first = planOneMove(map, allAlive(map));
    expect(first).toMatchObject({ from: 4, to: 3 });
    const running: ClusterMap = {
      ...map,
      operations: [
        {
          id: 1,
          kind: "move",
          shardId: first!.shardId,
          from: 4,
          to: 3,
          state: "running",
          step: "planned",
          reason: first!.reason,
          createdMs: 0,
          updatedMs: 0,
        },
      ],
    };
    const busy = { ...allAlive(map), busyShards: new Set([first!.shardId]) };
    expect(planOneMove(running, busy)).toBeUndefined();
    // Also once the running move's learner shows in the map, and once its target is a voter.
    const withLearner: ClusterMap = {
      ...running,
      shards: running.shards.map((s) => (s.id === first!.shardId ? { ...s, learners: [3] } : s)),
    };
    expect(planOneMove(withLearner, busy)).toBeUndefined();
    const promoted: ClusterMap = {
      ...running,
      shards: running.shards.map((s) => (s.id === first!.shardId ? { ...s, voters: [1, 3, 4, 5] } : s)),
    };
    expect(planOneMove(promoted, busy)).toBeUndefined();
  });

  it("with up to two moves at a time, finishing in any order, balancing converges", () => {
    // Five nodes, then two added: moves start while others run and finish in a seeded random order.
    let seed = 12345;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const zones = ["a", "b", "c", "d", "e", "f", "g"];
    let map = mapOf(
      zones.map((zone, i) => ({ id: i + 1, zone })),
      Array.from({ length: 10 }, (_, i) => [1 + (i % 5), 1 + ((i + 1) % 5), 1 + ((i + 2) % 5)]),
    );
    let started = 0;
    for (let step = 0; step < 200; step++) {
      const runningOps = map.operations.filter((op) => op.state === "running");
      if (runningOps.length < 2) {
        const move = planOneMove(map, { ...allAlive(map), busyShards: new Set(runningOps.map((op) => op.shardId)) });
        if (move !== undefined) {
          started++;
          map = {
            ...map,
            operations: [
              ...map.operations,
              { id: started, kind: "move", ...move, state: "running", step: "planned", createdMs: 0, updatedMs: 0 },
            ],
          };
          continue;
        }
      }
      if (runningOps.length === 0) break;
      const done = runningOps[Math.floor(random() * runningOps.length)]!;
      map = {
        ...withMove(map, done),
        operations: map.operations.map((op) => (op.id === done.id ? { ...op, state: "done" as const } : op)),
      };
    }
    expect(map.operations.filter((op) => op.state === "running")).toEqual([]);
    const counts = map.nodes.map((n) => map.shards.filter((s) => s.voters.includes(n.id)).length);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    // 30 replicas over 7 nodes: nodes 6 and 7 need 4 each, so 8 moves; a swap back and forth would be more.
    expect(started).toBe(8);
  });

  it("leaders leave draining nodes and spread evenly", () => {
    const map = mapOf(
      [
        { id: 1, zone: "a" },
        { id: 2, zone: "b" },
        { id: 3, zone: "c", state: "draining" },
      ],
      [
        [1, 2, 3],
        [1, 2, 3],
        [1, 2, 3],
        [1, 2, 3],
      ],
    );
    const transfers = planTransfers(
      map,
      allAlive(
        map,
        new Map([
          [1, 3],
          [2, 1],
          [3, 1],
          [4, 1],
        ]),
      ),
      10,
    );
    const leaders = new Map([
      [1, 3],
      [2, 1],
      [3, 1],
      [4, 1],
    ]);
    for (const t of transfers) leaders.set(t.shardId, t.to);
    expect([...leaders.values()].filter((id) => id === 3)).toEqual([]);
    const per = [1, 2].map((id) => [...leaders.values()].filter((l) => l === id).length);
    expect(Math.abs(per[0]! - per[1]!)).toBeLessThanOrEqual(1);
  });

  it("leaders spread through a chain of transfers when the busiest node's shards have no idle voter", () => {
    // Seen in CI (placement.test.ts, 5 nodes, 4 shards): leader counts 2/1/1/0/0 where node 1's two
    // shards have only nodes 2 and 3 as other voters, each already leading one shard. No single
    // transfer helps; node 2 hands shard 3 to node 4 first, then node 1 hands shard 1 to node 2.
    const map = mapOf(
      [1, 2, 3, 4, 5].map((id) => ({ id, zone: `z${id}` })),
      [
        [1, 2, 3],
        [1, 2, 3],
        [2, 4, 5],
        [3, 4, 5],
      ],
    );
    const leaders = new Map([
      [1, 1],
      [2, 1],
      [3, 2],
      [4, 3],
    ]);
    const counts = () => [1, 2, 3, 4, 5].map((id) => [...leaders.values()].filter((l) => l === id).length);
    let steps = 0;
    // One transfer at a time, as the controller runs them; no node ever leads more than the busiest did.
    for (; steps < 10; steps++) {
      const [first] = planTransfers(map, allAlive(map, leaders), 10);
      if (first === undefined) break;
      expect(leaders.get(first.shardId)).toBe(first.from);
      expect(map.shards.find((s) => s.id === first.shardId)!.voters).toContain(first.to);
      leaders.set(first.shardId, first.to);
      expect(Math.max(...counts())).toBeLessThanOrEqual(2);
    }
    expect(counts().filter((c) => c > 0).length).toBe(4);
    expect(Math.max(...counts()) - Math.min(...counts())).toBeLessThanOrEqual(1);
    expect(steps).toBe(2);
  });

  it("leader balancing converges from any leadership over random placements (5 to 7 nodes)", () => {
    let seed = 7;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    for (let trial = 0; trial < 300; trial++) {
      const nodeCount = 5 + random(3);
      const shardCount = 4 + random(5);
      const ids = Array.from({ length: nodeCount }, (_, i) => i + 1);
      const voters = Array.from({ length: shardCount }, () => {
        const pool = [...ids];
        return [0, 1, 2].map(() => pool.splice(random(pool.length), 1)[0]!).sort((a, b) => a - b);
      });
      const map = mapOf(
        ids.map((id) => ({ id, zone: `z${id}` })),
        voters,
      );
      const leaders = new Map(voters.map((v, i) => [i + 1, v[random(3)]!] as [number, number]));
      for (let steps = 0; steps < 4 * shardCount; steps++) {
        const [first] = planTransfers(map, allAlive(map, leaders), shardCount);
        if (first === undefined) break;
        leaders.set(first.shardId, first.to);
      }
      // Optimal: the leader counts are as even as the replica placement allows (a bipartite
      // assignment); checked here as "no further transfer is planned" plus the best spread bound.
      expect(planTransfers(map, allAlive(map, leaders), shardCount)).toEqual([]);
      const counts = ids.map((id) => [...leaders.values()].filter((l) => l === id).length);
      expect(
        Math.max(...counts) - Math.min(...counts),
        `trial ${trial}: voters ${JSON.stringify(voters)} leaders ${JSON.stringify([...leaders])}`,
      ).toBeLessThanOrEqual(bestSpread(ids, voters));
    }
  });

  it("a hot node hands one hot leadership to the coolest voter; count balancing moves cool leaders only", () => {
    const map = mapOf(
      [
        { id: 1, zone: "a" },
        { id: 2, zone: "b" },
        { id: 3, zone: "c" },
      ],
      [
        [1, 2, 3],
        [1, 2, 3],
        [1, 2, 3],
        [1, 2, 3],
      ],
    );
    // Counts 2/1/1 are balanced; node 1's two leaders carry almost all the load.
    const leaders = new Map([
      [1, 1],
      [2, 1],
      [3, 2],
      [4, 3],
    ]);
    const load = new Map([
      [1, 5000],
      [2, 4000],
      [3, 10],
      [4, 10],
    ]);
    const transfers = planTransfers(map, { ...allAlive(map, leaders), load }, 10);
    expect(transfers).toEqual([{ shardId: 1, from: 1, to: 2, reason: expect.stringContaining("hot node 1") }]);
    // Counts 2/1/0: count balancing moves node 1's cooler leader, never the hot one.
    const uneven = planTransfers(
      map,
      {
        ...allAlive(
          map,
          new Map([
            [1, 1],
            [2, 1],
            [3, 2],
          ]),
        ),
        load,
      },
      1,
    );
    expect(uneven).toEqual([{ shardId: 2, from: 1, to: 3, reason: "balance leaders: node 1 leads 2" }]);
    // Equal counts and no load: nothing.
    expect(
      planTransfers(
        map,
        allAlive(
          map,
          new Map([
            [1, 1],
            [2, 2],
            [3, 3],
          ]),
        ),
        10,
      ),
    ).toEqual([]);
  });
});
