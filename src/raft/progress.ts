/**
 * The leader's view of one peer (etcd tracker.Progress and Inflights): replication state machine
 * Probe -> Replicate -> Snapshot (etcd-io/raft design doc "Progress"), bounded pipelining.
 */
import { assert } from "../util/assert.js";
import { type LogIndex, type PeerProgress, ProgressState } from "./types.js";

/**
 * In-flight App messages to one peer in Replicate state: a ring of (last index, bytes). Full when
 * it holds maxMessages messages or maxBytes bytes (0 = no byte bound): flow control.
 */
export class Inflights {
  private readonly indexes: Float64Array;
  private readonly sizes: Float64Array;
  private start = 0;
  count = 0;
  bytes = 0;

  constructor(
    readonly maxMessages: number,
    readonly maxBytes: number,
  ) {
    assert(Number.isInteger(maxMessages) && maxMessages > 0, "inflights: maxMessages must be > 0");
    this.indexes = new Float64Array(maxMessages);
    this.sizes = new Float64Array(maxMessages);
  }

  add(index: LogIndex, bytes: number): void {
    assert(this.count < this.maxMessages, "inflights: add while full");
    assert(this.count === 0 || index > this.indexes[(this.start + this.count - 1) % this.maxMessages]!, "inflights: indexes must grow");
    const slot = (this.start + this.count) % this.maxMessages;
    this.indexes[slot] = index;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** The peer acknowledged everything up to index: free those messages. */
  freeLE(index: LogIndex): void {
    while (this.count > 0 && this.indexes[this.start]! <= index) {
      this.bytes -= this.sizes[this.start]!;
      this.start = (this.start + 1) % this.maxMessages;
      this.count--;
    }
    if (this.count === 0) {
      this.start = 0;
      this.bytes = 0;
    }
  }

  full(): boolean {
    return this.count === this.maxMessages || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}

export class Progress {
  /** Highest index known to be replicated on the peer. Invariant: match < next. */
  match: LogIndex = 0;
  /** Next index to send. */
  next: LogIndex;
  state: ProgressState = ProgressState.Probe;
  /** Highest commit index sent to the peer (so an empty App is sent only when it teaches something). */
  sentCommit: LogIndex = 0;
  /** Snapshot state: index of the snapshot in flight. */
  pendingSnapshot: LogIndex = 0;
  /** Heard from since the last CheckQuorum (thesis 6.2). */
  recentActive = false;
  /** Probe: one App is in flight; Replicate: inflights are full. */
  msgAppFlowPaused = false;
  /**
   * A heartbeat response arrived while replication is stalled: send one App even if it is empty
   * (with full inflights whose messages were all lost, only an empty App can restart the flow).
   */
  nudged = false;
  /** Highest heartbeat round the peer acknowledged (ReadIndex and leases, thesis 6.4). */
  ackedRound = 0;
  readonly inflights: Inflights;

  constructor(
    next: LogIndex,
    public isLearner: boolean,
    maxInflightMessages: number,
    maxInflightBytes: number,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMessages, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.nudged = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // Coming back from a snapshot: the peer has at least the snapshot, so probe right after it.
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
    this.sentCommit = Math.min(this.sentCommit, this.next - 1);
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: LogIndex): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
    this.sentCommit = Math.min(this.sentCommit, this.next - 1);
  }

  /** An App carrying `entries` entries of `bytes` bytes was sent. */
  sentEntries(entries: number, bytes: number): void {
    if (this.state === ProgressState.Replicate) {
      if (entries > 0) {
        this.next += entries;
        this.inflights.add(this.next - 1, bytes);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else if (this.state === ProgressState.Probe) {
      // Any App in Probe is a probe: wait for its answer (or a heartbeat response).
      this.msgAppFlowPaused = true;
    } else {
      assert(false, `progress: sent entries in state ${ProgressState[this.state]}`);
    }
  }

  canBumpCommit(commit: LogIndex): boolean {
    // The peer may only learn commits up to what we know it has (next - 1).
    return commit > this.sentCommit && this.sentCommit < this.next - 1;
  }

  sentCommitTo(commit: LogIndex): void {
    this.sentCommit = commit;
  }

  /** An AppResp acknowledged index n. Returns true when match moved. */
  maybeUpdate(n: LogIndex): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * An App at `rejected` was refused; matchHint is the follower's hint (after findConflictByTerm).
   * Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: LogIndex, matchHint: LogIndex): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probe: only the rejection of the probe in flight (at next - 1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    if (this.state === ProgressState.Snapshot) return true;
    return this.msgAppFlowPaused;
  }

  /** Leader resets every peer at the start of its term (etcd reset()). */
  resetForTerm(lastIndex: LogIndex): void {
    this.resetState(ProgressState.Probe);
    this.match = 0;
    this.next = lastIndex + 1;
    this.sentCommit = 0;
    this.recentActive = false;
    this.ackedRound = 0;
  }

  toPeerProgress(): PeerProgress {
    return {
      match: this.match,
      next: this.next,
      state: this.state,
      recentActive: this.recentActive,
      inflightMessages: this.inflights.count,
      inflightBytes: this.inflights.bytes,
      isLearner: this.isLearner,
      pendingSnapshot: this.pendingSnapshot,
    };
  }
}
