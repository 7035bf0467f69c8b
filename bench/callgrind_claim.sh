#!/usr/bin/env bash
# callgrind_claim.sh: CPU instructions per claim+complete, dispatch against the plain baseline,
# counted by valgrind (callgrind) so the figures do not move with the machine's load.
#
#   bench/callgrind_claim.sh            (as root or postgres; about 3 minutes)
#
# The claim_throughput workload (bench/claim_setup.sql) on SIZE ready tasks; then the server is
# stopped and one backend runs in single-user mode under callgrind, looping N times over "claim;
# COMMIT; complete; COMMIT" in a procedure (bench.loop_dispatch, bench.loop_baseline), after a
# warm-up loop that is not counted (callgrind dumps each CALL separately). Prints instructions per task for the whole loop and
# for each part of dispatch_next and complete(). Single-user mode has no concurrency: this
# measures work done, not contention or I/O waits (claim_throughput.sh measures those).
#
# Knobs: SIZE (100000), N (1000), EXTRA_SQL (run before measuring), PG_CONFIG, BENCH_PORT,
# BENCH_NO_INSTALL=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

SIZE=${SIZE:-100000}
N=${N:-1000}
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }

bench_start callgrind_claim claim_setup.sql
qf "$work/claim_setup.sql" >/dev/null
q "CALL bench.top_up($SIZE)"
q "VACUUM ANALYZE bench.plain_tasks"; q "VACUUM ANALYZE dispatch.tasks"
q "CREATE PROCEDURE bench.loop_dispatch(n int) LANGUAGE plpgsql AS \$\$
   DECLARE t bigint;
   BEGIN
     FOR i IN 1..n LOOP
       SELECT task_id INTO t FROM dispatch.dispatch_next('agent-0');
       COMMIT;
       PERFORM dispatch.complete(t, '{}');
       COMMIT;
     END LOOP;
   END \$\$"
q "CREATE PROCEDURE bench.loop_baseline(n int) LANGUAGE plpgsql AS \$\$
   DECLARE t bigint;
   BEGIN
     FOR i IN 1..n LOOP
       UPDATE bench.plain_tasks
          SET state = 'claimed', agent_id = 'agent-0', lease_until = now() + interval '300 s',
              attempts = attempts + 1, claimed_at = now()
        WHERE task_id = (SELECT task_id FROM bench.plain_tasks WHERE state = 'ready'
                          ORDER BY priority, task_id FOR UPDATE SKIP LOCKED LIMIT 1)
       RETURNING task_id INTO t;
       COMMIT;
       UPDATE bench.plain_tasks
          SET state = 'done', result = '{}', finished_at = clock_timestamp(), lease_until = NULL
        WHERE task_id = t AND state = 'claimed' AND agent_id = 'agent-0';
       COMMIT;
     END LOOP;
   END \$\$"
# An experiment's schema change, if any (used to price alternatives; see bench/README.md).
[ -n "${EXTRA_SQL:-}" ] && q "$EXTRA_SQL"
cluster_stop "$work/c"

# One single-user backend per side: a warm-up loop (not counted), then N counted tasks.
for side in baseline dispatch; do
  printf 'CALL bench.loop_%s(200);\nCALL bench.loop_%s(%d);\n' "$side" "$side" "$N" > "$work/$side.sql"
  callgrind_single "$side" "$BENCH_DB" 1GB
done

PYTHONPATH=$here python3 - "$out/cg-baseline.out" "$out/cg-dispatch.out" "$N" <<'EOF' | tee "$out/summary.txt"
import sys
from callgrind_costs import inclusive
base, disp, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
b, d = inclusive(base), inclusive(disp)
tasks = n
total_b, total_d = b["ExecuteCallStmt"] / tasks, d["ExecuteCallStmt"] / tasks
print(f"instructions per task (claim + complete, two transactions), {tasks} tasks per side")
print(f"{'':44s} {'instr/task':>12s}")
print(f"{'baseline: whole loop':44s} {total_b:12,.0f}")
print(f"{'dispatch: whole loop':44s} {total_d:12,.0f}   ({total_d / total_b:.2f}x baseline)")
parts = [
    ("agent_load", "    agent row (SPI SELECT)"),
    ("agent_signatures", "    agent's signature set"),
    ("pick_candidates", "    pick (queue map + index probes)"),
    ("qm_charge_claim", "    charge the tenant"),
    ("update_claimed", "    task -> claimed (SPI UPDATE)"),
    ("candidate_factors", "    factors as jsonb text"),
    ("log_decision", "    decision log (SPI INSERT)"),
]
dn = d.get("dispatch_next", 0)
print(f"{'  dispatch_next':44s} {dn / tasks:12,.0f}")
listed = 0
for fn, label in parts:
    if fn in d:
        listed += d[fn]
        print(f"{label:44s} {d[fn] / tasks:12,.0f}")
print(f"{'    rest: agent running+1 (SPI UPDATE), lock':44s} {(dn - listed) / tasks:12,.0f}")
commit = d.get("CommitTransactionCommand", 0)
rest = d["ExecuteCallStmt"] - dn - commit
print(f"{'  complete() and the loop':44s} {rest / tasks:12,.0f}")
for fn, label in [("dispatch_task_row", "    row trigger"), ("agent_running", "      agent running-1 (SPI UPDATE)")]:
    if fn in d:
        print(f"{label:44s} {d[fn] / tasks:12,.0f}")
print(f"{'  commit (two per task)':44s} {commit / tasks:12,.0f}")
for fn, label in [("ExecConstraints", "  of all the above, CHECK constraints"),
                  ("stringToNode", "    of which re-reading their expressions")]:
    if fn in d:
        print(f"{label:44s} {d[fn] / tasks:12,.0f}")
for fn, label in [("ExecConstraints", "baseline: CHECK constraints"),
                  ("CommitTransactionCommand", "baseline: commit (two per task)")]:
    if fn in b:
        print(f"{label:44s} {b[fn] / tasks:12,.0f}")
EOF
echo "raw results: $out"
