/**
 * The tallyctl command itself, before any sub-command: its description, version and global options
 * (which cluster, TLS, token, output format, deadline). Commander reports errors by throwing
 * (exitOverride) and writes help to the run's own stdout and stderr.
 */
import { Command, Option } from "commander";
import { buildInfo } from "../util/build-info.js";
import type { CliIo, OutputFormat } from "./command-types.js";
import { UsageError } from "./exit-codes.js";

export const DEFAULT_TIMEOUT_MS = 5_000;

function parseOutputFormat(text: string): OutputFormat {
  if (text === "table" || text === "json") return text;
  throw new UsageError(`-w must be table or json, got ${JSON.stringify(text)}`);
}

function parseTimeout(text: string): number {
  const value = Number(text);
  if (!(Number.isSafeInteger(value) && value > 0))
    throw new UsageError(`--timeout must be a positive integer (ms), got ${JSON.stringify(text)}`);
  return value;
}

export function createProgram(io: Pick<CliIo, "stdout" | "stderr">): Command {
  return new Command("tallyctl")
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
}
