#!/usr/bin/env bash
# Side-by-side HL7 v2 parse benchmark: Sinew's parser (Go) and @medplum/core
# (Node, via ../shared/peers/hl7-parse/run) on the same corpus files, in one
# run, then the ratio of messages per second. Usage: scripts/bench-hl7-peer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=../shared/corpus/hl7v2
files=(ADT_A01__hapi_cr.hl7 ADT_A01__fhirconv_rich.hl7)
go_out=$(go test -run '^$' -bench 'Parse/(ADT_A01__hapi_cr|ADT_A01__fhirconv_rich)\.hl7$' -benchtime 2s -count 5 ./pkg/hl7)
echo "$go_out" | grep Benchmark
peer_out=$(../shared/peers/hl7-parse/run --seconds 2 "${files[@]/#/$corpus/}")
echo "$peer_out"
for f in "${files[@]}"; do
  ns=$(echo "$go_out" | grep "Parse/$f-" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  peer=$(echo "$peer_out" | grep "\"$corpus/$f\"" | grep medplum | sed 's/.*"msgs_per_s":\([0-9]*\).*/\1/')
  awk -v f="$f" -v ns="$ns" -v peer="$peer" 'BEGIN {
    ours = 1e9 / ns
    printf "%s: sinew %.0f msgs/s (median %.0f ns), @medplum/core %d msgs/s: %.1fx\n", f, ours, ns, peer, ours / peer }'
done
