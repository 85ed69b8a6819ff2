/**
 * The client's op stream (src/client/node-connection.ts, message-packer.ts): the ops of one
 * event-loop turn to a node leave in one PipelineBatch message within the packer's bounds, and
 * against a node without PipelineBatch (an older version) the client falls back to Pipeline with
 * every op counted once.
 */
import { describe, expect, it } from "vitest";
import type { PipelineRequestInput } from "../../src/api/proto.js";
import { MessagePacker, PACKED_BYTES_MAX, PACKED_ENTRIES_MAX, PACKED_REQUESTS_MAX, sizeOf } from "../../src/client/message-packer.js";
import { fakeClusterPerTest, keyInShard } from "./client-fake-cluster.js";

// autoBatch off: each add is its own Pipeline request, so the packing is what is measured.
const options = { autoBatch: false };
const startBatching = fakeClusterPerTest(undefined, { batch: true });
const startOld = fakeClusterPerTest(undefined, { batch: false });
const start = (batch: boolean) => (batch ? startBatching(options) : startOld(options));

const add = (key: string): PipelineRequestInput => ({ id: 1, add: { key: Buffer.from(key), delta: 1 } });

describe("PipelineBatch from the client", () => {
  it("sends the adds of one turn to a leader in one message, each counted once", async () => {
    const { cluster, client } = await start(true);
    const shard = cluster.shards[0]!;
    const keys = Array.from({ length: 60 }, (_, i) => keyInShard(shard, "packed", i));
    await client.add(keys[0]!, 1n); // routes and the stream are up
    const leader = cluster.nodes.find((node) => node.id === shard.leaderId)!;
    const before = leader.batchMessages.length;
    await Promise.all(keys.map((key) => client.add(key, 1n)));
    const messages = leader.batchMessages.slice(before);
    // The 60 adds of one turn: one message (the packer closes one at PACKED_REQUESTS_MAX).
    expect(messages).toEqual([60]);
    for (const key of keys) expect(cluster.counter(key)?.value).toBe(key === keys[0] ? 2n : 1n);
    expect(cluster.duplicates).toBe(0);
  });

  it("falls back to Pipeline on a node without PipelineBatch, losing and doubling nothing", async () => {
    const { cluster, client } = await start(false);
    const keys = Array.from({ length: 40 }, (_, i) => `old-node-${i}`);
    await Promise.all(keys.map((key) => client.add(key, 1n)));
    for (const key of keys) {
      expect(cluster.counter(key)?.value).toBe(1n);
      // UNIMPLEMENTED: the batch stream ran nothing, so each add reached a node exactly once.
      expect(cluster.mutationsFor(key)).toHaveLength(1);
    }
    for (const node of cluster.nodes) expect(node.batchMessages).toEqual([]);
    expect(cluster.duplicates).toBe(0);
  });
});

describe("MessagePacker", () => {
  it("closes a message at PACKED_REQUESTS_MAX requests", () => {
    const packer = new MessagePacker();
    for (let i = 0; i < 300; i++) packer.add(add(`k${i}`));
    expect(packer.messages().map((message) => message.length)).toEqual([
      PACKED_REQUESTS_MAX,
      PACKED_REQUESTS_MAX,
      300 - 2 * PACKED_REQUESTS_MAX,
    ]);
  });

  it("keeps each message's entries and bytes within bounds, and sends a large request alone", () => {
    const packer = new MessagePacker();
    const getMany = (count: number, keyBytes: number): PipelineRequestInput => ({
      id: 2,
      getMany: { keys: Array.from({ length: count }, () => Buffer.alloc(keyBytes)) },
    });
    const added = [
      add("a"),
      getMany(2_000, 1), // over 1,000 entries: alone
      getMany(10, 2_000), // ~20 KiB: alone
      ...Array.from({ length: 20 }, () => getMany(500, 1)), // 500 entries, ~12.5 KiB each
      add("b"),
    ];
    for (const request of added) packer.add(request);
    const messages = packer.messages();
    // In order: "a" closed by the first large one, each large one alone, then at most 5 of the
    // 12.5 KiB reads per message (PACKED_BYTES_MAX binds first), "b" with the last 5.
    expect(messages.map((message) => message.length)).toEqual([1, 1, 1, 5, 5, 5, 6]);
    // The same request objects, in the order added.
    expect(messages.flat().every((request, i) => request === added[i])).toBe(true);
    expect(messages.flat()).toHaveLength(added.length);
    for (const message of messages) {
      const sizes = message.map(sizeOf);
      if (message.length > 1) {
        expect(sizes.reduce((sum, size) => sum + size.entries, 0)).toBeLessThanOrEqual(PACKED_ENTRIES_MAX);
        expect(sizes.reduce((sum, size) => sum + size.bytes, 0)).toBeLessThanOrEqual(PACKED_BYTES_MAX);
      }
    }
  });
});
