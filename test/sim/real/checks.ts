/**
 * The real-parts simulator's checkers.
 *
 *   log matching            an entry persisted by any node at (group, index, term) is the same entry
 *                           everywhere (fingerprint of type and data)             (Raft paper 5.3)
 *   committed-prefix        every replica applies the same entry at each index of a group, across
 *   agreement               crashes and restarts (the canonical applied sequence)  (paper 5.4.3)
 *   replica state equality  replicas of a shard at the same applied index hold the same state:
 *                           CounterStateMachine.snapshot() bytes compared (sampled during the run,
 *                           and every replica at the end)
 *   exactly once            against an oracle that replays the canonical applied sequence with the
 *                           session and request-id rules: every acknowledged add took effect once,
 *                           with the value the client was told; nothing failed-for-certain took
 *                           effect; every replica's counters equal the oracle's; the final value of
 *                           each key lies in [acknowledged sum, acknowledged + ambiguous sum]
 *   linearizability         adds and linearizable reads, per key (test/support/linearizability.ts)
 */
import { EntryType, type Entry } from "../../../src/raft/types.js";
import { decodeEntry } from "../../../src/shard/commands.js";
import { SPLIT_ENTRY_MARKER } from "../../../src/server/descriptor.js";
import { checkLinearizable, counterModel, type CounterInput, type CounterOutput, type Operation } from "../../support/linearizability.js";
import { SimViolation } from "../checkers.js";
import { hashBytes } from "../hash.js";

export { SimViolation };

export function entryFingerprint(entry: Entry): number {
  return hashBytes(entry.data, (entry.type + 1) * 0x9e3779b1);
}

interface AppliedEntry {
  term: number;
  fingerprint: number;
  node: number;
  entry: Entry;
}

export class RealChecker {
  /** group -> "index:term" -> [fingerprint, first node]. */
  private readonly persisted = new Map<number, Map<string, [number, number]>>();
  /** group -> the canonical applied sequence (index -> entry), filled by the first applier. */
  readonly applied = new Map<number, AppliedEntry[]>();
  /** group -> applied index -> [snapshot hash, node]. */
  private readonly states = new Map<number, Map<number, [number, number]>>();
  checks = 0;

  observeAppend(node: number, groupId: number, entries: Entry[]): void {
    let seen = this.persisted.get(groupId);
    if (seen === undefined) this.persisted.set(groupId, (seen = new Map()));
    for (const entry of entries) {
      this.checks++;
      const key = `${entry.index}:${entry.term}`;
      const fingerprint = entryFingerprint(entry);
      const existing = seen.get(key);
      if (existing === undefined) seen.set(key, [fingerprint, node]);
      else if (existing[0] !== fingerprint)
        throw new SimViolation(
          "log-matching",
          `group ${groupId}: entry ${entry.index} term ${entry.term} differs between node ${existing[1]} and node ${node}`,
        );
    }
  }

  observeApply(node: number, groupId: number, entry: Entry): void {
    this.checks++;
    let sequence = this.applied.get(groupId);
    if (sequence === undefined) this.applied.set(groupId, (sequence = []));
    const fingerprint = entryFingerprint(entry);
    const existing = sequence[entry.index];
    if (existing === undefined) {
      sequence[entry.index] = { term: entry.term, fingerprint, node, entry };
      return;
    }
    if (existing.term !== entry.term || existing.fingerprint !== fingerprint) {
      throw new SimViolation(
        "state-machine-safety",
        `group ${groupId}: node ${node} applied entry ${entry.index} (term ${entry.term}) but node ${existing.node} applied ` +
          `another entry there (term ${existing.term})`,
      );
    }
  }

  /** A replica of `groupId` at `appliedIndex` has state hash `hash`. */
  observeState(node: number, groupId: number, appliedIndex: number, hash: number): void {
    this.checks++;
    let states = this.states.get(groupId);
    if (states === undefined) this.states.set(groupId, (states = new Map()));
    const existing = states.get(appliedIndex);
    if (existing === undefined) states.set(appliedIndex, [hash, node]);
    else if (existing[0] !== hash)
      throw new SimViolation(
        "state-machine-safety",
        `group ${groupId}: nodes ${existing[1]} and ${node} hold different states at applied index ${appliedIndex} (snapshot bytes differ)`,
      );
  }
}

