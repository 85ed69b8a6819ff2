/**
 * The layering of docs/architecture.md, enforced in `npm test` by the same checks `npm run lint`
 * runs: the import graph (.dependency-cruiser.cjs: dependencies point down, src/raft, src/shard,
 * src/kinds and src/meta import no node:* module and no I/O package, no cycles) and the
 * determinism rules of eslint.config.js (no clock, timers, Math.random or process in those
 * layers), which is what makes the simulator possible.
 */
import { spawnSync } from "node:child_process";
import { join, relative, resolve } from "node:path";
import { ESLint } from "eslint";
import tseslint from "typescript-eslint";
import { expect, test } from "vitest";
import { determinism } from "../../eslint.config.js";

const root = resolve(import.meta.dirname, "..", "..");

test("imports point down the layers, the deterministic core imports no I/O, and there are no cycles", () => {
  const cruiser = join(root, "node_modules", "dependency-cruiser", "bin", "dependency-cruise.mjs");
  const run = spawnSync(process.execPath, [cruiser, "--config", ".dependency-cruiser.cjs", "--output-type", "err", "src"], {
    cwd: root,
    encoding: "utf8",
  });
  expect(run.error).toBeUndefined();
  expect(`${run.stdout}${run.stderr}`.trim()).toMatch(/^✔ no dependency violations found/);
  expect(run.status).toBe(0);
});

test("the deterministic core reads no clock, timer, randomness or process", async () => {
  const eslint = new ESLint({
    cwd: root,
    overrideConfigFile: true,
    overrideConfig: [{ files: ["**/*.ts"], languageOptions: { parser: tseslint.parser } }, ...determinism],
  });
  const results = await eslint.lintFiles(["src/raft", "src/shard", "src/kinds", "src/meta"]);
  const problems = results.flatMap((result) =>
    result.messages.map((message) => `${relative(root, result.filePath)}:${message.line} ${message.message}`),
  );
  expect(results.length).toBeGreaterThan(0);
  expect(problems).toEqual([]);
});
