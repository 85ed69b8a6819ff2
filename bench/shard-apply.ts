/**
 * Apply throughput of the counter state machine: entries of 1,000 adds, in the two shapes leader
 * batching produces (1,000 single-op mutates from 1,000 sessions, and one 1,000-op batch), over
 * 100,000 keys. All entries are encoded first, then applied, and each phase is timed by wall
 * clock and by this process's CPU time (on a shared box the CPU figure is the one to trust).
 *
 *   npx tsx bench/shard-apply.ts            (ENTRIES=n to change the run length)
 */
import { performance } from "node:perf_hooks";
import { cpuUsage } from "node:process";
import { encodeEntry, type Command, type CounterOp } from "../src/shard/commands.js";
import { CounterStateMachine } from "../src/shard/state-machine.js";
import { createPrng } from "../src/util/prng.js";

const OPS_PER_ENTRY = 1_000;
const KEYS = 100_000;
const ENTRIES = Number(process.env.ENTRIES ?? 2_000);
const WARMUP_ENTRIES = 300;

const prng = createPrng(42);
const encoder = new TextEncoder();
const keys = Array.from({ length: KEYS }, (_, i) => encoder.encode(`user:${i}:likes`));
const randomKey = (): Uint8Array => keys[prng.nextInt(KEYS)]!;
const randomAdd = (): CounterOp => ({ kind: "add", key: randomKey(), delta: BigInt(prng.nextInt(100) + 1) });

interface Timing {
  wallMs: number;
  cpuMs: number;
}

function timed(work: () => void): Timing {
  const cpu0 = cpuUsage();
  const wall0 = performance.now();
  work();
  const wallMs = performance.now() - wall0;
  const cpu = cpuUsage(cpu0);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

function perEntryUs(timing: Timing): string {
  return `${((timing.cpuMs * 1000) / ENTRIES).toFixed(0).padStart(5)} us cpu (${((timing.wallMs * 1000) / ENTRIES).toFixed(0)} wall)`;
}

function run(label: string, makeCommands: (seq: number, clientIds: number[]) => Command[], sessions: number): void {
  const machine = new CounterStateMachine({ sessionTimeoutMs: 60_000, maxSessions: 10_000, maxRetainedResultsPerSession: 128 });
  let index = 0;
  let timestampMs = 1_700_000_000_000;
  const registered = machine.applyEntry(
    ++index,
    encodeEntry({ timestampMs, commands: Array.from({ length: sessions }, () => ({ type: "register" as const })) }),
  );
  const clientIds = registered.map((r) => (r.ok && r.type === "register" ? r.clientId : -1));

  // Commands are built outside the timed region and dropped after encoding, so that neither the
  // encode nor the apply timing pays for them (or for GC marking millions of live command objects).
  const entries: Uint8Array[] = [];
  const encodeTiming: Timing = { wallMs: 0, cpuMs: 0 };
  for (let entry = 0; entry < WARMUP_ENTRIES + ENTRIES; entry++) {
    const commands = makeCommands(entry + 1, clientIds);
    const timing = timed(() => entries.push(encodeEntry({ timestampMs: ++timestampMs, commands })));
    encodeTiming.wallMs += timing.wallMs;
    encodeTiming.cpuMs += timing.cpuMs;
  }

  let failures = 0;
  const applyBatch = (from: number, to: number): void => {
    for (let entry = from; entry < to; entry++) {
      // Applying changes memory only: durability is the log plus checkpoints (bench/shard-image.ts).
      for (const result of machine.applyEntry(++index, entries[entry]!)) if (!result.ok) failures++;
    }
  };
  applyBatch(0, WARMUP_ENTRIES);
  const applyTiming = timed(() => applyBatch(WARMUP_ENTRIES, WARMUP_ENTRIES + ENTRIES));
  if (failures > 0) throw new Error(`${label}: ${failures} commands failed`);

  const opsPerSecond = (ENTRIES * OPS_PER_ENTRY) / (applyTiming.cpuMs / 1000);
  const bytes = entries.reduce((sum, entry) => sum + entry.length, 0) / entries.length;
  console.log(`${label}  (${bytes.toFixed(0)} bytes/entry, ${machine.counterCount()} counters)`);
  console.log(`  apply  ${perEntryUs(applyTiming)} per entry  = ${(opsPerSecond / 1e6).toFixed(2)} M ops/s (cpu)`);
  console.log(
    `  encode ${perEntryUs({ wallMs: encodeTiming.wallMs * (ENTRIES / (WARMUP_ENTRIES + ENTRIES)), cpuMs: encodeTiming.cpuMs * (ENTRIES / (WARMUP_ENTRIES + ENTRIES)) })} per entry (leader only)`,
  );
}

/**
 * A fixed pure-JS workload, printed so runs on different or busy machines can be compared: on a
 * shared box, divide the apply figures by how much slower this is than on a quiet one.
 */
function calibrate(): void {
  const map = new Map<number, number>();
  for (let i = 0; i < 1000; i++) map.set(i, i);
  let best = Infinity;
  for (let round = 0; round < 20; round++) {
    const timing = timed(() => {
      for (let repeat = 0; repeat < 100; repeat++) {
        for (let i = 0; i < 1000; i++) {
          map.delete(i);
          map.set(i, i);
        }
      }
    });
    best = Math.min(best, (timing.cpuMs * 1000) / 100);
  }
  console.log(`calibration: Map delete+set x1000 = ${best.toFixed(1)} us cpu (best of 20)`);
}

calibrate();
run(
  "1000 single-add mutates / entry",
  (seq, clientIds) => clientIds.map((clientId) => ({ type: "mutate", clientId, seq, firstUnackedSeq: seq, ops: [randomAdd()] })),
  OPS_PER_ENTRY,
);
run(
  "one 1000-add mutate / entry",
  (seq, clientIds) => [
    { type: "mutate", clientId: clientIds[0]!, seq, firstUnackedSeq: seq, ops: Array.from({ length: OPS_PER_ENTRY }, randomAdd) },
  ],
  1,
);
