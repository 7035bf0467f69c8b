#!/usr/bin/env bash
# run-pgtap.sh [TREE]: run the pgTAP suites (test/pgtap/*.sql) with pg_prove against a
# throwaway cluster that preloads dispatch. Each suite runs in its own fresh database.
set -euo pipefail
tree=${1:-$(cd "$(dirname "$0")/.." && pwd)}
port=${PGTAP_PORT:-55433}
dir=$(mktemp -d /tmp/dispatch-pgtap.XXXXXX)
chmod 755 "$dir"
"$tree/scripts/cluster.sh" start "$dir/c" "$port" "dispatch.max_databases = 64"
trap '"$tree/scripts/cluster.sh" stop "$dir/c"; rm -rf "$dir"' EXIT
as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- env PATH="$PATH" "$@"; fi; }

status=0
shopt -s nullglob   # no suites yet is not an error
for suite in "$tree"/test/pgtap/*.sql; do
  db="t_$(basename "$suite" .sql)"
  as_pg psql -h "$dir/c" -p "$port" -qX -d postgres -c "CREATE DATABASE $db" >/dev/null
  as_pg psql -h "$dir/c" -p "$port" -qX -d "$db" \
    -c "CREATE EXTENSION pgtap; CREATE EXTENSION dispatch;" >/dev/null
  if ! as_pg pg_prove -h "$dir/c" -p "$port" -d "$db" --ext .sql "$suite"; then status=1; fi
done
exit $status
