-- 05_lifecycle: after the claim. complete; fail with retry (exponential backoff with jitter,
-- scheduled, then dead after max_attempts) or without (failed); abort; cancel from each state;
-- release (keeps its place, the attempt does not count); extend_lease.
\i sql/include/fresh.sql
-- A long first backoff, so the background worker cannot promote a retried task mid-test.
SET dispatch.retry_base = '1h';
SET dispatch.retry_max = '3h';

\i sql/include/try.sql

SELECT (dispatch.register_agent('l-1', '{l}', 10)).agent_id;

-- complete: done, with the result; the lease ends and the agent's capacity comes back.
SELECT dispatch.submit('to-complete', tenant => 't05', requires => '{l}') AS c1 \gset
SELECT task_id = :c1 AS claimed FROM dispatch.dispatch_next('l-1');
SELECT running FROM dispatch.agents WHERE agent_id = 'l-1';
SELECT dispatch.complete(:c1, '{"answer": 42}');
SELECT state, result, agent_id, attempts, lease_until, finished_at IS NOT NULL AS finished, error
  FROM dispatch.tasks WHERE task_id = :c1;
SELECT running, status FROM dispatch.agents WHERE agent_id = 'l-1';
-- complete without a result.
SELECT dispatch.submit('to-complete-2', tenant => 't05', requires => '{l}') AS c2 \gset
SELECT task_id = :c2 AS claimed FROM dispatch.dispatch_next('l-1');
SELECT dispatch.complete(:c2);
SELECT state, result FROM dispatch.tasks WHERE task_id = :c2;
-- Completing twice, or failing a finished task, is refused.
SELECT public.try(format('SELECT dispatch.complete(%s)', :c1));
SELECT public.try(format('SELECT dispatch.fail(%s, %L)', :c1, 'late'));

-- fail with retry: scheduled after a backoff of half to all of retry_base (attempt 1), the
-- agent is free again, the error kept, the decision logged; after max_attempts: dead.
SELECT dispatch.submit('flaky', tenant => 't05', requires => '{l}', max_attempts => 2) AS f1 \gset
SELECT task_id = :f1 AS claimed, attempts FROM dispatch.dispatch_next('l-1');
SELECT dispatch.fail(:f1, 'timeout talking to the model') AS new_state;
SELECT state, agent_id, attempts, error, lease_until, ready_at,
       run_at BETWEEN now() + interval '30 minutes' AND now() + interval '1 hour' + interval '1 minute' AS backoff_in_range
  FROM dispatch.tasks WHERE task_id = :f1;
SELECT running FROM dispatch.agents WHERE agent_id = 'l-1';
SELECT kind, agent_id, reason, factors->'attempt' AS attempt, factors->'max_attempts' AS max_attempts,
       (factors->>'delay_seconds')::float8 BETWEEN 1800 AND 3600 AS delay_in_range
  FROM dispatch.decisions WHERE task_id = :f1 AND kind = 'retry';
-- Not claimable while it waits.
SELECT dispatch.dispatch_next('l-1') IS NULL AS waits;
-- Its time comes (the tick promotes it; here in one transaction with the change).
BEGIN;
UPDATE dispatch.tasks SET run_at = now() - interval '1 second' WHERE task_id = :f1;
SELECT dispatch.promote_due() >= 1 AS promoted;
COMMIT;
SELECT state, ready_at IS NOT NULL AS ready_again FROM dispatch.tasks WHERE task_id = :f1;
SELECT task_id = :f1 AS claimed_again, attempts FROM dispatch.dispatch_next('l-1');
SELECT dispatch.fail(:f1, 'still failing') AS new_state;
SELECT state, agent_id, attempts, error, finished_at IS NOT NULL AS finished, lease_until
  FROM dispatch.tasks WHERE task_id = :f1;
SELECT kind, agent_id, reason, factors->'attempt' AS attempt
  FROM dispatch.decisions WHERE task_id = :f1 ORDER BY decision_id;
