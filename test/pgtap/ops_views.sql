-- ops_views: every view's numbers against a known scenario. Times are set relative to now(),
-- which is fixed for the transaction, so every expected figure is exact.
BEGIN;
SELECT plan(21);

-- A task with its history written directly: ready, claimed, finished so long ago.
CREATE FUNCTION pg_temp.mk(tenant text, kind text, priority text, state text, ready_ago interval,
                           claimed_ago interval DEFAULT NULL, finished_ago interval DEFAULT NULL,
                           agent text DEFAULT NULL, deadline_in interval DEFAULT NULL)
  RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  id bigint;
BEGIN
  INSERT INTO dispatch.tasks (tenant, kind, priority, ready_at, deadline)
  VALUES (mk.tenant, mk.kind, mk.priority, now() - ready_ago, now() + deadline_in)
  RETURNING task_id INTO id;
  IF mk.state <> 'ready' THEN
    UPDATE dispatch.tasks AS t
       SET state = mk.state, agent_id = agent, claimed_at = now() - claimed_ago,
           finished_at = now() - finished_ago,
           lease_until = CASE WHEN mk.state = 'claimed' THEN now() + interval '1 hour' END
     WHERE t.task_id = id;
  END IF;
  RETURN id;
END
$$;

INSERT INTO dispatch.tenants (tenant, weight) VALUES ('t1', 1), ('t2', 3);
SELECT count(*) FROM (VALUES
  (dispatch.register_agent('ag1', capacity => 2)), (dispatch.register_agent('ag2')),
  (dispatch.register_agent('ag3')), (dispatch.register_agent('ag4')),
  (dispatch.register_agent('ag5'))) AS r;
SELECT dispatch.deregister_agent('ag4');
SELECT dispatch.drain_agent('ag5');
UPDATE dispatch.agents SET last_seen = now() - interval '10 minutes' WHERE agent_id = 'ag3';

CREATE TEMP TABLE w AS SELECT
  pg_temp.mk('t1', 'kA', 'high', 'done', '40 min', '39 min', '29 min', 'ag1', '1 hour') AS w1,
  pg_temp.mk('t1', 'kA', 'high', 'done', '35 min', '33 min', '13 min', 'ag1', '-20 min') AS w2,
  pg_temp.mk('t1', 'kA', 'high', 'done', '3 hours', '150 min', '2 hours', 'ag1', '-1 day') AS w3,
  pg_temp.mk('t2', 'kB', 'normal', 'claimed', '12 min', '10 min', NULL, 'ag1') AS w4,
  pg_temp.mk('t2', 'kB', 'normal', 'dead', '50 min', '45 min', '15 min', 'ag2', '-10 min') AS w5,
  pg_temp.mk('t2', 'kB', 'normal', 'cancelled', '20 min', NULL, '5 min', NULL, '-1 min') AS w6,
  pg_temp.mk('t2', 'kB', 'normal', 'ready', '5 min') AS w7,
  dispatch.submit('kA', tenant => 't1', priority => 'low', run_at => now() + interval '1 hour') AS w8;

-- queue_depth ------------------------------------------------------------------------------------
SELECT results_eq(
  'SELECT tenant, priority, ready, scheduled, claimed FROM dispatch.queue_depth',
  $$VALUES ('t1', 'low', 0::bigint, 1::bigint, 0::bigint), ('t2', 'normal', 1, 0, 1)$$,
  'queue_depth: t1 has one low task scheduled; t2 one normal ready and one claimed');

-- wait_times: high/kA waits 60 and 120 s, runs 600 and 1200 s; normal/kB waits 120 and 300 s --------
SELECT results_eq(
  'SELECT priority, kind, claimed, wait_p50, wait_p95, round(wait_p99::numeric, 6)::float8, wait_avg,
          done, duration_p50, duration_p95, round(duration_p99::numeric, 6)::float8, duration_avg
     FROM dispatch.wait_times',
  $$VALUES ('high', 'kA', 2::bigint, 90::float8, 117::float8, 119.4::float8, 90::float8,
            2::bigint, 900::float8, 1170::float8, 1194::float8, 900::float8),
           ('normal', 'kB', 2::bigint, 210, 291, 298.2, 210, 0::bigint, NULL, NULL, NULL, NULL)$$,
  'wait_times: percentiles of wait (ready to claimed) and run time over the last hour');
SELECT is((SELECT claimed FROM dispatch.wait_times(interval '3 hours') WHERE kind = 'kA'), 3::bigint,
          'wait_times(interval) takes the window: three hours include the task claimed 150 minutes ago');

-- sla: t1/kA one met, one late; t2/kB one dead; the cancelled one does not count --------------------
SELECT results_eq('SELECT tenant, kind, with_deadline, met, missed, compliance_pct FROM dispatch.sla',
  $$VALUES ('t1', 'kA', 2::bigint, 1::bigint, 1::bigint, 50.00::numeric), ('t2', 'kB', 1, 0, 1, 0.00)$$,
  'sla: share of deadline tasks done in time, by tenant and kind');

-- agent_utilization and fleet ---------------------------------------------------------------------
SELECT results_eq(
  $$SELECT agent_id, status, running, capacity, utilization_pct, current_tasks, tasks_in_window,
           busy_seconds_in_window, busy_pct_in_window, zombie
      FROM dispatch.agent_utilization WHERE agent_id IN ('ag1', 'ag2', 'ag3')$$,
  $$VALUES ('ag1', 'busy', 1, 2, 50.0, ARRAY[(SELECT w4 FROM w)], 2::bigint, 2400::float8, 33.3, false),
           ('ag2', 'idle', 0, 1, 0.0, '{}'::bigint[], 1::bigint, 1800::float8, 50.0, false),
           ('ag3', 'idle', 0, 1, 0.0, '{}'::bigint[], 0::bigint, 0::float8, 0.0, true)$$,
  'agent_utilization: running/capacity, current tasks, tasks and busy seconds in the last hour, zombies');
