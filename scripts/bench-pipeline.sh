#!/usr/bin/env bash
# Issue 15's figures in one invocation, the durable default beside the fast
# mode (--sync-always=false) in every step, so a run on one machine at one
# time compares like with like:
#   1. MLLP commit-ACK from outside (scripts/bench-durable.sh: mllpload, a
#      separate process; the raw JetStream publish ceiling and the disk's
#      fsync rate beside it);
#   2. end to end, MLLP to a row in fusionsim (BenchmarkEndToEnd: steady
#      1,000/s latency and the maximum rate, CPU, writes, subjects and
#      memory per message), E2E_ROUNDS rounds, modes interleaved;
#   3. the cutover drain of a staged flow's backlog of DRAIN_N messages
#      (BenchmarkStagedDrain);
#   4. what the server keeps in memory per message id, subject and KV key
#      (BenchmarkServerStateMemory), for the day-long projection;
#   5. the three-node cluster beside the single node (deploy/compose/bench/
#      mllp.sh for the MLLP commit-ACK, deploy/compose/bench/e2e.sh end to
#      end), when a Docker engine answers and CLUSTER is not 0;
#   6. memory reaching its plateau under a steady stream, the windows of
#      per-message state shortened in proportion (BenchmarkMemoryPlateau:
#      PLATEAU_FOR, 12m; PLATEAU=0 skips it).
#
# Usage: scripts/bench-pipeline.sh | tee bench-pipeline.out
#   E2E_ROUNDS=2 DRAIN_N=100000 ROUNDS=3 (bench-durable) CLUSTER=1 PLATEAU_FOR=12m
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${E2E_ROUNDS:-2}
drain=${DRAIN_N:-100000}
echo "# bench-pipeline $(date -u +%FT%TZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
make -s build
echo "## 1. MLLP commit-ACK (scripts/bench-durable.sh)"
scripts/bench-durable.sh
modes=(durable buffered)
flags() { [[ $1 == buffered ]] && echo --sync-always=false || true; }
echo "## 2. end to end (BenchmarkEndToEnd), $rounds rounds"
for r in $(seq "$rounds"); do
  for m in "${modes[@]}"; do
    echo "# round $r, $m, load $(cut -d' ' -f1 /proc/loadavg)"
    (cd test/e2e && SINEW_BENCH_UP_FLAGS=$(flags "$m") SINEW_BENCH_STREAM_WRITES=1 \
      go test -run '^$' -bench EndToEnd -benchtime 1x -timeout 60m . | grep -E 'Benchmark|writes/msg')
  done
done
echo "## 3. cutover drain of $drain staged messages (BenchmarkStagedDrain)"
for m in "${modes[@]}"; do
  echo "# $m, load $(cut -d' ' -f1 /proc/loadavg)"
  (cd test/e2e && SINEW_BENCH_UP_FLAGS=$(flags "$m") SINEW_BENCH_DRAIN_N=$drain \
    go test -run '^$' -bench StagedDrain -benchtime 1x -timeout 120m . | grep -E 'Benchmark')
done
echo "## 4. server state in memory per message id, subject, KV key (BenchmarkServerStateMemory)"
(cd pkg && go test -run '^$' -bench ServerStateMemory -benchtime 1x ./streams/ | grep -E 'Benchmark')
if [[ ${CLUSTER:-1} != 0 ]] && docker info >/dev/null 2>&1; then
  echo "## 5. three-node cluster beside the single node (deploy/compose/bench/mllp.sh, e2e.sh)"
  deploy/compose/bench/mllp.sh
  deploy/compose/bench/e2e.sh
else
  echo "## 5. cluster: skipped (CLUSTER=0 or no Docker engine)"
fi
if [[ ${PLATEAU:-1} != 0 ]]; then
  echo "## 6. memory under a steady 500/s for ${PLATEAU_FOR:-12m}, windows shortened (BenchmarkMemoryPlateau)"
  (cd test/e2e && SINEW_BENCH_PLATEAU_FOR=${PLATEAU_FOR:-12m} \
    go test -run '^$' -bench MemoryPlateau -benchtime 1x -timeout 60m -v . | grep -E 'Benchmark|rss')
fi
echo "# done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
