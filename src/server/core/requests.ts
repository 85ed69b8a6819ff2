/**
 * The requests of the gRPC services on one shard replica, as TallyNode (node.ts) runs them once it
 * has checked that the loop runs and routed the request: a write queued for the next iteration's
 * proposal, a stale read at an applied index, a linearizable read under the lease or after a
 * ReadIndex round. None touches Raft: each queues on the replica and wakes the loop. Routing
 * (routeRequest()) picks the replica and checks the request's epoch and keys first.
 */
import type { Command } from "../../shard/commands.js";
import type { ClusterMap } from "../../meta/map.js";
import { slotOf } from "../../meta/slots.js";
import { monotonicMs } from "../../util/clock.js";
import { NotLeaderError, UnavailableError, WrongShardError } from "../../util/errors.js";
import { wrapShardSnapshot } from "../descriptor.js";
import { readCounter, type ReadWaiter, type ShardReplica } from "../shard-replica.js";
import { recordSlotLoad } from "./load-report.js";
import type { Consistency, MutationOutcome, ReadResult, ShardBackupSnapshot } from "./node-types.js";
import { stageTrace } from "./stage-trace.js";

/** What the requests need of the node. */
export interface RequestContext {
  /** Client address of a node, for NOT_LEADER hints. */
  leaderAddress: (id: number) => string | undefined;
  /** Wakes the driver loop: a request waits on a replica. */
  wake(): void;
  /** Ticks every group up to the monotonic clock (DriverLoop.catchUpTicks()). */
  catchUpTicks(): void;
}

/**
 * Queues one validated command on the shard's leader; resolves when it is applied.
 * `plantedAckBeforeCommit` is the chaos harness's planted bug (see ackBeforeCommit()).
 */
export function submitCommand(
  context: RequestContext,
  replica: ShardReplica,
  command: Command,
  bytes: number,
  timeoutMs: number,
  plantedAckBeforeCommit: boolean,
): Promise<MutationOutcome> {
  if (!replica.isLeader) return Promise.reject(replica.notLeaderError(context.leaderAddress));
  if (plantedAckBeforeCommit && command.type === "mutate") return ackBeforeCommit(context, replica, command, bytes, timeoutMs);
  return new Promise<MutationOutcome>((resolve, reject) => {
    replica.enqueue({
      command,
      bytes,
      deadlineMs: monotonicMs() + timeoutMs,
      resolve: (result, index, term) => resolve({ result, index, term }),
      reject,
      trace: stageTrace.sample() ? { queuedAt: performance.now(), proposedAt: 0, writtenAt: 0, ackAt: 0, appliedAt: 0 } : undefined,
    });
    context.wake();
  });
}

/**
 * PLANTED BUG for the chaos harness (TallyNode's `faults.ackBeforeCommit`, never in production): answers
 * a mutation from the leader's applied state before the entry is committed, then proposes it
 * anyway. A leader crash loses acknowledged writes and concurrent adds see stale values; the
 * chaos checker must catch both (test/chaos/planted.test.ts).
 */
function ackBeforeCommit(
  context: RequestContext,
  replica: ShardReplica,
  command: Extract<Command, { type: "mutate" }>,
  bytes: number,
  timeoutMs: number,
): Promise<MutationOutcome> {
  const results = command.ops.map((op) => {
    const current = readCounter(replica, op.key);
    const before = current?.value ?? 0n;
    const value = op.kind === "add" ? before + op.delta : "value" in op ? op.value : 0n;
    return { value, version: current?.version ?? 0 };
  });
  replica.enqueue({ command, bytes, deadlineMs: monotonicMs() + timeoutMs, resolve: () => undefined, reject: () => undefined });
  context.wake();
  return Promise.resolve({
    result: { ok: true, type: "mutate", results, duplicate: false },
    index: replica.machine.appliedIndex,
    term: replica.raw.term,
  });
}

export function readKeys(
  context: RequestContext,
  replica: ShardReplica,
  keys: Uint8Array[],
  consistency: Consistency,
  minIndex: number,
  timeoutMs: number,
): Promise<ReadResult> {
  const answer = (r: ShardReplica): ReadResult => ({
    values: keys.map((key) => {
      const record = readCounter(r, key);
      return record === undefined
        ? { value: 0n, version: 0, exists: false, kind: r.machine.kindOf(key, Date.now()) }
        : { value: record.value, version: record.version, exists: true };
    }),
    term: r.raw.term,
    appliedIndex: r.machine.appliedIndex,
  });
  if (consistency === "stale") {
    if (replica.machine.appliedIndex >= minIndex) return Promise.resolve(answer(replica));
    return new Promise((resolve, reject) => {
      replica.addReadAtIndex({ index: minIndex, deadlineMs: monotonicMs() + timeoutMs, serve: (r) => resolve(answer(r)), reject });
      context.wake();
    });
  }
  return linearizable(context, replica, minIndex, timeoutMs, answer);
}

