#!/usr/bin/env bash
# callgrind_pick.sh: CPU instructions per dispatch_next with 1M ready tasks against 10k, on the
# pick_latency workload (bench/pick_setup.sql: 1,000 tenants, 50 signatures, 100 agents). The
# noise-free companion of pick_latency.sh: it shows how much of a latency ratio is work done and
# how much is the machine (caches, neighbours).
#
#   bench/callgrind_pick.sh            (as root or postgres; about 3 minutes)
#
# Both databases are built and the server stopped; then one single-user backend per database
# runs bench.measure() under callgrind: a warm-up CALL, then N claims, dumped separately.
#
# Knobs: N (500), CALLGRIND_CACHE_SIM=1 (also last-level cache misses per part, about twice as
# slow), PG_CONFIG, BENCH_PORT, BENCH_NO_INSTALL=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BENCH_DBS=lat10k,lat1m
source "$here/lib.sh"

N=${N:-500}
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }

bench_start callgrind_pick pick_setup.sql
declare -A SIZE=([lat10k]=10000 [lat1m]=1000000)
for db in lat10k lat1m; do
  qd postgres "CREATE DATABASE $db" >/dev/null
  qd "$db" "CREATE EXTENSION dispatch"
  qf "$work/pick_setup.sql" "$db" >/dev/null
  qd "$db" "CALL bench.fill(${SIZE[$db]})"
  qd "$db" "VACUUM ANALYZE"
done
cluster_stop "$work/c"

for db in lat10k lat1m; do
  printf "CALL bench.measure(200, 'warmup', false);\nCALL bench.measure(%d, 'counted', false);\n" "$N" \
    > "$work/$db.sql"
  callgrind_single "$db" "$db" 2GB
done

PYTHONPATH=$here python3 - "$out/cg-lat10k.out" "$out/cg-lat1m.out" "$N" <<'EOF' | tee "$out/summary.txt"
import sys
from callgrind_costs import inclusive, events
small, large, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
parts = [("dispatch_next", "dispatch_next"), ("pick_candidates", "  pick"),
         ("qm_read_for_pick", "    read the queue map"), ("_bt_first", "    index descents (all)"),
         ("index_fetch_heap", "    heap fetches (all)"), ("heap_lock_tuple", "  lock the winner"),
         ("update_claimed", "  task -> claimed"), ("_bt_doinsert", "    index inserts (all)"),
         ("XLogInsert", "    WAL records (all)"), ("log_decision", "  decision log")]
tables = [("Ir", "instructions")]
if "DLmr" in events(small):
    tables.append(("DLmr", "last-level cache read misses (simulated)"))
for ev, what in tables:
    a, b = inclusive(small, ev), inclusive(large, ev)
    print(f"{what} per claim, {n} claims each (1,000 tenants, 50 signatures)")
    print(f"{'':36s} {'10k ready':>12s} {'1M ready':>12s} {'ratio':>7s}")
    for fn, label in parts:
        x, y = a.get(fn, 0) / n, b.get(fn, 0) / n
        print(f"{label:36s} {x:12,.1f} {y:12,.1f} {(y / x if x else float('nan')):6.2f}x")
EOF
echo "raw results: $out"
