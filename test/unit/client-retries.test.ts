import { describe, expect, it } from "vitest";
import { AmbiguousError, AmbiguousOperationError, OutOfRangeError, TallyClient, INT64_MAX } from "../../src/client/index.js";
import { batchOpsOf, fakeClusterPerTest, keyInShard, type FakeCluster, type ReceivedRequest } from "./client-fake-cluster.js";

const setup = fakeClusterPerTest();

function sessionIds(requests: ReceivedRequest[]): string[] {
  return requests.map((request) => `${request.header?.clientId}/${request.header?.seq}`);
}

async function waitFor(condition: () => boolean, deadlineMs = 5_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met before the deadline");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Node 1 (shard 1's leader) stops answering reads, and the shard moves to node 2. */
function freezeReadsAtNode1(cluster: FakeCluster): void {
  cluster.pipelineHook = (node, request) => (request.op === "get" && node.id === "1" ? { kind: "no-reply" } : undefined);
  cluster.shard(1).leaderId = "2";
}

/** Exactly one get went to the frozen node 1, and the last one was served by node 2. */
function expectOneGetAtNode1ThenNode2(cluster: FakeCluster): void {
  const gets = cluster.received.filter((r) => r.op === "get").map((r) => r.nodeId);
  expect(gets.filter((node) => node === "1")).toHaveLength(1);
  expect(gets.at(-1)).toBe("2");
}

describe("TallyClient retries (Raft thesis 6.3: one (clientId, seq) per mutation)", () => {
  it("follows a NOT_LEADER hint and resends the same (clientId, seq) there", async () => {
    const { cluster, client } = await setup();
    const warm = keyInShard(cluster.shard(1), "warm");
    await client.add(warm, 1n); // registers the shard-1 session at node 1
    const key = keyInShard(cluster.shard(1), "moved");
    // Leadership moves to node 2; the client's map still says node 1.
    cluster.shard(1).leaderId = "2";
    const result = await client.add(key, 7n);
    expect(result.value).toBe(7n);
    const attempts = cluster.mutationsFor(key);
    expect(attempts.map((attempt) => attempt.nodeId)).toEqual(["1", "2"]);
    const ids = sessionIds(attempts);
    expect(ids[0]).toBe(ids[1]);
    expect(cluster.counter(key)?.value).toBe(7n);

    // RegisterSession (a unary call: ErrorInfo in trailing metadata) follows the hint too.
    cluster.shard(2).leaderId = "3";
    expect((await client.add(keyInShard(cluster.shard(2), "fresh"), 1n)).value).toBe(1n);
    expect(cluster.registrations.filter((registration) => registration.shardId === 2).map((r) => r.nodeId)).toEqual(["3"]);
  });

  it("a dropped reply is retried with the same seq and applied once", async () => {
    const { cluster, client } = await setup({ attemptTimeoutMs: 150 });
    const key = keyInShard(cluster.shard(2), "dropped");
    let dropped = false;
    cluster.pipelineHook = (_node, request) => {
      if (!dropped && request.op === "add" && request.add?.key.toString() === key) {
        dropped = true;
        return { kind: "apply-no-reply" };
      }
      return undefined;
    };
    const result = await client.add(key, 5n);
    expect(result.value).toBe(5n);
    const attempts = cluster.mutationsFor(key);
    // The leader applied it and did not answer. After the attempt timeout the same seq goes to
    // another replica (a leader that stops answering may be paused or cut off), which names the
    // leader (NOT_LEADER: nothing applied), and the leader answers it from the session.
    const leader = attempts[0]!.nodeId;
    expect(attempts.map((attempt) => attempt.nodeId)).toEqual([leader, expect.not.stringMatching(`^${leader}$`), leader]);
    expect(new Set(sessionIds(attempts)).size).toBe(1);
    expect(cluster.duplicates).toBe(1);
    expect(cluster.counter(key)?.value).toBe(5n);
  });

  it("WRONG_SHARD after a split: refreshes the map and sends to the new shard", async () => {
    const { cluster, client } = await setup();
    // A key in the upper half of shard 1, which is about to move to shard 2.
    const key = keyInShard({ slotStart: 4096, slotEnd: 8192 }, "split");
    await client.add(keyInShard({ slotStart: 0, slotEnd: 4096 }, "stay"), 1n);
    cluster.shard(1).slotEnd = 4096;
    cluster.shard(1).epoch = 2n;
    cluster.shard(2).slotStart = 4096;
    cluster.shard(2).epoch = 2n;
    const routesBefore = cluster.routesCalls;
    const result = await client.add(key, 3n);
    expect(result.value).toBe(3n);
    const attempts = cluster.mutationsFor(key);
    expect(attempts.map((attempt) => [attempt.header?.shardId, attempt.header?.epoch])).toEqual([
      [1, "1"],
      [2, "2"],
    ]);
    expect(cluster.routesCalls).toBeGreaterThan(routesBefore);
  });

  it("WRONG_SHARD for a stale epoch of the same shard: same (clientId, seq) under the new epoch", async () => {
    const { cluster, client } = await setup();
    const key = keyInShard(cluster.shard(1), "epoch");
    await client.add(key, 1n);
    cluster.shard(1).epoch = 2n; // e.g. a replica was replaced
    expect((await client.add(key, 1n)).value).toBe(2n);
    const attempts = cluster.mutationsFor(key).slice(1);
    expect(attempts.map((attempt) => attempt.header?.epoch)).toEqual(["1", "2"]);
    expect(new Set(sessionIds(attempts)).size).toBe(1);
  });

  it("OVERLOADED is retried with the same seq after retry_after_ms", async () => {
    const { cluster, client } = await setup();
    const key = keyInShard(cluster.shard(2), "busy");
    await client.add(key, 1n);
    let shed = false;
    cluster.pipelineHook = () => {
      if (shed) return undefined;
      shed = true;
      return { kind: "error", info: { code: "OVERLOADED", message: "queue full", retryAfterMs: 120 } };
    };
    const started = Date.now();
    expect((await client.add(key, 1n)).value).toBe(2n);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    const attempts = cluster.mutationsFor(key).slice(1);
    expect(attempts).toHaveLength(2);
    expect(new Set(sessionIds(attempts)).size).toBe(1);
  });

  it("an INTERNAL error on a mutation is not retried and not reported as failed", async () => {
    const { cluster, client } = await setup();
    const key = keyInShard(cluster.shard(1), "internal");
    await client.add(key, 1n);
    cluster.pipelineHook = () => ({ kind: "error", info: { code: "INTERNAL", message: "disk on fire" } });
    const error = await client.add(key, 1n).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AmbiguousOperationError);
    expect((error as Error).message).toContain("disk on fire");
    expect(cluster.mutationsFor(key)).toHaveLength(2);
  });

  it("a caller that leaves while its add waits in the batch window is not sent", async () => {
    const { cluster, client } = await setup({ batchWindowMs: 50 });
    const stay = keyInShard(cluster.shard(1), "stay");
    const leave = keyInShard(cluster.shard(1), "leave");
    await client.connect();
    const controller = new AbortController();
    const staying = client.add(stay, 1n);
    const leaving = client.add(leave, 1n, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort(new Error("bye"));
    await expect(leaving).rejects.toThrow("bye");
    expect((await staying).value).toBe(1n);
    expect(cluster.mutationsFor(leave)).toEqual([]);
    expect(cluster.mutationsFor(stay).map((attempt) => attempt.op)).toEqual(["add"]);
  });

  it("a stream that dies mid-flight: every in-flight op is resent with its own seq, none twice", async () => {
    const { cluster, client } = await setup({ autoBatch: false, attemptTimeoutMs: 5_000 });
    const key = keyInShard(cluster.shard(1), "stream");
    await client.add(key, 0n); // session registered, stream open
    let seen = 0;
    cluster.pipelineHook = (node, request) => {
      if (node.id !== "1" || request.op !== "add") return undefined;
      seen++;
      if (seen < 50) return seen % 2 === 1 ? { kind: "apply-no-reply" } : { kind: "no-reply" };
      if (seen === 50) return { kind: "apply-kill-stream" };
      return undefined;
    };
    const results = await Promise.all(Array.from({ length: 50 }, () => client!.add(key, 1n)));
    expect(results.map((result) => result.value).sort((a, b) => Number(a - b))).toEqual(
      Array.from({ length: 50 }, (_, i) => BigInt(i + 1)),
    );
    expect(cluster.counter(key)?.value).toBe(50n);
    // 25 held-and-applied + the one applied before the kill were answered from saved results.
    expect(cluster.duplicates).toBe(26);
    // Each op reached the leader exactly twice (before and after the stream died) with one seq.
    const atLeader = cluster
      .mutationsFor(key)
      .slice(1)
      .filter((attempt) => attempt.nodeId === "1");
    const perSeq = new Map<string, number>();
    for (const id of sessionIds(atLeader)) perSeq.set(id, (perSeq.get(id) ?? 0) + 1);
    expect(perSeq.size).toBe(50);
    expect([...perSeq.values()].every((count) => count === 2)).toBe(true);
  });

  it("overflow in an auto-batch fails only its caller; the rest go again under a new seq", async () => {
    const { cluster, client } = await setup({ batchWindowMs: 20 });
    const full = keyInShard(cluster.shard(2), "full");
    const a = keyInShard(cluster.shard(2), "ok-a");
    const b = keyInShard(cluster.shard(2), "ok-b");
    await client.set(full, INT64_MAX - 1n);
    const [ra, rfull, rb] = await Promise.allSettled([client.add(a, 1n), client.add(full, 5n), client.add(b, 2n)]);
    expect(ra).toMatchObject({ status: "fulfilled", value: { value: 1n } });
    expect(rb).toMatchObject({ status: "fulfilled", value: { value: 2n } });
    expect(rfull.status).toBe("rejected");
    expect((rfull as PromiseRejectedResult).reason).toBeInstanceOf(OutOfRangeError);
    const batches = cluster.received.filter((received) => received.op === "batch");
    // Plain adds travel packed (BatchRequest.packed_adds).
    expect(batches.map((batch) => batch.request.batch?.ops.length)).toEqual([0, 0]);
    expect(batches.map((batch) => batchOpsOf(batch.request.batch!).length)).toEqual([3, 2]);
    const [first, second] = batches;
    expect(second!.header?.clientId).toBe(first!.header?.clientId);
    expect(BigInt(second!.header!.seq)).toBeGreaterThan(BigInt(first!.header!.seq));
    expect(cluster.counter(full)?.value).toBe(INT64_MAX - 1n);
  });

  it("a fresh op re-registers after SESSION_EXPIRED", async () => {
    const { cluster, client } = await setup();
    const key = keyInShard(cluster.shard(1), "expire");
    await client.add(key, 1n);
    for (const session of cluster.sessions.values()) session.expired = true;
    expect((await client.add(key, 1n)).value).toBe(2n);
    expect(cluster.registrations.filter((registration) => registration.shardId === 1)).toHaveLength(2);
  });

  it("SESSION_EXPIRED for a seq whose outcome is unknown is ambiguous, never resent under a new session", async () => {
    const { cluster, client } = await setup({ attemptTimeoutMs: 100 });
    const key = keyInShard(cluster.shard(1), "unknown");
    await client.add(keyInShard(cluster.shard(1), "other"), 1n);
    cluster.pipelineHook = (_node, request) => {
      if (request.op === "add" && request.add?.key.toString() === key) {
        cluster!.pipelineHook = undefined;
        return { kind: "apply-no-reply" };
      }
      return undefined;
    };
    const pending = client.add(key, 4n).catch((error: unknown) => error);
    await waitFor(() => cluster!.pipelineHook === undefined);
    for (const session of cluster.sessions.values()) session.expired = true;
    const error = await pending;
    expect(error).toBeInstanceOf(AmbiguousOperationError);
    expect(error).toBeInstanceOf(AmbiguousError);
    expect((error as AmbiguousOperationError).key).toBe(key);
    expect((error as AmbiguousOperationError).delta).toBe(4n);
    expect(cluster.counter(key)?.value).toBe(4n);
    // Never sent under another session.
    expect(new Set(cluster.mutationsFor(key).map((attempt) => attempt.header?.clientId)).size).toBe(1);
  });

  it("no answer before the deadline: AmbiguousError with the key and delta, same seq throughout", async () => {
    const { cluster, client } = await setup({ attemptTimeoutMs: 60 });
    const key = keyInShard(cluster.shard(2), "silent");
    cluster.pipelineHook = (_node, request) => (request.op === "add" ? { kind: "no-reply" } : undefined);
    const error = await client.add(key, 9n, { deadlineMs: 400 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AmbiguousOperationError);
    expect((error as AmbiguousOperationError).operation).toMatchObject({ kind: "add", key, delta: 9n, shardId: 2 });
    const attempts = cluster.mutationsFor(key);
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(new Set(sessionIds(attempts)).size).toBe(1);
  });

  it("reads retry NOT_LEADER and time out as TIMEOUT (never ambiguous)", async () => {
    // A generous attempt timeout: on a loaded machine 60 ms made the first attempt time out and repeat.
    const { cluster, client } = await setup({ attemptTimeoutMs: 1000 });
    const key = keyInShard(cluster.shard(1), "read");
    await client.add(key, 2n);
    cluster.shard(1).leaderId = "3";
    expect((await client.get(key)).value).toBe(2n);
    expect(cluster.received.filter((r) => r.op === "get").map((r) => r.nodeId)).toEqual(["1", "3"]);
    cluster.pipelineHook = (_node, request) => (request.op === "get" ? { kind: "no-reply" } : undefined);
    const error = await client.get(key, { deadlineMs: 250 }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "TIMEOUT" });
  });

  it("a linearizable read whose leader stops answering asks another replica after one attempt timeout", async () => {
    // A paused or cut-off leader: before, every attempt went back to it (each with a longer
    // timeout) until the deadline, although another replica had taken over.
    const { cluster, client } = await setup({ attemptTimeoutMs: 200 });
    const key = keyInShard(cluster.shard(1), "frozen-leader");
    await client.add(key, 3n);
    freezeReadsAtNode1(cluster);
    expect((await client.get(key, { deadlineMs: 5_000 })).value).toBe(3n);
    expectOneGetAtNode1ThenNode2(cluster);
  });

  it("a read cut short by its own deadline at a frozen leader sends the next read to another replica", async () => {
    // The deadline ends the read before its attempt timeout can: the node is avoided all the same.
    const { cluster, client } = await setup({ attemptTimeoutMs: 2_000 });
    const key = keyInShard(cluster.shard(1), "frozen-leader-deadline");
    await client.add(key, 4n);
    freezeReadsAtNode1(cluster);
    await expect(client.get(key, { deadlineMs: 300 })).rejects.toMatchObject({ code: "TIMEOUT" });
    expect((await client.get(key, { deadlineMs: 300 })).value).toBe(4n);
    expectOneGetAtNode1ThenNode2(cluster);
  });

  it("a write whose leader stops answering goes, same seq, to another replica after one attempt timeout", async () => {
    const { cluster, client } = await setup({ attemptTimeoutMs: 200 });
    const key = keyInShard(cluster.shard(1), "frozen-leader-write");
    await client.add(key, 1n);
    // Node 1 applies the add but never answers (it froze), and then the shard moves to node 2.
    cluster.pipelineHook = (node, request) => {
      if (node.id !== "1" || request.op !== "add") return undefined;
      setImmediate(() => (cluster.shard(1).leaderId = "2"));
      return { kind: "apply-no-reply" };
    };
    expect((await client.add(key, 1n, { deadlineMs: 5_000 })).value).toBe(2n);
    const attempts = cluster.mutationsFor(key).slice(1);
    expect(attempts.filter((attempt) => attempt.nodeId === "1")).toHaveLength(1);
    expect(attempts.at(-1)?.nodeId).toBe("2");
    expect(new Set(sessionIds(attempts)).size).toBe(1);
    expect(cluster.duplicates).toBe(1);
    expect(cluster.counter(key)?.value).toBe(2n);
  });

  it("an abort before sending rejects with the signal's reason; after sending it is ambiguous", async () => {
    const { cluster, client } = await setup({ autoBatch: false });
    const key = keyInShard(cluster.shard(1), "abort");
    await client.add(key, 1n);
    const before = new AbortController();
    before.abort(new Error("changed my mind"));
    await expect(client.add(key, 1n, { signal: before.signal })).rejects.toThrow("changed my mind");
    cluster.pipelineHook = () => ({ kind: "no-reply" });
    const after = new AbortController();
    const pending = client.add(key, 1n, { signal: after.signal }).catch((error: unknown) => error);
    await waitFor(() => cluster!.mutationsFor(key).length === 2);
    after.abort();
    expect(await pending).toBeInstanceOf(AmbiguousOperationError);
    expect(cluster.mutationsFor(key)).toHaveLength(2);
  });

  it("fails over when the leader's node goes away", async () => {
    const { cluster, client } = await setup({ attemptTimeoutMs: 500 });
    const key = keyInShard(cluster.shard(1), "failover");
    await client.add(key, 1n);
    cluster.node("1").server.forceShutdown();
    cluster.shard(1).leaderId = "2";
    expect((await client.add(key, 1n, { deadlineMs: 5_000 })).value).toBe(2n);
    expect(cluster.counter(key)?.value).toBe(2n);
  });

  it("keeps idle sessions alive with KeepAlive", async () => {
    const { cluster, client } = await setup({ keepAliveIntervalMs: 40 });
    const key = keyInShard(cluster.shard(2), "idle");
    await client.add(key, 1n);
    await waitFor(() => cluster!.keepAlives.length >= 2, 3_000);
    const header = cluster.keepAlives[0]!.header;
    expect(header?.shardId).toBe(2);
    expect(header?.firstUnackedSeq).toBe("2"); // seq 1 completed
    expect(cluster.keepAlives[0]!.nodeId).toBe("2");
  });

  it("thousands in flight, batched and not, count exactly", async () => {
    // Generous attempt timeout: this box is shared, and the fake server runs in this process.
    const { cluster, client } = await setup({ attemptTimeoutMs: 10_000, deadlineMs: 30_000 });
    const keys = Array.from({ length: 20 }, (_, i) => `many-${i}`);
    await Promise.all(Array.from({ length: 3_000 }, (_, i) => client!.add(keys[i % keys.length]!, 1n)));
    for (const key of keys) expect(cluster.counter(key)?.value).toBe(150n);
    const unbatched = new TallyClient({ endpoints: cluster.addresses, autoBatch: false, attemptTimeoutMs: 10_000, deadlineMs: 30_000 });
    try {
      await Promise.all(Array.from({ length: 1_000 }, (_, i) => unbatched.add(keys[i % keys.length]!, 1n)));
    } finally {
      await unbatched.close();
    }
    for (const key of keys) expect(cluster.counter(key)?.value).toBe(200n);
    // 3,000 auto-batched adds took a handful of requests (maxBatchOps 1,000 per request).
    expect(cluster.received.filter((received) => received.op === "batch").length).toBeLessThanOrEqual(30);
  });

  it("by default, adds made in one event-loop turn go as one request, with no timer window", async () => {
    const { cluster, client } = await setup();
    const keys = Array.from({ length: 5 }, (_, i) => keyInShard(cluster.shard(1), `turn-${i}`));
    await client.add(keys[0]!, 1n); // routes and the session are known from here on
    const before = cluster.received.length;
    const results = await Promise.all(keys.map((key, i) => client!.add(key, BigInt(i + 1))));
    expect(results.map((result) => result.value)).toEqual([2n, 2n, 3n, 4n, 5n]);
    const sent = cluster.received.slice(before);
    expect(sent.map((received) => received.op)).toEqual(["batch"]);
    // A later turn is a new request.
    await client.add(keys[1]!, 1n);
    expect(cluster.received.length).toBe(before + 2);
    expect(() => new TallyClient({ endpoints: cluster.addresses, autoBatch: "yes" as unknown as boolean })).toThrow(
      /autoBatch must be a boolean/,
    );
  });

  it("gets of one turn to one shard go as one GetMany, each caller getting its own key's result", async () => {
    const { cluster, client } = await setup();
    const keys = Array.from({ length: 4 }, (_, i) => keyInShard(cluster.shard(1), `read-${i}`));
    for (const [i, key] of keys.entries()) await client.add(key, BigInt(i + 10));
    const before = cluster.received.length;
    const missing = keyInShard(cluster.shard(1), "never-written");
    const results = await Promise.all([...keys, missing].map((key) => client!.get(key)));
    expect(results.map((result) => result.exists)).toEqual([true, true, true, true, false]);
    expect(results.slice(0, 4).map((result) => result.value)).toEqual([10n, 11n, 12n, 13n]);
    expect(cluster.received.slice(before).map((received) => received.op)).toEqual(["getMany"]);
    // A get with options of its own is sent alone; a bad key fails only its caller.
    const after = cluster.received.length;
    const [own, bad, plain] = await Promise.allSettled([client.get(keys[0]!, { deadlineMs: 5_000 }), client.get(""), client.get(keys[1]!)]);
    expect(own).toMatchObject({ status: "fulfilled", value: { value: 10n } });
    expect(bad).toMatchObject({ status: "rejected" });
    expect(plain).toMatchObject({ status: "fulfilled", value: { value: 11n } });
    expect(
      cluster.received
        .slice(after)
        .map((received) => received.op)
        .sort(),
    ).toEqual(["get", "get"]);
  });

  it("a turn's gets to one shard are cut into GetManys of at most maxBatchOps keys", async () => {
    const { cluster, client } = await setup({ maxBatchOps: 2 });
    const keys = Array.from({ length: 5 }, (_, i) => keyInShard(cluster.shard(1), `cut-${i}`));
    for (const [i, key] of keys.entries()) await client.add(key, BigInt(i + 1));
    const before = cluster.received.length;
    const results = await Promise.all(keys.map((key) => client!.get(key)));
    expect(results.map((result) => result.value)).toEqual([1n, 2n, 3n, 4n, 5n]);
    expect(
      cluster.received
        .slice(before)
        .map((received) => received.op)
        .sort(),
    ).toEqual(["get", "getMany", "getMany"]);
  });

  it("rejects beyond maxInflightOps with OverloadedError", async () => {
    const { cluster, client } = await setup({ maxInflightOps: 10, autoBatch: false });
    await client.connect();
    cluster.pipelineHook = () => ({ kind: "no-reply" });
    const held = Array.from({ length: 10 }, () => client!.add("held", 1n, { deadlineMs: 300 }).catch(() => undefined));
    await expect(client.add("one-more", 1n)).rejects.toMatchObject({ code: "OVERLOADED" });
    await Promise.all(held);
  });

  it("close() rejects what is in flight (sent: ambiguous) and later calls", async () => {
    const { cluster, client } = await setup();
    const key = keyInShard(cluster.shard(1), "closing");
    await client.add(key, 1n);
    cluster.pipelineHook = () => ({ kind: "no-reply" });
    const pending = client.add(key, 1n).catch((error: unknown) => error);
    await waitFor(() => cluster!.mutationsFor(key).length === 2);
    await client.close();
    expect(await pending).toBeInstanceOf(AmbiguousOperationError);
    await expect(client.add(key, 1n)).rejects.toMatchObject({ name: "ClientClosedError" });
  });
});