SELECT is((SELECT silent_seconds FROM dispatch.agent_utilization WHERE agent_id = 'ag3'), 600::float8,
          'agent_utilization shows how long a silent agent has been silent');
SELECT results_eq(
  'SELECT total, busy, idle, lost, zombies, draining, offline, capacity, running, utilization_pct FROM dispatch.fleet',
  $$VALUES (4::bigint, 1::bigint, 2::bigint, 1::bigint, 1::bigint, 1::bigint, 1::bigint, 3::bigint, 1::bigint, 33.3)$$,
  'fleet: 4 agents = 1 busy + 2 idle + 1 lost (silent); 1 draining, 1 offline; capacity 3 of the agents taking work');

-- fairness: t1 served 1800 s, t2 2400 s; weights 1 and 3 ----------------------------------------------
SELECT results_eq(
  'SELECT tenant, weight, backlogged, ready, served, service_seconds, service_share, weighted_share, fairness_ratio
     FROM dispatch.fairness',
  $$VALUES ('t1', 1::real, false, 0::bigint, 2::bigint, 1800::float8, 0.4286, 0.2500, 1.714),
           ('t2', 3::real, true, 1::bigint, 1::bigint, 2400::float8, 0.5714, 0.7500, 0.762)$$,
  'fairness: each tenant''s share of service against its weighted share');

-- overload: nothing overdue without shed_after; the oldest ready task is w7, 300 s --------------------
SELECT results_eq('SELECT priority, oldest_wait_seconds, overdue FROM dispatch.overload',
  $$VALUES ('critical', NULL::float8, false), ('high', NULL, false), ('normal', 300::float8, false), ('low', NULL, false)$$,
  'overload: the oldest ready task per priority, none overdue');

-- dashboard() ------------------------------------------------------------------------------------
CREATE TEMP TABLE d AS SELECT dispatch.dashboard() AS j;
SELECT is((SELECT j->'queue_depth' FROM d),
  '{"critical": {"ready": 0, "scheduled": 0, "claimed": 0}, "high": {"ready": 0, "scheduled": 0, "claimed": 0},
    "normal": {"ready": 1, "scheduled": 0, "claimed": 1}, "low": {"ready": 0, "scheduled": 1, "claimed": 0}}'::jsonb,
  'dashboard: queue_depth by priority');
SELECT is((SELECT j->'agent_utilization' FROM d),
  '{"busy": 1, "idle": 2, "lost": 1, "total": 4, "draining": 1, "capacity": 3, "running": 1, "utilization_pct": 33.3}'::jsonb,
  'dashboard: agent_utilization (busy = holding any task)');
SELECT is((SELECT j->'avg_wait_time_seconds' FROM d),
  '{"critical": null, "high": 90, "normal": 210, "low": null}'::jsonb, 'dashboard: avg_wait_time_seconds by priority');
SELECT is((SELECT (j->>'avg_task_duration_seconds')::numeric FROM d), 900.000, 'dashboard: avg_task_duration_seconds');
SELECT is((SELECT (j->>'sla_compliance_pct')::numeric FROM d), 33.33, 'dashboard: sla_compliance_pct over all tenants');
SELECT is((SELECT j->'finished' FROM d), '{"done": 2, "dead": 1, "cancelled": 1}'::jsonb,
  'dashboard: tasks finished in the window, by state');
SELECT is((SELECT j->'fairness_distribution'->'t1'->>'fairness_ratio' FROM d), '1.714',
  'dashboard: fairness_distribution by tenant');
SELECT is((SELECT j->'fairness_distribution'->'t2'->>'weighted_share' FROM d), '0.7500',
  'dashboard: fairness_distribution carries the weighted share');
SELECT is((SELECT j->'oldest_wait_seconds'->>'normal' FROM d), '300.000', 'dashboard: oldest_wait_seconds');
SELECT is((SELECT j->'overloaded' FROM d), 'false'::jsonb, 'dashboard: not overloaded');
SELECT ok((SELECT j ?& ARRAY['queue_depth', 'agent_utilization', 'avg_wait_time_seconds', 'avg_task_duration_seconds',
                            'sla_compliance_pct', 'fairness_distribution'] FROM d),
          'dashboard has every key the issue names');

-- Cheap at 10M tasks: with sequential scans priced out, no view, function or dashboard() reads
-- dispatch.tasks by a sequential scan: every access has an index path (bench/dashboard.sh times it).
SET LOCAL enable_seqscan = off;
CREATE TEMP TABLE seq0 AS SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = 'dispatch.tasks'::regclass;
SELECT count(*) FROM (
  SELECT 1 FROM dispatch.queue_depth UNION ALL SELECT 1 FROM dispatch.agent_utilization
  UNION ALL SELECT 1 FROM dispatch.fleet UNION ALL SELECT 1 FROM dispatch.wait_times
  UNION ALL SELECT 1 FROM dispatch.sla UNION ALL SELECT 1 FROM dispatch.fairness
  UNION ALL SELECT 1 FROM dispatch.overload UNION ALL SELECT 1 FROM (SELECT dispatch.dashboard()) AS x) AS all_views;
SELECT is((SELECT s.seq_scan - seq0.seq_scan FROM pg_stat_xact_user_tables AS s, seq0
            WHERE s.relid = 'dispatch.tasks'::regclass), 0::bigint,
          'no view or dashboard() scans dispatch.tasks sequentially');

SELECT * FROM finish();
ROLLBACK;
