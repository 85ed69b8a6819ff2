/**
 * The fenced code blocks of a markdown file that a reader would run, and how to run them against a
 * test cluster (test/integration/readme.test.ts uses it on README.md).
 *
 * Runnable blocks are ```ts / ```typescript and ```sh / ```bash / ```shell. A block that cannot run
 * in a test carries, on the line right before its fence, `<!-- snippet: skip (why) -->`; every other
 * runnable block must run. Blocks of other languages (python, yaml, plain output) are not run here.
 *
 * Shell blocks run line by line, each line through `bash -c` in the repository root, with
 * `tallyctl` (and `npx tallyctl`) being `node bin/tallyctl.js --config <the test cluster's
 * cluster.yaml>`, `npx tsx` the repository's own tsx, and $TALLY_ENDPOINTS the test cluster's (the
 * scripts read it). TypeScript blocks run as a module through tsx with `from "tally"` pointing at
 * src/index.ts and the endpoints literal replaced by the test cluster's. Every run has a deadline;
 * a process still running at its deadline is killed with its process group.
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { runProcess, type ProcessResult } from "./run-process.js";

export type SnippetLanguage = "ts" | "sh";

export interface Snippet {
  language: SnippetLanguage;
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
  /** The reason given by a skip marker; undefined when the block must run. */
  skip: string | undefined;
}

export interface Extraction {
  snippets: Snippet[];
  /** Problems that make the file's snippets untrustworthy: unclosed fences, malformed or dangling markers. */
  problems: string[];
}

const LANGUAGES: Record<string, SnippetLanguage> = { ts: "ts", typescript: "ts", sh: "sh", bash: "sh", shell: "sh" };
const FENCE = /^```([A-Za-z0-9_-]*)\s*$/;
const SKIP = /^<!--\s*snippet:\s*skip\s*\((.*)\)\s*-->$/;

export function extractSnippets(markdown: string): Extraction {
  const lines = markdown.split("\n");
  const snippets: Snippet[] = [];
  const problems: string[] = [];
  let pendingSkip: { reason: string; line: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!;
    if (text.includes("<!-- snippet")) {
      const marker = SKIP.exec(text.trim());
      if (marker === null) problems.push(`line ${i + 1}: a snippet marker that is not \`<!-- snippet: skip (reason) -->\`: ${text.trim()}`);
      else pendingSkip = { reason: marker[1]!.trim(), line: i + 1 };
      continue;
    }
    const fence = FENCE.exec(text);
    if (fence === null) {
      if (pendingSkip !== undefined && text.trim() !== "") {
        problems.push(`line ${pendingSkip.line}: a skip marker not right before a code block`);
        pendingSkip = undefined;
      }
      continue;
    }
    const end = lines.findIndex((candidate, j) => j > i && candidate.startsWith("```"));
    if (end < 0) {
      problems.push(`line ${i + 1}: a code block that is never closed`);
      break;
    }
    const language = LANGUAGES[fence[1]!.toLowerCase()];
    if (language !== undefined) {
      snippets.push({ language, line: i + 1, code: lines.slice(i + 1, end).join("\n"), skip: pendingSkip?.reason });
    } else if (pendingSkip !== undefined) {
      problems.push(`line ${pendingSkip.line}: a skip marker before a \`\`\`${fence[1]} block, which is never run anyway`);
    }
    pendingSkip = undefined;
    i = end;
  }
  if (pendingSkip !== undefined) problems.push(`line ${pendingSkip.line}: a skip marker at the end of the file`);
  return { snippets, problems };
}

/** The command lines of a shell block: continuations joined, blank and comment-only lines dropped. */
export function shellCommands(code: string): string[] {
  const commands: string[] = [];
  let pending = "";
  for (const raw of code.split("\n")) {
    const line = pending + raw;
    if (line.endsWith("\\")) {
      pending = `${line.slice(0, -1)} `;
      continue;
    }
    pending = "";
    if (line.trim() === "" || line.trim().startsWith("#")) continue;
    commands.push(line.trim());
  }
  if (pending.trim() !== "") commands.push(pending.trim());
  return commands;
}

/** Where snippets run: the repository, the test cluster, and a scratch directory of the test's own. */
export interface SnippetTarget {
  root: string;
  endpoints: string[];
  configPath: string;
  scratch: string;
}

export type RunResult = ProcessResult;

/** Writes the `tallyctl` wrapper into <scratch>/bin and returns the environment shell lines run with. */
export function shellEnvironment(target: SnippetTarget): NodeJS.ProcessEnv {
  const bin = join(target.scratch, "bin");
  mkdirSync(bin, { recursive: true });
  const wrapper = join(bin, "tallyctl");
  const quote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;
  writeFileSync(
    wrapper,
    `#!/bin/sh\nexec ${quote(process.execPath)} ${quote(join(target.root, "bin", "tallyctl.js"))} --config ${quote(target.configPath)} "$@"\n`,
  );
  chmodSync(wrapper, 0o755);
  return { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}`, TALLY_ENDPOINTS: target.endpoints.join(",") };
}

/** A README shell line as the test runs it; throws on an `npx` of anything but tallyctl and tsx (no registry). */
export function shellLineFor(line: string, target: SnippetTarget): string {
  const rewritten = line
    .replace(/\bnpx tallyctl\b/g, "tallyctl")
    .replace(/\bnpx tsx\b/g, `'${join(target.root, "node_modules", ".bin", "tsx")}'`);
  if (/\bnpx\b/.test(rewritten)) throw new Error(`a README shell line runs npx of something other than tallyctl or tsx: ${line}`);
  return rewritten;
}

export function runShellLine(line: string, target: SnippetTarget, env: NodeJS.ProcessEnv, deadlineMs: number): Promise<RunResult> {
  return runProcess("bash", ["-c", shellLineFor(line, target)], { cwd: target.root, env, deadlineMs, group: true });
}

const ENDPOINTS_LITERAL = /\[\s*"127\.0\.0\.1:\d+"(?:\s*,\s*"127\.0\.0\.1:\d+")*\s*\]/g;

/** A README TypeScript block as a module that runs against the target and prints `snippet done` at its end. */
export function typescriptProgram(code: string, target: SnippetTarget): string {
  if (!code.includes('from "tally"')) throw new Error('a TypeScript snippet that does not import from "tally" cannot run on its own');
  const index = pathToFileURL(join(target.root, "src", "index.ts")).href;
  return `${code.replaceAll('from "tally"', `from ${JSON.stringify(index)}`).replace(ENDPOINTS_LITERAL, JSON.stringify(target.endpoints))}\nconsole.log("snippet done");\n`;
}

let programs = 0;

export async function runTypeScript(code: string, target: SnippetTarget, deadlineMs: number): Promise<RunResult> {
  const file = join(target.scratch, `snippet-${++programs}.mts`);
  writeFileSync(file, typescriptProgram(code, target));
  return runProcess(process.execPath, [join(target.root, "node_modules", "tsx", "dist", "cli.mjs"), file], {
    cwd: target.scratch,
    env: { ...process.env },
    deadlineMs,
    group: true,
  });
}
