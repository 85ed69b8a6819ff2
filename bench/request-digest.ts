/**
 * CPU of the request digest every mutate computes at apply, on every replica (src/shard/commands.ts
 * requestDigest; ADR 0001): per op of a 10,000-op add batch with 21-byte keys, and for a one-op
 * mutate. `npx tsx bench/request-digest.ts`. Never asserts.
 */
import { requestDigest, type CounterOp } from "../src/shard/commands.js";

const encoder = new TextEncoder();
const batch: CounterOp[] = Array.from({ length: 10_000 }, (_, i) => ({
  kind: "add",
  key: encoder.encode(`page:views:${String(i).padStart(10, "0")}`),
  delta: 1n,
}));
const single: CounterOp[] = [batch[0]!];

function nsPerCall(ops: CounterOp[], calls: number): number {
  for (let i = 0; i < Math.min(calls, 50); i++) requestDigest(ops); // warm-up
  const start = process.hrtime.bigint();
  let sink = 0;
  for (let i = 0; i < calls; i++) sink ^= requestDigest(ops);
  const ns = Number(process.hrtime.bigint() - start) / calls;
  if (sink === 0.5) console.log(sink); // keeps the loop from being optimized away
  return ns;
}

const batchNs = nsPerCall(batch, 200);
const singleNs = nsPerCall(single, 1_000_000);
console.log(
  `requestDigest: ${(batchNs / 1e6).toFixed(3)} ms per 10,000-op batch (${(batchNs / batch.length).toFixed(0)} ns per op); one-op mutate ${singleNs.toFixed(0)} ns`,
);
