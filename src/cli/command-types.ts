/**
 * The types that cli.ts and the command files share: the client operations tallyctl uses and the
 * global options. A file of its own so that a command file (health-commands.ts) need not import
 * cli.ts, which imports it (no import cycle).
 */
import type { TallyClient } from "../client/index.js";
import type { BackupClient } from "./backup.js";
import type { HotClient } from "./hot.js";
import type { KindsClient } from "./kinds.js";

/** The client operations tallyctl uses (tests substitute a fake). */
export type CliClient = Pick<
  TallyClient,
  "connect" | "add" | "set" | "reset" | "compareAndSet" | "get" | "status" | "routes" | "close" | "admin"
> &
  Partial<KindsClient> &
  Partial<HotClient> &
  Partial<Pick<BackupClient, "adminStream">>;

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
