/**
 * The README's first examples, as a newcomer runs them on a fresh cluster: the client library
 * snippet (as a program, twice: a second run finds the counters already there) and every
 * `npx tallyctl` line of the tallyctl section, each of which must exit 0. The README is read at
 * test time, so an edit that breaks an example fails here.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/cli.js";
import { TallyClient } from "../../src/client/index.js";
import { TestCluster } from "../support/cluster.js";
import { runNodeProcess } from "../support/run-process.js";

const root = resolve(import.meta.dirname, "..", "..");
const readme = readFileSync(join(root, "README.md"), "utf8");

/** The first fenced block of `language` after `heading`. */
function block(heading: string, language: string): string {
  const at = readme.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`README.md has no heading ${JSON.stringify(heading)}`);
  const match = new RegExp("```" + language + "\\n([\\s\\S]*?)```").exec(readme.slice(at));
  if (match === null) throw new Error(`README.md: no \`\`\`${language} block after ${heading}`);
  return match[1]!;
}

let cluster: TestCluster;
let scratch: string;
beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 3, shards: 2 });
  scratch = mkdtempSync(join(tmpdir(), "tally-readme-"));
});
afterAll(async () => {
  await cluster?.destroy();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("README examples on a fresh cluster", () => {
  it("the client library snippet runs to the end, twice", async () => {
    const snippet = block("### The client library", "ts");
    const endpointsLiteral = '["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]';
    expect(snippet).toContain(endpointsLiteral);
    expect(snippet).toContain('from "tally"');
    const program = snippet
      .replace('from "tally"', `from ${JSON.stringify(join(root, "src", "index.ts"))}`)
      .replace(endpointsLiteral, JSON.stringify(cluster.endpoints()));
    const file = join(scratch, "snippet.mts");
    writeFileSync(file, `${program}\nconsole.log("snippet done");\n`);
    for (const run of [1, 2]) {
      const result = await runNodeProcess([join(root, "node_modules", "tsx", "dist", "cli.mjs"), file], { cwd: scratch, env: { ...process.env }, deadlineMs: 60_000 });
      expect(result.killed, `run ${run}: ${result.stderr}`).toBe(false);
      expect(result.code, `run ${run}: ${result.stderr}`).toBe(0);
      expect(result.stdout).toContain("snippet done");
    }
    // What it did: 3 - 1, and the -5 refused by the floor changed nothing; the CAS from version 0 created the quota.
    const client = new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 10_000 });
    try {
      expect((await client.get("stock:sku-1")).value).toBe(2n);
      expect((await client.get("quota:acme")).value).toBe(500n);
      expect((await client.get("likes:post-42")).value).toBe(2n);
    } finally {
      await client.close();
    }
  });

  it("every tallyctl line of the tallyctl section exits 0", async () => {
    const lines = block("### tallyctl", "sh")
      .split("\n")
      .map((line) => line.replace(/\s+#.*$/, "").trim())
      .filter((line) => line.startsWith("npx tallyctl "));
    expect(lines.length).toBeGreaterThanOrEqual(10);
    for (const line of lines) {
      expect(line, "a README line tallyctl would get through a shell").not.toMatch(/[$`'"&|;]/);
      const out: string[] = [];
      const code = await runCli(["--endpoints", cluster.endpoints().join(","), ...line.slice("npx tallyctl ".length).split(/\s+/)], {
        stdout: (text) => out.push(text),
        stderr: (text) => out.push(text),
        cwd: scratch,
        env: {},
        createClient: (options) => new TallyClient(options),
      });
      expect(code, `${line}\n${out.join("")}`).toBe(0);
    }
  });
});
