/**
 * tallyctl escrow (docs/regions.md, "Escrow: a global floor"): adds to an escrowed key that spend
 * or create this region's rights, the floor's declaration, transfers of rights between regions,
 * and a status of every region's rights. The other regions are those of the cluster file's
 * `regions:` (dialed directly, plaintext, like the replicator); this region is its `region:`.
 */
import type { Command } from "commander";
import { TallyClient } from "../client/index.js";
import {
  escrowAdd,
  escrowDeclare,
  escrowState,
  escrowTransfer,
  type EscrowPeer,
  type EscrowRegionState,
  type EscrowStore,
} from "../client/escrow.js";
import { escrowKeys } from "../client/escrow-keys.js";
import { checkRegion } from "../client/region-keys.js";
import { globalGet } from "../client/region-reads.js";
import type { RegionSettings } from "../util/region-config.js";
import { int64Argument } from "./arguments.js";
import type { CliClient, GlobalOptions, WithClient } from "./command-types.js";
import { resolveTarget } from "./endpoints.js";
import { UsageError } from "./exit-codes.js";
import { formatTable } from "./format.js";
import { loadRegionSettings } from "./region-commands.js";

type EscrowClient = CliClient & EscrowStore;

const hasEscrow = (client: CliClient): client is EscrowClient =>
  typeof (client as Partial<EscrowClient>).getMany === "function" && typeof (client as Partial<EscrowClient>).addBatch === "function";

interface Io {
  env: Record<string, string | undefined>;
  cwd: string;
}

/** This region's settings and a client per other region (closed by the caller). */
class Regions {
  private readonly clients = new Map<string, TallyClient>();
  private constructor(readonly settings: RegionSettings | undefined) {}

  static async of(options: GlobalOptions, io: Io, required: string | undefined): Promise<Regions> {
    const target = await resolveTarget(options, io.env, io.cwd);
    const path = target.clusterFile?.path;
    const settings = path === undefined ? undefined : await loadRegionSettings(path);
    if (required !== undefined && settings === undefined)
      throw new UsageError(`${required} needs region: and regions: from the cluster file: give --config FILE (docs/regions.md)`);
    return new Regions(settings);
  }

  get here(): string | undefined {
    return this.settings?.region;
  }

  get others(): string[] {
    return this.settings?.regions.map((region) => region.name) ?? [];
  }

  /** The cluster of `name`: the run's client for this region, else a client of the configured region. */
  store(name: string, local: EscrowStore, deadlineMs: number): EscrowStore {
    if (name === this.here) return local;
    const region = this.settings?.regions.find((candidate) => candidate.name === name);
    if (region === undefined)
      throw new UsageError(
        `region ${name} is neither this region (${this.here ?? "no region:"}) nor one of regions: (${this.others.join(", ")})`,
      );
    let client = this.clients.get(name);
    if (client === undefined) {
      client = new TallyClient({
        endpoints: region.endpoints,
        deadlineMs,
        ...(region.addressMap === undefined ? {} : { addressMap: region.addressMap }),
      });
      this.clients.set(name, client);
    }
    return client;
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((client) => client.close()));
  }
}

async function withRegions<T>(
  options: GlobalOptions,
  io: Io,
  required: string | undefined,
  run: (regions: Regions) => Promise<T>,
): Promise<T> {
  const regions = await Regions.of(options, io, required);
  try {
    return await run(regions);
  } finally {
    await regions.close();
  }
}

function amountArgument(text: string): bigint {
  const value = int64Argument("--amount")(text);
  if (value <= 0n) throw new UsageError(`--amount must be a positive integer, got ${text}`);
  return value;
}

