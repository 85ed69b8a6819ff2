import { Command, CommanderError, Option } from "commander";
import { pino } from "pino";
import { TallyClient, type TallyClientOptions } from "../client/index.js";
import { ClusterUnreachableError } from "../client/errors.js";
import { parseDecimalBigInt } from "../client/values.js";
import { TallyError } from "../util/errors.js";
import { resolveEndpoints } from "./endpoints.js";
import { resolveTls } from "./tls-options.js";
import { EXIT, UsageError, exitCodeFor } from "./exit-codes.js";
import { formatMutation, formatRead, formatRoutes, formatStatus, mutationJson, readJson, toJson } from "./format.js";

/** The client operations tallyctl uses (tests substitute a fake). */
export type CliClient = Pick<
  TallyClient,
  "connect" | "add" | "set" | "reset" | "compareAndSet" | "get" | "status" | "routes" | "close"
>;

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  cwd: string;
  env: Record<string, string | undefined>;
  createClient(options: TallyClientOptions): CliClient;
}

export const DEFAULT_TIMEOUT_MS = 5_000;

export function defaultCliIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    cwd: process.cwd(),
    env: process.env,
    createClient: (options) =>
      new TallyClient({
        ...options,
        // Logs go to stderr so stdout stays the command's output (and parseable with --json).
        logger: pino({ level: process.env["TALLY_LOG_LEVEL"] ?? "warn" }, pino.destination({ dest: 2, sync: true })),
      }),
  };
}

interface GlobalOptions {
  endpoints?: string;
  ca?: string;
  cert?: string;
  key?: string;
  json?: boolean;
  timeout: number;
}

function parseInt64Argument(name: string): (text: string) => bigint {
  return (text) => {
    const value = parseDecimalBigInt(text);
    if (value === undefined) throw new UsageError(`${name} must be an integer, got ${JSON.stringify(text)}`);
    return value;
  };
}

function parseTimeout(text: string): number {
  const value = Number(text);
  if (!(Number.isSafeInteger(value) && value > 0)) throw new UsageError(`--timeout must be a positive integer (ms), got ${JSON.stringify(text)}`);
  return value;
}

function unreachableMessage(error: ClusterUnreachableError): string {
  return `cannot reach any of ${error.endpoints.join(",")}: is the cluster running? try \`npm start\``;
}

