#!/usr/bin/env bash
# run.sh: the matching simulation in one command (doc/simulation.md). Builds and installs this
# tree's dispatch (unless SIM_NO_INSTALL=1), starts a throwaway cluster that preloads it, and
# runs the same simulated fleet and workload through dispatch, a FIFO queue and a strict
# priority queue, one after the other, in that cluster. Prints the results table; the full
# results (every window's Jain index too) go to bench/sim/results/seed-N.json.
#
#   PG_CONFIG   which PostgreSQL (default /usr/lib/postgresql/15/bin/pg_config)
#   SIM_PORT    the cluster's port (default 55657)
#   SEED        workload seed (default 1)
#   SPEEDUP     simulated seconds per real second (default 100)
#   DURATION    simulated seconds of arrivals (default 7200; the run lasts until all is done)
#   SYSTEMS     which to run (default dispatch,fifo,priority)
#   POLICY      dispatch policy overrides as JSON, in simulated seconds (default {})
#   OUT         the results file (default bench/sim/results/seed-$SEED.json)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tree=$(cd "$here/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
BIN=$("$PG_CONFIG" --bindir)
SIM_PORT=${SIM_PORT:-55657}
SEED=${SEED:-1}
SPEEDUP=${SPEEDUP:-100}
DURATION=${DURATION:-7200}
SYSTEMS=${SYSTEMS:-dispatch,fifo,priority}
POLICY=${POLICY:-'{}'}
OUT=${OUT:-$here/results/seed-$SEED.json}
as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }

if [ "${SIM_NO_INSTALL:-0}" != 1 ]; then
  make -s -C "$tree" PG_CONFIG="$PG_CONFIG" >/dev/null
  make -s -C "$tree" PG_CONFIG="$PG_CONFIG" install >/dev/null
fi

# The worker ticks once per simulated second, like the default naptime of 1 s.
naptime=$(python3 -c "print(max(10, round(1000 / $SPEEDUP)))")
dir=$(mktemp -d /tmp/dispatch-sim.XXXXXX)
chmod 755 "$dir"; chown postgres:postgres "$dir"
stop() {
  if [ -f "$dir/data/postmaster.pid" ]; then as_pg "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true; fi
  rm -rf "$dir"
}
trap stop EXIT
as_pg "$BIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-instructions >/dev/null
cat >> "$dir/data/postgresql.conf" <<EOF
port = $SIM_PORT
listen_addresses = ''
unix_socket_directories = '$dir'
shared_preload_libraries = 'dispatch'
dispatch.database_name = 'sim'
dispatch.naptime = $naptime
# The driver commits every call; durability is not what is measured, for any system.
synchronous_commit = off
EOF
# Create the database with the worker's database missing (nothing for it to do yet), then
# restart so the worker starts on it at once.
as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "-c dispatch.database_name=postgres" start >/dev/null
as_pg "$BIN/psql" -h "$dir" -p "$SIM_PORT" -qX -d postgres -c "CREATE DATABASE sim" >/dev/null
cp "$here/baselines.sql" "$dir/baselines.sql"; chmod 644 "$dir/baselines.sql"
as_pg "$BIN/psql" -h "$dir" -p "$SIM_PORT" -qX -d sim -v ON_ERROR_STOP=1 \
  -c "CREATE EXTENSION dispatch" -f "$dir/baselines.sql" >/dev/null
as_pg "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null

# Without ticks the first simulated minutes would differ (reservations would not end): wait
# for the worker.
for i in $(seq 1 100); do
  n=$(as_pg "$BIN/psql" -h "$dir" -p "$SIM_PORT" -qXAt -d sim -c \
      "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'dispatch worker' AND datname = 'sim'")
  [ "$n" = 1 ] && break
  sleep 0.2
done
[ "$n" = 1 ] || { echo "run.sh: the dispatch worker did not start for database sim" >&2; exit 1; }

mkdir -p "$here/results"
log_from=$(stat -c %s "$dir/server.log")
echo "bench/sim: seed $SEED, speedup $SPEEDUP, $DURATION s of arrivals, systems $SYSTEMS, policy $POLICY"
echo "  server: $("$BIN/postgres" --version), naptime ${naptime} ms; machine: $(nproc) CPUs"
python3 "$here/sim.py" --psql "$BIN/psql" --host "$dir" --port "$SIM_PORT" --db sim \
  --seed "$SEED" --speedup "$SPEEDUP" --duration "$DURATION" --systems "$SYSTEMS" \
  --policy "$POLICY" --json "$OUT"
# Anything the server logged as an error during the runs.
if tail -c +$((log_from + 1)) "$dir/server.log" | grep -q 'ERROR\|FATAL\|PANIC'; then
  echo "-- server log errors during the runs:"
  tail -c +$((log_from + 1)) "$dir/server.log" | grep 'ERROR\|FATAL\|PANIC' | head -20
fi
