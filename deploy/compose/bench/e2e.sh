#!/usr/bin/env bash
# End to end, MLLP receipt to a row in fusionsim: the three-node compose
# cluster (TLS, R3, every service in its own container) beside a
# single-node `sinew up` in the durable default, the same dispenses from
# the same driver (BenchmarkEndToEndExternal in test/e2e: steady 1,000/s
# latency over 8 connections, then the rate over 32), one after the other
# in one invocation. ROUNDS (1) alternates the two.
# Usage (from the repository root): deploy/compose/bench/e2e.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
rounds=${ROUNDS:-1}
make -s build images certs compose-env >/dev/null
compose=(docker-compose); docker compose version >/dev/null 2>&1 && compose=(docker compose)
compose+=(-f deploy/compose/docker-compose.yml -p sinewe2e$$)
export SINEW_EPICSIM_TRAFFIC=false SINEW_PUBLISH_NATS=127.0.0.1: SINEW_PUBLISH_MLLP=127.0.0.1: SINEW_PUBLISH_FUSION=127.0.0.1: SINEW_PUBLISH_CONSOLE=127.0.0.1:
measure() { # label mllp-addr fusion-url
  echo "# $1, load $(cut -d' ' -f1 /proc/loadavg)"
  (cd test/e2e && SINEW_BENCH_MLLP=$2 SINEW_BENCH_FUSION=$3 SINEW_BENCH_RUN_ID="$$$r" \
    go test -run '^$' -bench EndToEndExternal -benchtime 1x -timeout 30m . | grep -E '^Benchmark')
}
trap '"${compose[@]}" down -v -t 5 >/dev/null 2>&1 || true' EXIT
"${compose[@]}" up -d >/dev/null 2>&1
# Every container with a health check healthy before the first message.
until ! docker ps --filter "label=com.docker.compose.project=sinewe2e$$" --format '{{.Status}}' | grep -qE 'starting|unhealthy'; do sleep 2; done
for r in $(seq "$rounds"); do
  dir=$(mktemp -d)
  bin/sinew up --no-traffic --data-dir "$dir" --nats-addr 127.0.0.1:14222 --http-addr 127.0.0.1:18080 \
    --mllp-addr 127.0.0.1:12575 --fusion-addr 127.0.0.1:18090 2>"$dir/log" &
  pid=$!
  until bin/sinew health --url http://127.0.0.1:18080/readyz 2>/dev/null; do sleep 1; done
  measure "single node, sinew up, durable default (round $r)" 127.0.0.1:12575 http://127.0.0.1:18090
  kill "$pid"; wait "$pid" || true
  rm -rf "$dir"
  measure "three nodes, compose, R3 TLS (round $r)" "$("${compose[@]}" port ingest 2575)" "http://$("${compose[@]}" port fusionsim 8090)"
done
