#!/usr/bin/env bash
# demo.sh: set up a fresh Debian 12 machine (as root) and show dispatch at work on a throwaway
# cluster that preloads the library: four agents with different capabilities claim and complete
# 120 tasks from three tenants and four priorities, a schedule fires every few seconds, and at the end
# the queue, the last decisions, the schedule's fires and the dashboard are printed.
# The cluster runs as the postgres user on a private port and socket directory, and is removed
# when the demo ends. DEMO_SECONDS sets how long the agents work (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
BIN=$("$PG_CONFIG" --bindir)
port=${DEMO_PORT:-55499}
seconds=${DEMO_SECONDS:-20}
dir=$(mktemp -d /tmp/dispatch-demo.XXXXXX)
chmod 755 "$dir"
cleanup() { scripts/cluster.sh stop "$dir/c"; rm -rf "$dir"; }
trap cleanup EXIT

echo "== starting a throwaway cluster on port $port (dispatch preloaded)"
scripts/cluster.sh start "$dir/c" "$port" "dispatch.naptime = 200"
psql_() { runuser -u postgres -- "$BIN/psql" -h "$dir/c" -p "$port" -d postgres -X -q -v ON_ERROR_STOP=1 "$@"; }

echo "== the fleet: four agents, three tenants, 120 tasks, one schedule"
psql_ <<'SQL'
CREATE EXTENSION dispatch;
-- Apps call the functions unqualified: dispatch is on the database's search_path.
ALTER DATABASE postgres SET search_path = "$user", public, dispatch;
SET search_path = "$user", public, dispatch;

SELECT agent_id, capabilities, capacity, clearance
  FROM register_agent('researcher', '{web,llm}', capacity => 2)
UNION ALL SELECT agent_id, capabilities, capacity, clearance
  FROM register_agent('coder', '{code,llm}', capacity => 2)
UNION ALL SELECT agent_id, capabilities, capacity, clearance
  FROM register_agent('analyst', '{sql,llm}', capacity => 1, clearance => 2)
UNION ALL SELECT agent_id, capabilities, capacity, clearance
  FROM register_agent('generalist', '{web,code,sql,llm}', capacity => 1);

-- acme pays for twice the share of globex and initech.
INSERT INTO tenants (tenant, weight) VALUES ('acme', 2), ('globex', 1), ('initech', 1);

SELECT count(submit(kind, jsonb_build_object('n', i), tenant => tenant, priority => priority,
                    requires => requires, sensitivity => sensitivity,
                    deadline => CASE WHEN i % 7 = 0 THEN now() + interval '30 seconds' END,
                    est_duration => interval '2 seconds')) AS submitted
  FROM generate_series(1, 120) AS i,
       LATERAL (SELECT (ARRAY['acme', 'acme', 'globex', 'initech'])[1 + i % 4] AS tenant,
                       (ARRAY['low', 'normal', 'normal', 'high', 'critical'])[1 + (i / 4) % 5] AS priority,
                       (ARRAY['research', 'code', 'report', 'summarize'])[1 + (i / 3) % 4] AS kind,
                       (ARRAY['{web,llm}', '{code}', '{sql}', '{llm}'])[1 + (i / 3) % 4]::text[] AS requires,
                       CASE WHEN (i / 3) % 4 = 2 THEN 2 ELSE 0 END AS sensitivity) AS t;

-- A standing order: every 5 seconds, a status digest for acme (no jitter, for the demo).
SELECT schedule('acme-digest', 'rate(5 seconds)', '{"kind": "summarize", "requires": ["llm"],
                "payload": {"what": "status digest"}, "priority": "high"}',
                tenant => 'acme', jitter => interval '0') AS schedule_id;
SQL

echo "== the agents work for ${seconds} s (each claims, works 0.2-1 s, completes)"
for agent in researcher coder analyst generalist; do
  # A new session: the database's search_path (set above) finds dispatch_next unqualified.
  psql_ -c "DO \$\$
    DECLARE t dispatch.tasks; stop timestamptz := clock_timestamp() + interval '${seconds} seconds';
    BEGIN
      WHILE clock_timestamp() < stop LOOP
        t := dispatch_next('${agent}');
        IF t.task_id IS NULL THEN
          PERFORM pg_sleep(0.2);            -- nothing this agent may take now
        ELSE
          PERFORM pg_sleep(0.2 + random() * 0.8);          -- the work
          PERFORM complete(t.task_id, jsonb_build_object('by', '${agent}'));
        END IF;
        COMMIT;
      END LOOP;
    END \$\$;" &
done
for i in $(seq 1 $((seconds / 5))); do
  sleep 5
  psql_ -At -c "SELECT format('   after %ss: %s done, %s waiting, %s running, %s schedule fires',
                 $((i * 5)),
                 (SELECT count(*) FROM dispatch.tasks WHERE state = 'done'),
                 (SELECT count(*) FROM dispatch.tasks WHERE state IN ('ready', 'scheduled')),
                 (SELECT count(*) FROM dispatch.tasks WHERE state = 'claimed'),
                 (SELECT count(*) FROM dispatch.fires))"
done
wait

echo
echo "== the queue now (dispatch.queue_depth)"
psql_ -c "SELECT * FROM dispatch.queue_depth ORDER BY 1, 2"
echo "== who did what, per tenant and agent"
psql_ -c "SELECT tenant, agent_id, count(*) AS done
            FROM dispatch.tasks WHERE state = 'done' GROUP BY 1, 2 ORDER BY 1, 2"
echo "== the last decisions (dispatch.decisions): score and its terms, in seconds"
psql_ -c "SELECT to_char(at, 'HH24:MI:SS.MS') AS at, kind, task_id, agent_id, tenant,
                 round(score::numeric, 1) AS score, factors->>'lane' AS lane,
                 factors->>'priority' AS priority, factors->>'fair' AS fair,
                 factors->>'urgent' AS urgent, candidates
            FROM dispatch.decisions ORDER BY decision_id DESC LIMIT 12"
echo "== the schedule's fires (dispatch.fires)"
psql_ -c "SELECT f.scheduled_for::time(0) AS slot, f.fired_at::time(0) AS fired, f.status, t.state AS task
            FROM dispatch.fires f LEFT JOIN dispatch.tasks t USING (task_id) ORDER BY f.scheduled_for"
echo "== the dashboard (dispatch.dashboard())"
psql_ -c "SELECT jsonb_pretty(dispatch.dashboard())"
echo "== done; the throwaway cluster is removed"
