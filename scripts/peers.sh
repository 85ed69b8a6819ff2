#!/usr/bin/env bash
# Installs the peer systems bench/peers.ts compares tally with: Redis 7.0 and etcd 3.4 (Debian).
# Idempotent: does nothing when the binaries are present. It never starts, stops or reconfigures
# a system service; bench/peers.ts runs its own processes on loopback with private data dirs.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)

if [ ${#need[@]} -eq 0 ]; then
  echo "peers.sh: redis-server, redis-cli, etcd and etcdctl are installed"
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then as_root=(sudo -n); else
    echo "peers.sh: missing ${need[*]} and not root (no sudo): cannot install" >&2
    exit 1
  fi
fi

echo "peers.sh: installing ${need[*]}"
# policy-rc.d 101 stops the packages' maintainer scripts from starting their system services
# (invoke-rc.d honours it); an existing policy-rc.d is left as it was.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 755 "$policy"
  made_policy=1
fi
cleanup() { if [ "$made_policy" -eq 1 ]; then "${as_root[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get install -y --no-install-recommends "${need[@]}"; then
  "${as_root[@]}" apt-get update
  "${as_root[@]}" apt-get install -y --no-install-recommends "${need[@]}"
fi
redis-server --version
etcd --version | sed -n 1p
