#!/usr/bin/env bash
# Builds the base image deploy/Dockerfile starts FROM, without any registry: a rootfs holding this
# host's node binary and the shared libraries ldd lists for it, dash as /bin/sh (the image's
# entry point script, and RUN steps if a Dockerfile ever needs one), a `tally` user (uid 10001) and
# a /data it owns (a new named volume copies that ownership). `docker import` turns it into
# tally-base:node<major>-<hash of those inputs>, also tagged tally-base:node<major> (the Dockerfile's
# default); an existing tag is reused. Prints the image name. Needs DOCKER_HOST.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fail() { echo "docker-base-image: $*" >&2; exit 1; }
command -v docker >/dev/null 2>&1 || fail "no docker CLI on PATH"

node_bin="$(readlink -f "$(command -v node)")" || fail "node is not on PATH"
shell_bin="$(readlink -f "$(command -v dash)")" || fail "dash is not installed on this host (apt-get install dash)"
major="$("$node_bin" -p 'process.versions.node.split(".")[0]')"
hash="$( { sha256sum "$node_bin" "$shell_bin" "$0" "$root/scripts/rootfs-lib.sh"; } | sha256sum | cut -c1-12)"
image="tally-base:node$major-$hash"
if docker image inspect "$image" >/dev/null 2>&1; then
  docker tag "$image" "tally-base:node$major"
  echo "$image"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,usr/bin,usr/local/bin,app,etc/tally,tmp,run,proc,sys,dev,data}
chmod 1777 "$rootfs/tmp"

# shellcheck source=rootfs-lib.sh
source "$root/scripts/rootfs-lib.sh" # copy_with_libs

cp "$node_bin" "$rootfs/usr/bin/node"
cp "$shell_bin" "$rootfs/bin/sh"
copy_with_libs "$node_bin" "$shell_bin"
for file in /etc/ld.so.cache /etc/nsswitch.conf /etc/protocols /etc/services; do [ -e "$file" ] && cp -L "$file" "$rootfs$file"; done
printf 'root:x:0:0:root:/:/bin/sh\ntally:x:10001:10001:tally:/data:/bin/sh\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\ntally:x:10001:\n' >"$rootfs/etc/group"
chown 10001:10001 "$rootfs/data"

tar -C "$rootfs" --numeric-owner -cf "$work/rootfs.tar" .
docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'WORKDIR /app' \
  --change 'CMD ["/usr/bin/node"]' \
  "$work/rootfs.tar" "$image" >/dev/null
docker tag "$image" "tally-base:node$major"
echo "docker-base-image: built $image ($(du -sh "$work/rootfs.tar" | cut -f1)) from $node_bin ($("$node_bin" -v))" >&2
# Bases of older inputs: removed unless an image still uses them.
docker image ls tally-base --format '{{.Repository}}:{{.Tag}}' | grep -vxF -e "$image" -e "tally-base:node$major" | xargs -r docker rmi >/dev/null 2>&1 || true
echo "$image"
