#!/usr/bin/env bash
# Stops the dockerd that scripts/docker-up.sh started, by the PID in its pid file (nothing else),
# after removing the containers, networks and volumes the chaos harness or the compose rehearsal
# may have left behind.
set -uo pipefail
state="${TALLY_DOCKER_DIR:-/tmp/tally-docker}"
pidfile="$state/dockerd.pid"
export DOCKER_HOST="unix://$state/docker.sock"
STOP_TIMEOUT_S=30

[ -f "$pidfile" ] || { echo "docker-down: no pid file ($pidfile): nothing started by docker-up" >&2; exit 0; }
pid="$(cat "$pidfile")"
if [ -z "$pid" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "dockerd" ]; then
  echo "docker-down: dockerd $pid is not running" >&2
  rm -f "$pidfile"
  exit 0
fi
containers="$(timeout 10 docker ps -aq --filter label=tally.chaos 2>/dev/null || true)"
[ -z "$containers" ] || timeout 60 docker rm -f $containers >/dev/null 2>&1 || true
# The compose rehearsal's projects (test/deploy/compose.docker.ts), should one have outlived its run.
rehearsal() { timeout 10 docker "$1" ls $2 --filter label=com.docker.compose.project --format "{{.${3}}} {{.Label \"com.docker.compose.project\"}}" 2>/dev/null | awk '$2 ~ /^tally-rehearsal-/ { print $1 }' || true; }
containers="$(rehearsal container -a ID)"
[ -z "$containers" ] || timeout 60 docker rm -f $containers >/dev/null 2>&1 || true
networks="$(timeout 10 docker network ls -q --filter label=tally.chaos 2>/dev/null || true) $(rehearsal network "" ID)"
[ -z "${networks// /}" ] || timeout 30 docker network rm $networks >/dev/null 2>&1 || true
volumes="$(rehearsal volume "" Name)"
[ -z "$volumes" ] || timeout 30 docker volume rm $volumes >/dev/null 2>&1 || true
kill -TERM "$pid"
deadline=$((SECONDS + STOP_TIMEOUT_S))
while kill -0 "$pid" 2>/dev/null; do
  if [ $SECONDS -ge $deadline ]; then
    echo "docker-down: dockerd $pid ignored SIGTERM for ${STOP_TIMEOUT_S}s; SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    break
  fi
  sleep 0.5
done
rm -f "$pidfile"
echo "docker-down: stopped dockerd $pid" >&2
