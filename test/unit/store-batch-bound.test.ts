import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { STORE_BATCH_OPS_MAX } from "../../src/server/node.js";
import { COUNTERS_MAX } from "../../src/shard/counter-table.js";
import { DEFAULT_BATCH_OPS_MAX, NodeStore, StoreBatch } from "../../src/storage/node-store.js";

// Found by `npx tsx bench/scale.ts --counters 10000000`: a node installing a snapshot of a shard of
// 1.25 M counters stopped itself with "StoreBatch exceeds 1048576 operations", because the install
// writes the shard's whole state in one batch and the node used the store's default bound.
describe("store batch bound", () => {
  it("a node's store takes a whole shard's state in one batch, beyond the store's default bound", async () => {
    expect(STORE_BATCH_OPS_MAX).toBeGreaterThanOrEqual(2 * COUNTERS_MAX);
    const counters = DEFAULT_BATCH_OPS_MAX + 20_000;
    const key = (i: number) => new TextEncoder().encode(`user:${String(i).padStart(10, "0")}:likes`);
    const record = new Uint8Array(16);

    // The store's default refuses it, loudly: the node must open its store with its own bound.
    const bounded = new StoreBatch(undefined, DEFAULT_BATCH_OPS_MAX);
    expect(() => {
      for (let i = 0; i < counters; i++) bounded.putCounter(3, key(i), record);
    }).toThrow(/StoreBatch exceeds 1048576 operations/);

    const dir = await mkdtemp(join(tmpdir(), "tally-store-bound-"));
    const store = await NodeStore.open(dir, { batchOpsMax: STORE_BATCH_OPS_MAX });
    try {
      const batch = store.batch();
      batch.clearShardState(3);
      for (let i = 0; i < counters; i++) batch.putCounter(3, key(i), record);
      batch.setApplied(3, 42, 0);
      await store.write(batch, { sync: true });
      let scanned = 0;
      for await (const part of store.scanCounterBatches(3)) scanned += part.length;
      expect(scanned).toBe(counters);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
