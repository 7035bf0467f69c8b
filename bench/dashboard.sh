#!/usr/bin/env bash
# dashboard.sh: two questions, each answered against a baseline measured in the same run.
#
#  1. Does dispatch.dashboard() grow with history? It is timed on a database with 10M finished
#     tasks and 1M ready ones, and on one with 100k finished and 10k ready. Both have the same
#     recent work (WINDOW_TASKS finished in the last hour, 100 running on 100 agents), because the
#     dashboard's window is meant to cost what the window holds, and nothing more. PASS when the
#     large database costs at most 2x the small one (medians of interleaved calls).
#  2. What does the decision log cost the claim path? claim+complete throughput (pgbench, 1 and 8
#     clients) with dispatch.log_decisions = all, beside sampled, alternated so drift hits both.
#
# Loading: finished history is inserted with the task triggers disabled (INSERT ... SELECT
# generate_series; those rows are never in a queue), and so are the ready rows, with sig and skey
# filled in as the trigger would; then dispatch.rebuild_queue_map() and
# dispatch.rebuild_task_counts() bring the queue map and the live counts in line. The load takes
# several minutes at full size; smaller sizes can be given for a quick look:
#   HISTORY_BIG=1000000 READY_BIG=100000 bench/dashboard.sh
#
# Environment: PG_CONFIG, BENCH_PORT (default 55434), HISTORY_BIG, READY_BIG, HISTORY_SMALL,
# READY_SMALL, WINDOW_TASKS (5000), CALLS (per round, 10), ROUNDS (5), CLAIM_SECONDS (15),
# CLAIM_PAIRS (alternations, 3), CLAIM_TASKS (queued per claim run, 50000), COUNTERS_AB=1 (also
# time claims with the live-count triggers off), SKIP_CLAIM=1 / SKIP_DASHBOARD=1 to run one half. Run as root (it starts a throwaway cluster as
# the postgres user) after building and installing into PG_CONFIG.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(pwd)
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PATH="$("$PG_CONFIG" --bindir):$PATH"
PORT=${BENCH_PORT:-55434}
HISTORY_BIG=${HISTORY_BIG:-10000000}; READY_BIG=${READY_BIG:-1000000}
HISTORY_SMALL=${HISTORY_SMALL:-100000}; READY_SMALL=${READY_SMALL:-10000}
WINDOW_TASKS=${WINDOW_TASKS:-5000}
CALLS=${CALLS:-10}; ROUNDS=${ROUNDS:-5}; CLAIM_SECONDS=${CLAIM_SECONDS:-15}
CLAIM_PAIRS=${CLAIM_PAIRS:-3}; CLAIM_TASKS=${CLAIM_TASKS:-50000}

dir=$(mktemp -d /tmp/dispatch-bench-dash.XXXXXX)
chmod 755 "$dir"
"$tree/scripts/cluster.sh" start "$dir/c" "$PORT" "shared_buffers = 2GB" "max_wal_size = 8GB" \
  "dispatch.database_name = 'bench_claim'" "log_min_messages = error"
trap '"$tree/scripts/cluster.sh" stop "$dir/c"; rm -rf "$dir"' EXIT
as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- env PATH="$PATH" "$@"; fi; }
q() { local db=$1; shift; as_pg psql -h "$dir/c" -p "$PORT" -qAtX -v ON_ERROR_STOP=1 -d "$db" "$@"; }

echo "== $(date -u +%FT%TZ) dispatch bench/dashboard.sh on $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"

