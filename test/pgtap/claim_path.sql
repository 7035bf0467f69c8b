-- claim_path.sql (pgTAP): the claim path never scans dispatch.tasks. 500 claims (each in its
-- own transaction, as agents make them) out of 20,000 ready tasks across 5 tenants and 4
-- signatures, then 500 completes: the table's seq_scan counter does not move while idx_scan
-- does. Then the plans of the SQL statements the claim path runs (copied from src/claim.c
-- and src/taskrow.c, planned generic as SPI keeps them): Tid Scan and primary-key lookups.
--
-- Not wrapped in one transaction: statistics reach pg_stat_user_tables when a transaction
-- ends (pg_stat_force_next_flush() makes the next one flush at once).
SET client_min_messages = warning;
SELECT plan(27);

-- The fleet: four working agents among 2,000, so the planner sees a fleet-sized agents table
-- (for a few dozen agents it rightly reads the table's one or two pages instead of the index).
SELECT count(dispatch.register_agent('cp-' || c, caps, 1000))
  FROM (VALUES ('ab', ARRAY['a', 'b']), ('a', ARRAY['a']), ('b', ARRAY['b']), ('0', ARRAY[]::text[])) AS v(c, caps);
INSERT INTO dispatch.agents (agent_id, capabilities)
SELECT 'idle-' || i, ARRAY['z'] FROM generate_series(1, 1996) AS i;
-- The queue: 20,000 tasks, 5 tenants x 4 signatures x 4 priorities.
INSERT INTO dispatch.tasks (kind, tenant, priority, requires)
SELECT 'job', 'tenant-' || (i % 5), (ARRAY['critical', 'high', 'normal', 'low'])[1 + (i / 5) % 4],
       (ARRAY['{}', '{a}', '{b}', '{a,b}'])[1 + (i / 20) % 4]::text[]
  FROM generate_series(1, 20000) AS i;
ANALYZE dispatch.tasks;
ANALYZE dispatch.agents;
SELECT is(count(*)::int, 20000, '20,000 ready tasks') FROM dispatch.tasks WHERE state = 'ready';
SELECT is(count(DISTINCT (tenant, sig))::int, 20, 'in 20 queues: 5 tenants x 4 signatures') FROM dispatch.tasks;

CREATE TABLE claim_log (agent_id text, task_id bigint, requires text[], tenant text);

-- Each claim in a transaction of its own.
CREATE PROCEDURE claim_one_by_one(agent text, n int) LANGUAGE plpgsql AS $$
DECLARE t dispatch.tasks;
BEGIN
  FOR i IN 1..n LOOP
    t := dispatch.dispatch_next(agent);
    INSERT INTO claim_log VALUES (agent, t.task_id, t.requires, t.tenant);
    COMMIT;
  END LOOP;
END $$;
CREATE PROCEDURE claim_in_batches(agent text, batches int, per_batch int) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..batches LOOP
    INSERT INTO claim_log SELECT agent, t.task_id, t.requires, t.tenant FROM dispatch.dispatch_next(agent, per_batch) AS t;
    COMMIT;
  END LOOP;
END $$;

-- Settle the counters of the set-up, then zero them.
SELECT pg_stat_force_next_flush();
SELECT pg_stat_reset_single_table_counters('dispatch.tasks'::regclass);
SELECT pg_stat_reset_single_table_counters('dispatch.agents'::regclass);
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
CREATE TABLE counters_before AS
  SELECT relname, seq_scan, coalesce(idx_scan, 0) AS idx_scan
    FROM pg_stat_user_tables WHERE relid IN ('dispatch.tasks'::regclass, 'dispatch.agents'::regclass);
SELECT is(seq_scan, 0::bigint, 'seq_scan of dispatch.tasks starts at 0')
  FROM counters_before WHERE relname = 'tasks';

CALL claim_one_by_one('cp-ab', 100);
CALL claim_one_by_one('cp-a', 100);
CALL claim_one_by_one('cp-b', 100);
CALL claim_one_by_one('cp-0', 100);
CALL claim_in_batches('cp-ab', 5, 5);
CALL claim_in_batches('cp-a', 5, 5);
CALL claim_in_batches('cp-b', 5, 5);
CALL claim_in_batches('cp-0', 5, 5);

SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
CREATE TABLE counters_after_claims AS
  SELECT relname, seq_scan, coalesce(idx_scan, 0) AS idx_scan
    FROM pg_stat_user_tables WHERE relid IN ('dispatch.tasks'::regclass, 'dispatch.agents'::regclass);

SELECT is(count(task_id)::int, 500, '500 claims, none came back empty') FROM claim_log;
SELECT is(count(DISTINCT task_id)::int, 500, 'no task was claimed twice') FROM claim_log;
SELECT is(count(*)::int, 0, 'every claimed task''s requires is a subset of its agent''s capabilities')
  FROM claim_log c JOIN dispatch.agents a USING (agent_id) WHERE NOT c.requires <@ a.capabilities;
SELECT is(count(DISTINCT tenant)::int, 5, 'claims came from all 5 tenants') FROM claim_log;
SELECT is(count(*)::int, 500, 'one claim decision per claim')
  FROM dispatch.decisions d JOIN claim_log c ON c.task_id = d.task_id AND c.agent_id = d.agent_id
 WHERE d.kind = 'claim';
SELECT is(count(*)::int, 500, '500 tasks claimed') FROM dispatch.tasks WHERE state = 'claimed';
SELECT is(a.seq_scan - b.seq_scan, 0::bigint, 'the claims made no sequential scan of dispatch.tasks')
  FROM counters_before b JOIN counters_after_claims a USING (relname) WHERE relname = 'tasks';
SELECT cmp_ok(a.idx_scan - b.idx_scan, '>=', 500::bigint, 'the claims descended the indexes of dispatch.tasks')
  FROM counters_before b JOIN counters_after_claims a USING (relname) WHERE relname = 'tasks';
SELECT is(a.seq_scan - b.seq_scan, 0::bigint, 'the claims made no sequential scan of dispatch.agents')
  FROM counters_before b JOIN counters_after_claims a USING (relname) WHERE relname = 'agents';
SELECT cmp_ok(a.idx_scan - b.idx_scan, '>=', 500::bigint, 'the claims found agents by primary key')
  FROM counters_before b JOIN counters_after_claims a USING (relname) WHERE relname = 'agents';

-- Completing them: primary-key lookups only, too.
CREATE PROCEDURE complete_all() LANGUAGE plpgsql AS $$
DECLARE id bigint;
BEGIN
  FOR id IN SELECT task_id FROM claim_log ORDER BY task_id LOOP
    PERFORM dispatch.complete(id, '{"ok": true}');
    COMMIT;
  END LOOP;
END $$;
CALL complete_all();
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
SELECT is(count(*)::int, 500, '500 tasks done') FROM dispatch.tasks WHERE state = 'done';
SELECT is(sum(running)::int, 0, 'every agent''s capacity came back') FROM dispatch.agents;
SELECT is(s.seq_scan - a.seq_scan, 0::bigint, 'completing made no sequential scan of dispatch.tasks')
  FROM counters_after_claims a JOIN pg_stat_user_tables s USING (relname)
 WHERE s.relid = 'dispatch.tasks'::regclass;

-- Control: the same counter does see a sequential scan when one happens.
CREATE TABLE counters_before_control AS
  SELECT seq_scan FROM pg_stat_user_tables WHERE relid = 'dispatch.tasks'::regclass;
SELECT count(*) FROM dispatch.tasks WHERE payload = '{"not": "indexed"}';
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
SELECT cmp_ok(s.seq_scan - c.seq_scan, '>=', 1::bigint, 'control: a query without an index shows as a sequential scan')
  FROM counters_before_control c, pg_stat_user_tables s WHERE s.relid = 'dispatch.tasks'::regclass;

-- The plans of the claim path's statements, generic as SPI keeps them.
\ir ../../sql/include/plan_of.sql
SET plan_cache_mode = force_generic_plan;
-- claim.c update_claimed(): the locked winner, by ctid.
PREPARE claim_update(tid, text, timestamptz, timestamptz) AS
  UPDATE dispatch.tasks AS t SET state = 'claimed', agent_id = $2, lease_until = $3,
         attempts = t.attempts + 1, claimed_at = $4, reserved_for = NULL, reserved_until = NULL
   WHERE t.ctid = $1 RETURNING t, t.session_ref;
SELECT matches(pg_temp.plan_of($$EXECUTE claim_update('(0,1)', 'cp-a', now(), now())$$),
               'Tid Scan on tasks', 'the claim updates the task by ctid (Tid Scan)');
SELECT doesnt_match(pg_temp.plan_of($$EXECUTE claim_update('(0,1)', 'cp-a', now(), now())$$),
                    'Seq Scan', 'the claim update does not scan');
-- claim.c agent_load(): the agent by primary key.
PREPARE agent_load(text) AS
  SELECT capabilities, capacity, running, status, traits, clearance, region, owner_role::text, last_seen
    FROM dispatch.agents WHERE agent_id = $1;
SELECT matches(pg_temp.plan_of($$EXECUTE agent_load('cp-a')$$), 'Index Scan using agents_pkey on agents',
               'the agent is loaded by primary key (Index Scan)');
-- claim.c agent_take(): capacity taken under the agent's row lock.
PREPARE agent_take(text, timestamptz) AS
  UPDATE dispatch.agents SET running = running + 1, last_seen = $2, idle_since = NULL,
         status = CASE WHEN status IN ('idle', 'busy', 'lost') THEN 'busy' ELSE status END
   WHERE agent_id = $1 AND running < capacity AND status NOT IN ('draining', 'offline');
SELECT matches(pg_temp.plan_of($$EXECUTE agent_take('cp-a', now())$$), 'Index Scan using agents_pkey on agents',
               'capacity is taken by primary key (Index Scan)');
-- taskrow.c agent_running(): capacity given back when the task leaves the agent's hands.
PREPARE agent_running(text, int) AS
  UPDATE dispatch.agents SET running = greatest(running + $2, 0),
         status = CASE WHEN status IN ('idle', 'busy') THEN
           CASE WHEN running + $2 > 0 THEN 'busy' ELSE 'idle' END ELSE status END,
         idle_since = CASE WHEN running + $2 > 0 THEN NULL ELSE coalesce(idle_since, pg_catalog.now()) END
   WHERE agent_id = $1;
SELECT matches(pg_temp.plan_of($$EXECUTE agent_running('cp-a', -1)$$), 'Index Scan using agents_pkey on agents',
               'capacity is given back by primary key (Index Scan)');
-- claim.c log_decision(): an insert, nothing read.
PREPARE log_decision(timestamptz, text, bigint, text, text, int, float8, text, int, text) AS
  INSERT INTO dispatch.decisions (at, kind, task_id, agent_id, tenant, policy_version, score, factors,
                                  candidates, reason, actor)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, dispatch.caller());
