/**
 * tallyctl regions (docs/regions.md): `regions` lists the regions replicated into this cluster and
 * their lag; `regions forget|activate NAME` takes a region out of (or back into) global reads;
 * `regions replicate` runs this region's replicator (one process per region, until SIGINT or
 * SIGTERM) from the cluster file's `region:` and `regions:`; `get KEY --global` (counter-commands)
 * prints the global sum through globalOutput().
 */
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { Command } from "commander";
import { pino } from "pino";
import { Gauge, Registry } from "prom-client";
import { parse } from "yaml";
import { TallyClient } from "../client/index.js";
import { globalGet, listRegions, setRegionActive } from "../client/region-reads.js";
import { RegionReplicator } from "../client/region-replicator.js";
import { parseRegionSettings, type RegionSettings } from "../util/region-config.js";
import { resolveToken } from "./auth.js";
import type { CliClient, CommandOutput, GlobalOptions, WithClient } from "./command-types.js";
import { resolveTarget, type Target } from "./endpoints.js";
import { UsageError } from "./exit-codes.js";
import { formatTable } from "./format.js";

type RegionClient = CliClient & Pick<TallyClient, "getMany" | "topK" | "set">;

export const hasRegionReads = (client: CliClient): client is RegionClient =>
  typeof (client as Partial<RegionClient>).getMany === "function" && typeof (client as Partial<RegionClient>).topK === "function";

function asClient(client: RegionClient): TallyClient {
  return client as unknown as TallyClient;
}

const lagText = (lagMs: number | undefined): string => (lagMs === undefined ? "never" : `${lagMs} ms`);

/** `get KEY --global`: the sum over regions, and each region's part. */
export async function globalOutput(client: CliClient, key: string, json: boolean): Promise<CommandOutput> {
  if (!hasRegionReads(client)) throw new UsageError("this client cannot read regions");
  const result = await globalGet(asClient(client), key);
  if (json)
    return {
      key,
      value: String(result.value),
      local: { value: String(result.local.value), version: String(result.local.version), appliedIndex: String(result.local.appliedIndex) },
      regions: result.regions.map((region) => ({ ...region, value: String(region.value), originIndex: String(region.originIndex) })),
    };
  const rows = [["(local)", String(result.local.value), String(result.local.appliedIndex), "0 ms"]];
  for (const region of result.regions) rows.push([region.region, String(region.value), String(region.originIndex), lagText(region.lagMs)]);
  return `${key} = ${result.value} (global)\n${formatTable(["region", "value", "index", "lag"], rows, new Set([1, 2]))}`;
}

export function addRegionCommands(
  program: Command,
  withClient: WithClient,
  offline: (command: Command, run: (options: GlobalOptions) => Promise<CommandOutput>) => Promise<void>,
  io: { env: Record<string, string | undefined>; cwd: string; stderr(text: string): void },
): void {
  const regions = program
    .command("regions")
    .description("regions replicated into this cluster (docs/regions.md): their lag; forget, activate, replicate")
    .action(async (_options: unknown, command: Command) =>
      withClient(command, async (client, options) => {
        if (!hasRegionReads(client)) throw new UsageError("this client cannot read regions");
        const entries = await listRegions(asClient(client));
        if (options.json) return { regions: entries };
        if (entries.length === 0) return "no regions replicated into this cluster (run `tallyctl regions replicate`)";
        return formatTable(
          ["region", "active", "last complete", "lag"],
          entries.map((entry) => [
            entry.region,
            entry.active ? "yes" : "no (forgotten)",
            entry.seenMs === 0 ? "never" : new Date(entry.seenMs).toISOString(),
            lagText(entry.lagMs),
          ]),
        );
      }),
    );
  for (const [name, active, text] of [
    ["forget", false, "leave REGION out of global reads (its components stay, frozen; `activate` brings them back)"],
    ["activate", true, "count REGION in global reads again"],
  ] as const) {
    regions
      .command(name)
      .description(text)
      .argument("<region>")
      .action(async (region: string, _options: unknown, command: Command) =>
        withClient(command, async (client) => {
          if (!hasRegionReads(client)) throw new UsageError("this client cannot write regions");
          await setRegionActive(asClient(client), region, active);
          return `region ${region} ${active ? "counted in" : "left out of"} global reads`;
        }),
      );
  }
  regions
    .command("replicate")
    .description("run this region's replicator: ship every region of `regions:` into this cluster until SIGINT/SIGTERM")
    .option("--metrics <host:port>", "serve Prometheus metrics (per-region lag, applied origin index) at http://host:port/metrics")
    .option("--coalesce-ms <ms>", "watch coalescing at the origins (10..10000)", "20")
    .action(async (flags: { metrics?: string; coalesceMs: string }, command: Command) =>
      offline(command, async (options) => {
        const coalesceMs = Number(flags.coalesceMs);
        if (!(Number.isInteger(coalesceMs) && coalesceMs >= 10 && coalesceMs <= 10_000))
          throw new UsageError(`--coalesce-ms must be an integer 10..10000, got ${JSON.stringify(flags.coalesceMs)}`);
        const target = await resolveTarget(options, io.env, io.cwd);
        const settings = await regionSettingsOf(target);
        const token = await resolveToken(options, io.env, io.cwd);
        await replicateUntilSignal(target, token, settings, { coalesceMs, ...(flags.metrics ? { metrics: flags.metrics } : {}) }, io);
        return "replicator stopped";
      }),
    );
}

