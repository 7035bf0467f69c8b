#!/usr/bin/env bash
# pick_latency.sh: dispatch_next latency with 1M ready tasks against 10k, with 1,000 tenants and
# 50 capability signatures (bench/pick_setup.sql). Target: median(1M) <= 1.3 x median(10k).
#
#   bench/pick_latency.sh            (as root or postgres; about 4 minutes)
#
# One throwaway cluster, two databases: lat10k holds 10,000 ready tasks, lat1m 1,000,000, same
# tenants, signatures, agents and task mix. One client per database, one claim per transaction:
# bench.measure() times each dispatch_next call server-side (clock_timestamp() before and after,
# inside a procedure that COMMITs after every claim), then completes the task and submits a like
# one, so each queue keeps its size. Rounds alternate between the databases so drift hits both.
#
# Cache: shared_buffers (a quarter of RAM) holds both databases whole, and both are loaded into
# it with pg_prewarm before measuring, so neither side is measured against the disk and neither
# against a cache the other lacks; the script reports the blocks of dispatch.tasks and its
# indexes not found in shared_buffers while measuring (pg_statio) and the share of the heap and
# ready index resident afterwards (pg_buffercache), prints the ready index's size in
# each (the 1M index is ~100x the 10k one, so the claims really descend it), and how many
# distinct tenants and queues the measured claims came from (claims spread over the whole index,
# not one hot page). Each measuring session first reads the whole heap and ready index
# (bench.touch) so that its process has mapped the shared pages it will probe, as a pooled
# connection would have: without that, the 1M side paid thousands of first-touch page faults
# per round that the 10k side did not (perf stat: ~4,600 against ~2,000 per 6 s).
#
# Knobs: CLAIMS (timed claims per database, 6000), ROUNDS (6), WARMUP (500), PG_CONFIG,
# BENCH_PORT (55621), BENCH_NO_INSTALL=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BENCH_DBS=lat10k,lat1m
source "$here/lib.sh"

CLAIMS=${CLAIMS:-6000}
ROUNDS=${ROUNDS:-6}
WARMUP=${WARMUP:-500}
per_round=$(( CLAIMS / ROUNDS ))

bench_start pick_latency pick_setup.sql
bench_header pick_latency

declare -A SIZE=([lat10k]=10000 [lat1m]=1000000)
for db in lat10k lat1m; do
  qd postgres "CREATE DATABASE $db" >/dev/null
  qd "$db" "CREATE EXTENSION dispatch; CREATE EXTENSION pg_prewarm; CREATE EXTENSION pg_buffercache"
  qf "$work/pick_setup.sql" "$db" >/dev/null
  echo "-- $db: loading ${SIZE[$db]} ready tasks"
  qd "$db" "CALL bench.fill(${SIZE[$db]})"
  qd "$db" "VACUUM ANALYZE"
done
q_agents=$(qd lat10k "SELECT count(*) FILTER (WHERE cardinality(capabilities) = 10) || ' generalists, '
                             || count(*) FILTER (WHERE cardinality(capabilities) < 10) || ' specialists with '
                             || min(cardinality(capabilities)) FILTER (WHERE cardinality(capabilities) < 10)
                             || ' to ' || max(cardinality(capabilities)) FILTER (WHERE cardinality(capabilities) < 10)
                             || ' capabilities' FROM dispatch.agents")
echo "agents: $q_agents" | tee -a "$out/settings.txt"

for db in lat10k lat1m; do
  qd "$db" "SELECT count(*) FROM (SELECT pg_prewarm(c.oid) FROM pg_class AS c
              WHERE c.relnamespace = 'dispatch'::regnamespace AND c.relkind IN ('r', 'i')) AS p" >/dev/null
  qd "$db" "CALL bench.measure($WARMUP, 'warmup', false)"
  qd "$db" "CHECKPOINT"
done

# Blocks of dispatch.tasks and its indexes read from outside shared_buffers.
READS_SQL="SELECT coalesce(sum(heap_blks_read + idx_blks_read), 0) FROM pg_statio_all_tables
            WHERE relid = 'dispatch.tasks'::regclass"
