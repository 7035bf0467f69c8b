-- 51_dependencies: tasks that wait for other tasks (doc/fanout.md §1).
\set SHOW_CONTEXT never
TRUNCATE dispatch.tasks, dispatch.task_deps, dispatch.task_waits, dispatch.decisions RESTART IDENTITY;
SELECT dispatch.rebuild_queue_map();
SELECT agent_id FROM dispatch.register_agent('dep-agent', '{}', 10);
CREATE FUNCTION deps_state() RETURNS TABLE (task_id bigint, kind text, state text, waiting boolean, error text)
  LANGUAGE sql AS $$
  SELECT t.task_id, t.kind, t.state, w.task_id IS NOT NULL, t.error
    FROM dispatch.tasks AS t LEFT JOIN dispatch.task_waits AS w USING (task_id) ORDER BY t.task_id
$$;
-- claim a given task for dep-agent (the pick is not what is tested here)
CREATE OR REPLACE FUNCTION claim(id bigint) RETURNS bigint LANGUAGE sql AS $$
  UPDATE dispatch.tasks SET state = 'claimed', agent_id = 'dep-agent',
         lease_until = now() + interval '5 minutes', claimed_at = now(), attempts = attempts + 1
   WHERE task_id = id RETURNING task_id
$$;

-- A chain and a fan-in: 3 waits for 1 and 2; 4 waits for 3.
SELECT dispatch.submit('a') AS a, dispatch.submit('b') AS b \gset
SELECT dispatch.submit('c', depends_on => ARRAY[:a, :b]::bigint[]) AS c \gset
SELECT dispatch.submit('d', depends_on => ARRAY[:c]::bigint[]) AS d \gset
SELECT * FROM deps_state();
-- The waiting tasks have no run_at, so the tick's promote_due() never takes them.
SELECT task_id, state, run_at FROM dispatch.tasks WHERE depends_on IS NOT NULL ORDER BY 1;
SELECT dispatch.promote_due();
SELECT task_id, pending FROM dispatch.task_waits ORDER BY 1;
SELECT task_id, has_dependents FROM dispatch.tasks ORDER BY 1;

-- Completing a dependency promotes in the same transaction; c needs both.
SELECT claim(:a), claim(:b);
BEGIN;
SELECT dispatch.complete(:a, '{}');
SELECT * FROM deps_state() WHERE task_id = :c;
SELECT dispatch.complete(:b, '{}');
SELECT * FROM deps_state() WHERE task_id = :c;   -- ready before commit
COMMIT;
SELECT * FROM deps_state();
SELECT count(*) AS edges_left FROM dispatch.task_deps;

