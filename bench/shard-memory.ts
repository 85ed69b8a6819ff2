/**
 * Memory per counter of the shard state machine at 1,000,000 counters (keys like
 * "user:0000123456:likes", 21 bytes), counted as V8 heap plus ArrayBuffer memory after a full GC,
 * so the typed-array columns and key arena are included. Also times snapshot and restore (shard
 * images, the checkpoint format, are timed by bench/shard-image.ts).
 *
 *   npx tsx bench/shard-memory.ts           (COUNTERS=n to change the count)
 */
import { performance } from "node:perf_hooks";
import { memoryUsage } from "node:process";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { encodeEntry, type CounterOp } from "../src/shard/commands.js";
import { CounterStateMachine, type ShardOptions } from "../src/shard/state-machine.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const COUNTERS = Number(process.env.COUNTERS ?? 1_000_000);
const OPS_PER_ENTRY = 10_000;
const options: ShardOptions = { sessionTimeoutMs: 60_000, maxSessions: 16, maxRetainedResultsPerSession: 4 };
const encoder = new TextEncoder();

function usedBytes(): number {
  gc();
  gc();
  const usage = memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

function fill(machine: CounterStateMachine): void {
  let index = 0;
  const registered = machine.applyEntry(++index, encodeEntry({ timestampMs: 1, commands: [{ type: "register" }] }));
  const first = registered[0]!;
  if (!(first.ok && first.type === "register")) throw new Error("register failed");
  let seq = 0;
  for (let start = 0; start < COUNTERS; start += OPS_PER_ENTRY) {
    const ops: CounterOp[] = [];
    for (let i = start; i < Math.min(COUNTERS, start + OPS_PER_ENTRY); i++) {
      ops.push({ kind: "add", key: encoder.encode(`user:${String(i).padStart(10, "0")}:likes`), delta: BigInt(i) });
    }
    seq++;
    const data = encodeEntry({ timestampMs: 2, commands: [{ type: "mutate", clientId: first.clientId, seq, firstUnackedSeq: seq, ops }] });
    const [result] = machine.applyEntry(++index, data);
    if (!result?.ok) throw new Error(`fill failed: ${JSON.stringify(result)}`);
  }
}

const before = usedBytes();
const machine = new CounterStateMachine(options);
fill(machine);
const after = usedBytes();
const perCounter = (after - before) / machine.counterCount();
console.log(
  `${machine.counterCount()} counters: ${((after - before) / 1e6).toFixed(1)} MB, ${perCounter.toFixed(1)} bytes/counter (21-byte keys)`,
);

let start = performance.now();
const snapshot = machine.snapshot();
console.log(`snapshot: ${(snapshot.length / 1e6).toFixed(1)} MB in ${(performance.now() - start).toFixed(0)} ms`);
start = performance.now();
const restored = CounterStateMachine.restore(snapshot, options);
console.log(`restore: ${(performance.now() - start).toFixed(0)} ms, ${restored.counterCount()} counters`);
