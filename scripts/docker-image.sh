#!/usr/bin/env bash
# Builds the chaos harness's node image without any registry: a rootfs tarball holding this host's
# node binary and the shared libraries ldd lists for it, iptables (nft) for partitions inside the
# containers, and /app: the esbuild bundle of tallyd (dist/tallyd.mjs), proto/, and the node_modules
# it imports (level/classic-level's native prebuild, msgpackr, ...). `docker import` turns it into
# tally-node:<hash of those inputs>; an existing tag is reused. Prints the image name.
# Needs DOCKER_HOST (scripts/docker-up.sh calls this).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
fail() { echo "docker-image: $*" >&2; exit 1; }

bundle="$(node --input-type=module -e 'const { ensureBundle } = await import(process.argv[1]); console.log(ensureBundle("src/server/main.ts", "tallyd"));' "$root/bin/bundle.js")"
[ -f "$bundle" ] || fail "no tallyd bundle at $bundle"
node_bin="$(readlink -f "$(command -v node)")"
iptables_bin="$(readlink -f "$(command -v iptables)")" || fail "iptables is not installed on this host (apt-get install iptables)"
# The packages the bundle imports and theirs; tally lists the server's as optional peer (and dev)
# dependencies, so `npm ls --omit=dev` would leave them out (docs/packaging.md).
mapfile -t modules < <(node "$root/bin/bundle.js" --modules tallyd)
[ "${#modules[@]}" -gt 0 ] || fail "bin/bundle.js --modules found no node_modules for tallyd (run npm ci)"

hash="$( { sha256sum "$bundle" package-lock.json "$node_bin" "$iptables_bin" "$0" scripts/rootfs-lib.sh $(find proto -type f | sort); printf '%s\n' "${modules[@]}"; } | sha256sum | cut -c1-12)"
image="tally-node:$hash"
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{usr/bin,usr/sbin,app/dist,tmp,run,etc,proc,sys,dev,data}
chmod 1777 "$rootfs/tmp"

# shellcheck source=rootfs-lib.sh
source "$root/scripts/rootfs-lib.sh" # copy_with_libs

cp "$node_bin" "$rootfs/usr/bin/node"
copy_with_libs "$node_bin"
# iptables-nft is one multi-call binary; the match/target extensions are dlopened, so copy them all.
cp "$iptables_bin" "$rootfs/usr/sbin/$(basename "$iptables_bin")"
ln -s "$(basename "$iptables_bin")" "$rootfs/usr/sbin/iptables"
# Resolved: iptables looks in its compiled-in /usr/lib/... path, while ldd may name /lib/... (merged /usr).
xtables_dir="$(readlink -f "$(dirname "$(ldd "$iptables_bin" | grep -oE '/[^ ]*libxtables[^ ]*' | head -1)")/xtables")"
[ -d "$xtables_dir" ] || fail "no xtables extensions directory at $xtables_dir"
mkdir -p "$rootfs$xtables_dir"
cp -L "$xtables_dir"/*.so "$rootfs$xtables_dir/"
copy_with_libs "$iptables_bin" "$xtables_dir"/*.so
for lib in /etc/ld.so.cache /etc/nsswitch.conf /etc/protocols /etc/services; do [ -e "$lib" ] && cp -L "$lib" "$rootfs$lib"; done
echo 'root:x:0:0:root:/:/usr/bin/node' >"$rootfs/etc/passwd"

cp "$bundle" "$rootfs/app/dist/tallyd.mjs"
cp -r proto "$rootfs/app/proto"
cp package.json "$rootfs/app/package.json"
for module in "${modules[@]}"; do
  relative="${module#"$root"/}"
  mkdir -p "$rootfs/app/$relative"
  cp -r "$module/." "$rootfs/app/$relative/" # merges: a nested module's parent may already be copied
done
while read -r native; do copy_with_libs "$native"; done < <(find "$rootfs/app/node_modules" -name '*.node' -path '*linux-x64*')

tar -C "$rootfs" -cf "$work/rootfs.tar" .
docker import \
  --change 'WORKDIR /app' \
  --change 'ENV PATH=/usr/sbin:/usr/bin' \
  --change 'ENV GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=262144:glibc.malloc.arena_max=1' \
  --change 'ENTRYPOINT ["/usr/bin/node", "/app/dist/tallyd.mjs"]' \
  "$work/rootfs.tar" "$image" >/dev/null
echo "docker-image: built $image ($(du -sh "$work/rootfs.tar" | cut -f1))" >&2
# Images of older sources: removed unless a container still uses them.
docker image ls tally-node --format '{{.Repository}}:{{.Tag}}' | grep -vxF "$image" | xargs -r docker rmi >/dev/null 2>&1 || true
echo "$image"
