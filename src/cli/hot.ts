/**
 * tallyctl hot declare|list: hot counters (one key spread over sub-counters on several shards;
 * src/meta/hot.ts). `get` and `add` of a hot key need nothing special: the client sums and spreads.
 */
import type { Command } from "commander";
import type { TallyClient } from "../client/index.js";
import { HOT_SUB_COUNTERS_MAX, hotSubKey } from "../meta/hot.js";
import { UsageError } from "./exit-codes.js";
import { formatTable } from "./format.js";

export type HotClient = Pick<TallyClient, "declareHot" | "hotKeys">;

type WithClient = (
  command: Command,
  run: (client: HotClient, options: { json?: boolean; timeout: number }) => Promise<string | object>,
) => Promise<void>;

function subKeyText(key: Buffer, tag: number): string {
  return Buffer.from(hotSubKey(key, tag)).toString("utf8").replace("\0", "\\0");
}

export function addHotCommands(program: Command, withClient: WithClient): void {
  const hot = program.command("hot").description("hot counters: one key spread over sub-counters on several shards");
  hot
    .command("declare")
    .description("declare KEY hot over --shards S sub-counters, or raise S (it never shrinks; adds may run meanwhile)")
    .argument("<key>")
    .requiredOption("--shards <s>", `number of sub-counters (2..${HOT_SUB_COUNTERS_MAX})`, (text: string) => {
      const value = Number(text);
      if (!(Number.isSafeInteger(value) && value >= 2 && value <= HOT_SUB_COUNTERS_MAX))
        throw new UsageError(`--shards must be an integer in 2..${HOT_SUB_COUNTERS_MAX}, got ${JSON.stringify(text)}`);
      return value;
    })
    .action(async (key: string, opts: { shards: number }, command: Command) =>
      withClient(command, async (tally, options) => {
        const route = await tally.declareHot(key, opts.shards, { deadlineMs: options.timeout });
        const state = {
          key,
          subCounters: route.tags.length,
          writable: route.writable,
          subKeys: route.tags.map((tag) => subKeyText(route.key, tag)),
          summary: route.summary,
        };
        if (options.json) return state;
        const pending = route.writable < route.tags.length ? `; adds use ${route.writable} until every node has the map` : "";
        return `${route.summary}\n${key}: ${state.subCounters} sub-counters, adds spread over ${route.writable}${pending}`;
      }),
    );
  hot
    .command("list")
    .description("the hot counters and their sub-counter keys")
    .action(async (_opts: object, command: Command) =>
      withClient(command, async (tally, options) => {
        const routes = await tally.hotKeys({ deadlineMs: options.timeout });
        const rows = routes.map((route) => ({
          key: route.key.toString("utf8"),
          subCounters: route.tags.length,
          writable: route.writable,
          subKeys: route.tags.map((tag) => subKeyText(route.key, tag)),
        }));
        if (options.json) return { hot: rows };
        if (rows.length === 0) return "no hot counters";
        return formatTable(
          ["KEY", "SUB-COUNTERS", "ADDS-USE", "SUB-KEYS"],
          rows.map((row) => [row.key, String(row.subCounters), String(row.writable), row.subKeys.join(" ")]),
          new Set([1, 2]),
        );
      }),
    );
}
