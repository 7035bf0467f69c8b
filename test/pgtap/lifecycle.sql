-- lifecycle.sql (pgTAP): the task state machine as a matrix. From every state a task can be
-- in, each agent-side call (complete, fail, abort, release, extend_lease) and cancel either
-- makes its one transition, logged with its decision kind, or refuses with its SQLSTATE:
-- 55000 for a task that is not claimed or already finished.
BEGIN;
SELECT plan(68);
SET LOCAL dispatch.retry_base = '1h';

-- One task in the given state, with an agent of its own ('lc-<label>') so claims never mix.
CREATE FUNCTION task_in(st text, label text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE id bigint; agent text := 'lc-' || label;
BEGIN
  PERFORM dispatch.register_agent(agent, ARRAY['m-' || label], 5);
  id := dispatch.submit('matrix', tenant => 'lc', requires => ARRAY['m-' || label],
                        run_at => CASE WHEN st = 'scheduled' THEN now() + interval '1 day' END,
                        max_attempts => CASE WHEN st = 'dead' THEN 1 ELSE 3 END);
  IF st IN ('claimed', 'done', 'failed', 'dead', 'aborted') THEN
    IF (dispatch.dispatch_next(agent)).task_id IS DISTINCT FROM id THEN
      RAISE EXCEPTION 'fixture: % did not claim task %', agent, id;
    END IF;
  END IF;
  CASE st
    WHEN 'done' THEN PERFORM dispatch.complete(id);
    WHEN 'failed' THEN PERFORM dispatch.fail(id, 'broken', retry => false);
    WHEN 'dead' THEN PERFORM dispatch.fail(id, 'broken');
    WHEN 'aborted' THEN PERFORM dispatch.abort(id, 'refused');
    WHEN 'cancelled' THEN PERFORM dispatch.cancel(id);
    ELSE NULL;
  END CASE;
  RETURN id;
END $$;

CREATE TEMP TABLE fixture (st text PRIMARY KEY, id bigint);
INSERT INTO fixture
SELECT st, task_in(st, st)
  FROM unnest(ARRAY['scheduled', 'ready', 'done', 'failed', 'dead', 'aborted', 'cancelled']) AS st;
SELECT results_eq(
  $$SELECT f.st, t.state FROM fixture f JOIN dispatch.tasks t ON t.task_id = f.id ORDER BY 1$$,
  $$VALUES ('aborted', 'aborted'), ('cancelled', 'cancelled'), ('dead', 'dead'), ('done', 'done'),
           ('failed', 'failed'), ('ready', 'ready'), ('scheduled', 'scheduled')$$,
  'the fixtures are in the states they are named for');

-- Not claimed: every agent-side call refuses with 55000, whatever the state.
SELECT throws_ok(format(op, f.id), '55000', NULL, format('%s on a %s task: 55000', name, f.st))
  FROM fixture f
 CROSS JOIN (VALUES ('complete', 'SELECT dispatch.complete(%s)'),
                    ('fail', 'SELECT dispatch.fail(%s, ''x'')'),
                    ('fail without retry', 'SELECT dispatch.fail(%s, ''x'', retry => false)'),
                    ('abort', 'SELECT dispatch.abort(%s, ''x'')'),
                    ('release', 'SELECT dispatch.release(%s)'),
                    ('extend_lease', 'SELECT dispatch.extend_lease(%s)')) AS o(name, op)
 ORDER BY f.st, o.name;
-- cancel refuses on a finished task ...
SELECT throws_ok(format('SELECT dispatch.cancel(%s)', f.id), '55000', NULL, format('cancel on a %s task: 55000', f.st))
  FROM fixture f WHERE f.st IN ('done', 'failed', 'dead', 'aborted', 'cancelled') ORDER BY f.st;
-- ... and nothing above changed a state.
SELECT results_eq(
  $$SELECT count(*)::int FROM fixture f JOIN dispatch.tasks t ON t.task_id = f.id WHERE t.state = f.st$$,
  ARRAY[7], 'the refused calls changed no state');

-- From claimed, each call makes its transition and logs its decision.
CREATE TEMP TABLE moves (op text PRIMARY KEY, id bigint, returned text);
INSERT INTO moves SELECT op, task_in('claimed', 'c-' || op), NULL
  FROM unnest(ARRAY['complete', 'fail', 'fail-final', 'fail-no-retry', 'abort', 'release', 'extend', 'cancel']) AS op;
UPDATE dispatch.tasks SET attempts = max_attempts WHERE task_id = (SELECT id FROM moves WHERE op = 'fail-final');
SELECT lives_ok(format('SELECT dispatch.complete(%s, ''{"ok": 1}'')', id), 'complete a claimed task') FROM moves WHERE op = 'complete';
UPDATE moves SET returned = dispatch.fail(id, 'flaky') WHERE op = 'fail';
UPDATE moves SET returned = dispatch.fail(id, 'flaky') WHERE op = 'fail-final';
UPDATE moves SET returned = dispatch.fail(id, 'bad input', retry => false) WHERE op = 'fail-no-retry';
SELECT lives_ok(format('SELECT dispatch.abort(%s, ''not mine'')', id), 'abort a claimed task') FROM moves WHERE op = 'abort';
SELECT lives_ok(format('SELECT dispatch.release(%s)', id), 'release a claimed task') FROM moves WHERE op = 'release';
UPDATE moves SET returned = (dispatch.extend_lease(id) > now())::text WHERE op = 'extend';
SELECT lives_ok(format('SELECT dispatch.cancel(%s)', id), 'cancel a claimed task') FROM moves WHERE op = 'cancel';
SELECT results_eq(
  $$SELECT m.op, t.state, m.returned FROM moves m JOIN dispatch.tasks t ON t.task_id = m.id ORDER BY 1$$,
  $$VALUES ('abort', 'aborted', NULL), ('cancel', 'cancelled', NULL), ('complete', 'done', NULL),
           ('extend', 'claimed', 'true'), ('fail', 'scheduled', 'scheduled'), ('fail-final', 'dead', 'dead'),
           ('fail-no-retry', 'failed', 'failed'), ('release', 'ready', NULL)$$,
  'each call from claimed makes its transition (fail returns the new state)');
SELECT results_eq(
  $$SELECT m.op, coalesce(string_agg(d.kind, ',' ORDER BY d.decision_id) FILTER (WHERE d.kind <> 'claim'), '-')
      FROM moves m LEFT JOIN dispatch.decisions d ON d.task_id = m.id GROUP BY 1 ORDER BY 1$$,
  $$VALUES ('abort', 'abort'), ('cancel', 'cancel'), ('complete', '-'), ('extend', '-'), ('fail', 'retry'),
           ('fail-final', 'dead'), ('fail-no-retry', 'failed'), ('release', 'release')$$,
  'each transition is logged with its decision kind (complete and extend_lease are not decisions)');
SELECT results_eq(
  $$SELECT count(*)::int FROM moves m JOIN dispatch.decisions d ON d.task_id = m.id AND d.kind <> 'claim'
     WHERE d.agent_id IS DISTINCT FROM 'lc-c-' || m.op$$,
  ARRAY[0], 'every logged transition names the agent that held the task');
SELECT is(sum(running)::int, 1, 'only the task whose lease was extended still holds its agent')
  FROM dispatch.agents WHERE agent_id LIKE 'lc-c-%';
-- Waiting tasks can be cancelled.
SELECT lives_ok(format('SELECT dispatch.cancel(%s)', id), format('cancel a %s task', st))
  FROM fixture WHERE st IN ('scheduled', 'ready') ORDER BY st;
-- A cancelled, released or retried task is not the agent's any more.
SELECT throws_ok(format('SELECT dispatch.complete(%s)', id), '55000', NULL,
                 format('complete after %s: 55000', op))
  FROM moves WHERE op IN ('cancel', 'release', 'fail') ORDER BY op;
-- Unknown tasks: 42704 from every call.
SELECT throws_ok(op, '42704', NULL, op || ': 42704')
  FROM unnest(ARRAY['SELECT dispatch.complete(-7)', 'SELECT dispatch.fail(-7, ''x'')',
                    'SELECT dispatch.abort(-7, ''x'')', 'SELECT dispatch.release(-7)',
                    'SELECT dispatch.extend_lease(-7)', 'SELECT dispatch.cancel(-7)']) AS op;

SELECT * FROM finish();
ROLLBACK;
