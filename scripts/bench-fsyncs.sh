#!/usr/bin/env bash
# Where the durable default's time goes (issue 15): the fsyncs `sinew up`
# makes per message end to end, counted by strace (the system calls
# themselves, not an estimate), and what one JetStream write costs in
# fsyncs and file-system operations, alone and as an atomic batch.
#
# Usage: scripts/bench-fsyncs.sh      (N=10000 dispenses by default)
# Needs strace (Debian's package) and ../shared/tools/mllpload; skipped
# with a message without them. strace slows the traced system calls, so
# read counts here and rates in bench-durable / bench-pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
load=../shared/tools/mllpload
if [[ ! -f $load/main.go ]]; then
  echo "bench-fsyncs: $load is not present (the outside load generator lives beside the repository); skipping" >&2
  exit 0
fi
if ! command -v strace >/dev/null; then
  echo "bench-fsyncs: strace is not installed (apt-get install strace); skipping" >&2
  exit 0
fi
n=${N:-10000}
mkdir -p bin
go build -o bin/sinew ./cmd/sinew
go build -C "$load" -o "$PWD/bin/mllpload" .
go test -c -o bin/streams.test ./pkg/streams
work=$(mktemp -d)
pid=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
syscalls=fsync,fdatasync,sync_file_range,mkdirat,openat,unlinkat,renameat,renameat2
# summary FILE: "fsync=N mkdirat=N ..." from strace -c's table.
summary() { awk '$NF ~ /^(fsync|fdatasync|sync_file_range|mkdirat|openat|unlinkat|renameat|renameat2)$/ {printf "%s=%s ", $NF, $4}' "$1"; }

echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3), commit $(git rev-parse --short HEAD)"

# 1. One JetStream write, alone and in atomic batches, fsync per write.
for sub in 1pub atomic8 atomic32; do
  strace -f -c -o "$work/raw.txt" --seccomp-bpf -e trace=$syscalls \
    bin/streams.test -test.run '^$' -test.bench "RawPublish/sync/$sub\$" -test.benchtime 6400x >/dev/null
  echo "raw sync/$sub messages=6400 $(summary "$work/raw.txt")"
done

# 2. N Willow dispenses through sinew up (durable default), MLLP to fusionsim.
mllp=127.0.0.1:$(free_port) http=127.0.0.1:$(free_port) fus=127.0.0.1:$(free_port)
printf 'MSH|^~\\&|WILLOW|STMARYS|SINEW|STMARYS|20261126075500||RDS^O13^RDS_O13|RX1|P|2.5.1\rPID|1||E1234567^^^STMARYS^MR||TESTPATIENT^ALPHA||19700101|F\rPV1|1|I|ED^^^STMARYS\rORC|RE|RX1|RX1||CM\rRXD|1|0781-3207-95^Ceftriaxone 1 g vial^NDC|%s|2|EA^^UCUM||RX1\rZRX|Y|EDPHARM\r' \
  "$(date -u +%Y%m%d%H%M%S)" >"$work/rds.hl7"
strace -f -c -o "$work/up.txt" --seccomp-bpf -e trace=$syscalls \
  bin/sinew up --no-traffic --data-dir "$work/data" --nats-addr "127.0.0.1:$(free_port)" --http-addr "$http" \
  --mllp-addr "$mllp" --fusion-addr "$fus" --log-level warn >"$work/up.log" 2>&1 &
pid=$!
for _ in $(seq 300); do
  curl -fsS "http://$http/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
# An idle sinew up syncs a few times a minute: left in the count.
out=$(bin/mllpload -addr "$mllp" -conns 32 -n "$n" -duration 30m -file "$work/rds.hl7" -unique ORC-2,ORC-3,RXD-7)
echo "mllpload $out"
rows=0
for _ in $(seq 600); do
  rows=$(curl -fsS "http://$fus/sim/inventory/count" | tr -dc 0-9)
  [[ $rows -ge $n ]] && break
  sleep 1
done
pkill -TERM -P "$pid" || true # sinew up, strace's child: strace then writes its table
wait "$pid" 2>/dev/null || true; pid=
echo "sinew up durable dispenses=$n rows_in_fusion=$rows $(summary "$work/up.txt")"
