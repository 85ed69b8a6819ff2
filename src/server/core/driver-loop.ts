/**
 * The multi-raft driver loop: the only place that orders storage writes, peer sends and applies
 * for every Raft group of a node. It is written against ports (ports.ts) only: TallyNode (node.ts)
 * binds LevelDB, the peer transport and the process clock. One iterate():
 *
 *   1. create/remove replicas the map asks for (their own synced batch); tick every group up to
 *      the monotonic clock; tell each group's Raft how far the finished writes made its log
 *      durable (RawNode.persisted(): with asyncStorageWrites a leader counts its own log toward
 *      commit only then); step inbound messages; run queued loop actions; propose queued
 *      commands (as few entries per group as maxEntryBytes allows) and start ReadIndex rounds;
 *   2. collect Ready from every group and send its appends and heartbeats AT ONCE, before the
 *      fsync (Raft thesis 10.2.1; docs/adr/0003-send-before-fsync.md);
 *   3. build ONE batch for all groups (group commit): snapshots, entries, hard states, and the
 *      effects of applying the committed entries IN MEMORY with the applied index (so a crash
 *      never half-applies an entry: docs/adr/0004-apply-before-write.md); answer the writes
 *      applied (committed = durable on a quorum) and serve reads; advance every group;
 *   4. hand the batch to the store, fsynced only when a Ready has mustSync (new entries, term or
 *      vote), WITHOUT waiting for it: the next iteration steps acknowledgements and proposes while
 *      it is written (etcd's asynchronous storage writes), and the store joins the batches queued
 *      behind the write in flight into one;
 *   5. once that write and every earlier one are durable, send every other message (votes,
 *      responses, snapshots) and report the groups' new last entries for step 1.
 * docs/architecture.md ("The Ready contract as implemented") lists each step and every deviation
 * from the strict Ready order in one place.
 */
