/**
 * The simulator's replicated state machine: exact counters with exactly-once sessions (Raft
 * thesis 6.3). Deliberately tiny and independent of src/shard, so the simulator tests the Raft
 * core and not the production state machine.
 *
 * A command carries (clientId, seq, floorSeq): the client's op id and its lowest unacknowledged
 * seq. The machine keeps the result of every seq >= floor; a retried seq returns the saved
 * result and changes nothing, and a seq below the floor is a stale duplicate (the client has
 * moved on) that changes nothing either. Every replica also keeps a hash chain over the entries
 * it applied, so replicas can be compared index by index in O(1).
 */
import { assert } from "../../src/util/assert.js";
import { type Entry, EntryType, type LogIndex, type Snapshot, type Term } from "../../src/raft/types.js";
import { hashBytes, mix, mixNumber } from "./hash.js";

export interface CounterCommand {
  clientId: number;
  seq: number;
  /** The client's lowest unacknowledged seq: results below it may be forgotten. */
  floorSeq: number;
  key: string;
  delta: number;
}

export type ApplyOutcome =
  | { kind: "empty" }
  | { kind: "conf-change" }
  | { kind: "applied"; command: CounterCommand; value: bigint }
  | { kind: "duplicate"; command: CounterCommand; value: bigint }
  | { kind: "stale"; command: CounterCommand };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(command: CounterCommand): Uint8Array {
  assert(Number.isSafeInteger(command.delta), "delta must be a safe integer");
  assert(command.floorSeq <= command.seq, "floor must not pass the command's own seq");
  return encoder.encode(JSON.stringify([command.clientId, command.seq, command.floorSeq, command.key, command.delta]));
}

export function decodeCommand(data: Uint8Array): CounterCommand {
  const [clientId, seq, floorSeq, key, delta] = JSON.parse(decoder.decode(data)) as [number, number, number, string, number];
  return { clientId, seq, floorSeq, key, delta };
}

export function opIdOf(clientId: number, seq: number): string {
  return `c${clientId}.${seq}`;
}

/** Hash of the state "nothing applied yet, at index" (a bootstrap snapshot carries no data). */
const CHAIN_SEED = 0x7a11_7a11;
function initialHash(index: LogIndex): number {
  return mixNumber(CHAIN_SEED, index);
}

/** Fingerprint of one log entry: what the checkers compare across replicas. */
export function entryFingerprint(entry: Entry): number {
  return mix(hashBytes(entry.data), entry.type);
}

interface Session {
  floorSeq: number;
  results: Map<number, bigint>;
}

export class CounterStateMachine {
  appliedIndex: LogIndex;
  appliedTerm: Term;
  /** Hash chain over every entry applied so far (or restored from a snapshot). */
  hash: number;
  readonly values = new Map<string, bigint>();
  private readonly sessions = new Map<number, Session>();
  /** Test-only sabotage: forget exactly-once (the simulator must then report a violation). */
  unsafeNoDedupe = false;

  private constructor(index: LogIndex, term: Term, hash: number) {
    this.appliedIndex = index;
    this.appliedTerm = term;
    this.hash = hash;
  }

  /** A machine at `index` holding nothing (fresh node: 0; bootstrap snapshot: 1). */
  static empty(index: LogIndex, term: Term): CounterStateMachine {
    return new CounterStateMachine(index, term, initialHash(index));
  }

  static restore(snapshot: Snapshot): CounterStateMachine {
    const { index, term } = snapshot.metadata;
    if (snapshot.data.length === 0) return CounterStateMachine.empty(index, term);
    const decoded = JSON.parse(decoder.decode(snapshot.data)) as SnapshotJson;
    assert(decoded.index === index, `snapshot data is for index ${decoded.index}, metadata says ${index}`);
    const machine = new CounterStateMachine(decoded.index, decoded.term, decoded.hash);
    for (const [key, value] of decoded.values) machine.values.set(key, BigInt(value));
    for (const [clientId, floorSeq, results] of decoded.sessions) {
      machine.sessions.set(clientId, {
        floorSeq,
        results: new Map(results.map(([seq, value]) => [seq, BigInt(value)])),
      });
    }
    return machine;
  }

  serialize(): Uint8Array {
    const json: SnapshotJson = {
      index: this.appliedIndex,
      term: this.appliedTerm,
      hash: this.hash,
      values: [...this.values].map(([key, value]) => [key, value.toString()]),
      sessions: [...this.sessions].map(([clientId, session]) => [
        clientId,
        session.floorSeq,
        [...session.results].map(([seq, value]) => [seq, value.toString()]),
      ]),
    };
    return encoder.encode(JSON.stringify(json));
  }

  /** Applies the next committed entry. Invariant: entries arrive in index order without gaps. */
  apply(entry: Entry): ApplyOutcome {
    assert(entry.index === this.appliedIndex + 1, `state machine at ${this.appliedIndex} cannot apply entry ${entry.index}`);
    this.appliedIndex = entry.index;
    this.appliedTerm = entry.term;
    this.hash = mix(mixNumber(mixNumber(this.hash, entry.index), entry.term), entryFingerprint(entry));
    if (entry.type === EntryType.ConfChange) return { kind: "conf-change" };
    if (entry.data.length === 0) return { kind: "empty" };
    const command = decodeCommand(entry.data);
    let session = this.sessions.get(command.clientId);
    if (session === undefined) {
      session = { floorSeq: 0, results: new Map() };
      this.sessions.set(command.clientId, session);
    }
    if (command.seq < session.floorSeq && !this.unsafeNoDedupe) return { kind: "stale", command };
    const saved = this.unsafeNoDedupe ? undefined : session.results.get(command.seq);
    let outcome: ApplyOutcome;
    if (saved !== undefined) {
      outcome = { kind: "duplicate", command, value: saved };
    } else {
      const value = (this.values.get(command.key) ?? 0n) + BigInt(command.delta);
      this.values.set(command.key, value);
      session.results.set(command.seq, value);
      outcome = { kind: "applied", command, value };
    }
    if (command.floorSeq > session.floorSeq) {
      session.floorSeq = command.floorSeq;
      for (const seq of session.results.keys()) if (seq < session.floorSeq) session.results.delete(seq);
    }
    return outcome;
  }

  /** The saved result of (clientId, seq) if this replica applied it and has not forgotten it. */
  savedResult(clientId: number, seq: number): bigint | undefined {
    return this.sessions.get(clientId)?.results.get(seq);
  }

  read(key: string): bigint {
    return this.values.get(key) ?? 0n;
  }
}

interface SnapshotJson {
  index: number;
  term: number;
  hash: number;
  values: [string, string][];
  sessions: [number, number, [number, string][]][];
}
