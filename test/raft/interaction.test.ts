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
import { normalizeOutput, parseDatadriven, renderDatadriven } from "./datadriven.js";
import { InteractionEnv } from "./interaction-env.js";

const testdataDir = fileURLToPath(new URL("./testdata/", import.meta.url));
const rewrite = process.env.REWRITE === "1";
const files = readdirSync(testdataDir)
  .filter((name) => name.endsWith(".txt"))
  .sort();

describe("raft interaction scripts", () => {
  it("has scripts to run", () => {
    // An empty or misplaced testdata folder must not pass as "nothing failed".
    expect(files.length).toBeGreaterThan(10);
  });

  for (const name of files) {
    it(name, () => {
      const path = `${testdataDir}${name}`;
      const source = readFileSync(path, "utf8");
      const items = parseDatadriven(source, name);
      const env = new InteractionEnv();
      const outputs: string[] = [];
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
        if (!rewrite) expect(actual, `${name}:${block.line}: ${block.commandLine}`).toBe(block.expected);
      }
      if (rewrite) writeFileSync(path, renderDatadriven(items, outputs));
      else expect(renderDatadriven(items, outputs)).toBe(source);
    });
  }
});
