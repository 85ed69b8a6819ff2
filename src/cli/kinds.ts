/**
 * tallyctl commands for the counter kinds (issue 8): window add|range|at, limit, unique add|count,
 * top, watch (src/cli/watch-command.ts), agg. Human output is one line or a table; --json prints
 * the client's result (64-bit integers as decimal strings).
 */
import type { Command } from "commander";
import type { TallyClient, WindowAggregate } from "../client/index.js";
import { int64Argument, nonNegativeArgument, positiveArgument } from "./arguments.js";
import { UsageError } from "./exit-codes.js";
import { formatTable } from "./format.js";
import { addWatchCommand } from "./watch-command.js";

export type KindsClient = Pick<
  TallyClient,
  "connect" | "addWindowed" | "windowRange" | "windowAt" | "tryAcquire" | "uniqueAdd" | "uniqueCount" | "topK" | "aggregate" | "watch"
>;

export interface GlobalKindOptions {
  json?: boolean;
  timeout: number;
}

type WithClient = (command: Command, run: (client: KindsClient, options: GlobalKindOptions) => Promise<string | object>) => Promise<void>;

const deadline = (options: GlobalKindOptions): { deadlineMs: number } => ({ deadlineMs: options.timeout });

/** --last MS as a window of whole seconds ending with the current second. */
function lastWindow(lastMs: number | undefined): { window?: { fromMs: number; toMs: number } } {
  if (lastMs === undefined) return {};
  const toMs = Math.floor(Date.now() / 1000) * 1000 + 1000;
  return { window: { fromMs: toMs - Math.ceil(lastMs / 1000) * 1000, toMs } };
}

const AGGREGATES = new Set(["sum", "count", "min", "max", "avg"]);

function exact(value: bigint, divisor: bigint): string {
  if (divisor === 1n) return value.toString();
  const whole = value / divisor;
  const rest = value % divisor;
  return rest === 0n ? whole.toString() : `${value}/${divisor}`;
}

function addWindowCommands(program: Command, withClient: WithClient): void {
  const window = program.command("window").description("windowed counters: add, range, at");
  window
    .command("add")
    .description("add DELTA (default 1) to windowed KEY at the leader's time (or --event-time-ms)")
    .argument("<key>")
    .argument("[delta]", "signed 64-bit integer", int64Argument("DELTA"), 1n)
    .option("--event-time-ms <ms>", "event time, ms since the epoch", nonNegativeArgument("--event-time-ms"))
    .option("--ttl-ms <ms>", "the key expires this long after the write", positiveArgument("--ttl-ms"))
    .action(async (key: string, delta: bigint, opts: { eventTimeMs?: number; ttlMs?: number }, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const result = await tally.addWindowed(key, delta, {
          ...deadline(options),
          ...(opts.eventTimeMs ? { eventTimeMs: opts.eventTimeMs } : {}),
          ...(opts.ttlMs ? { ttlMs: opts.ttlMs } : {}),
        });
        if (options.json) return { key, ...result };
        return `${key} += ${delta} at ${new Date(result.eventTimeMs).toISOString()}: bucket sum ${result.value}  (version ${result.version})`;
      }),
    );
  window
    .command("range")
    .description("points of windowed KEY, one per --step-ms, over [--from, --to) or the --last ms up to now")
    .argument("<key>")
    .option("--step-ms <ms>", "step", positiveArgument("--step-ms"), 1_000)
    .option("--last <ms>", "the range is the last MS milliseconds (rounded to whole steps)", positiveArgument("--last"), 60_000)
    .option("--from <ms>", "start, ms since the epoch (a multiple of the step)", nonNegativeArgument("--from"))
    .option("--to <ms>", "end (exclusive)", nonNegativeArgument("--to"))
    .option("--agg <agg>", "sum, count, min, max or avg", "sum")
    .action(async (key: string, opts: { stepMs: number; last: number; from?: number; to?: number; agg: string }, command: Command) =>
      withClient(command, async (tally, options) => {
        if (!AGGREGATES.has(opts.agg)) throw new UsageError(`--agg must be sum, count, min, max or avg, got ${JSON.stringify(opts.agg)}`);
        const toMs = opts.to ?? Math.ceil((Date.now() + 1) / opts.stepMs) * opts.stepMs;
        const fromMs = opts.from ?? toMs - Math.ceil(opts.last / opts.stepMs) * opts.stepMs;
        await tally.connect();
        const result = await tally.windowRange(key, fromMs, toMs, opts.stepMs, opts.agg as WindowAggregate, deadline(options));
        if (options.json) return { key, ...result };
        const rows = result.points.map((point) => [new Date(point.startMs).toISOString(), exact(point.value, point.divisor)]);
        return `${formatTable(["start", opts.agg], rows, new Set([1]))}\n(resolution ${result.resolutionMs} ms, version ${result.version}, applied ${result.appliedIndex})`;
      }),
    );
  window
    .command("at")
    .description("the bucket of windowed KEY holding TIME_MS (default now)")
    .argument("<key>")
    .argument("[timeMs]", "ms since the epoch", nonNegativeArgument("TIME_MS"))
    .action(async (key: string, timeMs: number | undefined, _opts: object, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const result = await tally.windowAt(key, timeMs ?? Date.now(), deadline(options));
        if (options.json) return { key, ...result };
        return `${key} [${new Date(result.startMs).toISOString()} +${result.resolutionMs} ms) = ${result.sum}  (${result.count} adds, version ${result.version}, applied ${result.appliedIndex})`;
      }),
    );
}

