#!/usr/bin/env bash
# claim_throughput.sh: claim+complete throughput of dispatch.dispatch_next against the plain
# FOR UPDATE SKIP LOCKED baseline, measured in the same run on the same cluster.
#
#   bench/claim_throughput.sh            (as root or postgres; about 9 minutes)
#
# One throwaway cluster (run as postgres, private port, fsync on, defaults except the settings
# printed). Both queues hold the same workload (bench/claim_setup.sql). Each task is claimed and
# completed in two transactions, by pgbench -M prepared:
#   baseline  bench/claim_baseline.pgbench: UPDATE ... WHERE task_id = (SELECT ... ORDER BY
#             priority, task_id FOR UPDATE SKIP LOCKED LIMIT 1); UPDATE ... SET state = 'done'
#   dispatch  bench/claim_dispatch.pgbench: dispatch_next('agent-N') (decision log on);
#             dispatch.complete(task_id)
# Cells: 1 and 8 clients x 100k and 1M ready tasks. Before every run the queues are topped up
# to the cell's size, the one to be measured is vacuumed, and a checkpoint is taken; baseline
# and dispatch runs alternate (and swap order between repetitions) so drift hits both; each
# cell reports the median of its runs, and the WAL each side writes per task.
# Raw pgbench output goes to bench/results/claim_throughput-<time>/.
#
# Knobs (environment): DURATION (s per run, 15), WARMUP (s, 5), REPS (3), SIZES ("100000
# 1000000"), CLIENTS ("1 8"), PG_CONFIG, BENCH_PORT (55621), BENCH_NO_INSTALL=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

DURATION=${DURATION:-15}
WARMUP=${WARMUP:-5}
REPS=${REPS:-3}
SIZES=${SIZES:-"100000 1000000"}
CLIENTS=${CLIENTS:-"1 8"}

bench_start claim_throughput claim_setup.sql claim_baseline.pgbench claim_dispatch.pgbench
qf "$work/claim_setup.sql" >/dev/null
bench_header claim_throughput \
  "runs: ${DURATION}s each after a ${WARMUP}s warm-up per size, $REPS repetitions, median reported"

runs=$out/runs.tsv
printf 'size\tclients\tsystem\trep\ttps\tlatency_ms\tready_after\twal_bytes_per_task\n' > "$runs"

ready_count() {
  case $1 in
    baseline) q "SELECT count(*) FROM bench.plain_tasks WHERE state = 'ready'" ;;
    dispatch) q "SELECT count(*) FROM dispatch.tasks WHERE state = 'ready' AND reserved_for IS NULL" ;;
  esac
}

# run SYSTEM CLIENTS SECONDS LOGFILE: one pgbench run; prints its tx/s.
run() {
  local sys=$1 c=$2 secs=$3 log=$4
  local j=$(( c < 2 ? c : 2 ))
  if ! pgb -n -M prepared -c "$c" -j "$j" -T "$secs" -f "$work/claim_$sys.pgbench" > "$log" 2>&1; then
    echo "pgbench failed, see $log:" >&2; tail -5 "$log" >&2; exit 1
  fi
  grep -q 'number of failed transactions: 0 ' "$log" || { echo "failed transactions in $log" >&2; exit 1; }
  sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log"
}

# Before each run: the queue about to be measured back to its size and vacuumed, then a
# checkpoint, so every run starts in the same state (and with the same full-page writes ahead).
prepare() {
  q "CALL bench.top_up($1)"
  case $2 in
    baseline) q "VACUUM bench.plain_tasks" ;;
    dispatch) q "VACUUM dispatch.tasks" ;;
    both) q "VACUUM ANALYZE bench.plain_tasks"; q "VACUUM ANALYZE dispatch.tasks" ;;
  esac
  q "CHECKPOINT"
}

for size in $SIZES; do
  echo "-- $size ready tasks: loading"
  prepare "$size" both
  for sys in baseline dispatch; do
    run "$sys" 8 "$WARMUP" "$out/warmup-$size-$sys.txt" >/dev/null
  done
  for rep in $(seq 1 "$REPS"); do
    for c in $CLIENTS; do
      if [ $((rep % 2)) = 1 ]; then order="baseline dispatch"; else order="dispatch baseline"; fi
      for sys in $order; do
        prepare "$size" "$sys"
        log=$out/run-$size-c$c-$sys-$rep.txt
        wal0=$(q "SELECT wal_bytes FROM pg_stat_wal")
        tps=$(run "$sys" "$c" "$DURATION" "$log")
        wal1=$(q "SELECT wal_bytes FROM pg_stat_wal")
        n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
        lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$log")
        left=$(ready_count "$sys")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$c" "$sys" "$rep" "$tps" "$lat" "$left" \
          "$(( (wal1 - wal0) / n ))" >> "$runs"
        printf '   %7s tasks, %d clients, %-8s rep %d: %8.1f tx/s (ready left %s)\n' \
          "$size" "$c" "$sys" "$rep" "$tps" "$left"
      done
    done
  done
done

{
  echo
  echo "claim+complete throughput (tx/s = tasks claimed and completed per second; median of $REPS runs)"
  echo "(pair ratios: dispatch / baseline of the two adjacent runs of each repetition, min..max)"
  printf '%-22s %14s %14s %8s   %s\n' cell "baseline tx/s" "dispatch tx/s" ratio "pair ratios"
  for size in $SIZES; do
    for c in $CLIENTS; do
      b=$(awk -F'\t' -v s="$size" -v c="$c" '$1==s && $2==c && $3=="baseline" {print $5}' "$runs" | median)
      d=$(awk -F'\t' -v s="$size" -v c="$c" '$1==s && $2==c && $3=="dispatch" {print $5}' "$runs" | median)
      pairs=$(awk -F'\t' -v s="$size" -v c="$c" '$1==s && $2==c {t[$4 "," $3] = $5; r[$4] = 1}
                END {for (k in r) print t[k ",dispatch"] / t[k ",baseline"]}' "$runs" | sort -g)
      printf '%-22s %14.1f %14.1f %7.2fx   median %.2fx, %.2f..%.2f\n' \
        "$(numfmt --to=si "$size") ready, $c client$([ "$c" = 1 ] || echo s)" \
        "$b" "$d" "$(echo "$d / $b" | bc -l)" "$(echo "$pairs" | median)" \
        "$(echo "$pairs" | head -1)" "$(echo "$pairs" | tail -1)"
    done
  done
  echo "targets: dispatch >= 0.7x baseline at 8 clients (issue 2), >= 0.8x (issue 3)"
  b=$(awk -F'\t' '$3=="baseline" {print $8}' "$runs" | median)
  d=$(awk -F'\t' '$3=="dispatch" {print $8}' "$runs" | median)
  echo "WAL written per task (median over all runs, checkpoint before each): baseline $b bytes, dispatch $d bytes"
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "raw results: $out"
} | tee "$out/summary.txt"