/**
 * Runs one tallyctl command line (without the node and script arguments) and returns the exit
 * code; never calls process.exit, so it can be tested in-process.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let client: CliClient | undefined;
  let json = false;
  let exitCode: number = EXIT.ok;

  const withClient = async (command: Command, run: (client: CliClient, options: GlobalOptions) => Promise<string | object>): Promise<void> => {
    const options = command.optsWithGlobals<GlobalOptions>();
    json = options.json === true;
    const endpoints = await resolveEndpoints(options.endpoints, io.env, io.cwd);
    const fromClusterFile = options.endpoints === undefined && !io.env["TALLY_ENDPOINTS"]?.trim();
    const tls = await resolveTls(options, fromClusterFile, io.cwd);
    client = io.createClient({
      endpoints,
      ...(tls === undefined ? {} : { tls }),
      deadlineMs: options.timeout,
      attemptTimeoutMs: Math.min(2_000, options.timeout),
      connectTimeoutMs: Math.min(1_000, options.timeout),
      // One operation per run: nothing to batch, no session worth keeping alive.
      batchWindowMs: 0,
    });
    const output = await run(client, options);
    io.stdout(`${typeof output === "string" ? output : toJson(output)}\n`);
  };
  const deadline = (options: GlobalOptions): { deadlineMs: number } => ({ deadlineMs: options.timeout });

  const program = new Command("tallyctl")
    .description("Admin and debugging CLI for a tally cluster")
    .addOption(new Option("--endpoints <list>", "comma-separated host:port of nodes (default: $TALLY_ENDPOINTS, then ./cluster.yaml)"))
    .option("--json", "print JSON (64-bit integers as strings)")
    .option("--ca <file>", "TLS: the cluster's CA certificate (default: tls.ca of ./cluster.yaml when the endpoints come from it)")
    .option("--cert <file>", "TLS: client certificate, for clusters with clientAuth: require (default: tls.client.cert)")
    .option("--key <file>", "TLS: the client certificate's key (default: tls.client.key)")
    .addOption(new Option("--timeout <ms>", "overall deadline in ms").default(DEFAULT_TIMEOUT_MS).argParser(parseTimeout))
    .exitOverride()
    .showSuggestionAfterError()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });

  program
    .command("add")
    .description("add DELTA (default 1) to KEY; prints the new value")
    .argument("<key>")
    .argument("[delta]", "signed 64-bit integer", parseInt64Argument("DELTA"), 1n)
    .action(async (key: string, delta: bigint, _options: object, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const result = await tally.add(key, delta, deadline(options));
        return options.json ? mutationJson(key, result) : formatMutation(key, result);
      }),
    );

  program
    .command("get")
    .description("read KEY (linearizable unless --stale)")
    .argument("<key>")
    .option("--stale", "any replica may answer, possibly behind")
    .option("--min-index <n>", "the replica must have applied at least this log index", (text: string) => {
      const value = parseDecimalBigInt(text);
      if (value === undefined || value < 0n) throw new UsageError(`--min-index must be a non-negative integer, got ${JSON.stringify(text)}`);
      return value;
    })
    .action(async (key: string, commandOptions: { stale?: boolean; minIndex?: bigint }, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const result = await tally.get(key, {
          ...deadline(options),
          consistency: commandOptions.stale ? "stale" : "linearizable",
          ...(commandOptions.minIndex !== undefined ? { minIndex: commandOptions.minIndex } : {}),
        });
        return options.json ? readJson(key, result) : formatRead(key, result);
      }),
    );

  program
    .command("set")
    .description("set KEY to VALUE")
    .argument("<key>")
    .argument("<value>", "signed 64-bit integer", parseInt64Argument("VALUE"))
    .action(async (key: string, value: bigint, _options: object, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const result = await tally.set(key, value, deadline(options));
        return options.json ? mutationJson(key, result) : formatMutation(key, result);
      }),
    );

  program
    .command("reset")
    .description("delete KEY")
    .argument("<key>")
    .action(async (key: string, _options: object, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const result = await tally.reset(key, deadline(options));
        return options.json ? mutationJson(key, result) : `${key} reset  (version ${result.version}, fence ${result.fence.term}/${result.fence.index})`;
      }),
    );

  program
    .command("cas")
    .description("set KEY to VALUE if its version is EXPECTED_VERSION (0: KEY must not exist)")
    .argument("<key>")
    .argument("<expected-version>", "unsigned 64-bit integer", (text: string) => {
      const value = parseDecimalBigInt(text);
      if (value === undefined || value < 0n) throw new UsageError(`EXPECTED_VERSION must be a non-negative integer, got ${JSON.stringify(text)}`);
      return value;
    })
    .argument("<value>", "signed 64-bit integer", parseInt64Argument("VALUE"))
    .action(async (key: string, expectedVersion: bigint, value: bigint, _options: object, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const result = await tally.compareAndSet(key, expectedVersion, value, deadline(options));
        return options.json ? mutationJson(key, result) : formatMutation(key, result);
      }),
    );

  program
    .command("status")
    .description("every node's view of every Raft group: role, term, leader, commit, applied, lag, lease")
    .action(async (_options: object, command: Command) =>
      withClient(command, async (tally, options) => {
        const status = await tally.status(deadline(options));
        return options.json ? status : formatStatus(status);
      }),
    );

  program
    .command("routes")
    .description("the partition map: shards, slot ranges, epochs, leaders, replicas")
    .action(async (_options: object, command: Command) =>
      withClient(command, async (tally, options) => {
        const routes = await tally.routes();
        return options.json ? routes : formatRoutes(routes);
      }),
    );

  try {
    if (argv.length === 0) {
      program.outputHelp({ error: true });
      return EXIT.usage;
    }
    await program.parseAsync(argv, { from: "user" });
  } catch (error) {
    exitCode = reportError(error, io, json);
  } finally {
    await client?.close();
  }
  return exitCode;
}

function reportError(error: unknown, io: CliIo, json: boolean): number {
  if (error instanceof CommanderError) {
    // Help and version are exits with 0; everything else commander rejects is usage. Commander
    // has printed its message already.
    if (error.code === "commander.helpDisplayed" || error.code === "commander.help" || error.code === "commander.version") return EXIT.ok;
    return EXIT.usage;
  }
  const code = exitCodeFor(error);
  const message =
    error instanceof ClusterUnreachableError
      ? unreachableMessage(error)
      : error instanceof TallyError
        ? `${error.code}: ${error.message}`
        : error instanceof UsageError
          ? error.message
          : `internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
  if (json && !(error instanceof UsageError)) {
    io.stdout(`${toJson({ error: { code: error instanceof TallyError ? error.code : "INTERNAL", message, exitCode: code } })}\n`);
  }
  io.stderr(`error: ${message}\n`);
  if (code === EXIT.ambiguous) {
    io.stderr("the mutation may or may not have been applied; check with `tallyctl get` before retrying\n");
  }
  return code;
}
