/**
 * A small reader and rewriter for datadriven test files, in the format of cockroachdb/datadriven
 * (the one etcd-io/raft's `testdata/*.txt` use):
 *
 *   # comment lines and blank lines between blocks are kept verbatim
 *   command pos1 key=value list=(1,2,3) "quoted arg"
 *   optional input lines
 *   ----
 *   expected output, up to the first blank line
 *
 * When the expected output itself contains blank lines, the block uses a doubled separator and
 * ends with a doubled separator:
 *
 *   command
 *   ----
 *   ----
 *   output with
 *
 *   a blank line
 *   ----
 *   ----
 *
 * A command line ending in a backslash continues on the next line.
 */
import { assert } from "../../src/util/assert.js";

export interface CommandArg {
  key: string;
  /** Empty for a bare positional argument (then `key` holds it). */
  values: string[];
}

export interface TestBlock {
  /** 1-based line of the command, for error messages. */
  line: number;
  /** The command line with continuations joined by a single space. */
  commandLine: string;
  /** The command line(s) exactly as written, for rewriting. */
  rawCommandLines: string[];
  command: string;
  args: CommandArg[];
  /** Lines between the command and the separator. */
  input: string[];
  /** Expected output, normalized to end with "\n" unless empty. */
  expected: string;
}

/** A file is kept as a sequence of verbatim text runs and blocks, so a rewrite changes only outputs. */
export type FileItem = { kind: "text"; text: string } | { kind: "block"; block: TestBlock };

const separator = "----";
/** Upper bound on arguments per command line: a typo must not loop forever. */
const argsPerCommandMax = 64;

export function parseDatadriven(source: string, fileName: string): FileItem[] {
  const lines = source.split("\n");
  // A trailing newline leaves one empty string at the end; it is not a line of its own.
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const items: FileItem[] = [];
  let pendingText: string[] = [];
  const flushText = (): void => {
    if (pendingText.length > 0) items.push({ kind: "text", text: pendingText.map((l) => `${l}\n`).join("") });
    pendingText = [];
  };

  let i = 0;
  while (i < lines.length) {
    const raw = lines[i] as string;
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) {
      pendingText.push(raw);
      i++;
      continue;
    }
    flushText();
    const startLine = i + 1;
    let commandLine = trimmed;
    const rawCommandLines = [raw];
    while (commandLine.endsWith("\\")) {
      i++;
      rawCommandLines.push(lines[i] ?? "");
      assert(i < lines.length, `${fileName}:${startLine}: command continues past end of file`);
      commandLine = `${commandLine.slice(0, -1).trimEnd()} ${(lines[i] as string).trim()}`;
    }
    i++;
    const input: string[] = [];
    while (i < lines.length && lines[i] !== separator) {
      assert((lines[i] as string).trim() !== "", `${fileName}:${startLine}: blank line before "${separator}"`);
      input.push(lines[i] as string);
      i++;
    }
    assert(i < lines.length, `${fileName}:${startLine}: missing "${separator}" after command`);
    i++; // the separator
    const output: string[] = [];
    if (i < lines.length && lines[i] === separator) {
      // Doubled form: everything up to the closing "----\n----".
      i++;
      for (;;) {
        assert(i < lines.length, `${fileName}:${startLine}: unterminated "${separator}" "${separator}" block`);
        if (lines[i] === separator && lines[i + 1] === separator) {
          i += 2;
          break;
        }
        output.push(lines[i] as string);
        i++;
      }
    } else {
      while (i < lines.length && (lines[i] as string) !== "") {
        output.push(lines[i] as string);
        i++;
      }
    }
    const { command, args } = parseCommandLine(commandLine, `${fileName}:${startLine}`);
    items.push({
      kind: "block",
      block: {
        line: startLine,
        commandLine,
        rawCommandLines,
        command,
        args,
        input,
        expected: output.map((l) => `${l}\n`).join(""),
      },
    });
  }
  flushText();
  return items;
}

/** Splits `cmd a b=c d=(1,2, 3) "e f"` into the command and its arguments. */
export function parseCommandLine(line: string, where: string): { command: string; args: CommandArg[] } {
  const tokens: string[] = [];
  let current = "";
  let depth = 0;
  let quoted = false;
  for (const ch of line) {
    if (quoted) {
      current += ch;
      if (ch === '"') quoted = false;
    } else if (ch === '"') {
      current += ch;
      quoted = true;
    } else if (ch === "(") {
      depth++;
      current += ch;
    } else if (ch === ")") {
      assert(depth > 0, `${where}: unbalanced ")"`);
      depth--;
      current += ch;
    } else if (/\s/.test(ch) && depth === 0) {
      if (current !== "") tokens.push(current);
      current = "";
    } else if (!/\s/.test(ch)) {
      current += ch;
    }
  }
  assert(!quoted, `${where}: unterminated quote`);
  assert(depth === 0, `${where}: unbalanced "("`);
  if (current !== "") tokens.push(current);
  assert(tokens.length > 0, `${where}: empty command`);
  assert(tokens.length <= argsPerCommandMax + 1, `${where}: more than ${argsPerCommandMax} arguments`);

  const [command, ...rest] = tokens as [string, ...string[]];
  const args = rest.map((token): CommandArg => {
    const eq = token.indexOf("=");
    if (eq < 0 || token.startsWith('"')) return { key: unquote(token), values: [] };
    const key = token.slice(0, eq);
    const value = token.slice(eq + 1);
    if (value.startsWith("(")) {
      assert(value.endsWith(")"), `${where}: list value of ${key} must end with ")"`);
      const inner = value.slice(1, -1).trim();
      return { key, values: inner === "" ? [] : inner.split(",").map((v) => unquote(v.trim())) };
    }
    return { key, values: [unquote(value)] };
  });
  return { command, args };
}

function unquote(token: string): string {
  if (token.length >= 2 && token.startsWith('"') && token.endsWith('"')) return token.slice(1, -1);
  return token;
}

/** Renders items back to text, with each block's expected output replaced by `outputs[k]`. */
export function renderDatadriven(items: FileItem[], outputs: string[]): string {
  let blockIndex = 0;
  let text = "";
  for (let k = 0; k < items.length; k++) {
    const item = items[k] as FileItem;
    if (item.kind === "text") {
      text += item.text;
      continue;
    }
    const output = outputs[blockIndex];
    assert(output !== undefined, "one output per block");
    blockIndex++;
    for (const line of item.block.rawCommandLines) text += `${line}\n`;
    for (const line of item.block.input) text += `${line}\n`;
    const body = normalizeOutput(output);
    if (body.split("\n").some((l, j, all) => l === "" && j < all.length - 1)) {
      text += `${separator}\n${separator}\n${body}${separator}\n${separator}\n`;
    } else {
      text += `${separator}\n${body}`;
    }
    // Blocks are separated by a blank line; the parser keeps the one that follows a block as text.
    const next = items[k + 1];
    if (next !== undefined && !(next.kind === "text" && next.text.startsWith("\n"))) text += "\n";
  }
  assert(blockIndex === outputs.length, "as many outputs as blocks");
  return text;
}

/** Output always ends with exactly one newline (or is empty). */
export function normalizeOutput(output: string): string {
  const trimmed = output.replace(/\n+$/, "");
  return trimmed === "" ? "" : `${trimmed}\n`;
}
