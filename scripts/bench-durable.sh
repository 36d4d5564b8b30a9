#!/usr/bin/env bash
# Durable beside fast, in one run (issue 15): the MLLP commit-ACK rate of
# `sinew up --no-traffic` with fsync per write (the shipped default, group
# commit on), the same with group commit off, and OS-buffered
# (--sync-always=false), measured from outside by ../shared/tools/mllpload
# (a separate process sharing no code with Sinew); then the raw JetStream
# publish ceiling in both modes and the disk's fsync rate, measured beside.
#
# Usage: scripts/bench-durable.sh   (ROUNDS=3 SECONDS_PER_RUN=8 by default)
# Each round runs every mode once, modes interleaved, so a noisy neighbour
# hits them alike; quote the medians. Prints one line per run.
set -euo pipefail
cd "$(dirname "$0")/.."
load=../shared/tools/mllpload
if [[ ! -f $load/main.go ]]; then
  echo "bench-durable: $load is not present (the outside load generator lives beside the repository); skipping" >&2
  exit 0
fi
rounds=${ROUNDS:-3}
secs=${SECONDS_PER_RUN:-8}
mkdir -p bin
go build -o bin/sinew ./cmd/sinew
go build -C "$load" -o "$PWD/bin/mllpload" .
work=$(mktemp -d)
pid=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
# The message of the earlier MLLP figures: an ADT^A08, 0.6 KB.
printf 'MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126120000||ADT^A08^ADT_A01|X|P|2.5\rEVN|A08|20261126120000\rPID|1||E1234567^^^STMARYS^MR~999-99-9999^^^USSSA^SS||DOE^JANE^Q^^^^L||19800101|F|||1 MAIN ST^^SPRINGFIELD^IL^62701^USA^H||(217)555-0100^PRN^PH|||S||E1234567|999-99-9999\rPV1|1|I|4W^401^A^STMARYS||||1234^SMITH^JOHN^^^DR^MD|||MED||||7|||1234^SMITH^JOHN^^^DR^MD|IN||SELF|||||||||||||||||||STMARYS||A|||20261126080000\r' >"$work/msg.hl7"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# start MODE: sinew up in a fresh data dir, waiting for /readyz.
start() {
  local flags=() env=()
  case $1 in
  durable) ;;
  durable-nogroup) env=(SINEW_INGEST_HL7_GROUP_COMMIT_OFF=true) ;;
  buffered) flags=(--sync-always=false) ;;
  esac
  mllp=127.0.0.1:$(free_port) http=127.0.0.1:$(free_port)
  rm -rf "$work/data"
  env "${env[@]}" bin/sinew up --no-traffic --data-dir "$work/data" --nats-addr "127.0.0.1:$(free_port)" \
    --http-addr "$http" --mllp-addr "$mllp" --fusion-addr "127.0.0.1:$(free_port)" --log-level warn "${flags[@]}" \
    >"$work/up.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do
    curl -fsS "http://$http/readyz" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "bench-durable: sinew up ($1) not ready; its log:" >&2
  cat "$work/up.log" >&2
  exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3), commit $(git rev-parse --short HEAD)"
for r in $(seq "$rounds"); do
  for mode in durable buffered durable-nogroup; do
    start "$mode"
    for run in "32conns:-conns 32" "1conn:-conns 1" "steady2000:-conns 8 -rate 2000"; do
      name=${run%%:*}
      # shellcheck disable=SC2086
      out=$(bin/mllpload -addr "$mllp" -duration "${secs}s" -file "$work/msg.hl7" ${run#*:})
      echo "round=$r mode=$mode run=$name $out"
    done
    stop
  done
done
echo "# raw JetStream publish (no Sinew code but the publish call) and the disk's fsync rate, beside:"
go test -run '^$' -bench 'RawPublish|DiskFsync' -benchtime 2s -count "$rounds" ./pkg/streams | grep -E '^Benchmark'