/**
 * `answer` runs on the shard's leader at an applied index at or above both minIndex and a
 * ReadIndex taken after this call (or under a valid lease): it sees every write acknowledged
 * before the call. It runs synchronously, so it sees one applied state.
 */
export function linearizable<T>(
  context: RequestContext,
  replica: ShardReplica,
  minIndex: number,
  timeoutMs: number,
  answer: (r: ShardReplica) => T,
): Promise<T> {
  if (!replica.isLeader) return Promise.reject(replica.notLeaderError(context.leaderAddress));
  // Bring the lease up to the monotonic clock first: after a pause (GC, SIGSTOP) the ticks we
  // missed must count before we trust the lease.
  context.catchUpTicks();
  if (replica.canServeLeaseRead() && replica.machine.appliedIndex >= minIndex) return Promise.resolve(answer(replica));
  return new Promise((resolve, reject) => {
    const waiter: ReadWaiter = {
      index: -1,
      deadlineMs: monotonicMs() + timeoutMs,
      serve: (r) => {
        if (r.machine.appliedIndex >= minIndex) resolve(answer(r));
        else r.addReadAtIndex({ ...waiter, index: minIndex });
      },
      reject,
    };
    replica.addLinearizableRead(waiter);
    context.wake();
  });
}

/** The shard's whole state at its applied index, as a backup holds it (taken on its leader `nodeId`). */
export function backupOf(replica: ShardReplica, shardId: number, nodeId: number): ShardBackupSnapshot {
  return {
    shardId,
    descriptor: { ...replica.descriptor },
    appliedIndex: replica.machine.appliedIndex,
    term: replica.raw.term,
    clockMs: replica.machine.clockMs,
    counters: replica.machine.counterCount(),
    leaderId: nodeId,
    data: wrapShardSnapshot(replica.descriptor, replica.machine.snapshot()),
  };
}

/** What routing needs of the node. */
export interface RoutingView {
  readonly nodeId: number;
  readonly replicas: ReadonlyMap<number, ShardReplica>;
  readonly map: ClusterMap;
  readonly stats: { staleEpochRejected: number };
  leaderAddress(id: number): string | undefined;
}

/** The replica a request routed to, checking the epoch and that every key belongs to it (TallyNode.route()). */
export function routeRequest(view: RoutingView, shardId: number, epoch: number, keys: Uint8Array[]): ShardReplica {
  let id = shardId;
  if (id === 0) {
    const first = keys[0];
    if (first === undefined) throw new WrongShardError("request names no shard and no key", 0, 0);
    id = shardIdForKey(view, first);
    if (id === 0) throw new UnavailableError(`node ${view.nodeId} does not know the partition map yet`);
  }
  const replica = view.replicas.get(id);
  if (replica === undefined) {
    const record = view.map.shards.find((shard) => shard.id === id);
    if (record === undefined) throw new WrongShardError(`shard ${id} does not exist`, id, 0);
    const leaderHint = record.voters[0];
    throw new NotLeaderError(
      `shard ${id} has no replica on node ${view.nodeId}`,
      leaderHint === undefined ? undefined : String(leaderHint),
      leaderHint === undefined ? undefined : view.leaderAddress(leaderHint),
      id,
    );
  }
  const descriptor = replica.descriptor;
  if (epoch !== 0 && epoch !== descriptor.epoch) {
    view.stats.staleEpochRejected++;
    throw new WrongShardError(`shard ${id} is at epoch ${descriptor.epoch}, request routed by epoch ${epoch}`, id, descriptor.epoch);
  }
  for (const key of keys) admitSlot(replica, slotOf(key));
  return replica;
}

/** A routed key's slot: counted in the replica's slot load, WRONG_SHARD outside its range. */
export function admitSlot(replica: ShardReplica, slot: number): void {
  recordSlotLoad(replica, slot);
  const { slotStart, slotEnd, epoch } = replica.descriptor;
  if (slot < slotStart || slot >= slotEnd)
    throw new WrongShardError(
      `key in slot ${slot} does not belong to shard ${replica.shardId} (slots ${slotStart}-${slotEnd - 1})`,
      replica.shardId,
      epoch,
    );
}

/** The shard owning the key's slot: a hosted replica's range first, then the map (0 when the map is not known yet). */
export function shardIdForKey(view: RoutingView, key: Uint8Array): number {
  const slot = slotOf(key);
  for (const replica of view.replicas.values())
    if (slot >= replica.descriptor.slotStart && slot < replica.descriptor.slotEnd) return replica.shardId;
  return view.map.shards.find((shard) => slot >= shard.slotStart && slot < shard.slotEnd)?.id ?? 0;
}
