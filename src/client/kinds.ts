/**
 * Reads of the counter kinds: windowed ranges and buckets and unique counts (one shard per key),
 * and top-K and aggregates over every shard (scatter), merged here with the same pure code the
 * shards use (src/kinds), so the merged answer equals one pass over all the counters.
 */
import type { PipelineOpInputs, PipelineOpName, PipelineResponseMessage, ReadFieldsInput, ShardAnswerMessage } from "../api/proto.js";
import { HyperLogLog } from "../kinds/hll.js";
import { mergeAggregates, mergeTopK, TOP_K_MAX } from "../kinds/topk.js";
import { slotOf } from "../meta/slots.js";
import { monotonicMs } from "../util/clock.js";
import { InvalidArgumentError, TallyError } from "../util/errors.js";
import type { Reads, ReadState } from "./reads.js";
import { deadlineError } from "./retry.js";
import type { Router } from "./router.js";
import type {
  AggregateResult,
  PrefixReadOptions,
  ReadOptions,
  ShardAnswer,
  TopKResult,
  UniqueCountResult,
  WindowAggregate,
  WindowAtResult,
  WindowRangeResult,
} from "./types.js";
import { BATCH_OPS_MAX, encodeKey, fenceFromMessage, int64Wire, KEY_BYTES_MAX, toUint64, wireBigInt, type Key } from "./values.js";

const SLOT_COUNT = 16_384;

export class KindReads {
  constructor(
    private readonly reads: Reads,
    private readonly router: Router,
  ) {}

  /** TallyClient.windowRange: one shard's WindowRange. */
  async windowRange(
    key: Key,
    fromMs: number,
    toMs: number,
    stepMs: number,
    agg: WindowAggregate = "sum",
    options: ReadOptions = {},
  ): Promise<WindowRangeResult> {
    const encoded = encodeKey(key);
    const request = {
      key: encoded,
      fromMs: int64Wire(toUint64(fromMs, "fromMs")),
      toMs: int64Wire(toUint64(toMs, "toMs")),
      stepMs: int64Wire(toUint64(stepMs, "stepMs")),
      agg,
    };
    return this.reads.withReadState(options, "windowRange", false, (state) =>
      this.reads.shardRead(
        slotOf(encoded),
        state,
        (common) => ["windowRange", { ...request, ...common }],
        (response) => {
          const message = response.windowRange;
          if (!message) return undefined;
          return {
            points: message.points.map((point) => ({
              startMs: Number(point.startMs),
              value: wireBigInt(point.value),
              divisor: wireBigInt(point.divisor),
            })),
            resolutionMs: Number(message.resolutionMs),
            version: wireBigInt(message.version),
            fence: fenceFromMessage(message.fence),
            appliedIndex: wireBigInt(message.appliedIndex),
          };
        },
      ),
    );
  }

  /** TallyClient.windowAt: one shard's WindowAt. */
  async windowAt(key: Key, timeMs: number, options: ReadOptions = {}): Promise<WindowAtResult> {
    const encoded = encodeKey(key);
    const timeWire = int64Wire(toUint64(timeMs, "timeMs"));
    return this.reads.withReadState(options, "windowAt", false, (state) =>
      this.reads.shardRead(
        slotOf(encoded),
        state,
        (common) => ["windowAt", { key: encoded, timeMs: timeWire, ...common }],
        (response) => {
          const message = response.windowAt;
          if (!message) return undefined;
          return {
            startMs: Number(message.startMs),
            resolutionMs: Number(message.resolutionMs),
            sum: wireBigInt(message.sum),
            count: Number(message.count),
            version: wireBigInt(message.version),
            fence: fenceFromMessage(message.fence),
            appliedIndex: wireBigInt(message.appliedIndex),
          };
        },
      ),
    );
  }

  /**
   * TallyClient.uniqueCount: keys of one shard are merged by the shard; across shards each shard
   * sends its sketch and the union is the register-wise max (HyperLogLog.merge).
   */
  async uniqueCount(keys: Key[], options: ReadOptions = {}): Promise<UniqueCountResult> {
    if (!Array.isArray(keys) || keys.length === 0) throw new InvalidArgumentError("keys must be a non-empty array");
    if (keys.length > BATCH_OPS_MAX) throw new InvalidArgumentError(`uniqueCount reads at most ${BATCH_OPS_MAX} keys, got ${keys.length}`);
    const encoded = keys.map((key) => encodeKey(key));
    return this.reads.withReadState(options, "uniqueCount", false, async (state) => {
      const groups = new Map<number, Buffer[]>();
      for (const key of encoded) {
        const shardId = this.router.routeTable.lookup(slotOf(key))?.shardId ?? -1;
        groups.set(shardId, [...(groups.get(shardId) ?? []), key]);
      }
      const withSketch = groups.size > 1;
      const parts = await Promise.all(
        [...groups.entries()].map(async ([shardId, group]) => {
          const part = await this.reads.shardRead(
            slotOf(group[0]!),
            state,
            (common) => ["uniqueCount", { keys: group, withSketch, ...common }],
            (response) => response.uniqueCount,
          );
          return { ...part, shardId };
        }),
      );
      const shards = parts.map((part) => ({
        shardId: part.shardId,
        appliedIndex: wireBigInt(part.appliedIndex),
        fence: fenceFromMessage(part.fence),
      }));
      if (!withSketch) return { count: Number(parts[0]!.count), shards };
      const union = new HyperLogLog();
      for (const part of parts) union.merge(HyperLogLog.decode(part.sketch));
      return { count: Math.round(union.count()), shards };
    });
  }

