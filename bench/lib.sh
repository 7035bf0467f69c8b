# lib.sh: sourced by the bench scripts. A throwaway PostgreSQL 15 cluster run as the postgres
# user on a private port and socket directory, with only dispatch preloaded, and helpers to talk
# to it. Benchmarks need stable settings, so this does not reuse scripts/cluster.sh (which also
# preloads pg_cron and is tuned for the test suites).
#
#   PG_CONFIG    which PostgreSQL (default /usr/lib/postgresql/15/bin/pg_config)
#   BENCH_PORT   the cluster's port (default 55621)
#   BENCH_NO_INSTALL=1   do not build and install the extension first
#   BENCH_DBS    databases the dispatch worker and shared queue maps serve (default: bench)

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
BIN=$("$PG_CONFIG" --bindir)
export PATH="$BIN:$PATH"
BENCH_PORT=${BENCH_PORT:-55621}
BENCH_DB=bench
TREE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- env PATH="$PATH" "$@"; fi; }

# Build and install this tree's dispatch into $PG_CONFIG (as setup.sh does), unless told not to.
bench_install() {
  [ "${BENCH_NO_INSTALL:-0}" = 1 ] && return 0
  make -s -C "$TREE" PG_CONFIG="$PG_CONFIG" >/dev/null
  make -s -C "$TREE" PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# Memory for the cluster: a quarter of RAM for shared_buffers (capped at 8 GB), as usual.
bench_shared_buffers_mb() {
  local kb; kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
  local mb=$(( kb / 1024 / 4 ))
  [ $mb -gt 8192 ] && mb=8192
  echo $mb
}

# cluster_start DIR [extra postgresql.conf lines...]: a fresh cluster, started, with database
# $BENCH_DB holding the extension. Defaults everywhere (fsync and synchronous_commit on) except
# the lines written here, which are printed.
cluster_start() {
  local dir=$1; shift
  rm -rf "$dir"; mkdir -p "$dir"; chown postgres:postgres "$dir"; chmod 755 "$dir"
  as_pg initdb -D "$dir/data" -U postgres --auth=trust --locale=C.UTF-8 --encoding=UTF8 \
    --no-instructions >/dev/null
  {
    echo "port = $BENCH_PORT"
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$dir'"
    echo "shared_preload_libraries = 'dispatch'"
    echo "dispatch.database_name = '${BENCH_DBS:-$BENCH_DB}'"
    echo "max_connections = 40"
    echo "shared_buffers = $(bench_shared_buffers_mb)MB"
    for line in "$@"; do echo "$line"; done
  } > "$dir/bench.conf"
  cat "$dir/bench.conf" >> "$dir/data/postgresql.conf"
  as_pg pg_ctl -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
  CLUSTER_DIR=$dir
  as_pg psql -h "$dir" -p "$BENCH_PORT" -qX -d postgres -c "CREATE DATABASE $BENCH_DB" >/dev/null
  q "CREATE EXTENSION dispatch" >/dev/null
}

cluster_stop() {
  local dir=$1
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg pg_ctl -D "$dir/data" -m fast -w stop >/dev/null || true
  fi
}

# The settings that differ from PostgreSQL's defaults, as the running server reports them.
cluster_settings() {
  q "SELECT name || ' = ' || setting || coalesce(' ' || unit, '')
       FROM pg_settings
      WHERE source NOT IN ('default', 'override', 'client')
         OR name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_level', 'max_wal_size',
                     'checkpoint_timeout', 'jit', 'autovacuum')
      ORDER BY name" | sed 's/^/  /'
  echo "  server: $(q 'SELECT version()')"
  echo "  machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(awk '/^MemTotal:/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
}

# bench_start NAME [FILE...]: the common start of a benchmark. Sets $stamp, $out (its results
# directory, bench/results/NAME-<time>) and $work (a scratch directory the postgres user can
# read, removed with the cluster on exit); installs dispatch (bench_install); starts the cluster
# in $work/c; copies the named files of bench/ into $work for the server to read.
bench_start() {
  local name=$1 f; shift
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  out=$TREE/bench/results/$name-$stamp
  mkdir -p "$out"
  work=$(mktemp -d /tmp/dispatch-bench.XXXXXX)
  chmod 755 "$work"; chown postgres "$work"
  trap 'cluster_stop "$work/c"; rm -rf "$work"' EXIT
  bench_install
  cluster_start "$work/c"
  for f in "$@"; do
    cp "$TREE/bench/$f" "$work/"; chown postgres "$work/$f"
  done
}

# bench_header NAME [LINE...]: the run's settings and load, and any further lines, printed and
# kept in $out/settings.txt, so every result can be read against the machine it came from.
bench_header() {
  local name=$1 line; shift
  {
    echo "== $name $stamp"
    echo "settings (everything else at PostgreSQL's defaults):"
    cluster_settings
    echo "  load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    for line in "$@"; do echo "$line"; done
  } | tee "$out/settings.txt"
}

# callgrind_single LABEL DB SHARED_BUFFERS: with the cluster stopped, runs $work/LABEL.sql (a
# warm-up CALL, then the counted CALL) in one single-user backend of database DB under
# callgrind, which dumps each CALL separately; keeps the counted one as $out/cg-LABEL.out.
# CALLGRIND_CACHE_SIM=1 also simulates the caches (about twice as slow): callgrind_annotate then
# shows last-level misses (DLmr, DLmw) per function.
callgrind_single() {
  local label=$1 db=$2 buffers=$3
  chown postgres "$work/$label.sql"
  (cd "$work" && as_pg valgrind --tool=callgrind --callgrind-out-file="$work/cg-$label.out" \
     --dump-after=ExecuteCallStmt --compress-strings=no --compress-pos=no \
     ${CALLGRIND_CACHE_SIM:+--cache-sim=yes} \
     postgres --single -D "$work/c/data" -c shared_buffers="$buffers" "$db" \
     < "$work/$label.sql" > "$work/valgrind-$label.log" 2>&1) ||
    { echo "valgrind run failed:" >&2; tail -20 "$work/valgrind-$label.log" >&2; exit 1; }
  # Part 1 is start-up and the warm-up; part 2 the counted CALL.
  cp "$work/cg-$label.out.2" "$out/cg-$label.out"
}

# q SQL: one query, unaligned tuples only, errors fatal. qd DB SQL: the same in database DB.
q() { qd "$BENCH_DB" "$1"; }
qd() { as_pg psql -h "$CLUSTER_DIR" -p "$BENCH_PORT" -d "$1" -qXAt -v ON_ERROR_STOP=1 -c "$2"; }
# qf FILE [DB]: a SQL file (readable by postgres).
qf() { as_pg psql -h "$CLUSTER_DIR" -p "$BENCH_PORT" -d "${2:-$BENCH_DB}" -qX -v ON_ERROR_STOP=1 -f "$1"; }
# pgb ARGS...: pgbench against the bench database.
pgb() { as_pg pgbench -h "$CLUSTER_DIR" -p "$BENCH_PORT" "$@" "$BENCH_DB"; }

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
