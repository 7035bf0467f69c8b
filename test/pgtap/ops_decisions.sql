-- ops_decisions: dispatch.override() and its log; dispatch.log_decisions in each mode; the
-- auditors' questions answered through indexes.
BEGIN;
SELECT plan(31);

CREATE ROLE ops_admin_t IN ROLE dispatch_admin;
CREATE ROLE ops_agent_t IN ROLE dispatch_agent;

SELECT count(*) FROM (VALUES (dispatch.register_agent('ov-1')), (dispatch.register_agent('ov-2')),
  (dispatch.register_agent('ov-gpu', capabilities => '{gpu}')), (dispatch.register_agent('ov-off'))) AS r;
SELECT dispatch.deregister_agent('ov-off');
CREATE TEMP TABLE ov AS SELECT dispatch.submit('k') AS a, dispatch.submit('k') AS b,
  dispatch.submit('k', requires => '{gpu}') AS gpu, dispatch.submit('k') AS finished;
UPDATE dispatch.tasks SET state = 'done', finished_at = now() WHERE task_id = (SELECT finished FROM ov);
SELECT a AS ov_a FROM ov \gset

-- Override -------------------------------------------------------------------------------------
SET ROLE ops_admin_t;
SELECT is((dispatch.override(:ov_a, 'ov-1', 'customer escalation')).agent_id, 'ov-1',
          'an admin gives a ready task to an agent by hand');
RESET ROLE;
SELECT results_eq($$SELECT state, agent_id, attempts, lease_until > now() FROM dispatch.tasks WHERE task_id = (SELECT a FROM ov)$$,
  $$VALUES ('claimed', 'ov-1', 1, true)$$, 'it is claimed by that agent with a lease; the attempt counts');
SELECT results_eq($$SELECT kind, agent_id, reason, actor = 'ops_admin_t', factors FROM dispatch.decisions WHERE task_id = (SELECT a FROM ov)$$,
  $$VALUES ('override', 'ov-1', 'customer escalation', true,
            '{"attempt": 1, "from_agent": null, "from_state": "ready"}'::jsonb)$$,
  'the override is logged with who did it and why');

SELECT is((dispatch.override((SELECT a FROM ov), 'ov-2', 'rebalance')).agent_id, 'ov-2', 'a claimed task can be moved');
SELECT results_eq($$SELECT agent_id, running FROM dispatch.agents WHERE agent_id IN ('ov-1', 'ov-2') ORDER BY 1$$,
  $$VALUES ('ov-1', 0), ('ov-2', 1)$$, 'the previous holder gets its capacity back, the new one is charged');
SELECT is((SELECT attempts FROM dispatch.tasks WHERE task_id = (SELECT a FROM ov)), 1, 'moving a claim is not a new attempt');
SELECT is((SELECT factors FROM dispatch.decisions WHERE task_id = (SELECT a FROM ov) AND agent_id = 'ov-2'),
  '{"attempt": 1, "from_agent": "ov-1", "from_state": "claimed"}'::jsonb, 'the log says where it came from');

SELECT throws_ok($$SELECT dispatch.override((SELECT a FROM ov), 'ov-2', 'again')$$, '55000',
  NULL, 'the agent holding it already: 55000');
SELECT throws_ok($$SELECT dispatch.override((SELECT b FROM ov), 'ov-2', 'full')$$, '55000',
  'agent "ov-2" is at capacity (1 of 1 tasks)', 'an agent at capacity: 55000');
SELECT throws_ok($$SELECT dispatch.override((SELECT gpu FROM ov), 'ov-1', 'no gpu')$$, '22023',
  NULL, 'an agent that may not run the task: 22023');
SELECT throws_ok($$SELECT dispatch.override((SELECT b FROM ov), 'ov-off', 'offline')$$, '55000',
  'agent "ov-off" is offline', 'an offline agent: 55000');
SELECT throws_ok($$SELECT dispatch.override((SELECT finished FROM ov), 'ov-1', 'done')$$, '55000',
  NULL, 'a finished task: 55000');
SELECT throws_ok($$SELECT dispatch.override(-1, 'ov-1', 'x')$$, '42704', 'task -1 does not exist', 'an unknown task: 42704');
SELECT throws_ok($$SELECT dispatch.override((SELECT b FROM ov), 'nobody', 'x')$$, '42704', NULL, 'an unknown agent: 42704');
SELECT throws_ok($$SELECT dispatch.override((SELECT b FROM ov), 'ov-1', ' ')$$, '22004',
  'an override needs a reason', 'no reason: 22004');
SET ROLE ops_agent_t;
SELECT throws_ok($$SELECT dispatch.override(1, 'ov-1', 'x')$$, '42501', NULL, 'an agent role may not override: 42501');
RESET ROLE;
SELECT is((SELECT count(*) FROM dispatch.decisions WHERE kind = 'override'), 2::bigint, 'failed overrides left nothing');