/** The cluster file's region: and regions: (undefined without them); a bad file is a usage error. */
export async function loadRegionSettings(path: string): Promise<RegionSettings | undefined> {
  try {
    const document: unknown = parse(await readFile(path, "utf8"));
    if (typeof document !== "object" || document === null) throw new Error(`${path}: not a mapping`);
    return parseRegionSettings(document as Record<string, unknown>, (field) => `${path}: ${field}`);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

async function regionSettingsOf(target: Target): Promise<RegionSettings> {
  const path = target.clusterFile?.path;
  if (path === undefined) throw new UsageError("regions replicate reads region: and regions: from the cluster file: give --config FILE");
  const settings = await loadRegionSettings(path);
  if (settings === undefined || settings.regions.length === 0)
    throw new UsageError(`${path}: no regions to replicate: give region: NAME and regions: [{name, endpoints}] (docs/regions.md)`);
  return settings;
}

async function replicateUntilSignal(
  target: Target,
  token: string | undefined,
  settings: RegionSettings,
  flags: { coalesceMs: number; metrics?: string },
  io: { stderr(text: string): void },
): Promise<void> {
  const logger = pino({ level: process.env["TALLY_LOG_LEVEL"] ?? "info" }, pino.destination({ dest: 2, sync: true }));
  const local = new TallyClient({
    endpoints: target.endpoints,
    ...(target.tls === undefined ? {} : { tls: target.tls }),
    ...(token === undefined ? {} : { token }),
    logger,
  });
  const remotes = settings.regions.map(
    (region) =>
      new TallyClient({
        endpoints: region.endpoints,
        logger,
        ...(region.addressMap === undefined ? {} : { addressMap: region.addressMap }),
      }),
  );
  const metrics = new RegionMetrics();
  const replicators = settings.regions.map(
    (region, i) =>
      new RegionReplicator({
        origin: region.name,
        region: settings.region,
        local,
        remote: remotes[i]!,
        logger,
        coalesceMs: flags.coalesceMs,
        onBatch: (event) => metrics.onBatch(event),
      }),
  );
  metrics.watch(replicators);
  const server = flags.metrics === undefined ? undefined : await metrics.serve(flags.metrics);
  for (const replicator of replicators) replicator.start();
  io.stderr(`replicating ${settings.regions.map((region) => region.name).join(", ")} into region ${settings.region}\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await Promise.all(replicators.map((replicator) => replicator.stop()));
  if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  await Promise.all([local, ...remotes].map((client) => client.close()));
}

/** The replicator's metrics: per-region lag and last applied origin index (per origin shard), updates applied. */
class RegionMetrics {
  readonly registry = new Registry();
  private replicators: RegionReplicator[] = [];
  private readonly index = new Gauge({
    name: "tally_region_applied_origin_index",
    help: "the origin shard's log index up to which its changes are applied here",
    labelNames: ["region", "shard"],
    registers: [this.registry],
  });
  private readonly applied = new Gauge({
    name: "tally_region_updates_applied",
    help: "remote component updates written (stale duplicates excluded)",
    labelNames: ["region"],
    registers: [this.registry],
  });

  constructor() {
    const replicators = (): RegionReplicator[] => this.replicators;
    new Gauge({
      name: "tally_region_lag_ms",
      help: "ms since every shard of the region was last complete here (-1: not yet)",
      labelNames: ["region"],
      registers: [this.registry],
      collect() {
        for (const replicator of replicators()) this.set({ region: replicator.origin }, replicator.status().lagMs ?? -1);
      },
    });
  }

  watch(replicators: RegionReplicator[]): void {
    this.replicators = replicators;
  }

  onBatch(event: { origin: string; shardId: number; index: bigint }): void {
    this.index.set({ region: event.origin, shard: String(event.shardId) }, Number(event.index));
    const status = this.replicators.find((replicator) => replicator.origin === event.origin)?.status();
    if (status !== undefined) this.applied.set({ region: event.origin }, status.applied);
  }

  async serve(address: string): Promise<Server> {
    const match = /^(.+):(\d{1,5})$/.exec(address);
    if (match === null) throw new UsageError(`--metrics must be host:port, got ${JSON.stringify(address)}`);
    const server = createServer((request, response) => {
      if (request.url !== "/metrics") {
        response.writeHead(404).end();
        return;
      }
      void this.registry.metrics().then((text) => response.writeHead(200, { "content-type": this.registry.contentType }).end(text));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(Number(match[2]), match[1], () => resolve());
    });
    return server;
  }
}