  /** TallyClient.topK: every shard's own top k, merged by mergeTopK (exact: a key lives in one shard). */
  async topK(prefix: Key, k: number, options: PrefixReadOptions = {}): Promise<TopKResult> {
    const prefixBytes = encodePrefix(prefix);
    if (!Number.isInteger(k) || k < 1 || k > TOP_K_MAX) throw new InvalidArgumentError(`k must be 1..${TOP_K_MAX}, got ${k}`);
    const window = windowFields(options);
    const answers = await this.scatter(
      options,
      "topK",
      (common) => ["topK", { prefix: prefixBytes, k, ...window, ...common }],
      (response) => response.topK,
    );
    const lists = answers.map(({ message }) => message.entries.map((entry) => ({ key: entry.key, value: wireBigInt(entry.value) })));
    return {
      entries: mergeTopK(lists, k).map((entry) => ({ key: Buffer.from(entry.key), value: entry.value })),
      shards: answers.map(({ shard }) => shard),
    };
  }

  /** TallyClient.aggregate: every shard's aggregate, combined by mergeAggregates. */
  async aggregate(prefix: Key, options: PrefixReadOptions = {}): Promise<AggregateResult> {
    const prefixBytes = encodePrefix(prefix);
    const window = windowFields(options);
    const answers = await this.scatter(
      options,
      "aggregate",
      (common) => ["aggregate", { prefix: prefixBytes, ...window, ...common }],
      (response) => response.aggregate,
    );
    const merged = mergeAggregates(
      answers.map(({ message }) => {
        const count = Number(message.count);
        return {
          count,
          sum: BigInt(message.sum),
          min: count > 0 ? wireBigInt(message.min) : undefined,
          max: count > 0 ? wireBigInt(message.max) : undefined,
          avg: undefined,
        };
      }),
    );
    return { ...merged, shards: answers.map(({ shard }) => shard) };
  }

  /** Asks every shard once; retries the whole round until the answers tile [0, SLOT_COUNT) exactly. */
  private scatter<M extends { shard: ShardAnswerMessage | null }>(
    options: ReadOptions,
    kind: ReadState["kind"],
    build: (common: ReadFieldsInput) => [PipelineOpName, PipelineOpInputs[PipelineOpName]],
    pick: (response: PipelineResponseMessage) => M | null | undefined,
  ): Promise<Array<{ message: M; shard: ShardAnswer }>> {
    return this.reads.withReadState(options, kind, false, async (state) => {
      for (;;) {
        const shards = this.router.routeTable.snapshot().shards;
        const answers = await Promise.all(
          shards.map((route) =>
            this.reads.shardRead(route.slotStart, state, build, (response) => {
              const message = pick(response);
              return message?.shard ? { message, shard: shardAnswerFrom(message.shard) } : undefined;
            }),
          ),
        );
        if (tilesSlots(answers.map(({ shard }) => shard))) return answers;
        // A split or merge happened between the map and the answers: ask again with a fresh map.
        state.lastError = new TallyError("WRONG_SHARD", "the shards' answers do not tile the slot space (the map changed)");
        await this.router.refreshRoutes(true);
        if (state.cancellation.cancelled || monotonicMs() >= state.deadlineAtMs) throw deadlineError(state.lastError);
      }
    });
  }
}

function windowFields(options: PrefixReadOptions): { windowFromMs?: string; windowToMs?: string } {
  if (options.window === undefined) return {};
  const fromMs = toUint64(options.window.fromMs, "window.fromMs");
  const toMs = toUint64(options.window.toMs, "window.toMs");
  if (toMs <= fromMs) throw new InvalidArgumentError(`window.toMs ${toMs} must be above window.fromMs ${fromMs}`);
  return { windowFromMs: int64Wire(fromMs), windowToMs: int64Wire(toMs) };
}

export function encodePrefix(prefix: Key): Buffer {
  const bytes = typeof prefix === "string" ? Buffer.from(prefix, "utf8") : prefix instanceof Uint8Array ? Buffer.from(prefix) : undefined;
  if (bytes === undefined) throw new InvalidArgumentError("prefix must be a string or bytes");
  if (bytes.length > KEY_BYTES_MAX) throw new InvalidArgumentError(`prefix of ${bytes.length} bytes exceeds ${KEY_BYTES_MAX}`);
  return bytes;
}

function shardAnswerFrom(message: ShardAnswerMessage): ShardAnswer {
  return {
    shardId: message.shardId,
    slotStart: message.slotStart,
    slotEnd: message.slotEnd,
    epoch: wireBigInt(message.epoch),
    appliedIndex: wireBigInt(message.appliedIndex),
    fence: fenceFromMessage(message.fence),
  };
}

/** True when the answers' slot ranges cover [0, SLOT_COUNT) with no gap and no overlap. */
function tilesSlots(answers: ShardAnswer[]): boolean {
  const sorted = [...answers].sort((a, b) => a.slotStart - b.slotStart);
  let next = 0;
  for (const answer of sorted) {
    if (answer.slotStart !== next) return false;
    next = answer.slotEnd;
  }
  return next === SLOT_COUNT;
}