SELECT doesnt_match(pg_temp.plan_of($$EXECUTE log_decision(now(), 'claim', 1, 'cp-a', 't', 1, 0, '{}', 1, NULL)$$),
                    'Scan', 'logging the decision reads nothing');
-- 40_tasks.sql task_for_holder() and complete(): the task by primary key.
PREPARE holder(bigint) AS SELECT * FROM dispatch.tasks AS k WHERE k.task_id = $1 FOR UPDATE;
SELECT matches(pg_temp.plan_of($$EXECUTE holder(1)$$), 'Index Scan using tasks_pkey on tasks',
               'complete() finds the task by primary key (Index Scan)');
PREPARE finish(bigint, jsonb) AS
  UPDATE dispatch.tasks AS k SET state = 'done', result = $2, finished_at = clock_timestamp(), lease_until = NULL
   WHERE k.task_id = $1;
SELECT matches(pg_temp.plan_of($$EXECUTE finish(1, '{}')$$), 'Index Scan using tasks_pkey on tasks',
               'complete() updates the task by primary key (Index Scan)');
-- complete()'s common case, one update: by primary key, not a read of every claimed task through
-- tasks_claimed_idx (which a plain state = 'claimed' would let the planner choose).
PREPARE finish_held(bigint, jsonb, text) AS
  UPDATE dispatch.tasks AS k
     SET state = 'done', result = $2, finished_at = clock_timestamp(), lease_until = NULL
   WHERE k.task_id = $1 AND k.state COLLATE "C" = 'claimed' AND k.outputs IS NULL
     AND ($3 IS NULL OR k.agent_id = $3)
     AND dispatch.may_act_as((SELECT g.owner_role FROM dispatch.agents AS g WHERE g.agent_id = k.agent_id));
SELECT matches(pg_temp.plan_of($$EXECUTE finish_held(1, '{}', NULL)$$),
               'Index Scan using tasks_pkey on tasks k\s+Index Cond: \(task_id = \$1\)',
               'complete() of the lease holder updates the task by primary key');
SELECT ok(position('k.state COLLATE "C" = ''claimed''' IN pg_get_functiondef('dispatch.complete(bigint, jsonb, text)'::regprocedure)) > 0,
          'complete() runs that very statement');
RESET plan_cache_mode;

SELECT * FROM finish();
