/**
 * tallyctl watch: the changes of a key (or of every key with a prefix, on every shard) as they are
 * applied, one line per event, until Ctrl-C or --count events.
 */
import type { Command } from "commander";
import type { TallyClient, WatchEvent } from "../client/index.js";
import { nonNegativeArgument, positiveArgument } from "./arguments.js";

export type WatchClient = Pick<TallyClient, "connect" | "watch">;

type WithClient = (
  command: Command,
  run: (client: WatchClient, options: { json?: boolean; timeout: number }) => Promise<string | object>,
) => Promise<void>;

function eventLine(shardId: number, event: WatchEvent, json: boolean): string {
  return json
    ? JSON.stringify({
        shardId,
        key: event.key.toString("utf8"),
        kind: event.kind,
        value: event.value.toString(),
        version: event.version.toString(),
        index: event.index.toString(),
      })
    : `${event.key.toString("utf8")} ${event.kind} ${event.value}  (version ${event.version}, index ${event.index}, shard ${shardId})`;
}

/** `print` writes each line as it arrives (without --count); with --count the lines are the command's output. */
export function addWatchCommand(program: Command, withClient: WithClient, print: (text: string) => void): void {
  program
    .command("watch")
    .description("print changes of KEY (or of every key starting with it, --prefix) until Ctrl-C or --count events")
    .argument("<key>")
    .option("--prefix", "watch every key with this prefix, on every shard")
    .option("--from-index <n>", "changes after this log index (per shard); default: from now", nonNegativeArgument("--from-index"))
    .option("--count <n>", "stop after this many events", positiveArgument("--count"))
    .action(async (key: string, opts: { prefix?: boolean; fromIndex?: number; count?: number }, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const lines: string[] = [];
        const stop = new AbortController();
        let events = 0;
        // A watch has no deadline: it runs until Ctrl-C, or until --count events arrived.
        for await (const batch of tally.watch(key, {
          prefix: opts.prefix === true,
          signal: stop.signal,
          ...(opts.fromIndex ? { fromIndex: opts.fromIndex } : {}),
        })) {
          for (const event of batch.events) {
            const line = eventLine(batch.shardId, event, options.json === true);
            if (opts.count === undefined) print(`${line}\n`);
            else lines.push(line);
            if (opts.count !== undefined && ++events >= opts.count) stop.abort();
          }
        }
        return lines.join("\n");
      }),
    );
}
