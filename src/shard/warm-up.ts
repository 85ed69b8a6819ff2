/**
 * Runs the apply path once on a throwaway state machine, so that a starting node compiles it
 * before its shards replay their logs. V8 compiles each function on its first call and optimizes
 * it only after many: a restarted node's first iteration applied its first 16 KiB of entries in
 * the interpreter, compiling every function on the way (decodeEntryShape, the session checks,
 * mutatePacked, the change log, encodeOutcome), which held the loop for 25-45 ms of CPU
 * (bench/scale.ts restart phases, profiled). tallyd calls this before its event-loop monitor
 * starts and before anything is served. Deterministic and self-contained: it changes nothing
 * outside the machine it builds.
 */
import { encodePackedAdds } from "../util/packed-adds.js";
import { encodeEntry, type Command, type CounterOp } from "./commands.js";
import { CounterStateMachine } from "./state-machine.js";

/** Rounds of entries applied: enough for V8's baseline compilers to take the hot functions. */
const ROUNDS = 40;
/** Packed adds per entry (a 10,000-op AddBatch is ~1,250 per shard). */
const ADDS_PER_ENTRY = 512;
const KEYS = 4096;

/** Applies ROUNDS entries of packed adds, single-op mutates and sessionless writes; returns the ops applied. */
export function warmUpApplyPath(): number {
  const machine = new CounterStateMachine({ sessionTimeoutMs: 60_000, maxSessions: 16, maxRetainedResultsPerSession: 4 });
  const text = new TextEncoder();
  const keys = Array.from({ length: KEYS }, (_, i) => text.encode(`warm-up:${i}`));
  let index = 0;
  const apply = (commands: Command[]) => machine.applyEntry(++index, encodeEntry({ timestampMs: 1_000 + index, commands }));
  const [registered] = apply([{ type: "register", clientId: 7, owner: "" }]);
  if (registered === undefined || !registered.ok) throw new Error("warm-up: the session did not register");
  let ops = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const adds = Array.from({ length: ADDS_PER_ENTRY }, (_, i) => ({ key: keys[(round * 131 + i * 7) % KEYS]!, delta: BigInt(i + 1) }));
    const single: CounterOp[] = [{ kind: "add", key: keys[round]!, delta: 1n }];
    const results = apply([
      {
        type: "mutate",
        clientId: 7,
        seq: round,
        firstUnackedSeq: round,
        ops: adds.map((add) => ({ kind: "add", ...add })),
        packedAdds: encodePackedAdds(adds),
      },
      { type: "write", requestId: `warm-up-${round}`, ops: single },
    ]);
    if (results.some((result) => !result.ok)) throw new Error("warm-up: an entry did not apply");
    ops += adds.length + single.length;
  }
  return ops;
}
