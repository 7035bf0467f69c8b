#!/usr/bin/env bash
# placement.sh: how fast dispatch places work, against baselines measured in the same run.
#   1. 100,000 tasks from one dispatch.sweep() (with a dispatch_key per row, and without), and
#      the same sweep run again (every row a duplicate);
#   2. 100,000 tasks from one multi-row INSERT INTO dispatch.tasks (the baseline the sweep is
#      compared with), and the same INSERT with the row trigger off (derived columns given by
#      hand), which prices the trigger per row;
#   3. submit() throughput from 8 pgbench clients, with NOTIFY on and off, against plain
#      INSERTs into an ordinary table from 8 clients;
#   4. claim+complete from 8 clients with task events sent by the notifier (the default), sent
#      by the committing transaction, and off: what NOTIFY costs on the hot path.
# Each placement runs REPEAT times (default 3) on an emptied table; the best run counts.
#   PG_CONFIG=... bench/placement.sh            (as root or postgres; a throwaway cluster)
# Environment: BENCH_PORT (55634), N (100000), REPEAT (3), SECONDS_PER_RUN (15).
set -euo pipefail
cd "$(dirname "$0")/.."
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
BIN=$("$PG_CONFIG" --bindir)
export PATH="$BIN:$PATH"
port=${BENCH_PORT:-55634}
n=${N:-100000}
repeat=${REPEAT:-3}
secs=${SECONDS_PER_RUN:-15}
as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- env PATH="$PATH" "$@"; fi; }

dir=$(mktemp -d /tmp/dispatch-bench.XXXXXX)
chmod 755 "$dir"
scripts/cluster.sh start "$dir/c" "$port" "shared_buffers = 256MB" "wal_buffers = 16MB" "max_wal_size = 4GB"
trap 'scripts/cluster.sh stop "$dir/c"; rm -rf "$dir"' EXIT
sql() { as_pg psql -h "$dir/c" -p "$port" -d postgres -qAtX -v ON_ERROR_STOP=1 "$@"; }

sql -c "CREATE EXTENSION dispatch" -c "CREATE TABLE plain (id bigserial PRIMARY KEY, kind text, payload jsonb)"
sql -c "CREATE TABLE accounts AS SELECT g AS account_id, 'account ' || g AS name FROM generate_series(1, $n) AS g" \
    -c "ALTER TABLE accounts ADD PRIMARY KEY (account_id)" -c "ANALYZE accounts"

reset() { sql -c "TRUNCATE dispatch.tasks, dispatch.task_deps, dispatch.task_waits" -c "SELECT dispatch.rebuild_queue_map()" -c "CHECKPOINT" >/dev/null; }

# One run of the SQL on an emptied table: "wall cpu" seconds, cpu being the backend's own user +
# system time (from /proc/self/stat), which other work on a shared machine disturbs far less.
cpu_sql="SELECT (split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint) FROM pg_read_file('/proc/self/stat') AS s"
once() {
  sql <<EOF | tail -1 | tr '|' ' '
SELECT extract(epoch FROM clock_timestamp()) AS w0, ($cpu_sql) AS c0 \gset
$1;
SELECT extract(epoch FROM clock_timestamp()) - :w0, (($cpu_sql) - :c0) / 100.0;
EOF
}
# best (smallest) wall and cpu of REPEAT runs, each on an emptied table
best() {
  local bw=1e9 bc=1e9 w c
  for _ in $(seq "$repeat"); do
    reset
    read -r w c < <(once "$1")
    bw=$(echo "$w $bw" | awk '{print ($1 < $2 ? $1 : $2)}')
    bc=$(echo "$c $bc" | awk '{print ($1 < $2 ? $1 : $2)}')
  done
  echo "$bw $bc"
}
# the SQL run once more on top of what is there (for re-runs)
again() { once "$1"; }
rate() { echo "$n $1" | awk '{printf "%.0f", $1 / $2}'; }

tpl='{"kind": "brief", "tenant": "acme", "payload": {"account": "{{account_id}}", "name": "{{name}}"}}'
q="SELECT account_id, name FROM accounts"
ins="INSERT INTO dispatch.tasks (kind, tenant, payload, dispatch_key) SELECT 'brief', 'acme', jsonb_build_object('account', account_id, 'name', name), 'brief:' || account_id FROM accounts"
ins_raw="BEGIN; ALTER TABLE dispatch.tasks DISABLE TRIGGER task_row;
  INSERT INTO dispatch.tasks (kind, tenant, payload, dispatch_key, state, sig, skey, ready_at, cost, run_id)
  SELECT 'brief', 'acme', jsonb_build_object('account', account_id, 'name', name), 'brief:' || account_id,
         'ready', 1, now(), now(), 60, dispatch.new_run_id() FROM accounts;
  ALTER TABLE dispatch.tasks ENABLE TRIGGER task_row; COMMIT"

echo "== placing $n tasks (best of $repeat; cpu = the backend's own cpu time)"
read -r w_ins c_ins < <(best "$ins")
read -r w_raw c_raw < <(best "$ins_raw")
read -r w_key c_key < <(best "SELECT dispatch.sweep('$q', '$tpl', 'brief:{{account_id}}')")
read -r w_dup c_dup < <(again "SELECT dispatch.sweep('$q', '$tpl', 'brief:{{account_id}}')")
read -r w_nok c_nok < <(best "SELECT dispatch.sweep('$q', '$tpl')")
read -r w_qui c_qui < <(best "SET dispatch.notify = off; SELECT dispatch.sweep('$q', '$tpl', 'brief:{{account_id}}')")
read -r w_spr c_spr < <(best "SELECT dispatch.sweep('$q', '$tpl', 'brief:{{account_id}}', '1 hour')")

