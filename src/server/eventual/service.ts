/**
 * CounterService.EventualAdd and EventualGet for one node (proto/tally.proto; docs/eventual.md), and
 * the lifetime of the node's eventual buffer and flusher.
 *
 * EventualAdd validates every op first (bad input refuses the whole request and buffers nothing),
 * then appends them to the buffer as one record and answers when its group is durable. The adds
 * reach the owning shards through the flusher (flusher.ts), exactly once.
 *
 * EventualGet reads the committed value (STALE: this node's replica if it has one; LINEARIZABLE:
 * the shard's leader, after this node's pending flush of the key is applied, within the request
 * deadline) and reports this node's unflushed delta of the key and its age. The other nodes'
 * unflushed adds are not visible anywhere until they flush: that is the staleness of the mode.
 */
import type { Registry } from "prom-client";
import type {
  EventualAddRequestMessage,
  EventualAddResponseInput,
  EventualGetRequestMessage,
  EventualGetResponseInput,
} from "../../api/proto.js";
import { HotIndex } from "../../meta/hot.js";
import { slotOfRange } from "../../meta/slots.js";
import { describeKey } from "../../shard/keys.js";
import { requestIdProblem } from "../../shard/commands.js";
import { wallClockMs } from "../../util/clock.js";
import { FailedPreconditionError, InvalidArgumentError, TallyError, UnavailableError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { encodePackedAdds, scanPackedAdds, type PackedAdd } from "../../util/packed-adds.js";
import type { TallyNode } from "../node.js";
import { consistencyOf, fence, i64, int64Wire, key as keyField, u64 } from "../rpc/fields.js";
import { stageTrace, type EventualTrace } from "../core/stage-trace.js";
import { EventualBuffer } from "./buffer.js";
import { Flusher } from "./flusher.js";
import { eventualMetrics, type EventualMetrics } from "./metrics.js";
import { ShardWriter } from "./shard-writer.js";

export class EventualService {
  private readonly hotIndex = new HotIndex();

  private constructor(
    private readonly node: TallyNode,
    readonly buffer: EventualBuffer,
    private readonly writer: ShardWriter,
    readonly flusher: Flusher,
    readonly metrics: EventualMetrics,
  ) {}

  /** Opens the buffer in the node's data directory (replaying it) and starts flushing. */
  static async start(node: TallyNode, log: Logger, registry?: Registry): Promise<EventualService> {
    const settings = node.config.eventual;
    const buffer = await EventualBuffer.open({
      dataDir: node.self.dataDir,
      fsync: settings.fsync,
      compactBytes: settings.bufferCompactBytes,
      nowMs: wallClockMs,
    });
    if (buffer.tornBytes > 0) log.warn({ bytes: buffer.tornBytes }, "eventual buffer: cut a torn tail (adds never acknowledged)");
    const metrics = eventualMetrics(buffer, registry, wallClockMs);
    buffer.onGroup = (seconds) => metrics.syncSeconds.observe(seconds);
    const writer = new ShardWriter(node);
    const { limits, cluster } = node.config;
    const flusher = new Flusher(
      node,
      buffer,
      writer,
      {
        flushIntervalMs: settings.flushIntervalMs,
        requestTimeoutMs: limits.requestTimeoutMs,
        maxBatchOps: limits.maxBatchOps,
        maxEntryBytes: limits.maxEntryBytes,
        sessionTimeoutMs: cluster.sessionTimeoutMs,
      },
      metrics,
      log,
    );
    flusher.start();
    const replayed = buffer.state.flushes.size;
    if (replayed > 0 || buffer.state.pending.size > 0)
      log.info({ flushes: replayed, keys: buffer.state.pending.size }, "eventual buffer replayed: re-sending its flushes");
    return new EventualService(node, buffer, writer, flusher, metrics);
  }

  async close(): Promise<void> {
    await this.flusher.close();
    this.writer.close();
    await this.buffer.close();
  }

  async eventualAdd(request: EventualAddRequestMessage): Promise<EventualAddResponseInput> {
    const startedMs = performance.now();
    const trace: EventualTrace | undefined = stageTrace.sample()
      ? { startedAt: startedMs, queuedAt: 0, writeAt: 0, durableAt: 0 }
      : undefined;
    const { count, packed } = this.validAdds(request);
    const requestId = typeof request.requestId === "string" && request.requestId !== "" ? request.requestId : undefined;
    if (requestId !== undefined) {
      const problem = requestIdProblem(requestId);
      if (problem !== undefined) throw new InvalidArgumentError(`request_id ${problem}`);
    }
    // A retry of a request buffered here is answered as such, never refused.
    if (request.acceptUnflushable !== true && (requestId === undefined || !this.buffer.knowsRequest(requestId)))
      this.refuseIfLeaderSilent(packed);
    if (await this.buffer.addPacked(packed, requestId, trace)) this.metrics.adds.inc(count);
    const answeredMs = performance.now();
    if (trace !== undefined) stageTrace.finishEventual(trace, answeredMs);
    this.metrics.addSeconds.observe((answeredMs - startedMs) / 1000);
    return { accepted: count, nodeId: this.node.nodeId };
  }

  /**
   * Refuses the adds (UNAVAILABLE, nothing buffered) when the replica here of one of their shards
   * has not heard from a leader reaching a quorum for eventual.refuseAfterLeaderSilenceMs: this
   * node could not flush them before it does (cut off by a partition, or the shard is electing),
   * so they would stay invisible in its buffer while another node may flush them at once. The
   * client moves on to the next node, and sets accept_unflushable once every node refused.
   * Shards without a replica here are not judged (this node cannot tell).
   */
  private refuseIfLeaderSilent(packed: Uint8Array): void {
    const silenceMs = this.node.config.eventual.refuseAfterLeaderSilenceMs;
    if (silenceMs === 0) return;
    const tickMs = this.node.config.cluster.tickMs;
    let silent: Array<{ shardId: number; slotStart: number; slotEnd: number; ms: number }> | undefined;
    for (const replica of this.node.replicas.values()) {
      const ms = replica.raw.leaderContactTicks() * tickMs;
      if (ms < silenceMs) continue;
      const { slotStart, slotEnd } = replica.descriptor;
      (silent ??= []).push({ shardId: replica.shardId, slotStart, slotEnd, ms });
    }
    if (silent === undefined) return;
    for (let at = 0; at + 2 <= packed.length;) {
      const start = at + 2;
      const end = start + ((packed[at]! << 8) | packed[at + 1]!);
      const slot = slotOfRange(packed, start, end);
      at = end + 8;
      const shard = silent.find((range) => slot >= range.slotStart && slot < range.slotEnd);
      if (shard === undefined) continue;
      this.metrics.refusedLeaderSilent.inc();
      const since = shard.ms >= Number.MAX_SAFE_INTEGER / 2 ? "knows no leader" : `has not heard from its leader for ${shard.ms} ms`;
      throw new UnavailableError(
        `node ${this.node.nodeId}'s replica of shard ${shard.shardId} ${since}: eventual adds buffered here would wait until it can flush them; ` +
          "send them to another node (or set accept_unflushable to buffer them here anyway); this request buffered nothing",
      );
    }
  }

  /**
   * The request's adds, checked, in packed form: its packed_adds bytes as they are (walked once,
   * no object per add), or its ops packed.
   */
  private validAdds(request: EventualAddRequestMessage): { count: number; packed: Uint8Array } {
    const { maxBatchOps, maxKeyBytes } = this.node.config.limits;
    const rawOps = Array.isArray(request.ops) ? request.ops : [];
    const packed = request.packedAdds instanceof Uint8Array && request.packedAdds.length > 0 ? request.packedAdds : undefined;
    if (packed !== undefined && rawOps.length > 0) throw new InvalidArgumentError("an eventual add gives ops or packed_adds, not both");
    if (packed !== undefined) return { count: scanPackedAdds(packed, { maxOps: maxBatchOps, maxKeyBytes }), packed };
    if (rawOps.length === 0) throw new InvalidArgumentError("ops: an eventual add needs at least one operation");
    if (rawOps.length > maxBatchOps)
      throw new InvalidArgumentError(`ops: ${rawOps.length} operations exceed the batch limit of ${maxBatchOps}`);
    const adds: PackedAdd[] = rawOps.map((op, i) => {
      if (op.hasFloor || u64(op.ttlMs, "ttl_ms", i) !== 0)
        throw new InvalidArgumentError(`ops[${i}]: an eventual add takes no floor and no TTL (they need the shard's current value)`);
      const key = keyField(op.key, "key", i);
      if (key.length > maxKeyBytes)
        throw new InvalidArgumentError(`ops[${i}].key: keys must be 1 to ${maxKeyBytes} bytes, got ${key.length}`);
      return { key, delta: i64(op.delta, "delta", i) };
    });
    return { count: adds.length, packed: encodePackedAdds(adds) };
  }

  async eventualGet(request: EventualGetRequestMessage): Promise<EventualGetResponseInput> {
    const key = keyField(request.key, "key");
    if (key.length > this.node.config.limits.maxKeyBytes)
      throw new InvalidArgumentError(`key: keys must be 1 to ${this.node.config.limits.maxKeyBytes} bytes, got ${key.length}`);
    this.hotIndex.refresh(this.node.map.hot, this.node.map.version);
    if (this.hotIndex.lookup(key) !== undefined)
      throw new FailedPreconditionError(`key ${describeKey(key)} is a hot counter: read it with get (its sub-counters are summed there)`);
    const consistency = consistencyOf(request.consistency);
    const timeoutMs = this.node.config.limits.requestTimeoutMs;
    const deadline = wallClockMs() + timeoutMs;
    if (consistency === "linearizable") await this.flushedWithin(key, timeoutMs);
    const committed = await this.readCommitted(key, consistency, Math.max(1, deadline - wallClockMs()));
    const unflushed = this.buffer.state.unflushed(key);
    const pendingDelta = unflushed.pending + unflushed.inflight;
    const nowMs = wallClockMs();
    return {
      value: int64Wire(committed.value + (request.includePending === true ? pendingDelta : 0n)),
      committed: int64Wire(committed.value),
      pendingDelta: int64Wire(pendingDelta),
      stalenessMs: unflushed.oldestMs === undefined ? 0 : Math.max(0, nowMs - unflushed.oldestMs),
      version: committed.version,
      appliedIndex: committed.appliedIndex,
      fence: fence(committed.term, committed.appliedIndex),
      nodeId: this.node.nodeId,
    };
  }

  private async flushedWithin(key: Uint8Array, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new TallyError("TIMEOUT", `key ${describeKey(key)}: this node's pending flush was not applied within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.flusher.awaitFlushed(key), expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The shard's value: this node's replica (STALE, or LINEARIZABLE when it leads), else its leader's answer. */
  private async readCommitted(
    key: Uint8Array,
    consistency: "linearizable" | "stale",
    timeoutMs: number,
  ): Promise<{ value: bigint; version: number; term: number; appliedIndex: number }> {
    const shardId = this.node.shardIdForKey(key);
    if (shardId === 0) throw new UnavailableError(`node ${this.node.nodeId} does not know the partition map yet`);
    const local = this.node.replicas.get(shardId);
    if (local !== undefined && (consistency === "stale" || local.isLeader)) {
      const result = await this.node.read(this.node.route(shardId, 0, [key]), [key], consistency, 0, timeoutMs);
      const value = result.values[0]!;
      if (value.kind !== undefined) throw new FailedPreconditionError(`key ${describeKey(key)} holds a ${value.kind}, not a counter`);
      return { value: value.value, version: value.version, term: result.term, appliedIndex: result.appliedIndex };
    }
    const reply = await this.writer.get(shardId, key, timeoutMs);
    const appliedIndex = Number(reply.appliedIndex);
    return { value: BigInt(reply.value), version: Number(reply.version), term: Number(reply.fence?.term ?? 0), appliedIndex };
  }
}
