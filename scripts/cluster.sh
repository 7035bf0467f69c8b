#!/usr/bin/env bash
# cluster.sh: a throwaway PostgreSQL 15 cluster run as the postgres user, on a private port
# and socket directory, with dispatch (and pg_cron) preloaded.
#   scripts/cluster.sh start DIR PORT [extra postgresql.conf lines...]
#   scripts/cluster.sh stop DIR
# initdb refuses to run as root, so everything here runs through `runuser -u postgres`.
set -euo pipefail
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
BIN=$("$PG_CONFIG" --bindir)
as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }

cmd=${1:?start|stop}; dir=${2:?directory}
case "$cmd" in
start)
  port=${3:?port}; shift 3
  rm -rf "$dir"; mkdir -p "$dir"; chown postgres:postgres "$dir"
  as_pg "$BIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-instructions >/dev/null
  {
    echo "port = $port"
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$dir'"
    echo "shared_preload_libraries = 'dispatch,pg_cron'"
    echo "dispatch.database_name = 'postgres'"
    echo "cron.database_name = 'postgres'"
    echo "max_connections = 100"
    echo "log_min_messages = warning"
    for line in "$@"; do echo "$line"; done
  } >> "$dir/data/postgresql.conf"
  as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
  ;;
stop)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
  fi
  ;;
*) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
