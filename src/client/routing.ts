import { assert } from "../util/assert.js";
import { SLOT_COUNT } from "../meta/slots.js";
import type { RoutesResponseMessage } from "../api/proto.js";
import { wireBigInt } from "./values.js";
import { HotTable } from "./hot.js";

export interface ReplicaRoute {
  nodeId: string;
  address: string;
  role: string;
}

/** One shard as the client last learned it. */
export interface ShardRoute {
  shardId: number;
  /** Inclusive. */
  slotStart: number;
  /** Exclusive. */
  slotEnd: number;
  epoch: bigint;
  replicas: ReplicaRoute[];
  /** The believed leader; undefined when unknown or just found unreachable. */
  leaderId: string | undefined;
  /** Its client address, when known (a NOT_LEADER hint may name an address the map lacks). */
  leaderAddress: string | undefined;
  /** The highest term the client has seen for this shard. */
  term: bigint;
  /** The leader came from a NOT_LEADER hint: fresher than any map at the same term. */
  leaderFromHint: boolean;
}

export interface RoutesSnapshot {
  slotCount: number;
  shards: ShardRoute[];
}

function cloneRoute(route: ShardRoute): ShardRoute {
  return { ...route, replicas: route.replicas.map((replica) => ({ ...replica })) };
}

/**
 * The client's partition map: shards sorted by slot range, looked up by binary search.
 * Invariant: ranges are disjoint and sorted; the table is replaced only by a map that is not older
 * (per-shard epoch) than what the client has already seen, so a lagging node cannot roll it back.
 */
export class RouteTable {
  private shards: ShardRoute[] = [];
  private slotCount = SLOT_COUNT;
  /** Epochs learned from WRONG_SHARD replies: a map below them is stale. */
  private readonly epochFloor = new Map<number, bigint>();
  /** Hot counters, from the newest map seen. */
  readonly hot = new HotTable();

  get isEmpty(): boolean {
    return this.shards.length === 0;
  }

  lookup(slot: number): ShardRoute | undefined {
    // The message is built only on failure: this runs for every op of a batch.
    if (!(Number.isInteger(slot) && slot >= 0 && slot < this.slotCount)) assert(false, `slot out of range: ${slot}`);
    let low = 0;
    let high = this.shards.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const shard = this.shards[middle]!;
      if (slot < shard.slotStart) high = middle - 1;
      else if (slot >= shard.slotEnd) low = middle + 1;
      else return shard;
    }
    return undefined;
  }

  byShardId(shardId: number): ShardRoute | undefined {
    return this.shards.find((shard) => shard.shardId === shardId);
  }

  /** Every node address in the map, for route discovery and status. */
  addresses(): string[] {
    const set = new Set<string>();
    for (const shard of this.shards) {
      for (const replica of shard.replicas) if (replica.address) set.add(replica.address);
      if (shard.leaderAddress) set.add(shard.leaderAddress);
    }
    return [...set];
  }

  snapshot(): RoutesSnapshot {
    return { slotCount: this.slotCount, shards: this.shards.map(cloneRoute) };
  }

  /** A WRONG_SHARD reply proved the shard is at least at this epoch. */
  noteEpoch(shardId: number, epoch: bigint): void {
    const known = this.epochFloor.get(shardId) ?? 0n;
    if (epoch > known) this.epochFloor.set(shardId, epoch);
  }

  /** True when the table is behind an epoch some replica reported (so a refresh is needed). */
  isStale(shardId: number): boolean {
    const floor = this.epochFloor.get(shardId);
    const route = this.byShardId(shardId);
    return floor !== undefined && (route === undefined || route.epoch < floor);
  }

  /**
   * Adopts a Routes reply unless it is older than what the client knows. Returns false (and
   * changes nothing) for a stale or malformed reply, so the caller can ask another node.
   */
  update(response: RoutesResponseMessage): boolean {
    const slotCount = response.slotCount || SLOT_COUNT;
    const incoming = response.shards
      .map((message): ShardRoute => ({
        shardId: message.shardId,
        slotStart: message.slotStart,
        slotEnd: message.slotEnd,
        epoch: wireBigInt(message.epoch),
        replicas: message.replicas.map((replica) => ({
          nodeId: replica.nodeId,
          address: replica.address,
          role: replica.role,
        })),
        leaderId: message.leaderId || undefined,
        leaderAddress: undefined,
        term: wireBigInt(message.term),
        leaderFromHint: false,
      }))
      .sort((a, b) => a.slotStart - b.slotStart);
    if (incoming.length === 0) return false;
    let previousEnd = 0;
    for (const shard of incoming) {
      if (!(shard.slotStart >= previousEnd && shard.slotStart < shard.slotEnd && shard.slotEnd <= slotCount)) return false;
      previousEnd = shard.slotEnd;
    }
    for (const shard of incoming) {
      const known = this.byShardId(shard.shardId);
      if (known !== undefined && shard.epoch < known.epoch) return false;
      const floor = this.epochFloor.get(shard.shardId);
      if (floor !== undefined && shard.epoch < floor) return false;
    }
    for (const shard of incoming) {
      const known = this.byShardId(shard.shardId);
      // Keep the client's leader when it is at least as fresh: a hint at the same term came from
      // a replica that knew the leader, a map may lag behind it.
      if (
        known !== undefined &&
        known.leaderId !== undefined &&
        (shard.term < known.term || (shard.term === known.term && (known.leaderFromHint || shard.leaderId === undefined)))
      ) {
        shard.leaderId = known.leaderId;
        shard.leaderAddress = known.leaderAddress;
        shard.leaderFromHint = known.leaderFromHint;
        shard.term = known.term;
      }
      if (shard.leaderId !== undefined && shard.leaderAddress === undefined) {
        shard.leaderAddress = shard.replicas.find((replica) => replica.nodeId === shard.leaderId)?.address || undefined;
      }
    }
    this.slotCount = slotCount;
    this.shards = incoming;
    this.hot.update(response.hot, response.mapVersion);
    return true;
  }

  /** A NOT_LEADER reply named the leader (Raft: followers know the current leader, section 5.2). */
  noteLeaderHint(shardId: number, leaderId: string | undefined, leaderAddress: string | undefined): boolean {
    const shard = this.byShardId(shardId);
    if (shard === undefined || (leaderId === undefined && leaderAddress === undefined)) return false;
    const address = leaderAddress ?? shard.replicas.find((replica) => replica.nodeId === leaderId)?.address ?? undefined;
    if (address === undefined) return false;
    shard.leaderId = leaderId ?? shard.replicas.find((replica) => replica.address === address)?.nodeId ?? address;
    shard.leaderAddress = address;
    shard.leaderFromHint = true;
    return true;
  }

  /** The believed leader did not answer: forget it so the next attempt asks the others. */
  forgetLeader(shardId: number, address: string): void {
    const shard = this.byShardId(shardId);
    if (shard !== undefined && shard.leaderAddress === address) {
      shard.leaderId = undefined;
      shard.leaderAddress = undefined;
      shard.leaderFromHint = false;
    }
  }
}
