/**
 * The load report a node sends the metadata leader with every heartbeat (NodeReport): per hosted
 * shard, its descriptor, configuration, Raft progress, load and where a split would halve it.
 */
import type { NodeConfig } from "../config/config.js";
import type { NodeReport, ShardReport } from "../meta-wire.js";
import type { ShardReplica } from "../shard-replica.js";

/** Buckets of a leader's per-slot-range load histogram (where to split a hot shard); GroupReplica.slotLoad has as many. */
export const SLOT_LOAD_BUCKETS = 64;

/**
 * The report over the last `elapsedS` seconds. It resets each replica's applied-command count and
 * slot load, so the next report covers the time since this one.
 */
export function loadReport(self: NodeConfig, mapVersion: number, replicas: Iterable<ShardReplica>, elapsedS: number): NodeReport {
  const shards: ShardReport[] = [];
  for (const replica of replicas) {
    const status = replica.raw.status();
    const conf = replica.confState;
    const isLeader = replica.isLeader;
    const ops = replica.appliedCommands;
    replica.appliedCommands = 0;
    shards.push({
      id: replica.shardId,
      epoch: replica.descriptor.epoch,
      slotStart: replica.descriptor.slotStart,
      slotEnd: replica.descriptor.slotEnd,
      voters: [...conf.voters],
      learners: [...conf.learners, ...conf.learnersNext],
      votersOutgoing: [...conf.votersOutgoing],
      leader: status.leader,
      term: status.term,
      commit: status.commit,
      applied: replica.machine.appliedIndex,
      isLeader,
      progress: isLeader ? [...status.progress].map(([id, progress]) => [id, progress.match] as [number, number]) : [],
      opsPerSecond: isLeader ? ops / elapsedS : 0,
      counters: replica.machine.counterCount(),
      splitSlot: isLeader ? loadMedianSlot(replica) : 0,
    });
    replica.slotLoad.fill(0);
  }
  return {
    node: { id: self.id, client: self.client, peer: self.peer, zone: self.zone, host: self.host },
    mapVersion,
    shards,
  };
}

/** Counts each key's slot in the leader's load histogram (route() calls it for every request). */
export function recordSlotLoad(replica: ShardReplica, slot: number): void {
  const { slotStart, slotEnd } = replica.descriptor;
  const bucket = Math.min(SLOT_LOAD_BUCKETS - 1, Math.floor(((slot - slotStart) * SLOT_LOAD_BUCKETS) / (slotEnd - slotStart)));
  replica.slotLoad[bucket]! += 1;
}

/**
 * The slot that halves the leader's recent key load (bucket resolution), strictly inside the
 * shard's range; the middle of the range when there was no load. 0 when the range is one slot.
 */
function loadMedianSlot(replica: ShardReplica): number {
  const { slotStart, slotEnd } = replica.descriptor;
  if (slotEnd - slotStart < 2) return 0;
  const load = replica.slotLoad;
  let total = 0;
  for (let i = 0; i < load.length; i++) total += load[i]!;
  let slot = Math.floor((slotStart + slotEnd) / 2);
  if (total > 0) {
    let running = 0;
    for (let i = 0; i < load.length; i++) {
      running += load[i]!;
      if (running >= total / 2) {
        slot = slotStart + Math.floor(((i + 1) * (slotEnd - slotStart)) / load.length);
        break;
      }
    }
  }
  return Math.min(slotEnd - 1, Math.max(slotStart + 1, slot));
}
