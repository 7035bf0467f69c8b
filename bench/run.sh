#!/usr/bin/env bash
# run.sh: every benchmark of bench/README.md in one command (make bench), one after the other,
# each on its own throwaway cluster, each printing its ratio against the baseline it measures in
# the same run. The full output goes to bench/results/run-<time>.log; the verdicts are printed
# again at the end.
#
#   bench/run.sh                   (as root; about 30 minutes on 2 cores)
#   BENCH_ONLY="claim pick" bench/run.sh     a subset, by the names below
#
# Names: explain (claim-path plans), claim (throughput vs SKIP LOCKED), cpu (CPU per task by
# process, vs SKIP LOCKED), pick (latency 1M vs 10k), dashboard (10M history vs 100k; log all vs sampled), schedules (tick cost 100k vs 1k
# schedules; lateness), placement (sweep/INSERT/submit rates), sim (fairness and deadlines vs
# FIFO and strict priority).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tree=$(cd "$here/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG

declare -A script=(
  [explain]="$here/explain_claim_path.sh"
  [claim]="$here/claim_throughput.sh"
  [cpu]="$here/cpu_per_task.sh"
  [pick]="$here/pick_latency.sh"
  [dashboard]="$here/dashboard.sh"
  [schedules]="$here/tick_schedules.sh"
  [placement]="$here/placement.sh"
  [sim]="$here/sim/run.sh"
)
order="explain claim cpu pick dashboard schedules placement sim"
only=${BENCH_ONLY:-$order}
for name in $only; do
  [ -n "${script[$name]:-}" ] || { echo "bench/run.sh: unknown benchmark '$name' (one of: $order)" >&2; exit 2; }
done

mkdir -p "$tree/bench/results"
log=$tree/bench/results/run-$(date -u +%Y%m%dT%H%M%SZ).log

# Build and install once; the scripts then reuse the installed library.
make -s -C "$tree" PG_CONFIG="$PG_CONFIG" >/dev/null && make -s -C "$tree" PG_CONFIG="$PG_CONFIG" install >/dev/null \
  || { echo "bench/run.sh: build failed" >&2; exit 1; }
export BENCH_NO_INSTALL=1 SIM_NO_INSTALL=1

failed=()
for name in $only; do
  echo "===== $name: ${script[$name]#$tree/}  ($(date -u +%H:%M:%S) UTC)" | tee -a "$log"
  start=$SECONDS
  if ! bash "${script[$name]}" 2>&1 | tee -a "$log"; then
    failed+=("$name")
  fi
  echo "===== $name: $((SECONDS - start)) s" | tee -a "$log"
done

echo
echo "== verdicts (full output: ${log#$tree/})"
grep -E 'PASS|FAIL|ratio|target|Jain| ready, [0-9]+ client|lateness|tasks/s|per s|us per task' "$log" | grep -v '^#' || true
if [ ${#failed[@]} -gt 0 ]; then
  echo "benchmarks that did not finish: ${failed[*]}"
  exit 1
fi
