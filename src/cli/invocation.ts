/**
 * One run of tallyctl: the cluster it resolved, the one client it opened, whether it prints JSON
 * and its exit code. Commands reach the cluster through withClient (or run offline), so the client
 * is made only by a command that needs it, from that command line's global options, and closed
 * once at the end of the run.
 */
import type { Command } from "commander";
import { resolveToken } from "./auth.js";
import type { CliClient, CliIo, CommandOutput, GlobalOptions, WithClient } from "./command-types.js";
import { resolveTarget, type Target } from "./endpoints.js";
import { EXIT, UsageError, WithExitCode } from "./exit-codes.js";
import { toJson } from "./format.js";
import type { HealthCheck } from "./health-check.js";
import type { EndpointProbe } from "./health-commands.js";

/** The global options of a command line, with -w json and --json folded into `json`. */
export function globalOptions(command: Command): GlobalOptions {
  const options = command.optsWithGlobals<GlobalOptions>();
  return { ...options, json: options.json === true || options.writeOut === "json" };
}

export class Invocation {
  /** -w json or --json: errors are reported as JSON on stdout too. */
  json = false;
  exitCode: number = EXIT.ok;
  target: Target | undefined;
  token: string | undefined;
  private client: CliClient | undefined;

  constructor(private readonly io: CliIo) {}

  readonly withClient: WithClient = async (command, run) => {
    const options = globalOptions(command);
    this.json = options.json === true;
    const target = await resolveTarget(options, this.io.env, this.io.cwd);
    this.target = target;
    this.token = await resolveToken(options, this.io.env, this.io.cwd);
    const client = this.io.createClient({
      endpoints: target.endpoints,
      ...(target.tls === undefined ? {} : { tls: target.tls }),
      ...(this.token === undefined ? {} : { token: this.token }),
      deadlineMs: options.timeout,
      attemptTimeoutMs: Math.min(2_000, options.timeout),
      connectTimeoutMs: Math.min(1_000, options.timeout),
      // One operation per run: nothing to batch, no session worth keeping alive.
      autoBatch: false,
    });
    this.client = client;
    this.print(await run(client, options));
  };

  /** A command that needs no cluster (restore builds data directories on this machine). */
  readonly offline = async (command: Command, run: (options: GlobalOptions) => Promise<CommandOutput>): Promise<void> => {
    const options = globalOptions(command);
    this.json = options.json === true;
    this.print(await run(options));
  };

  /** withClient for commands that need client operations a CliClient may lack (tests' fakes). */
  withClientHaving<C extends CliClient>(
    has: (client: CliClient) => client is C,
    missing: string,
  ): (command: Command, run: (client: C, options: GlobalOptions) => Promise<CommandOutput>) => Promise<void> {
    return (command, run) =>
      this.withClient(command, (client, options) => {
        if (!has(client)) throw new UsageError(missing);
        return run(client, options);
      });
  }

  /** `endpoint health`: the resolved endpoints, each checked with this run's TLS and token. */
  endpointProbe(healthCheck: HealthCheck): EndpointProbe {
    return {
      endpoints: () => this.target?.endpoints ?? [],
      serving: (address, deadlineMs) =>
        healthCheck(address, {
          deadlineMs,
          ...(this.target?.tls === undefined ? {} : { tls: this.target.tls }),
          ...(this.token === undefined ? {} : { token: this.token }),
        }),
    };
  }

  async close(): Promise<void> {
    await this.client?.close();
  }

  private print(output: CommandOutput): void {
    if (output instanceof WithExitCode) {
      this.exitCode = output.exitCode;
      output = output.output;
    }
    this.io.stdout(`${typeof output === "string" ? output : toJson(output)}\n`);
  }
}