-- The lookup of dependents is an index descent on task_deps, never a scan of the tasks (seq
-- scans are off only because a table this small would be read whole).
CREATE FUNCTION plan_uses(q text, idx text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE l text;
BEGIN
  SET LOCAL enable_seqscan = off;
  FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
    IF l LIKE '%' || idx || '%' THEN RETURN true; END IF;
  END LOOP;
  RETURN false;
END $$;
SELECT plan_uses('DELETE FROM dispatch.task_deps WHERE depends_on = 1 RETURNING task_id', 'task_deps_depends_on_idx') AS dependents,
       plan_uses('DELETE FROM dispatch.task_deps WHERE task_id = 1', 'task_deps_pkey') AS own_edges,
       plan_uses('UPDATE dispatch.task_waits SET pending = pending - 1 WHERE task_id = ANY (''{1,2}'')', 'task_waits_pkey') AS counts;

-- Failure: c fails for good; d is cancelled with the reason, and it is logged.
SELECT claim(:c);
SELECT dispatch.fail(:c, 'model refused', retry => false);
SELECT * FROM deps_state();
SELECT kind, task_id, reason, factors FROM dispatch.decisions WHERE kind = 'cancel' ORDER BY decision_id;

-- A cascade of cancellations goes through every waiting task; run-anyway tasks run.
SELECT dispatch.submit('e') AS e \gset
SELECT dispatch.submit('f', depends_on => ARRAY[:e]::bigint[]) AS f \gset
SELECT dispatch.submit('g', depends_on => ARRAY[:f]::bigint[]) AS g \gset
SELECT dispatch.submit('h', depends_on => ARRAY[:g]::bigint[], on_dependency_failure => 'run') AS h \gset
SELECT dispatch.submit('i', depends_on => ARRAY[:e, :h]::bigint[], on_dependency_failure => 'run') AS i \gset
SELECT claim(:e);
SELECT dispatch.abort(:e, 'out of scope');
SELECT * FROM deps_state() WHERE task_id >= :e;
SELECT task_id, reason FROM dispatch.decisions WHERE kind = 'cancel' AND task_id >= :e ORDER BY task_id;
SELECT count(*) AS waits_left FROM dispatch.task_waits WHERE task_id >= :e;

-- Every way of failing counts: cancel(), dead after retries, expired, deleted.
SELECT dispatch.submit('j') AS j \gset
SELECT dispatch.submit('k', depends_on => ARRAY[:j]::bigint[]) AS k \gset
SELECT dispatch.cancel(:j);
SELECT task_id, state, error FROM dispatch.tasks WHERE task_id = :k;
SELECT dispatch.submit('l', max_attempts => 1) AS l \gset
SELECT dispatch.submit('m', depends_on => ARRAY[:l]::bigint[]) AS m \gset
SELECT claim(:l);
SELECT dispatch.fail(:l, 'crashed');
SELECT task_id, state, error FROM dispatch.tasks WHERE task_id IN (:l, :m) ORDER BY 1;
SELECT dispatch.submit('n') AS n \gset
SELECT dispatch.submit('o', depends_on => ARRAY[:n]::bigint[]) AS o \gset
UPDATE dispatch.tasks SET state = 'expired', finished_at = now() WHERE task_id = :n;
SELECT task_id, state, error FROM dispatch.tasks WHERE task_id = :o;
SELECT dispatch.submit('p') AS p \gset
SELECT dispatch.submit('q', depends_on => ARRAY[:p]::bigint[]) AS q \gset
DELETE FROM dispatch.tasks WHERE task_id = :p;
SELECT task_id, state, error FROM dispatch.tasks WHERE task_id = :q;

-- Dependencies that already finished: done counts as met, failed cancels at once.
SELECT dispatch.submit('r', depends_on => ARRAY[:a]::bigint[]) AS r \gset
SELECT task_id, state FROM dispatch.tasks WHERE task_id = :r;
SELECT dispatch.submit('s', depends_on => ARRAY[:c]::bigint[]) AS s \gset
SELECT task_id, state, error FROM dispatch.tasks WHERE task_id = :s;
SELECT dispatch.submit('t', depends_on => ARRAY[:c]::bigint[], on_dependency_failure => 'run') AS t \gset
SELECT task_id, state FROM dispatch.tasks WHERE task_id = :t;

-- A run_at is kept: the task waits for its dependencies, then for its time.
SELECT dispatch.submit('u') AS u \gset
SELECT dispatch.submit('v', depends_on => ARRAY[:u]::bigint[], run_at => now() + interval '1 hour') AS v \gset
SELECT state, run_at IS NULL AS no_run_at FROM dispatch.tasks WHERE task_id = :v;
SELECT run_at > now() AS kept FROM dispatch.task_waits WHERE task_id = :v;
SELECT claim(:u);
SELECT dispatch.complete(:u);
SELECT state, run_at > now() + interval '59 minutes' AS at_its_time FROM dispatch.tasks WHERE task_id = :v;

-- A plain INSERT behaves like submit().
INSERT INTO dispatch.tasks (kind, depends_on) VALUES ('w', ARRAY[:u, :v]) RETURNING task_id, state;

-- Bad input: nothing is created.
SELECT count(*) AS before FROM dispatch.tasks \gset
SELECT dispatch.submit('x', depends_on => ARRAY[99999]::bigint[]);
SELECT dispatch.submit('x', depends_on => ARRAY[:a, NULL]::bigint[]);
-- A task cannot name itself (its id given explicitly) ...
INSERT INTO dispatch.tasks (task_id, kind, depends_on) VALUES (5000, 'x', ARRAY[5000]::bigint[]);
-- ... nor can two new tasks wait for each other.
INSERT INTO dispatch.tasks (task_id, kind, depends_on) VALUES (5001, 'x', ARRAY[5002]::bigint[]), (5002, 'x', ARRAY[5001]::bigint[]);
SELECT count(*) - :before AS created FROM dispatch.tasks;

-- Updating depends_on: to itself, or to a task that waits for it, is a cycle.
SELECT dispatch.submit('y1') AS y1 \gset
SELECT dispatch.submit('y2', depends_on => ARRAY[:y1]::bigint[]) AS y2 \gset
SELECT dispatch.submit('y3', depends_on => ARRAY[:y2]::bigint[]) AS y3 \gset
UPDATE dispatch.tasks SET depends_on = ARRAY[:y1]::bigint[] WHERE task_id = :y1;
UPDATE dispatch.tasks SET depends_on = ARRAY[:y3]::bigint[] WHERE task_id = :y1;
UPDATE dispatch.tasks SET depends_on = ARRAY[99999]::bigint[] WHERE task_id = :y1;
-- A legal change: y1 (ready) now waits for a new task z, and goes back to scheduled.
SELECT dispatch.submit('z') AS z \gset
UPDATE dispatch.tasks SET depends_on = ARRAY[:z]::bigint[] WHERE task_id = :y1;
SELECT * FROM deps_state() WHERE task_id IN (:y1, :y2, :y3, :z);
-- Dropping the dependency again runs it.
UPDATE dispatch.tasks SET depends_on = NULL WHERE task_id = :y1;
SELECT * FROM deps_state() WHERE task_id = :y1;
-- A task waiting for its run_at that is given a dependency keeps its run_at for later.
SELECT dispatch.submit('later', run_at => now() + interval '2 hours') AS later \gset
UPDATE dispatch.tasks SET depends_on = ARRAY[:z]::bigint[] WHERE task_id = :later;
SELECT state, run_at IS NULL AS waiting_without_run_at FROM dispatch.tasks WHERE task_id = :later;
UPDATE dispatch.tasks SET depends_on = '{}' WHERE task_id = :later;
SELECT state, run_at > now() + interval '119 minutes' AS its_run_at_back FROM dispatch.tasks WHERE task_id = :later;
-- A claimed task's dependencies cannot change.
SELECT claim(:z);
UPDATE dispatch.tasks SET depends_on = ARRAY[:a]::bigint[] WHERE task_id = :z;
