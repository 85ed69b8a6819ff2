import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type Entry, EntryType } from "../../src/raft/types.js";
import { STORE_BATCH_OPS_MAX } from "../../src/server/node.js";
import { DEFAULT_BATCH_OPS_MAX, NodeStore, StoreBatch } from "../../src/storage/node-store.js";

// Found by `npx tsx bench/scale.ts --counters 10000000` in format 1: a node installing a snapshot of
// a shard of 1.25 M counters stopped itself with "StoreBatch exceeds 1048576 operations", because
// the install wrote a record per counter in one batch and the node used the store's default bound.
// Format 2 keeps a shard's state in checkpoint files, but the node still opens its store with its
// own, larger bound: a batch beyond the store's default must be refused by the default and written
// whole under the node's bound.
describe("store batch bound", () => {
  it("a node's store takes a batch beyond the store's default bound, in one write", async () => {
    expect(STORE_BATCH_OPS_MAX).toBeGreaterThan(DEFAULT_BATCH_OPS_MAX);
    const count = DEFAULT_BATCH_OPS_MAX + 20_000;
    const data = new Uint8Array(0);
    const entries: Entry[] = Array.from({ length: count }, (_, i) => ({ index: i + 1, term: 1, type: EntryType.Normal, data }));

    // The store's default refuses it, loudly: the node must open its store with its own bound.
    const bounded = new StoreBatch(undefined, DEFAULT_BATCH_OPS_MAX);
    expect(() => bounded.appendEntries(3, entries)).toThrow(/StoreBatch exceeds 1048576 operations/);

    const dir = await mkdtemp(join(tmpdir(), "tally-store-bound-"));
    const store = await NodeStore.open(dir, { batchOpsMax: STORE_BATCH_OPS_MAX });
    try {
      const batch = store.batch();
      batch.appendEntries(3, entries);
      batch.setHardState(3, { term: 1, vote: 1, commit: count });
      expect(batch.size).toBe(count + 1);
      await store.write(batch, { sync: true });
      const loaded = await store.loadGroup(3);
      expect(loaded.entries.length).toBe(count);
      expect(loaded.entries.at(-1)?.index).toBe(count);
      expect(loaded.hardState.commit).toBe(count);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
