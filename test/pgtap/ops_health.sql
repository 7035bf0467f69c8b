-- ops_health: overload shedding (order, reasons, never critical, the batch bound, nothing without
-- overload) and per-kind timeouts (retry with backoff, then dead; logged; capacity given back).
BEGIN;
SELECT plan(22);

SELECT dispatch.set_policy('{"shed_after": {"high": 300, "normal": 1800, "low": 3600}}', 'shedding test');

-- Waiting for: low 100 s, 400 s, 4000 s; normal 200 s, 2000 s; high 100 s, 500 s; critical 10000 s;
-- plus a fresh low task submitted with shed_if_busy.
CREATE TEMP TABLE t AS
SELECT * FROM (VALUES ('low-100', 'low', 100), ('low-400', 'low', 400), ('low-4000', 'low', 4000),
                      ('normal-200', 'normal', 200), ('normal-2000', 'normal', 2000),
                      ('high-100', 'high', 100), ('high-500', 'high', 500),
                      ('critical-10000', 'critical', 10000)) AS v (label, priority, waited);
ALTER TABLE t ADD COLUMN task_id bigint;
UPDATE t SET task_id = dispatch.submit('k', payload => jsonb_build_object('label', label), priority => t.priority);
UPDATE dispatch.tasks AS k SET ready_at = now() - make_interval(secs => t.waited)
  FROM t WHERE k.task_id = t.task_id;
INSERT INTO t (label, priority, waited, task_id)
VALUES ('low-busy', 'low', 0, dispatch.submit('k', priority => 'low', shed_if_busy => true));

SELECT results_eq(
  'SELECT priority, overdue, effective_shed_after_seconds FROM dispatch.overload',
  $$VALUES ('critical', false, NULL::float8), ('high', true, 300), ('normal', true, 300), ('low', true, 300)$$,
  'high is overdue (500 s > 300 s), so no lower priority may wait longer than 300 s either');

SELECT is(dispatch.shed_overload(batch => 2), 2, 'a batch of 2 sheds 2 tasks');
SELECT results_eq(
  $$SELECT t.label FROM dispatch.decisions AS d JOIN t USING (task_id) WHERE d.kind = 'shed' ORDER BY d.decision_id$$,
  $$VALUES ('low-busy'), ('low-4000')$$,
  'the first batch takes the shed_if_busy task, then the oldest low task');
SELECT is(dispatch.shed_overload(), 3, 'the next tick sheds the other 3 tasks past the limit');
SELECT results_eq(
  $$SELECT t.label FROM dispatch.decisions AS d JOIN t USING (task_id) WHERE d.kind = 'shed' ORDER BY d.decision_id$$,
  $$VALUES ('low-busy'), ('low-4000'), ('low-400'), ('normal-2000'), ('high-500')$$,
  'shedding goes lowest priority first, oldest first within a priority');
SELECT results_eq(
  $$SELECT t.label, k.state FROM t JOIN dispatch.tasks AS k USING (task_id) WHERE k.state <> 'shed' ORDER BY t.label$$,
  $$VALUES ('critical-10000', 'ready'), ('high-100', 'ready'), ('low-100', 'ready'), ('normal-200', 'ready')$$,
  'critical work is never shed, whatever its wait; tasks within the limit stay');
SELECT is((SELECT reason FROM dispatch.decisions AS d JOIN t USING (task_id) WHERE t.label = 'normal-2000'),
          'overload: normal task waited 2000 s, longer than 300 s', 'the shed decision says why');
SELECT is((SELECT factors - 'waited_seconds' FROM dispatch.decisions AS d JOIN t USING (task_id) WHERE t.label = 'low-400'),
          '{"priority": "low", "overdue": ["high", "normal"], "shed_after": 3600, "effective_shed_after": 300}'::jsonb,
          'its factors name the priorities overdue then (low no longer: its oldest was shed) and the limits');
SELECT is((SELECT error FROM dispatch.tasks AS k JOIN t USING (task_id) WHERE t.label = 'low-busy'),
          'shed under overload (shed_if_busy)', 'a shed task carries the reason as its error');
