/**
 * Packed adds applied straight from their bytes (mutation.ts mutatePacked, packed-ops.ts) against
 * the same adds applied as op objects (mutate): seeded random batches over a small key pool, with
 * duplicates in a batch, creations, deletions by reset between batches, values near the int64
 * edges (OUT_OF_RANGE rolls a batch back) and a small maxCounters (OVERLOADED). Both paths must
 * leave the same table, the same change log and the same outcome, byte for byte once encoded; the
 * request digest and validation of the bytes must equal those of the decoded ops.
 */
import { describe, expect, it } from "vitest";
import { validateCommand, type CounterOp } from "../../src/shard/commands.js";
import type { KeyChange } from "../../src/shard/change-log.js";
import { Mutation } from "../../src/shard/mutation.js";
import { packedRequestDigest, requestDigest } from "../../src/shard/request-digest.js";
import { encodeOutcome, type MutateOutcome } from "../../src/shard/sessions.js";
import { ShardState } from "../../src/shard/shard-state.js";
import { InvalidArgumentError } from "../../src/util/errors.js";
import { INT64_MAX, INT64_MIN } from "../../src/util/int64.js";
import { decodePackedAdds, encodePackedAdds } from "../../src/util/packed-adds.js";
import { createPrng, type Prng } from "../../src/util/prng.js";
import { defaultOptions } from "./shard-harness.js";

const SEEDS = 60;
const BATCHES = 40;
const DELTAS = [
  0n,
  1n,
  -1n,
  7n,
  1024n,
  -1025n,
  1n << 40n,
  -(1n << 40n),
  INT64_MAX,
  INT64_MIN,
  INT64_MAX - 3n,
  2n ** 31n,
  -(2n ** 31n) - 1n,
];
const text = new TextEncoder();

function randomAdds(prng: Prng, keys: number): Array<{ key: Uint8Array; delta: bigint }> {
  const count = 1 + prng.nextInt(prng.chance(0.3) ? 300 : 12);
  const edges = prng.chance(0.4) ? 0.05 : 0; // deltas at the int64 edges in some batches only, so large batches also apply
  return Array.from({ length: count }, () => ({
    key: text.encode(`k${prng.nextInt(keys)}${"x".repeat(prng.nextInt(3) * 20)}`),
    delta: prng.chance(edges) ? DELTAS[prng.nextInt(DELTAS.length)]! : BigInt(prng.nextInt(2001) - 1000),
  }));
}

function tableOf(state: ShardState): string[] {
  const table = state.counters;
  return Array.from(
    table.sortedSlots(),
    (slot) => `${new TextDecoder().decode(table.keyBytes(slot))}=${table.value(slot)}@${table.version(slot)}`,
  );
}

function changesOf(state: ShardState): string {
  const changes: KeyChange[] = state.changeLog.since(0, () => true, 1_000_000) ?? [];
  return changes.map((c) => `${c.index} ${new TextDecoder().decode(c.key)} ${c.value} ${c.version} ${c.kind}`).join("\n");
}

/** A comparable text of an outcome (deep equality of thousands of results is slow in expect). */
function plain(outcome: MutateOutcome): string {
  const shown = outcome.ok ? { ok: true, results: outcome.results, duplicate: outcome.duplicate } : outcome;
  return JSON.stringify(shown, (_, value: unknown) => (typeof value === "bigint" ? `${value}n` : value));
}

describe("packed adds applied from their bytes", () => {
  it("leave the same state, changes and outcome as the same adds applied as objects", () => {
    let failures = 0;
    let successes = 0;
    let bigSuccesses = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const prng = createPrng(seed);
      const maxCounters = prng.chance(0.3) ? 1 + prng.nextInt(12) : 1_000_000;
      const keys = 4 + prng.nextInt(40);
      const fromBytes = new ShardState({ ...defaultOptions, maxCounters });
      const fromObjects = new ShardState({ ...defaultOptions, maxCounters });
      const packedMutation = new Mutation(fromBytes);
      const objectMutation = new Mutation(fromObjects);
      for (let batch = 1; batch <= BATCHES; batch++) {
        const index = batch * 10;
        const bytes = encodePackedAdds(randomAdds(prng, keys));
        const ops: CounterOp[] = decodePackedAdds(bytes, { maxOps: 10_000, maxKeyBytes: 256 });
        const packed = packedMutation.mutatePacked(bytes, index);
        const objects = objectMutation.mutate(ops, index);
        expect(plain(packed), `seed ${seed} batch ${batch}`).toBe(plain(objects));
        expect(Buffer.from(encodeOutcome(packed)).equals(encodeOutcome(objects)), `seed ${seed} batch ${batch}`).toBe(true);
        if (!packed.ok) failures++;
        else if (packed.results.length < 16) successes++;
        else bigSuccesses++; // the path that warms the table
        if (prng.chance(0.2)) {
          // A reset between batches: a deletion, and a key to create again.
          const reset: CounterOp[] = [{ kind: "reset", key: text.encode(`k${prng.nextInt(keys)}`) }];
          expect(new Mutation(fromBytes).mutate(reset, index + 1)).toEqual(new Mutation(fromObjects).mutate(reset, index + 1));
        }
      }
      expect(tableOf(fromBytes), `seed ${seed}`).toEqual(tableOf(fromObjects));
      expect(fromBytes.counters.size).toBe(fromObjects.counters.size);
      expect(changesOf(fromBytes), `seed ${seed}`).toBe(changesOf(fromObjects));
    }
    // The seeds reach both outcomes (a test that never fails a batch proves nothing of rollback).
    expect(failures).toBeGreaterThan(400);
    expect(successes).toBeGreaterThan(600);
    expect(bigSuccesses).toBeGreaterThan(150);
  });

  it("have the digest and the validation verdict of their decoding", () => {
    const prng = createPrng(99);
    for (let round = 0; round < 500; round++) {
      const bytes = encodePackedAdds(randomAdds(prng, 50));
      const ops = decodePackedAdds(bytes, { maxOps: 10_000, maxKeyBytes: 256 });
      expect(packedRequestDigest(bytes)).toBe(requestDigest(ops));
    }
    const verdict = (command: Parameters<typeof validateCommand>[0]): string => {
      try {
        validateCommand(command, { maxOps: 3, maxKeyBytes: 8 });
        return "valid";
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidArgumentError);
        return (error as Error).message;
      }
    };
    const cases = [
      [{ key: text.encode("a"), delta: 1n }],
      [
        { key: text.encode("a"), delta: 1n },
        { key: text.encode("a-long-key"), delta: 2n },
      ],
      Array.from({ length: 4 }, (_, i) => ({ key: text.encode(`k${i}`), delta: 1n })),
      Array.from({ length: 4 }, (_, i) => ({ key: text.encode(`key-${i}-too-long`), delta: 1n })),
    ];
    const verdicts = cases.map((adds) => {
      const packedAdds = encodePackedAdds(adds);
      const ops: CounterOp[] = decodePackedAdds(packedAdds, { maxOps: 10_000, maxKeyBytes: 256 });
      const objects = verdict({ type: "mutate", clientId: 1, seq: 1, firstUnackedSeq: 0, ops });
      // A decoded entry's command: the bytes, and ops that must not be what is checked.
      const fromBytes = verdict({ type: "write", requestId: "r", ops: [], packedAdds });
      expect(fromBytes).toBe(objects === "valid" ? "valid" : objects.replace(/^mutate/, "write"));
      return objects;
    });
    expect(verdicts).toEqual(["valid", "ops[1] (add) key is 10 bytes; max 8", "mutate has 4 ops; max 3", "mutate has 4 ops; max 3"]);
  });
});
