/**
 * Shard images (src/shard/shard-image.ts), the checkpoint format, at 1,250,000 counters (10 M
 * counters over 8 shards) with keys like "user:0000123456:likes": how long captureImage() holds
 * the event loop, the longest step of encodeShardImage() and of fromImageAsync() between two
 * pauses, their totals, the synchronous fromImage(), and the image's bytes per counter. The target
 * is no step above 5 ms, capture below 15 ms.
 *
 *   npx tsx bench/shard-image.ts            (COUNTERS=n, SESSIONS=n to change the state)
 *
 * captureImage() into fresh memory is mostly page faults of that memory (first touch), which vary
 * with the machine and with what the allocator has free; reusing the last image's memory() of the previous
 * image it copies into that image's memory instead. Both are run several times and printed.
 */
import { performance } from "node:perf_hooks";
import { cpuUsage } from "node:process";
import { encodeEntry, type CounterOp } from "../src/shard/commands.js";
import { CounterStateMachine, encodeShardImage, type ShardOptions } from "../src/shard/state-machine.js";

const COUNTERS = Number(process.env.COUNTERS ?? 1_250_000);
const SESSIONS = Number(process.env.SESSIONS ?? 1_000);
const OPS_PER_ENTRY = 10_000;
const options: ShardOptions = { sessionTimeoutMs: 3_600_000, maxSessions: Math.max(16, SESSIONS), maxRetainedResultsPerSession: 4 };
const encoder = new TextEncoder();

function fill(machine: CounterStateMachine): void {
  let index = 0;
  const timestampMs = 1_700_000_000_000;
  const clientIds: number[] = [];
  for (let registered = 0; registered < SESSIONS; registered += 1_000) {
    const commands = Array.from({ length: Math.min(1_000, SESSIONS - registered) }, () => ({ type: "register" as const }));
    for (const result of machine.applyEntry(++index, encodeEntry({ timestampMs, commands }))) {
      if (!(result.ok && result.type === "register")) throw new Error("register failed");
      clientIds.push(result.clientId);
    }
  }
  let seq = 0;
  for (let start = 0; start < COUNTERS; start += OPS_PER_ENTRY) {
    const ops: CounterOp[] = [];
    for (let i = start; i < Math.min(COUNTERS, start + OPS_PER_ENTRY); i++) {
      ops.push({ kind: "add", key: encoder.encode(`user:${String(i).padStart(10, "0")}:likes`), delta: BigInt(i) });
    }
    seq++;
    const clientId = clientIds[seq % clientIds.length]!;
    const data = encodeEntry({ timestampMs, commands: [{ type: "mutate", clientId, seq, firstUnackedSeq: seq, ops }] });
    const [result] = machine.applyEntry(++index, data);
    if (!result?.ok) throw new Error(`fill failed: ${JSON.stringify(result)}`);
  }
  // Every session retains one small result, as a live client's would.
  const commands = clientIds.map((clientId, i) => ({
    type: "mutate" as const,
    clientId,
    seq: 1_000_000,
    firstUnackedSeq: 1_000_000,
    ops: [{ kind: "add" as const, key: encoder.encode(`user:${String(i).padStart(10, "0")}:likes`), delta: 1n }],
  }));
  for (let i = 0; i < commands.length; i += 1_000)
    machine.applyEntry(++index, encodeEntry({ timestampMs, commands: commands.slice(i, i + 1_000) }));
}

