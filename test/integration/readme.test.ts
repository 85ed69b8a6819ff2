/**
 * Every example in README.md, as a newcomer runs them on a fresh cluster: each ```ts block (through
 * tsx) and each line of each ```sh block (through bash, tallyctl being bin/tallyctl.js against the
 * test cluster), in the order of the file, each of which must run to its end and exit 0. A block
 * that cannot run here says why in a `<!-- snippet: skip (...) -->` marker right before it. The
 * client library snippet runs twice (a second run finds its counters already there) and what it did
 * is checked. The README is read at test time, so an edit that breaks an example fails here.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import { TestCluster } from "../support/cluster.js";
import {
  extractSnippets,
  runShellLine,
  runTypeScript,
  shellCommands,
  shellEnvironment,
  type RunResult,
  type Snippet,
  type SnippetTarget,
} from "../support/readme-snippets.js";

const root = resolve(import.meta.dirname, "..", "..");
const readme = readFileSync(join(root, "README.md"), "utf8");
const { snippets, problems } = extractSnippets(readme);
const runnable = snippets.filter((snippet) => snippet.skip === undefined);
/** The client library's tour: the first TypeScript block that makes a client. */
const clientSnippet = runnable.find((snippet) => snippet.language === "ts" && snippet.code.includes("new TallyClient("));

const TYPESCRIPT_DEADLINE_MS = 30_000;
const SHELL_LINE_DEADLINE_MS = 20_000;

let cluster: TestCluster;
let target: SnippetTarget;
let shellEnv: NodeJS.ProcessEnv;
/** Opening-fence lines of the blocks that ran to their end. */
const ran: number[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 3, shards: 2 });
  target = { root, endpoints: cluster.endpoints(), configPath: cluster.configPath, scratch: mkdtempSync(join(tmpdir(), "tally-readme-")) };
  shellEnv = shellEnvironment(target);
});
afterAll(async () => {
  await cluster?.destroy();
  if (target) rmSync(target.scratch, { recursive: true, force: true });
});

function explain(what: string, result: RunResult): string {
  return `${what}${result.killed ? " (killed at its deadline)" : ""}: exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

async function runTypeScriptBlock(snippet: Snippet, run: string): Promise<void> {
  const result = await runTypeScript(snippet.code, target, TYPESCRIPT_DEADLINE_MS);
  const what = `README.md:${snippet.line} (${run})`;
  expect(result.killed, explain(what, result)).toBe(false);
  expect(result.code, explain(what, result)).toBe(0);
  expect(result.stdout, explain(what, result)).toContain("snippet done");
}

describe("README.md's snippets", () => {
  it("every ts and sh block runs here or says why not, and the markers are well formed", () => {
    expect(problems).toEqual([]);
    for (const snippet of snippets.filter((s) => s.skip !== undefined)) {
      expect(snippet.skip!.split(/\s+/).length, `README.md:${snippet.line}: a skip needs a reason in words`).toBeGreaterThanOrEqual(3);
    }
    expect(clientSnippet, "the client library snippet").toBeDefined();
    expect(runnable.filter((s) => s.language === "sh").length).toBeGreaterThanOrEqual(2);
  });

  describe("on a fresh cluster, in the README's order", () => {
    for (const snippet of runnable) {
      it(`README.md:${snippet.line} (${snippet.language})`, async () => {
        if (snippet.language === "ts") {
          await runTypeScriptBlock(snippet, "first run");
          if (snippet === clientSnippet) {
            await runTypeScriptBlock(snippet, "second run");
            // What it did: 3 - 1, and the -5 refused by the floor changed nothing; the CAS from the read version set the quota.
            const client = new TallyClient({ endpoints: target.endpoints, deadlineMs: 10_000 });
            try {
              expect((await client.get("stock:sku-1")).value).toBe(2n);
              expect((await client.get("quota:acme")).value).toBe(500n);
              expect((await client.get("likes:post-42")).value).toBe(2n);
            } finally {
              await client.close();
            }
          }
        } else {
          const lines = shellCommands(snippet.code);
          expect(lines.length, `README.md:${snippet.line}: an empty shell block`).toBeGreaterThan(0);
          for (const line of lines) {
            const result = await runShellLine(line, target, shellEnv, SHELL_LINE_DEADLINE_MS);
            expect(result.code, explain(`README.md:${snippet.line}: ${line}`, result)).toBe(0);
          }
        }
        ran.push(snippet.line);
      }, 90_000);
    }

    it("every block without a skip marker ran", () => {
      expect(ran).toEqual(runnable.map((snippet) => snippet.line));
    });
  });
});