printf "%-44s %7s %9s %7s %9s %9s\n" "placement" "wall s" "tasks/s" "cpu s" "tasks/cpu-s" "vs INSERT"
pr() { printf "%-44s %7.2f %9s %7.2f %9s %8.2fx\n" "$1" "$2" "$(rate "$2")" "$3" "$(rate "$3")" \
         "$(echo "$c_ins $3" | awk '{print $1 / $2}')"; }
pr "multi-row INSERT (baseline)" "$w_ins" "$c_ins"
pr "multi-row INSERT, row trigger off" "$w_raw" "$c_raw"
pr "sweep, dispatch_key per row" "$w_key" "$c_key"
pr "sweep again (all $n duplicates)" "$w_dup" "$c_dup"
pr "sweep, no key" "$w_nok" "$c_nok"
pr "sweep, dispatch_key, dispatch.notify off" "$w_qui" "$c_qui"
pr "sweep, dispatch_key, spread over 1 hour" "$w_spr" "$c_spr"
echo "row trigger: $(echo "$c_ins $c_raw $n" | awk '{printf "%.1f", ($1 - $2) / $3 * 1e6}') us of cpu per row (INSERT with it minus without)"
echo "(vs INSERT compares cpu time: above 1 is cheaper per task than the multi-row INSERT)"

echo "== submit() from 8 clients, ${secs}s each"
cat > "$dir/submit.sql" <<'EOF'
\set t random(1, 8)
SELECT dispatch.submit('bench', '{"n": 1}', tenant => 't' || :t);
EOF
cat > "$dir/submit_key.sql" <<'EOF'
\set t random(1, 8)
\set k random(1, 1000000000)
SELECT dispatch.submit('bench', '{"n": 1}', tenant => 't' || :t, dispatch_key => 'k' || :k);
EOF
cat > "$dir/plain.sql" <<'EOF'
INSERT INTO plain (kind, payload) VALUES ('bench', '{"n": 1}');
EOF
chmod 644 "$dir"/*.sql
tps() {
  reset
  as_pg pgbench -h "$dir/c" -p "$port" -n -c 8 -j 2 -T "$secs" -f "$1" ${2:+"$2"} postgres 2>/dev/null \
    | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | awk '{printf "%.0f", $1}'
}
p_plain=$(tps "$dir/plain.sql")
p_submit=$(tps "$dir/submit.sql")
p_key=$(tps "$dir/submit_key.sql")
sql -c "ALTER DATABASE postgres SET dispatch.notify_deferred = off"
p_direct=$(tps "$dir/submit.sql")
sql -c "ALTER DATABASE postgres RESET dispatch.notify_deferred" -c "ALTER DATABASE postgres SET dispatch.notify = off"
p_quiet=$(tps "$dir/submit.sql")
sql -c "ALTER DATABASE postgres RESET dispatch.notify"
printf "%-46s %10s %9s\n" "8 clients" "per s" "vs plain"
for r in "plain INSERT into an ordinary table:$p_plain" "submit() (events via the notifier):$p_submit" \
         "submit() with a dispatch_key:$p_key" "submit(), NOTIFY from the transaction:$p_direct" \
         "submit(), dispatch.notify off:$p_quiet"; do
  printf "%-46s %10s %8sx\n" "${r%%:*}" "${r##*:}" "$(echo "${r##*:} $p_plain" | awk '{printf "%.2f", $1 / $2}')"
done

echo "== claim+complete from 8 clients, ${secs}s each"
cat > "$dir/claim.sql" <<'EOF'
\set a random(1, 8)
SELECT dispatch.complete(t.task_id, '{"ok": true}') FROM dispatch.dispatch_next('bench-' || :a) AS t WHERE t.task_id IS NOT NULL;
EOF
chmod 644 "$dir/claim.sql"
cc() {
  reset
  sql -c "SELECT count(dispatch.register_agent('bench-' || g, '{}', 1000000)) FROM generate_series(1, 8) AS g" \
      -c "INSERT INTO dispatch.tasks (kind) SELECT 'work' FROM generate_series(1, 300000)" -c "CHECKPOINT" >/dev/null
  as_pg pgbench -h "$dir/c" -p "$port" -n -c 8 -j 2 -T "$secs" -f "$dir/claim.sql" postgres 2>/dev/null \
    | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | awk '{printf "%.0f", $1}'
}
c_deferred=$(cc)
sql -c "ALTER DATABASE postgres SET dispatch.notify_deferred = off"
c_direct=$(cc)
sql -c "ALTER DATABASE postgres RESET dispatch.notify_deferred" -c "ALTER DATABASE postgres SET dispatch.notify = off"
c_off=$(cc)
sql -c "ALTER DATABASE postgres RESET dispatch.notify"
printf "%-46s %10s %9s\n" "claim+complete, 8 clients" "per s" "vs off"
for r in "events via the notifier (default):$c_deferred" "NOTIFY from the transaction:$c_direct" "dispatch.notify off:$c_off"; do
  printf "%-46s %10s %8sx\n" "${r%%:*}" "${r##*:}" "$(echo "${r##*:} $c_off" | awk '{printf "%.2f", $1 / $2}')"
done
