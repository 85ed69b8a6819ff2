/**
 * ESLint for tally (docs/lint.md): `npm run lint` runs it and the layer check
 * (.dependency-cruiser.cjs). Rules are here only when they catch bugs, not to set a style
 * (prettier does that, .prettierrc.json):
 *
 * - promises: a promise nobody awaits loses its error and its ordering (no-floating-promises), an
 *   async function where a void callback is expected runs unawaited (no-misused-promises), and
 *   `await` on a non-promise is a misunderstanding (await-thenable). Everywhere: src, test, bench,
 *   scripts (a test that does not await its `expect(...).rejects` passes whatever happens).
 * - size, src/ only: no file over 600 lines, no function over 100. Every physical line counts,
 *   blank and comment lines too (skipBlankLines and skipComments off), as `wc -l` counts them.
 *   The files over that today are listed in `pendingSplit` below, each at its current size.
 * - determinism, src/raft, src/shard, src/kinds, src/meta: no clock, timers, randomness or process
 *   (`determinism`, also run by test/unit/layering.test.ts). Their imports (no node:*
 *   module, no I/O package) are checked by .dependency-cruiser.cjs.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

const root = import.meta.dirname;

/** The size limits of src/ (STYLE.md: one concern per file, short functions). */
const FILE_LINES_MAX = 600;
const FUNCTION_LINES_MAX = 100;
const sizeRules = (fileLinesMax, functionLinesMax) => ({
  "max-lines": ["error", { max: fileLinesMax, skipBlankLines: false, skipComments: false }],
  "max-lines-per-function": ["error", { max: functionLinesMax, skipBlankLines: false, skipComments: false, IIFEs: true }],
});

/**
 * PENDING SPLIT: the files of src/ that are over the size limits today, each allowed exactly its
 * current size (`lines`: the file; `functionLines`: its longest function, named in the comment), so
 * none can grow. Lower a number when a file shrinks; delete the entry when it is under the limits.
 * The numbers are counted after prettier (applied once, 2026-12-06), which wrapped long lines.
 * Entries of files that no longer exist are reported when ESLint loads this file.
 */
const pendingSplit = {};
for (const file of Object.keys(pendingSplit)) {
  if (!existsSync(join(root, file)))
    console.warn(`eslint.config.js: pendingSplit lists ${file}, which does not exist: update or remove its entry`);
}

/** No clock, timers, randomness or process in the deterministic core: time arrives as Raft ticks and entry timestamps. */
const deterministicCore = {
  files: ["src/raft/**/*.ts", "src/shard/**/*.ts", "src/kinds/**/*.ts", "src/meta/**/*.ts"],
  rules: {
    "no-restricted-globals": [
      "error",
      ...[
        "setTimeout",
        "setInterval",
        "setImmediate",
        "clearTimeout",
        "clearInterval",
        "clearImmediate",
        "performance",
        "process",
        "crypto",
      ].map((name) => ({
        name,
        message:
          "src/raft, src/shard, src/kinds and src/meta stay deterministic: time comes in as ticks and entry timestamps, randomness as a seeded prng",
      })),
    ],
    "no-restricted-properties": [
      "error",
      { object: "Date", property: "now", message: "no clock in the deterministic core" },
      { object: "Math", property: "random", message: "no unseeded randomness in the deterministic core (src/util/prng.ts)" },
    ],
    "no-restricted-syntax": [
      "error",
      { selector: "NewExpression[callee.name='Date'], CallExpression[callee.name='Date']", message: "no clock in the deterministic core" },
    ],
  },
};

/**
 * src/raft, src/shard and src/kinds use no Buffer either (Uint8Array and DataView: the bytes are
 * the same in every runtime). src/meta may: it only compares and copies keys with it, which is deterministic.
 */
const noBuffer = {
  files: ["src/raft/**/*.ts", "src/shard/**/*.ts", "src/kinds/**/*.ts"],
  rules: {
    "no-restricted-globals": [
      ...deterministicCore.rules["no-restricted-globals"],
      { name: "Buffer", message: "src/raft, src/shard and src/kinds use Uint8Array and DataView, not Buffer" },
    ],
  },
};

/** The determinism rules alone (no type information needed): test/unit/layering.test.ts runs them. */
export const determinism = [deterministicCore, noBuffer];

export default defineConfig(
  // src/api/generated: written by proto-loader-gen-types (npm run gen:proto), not by hand.
  { ignores: ["dist/**", "node_modules/**", "data/**", "bench/results/**", "deploy/**", "examples/**", "bin/**", "src/api/generated/**"] },
  {
    files: ["src/**/*.ts", "test/**/*.ts", "bench/**/*.ts", "scripts/**/*.ts"],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: root },
    },
    plugins: { "@typescript-eslint": tseslint.plugin },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/await-thenable": "error",
    },
  },
  { files: ["src/**/*.ts"], rules: sizeRules(FILE_LINES_MAX, FUNCTION_LINES_MAX) },
  ...Object.entries(pendingSplit).map(([file, { lines, functionLines }]) => ({
    files: [file],
    rules: sizeRules(lines ?? FILE_LINES_MAX, functionLines ?? FUNCTION_LINES_MAX),
  })),
  ...determinism,
);
