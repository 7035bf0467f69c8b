#!/usr/bin/env bash
# tick_schedules.sh: what a tick costs with many schedules, and how late fires are under load.
#
#   PG_CONFIG=... bench/tick_schedules.sh [ROUNDS]      (as root; uses scripts/cluster.sh)
#
# 1. Cost. The baseline is measured in the same run: 1,000 active schedules of which 100 are
#    due, against 100,000 of which 100 are due. Each round clears dispatch.fires and makes 100
#    random schedules due (their slot is today's 00:00 UTC; dispatch.misfire_grace is 2 days, so
#    it counts as on time), then times one SELECT dispatch.tick() in psql. The tick finds due schedules through
#    schedules_due_idx, so the two must cost the same within noise: PASS when the median tick at
#    100,000 is within 2x of the median at 1,000. Each database has no worker: only psql ticks.
# 2. Lateness. A database served by the worker (dispatch.naptime 1 s, the default) holds
#    100,000 schedules 'rate(1000 seconds)' whose anchors are spread 10 ms apart, so 100 fall
#    due every second. After a warm-up, fired_at - due_at over a minute of fires: p50, p99, max.
set -euo pipefail
cd "$(dirname "$0")/.."
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PATH="$("$PG_CONFIG" --bindir):$PATH"
rounds=${1:-10}
port=${BENCH_PORT:-55667}
dir=$(mktemp -d /tmp/dispatch-bench-sched.XXXXXX)
chmod 755 "$dir"
scripts/cluster.sh start "$dir/c" "$port" \
  "dispatch.database_name = 'late'" "dispatch.misfire_grace = '2d'" "shared_buffers = '256MB'" \
  "synchronous_commit = off" "max_wal_size = '4GB'" "checkpoint_timeout = '30min'"
trap 'scripts/cluster.sh stop "$dir/c"; rm -rf "$dir"' EXIT
as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- env PATH="$PATH" "$@"; fi; }
psqlc() { as_pg psql -h "$dir/c" -p "$port" -qAtX -v ON_ERROR_STOP=1 "$@"; }

# Median and 90th percentile of the numbers on stdin.
stats() { sort -n | awk '{v[NR]=$1} END {m=v[int((NR+1)/2)]; p=v[int(NR*0.9+0.5)]; printf "%.2f %.2f\n", m, p}'; }

cost() {
  local n=$1 db=bench_$1
  psqlc -d postgres -c "CREATE DATABASE $db"
  psqlc -d "$db" -c "CREATE EXTENSION dispatch"
  psqlc -d "$db" -c "
    INSERT INTO dispatch.schedules (name, spec, task, starts_at, jitter)
    SELECT 's' || i, '@daily', '{\"kind\": \"bench\", \"requires\": [\"none\"]}', '2030-01-01', '0'
      FROM generate_series(1, $n) AS i;"
  psqlc -d "$db" -c "VACUUM ANALYZE dispatch.schedules"
  # One warm-up tick, then timed rounds. Each round first makes 100 fresh schedules due.
  local script="$dir/rounds_$n.sql"
  : > "$script"
  for r in $(seq 0 "$rounds"); do
    cat >> "$script" <<SQL
\timing off
DELETE FROM dispatch.fires;
UPDATE dispatch.schedules SET next_fire_at = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
 WHERE schedule_id IN (SELECT schedule_id FROM dispatch.schedules WHERE status = 'active'
                        ORDER BY random() LIMIT 100);
\timing on
SELECT (dispatch.tick() ->> 'fired')::int AS fired;
SQL
  done
  local out
  out=$(psqlc -d "$db" -f "$script")
  local fired times
  fired=$(echo "$out" | grep -E '^[0-9]+$' | tail -n +2 | sort -u | tr '\n' ' ')
  times=$(echo "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n +2)
  echo "$n $(echo "$times" | stats) fired-per-tick: $fired"
}

echo "== tick cost: $rounds rounds of 100 due schedules"
base=$(cost 1000)
big=$(cost 100000)
read -r _ m1 p1 _ <<<"$base"
read -r _ m2 p2 _ <<<"$big"
printf "%-30s median %8s ms   p90 %8s ms   (%s)\n" "1,000 schedules, 100 due" "$m1" "$p1" "${base#* * * }"
printf "%-30s median %8s ms   p90 %8s ms   (%s)\n" "100,000 schedules, 100 due" "$m2" "$p2" "${big#* * * }"
ratio=$(awk -v a="$m2" -v b="$m1" 'BEGIN {printf "%.2f", a / b}')
verdict=$(awk -v r="$ratio" 'BEGIN {print (r <= 2.0) ? "PASS" : "FAIL"}')
echo "ratio 100k/1k (median): $ratio  -> $verdict (within 2x)"
echo "== the due-schedule scan at 100,000 (plan of the tick's query)"
psqlc -d bench_100000 -c "EXPLAIN (COSTS OFF) SELECT * FROM dispatch.schedules AS x
  WHERE x.status = 'active' AND x.next_fire_at <= now() ORDER BY x.next_fire_at LIMIT 1000 FOR UPDATE SKIP LOCKED"

echo "== fire lateness: 100,000 schedules, 100 due per second, fired by the worker"
psqlc -d postgres -c "CREATE DATABASE late"
psqlc -d late -c "CREATE EXTENSION dispatch"
psqlc -d late -c "
  INSERT INTO dispatch.schedules (name, spec, task, anchor, jitter)
  SELECT 'l' || i, 'rate(1000 seconds)', '{\"kind\": \"late\", \"requires\": [\"none\"]}',
         'epoch'::timestamptz + make_interval(secs => i * 0.01), '0'
    FROM generate_series(1, 100000) AS i;"
psqlc -d late -c "VACUUM ANALYZE dispatch.schedules"
start=$(psqlc -d late -c "SELECT clock_timestamp() + interval '5 seconds'")
sleep 65
psqlc -d late -c "
  SELECT format('fires %s in %s s (%s/s); lateness p50 %s ms, p99 %s ms, max %s ms; skipped %s, failed %s',
         count(*) FILTER (WHERE status = 'fired'),
         round(extract(epoch FROM max(due_at) - min(due_at))),
         round(count(*) FILTER (WHERE status = 'fired') / greatest(extract(epoch FROM max(due_at) - min(due_at)), 1)),
         round(1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY fired_at - due_at)))::numeric,
         round(1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY fired_at - due_at)))::numeric,
         round(1000 * extract(epoch FROM max(fired_at - due_at)))::numeric,
         count(*) FILTER (WHERE status = 'skipped'), count(*) FILTER (WHERE status = 'failed'))
    FROM dispatch.fires WHERE due_at >= '$start' AND due_at < '$start'::timestamptz + interval '60 seconds'"
