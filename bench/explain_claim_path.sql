-- explain_claim_path.sql: the plan of every SQL statement the claim path runs, as the cached
-- plan it runs with (SPI keeps its plans; shown here as generic plans), on the pick workload.
-- Statement texts are copied from src/claim.c, src/taskrow.c and sql/install/40_tasks.sql;
-- the index descents pick.c makes in C are shown as the SQL that would make the same descent.
\pset pager off
\pset footer off
SET plan_cache_mode = force_generic_plan;
SET search_path = pg_catalog, dispatch, pg_temp;

\echo '==== per claim: dispatch_next (src/claim.c)'
\echo '-- agent_load: the agent row'
PREPARE s1(text) AS SELECT capabilities, capacity, running, status, traits, clearance, region,
  owner_role::text, last_seen FROM dispatch.agents WHERE agent_id = $1;
EXPLAIN (COSTS OFF) EXECUTE s1('agent-000');

\echo '-- agent_take: one unit of capacity'
PREPARE s2(text, timestamptz) AS UPDATE dispatch.agents SET running = running + 1, last_seen = $2,
  idle_since = NULL,
  status = CASE WHEN status IN ('idle', 'busy', 'lost') THEN 'busy' ELSE status END
  WHERE agent_id = $1 AND running < capacity AND status NOT IN ('draining', 'offline');
EXPLAIN (COSTS OFF) EXECUTE s2('agent-000', now());

\echo '-- update_claimed: the winner, by the ctid the pick locked'
PREPARE s3(tid, text, timestamptz, timestamptz) AS UPDATE dispatch.tasks AS t SET state = 'claimed',
  agent_id = $2, lease_until = $3, attempts = t.attempts + 1, claimed_at = $4, reserved_for = NULL,
  reserved_until = NULL WHERE t.ctid = $1 RETURNING t, t.session_ref;
EXPLAIN (COSTS OFF) EXECUTE s3('(0,1)', 'agent-000', now(), now());

\echo '-- log_decision: one row of the decision log'
PREPARE s4(timestamptz, text, bigint, text, text, int, float8, text, int, text) AS
  INSERT INTO dispatch.decisions (at, kind, task_id, agent_id, tenant, policy_version, score, factors,
  candidates, reason, actor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, dispatch.caller());
EXPLAIN (COSTS OFF) EXECUTE s4(now(), 'claim', 1, 'agent-000', 't0000', 1, 0, '{}', 1, NULL);

\echo '-- remember_session: only for a task with a session_ref'
PREPARE s5(text, text, timestamptz) AS INSERT INTO dispatch.sessions AS s (session_ref, agent_id, last_served)
  VALUES ($1, $2, $3) ON CONFLICT (session_ref) DO UPDATE SET agent_id = EXCLUDED.agent_id,
  last_served = EXCLUDED.last_served;
EXPLAIN (COSTS OFF) EXECUTE s5('s-1', 'agent-000', now());

\echo '-- agent_seen: only when a poll finds nothing and last_seen is old'
PREPARE s6(text, timestamptz) AS UPDATE dispatch.agents SET last_seen = $2,
  status = CASE WHEN status = 'lost' THEN CASE WHEN running > 0 THEN 'busy' ELSE 'idle' END ELSE status END
  WHERE agent_id = $1;
EXPLAIN (COSTS OFF) EXECUTE s6('agent-000', now());

\echo '==== per claim: the descents pick.c makes in C (index_beginscan/index_rescan), as SQL'
\echo '-- probe_queue: head of one (signature, tenant) queue, from its hint window'
PREPARE p1(int, text, timestamptz) AS SELECT task_id FROM dispatch.tasks WHERE sig = $1 AND tenant = $2
  AND skey <= $3 AND state = 'ready' AND reserved_for IS NULL ORDER BY sig, tenant, skey LIMIT 1;
