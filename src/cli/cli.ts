/**
 * tallyctl: one command line in, one exit code out (runCli). Global options say which cluster
 * (--endpoints, --config, $TALLY_ENDPOINTS, ./cluster.yaml: src/cli/endpoints.ts), how to
 * authenticate (TLS flags, tokens) and how to print (-w table|json): src/cli/program.ts. Each
 * group of commands has its own file, which adds them to the program; one Invocation
 * (src/cli/invocation.ts) gives them the client and records the exit code.
 */
import { CommanderError } from "commander";
import { pino } from "pino";
import { TallyClient } from "../client/index.js";
import { ClusterUnreachableError } from "../client/errors.js";
import { TallyError } from "../util/errors.js";
import { addAuthCommands } from "./auth.js";
import { addBackupCommands, type BackupClient } from "./backup.js";
import type { CliClient, CliIo } from "./command-types.js";
import { addCompletionCommand } from "./completion.js";
import { addCounterCommands } from "./counter-commands.js";
import { EXIT, UsageError, exitCodeFor } from "./exit-codes.js";
import { toJson } from "./format.js";
import { grpcHealthCheck } from "./health-check.js";
import { addHealthCommands } from "./health-commands.js";
import { addHotCommands, type HotClient } from "./hot.js";
import { humanTransportError, isTransportText } from "./human-errors.js";
import { Invocation } from "./invocation.js";
import { addKindCommands, type KindsClient } from "./kinds.js";
import { addMembershipCommands } from "./membership-commands.js";
import { addPlacementCommands } from "./placement-commands.js";
import { createProgram } from "./program.js";
import { addEscrowCommands } from "./escrow-commands.js";
import { addRegionCommands } from "./region-commands.js";
import { addShardCommands } from "./shard-commands.js";

export type { CliClient, CliIo, GlobalOptions, OutputFormat } from "./command-types.js";
export { globalOptions } from "./invocation.js";
export { DEFAULT_TIMEOUT_MS } from "./program.js";

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

// The client operations beyond CliClient's required ones that some command groups need (a test's
// fake client may lack them; the command then fails with a usage error).
const hasKinds = (client: CliClient): client is CliClient & KindsClient => client.addWindowed !== undefined;
const hasHot = (client: CliClient): client is CliClient & HotClient => client.declareHot !== undefined && client.hotKeys !== undefined;
const hasBackup = (client: CliClient): client is CliClient & BackupClient => client.adminStream !== undefined;

/**
 * Runs one tallyctl command line (without the node and script arguments) and returns the exit
 * code; never calls process.exit, so it can be tested in-process.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const invocation = new Invocation(io);
  const program = createProgram(io);
  const { withClient } = invocation;
  addCounterCommands(program, withClient);
  addMembershipCommands(program, withClient);
  addShardCommands(program, withClient);
  addPlacementCommands(program, withClient, io);
  try {
    addHealthCommands(program, withClient, invocation.endpointProbe(io.healthCheck ?? grpcHealthCheck));
    addKindCommands(program, invocation.withClientHaving(hasKinds, "this client has no counter kinds"), (text) => io.stdout(text));
    addHotCommands(program, invocation.withClientHaving(hasHot, "this client has no hot counters"));
    addBackupCommands(program, invocation.withClientHaving(hasBackup, "this client cannot stream backups"), invocation.offline, io);
    addRegionCommands(program, withClient, invocation.offline, io);
    addEscrowCommands(program, withClient, io);
    addAuthCommands(program, (text) => io.stdout(text));
    addCompletionCommand(program, (text) => io.stdout(text));
    if (argv.length === 0) {
      // Every command, as `tallyctl --help` lists them (this used to list only those added first).
      program.outputHelp({ error: true });
      return EXIT.usage;
    }
    await program.parseAsync(argv, { from: "user" });
  } catch (error) {
    const context = { tokenGiven: invocation.token !== undefined, clusterHasAuth: invocation.target?.clusterFile?.auth === true };
    invocation.exitCode = reportError(error, io, invocation.json, context);
  } finally {
    await invocation.close();
  }
  return invocation.exitCode;
}

function unreachableMessage(error: ClusterUnreachableError): string {
  const cause = error.cause instanceof Error ? error.cause.message : undefined;
  const reason = cause === undefined ? "" : ` (${humanTransportError(cause)})`;
  return `cannot reach any of ${error.endpoints.join(",")}${reason}: is the cluster running? try \`npm start\``;
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