export function addEscrowCommands(program: Command, withClient: WithClient, io: Io): void {
  const escrow = program
    .command("escrow")
    .description("a global floor across regions held by escrowed rights (docs/regions.md): add, declare, transfer, status");
  const withEscrow = (command: Command, run: (client: EscrowClient, options: GlobalOptions) => Promise<string | object>) =>
    withClient(command, async (client, options) => {
      if (!hasEscrow(client)) throw new UsageError("this client cannot run escrow operations");
      return run(client, options);
    });

  escrow
    .command("add")
    .description("add DELTA to KEY in this region: an increment creates rights here, a decrement spends them (refused without)")
    .argument("<key>")
    .argument("<delta>", "signed 64-bit integer, not 0 (a negative one after --: escrow add KEY -- -3)", int64Argument("DELTA"))
    .option("--ask", "on a decrement lacking rights, ask the regions of regions: for the shortfall first")
    .action(async (key: string, delta: bigint, flags: { ask?: boolean }, command: Command) =>
      withEscrow(command, async (client, options) =>
        withRegions(options, io, flags.ask ? "--ask" : undefined, async (regions) => {
          const peers: EscrowPeer[] = flags.ask
            ? regions.others.map((name) => ({ region: name, client: regions.store(name, client, Math.min(options.timeout, 3_000)) }))
            : [];
          const result = await escrowAdd(client, key, delta, {
            ...(regions.here === undefined ? {} : { region: regions.here }),
            ...(peers.length === 0 ? {} : { peers }),
          });
          if (options.json)
            return { key, value: String(result.value), rights: String(result.rights), transferred: String(result.transferred) };
          const received = result.transferred > 0n ? ` (${result.transferred} received on demand)` : "";
          return `${key} = ${result.value} here; rights held here: ${result.rights}${received}`;
        }),
      ),
    );

  escrow
    .command("declare")
    .description("declare KEY escrowed with a floor, once, in this region (which gets INITIAL - FLOOR rights)")
    .argument("<key>")
    .requiredOption("--floor <n>", "the global floor (signed 64-bit integer)", int64Argument("--floor"))
    .option("--initial <n>", "the value added with the declaration (default 0; not below the floor)", int64Argument("--initial"))
    .action(async (key: string, flags: { floor: bigint; initial?: bigint }, command: Command) =>
      withEscrow(command, async (client, options) => {
        const result = await escrowDeclare(client, key, {
          floor: flags.floor,
          ...(flags.initial === undefined ? {} : { initial: flags.initial }),
        });
        if (options.json) return { key, floor: String(flags.floor), rights: String(result.rights) };
        return `${key} escrowed with floor ${flags.floor}; rights held here: ${result.rights}`;
      }),
    );

  escrow
    .command("transfer")
    .description("move AMOUNT rights of KEY from region FROM to region TO (runs in FROM; TO applies it at once or by its replicator)")
    .argument("<key>")
    .requiredOption("--from <region>", "the region giving rights")
    .requiredOption("--to <region>", "the region receiving them")
    .requiredOption("--amount <n>", "a positive integer", amountArgument)
    .action(async (key: string, flags: { from: string; to: string; amount: bigint }, command: Command) =>
      withEscrow(command, async (client, options) =>
        withRegions(options, io, "escrow transfer", async (regions) => {
          const [from, to] = [checkRegion(flags.from), checkRegion(flags.to)];
          const source = regions.store(from, client, options.timeout);
          const receiver = regions.store(to, client, options.timeout);
          const result = await escrowTransfer(source, key, { from, to, amount: flags.amount, receiver });
          if (options.json)
            return { key, from, to, amount: String(flags.amount), rights: String(result.rights), received: result.received };
          const arrival = result.received ? "received there now" : `in flight: ${to}'s replicator brings it`;
          return `moved ${flags.amount} rights of ${key} from ${from} (now holding ${result.rights}) to ${to} (${arrival})`;
        }),
      ),
    );

  escrow
    .command("status")
    .description("KEY's global value, floor, and every region's rights, transfers and component")
    .argument("<key>")
    .action(async (key: string, _flags: unknown, command: Command) =>
      withEscrow(command, async (client, options) =>
        withRegions(options, io, undefined, (regions) => statusOf(client, key, regions, options)),
      ),
    );
}

type RegionRow = { region: string; state?: EscrowRegionState; error?: string };

async function statusOf(client: EscrowClient, key: string, regions: Regions, options: GlobalOptions): Promise<string | object> {
  escrowKeys(key); // refuse a key that cannot be escrowed before any read
  const names = [regions.here ?? "(this)", ...regions.others];
  const rows: RegionRow[] = await Promise.all(
    names.map(async (name, i): Promise<RegionRow> => {
      const others = names.filter((other) => other !== name && other !== "(this)");
      try {
        const store = i === 0 ? client : regions.store(name, client, options.timeout);
        return { region: name, state: await escrowState(store, key, others) };
      } catch (error) {
        return { region: name, error: (error as Error).message };
      }
    }),
  );
  const global = await globalGet(client as unknown as TallyClient, key);
  const declared = rows.map((row) => row.state?.floor).find((value) => value !== undefined);
  const floor = declared ?? 0n;
  const held = rows.reduce((sum, row) => sum + (row.state?.rights ?? 0n), 0n);
  if (options.json)
    return {
      key,
      global: String(global.value),
      floor: String(floor),
      declared: declared !== undefined,
      regions: rows.map((row) =>
        row.state === undefined
          ? { region: row.region, error: row.error }
          : {
              region: row.region,
              rights: String(row.state.rights),
              value: String(row.state.value),
              links: row.state.links.map((link) => ({ region: link.region, out: String(link.out), received: String(link.received) })),
            },
      ),
    };
  const table = formatTable(
    ["region", "rights", "component", "sent (to: total)", "received (from: total)"],
    rows.map((row) =>
      row.state === undefined
        ? [row.region, "unreachable", row.error ?? "", "", ""]
        : [
            row.region,
            String(row.state.rights),
            String(row.state.value),
            row.state.links.map((link) => `${link.region}: ${link.out}`).join(", "),
            row.state.links.map((link) => `${link.region}: ${link.received}`).join(", "),
          ],
    ),
    new Set([1, 2]),
  );
  const floorText = declared === undefined ? "floor 0 (not declared in a reachable region)" : `floor ${floor}`;
  return `${key} = ${global.value} (global, as seen here); ${floorText}; rights held ${held} (plus transfers in flight)\n${table}`;
}
