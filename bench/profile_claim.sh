#!/usr/bin/env bash
# profile_claim.sh: where one backend's CPU time goes per claim+complete, for the plain baseline
# and for dispatch, with perf sampling one client of the claim_throughput workload.
#
#   bench/profile_claim.sh            (as root: perf needs it; about 1.5 minutes)
#
# For each side: pgbench runs one client (bench/claim_*.pgbench) on SIZE ready tasks; after a
# warm-up, `perf record --call-graph dwarf` samples that client's backend for SECONDS; the tasks
# finished inside the window come from pgbench's per-transaction log. bench/perf_phases.py then
# splits the samples by phase (pick, lock, each SPI statement, trigger, commit, protocol ...).
# Backend CPU per task is a steadier figure than tx/s on a shared machine: it does not count
# time spent waiting for the CPU or the disk.
#
# Knobs: SIZE (100000), SECONDS_PROFILED (10), HZ (999), SIDES ("baseline dispatch"),
# PG_CONFIG, BENCH_PORT, BENCH_NO_INSTALL=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

SIZE=${SIZE:-100000}
SECS=${SECONDS_PROFILED:-10}
HZ=${HZ:-999}
SIDES=${SIDES:-"baseline dispatch"}
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }

bench_start profile_claim claim_setup.sql claim_baseline.pgbench claim_dispatch.pgbench
qf "$work/claim_setup.sql" >/dev/null
q "CALL bench.top_up($SIZE)"
q "VACUUM ANALYZE bench.plain_tasks"; q "VACUUM ANALYZE dispatch.tasks"; q "CHECKPOINT"
echo "== profile_claim $stamp: $SIZE ready tasks, 1 client, perf at $HZ Hz for ${SECS}s per side" | tee "$out/summary.txt"

for sys in $SIDES; do
  mkdir -p "$work/log-$sys"; chown postgres "$work/log-$sys"
  pgb -n -M prepared -c 1 -T $((SECS + 6)) -l --log-prefix="$work/log-$sys/tx" \
      -f "$work/claim_$sys.pgbench" > "$out/pgbench-$sys.txt" 2>&1 &
  bg=$!
  sleep 3
  pid=$(q "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench'")
  [ -n "$pid" ] || { echo "no pgbench backend found" >&2; exit 1; }
  t0=$(date +%s.%N)
  perf record -q -F "$HZ" --call-graph dwarf,32768 -p "$pid" -o "$work/perf-$sys.data" -- sleep "$SECS" \
    >/dev/null 2>&1
  t1=$(date +%s.%N)
  wait $bg
  tasks=$(cat "$work/log-$sys"/tx.* | awk -v a="$t0" -v b="$t1" '{t = $5 + $6 / 1e6} t >= a && t <= b {n++} END {print n + 0}')
  {
    echo
    echo "-- $sys: $(grep '^tps' "$out/pgbench-$sys.txt")"
    perf script -i "$work/perf-$sys.data" 2>/dev/null | python3 "$here/perf_phases.py" "$HZ" "$tasks"
  } | tee -a "$out/summary.txt"
done
if [[ " $SIDES " == *" dispatch "* ]]; then
  echo | tee -a "$out/summary.txt"
  echo "dispatch: index descents per claim (probes) and candidates scored, last 2,000 claims:" | tee -a "$out/summary.txt"
  q "SELECT 'probes ' || (factors->>'probes') || ', candidates ' || candidates || ': ' || count(*)
       FROM (SELECT * FROM dispatch.decisions ORDER BY decision_id DESC LIMIT 2000) AS d
      GROUP BY factors->>'probes', candidates ORDER BY count(*) DESC LIMIT 6" | sed 's/^/  /' | tee -a "$out/summary.txt"
fi
echo "raw results: $out"
