/**
 * The types that cli.ts and the command files share: what a run may touch (CliIo), the client
 * operations tallyctl uses, the global options, and how a command gets its client (WithClient). A
 * file of its own so that no command file need import cli.ts, which imports them (no import cycle).
 */
import type { Command } from "commander";
import type { TallyClient, TallyClientOptions } from "../client/index.js";
import type { BackupClient } from "./backup.js";
import type { WithExitCode } from "./exit-codes.js";
import type { HealthCheck } from "./health-check.js";
import type { HotClient } from "./hot.js";
import type { KindsClient } from "./kinds.js";

/** The client operations tallyctl uses (tests substitute a fake). */
export type CliClient = Pick<
  TallyClient,
  "connect" | "add" | "set" | "reset" | "compareAndSet" | "get" | "status" | "routes" | "close" | "admin"
> &
  Partial<KindsClient> &
  Partial<HotClient> &
  Partial<Pick<BackupClient, "adminStream">> &
  Partial<Pick<TallyClient, "getEventual">>;

export interface GlobalOptions {
  endpoints?: string;
  config?: string;
  ca?: string;
  cert?: string;
  key?: string;
  token?: string;
  tokenFile?: string;
  /** -w json or --json (normalized by globalOptions: commands read only this). */
  json?: boolean;
  writeOut?: OutputFormat;
  timeout: number;
}

export type OutputFormat = "table" | "json";

/** Everything a run touches outside itself (tests pass their own). */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  cwd: string;
  env: Record<string, string | undefined>;
  createClient(options: TallyClientOptions): CliClient;
  /** `endpoint health`'s gRPC health check (default: the real one, grpcHealthCheck). */
  healthCheck?: HealthCheck;
}

/** What a command prints: a line or table, a JSON document, or either with its own exit code. */
export type CommandOutput = string | object | WithExitCode;

/**
 * Runs a command with the run's client, made from the global options (which cluster, TLS, token,
 * deadline), and prints what it returns.
 */
export type WithClient = (command: Command, run: (client: CliClient, options: GlobalOptions) => Promise<CommandOutput>) => Promise<void>;
