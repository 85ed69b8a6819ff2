/**
 * Group commit of auto-batched adds (src/client/batcher.ts): while two of a shard's requests await
 * their first answer, that shard's adds wait and share the next request, which leaves when one
 * answers or once it holds GROUP_COMMIT_OPS adds. Idle, an add leaves at the end of its turn; a
 * queued add that leaves was never sent; a retried request keeps its seq and its ops.
 */
import { describe, expect, it } from "vitest";
import type { PipelineRequestMessage } from "../../src/api/proto.js";
import { GROUP_COMMIT_OPS } from "../../src/client/batcher.js";
import { AmbiguousOperationError, TallyClient, TimeoutError } from "../../src/client/index.js";
import { batchOpsOf, FakeCluster, fakeClusterPerTest, keyInShard, type HookAction, type ReceivedRequest } from "./client-fake-cluster.js";

const setup = fakeClusterPerTest();

/** The next event-loop turn (a timer: an immediate could run before the batcher's own). */
const turn = () => new Promise((resolve) => setTimeout(resolve, 1));
/** Long enough for a request the client sent to reach the in-process servers. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met before the deadline");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Ops a mutation request carries. */
function opCount(received: ReceivedRequest): number {
  if (received.op !== "batch") return 1;
  return batchOpsOf(received.request.batch as unknown as Parameters<typeof batchOpsOf>[0]).length;
}

function mutations(cluster: FakeCluster, from: number): ReceivedRequest[] {
  return cluster.received.slice(from).filter((received) => received.op !== "get" && received.op !== "getMany");
}

/**
 * Holds every mutation to shard 1 from now on until released (apply and reply then), except
 * what `other` decides for the i-th ("serve": at once); `release(i)` answers the i-th held one.
 */
function holdShard1(cluster: FakeCluster, other?: (request: PipelineRequestMessage, index: number) => HookAction | "serve" | undefined) {
  const releases: Array<() => void> = [];
  let index = 0;
  cluster.pipelineHook = (_node, request) => {
    const op = request.op ?? "";
    if (op === "get" || op === "getMany") return undefined;
    const header = (request as unknown as Record<string, { header?: { shardId: number } }>)[op]?.header;
    if (header?.shardId !== 1) return undefined;
    const decided = other?.(request, index++);
    if (decided === "serve") return undefined;
    if (decided !== undefined) return decided;
    return { kind: "hold", until: new Promise<void>((resolve) => releases.push(resolve)) };
  };
  return { release: (i: number) => releases[i]!(), releaseAll: () => releases.forEach((release) => release()) };
}

/** `count` adds to fresh shard-1 keys, made over `turns` event-loop turns. */
async function addsOverTurns(client: TallyClient, cluster: FakeCluster, prefix: string, turns: number, perTurn: number) {
  const adds: Promise<{ value: bigint }>[] = [];
  const keys: string[] = [];
  for (let t = 0; t < turns; t++) {
    for (let i = 0; i < perTurn; i++) {
      const key = keyInShard(cluster.shard(1), prefix, t * perTurn + i);
      keys.push(key);
      adds.push(client.add(key, 1n));
    }
    await turn();
  }
  return { adds, keys };
}

/** Two single adds to shard 1, each seen by the server before the next is made (held there). */
async function twoOnTheirWay(client: TallyClient, cluster: FakeCluster) {
  const from = cluster.received.length;
  const adds: Promise<{ value: bigint }>[] = [];
  for (let i = 0; i < 2; i++) {
    adds.push(client.add(keyInShard(cluster.shard(1), "busy", i), 1n));
    await until(() => mutations(cluster, from).length === i + 1);
  }
  return { adds };
}

