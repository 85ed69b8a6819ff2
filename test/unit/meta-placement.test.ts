import { describe, expect, it } from "vitest";
import { emptyMap, encodeMetaEntry, MetaStateMachine, type ClusterMap, type MetaCommand, type ShardRecord } from "../../src/meta/map.js";
import { planAll, planOneMove, planTransfers, withMove, type PlacementView } from "../../src/meta/placement.js";
import { evenSlotRanges } from "../../src/meta/slots.js";

const node = (id: number, zone: string) => ({ id, client: `127.0.0.1:${7000 + id}`, peer: `127.0.0.1:${7100 + id}`, zone });
const shards = (count: number, voters: number[]): ShardRecord[] =>
  evenSlotRanges(count).map((range, i) => ({ id: i + 1, slotStart: range.start, slotEnd: range.end, epoch: 1, voters, learners: [], votersOutgoing: [] }));

function machineWith(commands: MetaCommand[]): { machine: MetaStateMachine; results: ReturnType<MetaStateMachine["applyEntry"]> } {
  const machine = new MetaStateMachine();
  const results = machine.applyEntry(1, encodeMetaEntry(1000, commands));
  return { machine, results };
}

const init: MetaCommand = { type: "init", clusterName: "t", replicationFactor: 3, nodes: [node(1, "a"), node(2, "b"), node(3, "c")], shards: shards(4, [1, 2, 3]), metaVoters: [1, 2, 3] };