-- dispatch.log_decisions -------------------------------------------------------------------------
TRUNCATE dispatch.decisions;
SELECT dispatch.register_agent('lg-1', capacity => 1000);
SET dispatch.log_decisions = 'errors';
CREATE TEMP TABLE lg AS SELECT dispatch.submit('lg') AS claimed, dispatch.submit('lg') AS cancelled,
                               dispatch.submit('lg') AS failed, dispatch.submit('lg') AS released;
SELECT dispatch.rebuild_queue_map();
SELECT is((SELECT count(*) FROM dispatch.dispatch_next('lg-1', 4)), 4::bigint, 'errors: four claims');
SELECT dispatch.cancel((SELECT cancelled FROM lg));
SELECT dispatch.fail(task_id, 'broken') FROM dispatch.tasks WHERE task_id = (SELECT failed FROM lg) AND state = 'claimed';
SELECT dispatch.release(task_id) FROM dispatch.tasks WHERE task_id = (SELECT released FROM lg) AND state = 'claimed';
SELECT dispatch.override((SELECT released FROM lg), 'lg-1', 'by hand');
SELECT bag_eq('SELECT kind FROM dispatch.decisions', $$VALUES ('retry'), ('override')$$,
  'errors: only the failure and the override are logged; claims, cancel and release are not');

TRUNCATE dispatch.decisions;
SET dispatch.log_decisions = 'sampled';
SELECT count(dispatch.submit('lg-sampled')) FROM generate_series(1, 400);
SELECT dispatch.rebuild_queue_map();
CREATE TEMP TABLE got AS SELECT task_id FROM dispatch.dispatch_next('lg-1', 400);
SELECT is((SELECT count(*) FROM got), 400::bigint, 'sampled: 400 claims');
SELECT set_eq('SELECT task_id FROM dispatch.decisions WHERE kind = ''claim''',
              'SELECT task_id FROM got WHERE dispatch.claim_sampled(task_id)',
              'sampled: exactly the claims of the sampled tasks are logged');
SELECT cmp_ok((SELECT count(*) FROM dispatch.decisions WHERE kind = 'claim'), '<', 20::bigint,
              'sampled: a small fraction of them');
SELECT dispatch.release(min(task_id)) FROM got;
SELECT is((SELECT count(*) FROM dispatch.decisions WHERE kind = 'release'), 1::bigint,
          'sampled: every decision other than a claim is logged');
SELECT ok((SELECT count(*) FILTER (WHERE dispatch.claim_sampled(i)) FROM generate_series(1, 100000) AS i)
          BETWEEN 900 AND 1100, 'claim_sampled picks about 1 task in 100');

TRUNCATE dispatch.decisions;
SET dispatch.log_decisions = 'all';
SELECT count(dispatch.submit('lg-all')) FROM generate_series(1, 5);
SELECT dispatch.rebuild_queue_map();
SELECT is((SELECT count(*) FROM dispatch.dispatch_next('lg-1', 5)), 5::bigint, 'all: five claims');
SELECT is((SELECT count(*) FROM dispatch.decisions WHERE kind = 'claim'), 5::bigint, 'all: every claim is logged');

SET ROLE ops_agent_t;
SELECT throws_ok($$SET dispatch.log_decisions = 'errors'$$, '42501', NULL,
                 'an agent cannot turn the log down to hide its claims');
RESET ROLE;
SELECT throws_ok($$SET dispatch.log_decisions = 'some'$$, '22023', NULL, 'an unknown mode is refused');

-- The auditors' questions, each through an index (sequential scans priced out) -------------------
SET LOCAL enable_seqscan = off;
CREATE TEMP TABLE seq0 AS
  SELECT coalesce(sum(s.seq_scan), 0) AS n FROM pg_stat_xact_user_tables AS s
   WHERE s.relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'dispatch.decisions'::regclass);
SELECT count(*) FROM dispatch.decisions WHERE task_id = 1;
SELECT count(*) FROM dispatch.decisions WHERE agent_id = 'lg-1' AND at >= now() - interval '1 hour';
SELECT count(*) FROM dispatch.decisions WHERE policy_version = 1;
SELECT count(*) FROM dispatch.decisions WHERE kind = 'override' AND at >= now() - interval '30 days';
SELECT is((SELECT coalesce(sum(s.seq_scan), 0) - (SELECT n FROM seq0) FROM pg_stat_xact_user_tables AS s
            WHERE s.relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'dispatch.decisions'::regclass)),
          0::numeric, 'one task''s history, one agent''s window, one policy version, every override: all indexed');
-- Indexes of the default partition, copied into every day partition (10_tables.sql says why).
SELECT has_index('dispatch', 'decisions_default', 'decisions_policy_idx', ARRAY['policy_version', 'at'], 'index for one policy version');
SELECT has_index('dispatch', 'decisions_default', 'decisions_override_idx', ARRAY['at'], 'index for the overrides');

SELECT * FROM finish();
ROLLBACK;