SELECT running FROM dispatch.agents WHERE agent_id = 'l-1';
-- The second backoff doubles the first: attempt 2 waits between 1 and 2 hours.
SELECT dispatch.submit('flaky-2', tenant => 't05', requires => '{l}', max_attempts => 3) AS f2 \gset
SELECT task_id = :f2 AS claimed FROM dispatch.dispatch_next('l-1');
UPDATE dispatch.tasks SET attempts = 2 WHERE task_id = :f2;
SELECT dispatch.fail(:f2, 'again') AS new_state;
SELECT run_at BETWEEN now() + interval '1 hour' AND now() + interval '2 hours' + interval '1 minute' AS doubled
  FROM dispatch.tasks WHERE task_id = :f2;
-- With no backoff at all (retry_base 0) the task is ready at once.
SET dispatch.retry_base = 0;
SELECT dispatch.submit('flaky-3', tenant => 't05', requires => '{l}') AS f3 \gset
SELECT task_id = :f3 AS claimed FROM dispatch.dispatch_next('l-1');
SELECT dispatch.fail(:f3, 'transient') AS new_state;
SELECT task_id = :f3 AS claimed_at_once, attempts FROM dispatch.dispatch_next('l-1');
SELECT dispatch.complete(:f3);
SET dispatch.retry_base = '1h';

-- fail with retry => false: failed, not retried.
SELECT dispatch.submit('hopeless', tenant => 't05', requires => '{l}') AS h1 \gset
SELECT task_id = :h1 AS claimed FROM dispatch.dispatch_next('l-1');
SELECT dispatch.fail(:h1, 'input is malformed', retry => false) AS new_state;
SELECT state, agent_id, attempts, error, finished_at IS NOT NULL AS finished FROM dispatch.tasks WHERE task_id = :h1;
SELECT kind, agent_id, reason FROM dispatch.decisions WHERE task_id = :h1 AND kind <> 'claim';

-- abort: the agent refuses the task with a reason; it ends aborted, logged.
SELECT dispatch.submit('refused', tenant => 't05', requires => '{l}') AS a1 \gset
SELECT task_id = :a1 AS claimed FROM dispatch.dispatch_next('l-1');
SELECT dispatch.abort(:a1, 'outside my policy');
SELECT state, agent_id, error, finished_at IS NOT NULL AS finished, lease_until FROM dispatch.tasks WHERE task_id = :a1;
SELECT kind, agent_id, reason FROM dispatch.decisions WHERE task_id = :a1 AND kind <> 'claim';
SELECT running FROM dispatch.agents WHERE agent_id = 'l-1';

-- cancel from each waiting or running state; a running task is taken from its agent.
SELECT dispatch.submit('cancel-scheduled', tenant => 't05', requires => '{l}', run_at => now() + interval '1 day') AS k1 \gset
SELECT dispatch.submit('cancel-ready', tenant => 't05', requires => '{l}') AS k2 \gset
SELECT dispatch.cancel(:k1);
SELECT dispatch.cancel(:k2);
SELECT dispatch.submit('cancel-claimed', tenant => 't05', requires => '{l}') AS k3 \gset
SELECT task_id = :k3 AS claimed FROM dispatch.dispatch_next('l-1');
SELECT running FROM dispatch.agents WHERE agent_id = 'l-1';
SELECT dispatch.cancel(:k3);
SELECT kind, state, finished_at IS NOT NULL AS finished, lease_until FROM dispatch.tasks
 WHERE task_id IN (:k1, :k2, :k3) ORDER BY task_id;
SELECT running FROM dispatch.agents WHERE agent_id = 'l-1';
SELECT t.kind, d.kind AS decision, d.agent_id FROM dispatch.decisions d JOIN dispatch.tasks t USING (task_id)
 WHERE d.task_id IN (:k1, :k2, :k3) AND d.kind = 'cancel' ORDER BY t.task_id;
-- The agent can no longer complete what was cancelled under it.
SELECT public.try(format('SELECT dispatch.complete(%s)', :k3));
-- Finished tasks cannot be cancelled: done, failed, dead, aborted, cancelled.
SELECT t.state, public.try(format('SELECT dispatch.cancel(%s)', t.task_id)) AS cancel
  FROM dispatch.tasks t WHERE t.task_id IN (:c1, :h1, :f1, :a1, :k1) ORDER BY t.task_id;