reads_before() { qd "$1" "$READS_SQL"; }
declare -A R0
for db in lat10k lat1m; do R0[$db]=$(reads_before "$db"); done
for r in $(seq 1 "$ROUNDS"); do
  for db in lat10k lat1m; do
    [ $((r % 2)) = 0 ] && db=$([ "$db" = lat10k ] && echo lat1m || echo lat10k)
    as_pg psql -h "$CLUSTER_DIR" -p "$BENCH_PORT" -d "$db" -qX -v ON_ERROR_STOP=1 \
      -c "SELECT bench.touch()" -c "CALL bench.measure($per_round, '${SIZE[$db]}', true)" >/dev/null
    echo "   round $r: $db done"
  done
done

report() {
  local db=$1
  local reads; reads=$(qd "$db" "$READS_SQL")
  qd "$db" "SELECT ${SIZE[$db]}, count(*), count(task_id),
                   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY us)::numeric, 1),
                   round(percentile_cont(0.9) WITHIN GROUP (ORDER BY us)::numeric, 1),
                   round(percentile_cont(0.99) WITHIN GROUP (ORDER BY us)::numeric, 1),
                   round(avg(us)::numeric, 1),
                   count(DISTINCT tenant), count(DISTINCT (tenant, sig)),
                   pg_size_pretty(pg_relation_size('dispatch.tasks_ready_idx')),
                   pg_size_pretty(pg_relation_size('dispatch.tasks')),
                   $reads - ${R0[$db]},
                   (SELECT round(100.0 * count(*) FILTER (WHERE b.relfilenode = pg_relation_filenode('dispatch.tasks'))
                                 / (pg_relation_size('dispatch.tasks') / 8192)) || '/' ||
                           round(100.0 * count(*) FILTER (WHERE b.relfilenode = pg_relation_filenode('dispatch.tasks_ready_idx'))
                                 / (pg_relation_size('dispatch.tasks_ready_idx') / 8192))
                      FROM pg_buffercache AS b
                     WHERE b.reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database()))
              FROM bench.latency WHERE size <> 'warmup'"
  qd "$db" "COPY (SELECT * FROM bench.latency) TO STDOUT" > "$out/latency-$db.tsv"
}
{
  echo
  echo "dispatch_next latency, server-side, one claim per transaction (microseconds)"
  printf '%-6s %6s %6s %7s %7s %8s %7s %7s %6s %9s %10s %9s %9s\n' ready claims got median p90 p99 mean \
    tenants queues "ready idx" "tasks heap" blks_read resident
  for db in lat10k lat1m; do report "$db"; done | while IFS='|' read -r size n got p50 p90 p99 mean ten qs isz hsz rd res; do
    printf '%-6s %6s %6s %7s %7s %8s %7s %7s %6s %9s %10s %9s %8s%%\n' "$(numfmt --to=si "$size")" "$n" "$got" \
      "$p50" "$p90" "$p99" "$mean" "$ten" "$qs" "$isz" "$hsz" "$rd" "$res"
    echo "$p50 $p90 $p99" > "$work/q-$size"
  done
  read -r a50 a90 a99 < "$work/q-10000"
  read -r b50 b90 b99 < "$work/q-1000000"
  printf 'ratio 1M / 10k: median %.2fx, p90 %.2fx, p99 %.2fx   (target: median <= 1.3x)\n' \
    "$(echo "$b50 / $a50" | bc -l)" "$(echo "$b90 / $a90" | bc -l)" "$(echo "$b99 / $a99" | bc -l)"
  echo "blks_read: blocks of dispatch.tasks and its indexes not found in shared_buffers while measuring;"
  echo "  PostgreSQL 15 counts each new page (the replacement tasks extend heap and indexes) as one."
  echo "resident: % of the tasks heap / ready index pages in shared_buffers after measuring."
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "raw results: $out"
} | tee "$out/summary.txt"