# load DB HISTORY READY: a database with that much history and that many ready tasks.
load() {
  local db=$1 history=$2 ready=$3 t0=$SECONDS
  q postgres -c "CREATE DATABASE $db"
  q "$db" >/dev/null <<SQL
CREATE EXTENSION dispatch;
SELECT count(dispatch.register_agent('agent-' || i, capacity => 4)) FROM generate_series(0, 99) AS i;
INSERT INTO dispatch.tenants (tenant, weight) SELECT 't' || i, 1 + i % 3 FROM generate_series(0, 19) AS i;
-- The signature of a task that requires nothing, as the trigger interns it.
SELECT dispatch.submit('warm-up');
CREATE TEMP TABLE sig AS SELECT sig FROM dispatch.tasks;
DELETE FROM dispatch.tasks;
ALTER TABLE dispatch.tasks DISABLE TRIGGER USER;

-- History, in finishing order: all but the window over the last 30 days, the window in the last hour.
INSERT INTO dispatch.tasks (tenant, kind, priority, state, agent_id, attempts, created_at, ready_at,
                            claimed_at, finished_at, deadline, cost)
SELECT 't' || (i % 20), 'k' || (i % 8), (ARRAY['critical', 'high', 'normal', 'low'])[1 + i % 4],
       CASE WHEN i % 50 = 0 THEN 'dead' ELSE 'done' END, 'agent-' || (i % 100), 1,
       f - interval '70 seconds', f - interval '70 seconds', f - interval '40 seconds' + (i % 7) * interval '1 second',
       f, CASE WHEN i % 3 = 0 THEN f + (i % 5 - 1) * interval '10 seconds' END, 40
  FROM (SELECT i, CASE WHEN i <= $history - $WINDOW_TASKS
                       THEN now() - interval '30 days' + (i::float8 / ($history - $WINDOW_TASKS)) * interval '719 hours'
                       ELSE now() - interval '1 hour' + ((i - ($history - $WINDOW_TASKS))::float8 / $WINDOW_TASKS) * interval '59 minutes'
                  END AS f
          FROM generate_series(1, $history) AS i) AS s;

-- Ready work: sig and skey as the row trigger derives them (default policy bonuses).
INSERT INTO dispatch.tasks (tenant, kind, priority, state, sig, ready_at, skey, cost, created_at)
SELECT 't' || (i % 20), 'k' || (i % 8), p, 'ready', (SELECT sig FROM sig), r,
       r - CASE p WHEN 'critical' THEN interval '3600 s' WHEN 'high' THEN interval '600 s'
                  WHEN 'normal' THEN interval '60 s' ELSE interval '0' END, 60, r
  FROM (SELECT i, (ARRAY['critical', 'high', 'normal', 'low'])[1 + i % 4] AS p,
               now() - (i % 3000) * interval '1 second' AS r
          FROM generate_series(1, $ready) AS i) AS s;

-- One running task on each agent.
INSERT INTO dispatch.tasks (tenant, kind, priority, state, sig, agent_id, attempts, ready_at, claimed_at,
                            lease_until, cost)
SELECT 't' || (i % 20), 'k' || (i % 8), 'normal', 'claimed', (SELECT sig FROM sig), 'agent-' || i, 1,
       now() - interval '100 seconds', now() - (i % 60) * interval '1 second', now() + interval '1 day', 60
  FROM generate_series(0, 99) AS i;
ALTER TABLE dispatch.tasks ENABLE TRIGGER USER;
-- The load may outlast dispatch.agent_timeout: the agents are alive.
UPDATE dispatch.agents SET running = 1, status = 'busy', idle_since = NULL, last_seen = now();
SELECT dispatch.rebuild_queue_map();
SELECT dispatch.rebuild_task_counts();
SQL
  q "$db" -c "VACUUM ANALYZE"
  q "$db" -c "UPDATE dispatch.agents SET last_seen = now()" -c "SELECT dispatch.tick()" >/dev/null
  echo "   $db: $history finished + $ready ready + 100 running, $(q "$db" -c "SELECT pg_size_pretty(pg_total_relation_size('dispatch.tasks'))") with indexes, loaded in $((SECONDS - t0)) s"
}

if [ "${SKIP_DASHBOARD:-0}" != 1 ]; then
  echo "== loading (triggers off for the bulk rows, then rebuild_queue_map and rebuild_task_counts)"
  load dash_small "$HISTORY_SMALL" "$READY_SMALL"
  load dash_big "$HISTORY_BIG" "$READY_BIG"

  timing_sql="CREATE TEMP TABLE IF NOT EXISTS ms (v float8);