describe("auto-batch group commit", () => {
  it("while two requests of a shard await answers, the adds of many turns share the next one", async () => {
    const { cluster, client } = await setup();
    await client.add(keyInShard(cluster.shard(1), "warm"), 1n); // routes and the session
    const held = holdShard1(cluster);
    const from = cluster.received.length;
    const first = client.add(keyInShard(cluster.shard(1), "first"), 1n);
    await turn();
    const second = client.add(keyInShard(cluster.shard(1), "second"), 1n);
    await until(() => mutations(cluster, from).length === 2);
    expect(mutations(cluster, from).map(opCount)).toEqual([1, 1]); // idle: each left at the end of its turn
    const { adds, keys } = await addsOverTurns(client, cluster, "queued", 4, 6); // 24 < GROUP_COMMIT_OPS
    await settle();
    expect(mutations(cluster, from).map(opCount)).toEqual([1, 1]); // two on their way: 24 adds wait
    held.release(0);
    expect((await first).value).toBe(1n);
    await until(() => mutations(cluster, from).length === 3);
    await settle();
    expect(mutations(cluster, from).map(opCount)).toEqual([1, 1, 24]); // one request for four turns' adds
    held.releaseAll();
    expect((await second).value).toBe(1n);
    for (const add of adds) expect((await add).value).toBe(1n);
    for (const key of keys) expect(cluster.counter(key)?.value).toBe(1n);
  });

  it("a lone add on an idle shard is not held by another shard's queue", async () => {
    const { cluster, client } = await setup();
    await client.add(keyInShard(cluster.shard(1), "warm"), 1n);
    await client.add(keyInShard(cluster.shard(2), "warm"), 1n);
    const held = holdShard1(cluster);
    const from = cluster.received.length;
    const busy = await addsOverTurns(client, cluster, "busy", 3, 2);
    await until(() => mutations(cluster, from).length === 2);
    // Shard 2 is idle: its add leaves at the end of this turn and is answered while shard 1 waits.
    expect((await client.add(keyInShard(cluster.shard(2), "lone"), 4n)).value).toBe(4n);
    expect(mutations(cluster, from).map((received) => [received.header?.shardId, opCount(received)])).toEqual([
      [1, 2],
      [1, 2],
      [2, 1],
    ]);
    held.releaseAll();
    await until(() => mutations(cluster, from).length === 4);
    held.releaseAll();
    for (const add of busy.adds) expect((await add).value).toBe(1n);
  });

  it("a queued add whose deadline passes or whose signal aborts was never sent", async () => {
    const { cluster, client } = await setup();
    await client.add(keyInShard(cluster.shard(1), "warm"), 1n);
    const held = holdShard1(cluster);
    const busy = await twoOnTheirWay(client, cluster);
    const late = keyInShard(cluster.shard(1), "late");
    const aborted = keyInShard(cluster.shard(1), "aborted");
    const staying = keyInShard(cluster.shard(1), "staying");
    const controller = new AbortController();
    const lateAdd = client.add(late, 1n, { deadlineMs: 50 });
    const abortedAdd = client.add(aborted, 1n, { signal: controller.signal });
    const stayingAdd = client.add(staying, 2n);
    await turn();
    controller.abort(new Error("bye"));
    await expect(abortedAdd).rejects.toThrow("bye");
    const error = await lateAdd.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TimeoutError); // a plain failure: it was never sent
    expect(error).not.toBeInstanceOf(AmbiguousOperationError);
    held.release(0);
    expect((await busy.adds[0]!).value).toBe(1n);
    await until(() => cluster.mutationsFor(staying).length === 1);
    held.releaseAll();
    expect((await stayingAdd).value).toBe(2n);
    expect(cluster.mutationsFor(late)).toEqual([]);
    expect(cluster.mutationsFor(aborted)).toEqual([]);
    expect(cluster.counter(late)).toBeUndefined();
    expect(cluster.mutationsFor(staying)).toHaveLength(1);
    held.releaseAll();
    expect((await busy.adds[1]!).value).toBe(1n);
  });

  it("a waiting batch leaves at the end of the turn it reaches GROUP_COMMIT_OPS adds, answer or not", async () => {
    const { cluster, client } = await setup();
    await client.add(keyInShard(cluster.shard(1), "warm"), 1n);
    const held = holdShard1(cluster);
    const from = cluster.received.length;
    const busy = await twoOnTheirWay(client, cluster);
    const small = await addsOverTurns(client, cluster, "small", 1, GROUP_COMMIT_OPS - 10);
    await settle();
    expect(mutations(cluster, from).map(opCount)).toEqual([1, 1]); // below GROUP_COMMIT_OPS: it waits
    const more = await addsOverTurns(client, cluster, "more", 1, 20); // the waiting batch passes it
    await until(() => mutations(cluster, from).length === 3);
    // It left at the end of the turn in which it passed GROUP_COMMIT_OPS, with all of that turn's adds.
    expect(mutations(cluster, from).map(opCount)).toEqual([1, 1, GROUP_COMMIT_OPS + 10]);
    const late = await addsOverTurns(client, cluster, "late", 1, 5);
    await settle();
    expect(mutations(cluster, from)).toHaveLength(3); // three on their way: the 5 late adds wait
    held.releaseAll();
    await until(() => mutations(cluster, from).length === 4);
    expect(mutations(cluster, from).map(opCount)).toEqual([1, 1, GROUP_COMMIT_OPS + 10, 5]);
    held.releaseAll();
    for (const add of [...busy.adds, ...small.adds, ...more.adds, ...late.adds]) expect((await add).value).toBe(1n);
  });

  it("a full batch leaves at once; the rest wait for an answer", async () => {
    const { cluster, client } = await setup({ maxBatchOps: 4 });
    await client.add(keyInShard(cluster.shard(1), "warm"), 1n);
    const held = holdShard1(cluster);
    const from = cluster.received.length;
    const busy = await twoOnTheirWay(client, cluster);
    const queued = await addsOverTurns(client, cluster, "queued", 1, 10);
    await until(() => mutations(cluster, from).length === 4);
    await settle();
    expect(mutations(cluster, from).map(opCount)).toEqual([1, 1, 4, 4]); // two full batches; 2 adds wait
    held.release(0);
    held.release(1);
    held.release(2); // one left on its way (the full batches took slots too): the 2 leave
    await until(() => mutations(cluster, from).length === 5);
    expect(mutations(cluster, from).map(opCount)).toEqual([1, 1, 4, 4, 2]);
    held.releaseAll();
    for (const add of [...busy.adds, ...queued.adds]) expect((await add).value).toBe(1n);
  });

  it("requests whose replies were lost are retried with their seqs and ops; queued adds take a new seq", async () => {
    const { cluster, client } = await setup({ attemptTimeoutMs: 300 });
    await client.add(keyInShard(cluster.shard(1), "warm"), 1n);
    // The first two requests are applied but their replies lost; the rest are served.
    holdShard1(cluster, (_request, index) => (index < 2 ? { kind: "apply-no-reply" } : "serve"));
    const from = cluster.received.length;
    const lost = [keyInShard(cluster.shard(1), "lost", 0), keyInShard(cluster.shard(1), "lost", 1)];
    const lostAdds: Promise<{ value: bigint }>[] = [];
    for (const key of lost) {
      lostAdds.push(client.add(key, 3n));
      await turn();
    }
    const queued = await addsOverTurns(client, cluster, "queued", 3, 10);
    // An attempt times out: its retry (same seq) goes out, and the queued adds as one new request.
    for (const add of lostAdds) expect((await add).value).toBe(3n);
    for (const add of queued.adds) expect((await add).value).toBe(1n);
    for (const key of lost) {
      // Applied at the leader, reply lost; after the attempt timeout the same seq goes to another
      // replica, which names the leader (NOT_LEADER, nothing applied), then to the leader, which
      // answers it from the session.
      const attempts = cluster.mutationsFor(key);
      expect(attempts.map(opCount)).toEqual([1, 1, 1]);
      const leader = attempts[0]!.nodeId;
      expect(attempts.map((attempt) => attempt.nodeId)).toEqual([leader, expect.not.stringMatching(`^${leader}$`), leader]);
      for (const attempt of attempts.slice(1)) {
        expect(attempt.header?.clientId).toBe(attempts[0]!.header?.clientId);
        expect(attempt.header?.seq).toBe(attempts[0]!.header?.seq);
      }
      expect(cluster.counter(key)?.value).toBe(3n);
    }
    expect(cluster.duplicates).toBe(2);
    for (const key of queued.keys) expect(cluster.counter(key)?.value).toBe(1n);
    const sent = mutations(cluster, from);
    // The two lost adds three times each (leader, another replica, leader); three turns' adds: one
    // request, which also meets the other replica first (the leader is avoided until it is named).
    expect(sent.map(opCount).sort((a, b) => a - b)).toEqual([1, 1, 1, 1, 1, 1, 30, 30]);
    const big = sent.filter((received) => opCount(received) === 30);
    expect(big[1]!.header?.seq).toBe(big[0]!.header?.seq);
    expect(big[0]!.nodeId).not.toBe(big[1]!.nodeId);
    const seqs = sent.map((received) => `${received.header?.clientId}/${received.header?.seq}`);
    expect(new Set(seqs).size).toBe(3); // each retry repeats its seq; the new request has its own
  });
});
