#!/usr/bin/env bash
# test.sh: set up a fresh Debian 12 machine (as root) and run every test suite of dispatch:
#   1. pg_regress (sql/, expected/) on a temporary instance that preloads the library;
#   2. isolation specs (test/isolation): concurrent claims;
#   3. Perl TAP tests (test/t): the worker, restarts, crashes, 16-client claim storm;
#   4. pgTAP suites (test/pgtap) through pg_prove on a throwaway cluster.
# initdb refuses root, so the suites run as the postgres user on a copy of the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

scripts/setup.sh
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PATH="$("$PG_CONFIG" --bindir):$PATH"

work=$(mktemp -d /tmp/dispatch-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -a "$src/." "$work/"
chown -R postgres:postgres "$work"
as_pg() { runuser -u postgres -- env PATH="$PATH" PG_CONFIG="$PG_CONFIG" "$@"; }

status=0
# One make run per suite, so a failure in one still lets the others run and report.
suite() { as_pg make -C "$work" -s PG_CONFIG="$PG_CONFIG" "$@" installcheck; }
show() { for f in "$@"; do [ -f "$f" ] && { echo "---- $f"; tail -n 200 "$f"; }; done; return 0; }

echo "== pg_regress (sql/, expected/)"
if ! suite ISOLATION= TAP_TESTS=; then
  status=1; show "$work/regression.diffs"
fi
echo "== isolation specs (test/isolation)"
if ! suite REGRESS= TAP_TESTS=; then
  status=1; show "$work/test/isolation/output_iso/regression.diffs"
fi
echo "== Perl TAP tests (test/t)"
if ! suite REGRESS= ISOLATION=; then
  status=1; show "$work"/tmp_check/log/regress_log_*
fi

echo "== pgTAP suites (pg_prove)"
if ! "$work/scripts/run-pgtap.sh" "$work"; then status=1; fi

if [ $status -ne 0 ]; then echo "== FAILED"; else echo "== all suites passed"; fi
exit $status
