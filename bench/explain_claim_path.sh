#!/usr/bin/env bash
# explain_claim_path.sh: EXPLAIN of every SQL statement the claim path runs, and a check that
# none of the per-claim or per-completion ones scans or sorts.
#
#   bench/explain_claim_path.sh            (as root or postgres; about 1 minute)
#
# On the pick_latency workload (bench/pick_setup.sql) with SIZE ready tasks, analyzed, each
# statement of src/claim.c, src/taskrow.c and complete() is prepared and explained as a generic
# plan (the plan SPI keeps), plus the SQL equivalent of each index descent pick.c makes in C
# (bench/explain_claim_path.sql). Cache loads (signatures, policy) run once per session and are
# shown but not checked: on tables that small a sequential scan is the cheaper plan.
#
# Knobs: SIZE (200000), AGENTS (1000), PG_CONFIG, BENCH_PORT, BENCH_NO_INSTALL=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

SIZE=${SIZE:-200000}
AGENTS=${AGENTS:-1000}

bench_start explain_claim_path pick_setup.sql explain_claim_path.sql
qf "$work/pick_setup.sql" >/dev/null
q "CALL bench.fill($SIZE)"
# A fleet of AGENTS agents (the workload registers 100): with a few pages of agents the planner
# rightly prefers a sequential scan of dispatch.agents to its primary key; that is shown with
# AGENTS=100.
q "SELECT count(dispatch.register_agent('extra-' || g, '{c0,c1,c2}', capacity => 10))
     FROM generate_series(1, $AGENTS - 100) AS g" >/dev/null
q "VACUUM ANALYZE"
# Some claimed and completed tasks, so every state the statements meet is in the statistics.
q "CALL bench.measure(200, 'explain', false)"
q "ANALYZE"

echo "== explain_claim_path $stamp: $SIZE ready tasks, $(q 'SELECT count(*) FROM dispatch.agents') agents, generic plans" \
  | tee "$out/plans.txt"
qf "$work/explain_claim_path.sql" 2>&1 | tee -a "$out/plans.txt"

# Per-claim and per-completion statements: index (or TID) access only, no sort.
checked=$(sed -n '/^==== per claim/,/^==== per new tenant/p' "$out/plans.txt")
bad=$(echo "$checked" | grep -E 'Seq Scan|Sort|Bitmap Heap Scan' || true)
# An index scan without an Index Cond reads the whole index (a small partial one can look cheap
# to the planner): that is a scan too.
bad+=$(echo "$checked" | awk '
  function flush() { if (pending) print "no Index Cond: " node; pending = 0 }
  /Index (Only )?Scan/ { flush(); pending = 1; node = $0; next }
  /Index Cond:/ { pending = 0; next }
  /->|QUERY PLAN|^-- |^$/ { flush() }
  END { flush() }')
echo
if [ -n "$bad" ]; then
  echo "FAIL: a per-claim or per-completion statement scans or sorts:" | tee -a "$out/plans.txt"
  echo "$bad" | tee -a "$out/plans.txt"
  exit 1
fi
echo "OK: every per-claim and per-completion statement uses an index condition or the TID (no Seq Scan, no full index scan, no Sort)" \
  | tee -a "$out/plans.txt"
echo "raw results: $out"
