#!/bin/sh
# The image's entry point: tallyd, configured by TALLY_* variables (docs/configuration.md). When
# TALLY_NODE_ID is unset the node id comes from the StatefulSet pod ordinal, + 1 (ids start at 1):
# TALLY_POD_INDEX (the downward-API label apps.kubernetes.io/pod-index) or the hostname's -<n> suffix.
set -eu
if [ -z "${TALLY_NODE_ID:-}" ]; then
  host="${HOSTNAME:-}"
  ordinal="${TALLY_POD_INDEX:-${host##*-}}"
  case "$ordinal" in
    '' | *[!0-9]*)
      echo "tally-entrypoint: TALLY_NODE_ID is not set and no pod ordinal found (TALLY_POD_INDEX unset, hostname '$host' does not end in -<n>)" >&2
      exit 2
      ;;
  esac
  TALLY_NODE_ID=$((ordinal + 1))
  export TALLY_NODE_ID
fi
exec /usr/bin/node /app/dist/tallyd.mjs "$@"
