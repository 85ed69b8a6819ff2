/**
 * tallyctl and access control: where the bearer token comes from (--token, --token-file,
 * $TALLY_TOKEN), and `tallyctl auth hash-token`, which makes a token for cluster.yaml's auth
 * section (the file keeps only its SHA-256).
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Command } from "commander";
import { generateToken, tokenSha256Hex } from "../util/auth-token.js";
import { UsageError } from "./exit-codes.js";
import { toJson } from "./format.js";

export interface TokenFlags {
  token?: string;
  tokenFile?: string;
}

const TOKEN_TEXT = /^[\x21-\x7e]+$/;

/** First match wins: --token, --token-file, $TALLY_TOKEN. Undefined: no token. */
export async function resolveToken(flags: TokenFlags, env: Record<string, string | undefined>, cwd: string): Promise<string | undefined> {
  if (flags.token !== undefined && flags.tokenFile !== undefined) throw new UsageError("--token and --token-file exclude each other");
  let token: string | undefined;
  let source: string;
  if (flags.token !== undefined) {
    token = flags.token;
    source = "--token";
  } else if (flags.tokenFile !== undefined) {
    const path = resolve(cwd, flags.tokenFile);
    try {
      token = (await readFile(path, "utf8")).trim();
    } catch (error) {
      throw new UsageError(`--token-file: cannot read ${path}: ${(error as Error).message}`);
    }
    source = `--token-file ${path}`;
  } else {
    token = env["TALLY_TOKEN"]?.trim() || undefined;
    source = "$TALLY_TOKEN";
  }
  // The message names where the token came from, never the token.
  if (token !== undefined && !TOKEN_TEXT.test(token)) throw new UsageError(`${source}: a token is one word of printable ASCII`);
  return token;
}

export function addAuthCommands(program: Command, stdout: (text: string) => void): void {
  const auth = program.command("auth").description("access control helpers (cluster.yaml auth section)");
  auth
    .command("hash-token")
    .description(
      "print a fresh random token and its SHA-256 for cluster.yaml (auth.tokens[].sha256); give the token to its user, keep only the hash",
    )
    .option("--name <name>", "the token's name in the printed cluster.yaml entry", "NAME")
    .action((options: { name: string }, command: Command) => {
      const token = generateToken();
      const sha256 = tokenSha256Hex(token);
      const output = command.optsWithGlobals<{ json?: boolean; writeOut?: string }>();
      if (output.json === true || output.writeOut === "json") {
        stdout(`${toJson({ token, sha256 })}\n`);
        return;
      }
      stdout(
        [
          `token:  ${token}`,
          `sha256: ${sha256}`,
          "",
          "cluster.yaml (auth.tokens), with the roles you mean to grant:",
          `  - { name: ${options.name}, sha256: ${sha256}, grants: [{ prefix: "", roles: [read] }] }`,
          "",
        ].join("\n"),
      );
    });
}
