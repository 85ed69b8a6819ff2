/**
 * vitest globalSetup: the tests spawn bin/tallyd.js and bin/tallyctl.js, which run the prebuilt
 * bundles in dist/ and never build (bin/launch.js). Rebuild the stale ones once per run, before any
 * test starts, so a test never runs code older than src/ or proto/. A bundle that does not build
 * is removed (ensureBundle) and reported here, not thrown: the tests that never spawn it still run,
 * and those that do fail with "not built; run npm run build", which shows the error again.
 */
import { BUNDLES, ensureBundle } from "../../bin/bundle.js";

export default function setup(): void {
  for (const [name, entry] of Object.entries(BUNDLES)) {
    try {
      ensureBundle(entry, name);
    } catch (error) {
      process.stderr.write(
        `[build-bundles] dist/${name}.mjs did not build, so every test that runs bin/${name}.js fails: ${(error as Error).message}\n`,
      );
    }
  }
}
