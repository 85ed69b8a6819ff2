// What bin/tallyd.js and bin/tallyctl.js run: the prebuilt bundle dist/<name>.mjs (bin/bundle.js
// builds it at `npm run build`, which `prepare` runs on install and pack). Nothing here builds or
// writes, so a read-only install runs. The server's packages are optional peer dependencies of
// tally (a client needs none of them: docs/packaging.md); when one is missing, say which ones and
// how to install them in one sentence instead of an ERR_MODULE_NOT_FOUND from deep in the bundle.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

/** The packages of `names` that do not resolve from this package. */
function missingPackages(names) {
  if (typeof import.meta.resolve !== "function") return []; // Node < 20.6: the import itself reports it
  return names.filter((name) => {
    try {
      import.meta.resolve(name);
      return false;
    } catch (error) {
      return error?.code === "ERR_MODULE_NOT_FOUND";
    }
  });
}

function versionRange(name) {
  const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  return manifest.peerDependencies?.[name] ?? manifest.dependencies?.[name];
}

export async function runBundle(name) {
  const bundle = join(root, "dist", `${name}.mjs`);
  const depsFile = join(root, "dist", `${name}.deps.json`);
  if (!existsSync(bundle) || !existsSync(depsFile)) fail(`${name}: ${bundle} is not built; run npm run build in ${root}`);
  const missing = missingPackages(JSON.parse(readFileSync(depsFile, "utf8")));
  if (missing.length > 0) {
    const specs = missing.map((dependency) => (versionRange(dependency) ? `${dependency}@${versionRange(dependency)}` : dependency));
    fail(
      `${name}: needs ${missing.join(", ")}, server packages that tally lists as optional peer dependencies, so install them next to it: npm install ${specs.map((spec) => `'${spec}'`).join(" ")}`,
    );
  }
  await import(pathToFileURL(bundle).href);
}