function addLimitCommand(program: Command, withClient: WithClient): void {
  program
    .command("limit")
    .description("take N (default 1) from the sliding-window rate limit KEY: at most --limit per --window-ms")
    .argument("<key>")
    .argument("[n]", "amount", nonNegativeArgument("N"), 1)
    .requiredOption("--limit <n>", "grants allowed per window", positiveArgument("--limit"))
    .requiredOption("--window-ms <ms>", "window length", positiveArgument("--window-ms"))
    .action(async (key: string, n: number, opts: { limit: number; windowMs: number }, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const result = await tally.tryAcquire(key, n, opts.limit, opts.windowMs, deadline(options));
        if (options.json) return { key, ...result };
        return result.allowed
          ? `${key}: allowed ${n}, ${result.remaining} remaining`
          : `${key}: denied ${n}, ${result.remaining} remaining, retry after ${result.retryAfterMs} ms`;
      }),
    );
}

function addUniqueCommands(program: Command, withClient: WithClient): void {
  const unique = program.command("unique").description("unique counts (HyperLogLog): add, count");
  unique
    .command("add")
    .description("add ITEMs to the unique count KEY")
    .argument("<key>")
    .argument("<items...>")
    .option("--ttl-ms <ms>", "the key expires this long after the write", positiveArgument("--ttl-ms"))
    .action(async (key: string, items: string[], opts: { ttlMs?: number }, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const result = await tally.uniqueAdd(key, items, { ...deadline(options), ...(opts.ttlMs ? { ttlMs: opts.ttlMs } : {}) });
        if (options.json) return { key, changed: result.value === 1n, version: result.version, fence: result.fence };
        return `${key}: ${result.value === 1n ? "changed" : "unchanged"}  (version ${result.version})`;
      }),
    );
  unique
    .command("count")
    .description("estimated distinct items over the union of the KEYs (0.81% standard error)")
    .argument("<keys...>")
    .action(async (keys: string[], _opts: object, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const result = await tally.uniqueCount(keys, deadline(options));
        if (options.json) return result;
        return `${result.count}  (${keys.length} keys, ${result.shards.length} shards)`;
      }),
    );
}

function addTopCommand(program: Command, withClient: WithClient): void {
  program
    .command("top")
    .description("the exact top K counters whose key starts with PREFIX, over every shard")
    .argument("<prefix>")
    .option("-k, --k <k>", "how many", positiveArgument("-k"), 10)
    .option(
      "--last <ms>",
      "windowed counters instead, by their sum over the last MS ms (whole seconds, up to now)",
      positiveArgument("--last"),
    )
    .action(async (prefix: string, opts: { k: number; last?: number }, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const result = await tally.topK(prefix, opts.k, { ...deadline(options), ...lastWindow(opts.last) });
        if (options.json)
          return {
            entries: result.entries.map((entry) => ({ key: entry.key.toString("utf8"), value: entry.value })),
            shards: result.shards,
          };
        const rows = result.entries.map((entry, i) => [String(i + 1), entry.key.toString("utf8"), entry.value.toString()]);
        return `${formatTable(["#", "key", "value"], rows, new Set([0, 2]))}\n(${result.shards.length} shards at applied ${result.shards.map((shard) => `${shard.shardId}:${shard.appliedIndex}`).join(" ")})`;
      }),
    );
}

function addAggCommand(program: Command, withClient: WithClient): void {
  program
    .command("agg")
    .description("count, sum, min, max and average of the counters whose key starts with PREFIX, over every shard")
    .argument("<prefix>")
    .option(
      "--last <ms>",
      "windowed counters instead, by their sums over the last MS ms (whole seconds, up to now)",
      positiveArgument("--last"),
    )
    .action(async (prefix: string, opts: { last?: number }, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const result = await tally.aggregate(prefix, { ...deadline(options), ...lastWindow(opts.last) });
        if (options.json) return result;
        const avg =
          result.avg === undefined
            ? "-"
            : result.avg.remainder === 0n
              ? String(result.avg.quotient)
              : `${result.avg.quotient} + ${result.avg.remainder}/${result.avg.divisor}`;
        return `count ${result.count}  sum ${result.sum}  min ${result.min ?? "-"}  max ${result.max ?? "-"}  avg ${avg}\n(${result.shards.length} shards at applied ${result.shards.map((shard) => `${shard.shardId}:${shard.appliedIndex}`).join(" ")})`;
      }),
    );
}

/** `print` writes a streamed line (watch without --count) to tallyctl's stdout. */
export function addKindCommands(program: Command, withClient: WithClient, print: (text: string) => void): void {
  addWindowCommands(program, withClient);
  addLimitCommand(program, withClient);
  addUniqueCommands(program, withClient);
  addTopCommand(program, withClient);
  addWatchCommand(program, withClient, print);
  addAggCommand(program, withClient);
}
