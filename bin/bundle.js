// tally's build (docs/packaging.md): `npm run build`, which `prepare` runs on `npm install` in a
// checkout and on `npm pack`. Two outputs in dist/:
//   dist/lib/          the client library (src/index.ts and what it imports): tsc, .js + .d.ts;
//   dist/<name>.mjs    esbuild bundles of tallyd and tallyctl, every package left external, with
//                      dist/<name>.deps.json naming the packages the bundle imports (bin/launch.js
//                      checks them before loading it, so a missing one is one clear sentence).
// The bins only ever load these (bin/launch.js): nothing builds at run time, so a read-only install
// runs and no esbuild service outlives a build. This module needs the devDependencies (esbuild,
// typescript), so it is not in the package: only a checkout builds.
//
// `ensureBundles()` rebuilds the bundles when a file under src/ or proto/ (or this file) is newer:
// vitest's globalSetup and the scripts that launch tallyd call it, so a developer who edits src/
// never runs stale code. Bundling halves start-up CPU against loading each module through tsx,
// which matters when a test or `npm start` launches three nodes at once on two cores.
import { buildSync } from "esbuild";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire, isBuiltin } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");

/** The bundled executables: name -> entry point. bin/<name>.js runs dist/<name>.mjs. */
export const BUNDLES = Object.freeze({ tallyd: "src/server/main.ts", tallyctl: "src/cli/main.ts" });

function newestMtime(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs; // a deleted file shows only as its directory's mtime
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

function sourcesMtime() {
  return Math.max(newestMtime(join(root, "src")), newestMtime(join(root, "proto")), statSync(fileURLToPath(import.meta.url)).mtimeMs);
}

/** "@grpc/grpc-js/build/x" -> "@grpc/grpc-js"; "pino/file" -> "pino". */
function packageName(specifier) {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** Writes `contents` to `path` through a rename, so a concurrent reader never sees half a file. */
function writeAtomically(path, contents) {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, contents);
  renameSync(temporary, path);
}

/** Builds dist/<name>.mjs (+ .map and .deps.json) from `entry`; returns the bundle's path. */
export function buildBundle(entry, name) {
  mkdirSync(dist, { recursive: true });
  const outfile = join(dist, `${name}.mjs`);
  const result = buildSync({
    entryPoints: [join(root, entry)],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    sourcemap: "linked",
    metafile: true,
    write: false,
    outfile,
    logLevel: "error",
  });
  const packages = new Set();
  for (const output of Object.values(result.metafile.outputs)) {
    for (const imported of output.imports) {
      if (imported.external && !isBuiltin(imported.path) && !imported.path.startsWith(".")) packages.add(packageName(imported.path));
    }
  }
  // The deps file and the map go first: whoever sees the new bundle sees its matching companions.
  writeAtomically(join(dist, `${name}.deps.json`), `${JSON.stringify([...packages].sort(), null, 2)}\n`);
  const bundle = result.outputFiles.find((file) => file.path === outfile);
  if (bundle === undefined) throw new Error(`esbuild produced no ${outfile}`);
  for (const file of result.outputFiles) if (file !== bundle) writeAtomically(file.path, file.contents);
  writeAtomically(outfile, bundle.contents);
  return outfile;
}

/**
 * Builds dist/<name>.mjs from `entry` when it is missing or older than the sources; returns its
 * path. Invariant: afterwards the bundle is fresh or absent. A failed build removes the stale one
 * (the bins never build, so they would run it) and throws esbuild's error.
 */
export function ensureBundle(entry, name) {
  const outfile = join(dist, `${name}.mjs`);
  const depsFile = join(dist, `${name}.deps.json`);
  let builtAt = 0;
  try {
    builtAt = Math.min(statSync(outfile).mtimeMs, statSync(depsFile).mtimeMs);
  } catch {
    // not built yet
  }
  if (builtAt >= sourcesMtime()) return outfile;
  try {
    return buildBundle(entry, name);
  } catch (error) {
    rmSync(outfile, { force: true });
    rmSync(depsFile, { force: true });
    throw error;
  }
}

/** "Build if stale" for every bundle: what vitest's globalSetup and the launch scripts call. */
export function ensureBundles() {
  for (const [name, entry] of Object.entries(BUNDLES)) ensureBundle(entry, name);
}

/**
 * The client library: tsc with tsconfig.build.json into a staging directory that then replaces
 * dist/lib, so a file deleted from src/ never lingers in the package.
 */
export function buildLibrary() {
  const staging = join(dist, `.lib-${process.pid}`);
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  try {
    execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json"), "--outDir", staging], { cwd: root, stdio: "inherit" });
    rmSync(join(dist, "lib"), { recursive: true, force: true });
    renameSync(staging, join(dist, "lib"));
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

export function buildAll() {
  buildLibrary();
  for (const [name, entry] of Object.entries(BUNDLES)) buildBundle(entry, name);
}

/** node_modules/<name> as Node resolves it from `fromDir`, or undefined when not installed. */
function installedPackageDir(name, fromDir) {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Every installed package directory bundle `name` needs at run time: the packages its deps file
 * names and their dependencies, transitively (optional ones only when installed). What a
 * production image of tallyd copies (scripts/docker-image.sh).
 */
export function runtimePackageDirs(name) {
  const wanted = JSON.parse(readFileSync(join(dist, `${name}.deps.json`), "utf8"));
  const found = new Set();
  const pending = wanted.map((dependency) => ({ dependency, from: root, optional: false }));
  while (pending.length > 0) {
    const { dependency, from, optional } = pending.pop();
    const dir = installedPackageDir(dependency, from);
    if (dir === undefined) {
      if (optional) continue;
      throw new Error(`${dependency} (needed by ${relative(root, from) || "tally"}) is not installed; run npm ci`);
    }
    if (found.has(dir)) continue;
    found.add(dir);
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    for (const dependency of Object.keys(manifest.dependencies ?? {})) pending.push({ dependency, from: dir, optional: false });
    for (const dependency of Object.keys({ ...manifest.optionalDependencies, ...manifest.peerDependencies })) {
      pending.push({ dependency, from: dir, optional: true });
    }
  }
  return [...found].sort();
}

const USAGE = `usage: node bin/bundle.js              build dist/lib and every bundle (npm run build)
       node bin/bundle.js --stale      rebuild the bundles that are older than src/ or proto/
       node bin/bundle.js --modules N  print the package directories bundle N needs at run time`;

function main(args) {
  if (args.length === 0) return buildAll();
  if (args.length === 1 && args[0] === "--stale") return ensureBundles();
  if (args.length === 2 && args[0] === "--modules" && args[1] in BUNDLES) {
    process.stdout.write(
      runtimePackageDirs(args[1])
        .map((dir) => `${dir}\n`)
        .join(""),
    );
    return;
  }
  process.stderr.write(`${USAGE}\n`);
  process.exitCode = 2;
}

if (process.argv[1] !== undefined && realpathSync(fileURLToPath(import.meta.url)) === realpathSync(process.argv[1])) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    // esbuild and tsc have printed the details above; a stack trace of the build tool adds nothing
    process.stderr.write(`bin/bundle.js: ${error.message.split("\n")[0]}\n`);
    process.exitCode = 1;
  }
}
