/** Helpers for the shard state machine tests: a driver that stamps entries like a leader would. */
import { expect } from "vitest";
import {
  encodeEntry,
  type Command,
  type CommandFailure,
  type CommandResult,
  type CounterOp,
  type OpResult,
} from "../../src/shard/commands.js";
import { CounterStateMachine, type ShardOptions } from "../../src/shard/state-machine.js";

export const INT64_MAX = (1n << 63n) - 1n;
export const INT64_MIN = -(1n << 63n);

const encoder = new TextEncoder();

export function key(text: string): Uint8Array {
  return encoder.encode(text);
}

export const add = (k: string | Uint8Array, delta: bigint, floor?: bigint): CounterOp =>
  floor === undefined
    ? { kind: "add", key: typeof k === "string" ? key(k) : k, delta }
    : { kind: "add", key: typeof k === "string" ? key(k) : k, delta, floor };
export const set = (k: string, value: bigint): CounterOp => ({ kind: "set", key: key(k), value });
export const reset = (k: string): CounterOp => ({ kind: "reset", key: key(k) });
export const cas = (k: string, expectedVersion: number, value: bigint): CounterOp => ({ kind: "cas", key: key(k), expectedVersion, value });

export const defaultOptions: ShardOptions = { sessionTimeoutMs: 10_000, maxSessions: 100, maxRetainedResultsPerSession: 8 };

/** Drives one state machine: each apply() is one committed entry at the next index. */
export class ShardDriver {
  index = 0;
  timestampMs = 1_700_000_000_000;

  constructor(readonly machine: CounterStateMachine = new CounterStateMachine(defaultOptions)) {
    this.index = machine.appliedIndex;
  }

  apply(commands: Command[], timestampMs = this.timestampMs): CommandResult[] {
    this.timestampMs = timestampMs;
    const results = this.machine.applyEntry(++this.index, encodeEntry({ timestampMs, commands }));
    expect(results).toHaveLength(commands.length);
    return results;
  }

  register(timestampMs?: number): number {
    const [result] = this.apply([{ type: "register" }], timestampMs);
    if (!(result?.ok && result.type === "register")) throw new Error(`register failed: ${JSON.stringify(result)}`);
    return result.clientId;
  }

  mutate(clientId: number, seq: number, ops: CounterOp[], firstUnackedSeq = seq, timestampMs?: number): CommandResult {
    return this.apply([{ type: "mutate", clientId, seq, firstUnackedSeq, ops }], timestampMs)[0]!;
  }

  value(k: string): OpResult | undefined {
    return this.machine.get(key(k));
  }
}

export function expectOk(result: CommandResult | undefined): OpResult[] {
  if (!(result?.ok && result.type === "mutate")) throw new Error(`expected a successful mutate, got ${JSON.stringify(result, bigintJson)}`);
  return result.results;
}

export function expectFailure(result: CommandResult | undefined, code: CommandFailure["code"]): CommandFailure {
  if (result === undefined || result.ok) throw new Error(`expected ${code}, got ${JSON.stringify(result, bigintJson)}`);
  expect(result.code).toBe(code);
  return result;
}

export function bigintJson(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? `${value}n` : value;
}