describe("the metadata state machine (partition map)", () => {
  it("init once from the config; a second init changes nothing", () => {
    const { machine, results } = machineWith([init, { ...init, clusterName: "other" }]);
    expect(results).toEqual([{ ok: true, changed: true }, { ok: true, changed: false }]);
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
    const { machine, results } = machineWith([init, { type: "node-add", node: node(4, "d") }, { type: "node-add", node: node(4, "d") }, { type: "node-add", node: { ...node(5, "e"), client: node(1, "a").client } }]);
    expect(results.slice(1)).toEqual([{ ok: true, changed: true }, { ok: true, changed: false }, { ok: false, code: "FAILED_PRECONDITION", message: "address already used by node 1" }]);
    expect(machine.map.nodes.map((n) => n.id)).toEqual([1, 2, 3, 4]);
  });

  it("remove is refused while the node holds replicas and is final once done", () => {
    const { machine, results } = machineWith([init, { type: "node-add", node: node(4, "d") }, { type: "node-state", nodeId: 1, state: "removed" }, { type: "node-state", nodeId: 4, state: "removed" }, { type: "node-state", nodeId: 4, state: "up" }]);
    expect(results[2]).toMatchObject({ ok: false, message: expect.stringContaining("drain it first") });
    expect(results[3]).toEqual({ ok: true, changed: true });
    expect(results[4]).toMatchObject({ ok: false, message: expect.stringContaining("removal is final") });
    expect(machine.map.nodes.find((n) => n.id === 4)!.state).toBe("removed");
  });

  it("shard reports move the map forward only (a stale epoch is ignored)", () => {
    const newer: ShardRecord = { ...shards(4, [1, 2, 3])[0]!, epoch: 4, voters: [2, 3, 4] };
    const older: ShardRecord = { ...newer, epoch: 3, voters: [1, 2, 3] };
    const { machine, results } = machineWith([init, { type: "node-add", node: node(4, "d") }, { type: "shard-report", shard: newer }, { type: "shard-report", shard: older }]);
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

function mapOf(nodes: Array<{ id: number; zone: string; state?: "up" | "down" | "draining" | "removed" }>, shardVoters: number[][]): ClusterMap {
  return {
    ...emptyMap(),
    initialized: true,
    replicationFactor: 3,
    nodes: nodes.map((n) => ({ ...node(n.id, n.zone), state: n.state ?? "up", sinceMs: 0 })),
    shards: shardVoters.map((voters, i) => ({ id: i + 1, slotStart: i, slotEnd: i + 1, epoch: 1, voters, learners: [], votersOutgoing: [] })),
  };
}

const allAlive = (map: ClusterMap, leaders = new Map<number, number>()): PlacementView => ({ alive: new Set(map.nodes.map((n) => n.id)), leaders, busyShards: new Set() });

describe("the placement planner", () => {
  it("a balanced cluster needs nothing", () => {
    const map = mapOf([{ id: 1, zone: "a" }, { id: 2, zone: "b" }, { id: 3, zone: "c" }], [[1, 2, 3], [1, 2, 3]]);
    expect(planAll(map, allAlive(map, new Map([[1, 1], [2, 2]])))).toEqual({ moves: [], transfers: [] });
  });

  it("new nodes get replicas until counts differ by at most one, never two replicas in one zone", () => {
    const map = mapOf(
      [{ id: 1, zone: "a" }, { id: 2, zone: "b" }, { id: 3, zone: "c" }, { id: 4, zone: "d" }, { id: 5, zone: "e" }],
      [[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3]],
    );
    const plan = planAll(map, allAlive(map));
    let after = map;
    for (const move of plan.moves) after = withMove(after, move);
    const counts = after.nodes.map((n) => after.shards.filter((s) => s.voters.includes(n.id)).length);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    for (const shard of after.shards) expect(new Set(shard.voters.map((id) => after.nodes.find((n) => n.id === id)!.zone)).size).toBe(3);
  });

  it("replicas on a down or draining node move first, to a node in a zone the shard lacks", () => {
    const map = mapOf([{ id: 1, zone: "a" }, { id: 2, zone: "b" }, { id: 3, zone: "c", state: "down" }, { id: 4, zone: "a" }, { id: 5, zone: "c" }], [[1, 2, 3]]);
    const view = { ...allAlive(map), alive: new Set([1, 2, 4, 5]) };
    expect(planOneMove(map, view)).toEqual({ shardId: 1, from: 3, to: 5, reason: "down node 3" });
  });

  it("a shard with a running operation is not planned again; dead nodes never receive replicas", () => {
    const map = mapOf([{ id: 1, zone: "a" }, { id: 2, zone: "b" }, { id: 3, zone: "c", state: "draining" }, { id: 4, zone: "c" }], [[1, 2, 3]]);
    expect(planOneMove(map, { ...allAlive(map), busyShards: new Set([1]) })).toBeUndefined();
    expect(planOneMove(map, { ...allAlive(map), alive: new Set([1, 2, 3]) })).toBeUndefined();
  });

  it("leaders leave draining nodes and spread evenly", () => {
    const map = mapOf([{ id: 1, zone: "a" }, { id: 2, zone: "b" }, { id: 3, zone: "c", state: "draining" }], [[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3]]);
    const transfers = planTransfers(map, allAlive(map, new Map([[1, 3], [2, 1], [3, 1], [4, 1]])), 10);
    const leaders = new Map([[1, 3], [2, 1], [3, 1], [4, 1]]);
    for (const t of transfers) leaders.set(t.shardId, t.to);
    expect([...leaders.values()].filter((id) => id === 3)).toEqual([]);
    const per = [1, 2].map((id) => [...leaders.values()].filter((l) => l === id).length);
    expect(Math.abs(per[0]! - per[1]!)).toBeLessThanOrEqual(1);
  });

  it("a hot node hands one hot leadership to the coolest voter; count balancing moves cool leaders only", () => {
    const map = mapOf([{ id: 1, zone: "a" }, { id: 2, zone: "b" }, { id: 3, zone: "c" }], [[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3]]);
    // Counts 2/1/1 are balanced; node 1's two leaders carry almost all the load.
    const leaders = new Map([[1, 1], [2, 1], [3, 2], [4, 3]]);
    const load = new Map([[1, 5000], [2, 4000], [3, 10], [4, 10]]);
    const transfers = planTransfers(map, { ...allAlive(map, leaders), load }, 10);
    expect(transfers).toEqual([{ shardId: 1, from: 1, to: 2, reason: expect.stringContaining("hot node 1") }]);
    // Counts 2/1/0: count balancing moves node 1's cooler leader, never the hot one.
    const uneven = planTransfers(map, { ...allAlive(map, new Map([[1, 1], [2, 1], [3, 2]])), load }, 1);
    expect(uneven).toEqual([{ shardId: 2, from: 1, to: 3, reason: "balance leaders: node 1 leads 2" }]);
    // Equal counts and no load: nothing.
    expect(planTransfers(map, allAlive(map, new Map([[1, 1], [2, 2], [3, 3]])), 10)).toEqual([]);
  });
});
