/**
 * What `tallyd --version`, `tallyctl --version` and the tally_build_info metric report: the
 * version of the package.json named "tally" above this file. The file is found by walking up from
 * this module, because the same code runs from src/ (tsx, vitest) and bundled from dist/
 * (bin/bundle.js), which sit at different depths.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface BuildInfo {
  /** package.json "version", or "unknown" when no tally package.json is found above this module. */
  version: string;
  /** The Node.js that runs this process, e.g. "v20.19.2". */
  nodeVersion: string;
}

/** Directories walked up from this module before giving up (src/util -> repo is 2, dist -> repo is 1). */
const PARENT_DIRECTORIES_MAX = 4;

let cached: BuildInfo | undefined;

export function buildInfo(): BuildInfo {
  cached ??= { version: packageVersion(dirname(fileURLToPath(import.meta.url))), nodeVersion: process.version };
  return cached;
}

function packageVersion(start: string): string {
  let dir = start;
  for (let depth = 0; depth <= PARENT_DIRECTORIES_MAX; depth++) {
    try {
      const parsed = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: unknown; version?: unknown };
      if (parsed.name === "tally" && typeof parsed.version === "string") return parsed.version;
    } catch {
      // no package.json here (or not ours): keep walking up
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return "unknown";
}
