/**
 * tallyctl: one command line in, one exit code out (runCli). Global options say which cluster
 * (--endpoints, --config, $TALLY_ENDPOINTS, ./cluster.yaml: src/cli/endpoints.ts), how to
 * authenticate (TLS flags, tokens) and how to print (-w table|json); each command's file adds
 * its commands to the program.
 */
import { Argument, Command, CommanderError, Option } from "commander";
import { pino } from "pino";
import { TallyClient, type TallyClientOptions } from "../client/index.js";
import { ClusterUnreachableError } from "../client/errors.js";
import { parseDecimalBigInt } from "../client/values.js";
import { TallyError, VersionMismatchError } from "../util/errors.js";
import { buildInfo } from "../util/build-info.js";
import { resolveTarget, type Target } from "./endpoints.js";
import { addAuthCommands, resolveToken } from "./auth.js";
import { EXIT, UsageError, WithExitCode, exitCodeFor } from "./exit-codes.js";
import { formatMutation, formatRead, formatRoutes, mutationJson, readJson, toJson } from "./format.js";
import { formatPlan, type ClusterMapReply, type PlanReply } from "./format-map.js";
import { addHealthCommands } from "./health-commands.js";
import { completionScript, SHELLS } from "./completion.js";
import { humanTransportError, isTransportText } from "./human-errors.js";
import { grpcHealthCheck, type HealthCheck } from "./health-check.js";
import { addKindCommands, type KindsClient } from "./kinds.js";
import { addHotCommands, type HotClient } from "./hot.js";
import { addBackupCommands, type BackupClient } from "./backup.js";
import type { CliClient, GlobalOptions, OutputFormat } from "./command-types.js";

export type { CliClient, GlobalOptions, OutputFormat } from "./command-types.js";

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  cwd: string;
  env: Record<string, string | undefined>;
  createClient(options: TallyClientOptions): CliClient;
  /** `endpoint health`'s gRPC health check (default: the real one, grpcHealthCheck). */
  healthCheck?: HealthCheck;
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

function parseOutputFormat(text: string): OutputFormat {
  if (text === "table" || text === "json") return text;
  throw new UsageError(`-w must be table or json, got ${JSON.stringify(text)}`);
}

/** The global options of a command line, with -w json and --json folded into `json`. */
export function globalOptions(command: Command): GlobalOptions {
  const options = command.optsWithGlobals<GlobalOptions>();
  return { ...options, json: options.json === true || options.writeOut === "json" };
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
  if (!(Number.isSafeInteger(value) && value > 0))
    throw new UsageError(`--timeout must be a positive integer (ms), got ${JSON.stringify(text)}`);
  return value;
}

function unreachableMessage(error: ClusterUnreachableError): string {
  const cause = error.cause instanceof Error ? error.cause.message : undefined;
  const reason = cause === undefined ? "" : ` (${humanTransportError(cause)})`;
  return `cannot reach any of ${error.endpoints.join(",")}${reason}: is the cluster running? try \`npm start\``;
}

/** The operator's next step after a compare-and-set saw another version. */
function casMismatch(key: string, expected: bigint, error: VersionMismatchError): VersionMismatchError {
  const current = error.currentVersion;
  const message =
    current === 0
      ? `${key} does not exist (version 0), expected version ${expected}: \`tallyctl cas ${key} 0 VALUE\` creates it only if it is still absent (etcd's compare version = 0)`
      : `${key} is at version ${current}, expected ${expected}; nothing changed (the version is the log index of its last write: \`tallyctl get ${key}\` prints it${expected === 0n ? "; 0 means only if absent" : ""})`;
  return new VersionMismatchError(message, current);
}

