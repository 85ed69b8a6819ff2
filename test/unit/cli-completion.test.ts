/**
 * `tallyctl completion bash|zsh`: the generated script is sourced into a real bash and asked for
 * completions the way bash asks (COMP_WORDS, COMP_CWORD), so a wrong quote or a missing command
 * fails here. zsh runs its script with compadd replaced by a printer when zsh is installed.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/cli.js";
import { TallyClient } from "../../src/client/index.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tallyctl-completion-"));
  writeFileSync(join(dir, "cluster-a.yaml"), "nodes: []\n");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function script(shell: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(["completion", shell], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    cwd: dir,
    env: {},
    createClient: (options) => new TallyClient(options),
  });
  return { code, stdout, stderr };
}

function shellAvailable(shell: string): boolean {
  return spawnSync(shell, ["-c", "exit 0"]).status === 0;
}

/** Completions bash offers for each command line (the last word is the one being completed). */
function bashCompletions(file: string, lines: string[][]): string[][] {
  const calls = lines.map((words) => `comp ${words.map((word) => `'${word}'`).join(" ")}`).join("\n");
  const program = `source '${file}' || exit 9
comp() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _tallyctl; echo "\${COMPREPLY[*]}"; }
${calls}`;
  const result = spawnSync("bash", ["--norc", "--noprofile", "-c", program], { cwd: dir, encoding: "utf8", timeout: 10_000 });
  expect(result.status, result.stderr).toBe(0);
  expect(result.stderr).toBe("");
  return result.stdout
    .split("\n")
    .slice(0, lines.length)
    .map((line) => line.split(" ").filter((word) => word !== ""));
}

describe("tallyctl completion", () => {
  it("bash: commands, sub-commands, options of the command and global ones, option values, files", async () => {
    const bash = await script("bash");
    expect(bash.code).toBe(0);
    expect(bash.stdout).toContain("complete -F _tallyctl tallyctl");
    const file = join(dir, "tallyctl.bash");
    writeFileSync(file, bash.stdout);
    const [top, node, skipValue, writeOut, stale, statusOptions, shells, config, endpoint, configThenCommand] = bashCompletions(file, [
      ["tallyctl", ""],
      ["tallyctl", "node", ""],
      ["tallyctl", "--endpoints", "127.0.0.1:1", "node", "d"],
      ["tallyctl", "-w", ""],
      ["tallyctl", "get", "k", "--st"],
      ["tallyctl", "status", "--"],
      ["tallyctl", "completion", ""],
      ["tallyctl", "--config", "cluster-"],
      ["tallyctl", "endpoint", ""],
      ["tallyctl", "--config", "x.yaml", "-w", "json", "sh"],
    ]);
    expect(top).toEqual(
      expect.arrayContaining([
        "add",
        "get",
        "set",
        "cas",
        "status",
        "endpoint",
        "routes",
        "node",
        "shard",
        "window",
        "hot",
        "backup",
        "completion",
        "auth",
      ]),
    );
    expect(top).not.toContain("help");
    expect(node).toEqual(["add", "drain", "remove", "up"]);
    expect(skipValue).toEqual(["drain"]);
    expect(writeOut).toEqual(["table", "json"]);
    expect(stale).toEqual(["--stale"]);
    expect(statusOptions).toEqual(expect.arrayContaining(["--verbose", "--help", "--config", "--endpoints", "--write-out", "--version"]));
    expect(shells).toEqual(["bash", "zsh"]);
    expect(config).toEqual(["cluster-a.yaml"]);
    expect(endpoint).toEqual(["health"]);
    expect(configThenCommand).toEqual(["shard"]);
  });

  it("zsh: the same tables behind compdef; with zsh installed, its driver offers the same words", async () => {
    const [bash, zsh] = [await script("bash"), await script("zsh")];
    expect(zsh.code).toBe(0);
    expect(zsh.stdout.startsWith("#compdef tallyctl\n")).toBe(true);
    expect(zsh.stdout).toContain("compdef _tallyctl tallyctl");
    // The helpers (the command tables) are the same text in both scripts.
    const helpers = (text: string) => text.slice(text.indexOf("_tallyctl_words() {"), text.indexOf("\n_tallyctl() {"));
    expect(helpers(zsh.stdout)).toBe(helpers(bash.stdout));
    if (!shellAvailable("zsh")) return; // CI images without zsh: the shared helpers were exercised by bash above
    const file = join(dir, "_tallyctl");
    writeFileSync(file, zsh.stdout);
    const program = `compdef() { :; }; compadd() { shift; print -r -- "$*"; }; _files() { print -r -- FILES; }
source '${file}'
words=(tallyctl node ""); CURRENT=3; _tallyctl
words=(tallyctl -w ""); CURRENT=3; _tallyctl`;
    const result = spawnSync("zsh", ["-f", "-c", program], { cwd: dir, encoding: "utf8", timeout: 10_000 });
    expect(result.stderr).toBe("");
    expect(result.stdout.split("\n").slice(0, 2)).toEqual(["add drain remove up", "table json"]);
  });

  it("another shell is a usage error", async () => {
    const fish = await script("fish");
    expect(fish.code).toBe(2);
    expect(fish.stderr).toMatch(/'fish' is invalid for argument 'shell'\. Allowed choices are bash, zsh/);
  });
});