SELECT ok((SELECT bool_and(finished_at IS NOT NULL) FROM dispatch.tasks WHERE state = 'shed'), 'shed tasks are finished');
SELECT is(dispatch.shed_overload(), 0, 'once nothing is past its limit, nothing more is shed');
SELECT results_eq('SELECT priority, overdue FROM dispatch.overload',
  $$VALUES ('critical', false), ('high', false), ('normal', false), ('low', false)$$, 'and no priority is overdue');

-- Without overload, even shed_if_busy work stays.
SELECT dispatch.submit('k', priority => 'low', shed_if_busy => true);
SELECT is(dispatch.shed_overload(), 0, 'no overload: a shed_if_busy task is not shed');
-- Each priority's own limit applies alone: a normal task past 1800 s with nothing above overdue.
UPDATE dispatch.tasks SET ready_at = now() - interval '1900 seconds'
 WHERE task_id = (SELECT task_id FROM t WHERE label = 'normal-200');
SELECT results_eq('SELECT priority, overdue, effective_shed_after_seconds FROM dispatch.overload',
  $$VALUES ('critical', false, NULL::float8), ('high', false, 300), ('normal', true, 1800), ('low', false, 1800)$$,
  'normal alone is overdue: its limit is its own shed_after, and low may not wait longer either; high keeps its own');
SELECT is(dispatch.shed_overload(), 2, 'it and the shed_if_busy task are shed');

-- Timeouts ---------------------------------------------------------------------------------------
TRUNCATE dispatch.tasks;
INSERT INTO dispatch.kinds (kind, timeout) VALUES ('slow', '1 minute'), ('free', NULL);
SELECT dispatch.register_agent('tm-1', capacity => 5);
CREATE TEMP TABLE tm AS SELECT
  dispatch.submit('slow', max_attempts => 3) AS retried,
  dispatch.submit('slow', max_attempts => 1) AS killed,
  dispatch.submit('slow') AS young,
  dispatch.submit('free') AS untimed;
UPDATE dispatch.tasks SET state = 'claimed', agent_id = 'tm-1', attempts = 1,
       lease_until = now() + interval '1 hour',
       claimed_at = CASE WHEN task_id = (SELECT young FROM tm) THEN now() ELSE now() - interval '2 minutes' END;
SELECT is((SELECT running FROM dispatch.agents WHERE agent_id = 'tm-1'), 4, 'the agent holds four tasks');
SELECT is(dispatch.timeout_claims(), 2, 'two claims ran past their kind''s one-minute timeout');
SELECT results_eq(
  $$SELECT state, agent_id, finished_at IS NULL, run_at > now(), error FROM dispatch.tasks WHERE task_id = (SELECT retried FROM tm)$$,
  $$VALUES ('scheduled', NULL::text, true, true, 'timed out: ran longer than 00:01:00, the timeout of kind slow')$$,
  'a timed-out attempt with attempts left is retried after a backoff');
SELECT results_eq(
  $$SELECT state, agent_id, finished_at IS NOT NULL FROM dispatch.tasks WHERE task_id = (SELECT killed FROM tm)$$,
  $$VALUES ('dead', 'tm-1', true)$$, 'with no attempt left it is dead');
SELECT results_eq(
  $$SELECT state FROM dispatch.tasks WHERE task_id IN ((SELECT young FROM tm), (SELECT untimed FROM tm)) ORDER BY task_id$$,
  $$VALUES ('claimed'), ('claimed')$$, 'a young claim and a kind without timeout are left alone');
SELECT results_eq(
  $$SELECT task_id, agent_id, factors->>'next', (factors->>'timeout_seconds')::float8 FROM dispatch.decisions
     WHERE kind = 'timeout' ORDER BY task_id$$,
  $$VALUES ((SELECT retried FROM tm), 'tm-1', 'retry', 60::float8), ((SELECT killed FROM tm), 'tm-1', 'dead', 60)$$,
  'each timeout is logged with what happens next');
SELECT is((SELECT running FROM dispatch.agents WHERE agent_id = 'tm-1'), 2, 'the agent got its capacity back');

SELECT * FROM finish();
ROLLBACK;