EXPLAIN (COSTS OFF) EXECUTE p1(1, 't0000', now());
\echo '-- probe_reserved: this agent''s reserved tasks'
PREPARE p2(text) AS SELECT task_id FROM dispatch.tasks WHERE reserved_for = $1 AND state = 'ready'
  ORDER BY reserved_for, skey LIMIT 4;
EXPLAIN (COSTS OFF) EXECUTE p2('agent-000');
\echo '-- probe_urgent: first urgent task of a signature'
PREPARE p3(int) AS SELECT task_id FROM dispatch.tasks WHERE sig = $1 AND state = 'ready'
  AND urgent_at IS NOT NULL ORDER BY sig, urgent_at LIMIT 1;
EXPLAIN (COSTS OFF) EXECUTE p3(1);

\echo '==== per completion: dispatch.complete() (sql/install/40_tasks.sql) and the row trigger'
\echo '-- complete, the common case: one update when the caller holds the lease'
PREPARE c0(bigint, jsonb, text) AS UPDATE dispatch.tasks AS k
   SET state = 'done', result = $2, finished_at = clock_timestamp(), lease_until = NULL
 WHERE k.task_id = $1 AND k.state COLLATE "C" = 'claimed' AND k.outputs IS NULL
   AND ($3 IS NULL OR k.agent_id = $3)
   AND dispatch.may_act_as((SELECT g.owner_role FROM dispatch.agents AS g WHERE g.agent_id = k.agent_id));
EXPLAIN (COSTS OFF) EXECUTE c0(1, '{}', NULL);
\echo '-- otherwise task_for_holder: the task, locked'
PREPARE c1(bigint) AS SELECT * FROM dispatch.tasks AS k WHERE k.task_id = $1 FOR UPDATE;
EXPLAIN (COSTS OFF) EXECUTE c1(1);
\echo '-- task_for_holder: the holder''s owner role'
PREPARE c2(text) AS SELECT g.owner_role FROM dispatch.agents AS g WHERE g.agent_id = $1;
EXPLAIN (COSTS OFF) EXECUTE c2('agent-000');
\echo '-- complete, the checked path: the task -> done'
PREPARE c3(bigint, jsonb) AS UPDATE dispatch.tasks AS k SET state = 'done', result = $2,
  finished_at = clock_timestamp(), lease_until = NULL WHERE k.task_id = $1;
EXPLAIN (COSTS OFF) EXECUTE c3(1, '{}');
\echo '-- trigger agent_running (src/taskrow.c): the agent gives its unit back'
PREPARE c4(text, int) AS UPDATE dispatch.agents SET running = greatest(running + $2, 0),
  status = CASE WHEN status IN ('idle', 'busy') THEN CASE WHEN running + $2 > 0 THEN 'busy' ELSE 'idle' END
  ELSE status END, idle_since = CASE WHEN running + $2 > 0 THEN NULL ELSE coalesce(idle_since, pg_catalog.now()) END
  WHERE agent_id = $1;
EXPLAIN (COSTS OFF) EXECUTE c4('agent-000', -1);

\echo '==== per new tenant only (src/taskrow.c tenant_config)'
PREPARE t1(text) AS SELECT weight::float8, coalesce(max_running, -1), vstart FROM dispatch.tenants
  WHERE tenant = $1;
EXPLAIN (COSTS OFF) EXECUTE t1('t0000');
PREPARE t2(text) AS WITH ins AS (INSERT INTO dispatch.tenants (tenant) VALUES ($1) ON CONFLICT DO NOTHING
  RETURNING weight::float8, -1, vstart) SELECT * FROM ins UNION ALL SELECT weight::float8,
  coalesce(max_running, -1), vstart FROM dispatch.tenants WHERE tenant = $1;
EXPLAIN (COSTS OFF) EXECUTE t2('t-new');

\echo '==== cache loads, once per session or after a change (src/match.c, src/policy.c)'
EXPLAIN (COSTS OFF) SELECT sig_id, requires, sensitivity, region FROM dispatch.signatures ORDER BY sig_id;
EXPLAIN (COSTS OFF) SELECT version, weights FROM dispatch.policies WHERE active;
