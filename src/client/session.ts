import { assert } from "../util/assert.js";

/**
 * One exactly-once session on one shard (Raft thesis section 6.3): the client id the shard's state
 * machine assigned, and the sequence numbers the client has handed out. Every mutation carries
 * (clientId, seq, firstUnackedSeq); the state machine saves the result of each seq it has not been
 * told to forget, so a retried seq returns the saved result instead of applying twice.
 *
 * Invariants: seqs are handed out 1, 2, 3, ... and never reused; firstUnackedSeq() is the lowest
 * seq not yet completed (or nextSeq when none is outstanding), so it never passes a seq the client
 * may still retry.
 */
export class ShardSession {
  readonly shardId: number;
  readonly clientId: bigint;
  /** Set when the shard said the session expired: it must not be used for any new seq. */
  expired = false;
  /** monotonicMs of the last request that carried this session (keeps it alive on its own). */
  lastUsedAtMs: number;
  private nextSeq = 1n;
  /** Every seq below this is completed. */
  private watermark = 1n;
  /** Completed seqs at or above the watermark (bounded by the client's in-flight limit). */
  private readonly completedAbove = new Set<bigint>();

  constructor(shardId: number, clientId: bigint, nowMs: number) {
    assert(clientId > 0n, "client id must be positive");
    this.shardId = shardId;
    this.clientId = clientId;
    this.lastUsedAtMs = nowMs;
  }

  allocate(): bigint {
    assert(!this.expired, "allocating a seq in an expired session");
    const seq = this.nextSeq;
    this.nextSeq++;
    return seq;
  }

  /**
   * The client will never send this seq again (answered, definitively failed, or given up on as
   * ambiguous). The server may then forget its result.
   */
  complete(seq: bigint): void {
    assert(seq >= 1n && seq < this.nextSeq, `completing a seq that was never allocated: ${seq}`);
    if (seq < this.watermark) return;
    this.completedAbove.add(seq);
    while (this.completedAbove.delete(this.watermark)) this.watermark++;
  }

  firstUnackedSeq(): bigint {
    return this.watermark;
  }

  get outstandingCount(): number {
    return Number(this.nextSeq - this.watermark) - this.completedAbove.size;
  }
}
