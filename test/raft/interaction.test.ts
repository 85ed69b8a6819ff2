/**
 * Runs every scripted interaction file in test/raft/testdata against the Raft core and compares
 * the output with the file's expected output (etcd-io/raft's datadriven interaction tests).
 *
 * `REWRITE=1 npx vitest run test/raft` rewrites the files with the actual output instead. The
 * rewritten expectations must then be read and checked against the Raft paper: a diff is a
 * behaviour change, never something to accept unread.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { RaftTestKnobs } from "../../src/raft/types.js";
import { type FileItem, normalizeOutput, parseDatadriven, renderDatadriven } from "./datadriven.js";
import { InteractionEnv } from "./interaction-env.js";

const testdataDir = fileURLToPath(new URL("./testdata/", import.meta.url));
const rewrite = process.env.REWRITE === "1";
const files = readdirSync(testdataDir)
  .filter((name) => name.endsWith(".txt"))
  .sort();

interface Mismatch {
  line: number;
  commandLine: string;
  expected: string;
  actual: string;
}

/** Runs a script; returns the actual outputs and the blocks whose output differs. */
function runScript(name: string, items: FileItem[], env: InteractionEnv): { outputs: string[]; mismatches: Mismatch[] } {
  const outputs: string[] = [];
  const mismatches: Mismatch[] = [];
  for (const item of items) {
    if (item.kind !== "block") continue;
    const { block } = item;
    let actual: string;
    try {
      actual = normalizeOutput(env.handle(block));
    } catch (error) {
      throw new Error(`${name}:${block.line}: ${block.commandLine}: ${String(error)}`, { cause: error });
    }
    outputs.push(actual);
    if (actual !== block.expected) {
      mismatches.push({ line: block.line, commandLine: block.commandLine, expected: block.expected, actual });
    }
  }
  return { outputs, mismatches };
}

function load(name: string): { path: string; source: string; items: FileItem[] } {
  const path = `${testdataDir}${name}`;
  const source = readFileSync(path, "utf8");
  return { path, source, items: parseDatadriven(source, name) };
}

describe("raft interaction scripts", () => {
  it("has scripts to run", () => {
    // An empty or misplaced testdata folder must not pass as "nothing failed".
    expect(files.length).toBeGreaterThanOrEqual(16);
  });

  for (const name of files) {
    it(name, () => {
      const { path, source, items } = load(name);
      const { outputs, mismatches } = runScript(name, items, new InteractionEnv());
      if (rewrite) {
        writeFileSync(path, renderDatadriven(items, outputs));
        return;
      }
      const first = mismatches[0];
      if (first !== undefined) {
        expect(first.actual, `${name}:${first.line}: ${first.commandLine}`).toBe(first.expected);
      }
      // Also catches formatting drift (a missing blank line, a stray trailing space).
      expect(renderDatadriven(items, outputs)).toBe(source);
    });
  }
});

/**
 * The scripts must be able to fail for the reasons they exist: each planted bug (a RaftTestKnob)
 * has to change the output of the script that guards against it.
 */
describe("raft interaction scripts catch planted bugs", () => {
  const cases: { script: string; knobs: RaftTestKnobs; why: string }[] = [
    {
      script: "figure-8-commit-rule.txt",
      knobs: { commitPreviousTermEntries: true },
      why: "a leader that commits a previous-term entry by counting replicas (paper 5.4.2)",
    },
    {
      script: "restart.txt",
      knobs: { forgetVote: true },
      why: "a node that forgets its vote across a restart (Figure 2 persistent state)",
    },
    {
      script: "lease.txt",
      knobs: { leaseWithoutVoteRestriction: true },
      why: "followers that vote while a leader's lease may still be valid (thesis 4.2.3, 6.4.1)",
    },
  ];
  for (const { script, knobs, why } of cases) {
    it.skipIf(rewrite)(`${script} detects ${why}`, () => {
      const { items } = load(script);
      const { mismatches } = runScript(script, items, new InteractionEnv({ forcedKnobs: knobs }));
      expect(mismatches.length).toBeGreaterThan(0);
    });
  }
});
