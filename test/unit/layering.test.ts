/**
 * The layering of ../shared/DESIGN.md, enforced: dependencies point down, and src/raft and
 * src/shard stay pure (no node:*, no clock, no timers, no Math.random), which is what makes the
 * simulator possible. Stands in for an eslint no-restricted-imports / import/no-cycle rule.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { expect, test } from "vitest";

const src = resolve(import.meta.dirname, "..", "..", "src");

/** Which src/ folders each folder may import from (itself always allowed). */
const allowed: Record<string, string[]> = {
  util: [],
  raft: ["util"],
  shard: ["util", "raft"],
  meta: ["util"],
  storage: ["util", "raft"],
  transport: ["util", "raft", "storage"],
  api: ["util"],
  server: ["util", "raft", "shard", "meta", "storage", "transport", "api"],
  // shard: the client merges the shards' answers (HyperLogLog registers, mergeTopK,
  // mergeAggregates) with the same pure code that produced them (src/shard/kinds), so both agree.
  client: ["util", "api", "meta", "shard"],
  cli: ["util", "api", "meta", "client"],
};
/**
 * Single files allowed one more layer. src/cli/backup.ts: `tallyctl restore` builds a new
 * cluster's data directories offline with the node's own config loader, storage and snapshot code
 * (src/server/restore.ts), and `tallyctl backup` writes the manifest format that restore reads.
 */
const fileExceptions: Record<string, string[]> = {
  "cli/backup.ts": ["server"],
};
const pure = new Set(["raft", "shard"]);

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : [],
  );
}

test("imports point down the layers and the deterministic core stays pure", () => {
  const problems: string[] = [];
  for (const file of files(src)) {
    const rel = relative(src, file);
    const layer = rel.split("/")[0]!;
    if (!rel.includes("/")) continue; // src/index.ts: the public surface
    const text = readFileSync(file, "utf8");
    const rules = allowed[layer];
    if (rules === undefined) {
      problems.push(`${rel}: folder ${layer} has no layering rule`);
      continue;
    }
    for (const match of text.matchAll(/^\s*(?:import|export)[^'"]*from\s+["']([^"']+)["']/gm)) {
      const target = match[1]!;
      if (target.startsWith(".")) {
        const resolved = relative(src, resolve(join(file, ".."), target));
        const targetLayer = resolved.split("/")[0]!;
        if (resolved.startsWith("..")) problems.push(`${rel}: imports outside src: ${target}`);
        else if (targetLayer !== layer && !rules.includes(targetLayer) && !(fileExceptions[rel] ?? []).includes(targetLayer)) problems.push(`${rel}: ${layer} may not import ${targetLayer} (${target})`);
      } else if (pure.has(layer) && (target.startsWith("node:") || ["fs", "path", "os", "crypto", "timers"].includes(target))) {
        problems.push(`${rel}: ${layer} must not import ${target}`);
      }
    }
    if (pure.has(layer)) {
      const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
      for (const forbidden of [/\bDate\.now\b/, /\bnew Date\b/, /\bMath\.random\b/, /\bsetTimeout\b/, /\bsetInterval\b/, /\bsetImmediate\b/, /\bperformance\.now\b/, /\bprocess\./, /\bBuffer\./]) {
        if (forbidden.test(code)) problems.push(`${rel}: ${layer} must stay deterministic and pure, found ${forbidden.source}`);
      }
    }
  }
  expect(problems).toEqual([]);
});