function cpuMs(): number {
  const usage = cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** Wall and CPU ms of `work` (on a shared box the CPU figure is the one to trust). */
function timed<T>(work: () => T): { result: T; wallMs: number; cpuMs: number } {
  const cpu0 = cpuMs();
  const wall0 = performance.now();
  const result = work();
  return { result, wallMs: performance.now() - wall0, cpuMs: cpuMs() - cpu0 };
}

/**
 * A pause (setImmediate) that records the longest stretch of work between two pauses, by wall
 * clock and by this process's CPU time (which includes V8's helper threads, so it errs high).
 */
function pauser(): { pause: () => Promise<void>; report: () => string } {
  let resumedAt = performance.now();
  let resumedCpu = cpuMs();
  let longestWall = 0;
  let longestCpu = 0;
  let count = 0;
  return {
    pause: () => {
      longestWall = Math.max(longestWall, performance.now() - resumedAt);
      longestCpu = Math.max(longestCpu, cpuMs() - resumedCpu);
      count++;
      return new Promise((resolve) =>
        setImmediate(() => {
          resumedAt = performance.now();
          resumedCpu = cpuMs();
          resolve();
        }),
      );
    },
    report: () => `longest step ${longestCpu.toFixed(2)} ms cpu (${longestWall.toFixed(2)} wall), ${count} pauses`,
  };
}

function concat(blocks: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(blocks.reduce((sum, block) => sum + block.length, 0));
  let at = 0;
  for (const block of blocks) {
    bytes.set(block, at);
    at += block.length;
  }
  return bytes;
}

async function main(): Promise<void> {
  const machine = new CounterStateMachine(options);
  fill(machine);
  console.log(`${machine.counterCount()} counters, ${machine.sessionCount()} sessions`);

  const captures: string[] = [];
  let image = machine.captureImage();
  for (let run = 0; run < 5; run++) {
    const capture = timed(() => machine.captureImage());
    image = capture.result;
    captures.push(`${capture.cpuMs.toFixed(1)} cpu (${capture.wallMs.toFixed(1)} wall)`);
  }
  console.log(`captureImage ms (fresh memory): ${captures.join(", ")}`);
  const reused: string[] = [];
  for (let run = 0; run < 5; run++) {
    const spare = CounterStateMachine.imageBuffers(image);
    const capture = timed(() => machine.captureImage(spare));
    image = capture.result;
    reused.push(`${capture.cpuMs.toFixed(1)} cpu (${capture.wallMs.toFixed(1)} wall)`);
  }
  console.log(`captureImage ms (reusing the last image's memory): ${reused.join(", ")}`);
  const prepared: string[] = [];
  for (let run = 0; run < 3; run++) {
    const prepare = pauser();
    const buffers = await machine.prepareImageBuffers(undefined, prepare.pause);
    const capture = timed(() => machine.captureImage(buffers));
    image = capture.result;
    prepared.push(`${capture.cpuMs.toFixed(1)} cpu (${capture.wallMs.toFixed(1)} wall), prepareImageBuffers ${prepare.report()}`);
  }
  console.log(`captureImage ms (after prepareImageBuffers): ${prepared.join("; ")}`);

  const encodePause = pauser();
  let start = performance.now();
  let cpu = cpuMs();
  const blocks = await encodeShardImage(image, encodePause.pause);
  console.log(
    `encodeShardImage: ${encodePause.report()}, total ${(cpuMs() - cpu).toFixed(0)} ms cpu (${(performance.now() - start).toFixed(0)} wall)`,
  );
  const bytes = concat(blocks);
  console.log(
    `image: ${(bytes.length / 1e6).toFixed(1)} MB = ${(bytes.length / machine.counterCount()).toFixed(1)} bytes/counter ` +
      `(rows ${image.counters.rows.length}, arena ${image.counters.arena.length}, sessions ${image.sessions.count}, kinds ${image.kinds.length})`,
  );

  const load = timed(() => CounterStateMachine.fromImage(bytes, options));
  const loaded = load.result;
  console.log(`fromImage: ${load.cpuMs.toFixed(0)} ms cpu (${load.wallMs.toFixed(0)} wall), ${loaded.counterCount()} counters`);

  const loadPause = pauser();
  start = performance.now();
  cpu = cpuMs();
  const loadedAsync = await CounterStateMachine.fromImageAsync(bytes, options, loadPause.pause);
  console.log(
    `fromImageAsync: ${loadPause.report()}, total ${(cpuMs() - cpu).toFixed(0)} ms cpu (${(performance.now() - start).toFixed(0)} wall)`,
  );

  const expected = Buffer.from(machine.snapshot());
  if (!expected.equals(Buffer.from(loaded.snapshot())) || !expected.equals(Buffer.from(loadedAsync.snapshot()))) {
    throw new Error("a loaded image's snapshot differs from the machine's");
  }
  console.log("loaded snapshots equal the machine's");
}

await main();