// ---- exactly once and linearizability ----

export interface OpRecord {
  opId: string;
  clientId: number;
  kind: "add" | "read";
  key: string;
  delta: number;
  invokedStep: number;
  invokedAtMs: number;
  completedStep?: number;
  completedAtMs?: number;
  outcome: "pending" | "ok" | "failed" | "ambiguous";
  value?: bigint;
  maybeApplied: boolean;
  attempts: number;
  servedBy?: number;
}

export interface OracleInput {
  /** Shard group ids (the metadata group is not a counter shard). */
  shards: number[];
  applied: Map<number, AppliedEntry[]>;
  /** Session id -> the client that registered it. */
  sessionOwner: Map<number, number>;
  history: OpRecord[];
  keyOf: (bytes: Uint8Array) => string;
  /** Every live replica's value of `key` at its applied index, for replicas at the shard's last applied index. */
  replicaValues: (shardId: number, lastIndex: number) => Array<{ node: number; values: Map<string, bigint> }>;
}

/** The effect of every op id that took effect: the index and the value its add produced. */
export function checkExactlyOnce(input: OracleInput): Map<string, { index: number; value: bigint }> {
  const effective = new Map<string, { index: number; value: bigint }>();
  for (const shardId of input.shards) {
    const sequence = input.applied.get(shardId) ?? [];
    const sessions = new Set<number>();
    const seqsSeen = new Set<string>();
    const requestIds = new Set<string>();
    const values = new Map<string, bigint>();
    let last = 0;
    for (let index = 1; index < sequence.length; index++) {
      const record = sequence[index];
      if (record === undefined) continue;
      last = index;
      const entry = record.entry;
      if (entry.type !== EntryType.Normal || entry.data.length === 0 || entry.data[0] === SPLIT_ENTRY_MARKER) continue;
      for (const command of decodeEntry(entry.data).commands) {
        let opId: string;
        if (command.type === "register") {
          if (command.clientId !== undefined) sessions.add(command.clientId);
          continue;
        } else if (command.type === "keepalive") {
          continue;
        } else if (command.type === "write") {
          if (requestIds.has(command.requestId)) continue;
          requestIds.add(command.requestId);
          opId = command.requestId;
        } else {
          if (!sessions.has(command.clientId)) continue;
          const seqKey = `${command.clientId}.${command.seq}`;
          if (seqsSeen.has(seqKey)) continue;
          seqsSeen.add(seqKey);
          const owner = input.sessionOwner.get(command.clientId);
          if (owner === undefined) throw new SimViolation("exactly-once", `session ${command.clientId} was never registered by a client`);
          opId = `c${owner}.${command.seq}`;
        }
        if (effective.has(opId))
          throw new SimViolation(
            "exactly-once",
            `${opId} took effect twice on shard ${shardId} (index ${effective.get(opId)!.index} and ${index})`,
          );
        let value = 0n;
        for (const op of command.ops) {
          if (op.kind !== "add") throw new SimViolation("exactly-once", `unexpected op ${op.kind} in ${opId}`);
          const key = input.keyOf(op.key);
          value = (values.get(key) ?? 0n) + op.delta;
          values.set(key, value);
        }
        effective.set(opId, { index, value });
      }
    }
    for (const { node, values: held } of input.replicaValues(shardId, last)) {
      for (const key of new Set([...values.keys(), ...held.keys()])) {
        const expected = values.get(key) ?? 0n;
        const actual = held.get(key) ?? 0n;
        if (actual !== expected)
          throw new SimViolation(
            "exactly-once",
            `node ${node} holds ${key}=${actual} on shard ${shardId} at index ${last}; applying each op id once gives ${expected}`,
          );
      }
    }
  }
  const issued = new Set<string>();
  const acked = new Map<string, bigint>();
  const ambiguous = new Map<string, bigint>();
  for (const record of input.history) {
    if (record.kind !== "add") continue;
    issued.add(record.opId);
    const effect = effective.get(record.opId);
    if (record.outcome === "ok") {
      acked.set(record.key, (acked.get(record.key) ?? 0n) + BigInt(record.delta));
      if (effect === undefined)
        throw new SimViolation(
          "exactly-once",
          `acknowledged ${record.opId} (${record.key} += ${record.delta}) never took effect`,
          focus(record),
        );
      if (effect.value !== record.value)
        throw new SimViolation(
          "exactly-once",
          `acknowledged ${record.opId} returned ${record.value}, but it took effect at index ${effect.index} giving ${effect.value}`,
          focus(record),
        );
    } else if (record.outcome === "failed" && effect !== undefined) {
      throw new SimViolation("exactly-once", `${record.opId} failed for certain, yet took effect at index ${effect.index}`, focus(record));
    } else if (record.outcome === "ambiguous" || record.outcome === "pending") {
      ambiguous.set(record.key, (ambiguous.get(record.key) ?? 0n) + BigInt(record.delta));
    }
  }
  for (const opId of effective.keys())
    if (!issued.has(opId)) throw new SimViolation("exactly-once", `${opId} took effect but no client issued it`);
  // The bound the issue states: positive deltas, so final in [acknowledged, acknowledged + ambiguous].
  const byOpId = new Map(input.history.map((record) => [record.opId, record]));
  const finals = new Map<string, bigint>();
  for (const opId of effective.keys()) {
    const record = byOpId.get(opId);
    if (record !== undefined) finals.set(record.key, (finals.get(record.key) ?? 0n) + BigInt(record.delta));
  }
  for (const [key, sum] of acked) {
    const final = finals.get(key) ?? 0n;
    const most = sum + (ambiguous.get(key) ?? 0n);
    if (final < sum || final > most)
      throw new SimViolation("exactly-once", `key ${key}: final ${final} outside [acknowledged ${sum}, acknowledged + ambiguous ${most}]`);
  }
  return effective;
}

