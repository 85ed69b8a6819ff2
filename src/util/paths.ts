import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Absolute path of a file in the repository's proto/ folder. Found by walking up from this
 * module, so it works from src/ (tsx, vitest) and from a bundle in dist/ alike.
 */
export function protoFile(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, "proto", name);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find proto/${name} above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}