/**
 * Runs one tallyctl command line (without the node and script arguments) and returns the exit
 * code; never calls process.exit, so it can be tested in-process.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let client: CliClient | undefined;
  let json = false;
  let exitCode: number = EXIT.ok;
  let target: Target | undefined;
  let token: string | undefined;

  const print = (output: string | object | WithExitCode): void => {
    if (output instanceof WithExitCode) {
      exitCode = output.exitCode;
      output = output.output;
    }
    io.stdout(`${typeof output === "string" ? output : toJson(output)}\n`);
  };

  const withClient = async (
    command: Command,
    run: (client: CliClient, options: GlobalOptions) => Promise<string | object | WithExitCode>,
  ): Promise<void> => {
    const options = globalOptions(command);
    json = options.json === true;
    target = await resolveTarget(options, io.env, io.cwd);
    token = await resolveToken(options, io.env, io.cwd);
    client = io.createClient({
      endpoints: target.endpoints,
      ...(target.tls === undefined ? {} : { tls: target.tls }),
      ...(token === undefined ? {} : { token }),
      deadlineMs: options.timeout,
      attemptTimeoutMs: Math.min(2_000, options.timeout),
      connectTimeoutMs: Math.min(1_000, options.timeout),
      // One operation per run: nothing to batch, no session worth keeping alive.
      autoBatch: false,
    });
    print(await run(client, options));
  };
  const deadline = (options: GlobalOptions): { deadlineMs: number } => ({ deadlineMs: options.timeout });

  const program = new Command("tallyctl")
    .description("Admin and debugging CLI for a tally cluster")
    .version(`tallyctl ${buildInfo().version} (node ${buildInfo().nodeVersion})`, "-V, --version", "print the version and exit")
    .addOption(
      new Option(
        "--endpoints <list>",
        "comma-separated host:port (or http://host:port; https:// means TLS) of nodes (default: the nodes of --config, then $TALLY_ENDPOINTS, then ./cluster.yaml)",
      ),
    )
    .option(
      "-c, --config <file>",
      "the cluster's cluster.yaml: endpoints and TLS settings from it (default: ./cluster.yaml when no endpoints are given)",
    )
    .addOption(new Option("-w, --write-out <format>", "output format: table (for people) or json").argParser(parseOutputFormat))
    .option("--json", "print JSON (64-bit integers as strings): the same as -w json")
    .option("--ca <file>", "TLS: the cluster's CA certificate (default: tls.ca of the cluster file)")
    .option("--cert <file>", "TLS: client certificate, for clusters with clientAuth: require (default: tls.client.cert)")
    .option("--key <file>", "TLS: the client certificate's key (default: tls.client.key)")
    .option(
      "--token <token>",
      "bearer token for a cluster with an auth section (default: $TALLY_TOKEN; visible in ps, prefer the env or --token-file)",
    )
    .option("--token-file <file>", "read the bearer token from a file")
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
      if (value === undefined || value < 0n)
        throw new UsageError(`--min-index must be a non-negative integer, got ${JSON.stringify(text)}`);
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
        return options.json
          ? mutationJson(key, result)
          : `${key} reset  (version ${result.version}, fence ${result.fence.term}/${result.fence.index})`;
      }),
    );

  program
    .command("cas")
    .description("set KEY to VALUE if its version is EXPECTED_VERSION (0: only if KEY does not exist, like etcd's version = 0)")
    .argument("<key>")
    .argument("<expected-version>", "unsigned 64-bit integer", (text: string) => {
      const value = parseDecimalBigInt(text);
      if (value === undefined || value < 0n)
        throw new UsageError(`EXPECTED_VERSION must be a non-negative integer, got ${JSON.stringify(text)}`);
      return value;
    })
    .argument("<value>", "signed 64-bit integer", parseInt64Argument("VALUE"))
    .action(async (key: string, expectedVersion: bigint, value: bigint, _options: object, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const result = await tally.compareAndSet(key, expectedVersion, value, deadline(options)).catch((error: unknown) => {
          throw error instanceof VersionMismatchError ? casMismatch(key, expectedVersion, error) : error;
        });
        return options.json ? mutationJson(key, result) : formatMutation(key, result);
      }),
    );

  const nodeId =
    (what: string) =>
    (text: string): number => {
      const value = Number(text);
      if (!(Number.isSafeInteger(value) && value > 0))
        throw new UsageError(`${what} must be a node id (a positive integer), got ${JSON.stringify(text)}`);
      return value;
    };
  const shardId = (text: string): number => {
    const value = Number(text);
    if (!(Number.isSafeInteger(value) && value > 0 && value <= 0xffff_ffff))
      throw new UsageError(`SHARD must be a shard id (a positive integer), got ${JSON.stringify(text)}`);
    return value;
  };
  const change = (reply: { summary?: string; operationId?: string }, json: boolean): string | object =>
    json ? reply : String(reply.summary ?? "");

  const node = program.command("node").description("cluster membership: add, drain, remove, up");
  node
    .command("add")
    .description("admit a node to the partition map (then start tallyd for it; adding it to cluster.yaml and starting it also works)")
    .argument("<id>", "new node id (never reused)", nodeId("ID"))
    .requiredOption("--client <host:port>", "its client address")
    .requiredOption("--peer <host:port>", "its peer (Raft) address")
    .option("--zone <zone>", "its zone (replicas of a shard spread across zones)", "default")
    .action(async (id: number, commandOptions: { client: string; peer: string; zone: string }, command: Command) =>
      withClient(command, async (tally, options) =>
        change(
          await tally.admin(
            "NodeAdd",
            { nodeId: String(id), clientAddress: commandOptions.client, peerAddress: commandOptions.peer, zone: commandOptions.zone },
            deadline(options),
          ),
          options.json === true,
        ),
      ),
    );
  for (const [verb, state, text] of [
    ["drain", "draining", "move every replica and leadership off a node (it keeps serving until they are gone)"],
    ["remove", "removed", "remove a drained node from the cluster for good (refused while it holds replicas)"],
    ["up", "up", "return a drained or down node to service"],
  ] as const) {
    node
      .command(verb)
      .description(text)
      .argument("<id>", "node id", nodeId("ID"))
      .action(async (id: number, _options: object, command: Command) =>
        withClient(command, async (tally, options) =>
          change(await tally.admin("NodeState", { nodeId: String(id), state }, deadline(options)), options.json === true),
        ),
      );
  }

  const shard = program.command("shard").description("shard placement: move, split");
  shard
    .command("move")
    .description("move one replica of SHARD from node FROM to node TO (learner, catch up, promote, remove; resumable)")
    .argument("<shard>", "shard id", shardId)
    .requiredOption("--from <node>", "node giving up its replica", nodeId("--from"))
    .requiredOption("--to <node>", "node receiving the replica", nodeId("--to"))
    .action(async (id: number, commandOptions: { from: number; to: number }, command: Command) =>
      withClient(command, async (tally, options) =>
        change(
          await tally.admin(
            "ShardMove",
            { shardId: id, fromNode: String(commandOptions.from), toNode: String(commandOptions.to) },
            deadline(options),
          ),
          options.json === true,
        ),
      ),
    );

  shard
    .command("split")
    .description("split SHARD's slot range in two; the new shard takes slots from SLOT on (default: where its recent load halves)")
    .argument("<shard>", "shard id", shardId)
    .option("--at <slot>", "first slot of the new shard", (text: string) => {
      const value = Number(text);
      if (!(Number.isInteger(value) && value > 0 && value < 16384))
        throw new UsageError(`--at must be a slot in 1..16383, got ${JSON.stringify(text)}`);
      return value;
    })
    .action(async (id: number, commandOptions: { at?: number }, command: Command) =>
      withClient(command, async (tally, options) =>
        change(await tally.admin("ShardSplit", { shardId: id, atSlot: commandOptions.at ?? 0 }, deadline(options)), options.json === true),
      ),
    );

  program
    .command("leader")
    .description("leadership: transfer")
    .command("transfer")
    .description("hand the leadership of SHARD to node TO (a voter of the shard)")
    .argument("<shard>", "shard id", shardId)
    .requiredOption("--to <node>", "the new leader", nodeId("--to"))
    .action(async (id: number, commandOptions: { to: number }, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const route = (await tally.routes()).shards.find((candidate) => candidate.shardId === id);
        if (route === undefined) throw new UsageError(`shard ${id} does not exist`);
        if (!route.replicas.some((replica) => replica.nodeId === String(commandOptions.to) && replica.role === "voter")) {
          throw new UsageError(
            `node ${commandOptions.to} is not a voter of shard ${id} (voters ${route.replicas
              .filter((r) => r.role === "voter")
              .map((r) => r.nodeId)
              .join(", ")})`,
          );
        }
        const addresses = route.leaderAddress
          ? [route.leaderAddress, ...route.replicas.map((r) => r.address)]
          : route.replicas.map((r) => r.address);
        let lastError: unknown;
        for (const address of [...new Set(addresses)]) {
          try {
            await tally.admin("TransferLeader", { shardId: id, toNode: String(commandOptions.to) }, { ...deadline(options), address });
            const summary = `shard ${id}: leadership transfer to node ${commandOptions.to} requested (was node ${route.leaderId ?? "unknown"})`;
            return options.json ? { shardId: id, toNode: String(commandOptions.to), summary } : summary;
          } catch (error) {
            lastError = error;
          }
        }
        throw lastError;
      }),
    );

  program
    .command("rebalance")
    .description("the moves and leader transfers the placement controller would make (--plan, the default) or starts them (--apply)")
    .option("--plan", "show the plan only")
    .option("--apply", "start the planned moves and transfers")
    .action(async (commandOptions: { plan?: boolean; apply?: boolean }, command: Command) =>
      withClient(command, async (tally, options) => {
        if (commandOptions.plan && commandOptions.apply) throw new UsageError("--plan and --apply exclude each other");
        const reply = await tally.admin<PlanReply>("Rebalance", { apply: commandOptions.apply === true }, deadline(options));
        return options.json ? reply : formatPlan(reply);
      }),
    );

  program
    .command("failover")
    .description("move every leadership off NODE now (to up-to-date voters elsewhere)")
    .argument("<node>", "node id", nodeId("NODE"))
    .action(async (id: number, _options: object, command: Command) =>
      withClient(command, async (tally, options) => {
        const reply = await tally.admin<PlanReply>("Failover", { nodeId: String(id) }, deadline(options));
        return options.json ? reply : formatPlan(reply);
      }),
    );

  program
    .command("recover")
    .description("UNSAFE, last resort: make NODE's replica the only voter of SHARD after its quorum is lost for good")
    .argument("<shard>", "shard id", shardId)
    .requiredOption("--node <node>", "the surviving replica to continue from", nodeId("--node"))
    .option("--unsafe", "required: acknowledged writes the lost replicas held may be gone")
    .action(async (id: number, commandOptions: { node: number; unsafe?: boolean }, command: Command) =>
      withClient(command, async (tally, options) => {
        if (!commandOptions.unsafe) {
          throw new UsageError(
            "recover needs --unsafe: it makes one replica the whole shard, and writes acknowledged by the lost replicas beyond what it holds are LOST",
          );
        }
        io.stderr(
          `WARNING: unsafe recovery of shard ${id} from node ${commandOptions.node}: acknowledged writes may be lost; use only when the other replicas are gone for good\n`,
        );
        const map = await tally.admin<ClusterMapReply>("ClusterMap", {}, deadline(options));
        const address = map.nodes.find((candidate) => candidate.nodeId === String(commandOptions.node))?.clientAddress;
        if (address === undefined) throw new UsageError(`node ${commandOptions.node} is not in the cluster`);
        return change(
          await tally.admin("RecoverUnsafe", { shardId: id, iUnderstandDataLoss: true }, { ...deadline(options), address }),
          options.json === true,
        );
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
    addHealthCommands(program, withClient, {
      endpoints: () => target?.endpoints ?? [],
      serving: (address, deadlineMs) =>
        (io.healthCheck ?? grpcHealthCheck)(address, {
          deadlineMs,
          ...(target?.tls === undefined ? {} : { tls: target.tls }),
          ...(token === undefined ? {} : { token }),
        }),
    });
    addKindCommands(
      program,
      (command, run) =>
        withClient(command, (tally, options) => {
          if (tally.addWindowed === undefined) throw new UsageError("this client has no counter kinds");
          return run(tally as KindsClient, options);
        }),
      (text) => io.stdout(text),
    );
    addHotCommands(program, (command, run) =>
      withClient(command, (tally, options) => {
        if (tally.declareHot === undefined || tally.hotKeys === undefined) throw new UsageError("this client has no hot counters");
        return run(tally as HotClient, options);
      }),
    );
    addBackupCommands(
      program,
      (command, run) =>
        withClient(command, (tally, options) => {
          if (tally.adminStream === undefined) throw new UsageError("this client cannot stream backups");
          return run(tally as BackupClient, options);
        }),
      async (command, run) => {
        const options = globalOptions(command);
        json = options.json === true;
        print(await run(options));
      },
      io,
    );
    addAuthCommands(program, (text) => io.stdout(text));
    program
      .command("completion")
      .description("print a shell completion script: source <(tallyctl completion bash), or zsh")
      .addArgument(new Argument("<shell>", "bash or zsh").choices(SHELLS))
      .action((shell: string) => io.stdout(completionScript(program, shell)));
    await program.parseAsync(argv, { from: "user" });
  } catch (error) {
    exitCode = reportError(error, io, json, { tokenGiven: token !== undefined, clusterHasAuth: target?.clusterFile?.auth === true });
  } finally {
    await client?.close();
  }
  return exitCode;
}

function reportError(error: unknown, io: CliIo, json: boolean, context: { tokenGiven: boolean; clusterHasAuth: boolean }): number {
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
        ? `${error.code}: ${isTransportText(error.message) ? humanTransportError(error.message) : error.message}`
        : error instanceof UsageError
          ? error.message
          : `internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
  if (json && !(error instanceof UsageError)) {
    io.stdout(`${toJson({ error: { code: error instanceof TallyError ? error.code : "INTERNAL", message, exitCode: code } })}\n`);
  }
  io.stderr(`error: ${message}\n`);
  if (error instanceof TallyError && error.code === "UNAUTHENTICATED" && !context.tokenGiven) {
    io.stderr(
      `this cluster${context.clusterHasAuth ? " has an auth section and" : ""} checks callers: pass --token-file FILE or set $TALLY_TOKEN (\`tallyctl auth hash-token\` makes a token)\n`,
    );
  }
  if (code === EXIT.ambiguous) {
    io.stderr("the mutation may or may not have been applied; check with `tallyctl get` before retrying\n");
  }
  return code;
}
