#!/usr/bin/env bash
# Side-by-side HL7 v2 parse benchmark: Sinew's parser (Go) and @medplum/core
# (Node, via ../shared/peers/hl7-parse/run) on the same corpus files, in one
# run, then the ratio of messages per second. Usage: scripts/bench-hl7-peer.sh
#
# The npm peer needs Node, npm and the npm registry (once, to install it into
# its cache). Where npm cannot install it (the CI machines have no npm
# registry) the script says so, prints Sinew's figures alone and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=../shared/corpus/hl7v2
peer=../shared/peers/hl7-parse/run
files=(ADT_A01__hapi_cr.hl7 ADT_A01__fhirconv_rich.hl7)
for f in "${files[@]}"; do
  if [[ ! -f $corpus/$f ]]; then
    echo "bench-hl7-peer: the conformance corpus ($corpus/$f) is not present; it is read in place, beside the repository" >&2
    exit 1
  fi
done
go_out=$(go test -run '^$' -bench 'Parse/(ADT_A01__hapi_cr|ADT_A01__fhirconv_rich)\.hl7$' -benchtime 2s -count 5 ./pkg/hl7)
echo "$go_out" | grep Benchmark

# peer_unavailable prints why the npm peer is skipped, or nothing when it can run.
peer_unavailable() {
  [[ -x $peer ]] || { echo "$peer not present"; return; }
  for tool in node npm; do
    command -v "$tool" >/dev/null || { echo "$tool not installed"; return; }
  done
  local cache=${SINEW_PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sinew-peers/hl7-parse}
  [[ -d $cache/node_modules/@medplum/core ]] && return # installed before
  # Without a registry npm install retries for minutes: probe it first.
  timeout 20 npm ping --fetch-timeout=5000 --fetch-retries=0 >/dev/null 2>&1 ||
    echo "npm cannot reach its registry, so the peer cannot be installed"
}
why=$(peer_unavailable)
if [[ -n $why ]]; then
  echo "bench-hl7-peer: skipping the @medplum/core peer: $why; Sinew's figures above stand alone" >&2
  exit 0
fi
if ! peer_out=$("$peer" --seconds 2 "${files[@]/#/$corpus/}"); then
  echo "bench-hl7-peer: skipping the @medplum/core peer: it failed to install or run; Sinew's figures above stand alone" >&2
  exit 0
fi
echo "$peer_out"
for f in "${files[@]}"; do
  ns=$(echo "$go_out" | grep "Parse/$f-" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  peer_rate=$(echo "$peer_out" | grep "\"$corpus/$f\"" | grep medplum | sed 's/.*"msgs_per_s":\([0-9]*\).*/\1/')
  awk -v f="$f" -v ns="$ns" -v peer="$peer_rate" 'BEGIN {
    ours = 1e9 / ns
    printf "%s: sinew %.0f msgs/s (median %.0f ns), @medplum/core %d msgs/s: %.1fx\n", f, ours, ns, peer, ours / peer }'
done
