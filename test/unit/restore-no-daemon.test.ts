/**
 * `tallyctl backup` and `tallyctl restore` (src/cli/backup.ts) load src/server/backup and
 * src/server/config, never the daemon: not the node core (node.ts, core/), the gRPC server
 * (rpc/), the ops endpoints (ops/) or tallyd's entry point. Follows the relative imports from
 * src/cli/backup.ts transitively.
 */
import { readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { expect, test } from "vitest";

const src = resolve(import.meta.dirname, "..", "..", "src");
const daemonFiles = [/^server\/node\.ts$/, /^server\/core\//, /^server\/rpc\//, /^server\/ops\//, /^server\/main\.ts$/];

function relativeImports(file: string): string[] {
  const targets: string[] = [];
  for (const match of readFileSync(file, "utf8").matchAll(/^\s*(?:import|export)[^'"]*from\s+["']([^"']+)["']/gm)) {
    if (match[1]!.startsWith(".")) targets.push(resolve(join(file, ".."), match[1]!.replace(/\.js$/, ".ts")));
  }
  return targets;
}

test("tallyctl backup and restore load no daemon code", () => {
  const seen = new Set<string>();
  const pending = [join(src, "cli", "backup.ts")];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    pending.push(...relativeImports(file));
  }
  const loaded = [...seen].map((file) => relative(src, file));
  expect(loaded).toContain("server/backup/restore.ts");
  expect(loaded.filter((rel) => daemonFiles.some((pattern) => pattern.test(rel)))).toEqual([]);
});
