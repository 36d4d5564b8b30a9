#!/usr/bin/env bash
# MLLP commit-ACK through ingest: the three-node compose cluster (TLS,
# R3, encryption at rest, ingest in its own container) beside a single-node
# `sinew up` (embedded nats-server, fsync-always off and on), the same
# mllpload run against each, one after the other in one invocation.
# Usage (from the repository root): deploy/compose/bench/mllp.sh
# Env: CONNS (32), DURATION (15s), MLLPLOAD_DIR (../shared/tools/mllpload).
set -euo pipefail
cd "$(dirname "$0")/../../.."
conns=${CONNS:-32} dur=${DURATION:-15s}
msg=deploy/compose/bench/adt_a08.hl7
load_dir=${MLLPLOAD_DIR:-../shared/tools/mllpload}
[[ -d $load_dir ]] || { echo "mllpload not found at $load_dir (set MLLPLOAD_DIR)" >&2; exit 2; }
go build -C "$load_dir" -o "$PWD/bin/mllpload" .
make -s build images certs compose-env >/dev/null
compose=(docker-compose); docker compose version >/dev/null 2>&1 && compose=(docker compose)
compose+=(-f deploy/compose/docker-compose.yml -p sinewbench$$)
export SINEW_EPICSIM_TRAFFIC=false SINEW_PUBLISH_NATS=127.0.0.1: SINEW_PUBLISH_MLLP=127.0.0.1: SINEW_PUBLISH_FUSION=127.0.0.1: SINEW_PUBLISH_CONSOLE=127.0.0.1:
load() { # label addr
  printf '%s\t' "$1"
  bin/mllpload -addr "$2" -conns "$conns" -duration "$dur" -file "$msg" -prefix "$1-$$"
}

for sync in false true; do
  dir=$(mktemp -d)
  bin/sinew up --no-traffic --sync-always=$sync --data-dir "$dir" --nats-addr 127.0.0.1:14222 --http-addr 127.0.0.1:18080 \
    --mllp-addr 127.0.0.1:12575 --fusion-addr 127.0.0.1:18090 2>"$dir/log" &
  pid=$!
  until bin/sinew health --url http://127.0.0.1:18080/readyz 2>/dev/null; do sleep 1; done
  load "sinew-up-sync-always-$sync" 127.0.0.1:12575
  kill "$pid"; wait "$pid" || true
  rm -rf "$dir"
done

trap '"${compose[@]}" down -v -t 5 >/dev/null 2>&1' EXIT
"${compose[@]}" up -d >/dev/null 2>&1
load compose-3-node-tls "$("${compose[@]}" port ingest 2575)"