DO \$\$ DECLARE t0 timestamptz; BEGIN
  PERFORM dispatch.dashboard();  -- warm
  FOR i IN 1..$CALLS LOOP
    t0 := clock_timestamp(); PERFORM dispatch.dashboard();
    INSERT INTO ms VALUES (extract(epoch FROM clock_timestamp() - t0) * 1000);
  END LOOP; END \$\$;"
  : > "$dir/small.ms"; : > "$dir/big.ms"
  for r in $(seq 1 "$ROUNDS"); do
    q dash_small -c "$timing_sql" -c "SELECT v FROM ms" >> "$dir/small.ms"
    q dash_big -c "$timing_sql" -c "SELECT v FROM ms" >> "$dir/big.ms"
  done
  med() { sort -g "$1" | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.2f", m}'; }
  p90() { sort -g "$1" | awk '{a[NR]=$1} END {printf "%.2f", a[int(NR*0.9)]}'; }
  small=$(med "$dir/small.ms"); big=$(med "$dir/big.ms")
  ratio=$(awk -v a="$big" -v b="$small" 'BEGIN {printf "%.2f", a / b}')
  echo "== dispatch.dashboard(), $((CALLS * ROUNDS)) calls each, interleaved in $ROUNDS rounds"
  echo "   small ($HISTORY_SMALL history, $READY_SMALL ready): median $small ms, p90 $(p90 "$dir/small.ms") ms"
  echo "   big   ($HISTORY_BIG history, $READY_BIG ready): median $big ms, p90 $(p90 "$dir/big.ms") ms"
  verdict=$(awk -v r="$ratio" 'BEGIN {print (r <= 2.0) ? "PASS" : "FAIL"}')
  echo "   big / small = $ratio  (limit 2.0): $verdict"
  echo "   big queue_depth: $(q dash_big -c "SELECT dispatch.dashboard()->'queue_depth'")"
  echo "   big window: $(q dash_big -c "SELECT jsonb_build_object('finished', d->'finished', 'avg_wait', d->'avg_wait_time_seconds', 'sla_pct', d->'sla_compliance_pct', 'fleet', d->'agent_utilization') FROM dispatch.dashboard() AS d")"
  q postgres -c "DROP DATABASE dash_big" -c "DROP DATABASE dash_small"
fi

if [ "${SKIP_CLAIM:-0}" != 1 ]; then
  modes="all sampled"
  [ "${COUNTERS_AB:-0}" = 1 ] && modes="$modes nocount"
  echo "== claim + complete throughput by dispatch.log_decisions ($modes; ${CLAIM_SECONDS} s per run, $CLAIM_PAIRS alternations)"
  [ "${COUNTERS_AB:-0}" = 1 ] && echo "   nocount: log_decisions = all with the live-count triggers disabled (what the counters cost)"
  q postgres -c "CREATE DATABASE bench_claim"
  q bench_claim -c "CREATE EXTENSION dispatch" \
    -c "SELECT count(dispatch.register_agent('agent-' || i, capacity => 1000000)) FROM generate_series(0, 15) AS i" >/dev/null
  # A poll that finds nothing (NULL) completes nothing, and still counts as a transaction.
  printf '%s\n' "SELECT coalesce((dispatch.dispatch_next('agent-' || :client_id)).task_id, 0) AS tid \\gset" \
    "SELECT dispatch.complete(:tid) WHERE :tid > 0;" > "$dir/claim.pgbench"
  chmod 644 "$dir/claim.pgbench"
  run() {  # run MODE CLIENTS -> "tps logged/claims"
    local mode=$1 clients=$2 setting=$1 triggers=ENABLE
    [ "$mode" = nocount ] && { setting=all; triggers=DISABLE; }
    q bench_claim -c "TRUNCATE dispatch.tasks, dispatch.decisions" \
      -c "ALTER TABLE dispatch.tasks $triggers TRIGGER task_count_insert, $triggers TRIGGER task_count_update, $triggers TRIGGER task_count_delete" \
      -c "INSERT INTO dispatch.tasks (kind, tenant) SELECT 'k', 't' || (i % 4) FROM generate_series(1, $CLAIM_TASKS) AS i" \
      -c "ALTER DATABASE bench_claim SET dispatch.log_decisions = '$setting'" >/dev/null
    q bench_claim -c "VACUUM ANALYZE dispatch.tasks, dispatch.agents, dispatch.task_count_deltas" -c "CHECKPOINT" >/dev/null
    local tps
    tps=$(as_pg pgbench -h "$dir/c" -p "$PORT" -n -f "$dir/claim.pgbench" -c "$clients" -j "$clients" \
            -T "$CLAIM_SECONDS" bench_claim 2>"$dir/pgbench.err" | awk '/^tps/ {printf "%.0f", $3}')
    grep -q "aborted" "$dir/pgbench.err" && { echo "pgbench: $(grep -m1 aborted "$dir/pgbench.err")" >&2; }
    echo "$tps $(q bench_claim -c "SELECT (SELECT count(*) FROM dispatch.decisions WHERE kind = 'claim') || '/' || (SELECT count(*) FROM dispatch.tasks WHERE state = 'done')")"
  }
  for clients in 1 8; do
    results=()
    run all "$clients" >/dev/null   # warm-up, not counted
    for pair in $(seq 1 "$CLAIM_PAIRS"); do
      order=$modes
      [ $((pair % 2)) = 0 ] && order=$(echo "$modes" | tr ' ' '\n' | tac | tr '\n' ' ')
      for mode in $order; do
        r=$(run "$mode" "$clients"); results+=("$mode:${r// /:}")
      done
    done
    echo "   $clients client(s), mode:tps:claims logged/claims done: ${results[*]}"
    printf '%s\n' "${results[@]}" | awk -F: -v c="$clients" '
      {v[$1, ++n[$1]] = $2}
      function median(m,   i, j, t, k) {
        k = n[m]; for (i = 1; i <= k; i++) a[i] = v[m, i]
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) {t = a[i]; a[i] = a[j]; a[j] = t}
        return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
      END {
        printf "   %s client(s), median tps: all %.0f, sampled %.0f (sampled/all %.2f)", c, median("all"), median("sampled"), median("sampled") / median("all")
        if (n["nocount"]) printf ", nocount %.0f (all/nocount %.2f)", median("nocount"), median("all") / median("nocount")
        printf "\n" }'
  done
fi
