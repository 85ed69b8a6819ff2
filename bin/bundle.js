// Runs a TypeScript entry point from a bundle in dist/, rebuilt with esbuild whenever any file
// under src/ or proto/ is newer than it (so a checkout never runs stale code and needs no build
// step). Bundling halves start-up CPU against loading each module through tsx, which matters
// when a test or `npm start` launches three nodes at once on two cores.
import { buildSync } from "esbuild";
import { mkdirSync, readdirSync, renameSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Builds dist/<name>.mjs from `entry` when it is missing or stale; returns its path. */
export function ensureBundle(entry, name) {
  const outfile = join(root, "dist", `${name}.mjs`);
  let builtAt = 0;
  try {
    builtAt = statSync(outfile).mtimeMs;
  } catch {
    // not built yet
  }
  if (builtAt < Math.max(newestMtime(join(root, "src")), statSync(fileURLToPath(import.meta.url)).mtimeMs)) {
    mkdirSync(join(root, "dist"), { recursive: true });
    const temporary = `${outfile}.${process.pid}.tmp`;
    buildSync({
      entryPoints: [join(root, entry)],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      packages: "external",
      sourcemap: "inline",
      outfile: temporary,
      logLevel: "error",
    });
    renameSync(temporary, outfile); // atomic: concurrent starts never read a half-written bundle
  }
  return outfile;
}

export async function runBundled(entry, name) {
  const outfile = ensureBundle(entry, name);
  await import(pathToFileURL(outfile).href);
}