-- release: back to ready at its old place (ready_at and skey kept), the attempt not counted.
-- Both tasks are made ready in one statement, so they share skey: task_id orders them.
SELECT count(dispatch.submit('rel-' || i, tenant => 't05r', requires => '{r}')) FROM generate_series(1, 2) AS i;
SELECT (dispatch.register_agent('l-r', '{r}', 1)).agent_id;
SELECT kind, attempts FROM dispatch.dispatch_next('l-r') \gset rel_
SELECT task_id AS r1, skey AS r1_skey, ready_at AS r1_ready FROM dispatch.tasks WHERE kind = :'rel_kind' \gset
SELECT dispatch.release(:r1);
SELECT state, agent_id, attempts, lease_until, skey = :'r1_skey' AS same_skey, ready_at = :'r1_ready' AS same_ready_at
  FROM dispatch.tasks WHERE task_id = :r1;
SELECT running, status FROM dispatch.agents WHERE agent_id = 'l-r';
SELECT kind, agent_id, reason FROM dispatch.decisions WHERE task_id = :r1 AND kind = 'release';
-- It is first in line again, ahead of the task submitted after it.
SELECT task_id = :r1 AS same_task_first, attempts FROM dispatch.dispatch_next('l-r');
SELECT dispatch.complete(:r1);

-- extend_lease: later by the interval, or by dispatch.lease_time; returns the new end.
SELECT dispatch.submit('long-job', tenant => 't05', requires => '{l}') AS e1 \gset
SELECT lease_until AS lease0 FROM dispatch.dispatch_next('l-1') \gset
SELECT dispatch.extend_lease(:e1, interval '1 hour') - :'lease0'::timestamptz AS extended_by;
SELECT lease_until - :'lease0'::timestamptz AS lease_moved FROM dispatch.tasks WHERE task_id = :e1;
SELECT dispatch.extend_lease(:e1) - :'lease0'::timestamptz AS extended_by_lease_time;
SELECT dispatch.extend_lease(:e1) AS returned \gset
SELECT lease_until = :'returned' AS returns_new_end FROM dispatch.tasks WHERE task_id = :e1;
SELECT state, agent_id FROM dispatch.tasks WHERE task_id = :e1;
-- An expired lease (still claimed until the tick) is extended from now.
UPDATE dispatch.tasks SET lease_until = now() - interval '1 hour' WHERE task_id = :e1;
SELECT dispatch.extend_lease(:e1, interval '10 minutes') > now() + interval '9 minutes' AS from_now;
SELECT dispatch.complete(:e1, '{"ok": true}');
SELECT public.try(format('SELECT dispatch.extend_lease(%s)', :e1));

-- The decision log of this file, by kind.
SELECT kind, count(*) FROM dispatch.decisions GROUP BY 1 ORDER BY 1;
SELECT running FROM dispatch.agents WHERE agent_id = 'l-1';

-- Fencing: an agent whose lease ran out, and whose task another agent now holds, is refused
-- when it names itself; the holder completes normally.
SELECT dispatch.register_agent('fence-1', '{fence}') IS NOT NULL AS registered;
SELECT dispatch.register_agent('fence-2', '{fence}') IS NOT NULL AS registered;
SELECT dispatch.submit('fenced', requires => '{fence}') AS fenced_task \gset
SELECT task_id = :fenced_task AS first_holder FROM dispatch.dispatch_next('fence-1');
-- fence-1's lease runs out; the tick gives the task to the queue and fence-2 takes it.
UPDATE dispatch.tasks SET lease_until = now() - interval '1 second' WHERE task_id = :fenced_task;
SELECT (dispatch.requeue_expired() >= 1) AS requeued;
SELECT task_id = :fenced_task AS second_holder FROM dispatch.dispatch_next('fence-2');
SELECT public.try(format($$SELECT dispatch.complete(%s, '{"late": true}', agent_id => 'fence-1')$$,
                         :fenced_task)) AS stale_holder;
SELECT dispatch.complete(:fenced_task, '{"ok": true}', agent_id => 'fence-2');
SELECT state, result, agent_id FROM dispatch.tasks WHERE task_id = :fenced_task;