function focus(record: OpRecord): [number, number] {
  return [record.invokedAtMs - 50, record.completedAtMs ?? record.invokedAtMs + 500];
}

export function checkReadsLinearizable(history: OpRecord[], effective: Map<string, { index: number; value: bigint }>): number {
  const operations: Operation<CounterInput, CounterOutput>[] = [];
  for (const record of history) {
    if (record.kind === "add") {
      if (record.outcome === "ok") {
        operations.push({
          id: record.opId,
          clientId: record.clientId,
          partition: record.key,
          input: { kind: "add", delta: BigInt(record.delta) },
          output: record.value!,
          invokedAt: record.invokedStep,
          completedAt: record.completedStep!,
        });
      } else if (record.outcome !== "failed" && effective.has(record.opId)) {
        operations.push({
          id: record.opId,
          clientId: record.clientId,
          partition: record.key,
          input: { kind: "add", delta: BigInt(record.delta) },
          invokedAt: record.invokedStep,
        });
      }
    } else if (record.outcome === "ok") {
      operations.push({
        id: record.opId,
        clientId: record.clientId,
        partition: record.key,
        input: { kind: "read" },
        output: record.value!,
        invokedAt: record.invokedStep,
        completedAt: record.completedStep!,
      });
    }
  }
  const result = checkLinearizable(operations, counterModel);
  if (result.ok === true) return operations.length;
  if (result.ok === "unknown") throw new SimViolation("linearizability", `inconclusive: ${result.message}`);
  const byId = new Map(history.map((r) => [r.opId, r]));
  const failing = byId.get(String(result.failingOperation.id));
  const shown = [...result.minimalCounterexample].sort((a, b) => a.invokedAt - b.invokedAt).slice(-20);
  throw new SimViolation(
    "linearizability",
    [
      `key ${result.partition}: not linearizable`,
      `failing: ${String(result.failingOperation.id)}`,
      `states it could have seen: ${result.statesBeforeFailure.join(", ") || "none"}`,
      ...shown.map((op) => {
        const r = byId.get(String(op.id))!;
        return `  ${r.opId} ${op.input.kind === "add" ? `add(${r.delta})` : "read()"} -> ${op.output ?? "?"} [${r.invokedAtMs.toFixed(1)}..${r.completedAtMs?.toFixed(1) ?? ""}] from n${r.servedBy ?? "?"}`;
      }),
    ].join("\n"),
    failing === undefined ? undefined : focus(failing),
  );
}
