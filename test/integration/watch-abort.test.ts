/**
 * A watch aborted while it is still starting must end (regression, found by the region chaos run:
 * `npm run chaos -- --workload regions`). Watcher.watch() subscribed to the caller's AbortSignal
 * only after its first await (the route lookup): an abort in between was never seen, so the watch
 * streamed on forever; RegionReplicator had the same gap twice (a stop() during its routes call,
 * or before a watch began). Its stop() -- which aborts its watches and waits for them -- then hung,
 * and with it a restart of the replicator and `tallyctl regions replicate` on SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegionReplicator, TallyClient } from "../../src/client/index.js";
import { TestCluster, withDeadline } from "../support/cluster.js";

describe("a watch aborted while starting", () => {
  let origin: TestCluster;
  let local: TestCluster;
  const clients: TallyClient[] = [];
  const client = (cluster: TestCluster): TallyClient => {
    const made = new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 5_000 });
    clients.push(made);
    return made;
  };

  beforeAll(async () => {
    origin = await TestCluster.start({ nodes: 1, shards: 2 });
    local = await TestCluster.start({ nodes: 1, shards: 2 });
  }, 90_000);

  afterAll(async () => {
    for (const made of clients) await withDeadline(made.close(), 10_000, "a client did not close").catch(() => undefined);
    await origin?.destroy();
    await local?.destroy();
  });

  it("ends at once when the signal aborts before its first batch", async () => {
    const watcher = client(origin);
    await watcher.add("abort:k", 1n);
    for (const options of [{}, { prefix: true, slot: 0 }]) {
      const controller = new AbortController();
      const batches = watcher.watch("prefix" in options ? "abort:" : "abort:k", {
        ...options,
        coalesceMs: 10,
        signal: controller.signal,
      });
      const first = batches.next();
      controller.abort();
      // Before the fix: the abort was missed and the first progress batch arrived (done: false).
      expect(await withDeadline(first, 5_000, "the aborted watch neither ended nor answered")).toEqual({ done: true, value: undefined });
    }
    // A signal aborted before the call: the watch does not start at all.
    const aborted = AbortSignal.abort();
    expect(await withDeadline(watcher.watch("abort:k", { signal: aborted }).next(), 5_000, "no end")).toEqual({
      done: true,
      value: undefined,
    });
  });

  it("a replicator stopped at any moment of its start stops", async () => {
    const from = client(origin);
    for (let i = 0; i < 40; i++) await from.add(`abort:${i}`, 1n);
    for (let attempt = 0; attempt < 12; attempt++) {
      const replicator = new RegionReplicator({ origin: "west", local: client(local), remote: client(origin), coalesceMs: 10 });
      replicator.start();
      await new Promise((resolve) => setTimeout(resolve, attempt * 7));
      await withDeadline(replicator.stop(), 10_000, `replicator.stop() hung (stopped ${attempt * 7} ms after its start)`);
    }
  }, 120_000);
});
