#!/usr/bin/env bash
# Builds the deployable node image from deploy/Dockerfile, without any registry: the base comes
# from scripts/docker-base-image.sh, the bundles from `npm run build` (or bin/bundle.js's
# ensureBundle where there is no build script). The build context is staged in a temporary
# directory holding only what runs: dist/tallyd.mjs, dist/tallyctl.mjs, proto/, package.json, the
# production packages the bundles import (dist/<name>.deps.json, else `npm ls --omit=dev`) with
# their dependencies, native prebuilds for linux-x64 only, and deploy/entrypoint.sh.
# Tags tally:<version>-<hash of the context> and tally:local; prints the first. Needs DOCKER_HOST.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
fail() { echo "docker-deploy-image: $*" >&2; exit 1; }

base="$("$root/scripts/docker-base-image.sh")" || fail "building the base image failed"

if node -e 'process.exit(require("./package.json").scripts?.build ? 0 : 1)'; then
  npm run --silent build >&2 || fail "npm run build failed"
else
  node --input-type=module -e '
    const { ensureBundle } = await import(process.argv[1]);
    ensureBundle("src/server/main.ts", "tallyd");
    ensureBundle("src/cli/main.ts", "tallyctl");' "$root/bin/bundle.js" || fail "bundling failed"
fi
for name in tallyd tallyctl; do [ -f "dist/$name.mjs" ] || fail "no dist/$name.mjs after the build"; done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
context="$work/context"
mkdir -p "$context/app/dist"
cp dist/tallyd.mjs dist/tallyctl.mjs "$context/app/dist/"
cp -r proto "$context/app/proto"
cp package.json "$context/app/package.json"
cp deploy/Dockerfile deploy/entrypoint.sh "$context/"

# The packages to ship: what the bundles import, and everything those need, found the way Node
# resolves them (a nested node_modules first, then each parent's).
node --input-type=module - "$root" "$context/app" <<'EOF'
import { cpSync, existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join, relative } from "node:path";
const [root, app] = process.argv.slice(2);
const depsFiles = ["tallyd", "tallyctl"].map((name) => join(root, "dist", `${name}.deps.json`));
let wanted;
if (depsFiles.every((file) => existsSync(file))) {
  wanted = [...new Set(depsFiles.flatMap((file) => JSON.parse(readFileSync(file, "utf8"))))];
} else {
  wanted = Object.keys(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).dependencies ?? {});
}
const find = (name, fromDir) => {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dir === root || dirname(dir) === dir) return undefined;
  }
};
const shipped = new Set();
const visit = (name, fromDir, optional) => {
  const dir = find(name, fromDir);
  if (dir === undefined) {
    if (optional) return;
    throw new Error(`package ${name} (needed from ${relative(root, fromDir) || "."}) is not installed: run npm ci`);
  }
  if (shipped.has(dir)) return;
  shipped.add(dir);
  const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  for (const dep of Object.keys(manifest.dependencies ?? {})) visit(dep, dir, false);
  for (const dep of Object.keys(manifest.optionalDependencies ?? {})) visit(dep, dir, true);
};
for (const name of wanted) visit(name, root, false);
for (const dir of shipped) {
  const target = join(app, relative(root, dir));
  cpSync(dir, target, { recursive: true, filter: (source) => !source.slice(dir.length).includes("/node_modules/") });
  // Native prebuilds for other platforms are dead weight in a linux-x64 image.
  const prebuilds = join(target, "prebuilds");
  if (existsSync(prebuilds)) for (const platform of readdirSync(prebuilds)) if (platform !== "linux-x64") rmSync(join(prebuilds, platform), { recursive: true });
}
process.stderr.write(`docker-deploy-image: ${shipped.size} packages for ${wanted.join(", ")}\n`);
EOF

hash="$(cd "$context" && find . -type f -print0 | sort -z | xargs -0 sha256sum | { cat; echo "$base"; } | sha256sum | cut -c1-12)"
version="$(node -p 'require("./package.json").version')"
image="tally:$version-$hash"
if ! docker image inspect "$image" >/dev/null 2>&1; then
  # The legacy builder: this daemon has no BuildKit/buildx, and nothing here needs it.
  DOCKER_BUILDKIT=0 docker build -q -f "$context/Dockerfile" --build-arg "BASE_IMAGE=$base" -t "$image" "$context" >/dev/null \
    || fail "docker build failed (run it without -q to see why: DOCKER_BUILDKIT=0 docker build -f deploy/Dockerfile ...)"
fi
docker tag "$image" tally:local
size="$(docker image inspect "$image" --format '{{.Size}}')"
echo "docker-deploy-image: $image ($((size / 1024 / 1024)) MiB; base $base)" >&2
# Images of older sources: removed unless a container still uses them.
docker image ls tally --format '{{.Repository}}:{{.Tag}}' | grep -vxF -e "$image" -e tally:local | xargs -r docker rmi >/dev/null 2>&1 || true
echo "$image"
