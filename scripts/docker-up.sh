#!/usr/bin/env bash
# Brings up a private Docker daemon for the chaos harness's container backend and the compose
# rehearsal (test/deploy), and builds the chaos node image. Installs docker.io with apt when dockerd
# is missing. Idempotent: a second run reuses the daemon this script started (found by the PID in
# its pid file). Every wait has a deadline.
# Prints `DOCKER_HOST=unix://...` as its last line; `scripts/docker-down.sh` stops that daemon.
#
#   TALLY_DOCKER_DIR   state directory (default /tmp/tally-docker): data-root, exec-root, socket,
#                      pid file, dockerd.log
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
state="${TALLY_DOCKER_DIR:-/tmp/tally-docker}"
socket="$state/docker.sock"
pidfile="$state/dockerd.pid"
export DOCKER_HOST="unix://$socket"
READY_TIMEOUT_S=60

fail() { echo "docker-up: $*" >&2; exit 1; }
alive() { [[ "${1:-}" =~ ^[1-9][0-9]*$ ]] && kill -0 "$1" 2>/dev/null; }
answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker-up: dockerd missing; installing docker.io" >&2
  [ "$(id -u)" = 0 ] || fail "dockerd is not installed and this is not root: cannot apt-get install docker.io"
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq || fail "apt-get update failed"
  timeout 600 apt-get install -y -qq docker.io >/dev/null || fail "apt-get install docker.io failed"
  command -v dockerd >/dev/null 2>&1 || fail "docker.io installed but dockerd is still not on PATH"
fi
command -v docker >/dev/null 2>&1 || fail "no docker CLI on PATH"

mkdir -p "$state"
running_pid=""
if [ -f "$pidfile" ]; then
  pid="$(cat "$pidfile")"
  # Only a dockerd we started: the PID must be alive AND still be dockerd (PIDs are reused).
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "dockerd" ]; then running_pid="$pid"; fi
fi

if [ -n "$running_pid" ] && answers; then
  echo "docker-up: reusing dockerd $running_pid on $socket" >&2
else
  [ -z "$running_pid" ] || fail "dockerd $running_pid (ours) is alive but does not answer on $socket; run scripts/docker-down.sh"
  rm -f "$pidfile" "$socket"
  # --iptables=false / --ip-masq=false: never touch the host's firewall; --bridge=none: no docker0,
  # the harness creates its own network per run. Published ports (deploy/compose.yaml's 127.0.0.1
  # client and ops ports) therefore go through docker-proxy, the userland proxy, not NAT rules.
  # The daemon outlives this script (setsid).
  setsid dockerd \
    --data-root "$state/data" \
    --exec-root "$state/exec" \
    --pidfile "$state/dockerd.own.pid" \
    -H "unix://$socket" \
    --iptables=false --ip-masq=false --ip6tables=false --bridge=none \
    --userland-proxy=true \
    >"$state/dockerd.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  deadline=$((SECONDS + READY_TIMEOUT_S))
  until answers; do
    # setsid forks when it leads its process group (job control on): then dockerd's own pid file counts.
    if ! alive "$(cat "$pidfile")" && ! alive "$(cat "$state/dockerd.own.pid" 2>/dev/null)"; then
      tail -n 30 "$state/dockerd.log" >&2 || true
      fail "dockerd exited during start-up (log: $state/dockerd.log)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 30 "$state/dockerd.log" >&2 || true
      fail "dockerd did not answer on $socket within ${READY_TIMEOUT_S}s (log: $state/dockerd.log)"
    fi
    sleep 1
  done
  cp "$state/dockerd.own.pid" "$pidfile"
  echo "docker-up: dockerd $(cat "$pidfile") answering on $socket" >&2
fi

"$here/docker-image.sh" >&2 || fail "building the node image failed"
echo "DOCKER_HOST=$DOCKER_HOST"
