#!/usr/bin/env bash
# cpu_per_task.sh: where the CPU of a claim+complete goes, dispatch against the plain SKIP LOCKED
# baseline, by process kind: client backends (user and kernel time), dispatch's background
# workers, autovacuum, the WAL writer, checkpointer and the pgbench program itself.
#
#   bench/cpu_per_task.sh            (as root or postgres; about 2 minutes)
#
# The claim_throughput workload (bench/claim_setup.sql, the same two pgbench scripts) at CLIENTS
# clients. Before each run the queue is topped up to SIZE, vacuumed and checkpointed, as in
# claim_throughput.sh. The CPU time of every process of the cluster and of pgbench is read from
# /proc/<pid>/stat before and after the run, and divided by the tasks claimed and completed.
# With 8 clients on a 2-core machine the CPU is saturated, so throughput is about the number of
# cores divided by the CPU a task costs: this shows which process's share makes the difference.
#
# Knobs: DURATION (s, 20), CLIENTS (8), SIZE (100000), REPS (2), PG_CONFIG, BENCH_PORT,
# BENCH_NO_INSTALL=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

DURATION=${DURATION:-20}
CLIENTS=${CLIENTS:-8}
SIZE=${SIZE:-100000}
REPS=${REPS:-2}

bench_start cpu_per_task claim_setup.sql claim_baseline.pgbench claim_dispatch.pgbench
qf "$work/claim_setup.sql" >/dev/null
bench_header cpu_per_task "runs: ${DURATION}s each, $CLIENTS clients, $SIZE ready tasks, $REPS repetitions"

# snapshot FILE: "pid user_ticks system_ticks kind" for the cluster's processes and pgbench. One
# python process reads /proc: a shell loop forking per process is slow enough on a small VM that
# the last (newest: the client backends) are read after pgbench has ended.
snapshot() {
  python3 - "$(head -1 "$work/c/data/postmaster.pid")" > "$1" <<'PY'
import os, sys
pm = sys.argv[1]
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        continue
    f = stat[stat.rindex(")") + 2:].split()
    ppid = f[1]
    if pid == pm:
        kind = "postmaster"
    elif ppid == pm:
        if "[local]" in cmd:
            kind = "client backends"
        elif "autovacuum" in cmd:
            kind = "autovacuum"
        elif "dispatch notifier" in cmd:
            kind = "dispatch notifier"
        elif "dispatch" in cmd:
            kind = "dispatch worker"
        else:
            kind = cmd.replace("postgres:", "").strip()
    elif "pgbench" in cmd:
        kind = "pgbench"
    else:
        continue
    print(pid, f[11], f[12], kind)
PY
}

runs=$out/runs.tsv
printf 'system\trep\ttasks\tkind\tuser_us_per_task\tsys_us_per_task\n' > "$runs"
hz=$(getconf CLK_TCK)
for rep in $(seq 1 "$REPS"); do
  if [ $((rep % 2)) = 1 ]; then order="baseline dispatch"; else order="dispatch baseline"; fi
  for sys in $order; do
    q "CALL bench.top_up($SIZE)"
    case $sys in
      baseline) q "VACUUM bench.plain_tasks" ;;
      dispatch) q "VACUUM dispatch.tasks" ;;
    esac
    q "CHECKPOINT"
    log=$out/run-$sys-$rep.txt
    snapshot "$work/before"
    # pgbench runs in the background so that it is seen (and counted) while it runs.
    t0=$(date +%s.%N)
    pgb -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION" -f "$work/claim_$sys.pgbench" > "$log" 2>&1 &
    bg=$!
    sleep $((DURATION - 2))
    snapshot "$work/after"
    t1=$(date +%s.%N)
    wait $bg || { echo "pgbench failed, see $log" >&2; tail -5 "$log" >&2; exit 1; }
    grep -q 'number of failed transactions: 0 ' "$log" || { echo "failed transactions in $log" >&2; exit 1; }
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log")
    # Tasks done in the window the snapshots cover (the run's rate times the window).
    tasks=$(echo "$tps * ($t1 - $t0)" | bc -l)
    awk -v hz="$hz" -v n="$tasks" -v sys="$sys" -v rep="$rep" '
      NR == FNR { u0[$1] = $2; s0[$1] = $3; next }
      { k = $4; for (i = 5; i <= NF; i++) k = k " " $i
        du[k] += $2 - ($1 in u0 ? u0[$1] : 0); ds[k] += $3 - ($1 in s0 ? s0[$1] : 0) }
      END { for (k in du) if (du[k] + ds[k] > 0)
              printf "%s\t%s\t%.0f\t%s\t%.1f\t%.1f\n", sys, rep, n, k, du[k] * 1e6 / hz / n, ds[k] * 1e6 / hz / n }
    ' "$work/before" "$work/after" >> "$runs"
    printf '   %-8s rep %d: %8.1f tasks/s\n' "$sys" "$rep" "$tps"
  done
done

{
  echo
  echo "CPU per claim+complete, microseconds (user + kernel), median of $REPS runs, $CLIENTS clients"
  printf '%-24s %18s %18s\n' "process" "baseline" "dispatch"
  kinds=$(awk -F'\t' 'NR > 1 {print $4}' "$runs" | sort -u)
  tb=0; td=0
  while IFS= read -r k; do
    cell() {
      local s=$1 u v
      u=$(awk -F'\t' -v s="$s" -v k="$k" '$1 == s && $4 == k {print $5}' "$runs" | median)
      v=$(awk -F'\t' -v s="$s" -v k="$k" '$1 == s && $4 == k {print $6}' "$runs" | median)
      [ "$u" = nan ] && u=0; [ "$v" = nan ] && v=0
      printf '%6.0f + %6.0f' "$u" "$v"
    }
    printf '%-24s %18s %18s\n' "$k" "$(cell baseline)" "$(cell dispatch)"
  done <<< "$kinds"
  for s in baseline dispatch; do
    t=$(awk -F'\t' -v s="$s" '$1 == s {a[$2] += $5 + $6} END {for (r in a) print a[r]}' "$runs" | median)
    printf 'total %-8s %8.0f us per task\n' "$s" "$t"
  done
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "raw results: $out"
} | tee "$out/summary.txt"