import { MessageType, Role, type Message, type Ready } from "../../raft/types.js";
import { entryBytes } from "../../raft/util.js";
import { UnavailableError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import type { LogBatch, LoopGroup, LoopPorts, LoopStats } from "./ports.js";
import { stageTrace } from "./stage-trace.js";

/** Bounded: the transport drops beyond its own bound; this bounds what waits for one iteration. */
export const INBOUND_MESSAGES_MAX = 200_000;
/**
 * Entry bytes of inbound appends one iteration steps (at least one message): a follower catching
 * up receives up to maxInflightBytes of 1 MiB appends at once, and appending each MiB to the
 * batch costs milliseconds; the rest waits, in order, for the next iteration (a delay Raft allows).
 */
export const INBOUND_APPEND_BYTES_PER_ITERATION = 512 * 1024;
/** Never tick more than this many times in one catch-up (a long pause already expired every lease). */
export const CATCH_UP_TICKS_MAX = 200;
/**
 * Committed entry bytes one iteration hands out for applying, over all groups (each Ready already
 * holds at most the raw node's maxCommittedSizePerReady, or one entry): past it, the other groups'
 * committed entries wait for the next iteration, so a node with many busy shards applies a few
 * milliseconds per event-loop turn, not the sum of them. Groups take turns being first.
 */
export const APPLY_BYTES_PER_ITERATION_MAX = 128 * 1024;
/**
 * What one iteration's applies should cost, over all groups: the byte budget above shrinks to
 * what the measured apply cost per byte says fits in this time (a cold restart, a table of 10 M
 * counters missing the cache), never below one Ready.
 */
export const APPLY_MS_PER_ITERATION_TARGET = 4;
/** The budget before any apply was measured. */
export const APPLY_BYTES_FIRST = 16 * 1024;

export interface DriverLoopOptions {
  nodeId: number;
  /** Milliseconds per Raft tick. */
  tickMs: number;
  /**
   * Raft's heartbeatTicks: every this many of the loop's ticks is the node's shared heartbeat round,
   * on which every group it leads heartbeats (one frame per peer for all of them, not one per
   * group). Undefined: each group keeps its own interval.
   */
  heartbeatTicks?: number;
  logger: Logger;
  stats: LoopStats;
  /** Client address of a node, for NOT_LEADER hints. */
  leaderAddress: (id: number) => string | undefined;
  /** The chaos harness's planted bug (see GroupReplica.failInflight); never set in production. */
  plantedNotLeaderAfterPropose?: boolean;
  /** A replica learned of a new leader (or lost its leader). */
  onLeaderChange?: () => void;
  /** The loop died (storage corruption, a failed fsync); every waiter has been failed already. */
  onFatal?: (error: Error) => void;
}

/** What waits for one write: the messages that promise it, the groups' new last entries, callbacks. */
interface DurableWork<TGroup> {
  late: Array<[number, Message]>;
  /** [group, index, term] of each Ready's last new entry. */
  persisted: Array<[TGroup, number, number]>;
  afterDurable: Array<() => void>;
}

interface PendingWrite<TGroup> {
  /** The store's promise: the same one for batches it joined into one write. */
  written: Promise<void>;
  works: Array<DurableWork<TGroup>>;
  sync: boolean;
  startedAt: number;
}

export class DriverLoop<TGroup extends LoopGroup, TBatch extends LogBatch> {
  private readonly store: LoopPorts<TGroup, TBatch>["store"];
  private readonly network: LoopPorts<TGroup, TBatch>["network"];
  private readonly clock: LoopPorts<TGroup, TBatch>["clock"];
  private readonly groups: LoopPorts<TGroup, TBatch>["groups"];
  private readonly machines: LoopPorts<TGroup, TBatch>["machines"];
  private readonly log: Logger;
  private readonly stats: LoopStats;
  private inbound: Array<[number, Message]> = [];
  private inboundDropped = 0;
  private lastTickMs = 0;
  /** Ticks given since the loop started: the shared heartbeat rounds are counted from it. */
  private ticksGiven = 0;
  private running = false;
  private wakeResolve: (() => void) | undefined;
  private wakePending = false;
  private loopDone: Promise<void> | undefined;
  private fatalError: Error | undefined;
  /** Work that must touch Raft inside the loop (conf changes, transfers), run before proposing. */
  private loopActions: Array<() => void> = [];
  /** Writes to add to the next iteration's batch (state changed outside Ready: an unsafe recovery, a checkpoint's commit). */
  private pendingWrites: Array<(batch: TBatch) => void> = [];
  /** Run once the batch holding the pending writes is durable. */
  private pendingAfterDurable: Array<() => void> = [];
  /** Settles once every write handed to the store so far is done and its work has run; never rejects. */
  private writeTail: Promise<unknown> = Promise.resolve();
  /** The last write handed to the store, until it is done: later batches the store joins to it share its completion. */
  private lastWrite: PendingWrite<TGroup> | undefined;
  /** Logs made durable by finished writes, for reportPersisted() at the next iteration. */
  private persisted: Array<[TGroup, number, number]> = [];
  /**
   * Measured apply cost (ms per committed entry byte), smoothed; sets the iteration's byte budget.
   * It starts dear (a budget of APPLY_BYTES_FIRST): a restarted node's first applies run cold.
   */
  private applyMsPerByte = APPLY_MS_PER_ITERATION_TARGET / APPLY_BYTES_FIRST;

  constructor(
    ports: LoopPorts<TGroup, TBatch>,
    private readonly options: DriverLoopOptions,
  ) {
    this.store = ports.store;
    this.network = ports.network;
    this.clock = ports.clock;
    this.groups = ports.groups;
    this.machines = ports.machines;
    this.log = options.logger;
    this.stats = options.stats;
  }

  /** Starts iterating; the groups are restored and the network bound before this. */
  start(): void {
    this.lastTickMs = this.clock.monotonicMs();
    this.running = true;
    stageTrace.start(`node ${this.options.nodeId}`);
    this.loopDone = this.runLoop();
  }

  /** Stops after the current iteration (its write completes) and resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loopDone;
    await this.writeTail; // the writes in flight (a failed one has stopped the loop already)
    stageTrace.stop();
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Why the loop died (storage failure), if it did. */
  get failure(): Error | undefined {
    return this.fatalError;
  }

  get inboundDroppedCount(): number {
    return this.inboundDropped;
  }

  checkAlive(): void {
    if (this.fatalError) throw new UnavailableError(`node ${this.options.nodeId} has stopped: ${this.fatalError.message}`);
    if (!this.running) throw new UnavailableError(`node ${this.options.nodeId} is not running`);
  }

  /** Inbound Raft messages from the network, stepped at the next iteration. */
  receive(batch: Array<[number, Message]>): void {
    if (this.inbound.length + batch.length > INBOUND_MESSAGES_MAX) {
      this.inboundDropped += batch.length; // Raft retransmits.
      return;
    }
    for (const item of batch) this.inbound.push(item);
    if (stageTrace.enabled) traceInbound(batch);
    this.wake();
  }

  wake(): void {
    if (stageTrace.enabled) stageTrace.wake();
    this.wakePending = true;
    const resolve = this.wakeResolve;
    if (resolve !== undefined) {
      this.wakeResolve = undefined;
      resolve();
    }
  }

  /** Runs `action` inside the loop, before proposals (Raft is never touched between Ready and advance). */
  inLoop<T>(action: () => T): Promise<T> {
    this.checkAlive();
    return new Promise((resolve, reject) => {
      this.loopActions.push(() => {
        try {
          resolve(action());
        } catch (error) {
          reject(error as Error);
        }
      });
      this.wake();
    });
  }

  /** Adds `write` to the next iteration's batch, which is then fsynced; `afterDurable` runs once it is written. */
  queueWrite(write: (batch: TBatch) => void, afterDurable?: () => void): void {
    this.pendingWrites.push(write);
    if (afterDurable !== undefined) this.pendingAfterDurable.push(afterDurable);
    this.wake();
  }

  private waitForWork(): Promise<void> {
    if (this.wakePending) {
      this.wakePending = false;
      // A macrotask, not a resolved promise: back-to-back iterations (a replay, a burst) let I/O
      // and timers run between them, so no run of them holds the event loop longer than one.
      return this.clock.yieldNow();
    }
    const untilTick = Math.max(1, this.lastTickMs + this.options.tickMs - this.clock.monotonicMs());
    return new Promise<void>((resolve) => {
      const cancel = this.clock.setTimer(untilTick, () => {
        this.wakeResolve = undefined;
        resolve();
      });
      this.wakeResolve = () => {
        cancel();
        resolve();
      };
    });
  }

  /** Ticks every group for the ticks the monotonic clock owes (also called at request time, before a lease read). */
  catchUpTicks(): void {
    const now = this.clock.monotonicMs();
    const tickMs = this.options.tickMs;
    let ticks = Math.floor((now - this.lastTickMs) / tickMs);
    if (ticks <= 0) return;
    if (ticks > CATCH_UP_TICKS_MAX) {
      this.log.warn({ missedTicks: ticks }, "driver loop was paused; catching up");
      ticks = CATCH_UP_TICKS_MAX;
      this.lastTickMs = now;
    } else {
      this.lastTickMs += ticks * tickMs;
    }
    const heartbeatTicks = this.options.heartbeatTicks;
    for (let i = 0; i < ticks; i++) {
      this.ticksGiven++;
      const heartbeatDue = heartbeatTicks !== undefined && this.ticksGiven % heartbeatTicks === 0;
      for (const replica of this.groups.all()) replica.raw.tick(heartbeatDue);
    }
    for (const replica of this.groups.all()) replica.expire(now);
  }

  private async runLoop(): Promise<void> {
    try {
      while (this.running) {
        await this.iterate();
        if (this.running) await this.waitForWork();
      }
    } catch (error) {
      this.fail(error as Error);
    }
  }

  /** The loop dies (storage corruption, a failed fsync): every waiter is failed, onFatal runs. */
  private fail(error: Error): void {
    if (this.fatalError !== undefined) return;
    this.fatalError = error;
    this.running = false;
    this.log.fatal({ err: error }, "driver loop failed; the node stops serving");
    for (const replica of this.groups.all())
      replica.failInflight(new UnavailableError(`node ${this.options.nodeId} stopped: ${error.message}`));
    this.options.onFatal?.(error);
    this.wake();
  }

  private async iterate(): Promise<void> {
    this.stats.iterations++;
    const startedAt = stageTrace.enabled ? performance.now() : 0;
    if (stageTrace.enabled) stageTrace.iterationStarts(startedAt);
    await this.groups.changeGroups();
    if (!this.running) return; // a write failed meanwhile
    this.catchUpTicks();
    this.reportPersisted();
    this.stepInbound();
    this.runLoopActions();
    const nowWall = this.clock.wallClockMs();
    for (const replica of this.groups.all()) {
      replica.proposeQueued(nowWall, this.options.leaderAddress);
      replica.issueReadIndex(this.options.leaderAddress);
    }

    const groups = [...this.groups.all()];
    const { readies, applyBytes } = this.collectReadies(groups);
    if (readies.length === 0 && this.pendingWrites.length === 0) return;

    const late = this.sendBeforeWrite(readies);

    // 2. Build ONE batch for every group (the store joins it with the batches of the iterations
    // that ran while the previous write was in flight): snapshots, new entries, hard states, and the effects of
    // applying committed entries together with the applied index (so a crash never half-applies).
    // Applying in memory before the write is safe: committed entries are durable on a quorum (a
    // leader counts its own log only once persisted() said so), and a crash replays them from the
    // log. So the writes applied here are answered now, and ReadIndex reads served.
    const batch = this.store.batch();
    const work: DurableWork<TGroup> = { late, persisted: [], afterDurable: this.pendingAfterDurable.splice(0) };
    const applyStartMs = this.clock.monotonicMs();
    const mustSync = this.buildBatch(readies, batch);
    if (applyBytes > 0) this.learnApplyCost(this.clock.monotonicMs() - applyStartMs, applyBytes);
    for (const [replica, ready] of readies) {
      // Only a leader counts its own log (a follower's acknowledgement is its AppResp, in `late`).
      const last = ready.entries[ready.entries.length - 1];
      if (last !== undefined && replica.isLeader) work.persisted.push([replica, last.index, last.term]);
      replica.completeApplied();
      for (const readState of ready.readStates) replica.onReadState(readState.index, readState.context);
      replica.serveAppliedReads();
    }

    // 3. Advance, and hand the batch to the store; the next iteration need not wait for it.
    for (const [replica] of readies) replica.raw.advance();
    // Including a group whose committed entries waited for the apply budget.
    if (groups.some((replica) => replica.raw.hasReady())) this.wakePending = true;
    if (stageTrace.enabled) stageTrace.record("iteration", performance.now() - startedAt);
    this.startWrite(batch, mustSync, work);
  }

  /**
   * Hands the iteration's batch to the store at once (writes land in call order, and the store
   * joins the writes queued behind the one in flight into one: group commit), so the next
   * iteration can step acknowledgements and propose while it is written. When it is durable, and
   * every earlier one too: the messages that promise it leave, the afterDurable callbacks run, and
   * the next iteration tells Raft (reportPersisted()). A batch holding nothing runs its work as soon
   * as the writes before it are done (at once when none is in flight).
   */
  private startWrite(batch: TBatch, sync: boolean, work: DurableWork<TGroup>): void {
    const last = this.lastWrite;
    if (batch.size === 0) {
      if (last === undefined) this.finishWrites([work]);
      else last.works.push(work); // done once the last write (and so every earlier one) is
      return;
    }
    const written = this.store.write(batch, { sync });
    if (last !== undefined && last.written === written) {
      // The store joined this batch to the write queued last: one completion, one flush.
      last.works.push(work);
      last.sync ||= sync;
      return;
    }
    const pending: PendingWrite<TGroup> = { written, works: [work], sync, startedAt: stageTrace.enabled ? performance.now() : 0 };
    this.lastWrite = pending;
    this.writeTail = Promise.all([this.writeTail, written]).then(
      () => {
        if (this.lastWrite === pending) this.lastWrite = undefined;
        if (this.fatalError !== undefined) return;
        if (pending.sync) this.stats.syncs++;
        if (stageTrace.enabled) stageTrace.record(pending.sync ? "syncWrite" : "write", performance.now() - pending.startedAt);
        this.finishWrites(pending.works);
      },
      (error: unknown) => {
        if (this.lastWrite === pending) this.lastWrite = undefined;
        this.fail(error as Error);
      },
    );
  }

  /** A write is durable, and every earlier one: run what waited for it, in order, with one flush. */
  private finishWrites(works: Array<DurableWork<TGroup>>): void {
    let late = 0;
    let persisted = 0;
    for (const work of works) {
      for (const callback of work.afterDurable) callback();
      for (const [shardId, message] of work.late) this.network.send(message.to, shardId, message);
      late += work.late.length;
      for (const mark of work.persisted) this.persisted.push(mark);
      persisted += work.persisted.length;
      if (stageTrace.enabled) traceWritten(work);
    }
    if (late > 0) this.network.flush();
    if (persisted > 0) this.wake();
  }

  /** Tells each group's Raft how far its log is durable here (a leader counts itself toward commit). */
  private reportPersisted(): void {
    if (this.persisted.length === 0) return;
    const marks = this.persisted;
    this.persisted = [];
    for (const [replica, index, term] of marks) if (this.groups.get(replica.shardId) === replica) replica.raw.persisted(index, term);
  }

  /**
   * Every group's Ready, in the groups' order, with at most APPLY_BYTES_PER_ITERATION_MAX of
   * committed entries (plus one Ready's) among them: once the budget is spent the other groups'
   * Readies come without committed entries (their apply held for this call only). The group the
   * budget goes to first turns with each iteration.
   */
  private collectReadies(groups: TGroup[]): { readies: Array<[TGroup, Ready]>; applyBytes: number } {
    const readies: Array<[TGroup, Ready] | undefined> = new Array(groups.length);
    const allowed = this.applyBudgetBytes();
    let budget = allowed;
    const first = groups.length > 0 ? this.stats.iterations % groups.length : 0;
    for (let k = 0; k < groups.length; k++) {
      const at = (first + k) % groups.length;
      const raw = groups[at]!.raw;
      const held = raw.holdApply;
      if (stageTrace.enabled) stageTrace.applyHold(groups[at]!.shardId, held, performance.now());
      if (budget <= 0) raw.holdApply = true;
      if (raw.hasReady()) {
        const ready = raw.ready();
        for (const entry of ready.committedEntries) budget -= entryBytes(entry);
        readies[at] = [groups[at]!, ready];
      }
      raw.holdApply = held;
    }
    const applyBytes = allowed - budget;
    this.stats.appliedBytesPerIterationMax = Math.max(this.stats.appliedBytesPerIterationMax, applyBytes);
    return { readies: readies.filter((ready) => ready !== undefined), applyBytes };
  }

  /** This iteration's committed-entry byte budget: APPLY_MS_PER_ITERATION_TARGET at the measured cost, at most APPLY_BYTES_PER_ITERATION_MAX. */
  private applyBudgetBytes(): number {
    if (this.applyMsPerByte <= 0) return APPLY_BYTES_PER_ITERATION_MAX;
    return Math.max(1, Math.min(APPLY_BYTES_PER_ITERATION_MAX, Math.floor(APPLY_MS_PER_ITERATION_TARGET / this.applyMsPerByte)));
  }

  /**
   * Folds one iteration's apply time (its batch building, of which applying is the most) into the
   * cost per byte: a dearer sample counts at once (the next iteration must not repeat a long one),
   * a cheaper one slowly (a single quick iteration says little).
   */
  private learnApplyCost(elapsedMs: number, bytes: number): void {
    const sample = Math.max(0, elapsedMs) / bytes;
    this.applyMsPerByte = sample > this.applyMsPerByte ? sample : this.applyMsPerByte * 0.9 + sample * 0.1;
  }

  private stepInbound(): void {
    if (this.inbound.length === 0) return;
    const inbound = this.inbound;
    this.inbound = [];
    let appendBytes = 0;
    for (let i = 0; i < inbound.length; i++) {
      if (appendBytes >= INBOUND_APPEND_BYTES_PER_ITERATION) {
        this.inbound = inbound.slice(i); // receive() cannot run during this synchronous loop
        this.wakePending = true;
        return;
      }
      const [groupId, message] = inbound[i]!;
      for (const entry of message.entries) appendBytes += entry.data.byteLength;
      const replica = this.groups.get(groupId);
      if (replica === undefined) continue;
      try {
        replica.raw.step(message);
      } catch (error) {
        // Name the group and the message: a Raft assertion alone does not say where it happened.
        (error as Error).message += ` (group ${groupId}, message type ${message.type} from node ${message.from}, term ${message.term})`;
        throw error;
      }
    }
  }

  private runLoopActions(): void {
    if (this.loopActions.length === 0) return;
    const actions = this.loopActions;
    this.loopActions = [];
    for (const action of actions) action();
  }

  /** Sends every Ready's App and Heartbeat messages now; returns the rest, which wait for the write. */
  private sendBeforeWrite(readies: Array<[TGroup, Ready]>): Array<[number, Message]> {
    // Thesis 10.2.1: a leader may write its log in parallel with replicating it, so its App and
    // Heartbeat messages leave before the fsync. Safe here because iterations are sequential: the
    // leader's own write completes before it steps any acknowledgement, so it never counts itself
    // toward a commit before its entries are durable. Everything else (votes, acknowledgements)
    // promises durable state and waits for the write.
    const late: Array<[number, Message]> = [];
    for (const [replica, ready] of readies) {
      for (const message of ready.messages) {
        if (message.type === MessageType.App || message.type === MessageType.Heartbeat)
          this.network.send(message.to, replica.shardId, message);
        else late.push([replica.shardId, message]);
      }
    }
    this.network.flush();
    return late;
  }

  /** Fills the iteration's batch (queued writes first, then every Ready in order); returns whether it must be fsynced. */
  private buildBatch(readies: Array<[TGroup, Ready]>, batch: TBatch): boolean {
    let mustSync = this.pendingWrites.length > 0;
    for (const write of this.pendingWrites.splice(0)) write(batch);
    for (const [replica, ready] of readies) {
      if (ready.snapshot !== undefined && ready.snapshot.metadata.index > 0) this.machines.installSnapshot(replica, ready.snapshot, batch);
      if (ready.entries.length > 0) {
        const first = ready.entries[0]!.index;
        const previousLast = replica.storage.lastIndex();
        replica.storage.append(ready.entries);
        if (first <= previousLast) batch.truncateAfter(replica.shardId, first - 1, previousLast);
        batch.appendEntries(replica.shardId, ready.entries);
        this.stats.entriesWritten += ready.entries.length;
      }
      if (ready.hardState !== undefined) {
        replica.storage.setHardState(ready.hardState);
        batch.setHardState(replica.shardId, ready.hardState);
      }
      mustSync ||= ready.mustSync;
      if (ready.softState !== undefined) this.onSoftState(replica, ready.softState.role, ready.softState.leader);
      this.machines.apply(replica, ready.committedEntries, batch);
    }
    return mustSync;
  }

  private onSoftState(replica: TGroup, role: Role, leader: number): void {
    const wasLeader = replica.isLeader;
    replica.role = role;
    const leaderChanged = leader !== replica.leader;
    if (leaderChanged) this.stats.leaderChanges++;
    replica.leader = leader;
    if (leaderChanged) this.options.onLeaderChange?.();
    if (role === Role.Leader && !wasLeader) {
      this.log.info({ shard: replica.shardId, term: replica.raw.term }, "became leader");
    } else if (role !== Role.Leader && wasLeader) {
      replica.failInflight(replica.notLeaderError(this.options.leaderAddress), this.options.plantedNotLeaderAfterPropose ?? false);
    }
  }
}

/** Stage trace (TALLY_TRACE_ADDS): a follower's App with entries arrived; a leader's ack arrived. */
function traceInbound(batch: Array<[number, Message]>): void {
  const now = performance.now();
  for (const [groupId, message] of batch) {
    if (message.type === MessageType.App && message.entries.length > 0) stageTrace.appReceived(groupId, now);
    else if (message.type === MessageType.AppResp && !message.reject) stageTrace.acked(groupId, message.index, now);
  }
}

/** Stage trace: a write is durable and the messages that waited for it left. */
function traceWritten(work: DurableWork<LoopGroup>): void {
  const now = performance.now();
  for (const [group, index] of work.persisted) stageTrace.written(group.shardId, index, now);
  for (const [groupId, message] of work.late) if (message.type === MessageType.AppResp) stageTrace.appAnswered(groupId, now);
}
